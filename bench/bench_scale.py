"""Figures for the scaling page (docs/scaling.rst): query latency vs catalog size, downloads vs
connections at 50 ms per request, Dask throughput vs workers (measured 1-2, simulated more).

    python bench/bench_scale.py query   [--sizes 10000 100000 300000]
    python bench/bench_scale.py download ROOT [--files 200] [--delay 0.05]
    python bench/bench_scale.py dask     ROOT [--spectra 400]
    python bench/bench_scale.py simulate [--tasks 64] [--task-seconds 0.25]
    python bench/bench_scale.py delivery [--rounds 10]   # products on S3 (moto): redirect vs stream

Each prints a table; what is measured and what is modelled is said in the output.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import tempfile
import time


def _timed(fn, repeat=5):
    fn()  # warm-up
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def cmd_query(args) -> None:
    """Local (SQLite) query latency on catalogs of several sizes built by the catalog-only demo."""
    from campfire import Campfire
    from campfire.demo.catalog_only import build_catalog

    print("| spectra | objects | build s | file MB | filtered query (1 field, PRISM, z 4-6) ms | rows | "
          "cone 30\" ms | count(*) by grating ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix=f"cfscale-{n}-") as tmp:
            t = time.perf_counter()
            counts = build_catalog(pathlib.Path(tmp), n_spectra=n, progress=False)
            built = time.perf_counter() - t
            cf = Campfire(data_dir=tmp)
            field = cf.get_metadata()["fields"][0]
            rows = cf.query_spectra(fields=[field], gratings=["PRISM"], redshift_range=(4, 6))
            q = _timed(lambda: cf.query_spectra(fields=[field], gratings=["PRISM"], redshift_range=(4, 6)))
            obj = cf.query_objects(limit=1)[0]
            cone = _timed(lambda: cf.query_objects(cone_search=(float(obj["ra"]), float(obj["dec"]), 30.0)))
            conn = cf.local_catalog.conn
            agg = _timed(lambda: conn.execute("SELECT grating, count(*) FROM spectra GROUP BY grating").fetchall())
            size = (pathlib.Path(tmp) / "meta" / "campfire.db").stat().st_size / 1e6
            print(f"| {counts['spectra']:,} | {counts['objects']:,} | {built:.1f} | {size:.0f} | {q * 1e3:.1f} | "
                  f"{len(rows):,} | {cone * 1e3:.2f} | {agg * 1e3:.1f} |", flush=True)
            cf.local_catalog.close()


def cmd_download(args) -> None:
    """cf.download() of N files vs max_workers, the server answering every request 50 ms late."""
    import shutil

    from campfire import Campfire
    from campfire.server.faults import FaultInjector
    from campfire.server.testing import ServerThread

    faults = FaultInjector()
    faults.flaky("/file", actions=(float(args.delay),), rate=1.0)  # every file request stalls: one RTT per file
    server = ServerThread(args.root, faults=faults).start()
    try:
        print(f"{args.files} files, {args.delay * 1e3:.0f} ms added to every file request (server side)")
        print("| max_workers | wall s | files/s | MB/s | vs 1 |")
        print("|---:|---:|---:|---:|---:|")
        base = None
        for workers in args.workers:
            with tempfile.TemporaryDirectory(prefix="cfscale-dl-") as tmp:
                os.environ["CAMPFIRE_CONFIG_DIR"] = os.path.join(tmp, "cfg")
                cf = Campfire(base_url=server.url, data_dir=os.path.join(tmp, "client"))
                cf.sync()
                obs = sorted({r["observation"] for r in cf.iter_spectra()})
                # enough observations for N files
                chosen, n = [], 0
                for o in obs:
                    k = len(cf.query_spectra(observations=[o]))
                    chosen.append(o)
                    n += k
                    if n >= args.files:
                        break
                t = time.perf_counter()
                result = cf.download(observations=chosen, max_workers=workers)
                wall = time.perf_counter() - t
                base = base or result["downloaded"] / wall
                rate = result["downloaded"] / wall
                print(f"| {workers} | {wall:.2f} | {rate:.0f} | {result['bytes'] / wall / 1e6:.1f} | "
                      f"{rate / base:.2f}× |", flush=True)
                shutil.rmtree(os.path.join(tmp, "client"), ignore_errors=True)
    finally:
        server.stop()


def cmd_dask(args) -> None:
    """open → resample → stack(by='all') of N spectra on a LocalCluster of 1 and 2 worker processes."""
    import numpy as np
    from distributed import Client, LocalCluster

    from campfire import Campfire

    cf = Campfire(data_dir=args.root)
    grid = np.geomspace(0.7, 5.2, 600)
    print("| workers | spectra | wall s | spectra/s | vs 1 |")
    print("|---:|---:|---:|---:|---:|")
    base = None
    for n in (1, 2):
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster):
            lazy = cf.lazy_spectra(gratings=["PRISM"], batch_size=20)
            lazy.resample(grid).stack(by="all", grid=grid).compute()  # warm-up: imports, numba
            t = time.perf_counter()
            lazy = cf.lazy_spectra(gratings=["PRISM"], batch_size=20)
            lazy.resample(grid).stack(by="all", grid=grid).compute()
            wall = time.perf_counter() - t
        rate = len(lazy) / wall
        base = base or rate
        print(f"| {n} | {len(lazy)} | {wall:.2f} | {rate:.0f} | {rate / base:.2f}× |", flush=True)


def _sleep_task(i, seconds):
    time.sleep(seconds)
    return i


def cmd_simulate(args) -> None:
    """Simulated workers: tasks that cost T seconds of waiting (no CPU) on W worker threads.

    Stands in for W workers each spending T per batch (I/O-bound or on other machines): what
    remains is the scheduler's own cost per task, the limit a bigger cluster meets.
    """
    from distributed import Client, LocalCluster

    print(f"{args.tasks} tasks × {args.task_seconds} s each (a batch's cost), 2 processes × W/2 threads")
    print("| simulated workers | wall s | ideal s | efficiency |")
    print("|---:|---:|---:|---:|")
    for w in args.workers:
        with LocalCluster(n_workers=2, threads_per_worker=max(1, w // 2), processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.gather(client.map(_sleep_task, range(4), seconds=0.0, pure=False))
            t = time.perf_counter()
            client.gather(client.map(_sleep_task, range(args.tasks), seconds=args.task_seconds, pure=False))
            wall = time.perf_counter() - t
        ideal = args.tasks * args.task_seconds / w
        print(f"| {w} | {wall:.2f} | {ideal:.2f} | {ideal / wall:.0%} |", flush=True)


def cmd_delivery(args) -> None:
    """Server CPU per downloaded MB with the products on S3 (moto on loopback): redirect vs stream.

    ``campfire serve`` runs in its own process (its CPU time read with psutil); the client
    downloads the six DJA v4 spectra ``rounds`` times into fresh data_dirs.
    """
    import shutil
    import socket
    import subprocess
    import sys

    import fsspec
    import psutil
    from moto.server import ThreadedMotoServer

    from campfire import Campfire
    from campfire.archive import ingest

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    os.environ.update(AWS_ENDPOINT_URL=f"http://{host}:{port}", AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    tmp = tempfile.mkdtemp(prefix="cfscale-s3-")
    try:
        fsspec.filesystem("s3").mkdir("bench")
        root = os.path.join(tmp, "archive")
        ingest(root, ["/work/shared/data/real/spectra/dja_v4"], products_url="s3://bench/dja", fit=False,
               scheduler="threads", progress=False)
        print(f"6 DJA v4 spectra (14 MB) × {args.rounds} rounds, products on moto S3, server in its own process")
        print("| delivery | wall s | MB/s | server CPU s | server CPU ms per MB |")
        print("|---|---:|---:|---:|---:|")
        for mode in ("redirect", "stream"):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                free = s.getsockname()[1]
            proc = subprocess.Popen([sys.executable, "-m", "campfire", "serve", root, "--port", str(free),
                                     "--products-delivery", mode], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            try:
                url = f"http://127.0.0.1:{free}"
                for _ in range(200):
                    try:
                        import requests

                        requests.get(url + "/api/v1/health", timeout=1)
                        break
                    except Exception:  # noqa: BLE001 - not up yet
                        time.sleep(0.1)
                os.environ["CAMPFIRE_CONFIG_DIR"] = os.path.join(tmp, "cfg")
                cpu0 = psutil.Process(proc.pid).cpu_times()
                t, total = time.perf_counter(), 0
                for i in range(args.rounds):
                    cf = Campfire(base_url=url, data_dir=os.path.join(tmp, f"client-{mode}-{i}"))
                    cf.sync()
                    total += cf.download(max_workers=4)["bytes"]
                    shutil.rmtree(os.path.join(tmp, f"client-{mode}-{i}"))
                wall = time.perf_counter() - t
                cpu1 = psutil.Process(proc.pid).cpu_times()
                cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
                print(f"| {mode} | {wall:.2f} | {total / wall / 1e6:.1f} | {cpu:.2f} | {cpu / (total / 1e6) * 1e3:.1f} |",
                      flush=True)
            finally:
                proc.terminate()
                proc.wait(10)
    finally:
        moto.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("query")
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 300_000])
    p.set_defaults(func=cmd_query)
    p = sub.add_parser("download")
    p.add_argument("root")
    p.add_argument("--files", type=int, default=200)
    p.add_argument("--delay", type=float, default=0.05)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 4, 16])
    p.set_defaults(func=cmd_download)
    p = sub.add_parser("dask")
    p.add_argument("root")
    p.set_defaults(func=cmd_dask)
    p = sub.add_parser("simulate")
    p.add_argument("--tasks", type=int, default=64)
    p.add_argument("--task-seconds", type=float, default=0.25)
    p.add_argument("--workers", type=int, nargs="+", default=[2, 4, 8, 16, 32])
    p.set_defaults(func=cmd_simulate)
    p = sub.add_parser("delivery")
    p.add_argument("--rounds", type=int, default=10)
    p.set_defaults(func=cmd_delivery)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
