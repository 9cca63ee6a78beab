"""sync() of the 1,000,000-spectrum demo catalog over loopback (issue 4).

Starts ``campfire serve`` in its own process over the ``catalog`` demo (building it
first if needed), logs in as a user who is a member of every program (so all 1M
spectra are visible), then times:

* a full ``cf.sync()`` into an empty data_dir — one streamed gzip NDJSON response;
* an unchanged re-sync (incremental, ``since`` cursor);
* a re-sync after the server changed 1,000 spectra (a small delta);
* the raw export transfer alone (bytes on the wire, MB/s), to split server+network
  from client-side loading.

    python bench/bench_sync.py [CATALOG_ROOT]   # default: a temp dir, built with --size catalog
"""
from __future__ import annotations

import datetime as dt
import os
import pathlib
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time


def start_server(root: pathlib.Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "campfire", "serve", str(root), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise RuntimeError("server exited")
        m = re.search(r"running on (http://127\.0\.0\.1:\d+)", line)
        if m:
            return proc, m.group(1)
    raise RuntimeError("server did not start")


def main(root: str | None = None) -> None:
    import requests

    import campfire.demo
    from campfire.client import Campfire
    from campfire.server.auth import add_user

    root = pathlib.Path(root or tempfile.mkdtemp(prefix="campfire-catalog-"))
    if not (root / "meta" / "campfire.db").exists():
        t0 = time.perf_counter()
        campfire.demo.build(root, size="catalog")
        print(f"built catalog demo in {time.perf_counter() - t0:.1f} s at {root}")
    conn = sqlite3.connect(root / "meta" / "campfire.db")
    n_spec = conn.execute("SELECT count(*) FROM spectra").fetchone()[0]
    n_obj = conn.execute("SELECT count(*) FROM objects").fetchone()[0]
    n_phot = conn.execute("SELECT count(*) FROM photometry").fetchone()[0]
    programs = [r[0] for r in conn.execute("SELECT program_id FROM programs")]
    conn.close()
    print(f"catalog: {n_spec:,} spectra, {n_obj:,} objects, {n_phot:,} photometry rows, {len(programs)} programs")
    add_user(root, "bench", "bench-password", programs=programs)  # member of everything: all rows visible

    work = pathlib.Path(tempfile.mkdtemp(prefix="campfire-sync-bench-"))
    os.environ["CAMPFIRE_CONFIG_DIR"] = str(work / "config")
    proc, url = start_server(root)
    try:
        cf = Campfire(base_url=url, data_dir=work / "client")
        cf.login("bench", "bench-password")
        t0 = time.perf_counter()
        counts = cf.remote_catalog.counts()  # first request of this visibility set computes its aggregates
        print(f"server: first request for this visibility set (aggregates) {time.perf_counter() - t0:.1f} s; "
              f"visible {counts}")

        # raw transfer: what the wire carries, without loading
        token = cf.remote_catalog._access_token()
        t0 = time.perf_counter()
        r = requests.get(f"{url}/api/v1/export", headers={"Authorization": f"Bearer {token}"}, stream=True)
        nbytes = sum(len(c) for c in r.iter_content(1 << 20))
        raw = time.perf_counter() - t0
        print(f"export transfer alone: {nbytes / 1e6:.1f} MB gzip in {raw:.1f} s ({nbytes / 1e6 / raw:.1f} MB/s)")

        t0 = time.perf_counter()
        result = cf.sync()
        full = time.perf_counter() - t0
        size = (work / "client" / "meta" / "campfire.db").stat().st_size
        print(f"full sync: {full:.1f} s -> {result} ({size / 1e6:.0f} MB catalog)")

        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            cf.sync()
            times.append(time.perf_counter() - t0)
        print(f"unchanged re-sync: best {min(times):.2f} s, worst {max(times):.2f} s (3 runs)")

        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        conn = sqlite3.connect(root / "meta" / "campfire.db", timeout=60)
        with conn:
            conn.execute("UPDATE spectra SET reduction_version = 'v9', updated_at = ? WHERE spectrum_id IN "
                         "(SELECT spectrum_id FROM spectra ORDER BY spectrum_id LIMIT 1000)", (stamp,))
        conn.close()
        t0 = time.perf_counter()
        result = cf.sync()
        print(f"re-sync after 1,000 spectra changed on the server: {time.perf_counter() - t0:.2f} s -> {result}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
