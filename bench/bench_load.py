"""Load on one archive server: N concurrent clients, mixed queries and downloads (issue 8).

Starts the server in its own process over a copy of the small demo archive (loopback,
a free port), warms it up, then runs the load of tests/stress/loadgen.py — clients as
threads, then as processes — and prints requests/s, MB/s, p50/p99 latency overall and
per request kind, the error count (must be 0: every answer checked, every file's
sha256 verified) and the server's resident memory before and after. ``--soak N``
repeats the thread run N times and prints the memory after each, to tell a leak (a
steady climb) from caches filling up (growth that levels off).

    python bench/bench_load.py [--clients 8] [--seconds 20] [--soak 0] [--root DEMO_ROOT]

Default root: $CAMPFIRE_TEST_DEMO_ROOT, else a small seed-0 demo built into a temp dir.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import platform
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "stress"))  # loadgen + the server-process harness

MB = 2 ** 20


def demo_root(arg: str | None) -> pathlib.Path:
    import campfire.demo

    root = arg or os.environ.get("CAMPFIRE_TEST_DEMO_ROOT")
    if root:
        return pathlib.Path(root)
    root = pathlib.Path(tempfile.mkdtemp(prefix="campfire-demo-")) / "root"
    t0 = time.perf_counter()
    campfire.demo.build(root, size="small", seed=0, progress=False)
    print(f"built the small demo in {time.perf_counter() - t0:.0f} s at {root}")
    return root


def main(argv=None) -> None:
    from loadgen import run_load
    from stresskit import ServerProcess, copy_archive, free_port

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--soak", type=int, default=0, help="extra thread runs to follow the server's memory")
    ap.add_argument("--root", default=None)
    args = ap.parse_args(argv)

    src = demo_root(args.root)
    work = pathlib.Path(tempfile.mkdtemp(prefix="campfire-load-"))
    root = copy_archive(src, work / "root")
    db = root / "meta" / "campfire.db"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {load:.1f}; "
          f"server and clients share the cores")
    srv = ServerProcess(root, free_port()).start()
    try:
        boot = srv.rss_bytes()
        warm = run_load(srv.url, db, clients=3, seconds=3)
        print(f"server RSS after start {boot / MB:.0f} MB, after a 3 s warm-up ({warm.requests} requests, "
              f"{len(warm.errors)} errors) {srv.rss_bytes() / MB:.0f} MB\n")
        for processes in (False, True):
            report = run_load(srv.url, db, clients=args.clients, seconds=args.seconds, processes=processes,
                              rss=srv.rss_bytes)
            print(f"== clients as {'processes' if processes else 'threads'}")
            print(report.summary() + "\n")
        for i in range(args.soak):
            report = run_load(srv.url, db, clients=args.clients, seconds=args.seconds, rss=srv.rss_bytes)
            print(f"soak {i + 1}/{args.soak}: {report.requests} requests, {len(report.errors)} errors, "
                  f"p99 {report.percentile(99) * 1e3:.0f} ms, server RSS {report.rss_end / MB:.0f} MB")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
