"""The archive server's CPU per file download (``GET /spectra/{id}/file``), this tree against ``--before REF`` (issue 16.3).

Starts ``campfire serve`` of each tree over a copy of the demo archive (catalog copied,
FITS files hard-linked), each in its own process, optionally behind :mod:`latency_proxy`
(``--rtt``), and downloads the same N files with bare ``http.client`` (one kept-alive
connection per client thread, the body read and dropped: the client is not what is
measured). The server's CPU is read from ``/proc/<pid>/task/*/schedstat`` (nanoseconds,
every thread) around each pass, and split into the event loop's thread (uvicorn, h11,
the middleware, FastAPI's routing) and the worker threads (the route's own work). The
two servers are measured alternately, pass by pass, so the shared machine's load hits
both alike.

    python bench/bench_file_server.py [DEMO_ROOT] [--before REF] [--files 200] [--threads 1,8] [--rtt 0.05] [--rounds 3]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from bench_download_latency import copy_archive, extract_ref, start_proxy  # this folder is on sys.path
from bench_sync import start_server

REPO = pathlib.Path(__file__).resolve().parent.parent


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of every thread of ``pid`` (schedstat: nanosecond resolution, unlike /proc stat's ticks)."""
    out = {}
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(task.name)] = int((task / "schedstat").read_text().split()[0]) / 1e9
        except (OSError, ValueError):
            continue  # a thread that ended meanwhile
    return out


def visible_ids(url: str, n: int) -> list[str]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("GET", f"/api/v1/spectra?limit={n}&sort=spectrum_id&count=false")
    ids = [row[0] for row in json.loads(conn.getresponse().read())["rows"]]
    conn.close()
    if len(ids) < n:
        raise SystemExit(f"--files: the archive shows {len(ids)} spectra to an anonymous caller, asked for {n}")
    return ids


def one_pass(url: str, ids: list[str], threads: int, pid: int) -> dict:
    host, port = url.removeprefix("http://").split(":")

    def worker(chunk):
        conn = http.client.HTTPConnection(host, int(port))
        for sid in chunk:
            conn.request("GET", f"/api/v1/spectra/{sid}/file")
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{sid}: HTTP {resp.status}")
        conn.close()

    workers = [threading.Thread(target=worker, args=(ids[i::threads],)) for i in range(threads)]
    before, t0 = thread_cpu(pid), time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall, after = time.perf_counter() - t0, thread_cpu(pid)
    total = sum(after.values()) - sum(v for k, v in before.items() if k in after)
    main = after.get(pid, 0.0) - before.get(pid, 0.0)
    return {"wall": wall, "server": total / len(ids) * 1000, "loop": main / len(ids) * 1000}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=os.environ.get("CAMPFIRE_TEST_DEMO_ROOT"),
                        help="demo archive (default $CAMPFIRE_TEST_DEMO_ROOT)")
    parser.add_argument("--before", default=None, help="git ref of the 'before' server")
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--threads", default="1,8")
    parser.add_argument("--rtt", type=float, default=0.05, help="seconds of added round trip (0: direct)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if not args.root:
        raise SystemExit("DEMO_ROOT: give the demo archive (or set CAMPFIRE_TEST_DEMO_ROOT)")
    work = pathlib.Path(tempfile.mkdtemp(prefix="campfire-file-server-bench-"))
    procs = []
    try:
        trees = {"after": REPO}
        if args.before:
            trees["before"] = extract_ref(args.before, work / "before")
        urls, pids = {}, {}
        for name, tree in trees.items():
            copy_archive(pathlib.Path(args.root), work / f"archive-{name}")
            # `python -m campfire` puts its working directory first on sys.path: run it in the tree
            server, direct = start_server(work / f"archive-{name}", cwd=tree)
            procs.append(server)
            pids[name], urls[name] = server.pid, direct
            if args.rtt > 0:
                proxy, urls[name] = start_proxy(direct.removeprefix("http://"), args.rtt)
                procs.append(proxy)
        ids = visible_ids(urls["after"], args.files)
        print(f"{args.files} file requests, {'%.0f ms RTT proxy' % (args.rtt * 1000) if args.rtt else 'direct'}; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine)")
        results: dict[tuple[str, int], list[dict]] = {}
        for name in trees:
            one_pass(urls[name], ids, 8, pids[name])  # warm: page cache, connections, imports
        for rnd in range(args.rounds):
            for threads in [int(t) for t in args.threads.split(",")]:
                for name in (list(trees) if rnd % 2 == 0 else list(trees)[::-1]):
                    results.setdefault((name, threads), []).append(one_pass(urls[name], ids, threads, pids[name]))
        print(f"{'':8} {'threads':>7} {'server CPU ms/file (min / median)':>34} {'of it event loop':>17} {'wall s':>7}")
        for name in trees:
            for threads in [int(t) for t in args.threads.split(",")]:
                runs = results[(name, threads)]
                srv = [r["server"] for r in runs]
                print(f"{name:8} {threads:>7} {min(srv):>22.2f} / {statistics.median(srv):>5.2f}      "
                      f"{min(r['loop'] for r in runs):>17.2f} {min(r['wall'] for r in runs):>7.2f}")
        print(f"(load average {os.getloadavg()[0]:.1f} at the end; {args.rounds} rounds)")
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
