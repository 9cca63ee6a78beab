"""download() of ~200 demo FITS files through a proxy adding 50 ms round-trip time, 1 / 8 / 16 workers (issue 16.3).

Serves a copy of the small demo archive (catalog copied, FITS files hard-linked) with
``campfire serve`` in its own process, puts :mod:`latency_proxy` (its own process too)
in front of it, and downloads the same N files into empty data_dirs with
``download_files(..., max_workers=W)`` — the executor of ``cf.download()``: streamed to
``.part``, sha256-verified, renamed, recorded in ``local_files``. Each download runs in
a child process, so its CPU (``client``) is its own; the server's CPU is read from
/proc around it.

Side by side in the same run:

* ``bare``: urllib3 alone (one pooled connection per thread, read into memory and
  sha256-hashed, nothing written) — the floor of what the network and server allow;
* ``bare+write``: the same, streamed to ``<file>.part``, fsync'ed and renamed — the floor
  of a durable download on this disk (no resume, lock or catalog record);
* ``before``: the same download with the campfire of a git ref (``--before REF``,
  extracted with ``git archive`` into a temp dir; the server is this tree's),
  interleaved with ``after`` (this tree) run by run, so the shared machine's load
  hits both alike.

    python bench/bench_download_latency.py [--rtt 0.05] [--files 200] [--before REF] [--repeat 2] [DEMO_ROOT]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

from bench_sync import cpu_of, cpu_self, start_server  # the same harness (this folder is on sys.path)

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent


# -- children -------------------------------------------------------------------------------------

def cpu_user() -> float:
    """User CPU seconds of this process (the system part is mostly the kernel writing pages,
    which on this VM swings from 0.1 to 1 ms per 340 kB file with the page cache's state)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_utime


def child_campfire(url: str, dest: str, workers: int, n_files: int, server_pid: int) -> dict:
    from campfire.catalog.filters import build_query
    from campfire.client import Campfire
    from campfire.graphs.download import download_files

    cf = Campfire(base_url=url, data_dir=dest)
    cf.sync()
    query = build_query("spectra", limit=n_files, sort="spectrum_id")
    t0, c0, u0, s0 = time.perf_counter(), cpu_self(), cpu_user(), cpu_of(server_pid)
    result = download_files(cf.remote_catalog, cf.data_dir, query, max_workers=workers, progress=False)
    wall, cpu, server = time.perf_counter() - t0, cpu_self() - c0, cpu_of(server_pid) - s0
    assert result["downloaded"] == n_files and not result["failed"], result
    return {"wall": wall, "client": cpu, "user": cpu_user() - u0, "server": server, "bytes": result["bytes"],
            "files": result["downloaded"]}


def child_bare(url: str, dest: str, workers: int, n_files: int, server_pid: int, write: bool = False) -> dict:
    """urllib3 alone: GET each file on a per-thread pooled connection, sha256 it in memory
    (``write``: also stream it to ``<file>.part``, fsync, rename — a durable write, no more)."""
    import concurrent.futures
    import hashlib
    import sqlite3

    import urllib3

    conn = sqlite3.connect(pathlib.Path(dest) / "meta" / "campfire.db")
    rows = conn.execute("SELECT spectrum_id, file_hash FROM spectra ORDER BY spectrum_id LIMIT ?",
                        (n_files,)).fetchall()
    conn.close()
    pool = urllib3.PoolManager(maxsize=workers)

    def one(row):
        r = pool.request("GET", f"{url}/api/v1/spectra/{row[0]}/file", preload_content=False)
        h = hashlib.sha256()
        n = 0
        out = open(pathlib.Path(dest) / f"{row[0]}.fits.part", "wb") if write else None
        for block in r.stream(1 << 20):
            h.update(block)
            n += len(block)
            if out is not None:
                out.write(block)
        r.release_conn()
        if out is not None:
            out.flush()
            os.fsync(out.fileno())
            out.close()
            os.replace(out.name, out.name[:-5])
        assert h.hexdigest() == row[1], row[0]
        return n

    t0, c0, u0, s0 = time.perf_counter(), cpu_self(), cpu_user(), cpu_of(server_pid)
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        nbytes = sum(ex.map(one, rows))
    wall, cpu, server = time.perf_counter() - t0, cpu_self() - c0, cpu_of(server_pid) - s0
    return {"wall": wall, "client": cpu, "user": cpu_user() - u0, "server": server, "bytes": nbytes,
            "files": len(rows)}


def run_child(kind: str, tree: pathlib.Path, url: str, dest: pathlib.Path, workers: int, n_files: int,
              server_pid: int, env: dict) -> dict:
    env = dict(env, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, __file__, "--child", kind, url, str(dest), str(workers), str(n_files),
                          str(server_pid)], env=env, capture_output=True, text=True, timeout=900)
    if out.returncode:
        raise RuntimeError(f"{kind} child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- parent ---------------------------------------------------------------------------------------

def copy_archive(src: pathlib.Path, dest: pathlib.Path) -> None:
    """Catalog copied (the server writes aggregates into it), FITS files hard-linked (or copied)."""
    (dest / "meta").mkdir(parents=True)
    shutil.copy2(src / "meta" / "campfire.db", dest / "meta" / "campfire.db")

    def link(a, b):
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src / "products", dest / "products", copy_function=link)


def start_proxy(target: str, rtt: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(HERE / "latency_proxy.py"), target, "--rtt", str(rtt)],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("proxy "):
        proc.kill()
        raise RuntimeError(f"latency proxy did not start: {line!r}")
    return proc, "http://" + line.split()[1]


def extract_ref(ref: str, dest: pathlib.Path) -> pathlib.Path:
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "campfire"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=None, help="demo archive (default $CAMPFIRE_TEST_DEMO_ROOT "
                        "or campfire.demo.ensure('small'))")
    parser.add_argument("--rtt", type=float, default=0.05)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--workers", default="1,8,16")
    parser.add_argument("--before", default=None, help="git ref of the 'before' client (e.g. integ)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)

    if args.root or os.environ.get("CAMPFIRE_TEST_DEMO_ROOT"):
        src = pathlib.Path(args.root or os.environ["CAMPFIRE_TEST_DEMO_ROOT"])
    else:
        import campfire.demo

        src = campfire.demo.ensure("small")
    work = pathlib.Path(tempfile.mkdtemp(prefix="campfire-latency-bench-"))
    env = dict(os.environ, CAMPFIRE_CONFIG_DIR=str(work / "config"))
    os.environ["CAMPFIRE_CONFIG_DIR"] = env["CAMPFIRE_CONFIG_DIR"]
    trees = {"after": REPO}
    if args.before:
        # a git ref, or a directory that holds a campfire package (an experiment's tree)
        trees["before"] = (pathlib.Path(args.before) if os.path.isdir(os.path.join(args.before, "campfire"))
                           else extract_ref(args.before, work / "before"))
    server = proxy = None
    try:
        archive = work / "archive"
        copy_archive(src, archive)
        server, direct = start_server(archive)
        proxy, url = start_proxy(direct.removeprefix("http://"), args.rtt)
        # one synced data_dir as the template of every run (sync is not what is timed)
        subprocess.run([sys.executable, "-c", "import sys; from campfire.client import Campfire; "
                        "Campfire(base_url=sys.argv[1], data_dir=sys.argv[2]).sync()", url, str(work / "template")],
                       env=dict(env, PYTHONPATH=str(REPO)), check=True)
        print(f"{args.files} demo files through a {args.rtt * 1000:.0f} ms RTT loopback proxy; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine)")
        results: dict[tuple[str, int], list[dict]] = {}
        k = 0
        for rep in range(args.repeat):
            for workers in [int(w) for w in args.workers.split(",")]:
                kinds = ["bare", "bare+write"] + list(trees)
                kinds = kinds if rep % 2 == 0 else kinds[::-1]
                for kind in kinds:
                    k += 1
                    dest = work / f"run{k}"
                    shutil.copytree(work / "template", dest)
                    tree = trees.get(kind, REPO)
                    res = run_child(kind if kind.startswith("bare") else "campfire", tree, url, dest, workers,
                                    args.files, server.pid, env)
                    results.setdefault((kind, workers), []).append(res)
                    # kept until the end: on ext4 without a journal, freshly removed inodes make
                    # the next run's file creations scan past them (whichever kind came next paid)
        print(f"{'':10} {'workers':>7} {'wall s':>7} {'files/s':>8} {'speed-up':>8} {'client ms/file':>15} "
              f"{'of it user':>10} {'server ms/file':>15}")
        for kind in ["bare", "bare+write", *trees]:
            one = min(r["wall"] for r in results.get((kind, 1), [{"wall": float("nan")}]))
            for workers in [int(w) for w in args.workers.split(",")]:
                runs = results[(kind, workers)]
                best = min(runs, key=lambda r: r["wall"])
                n = best["files"]
                client = min(r["client"] for r in runs) / n * 1000
                user = min(r["user"] for r in runs) / n * 1000
                srv = min(r["server"] for r in runs) / n * 1000
                print(f"{kind:10} {workers:>7} {best['wall']:>7.2f} {n / best['wall']:>8.0f} {one / best['wall']:>7.1f}x "
                      f"{client:>15.2f} {user:>10.2f} {srv:>15.2f}")
        mb = next(iter(results.values()))[0]["bytes"] / 1e6
        print(f"({mb:.0f} MB in all, best of {args.repeat}; floor at {args.rtt * 1000:.0f} ms RTT: "
              f"{args.files} x RTT / workers)")
    finally:
        for p in (proxy, server):
            if p is not None:
                p.terminate()
                p.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, url, dest, workers, n_files, pid = sys.argv[2:8]
        if kind.startswith("bare"):
            result = child_bare(url, dest, int(workers), int(n_files), int(pid), write=kind == "bare+write")
        else:
            result = child_campfire(url, dest, int(workers), int(n_files), int(pid))
        print(json.dumps(result))
    else:
        main()
