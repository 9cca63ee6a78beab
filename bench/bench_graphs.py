"""Graphs and workflows on a cluster: throughput, scaling, memory per worker, overhead.

    python bench/bench_graphs.py calibrate ROOT_FULL     # calibrate_all on the full demo, 1 and 2 workers
    python bench/bench_graphs.py population ROOT_FULL    # population stack of N = 1,000 and 10,000 spectra
    python bench/bench_graphs.py overhead [ROOT_CATALOG] # time to first task; scheduler overhead per task

Every run uses a real ``distributed.LocalCluster`` of worker *processes* (one thread
each); ``campfire run`` connects to it by address (``--scheduler tcp://...``), exactly
how it would use a multi-node cluster. Peak memory per worker is the largest RSS of
each worker process, sampled every 0.25 s from a second client while the graph runs.
"""
from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import sys
import tempfile
import threading
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
if __name__ == "__main__":  # run as a script from a checkout; imported (bench_pipeline), it leaves sys.path alone
    sys.path.insert(0, str(HERE.parent))


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _cpu() -> float:
    import psutil

    t = psutil.Process().cpu_times()
    return t.user + t.system


def _worker_cpu(client) -> float:
    return sum(client.run(_cpu).values())


def _load() -> str:
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


@contextlib.contextmanager
def cluster(n_workers: int, memory_limit: str = "4GB"):
    """The LocalCluster ``campfire run --workers N`` starts (its distributed settings: no statistical
    profiler, ...), kept running across the warm-up; a checkout from before
    ``campfire.graphs.scheduler.local_cluster`` started distributed's defaults, and gets them."""
    from distributed import Client

    try:
        from campfire.graphs.scheduler import local_cluster
    except ImportError:
        from distributed import LocalCluster as local_cluster

    with local_cluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                       memory_limit=memory_limit, silence_logs=40) as c, Client(c) as client:
        yield c, client


class PeakMemory:
    """Largest RSS seen per worker process while the block runs."""

    def __init__(self, client, every: float = 0.25):
        self.client, self.every = client, every
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()

    def _sample(self):
        try:
            for addr, rss in self.client.run(_rss).items():
                self.peak[addr] = max(self.peak.get(addr, 0), rss)
        except Exception:  # the cluster is shutting down
            pass

    def __enter__(self):
        self._sample()  # the baseline counts as a sample
        self.baseline = dict(self.peak)

        def loop():
            while not self._stop.wait(self.every):
                self._sample()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()

    def report(self) -> str:
        mb = [v / 2**20 for v in self.peak.values()]
        base = [v / 2**20 for v in self.baseline.values()]
        return f"peak RSS per worker {', '.join(f'{m:.0f}' for m in mb)} MB (idle {', '.join(f'{b:.0f}' for b in base)} MB)"


# ----------------------------------------------------------------------------- calibrate_all
def bench_calibrate(root: str, workers=(1, 2)) -> None:
    import dask

    from campfire.workflows.runner import run_workflow

    wf = HERE.parent / "workflows" / "calibrate_all.yaml"
    text = wf.read_text().replace("archive: demo", f"archive: {root}")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-cal-"))
    wf_local = tmp / "calibrate_all.yaml"
    wf_local.write_text(text)
    rates = {}
    for n in workers:
        out = tmp / f"out{n}"
        with cluster(n) as (c, client):
            # warm-up: every worker imports campfire and compiles its numba kernels once,
            # as a long-running cluster would have; the timed run starts after that
            client.run(_warm)
            load = _load()
            cpu0 = _worker_cpu(client)
            with PeakMemory(client, every=1.0) as mem:
                s = run_workflow(wf_local, scheduler=c.scheduler_address, output=out, progress=False,
                                 echo=lambda _: None)
            cpu = _worker_cpu(client) - cpu0
        n_obj = s["objects"]["done"] + s["objects"]["failed"]
        rate_total = n_obj / s["seconds"]
        rate_compute = n_obj / s["timings"]["compute"]
        rates[n] = (rate_total, rate_compute)
        print(f"calibrate_all on {n} worker{'s' if n > 1 else ''}: {n_obj} objects ({s['spectra']['processed']} spectra, "
              f"{s['objects']['failed']} failed) in {s['seconds']:.1f} s "
              f"(compute {s['timings']['compute']:.1f} s, first task after {s['timings']['first_task_after_start']} s): "
              f"{rate_total:.1f} objects/s end to end, {rate_compute:.1f} objects/s in compute; "
              f"worker CPU {cpu:.0f} s ({cpu / s['timings']['compute']:.2f} cores busy); {mem.report()}; "
              f"machine {load} at start")
        shutil.rmtree(out, ignore_errors=True)
    if 1 in rates and 2 in rates:
        print(f"speed-up 2 vs 1 worker: {rates[2][0] / rates[1][0]:.2f}x end to end, "
              f"{rates[2][1] / rates[1][1]:.2f}x in compute")
    shutil.rmtree(tmp, ignore_errors=True)


def _warm():
    import numpy as np

    from campfire.models import SpectrumData
    from campfire.tasks.resample import resample_spectra

    w = np.linspace(1, 2, 50)
    resample_spectra([SpectrumData(w, np.ones(50), np.ones(50) * 0.1)], np.linspace(1.1, 1.9, 20))
    return True


# ----------------------------------------------------------------------------- population
def bench_population(root: str, sizes=(1000, 10000)) -> None:
    from dataclasses import replace

    from campfire import Campfire
    from campfire.graphs.collection import LazySpectra
    from campfire.graphs.selection import refs_from_rows

    cf = Campfire(data_dir=root)
    rows = [r for r in cf.iter_spectra(gratings=["PRISM"])]
    base = refs_from_rows(cf, rows)
    grid = np.geomspace(0.6, 5.3, 800)
    for method in ("weighted_mean", "median"):
        for n in sizes:
            # N spectra: the archive's PRISM files, repeated under new ids when N is larger
            refs = [replace(base[i % len(base)], spectrum_id=f"{base[i % len(base)].spectrum_id}_{i // len(base)}",
                            object_id=f"{base[i % len(base)].object_id}_{i // len(base)}") for i in range(n)]
            lazy = LazySpectra.from_refs(refs, batch_size=200)
            stack = lazy.stack(method, by="all", grid=grid, split_every=8)
            with cluster(2) as (c, client):
                client.run(_warm)
                with PeakMemory(client, every=0.1) as mem:
                    t0 = time.perf_counter()
                    result = client.compute(stack, sync=True)
                    dt = time.perf_counter() - t0
            print(f"population {method} stack of N = {n:,} spectra on 2 workers: {dt:.1f} s "
                  f"({n / dt:.0f} spectra/s, {lazy.npartitions} batches, n_spectra={result.meta['n_spectra']}); "
                  f"{mem.report()}")


# ----------------------------------------------------------------------------- overhead
def bench_overhead(root: str | None) -> None:
    import dask

    from campfire.graphs.collection import LazySpectra
    from campfire.tasks.batch import SpectrumRef

    # scheduler overhead per task: 10,000 one-spectrum tasks that do (almost) nothing
    refs = [SpectrumRef(f"s{i}", object_id=f"o{i}", url=f"memory://nothing/s{i}.fits") for i in range(10_000)]
    for batch in (1, 200):
        lazy = LazySpectra.from_refs(refs, batch_size=batch, errors="record").download()
        n_tasks = len(dict(lazy.__dask_graph__()))
        with cluster(2) as (c, client):
            client.run(_warm)
            t0 = time.perf_counter()
            client.compute(lazy, sync=True)
            dt = time.perf_counter() - t0
        print(f"10,000 objects, batch size {batch}: {n_tasks:,} tasks (before fusing) on 2 workers in {dt:.2f} s = "
              f"{dt / n_tasks * 1e3:.3f} ms per task wall ({dt / (10_000) * 1e3:.3f} ms per object)")
    with dask.config.set(scheduler="threads"):
        lazy = LazySpectra.from_refs(refs, batch_size=1, errors="record").download()
        t0 = time.perf_counter()
        lazy.compute()
        dt = time.perf_counter() - t0
        print(f"same 20,000-task graph (batch size 1) on the threaded scheduler: {dt / (2 * 10_000) * 1e3:.3f} ms per task")
    if root is None:
        return
    # time from `campfire run` start to the first task, for 10,000 objects of the catalog-only demo
    from campfire.workflows.runner import run_workflow

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-ovh-"))
    wf = tmp / "ten_thousand.yaml"
    wf.write_text(f"""name: ten_thousand
archive: {root}
selection: {{gratings: [PRISM], limit: 10000}}
steps: [download, calibrate, {{resample: {{grid: {{start: 0.6, stop: 5.3, resolution: 300}}}}}}, {{stack: {{by: object}}}}]
outputs: {{plots: false}}
""")
    for sched in ("threads", "local"):
        if sched == "local":
            with cluster(2) as (c, client):
                client.run(_warm)
                s = run_workflow(wf, scheduler=c.scheduler_address, output=tmp / "o2", progress=False, echo=lambda _: None)
        else:
            s = run_workflow(wf, scheduler="threads", output=tmp / "o1", progress=False, echo=lambda _: None)
        print(f"campfire run over {s['objects']['total']:,} objects ({s['spectra']['total']:,} spectra, files absent: "
              f"every object fails at download) on {s['scheduler']}: first task {s['timings']['first_task_after_start']} s "
              f"after start (catalog selection {s['timings']['select']} s), {s['plan']['tasks']} tasks, "
              f"total {s['seconds']:.1f} s")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "overhead"
    arg = sys.argv[2] if len(sys.argv) > 2 else None
    print(f"# bench_graphs {what} ({os.cpu_count()} cores)")
    if what == "calibrate":
        bench_calibrate(arg, tuple(int(x) for x in sys.argv[3:]) or (1, 2))
    elif what == "population":
        bench_population(arg)
    elif what == "overhead":
        bench_overhead(arg)
    else:
        raise SystemExit(__doc__)
