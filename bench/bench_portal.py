"""Portal speed: a catalog page of 100 rows on the 1,000,000-spectrum catalog, an object page's data.

Prints, side by side in the same run against the same server (``campfire serve`` in its
own process on loopback, timed from a client with a keep-alive connection, so each figure
is the server's answer time plus the loopback):

* the catalog page (``GET /?...``: one page of ``query_objects``, its total and the form's
  vocabulary rendered to HTML) next to the API's JSON page of the same query
  (``GET /api/v1/objects?...&limit=100``, rows and total) and the bare library call
  (``LocalCatalog``'s ``query_rows`` + ``count`` in this process) — for several
  selections; the page's total comes separately (``/objects.count``, fetched by the
  page's script when the server has not counted that selection yet), timed once, cold;
* an object page: its HTML and its data (``/objects/{id}/view.json``: every spectrum's
  1D and 2D arrays, fit, alternatives and synthetic photometry) next to what the API
  route costs for the same data (``/objects/{id}``, then ``/spectra/{id}/data`` and
  ``/spectra/{id}/redshift-fit`` per spectrum, one after the other).

* grading: keypress (Enter) to stored record in headless Chromium (what the page's
  script measures from the key to the server's answer), the server's CPU per grade, and
  the same POST from a plain client.

    python bench/bench_portal.py [--catalog ROOT] [--objects ROOT] [--grading ROOT] [--repeat 9]
    # --catalog: a catalog-only demo (python -m campfire demo build ROOT --size catalog)
    # --objects: a demo with products (python -m campfire demo build ROOT --size full)
    # --grading: a demo with products; the bench grades objects in a private copy
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sqlite3
import statistics
import subprocess
import sys
import time

from bench_sync import cpu_of, start_server  # the same harness (this folder is on sys.path)


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def timed(fn, repeat: int, pid: int | None = None) -> tuple[float, float, float]:
    """(median, max) wall milliseconds of ``fn`` after one warm-up call, and the median CPU
    milliseconds process ``pid`` (the server) spent per call — what a busy machine cannot inflate."""
    fn()
    times, cpu = [], []
    for _ in range(repeat):
        c0 = cpu_of(pid) if pid else 0.0
        t0 = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - t0))
        cpu.append(1e3 * ((cpu_of(pid) if pid else 0.0) - c0))
    return statistics.median(times), max(times), statistics.median(cpu)


def get(session, url: str) -> int:
    r = session.get(url, timeout=120)
    r.raise_for_status()
    return len(r.content)


CATALOG_CASES = {
    "default order": "",
    "sort by redshift, descending": "sort=redshift&sort_dir=desc",
    "fields=uds, 4<z<8, quality 3-4": "fields=uds&redshift_range=4,8&redshift_quality=3,4",
    "best S/N > 10, PRISM, no LOW_SNR": "max_snr_range=10,inf&gratings=PRISM&dq_flags=~LOW_SNR",
    "tags=lrd": "tags=lrd",
    "cone 60\" around an object": None,  # filled in from the catalog
    "page 3,000 (offset 299,900)": "page=3000",
}


def catalog_bench(root: pathlib.Path, repeat: int) -> None:
    import requests

    from campfire.catalog.filters import query_from_params
    from campfire.catalog.local import LocalCatalog
    from campfire.catalog.visibility import Visibility
    from campfire.server.auth import add_user

    conn = sqlite3.connect(root / "meta" / "campfire.db")
    n_spec, n_obj = (conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("spectra", "objects"))
    ra, dec = conn.execute("SELECT ra, dec FROM objects ORDER BY object_id LIMIT 1 OFFSET 1000").fetchone()
    programs = [r[0] for r in conn.execute("SELECT program_id FROM programs")]
    public = [r[0] for r in conn.execute("SELECT program_id FROM programs WHERE is_public")]
    conn.close()
    CATALOG_CASES["cone 60\" around an object"] = f"cone_search={ra:.5f},{dec:.5f},60"
    print(f"catalog {root}: {n_spec:,} spectra, {n_obj:,} objects")
    add_user(root, "bench", "bench-password", programs=programs)
    proc, url = start_server(root)
    try:
        s = requests.Session()
        t0 = time.perf_counter()
        get(s, f"{url}/")  # the first request of the anonymous visibility set computes its aggregates
        print(f"first catalog page (anonymous aggregates of the whole catalog computed): {time.perf_counter() - t0:.1f} s")
        # the library call as the anonymous page sees it: the public programs' visibility set
        local = LocalCatalog(root, visibility=Visibility(program_ids=frozenset(public), key="", user=None,
                                                         all_tags=False), expose_paths=False)
        print(f"load average before the runs: {os.getloadavg()[0]:.1f} (2 cores, shared)")
        print(f"{'selection':36s} {'rows':>8s} {'page HTML: wall (max) server CPU':>34s} {'total: CPU':>11s} "
              f"{'API JSON: wall, CPU':>20s} {'library CPU':>12s}")
        for label, qs in CATALOG_CASES.items():
            page_ms = timed(lambda: get(s, f"{url}/?{qs}"), repeat, proc.pid)
            c0 = cpu_of(proc.pid)
            get(s, f"{url}/objects.count?{qs.replace('page=3000', '')}")  # the total the page's script fetches
            count_cpu = 1e3 * (cpu_of(proc.pid) - c0)
            api_qs = qs.replace("page=3000", "offset=299900")
            api_ms = timed(lambda: get(s, f"{url}/api/v1/objects?{api_qs}&limit=100"), repeat, proc.pid)
            params = dict(p.split("=", 1) for p in api_qs.split("&") if p)
            q = query_from_params("objects", {**params, "limit": "100"})
            q = q.resolve(local.vocabulary())
            c0 = time.process_time()
            for _ in range(repeat):
                local.query_rows(q), local.count(q)
            lib_cpu = 1e3 * (time.process_time() - c0) / repeat
            total = local.count(q)
            print(f"{label:36s} {total:8,d} {page_ms[0]:10.0f} ms ({page_ms[1]:5.0f}) {page_ms[2]:7.0f} ms "
                  f"{count_cpu:8.0f} ms "
                  f"{api_ms[0]:9.0f} ms {api_ms[2]:5.0f} ms {lib_cpu:9.0f} ms")
    finally:
        stop(proc)


def object_bench(root: pathlib.Path, repeat: int) -> None:
    """Object pages: the first view of an object reads its files (cold), a second one is cached."""
    import requests

    conn = sqlite3.connect(root / "meta" / "campfire.db")
    n_spec = conn.execute("SELECT count(*) FROM spectra").fetchone()[0]
    public = ("SELECT object_id, count(*) AS n FROM spectra s JOIN programs p USING (program_id) WHERE p.is_public "
              "GROUP BY object_id")
    many = conn.execute(f"{public} ORDER BY n DESC, object_id LIMIT ?", (repeat,)).fetchall()
    single = conn.execute(f"SELECT * FROM ({public}) WHERE n = 1 ORDER BY object_id LIMIT ?", (repeat,)).fetchall()
    conn.close()
    print(f"\nobject pages on {root} ({n_spec:,} spectra), {repeat} objects per row")
    proc, url = start_server(root)
    try:
        s = requests.Session()
        get(s, f"{url}/api/v1/counts")
        get(s, f"{url}/objects/{single[-1][0]}/view.json")  # imports, first numba/astropy calls
        print(f"load average before the runs: {os.getloadavg()[0]:.1f} (2 cores, shared)")
        print(f"{'objects':24s} {'page HTML':>10s} {'data, first view: wall (max) CPU':>36s} {'again: CPU':>11s} "
              f"{'API routes, same data: wall, CPU':>33s} {'size':>8s}")
        for label, rows in ((f"{min(n for _, n in many)}-{max(n for _, n in many)} spectra each", many),
                            ("1 spectrum each", single)):
            html, cold, cold_cpu, warm_cpu, api, api_cpu, sizes = [], [], [], [], [], [], []
            for object_id, _ in rows:
                spectra = s.get(f"{url}/api/v1/objects/{object_id}", timeout=60).json()["spectra"]
                html.append(timed(lambda: get(s, f"{url}/objects/{object_id}"), 1)[0])
                c0, t0 = cpu_of(proc.pid), time.perf_counter()
                sizes.append(get(s, f"{url}/objects/{object_id}/view.json"))  # its files read for the first time
                cold.append(1e3 * (time.perf_counter() - t0))
                cold_cpu.append(1e3 * (cpu_of(proc.pid) - c0))
                warm_cpu.append(timed(lambda: get(s, f"{url}/objects/{object_id}/view.json"), 3, proc.pid)[2])

                def api_path():
                    get(s, f"{url}/api/v1/objects/{object_id}")
                    for sp in spectra:
                        get(s, f"{url}/api/v1/spectra/{sp['spectrum_id']}/data")
                        get(s, f"{url}/api/v1/spectra/{sp['spectrum_id']}/redshift-fit")

                wall, _, cpu = timed(api_path, 1, proc.pid)
                api.append(wall)
                api_cpu.append(cpu)
            med = statistics.median
            print(f"{label:24s} {med(html):7.0f} ms {med(cold):12.0f} ms ({max(cold):5.0f}) {med(cold_cpu):6.0f} ms "
                  f"{med(warm_cpu):8.0f} ms {med(api):18.0f} ms {med(api_cpu):7.0f} ms {med(sizes) / 1e3:5.0f} kB")
    finally:
        stop(proc)


def grading_bench(root: pathlib.Path, repeat: int) -> None:
    """Keypress to stored record: a reviewer grades objects with the keyboard in headless Chromium."""
    import shutil
    import tempfile

    import requests
    from playwright.sync_api import sync_playwright

    from campfire.server.auth import add_user

    work = pathlib.Path(tempfile.mkdtemp(prefix="campfire-grading-bench-"))
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
    from shared_fixtures import link_copy  # a private copy: the bench writes inspections

    copy = link_copy(root, work / "root")
    conn = sqlite3.connect(copy / "meta" / "campfire.db")
    program, slug = conn.execute("SELECT program_id, slug FROM programs WHERE is_public ORDER BY program_id LIMIT 1").fetchone()
    objects = [r[0] for r in conn.execute("SELECT DISTINCT object_id FROM spectra WHERE program_id = ? "
                                          "ORDER BY object_id LIMIT ?", (program, repeat))]
    conn.close()
    add_user(copy, "grader", "grader-password", programs=[slug])
    proc, url = start_server(copy)
    print(f"\ngrading on {root} (a private copy), {len(objects)} objects, headless Chromium")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"])
            page = browser.new_page()
            page.goto(f"{url}/login")
            page.fill("input[name=username]", "grader")
            page.fill("input[name=password]", "grader-password")
            page.click("#login-form button[type=submit]")
            page.wait_for_selector(".who[data-user='grader']")
            print(f"load average before the runs: {os.getloadavg()[0]:.1f} (2 cores, shared)")
            browser_ms, cpu_ms = [], []
            for object_id in objects:
                page.goto(f"{url}/objects/{object_id}")
                page.wait_for_selector("body[data-plots-ready='1']")
                page.keyboard.press("a")
                page.keyboard.press("3")
                c0 = cpu_of(proc.pid)
                page.keyboard.press("Enter")  # the measured keypress: save
                page.wait_for_selector("#save-status[data-saved='1']")
                cpu_ms.append(1e3 * (cpu_of(proc.pid) - c0))
                browser_ms.append(float(page.get_attribute("#save-status", "data-save-ms")))
            browser.close()
        token = requests.post(f"{url}/api/v1/auth/token", data={"grant_type": "password", "username": "grader",
                                                               "password": "grader-password"}).json()["access_token"]
        api = []
        for object_id in objects:
            t0 = time.perf_counter()
            r = requests.post(f"{url}/api/v1/objects/{object_id}/inspections", json={"quality": 4, "redshift": 1.0},
                              headers={"Authorization": f"Bearer {token}"}, timeout=60)
            r.raise_for_status()
            api.append(1e3 * (time.perf_counter() - t0))
        med = statistics.median
        print(f"keypress (Enter) to stored record, as the page measures it: median {med(browser_ms):.0f} ms, "
              f"max {max(browser_ms):.0f} ms; server CPU per grade {med(cpu_ms):.0f} ms; "
              f"the same POST from requests: median {med(api):.0f} ms, max {max(api):.0f} ms")
    finally:
        stop(proc)
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=pathlib.Path, help="catalog-only demo root (1,000,000 spectra)")
    parser.add_argument("--objects", type=pathlib.Path, help="demo root with products (the full demo)")
    parser.add_argument("--grading", type=pathlib.Path, help="a demo root to grade objects in (copied first)")
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args(argv)
    if args.catalog:
        catalog_bench(args.catalog, args.repeat)
    if args.objects:
        object_bench(args.objects, args.repeat)
    if args.grading:
        grading_bench(args.grading, args.repeat)
    if not (args.catalog or args.objects or args.grading):
        parser.error("give --catalog ROOT, --objects ROOT and/or --grading ROOT")


if __name__ == "__main__":
    sys.exit(main())
