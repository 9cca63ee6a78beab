"""The batch pipeline per core: where ``calibrate_all``'s time goes per object, before and after.

    python bench/bench_pipeline.py stages ROOT [--field egs] [--ref integ]   # per-stage CPU per object
    python bench/bench_pipeline.py scale ROOT [--field egs] [--ref integ]    # objects/s on 1 and 2 workers
    python bench/bench_pipeline.py timeline ROOT [--ref integ]   # what each of 2 workers did when

``stages`` runs the shipped ``workflows/calibrate_all.yaml`` (selection narrowed to one
field when ``--field`` is given) in this process on the synchronous scheduler, after a
warm-up run (imports, numba kernels), with a CPU-time stopwatch around each stage's
function: open (the file reader), calibrate, resample, stack, write FITS, write zarr
(chunk writers), plots; "other" is the rest of the run (graph building, scheduling,
summary rows, the ECSV and provenance files). ``scale`` runs it end to end on a
``distributed.LocalCluster`` of 1 and then 2 worker processes (one thread each; warmed
up), exactly as ``campfire run --scheduler tcp://...`` would, after a small run in the same
process (the client's imports are paid before either timed run, not by the first one only).

``timeline`` runs it once on 2 workers with distributed's task stream and prints, per worker,
its busy and idle time, when its first and last task of the run ran and when it drew the
quick-look PNGs (the run's largest tasks), against the run's end.

``--ref REF`` runs the same measurement, interleaved, on a checkout of git ref REF (a
temporary worktree), so before and after share the machine's state. The archive's files
are read right before each timed run (page cache warm: the figures are CPU, not disk; this
VM's memory manager pages out file pages left idle for about a minute, so one read at the
start is not enough).

``scale`` also checks that every run wrote the same outputs: a digest of every output
file's bytes (FITS, zarr, ECSV, provenance; a PNG's decoded pixels, so its zlib level does not
count), with the run's timestamp and the workflow copy's path masked; and splits
the CPU of this process into its main thread (the client: selection, graph, submission,
summary) and its other threads (the LocalCluster's scheduler, the nannies, the comms: a
LocalCluster's nannies live in the process that starts it).
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import re
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
STAGES = ("open", "calibrate", "resample", "stack", "write FITS", "write zarr", "plots")


def _workflow(root: str, field: str | None, tmp: pathlib.Path, limit: int | None = None) -> pathlib.Path:
    text = (HERE.parent / "workflows" / "calibrate_all.yaml").read_text().replace("archive: demo", f"archive: {root}")
    if field:
        text = text.replace("  has_photometry: true", f"  has_photometry: true\n  fields: [{field}]")
    if limit:
        text = text.replace("  has_photometry: true", f"  has_photometry: true\n  limit: {limit}")
    path = tmp / f"calibrate_all{'_' + str(limit) if limit else ''}.yaml"
    path.write_text(text)
    return path


def _warm_files(root: str, field: str | None) -> None:
    for path in glob.glob(os.path.join(root, "products", "*", "*.fits")):
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass


def _png_pixels(path: pathlib.Path) -> bytes:
    """A PNG's size, mode and pixels: what the image is, not how it was compressed."""
    from PIL import Image

    with Image.open(path) as im:
        return f"{im.size} {im.mode}".encode() + b"\0" + im.tobytes()


def _digest(outdir: pathlib.Path, masks: list[str]) -> dict:
    """sha256 over every output file's path and bytes (a PNG's pixels), timestamps and ``masks`` (paths) masked."""
    h = hashlib.sha256()
    files = sorted(p for p in outdir.rglob("*") if p.is_file())
    stamp = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+]00:00")
    for p in files:
        data = stamp.sub(b"TIME", _png_pixels(p) if p.suffix == ".png" else p.read_bytes())
        for m in masks:
            data = data.replace(m.encode(), b"PATH")
        h.update(str(p.relative_to(outdir)).encode() + b"\0" + hashlib.sha256(data).digest())
    return {"files": len(files), "sha256": h.hexdigest()[:16]}


def _campfire_file() -> str:
    import campfire

    return campfire.__file__


def _thread_cpu() -> tuple[float, float]:
    """CPU s of this process's main thread and of all its other threads."""
    import psutil

    main = threading.main_thread().native_id
    times = {t.id: t.user_time + t.system_time for t in psutil.Process().threads()}
    return times.get(main, 0.0), sum(v for k, v in times.items() if k != main)


def _instrument(clock: dict[str, float]) -> None:
    """Wrap each stage's function in a CPU stopwatch (before the graph is built)."""
    import functools

    from campfire.graphs import collection, zarr_out
    from campfire.tasks import batch
    from campfire.workflows import outputs

    def timed(stage, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            t0 = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                clock[stage] = clock.get(stage, 0.0) + time.process_time() - t0
        return wrapper

    collection.open_items = timed("open", collection.open_items)
    batch.calibrate_items = timed("calibrate", batch.calibrate_items)
    batch.resample_items = timed("resample", batch.resample_items)
    batch.stack_object_items = timed("stack", batch.stack_object_items)
    outputs.write_fits = timed("write FITS", outputs.write_fits)
    # every PNG is drawn by _draw_plot (here: no plot processes on the synchronous scheduler)
    outputs._draw_plot = timed("plots", outputs._draw_plot)
    zarr_out.write_chunk = timed("write zarr", zarr_out.write_chunk)


def run_stages(root: str, field: str | None) -> dict:
    from campfire.workflows.runner import run_workflow

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-pipe-"))
    wf = _workflow(root, field, tmp)
    quiet = dict(progress=False, echo=lambda _: None)
    # warm-up: imports, compiled kernels, a plot (the first 30 spectra)
    run_workflow(_workflow(root, field, tmp, limit=30), scheduler="synchronous", output=tmp / "warm", force=True,
                 **quiet)
    clock: dict[str, float] = {}
    _instrument(clock)
    _warm_files(root, field)
    c0, t0 = time.process_time(), time.perf_counter()
    s = run_workflow(wf, scheduler="synchronous", output=tmp / "out", force=True, **quiet)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    shutil.rmtree(tmp, ignore_errors=True)
    n = s["objects"]["done"] + s["objects"]["failed"]
    clock["other"] = cpu - sum(clock.values())
    return {"objects": n, "spectra": s["spectra"]["processed"], "failed": s["objects"]["failed"], "cpu": cpu,
            "wall": wall, "ms_per_object": {k: v / n * 1e3 for k, v in clock.items()},
            "plots": sum(1 for r in s.get("rows", []) if r.get("png")) if "rows" in s else None}


def run_scale(root: str, field: str | None, workers=(1, 2)) -> dict:
    sys.path.insert(0, str(HERE))
    from bench_graphs import _warm, _worker_cpu, cluster

    import campfire
    from campfire.workflows.runner import run_workflow

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-pipe-"))
    wf = _workflow(root, field, tmp)
    # the client's warm-up (its first run's imports, ~0.15-0.3 s): else the first timed run (1 worker)
    # pays it and the second does not, which flatters the ratio
    run_workflow(_workflow(root, field, tmp, limit=30), scheduler="synchronous", output=tmp / "warm", force=True,
                 progress=False, echo=lambda _: None)
    out = {}
    masks = [str(tmp)]  # the workflow copy's path (the same length in every run)
    for n in workers:
        with cluster(n) as (c, client):
            client.run(_warm)
            where = {campfire.__file__, *client.run(_campfire_file).values()}
            _warm_files(root, field)
            cpu0, own0, threads0 = _worker_cpu(client), time.process_time(), _thread_cpu()
            s = run_workflow(wf, scheduler=c.scheduler_address, output=tmp / f"out{n}", force=True, progress=False,
                             echo=lambda _: None)
            cpu, own = _worker_cpu(client) - cpu0, time.process_time() - own0
            threads = [b - a for a, b in zip(threads0, _thread_cpu())]
        n_obj = s["objects"]["done"] + s["objects"]["failed"]
        # this process: the client (selection, graph, summary) and the LocalCluster's scheduler
        out[n] = {"objects": n_obj, "seconds": s["seconds"], "compute": s["timings"]["compute"],
                  "timings": s["timings"], "objects_per_s": n_obj / s["seconds"], "worker_cpu": cpu,
                  "client_scheduler_cpu": own, "client_cpu": threads[0],
                  "scheduler_cpu": threads[1], "outputs": _digest(tmp / f"out{n}", masks),
                  "campfire": sorted(where)}
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def run_timeline(root: str, field: str | None) -> dict:
    """Per worker of a 2-worker run: busy s, idle s between its first and last task, the span of its
    PNG tasks (s after the run started), from distributed's task stream."""
    sys.path.insert(0, str(HERE))
    from bench_graphs import _warm, cluster
    from distributed import get_task_stream

    from campfire.workflows.runner import run_workflow

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-pipe-"))
    wf = _workflow(root, field, tmp)
    with cluster(2) as (c, client):
        client.run(_warm)
        _warm_files(root, field)
        t0 = time.time()
        with get_task_stream(client) as ts:
            s = run_workflow(wf, scheduler=c.scheduler_address, output=tmp / "out", force=True, progress=False,
                             echo=lambda _: None)
    shutil.rmtree(tmp, ignore_errors=True)
    spans: dict[str, list] = {}
    for rec in ts.data:
        key = str(rec["key"])
        for ss in rec.get("startstops", ()):
            if ss["action"] == "compute" and "campfire-warm-up-" not in key:
                spans.setdefault(rec["worker"], []).append((ss["start"] - t0, ss["stop"] - t0, "-plot'" in key))
    workers = []
    for w, runs in sorted(spans.items()):
        runs.sort()
        busy = sum(b - a for a, b, _ in runs)
        plots = [(a, b) for a, b, p in runs if p]
        workers.append({"tasks": len(runs), "busy": busy, "first": runs[0][0], "last": max(b for _, b, _ in runs),
                        "idle": max(b for _, b, _ in runs) - runs[0][0] - busy, "plots": len(plots),
                        "plots_from": min((a for a, _ in plots), default=None),
                        "plots_to": max((b for _, b in plots), default=None)})
    return {"seconds": s["seconds"], "workers": workers}


def _child(mode: str, root: str, field: str | None, src: str) -> dict:
    """One measurement in a fresh process on the code at ``src``."""
    env = dict(os.environ, PYTHONPATH=src)
    code = (f"import sys, json; sys.path.insert(0, {str(HERE)!r}); import bench_pipeline as b; "
            f"print('RESULT', json.dumps(b.run_{mode}({root!r}, {field!r})))")
    # run from an empty directory: no checkout's dask-config.yaml (whose path, recorded in the outputs'
    # provenance, would differ in length between checkouts), the same settings as the packaged defaults
    with tempfile.TemporaryDirectory(prefix="bench-cwd-") as cwd:
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=cwd)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    out = json.loads(line[7:], object_hook=lambda d: {int(k) if k.isdigit() else k: v for k, v in d.items()})
    for run in (out.values() if mode == "scale" else ()):
        wrong = [f for f in run["campfire"] if not os.path.realpath(f).startswith(os.path.realpath(src) + os.sep)]
        if wrong:
            raise RuntimeError(f"the run of {src} imported campfire from {wrong} (client or workers)")
    return out


def _checkout(ref: str) -> str:
    path = tempfile.mkdtemp(prefix="bench-ref-")
    subprocess.run(["git", "-C", str(HERE.parent), "worktree", "add", "--detach", path, ref], check=True,
                   capture_output=True)
    return path


def _built_checkout(ref: str) -> str:
    """:func:`_checkout` with the ref's C kernels built in place, as ``pip install -e`` builds them."""
    path = _checkout(ref)
    if os.path.exists(os.path.join(path, "setup.py")):
        subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=path, check=True,
                       capture_output=True)
    return path


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["stages", "scale", "timeline"])
    ap.add_argument("root", help="an archive root (e.g. the full demo)")
    ap.add_argument("--field", default=None, help="narrow the selection to one field (e.g. egs)")
    ap.add_argument("--ref", default=None, help="also run on this git ref (before), interleaved")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args(argv)
    _warm_files(args.root, args.field)
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    sources = {"after": str(HERE.parent)}
    before = _checkout(args.ref) if args.ref else None
    if before:
        sources = {"before": before, "after": str(HERE.parent)}
    results: dict[str, list] = {k: [] for k in sources}
    try:
        for _ in range(args.rounds):
            for label, src in sources.items():
                results[label].append(_child(args.mode, args.root, args.field, src))
                print(label, json.dumps(results[label][-1]), f"(load {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        if before:
            subprocess.run(["git", "-C", str(HERE.parent), "worktree", "remove", "--force", before], capture_output=True)
    if args.mode == "timeline":
        print("\n| tree | round | run s | worker | tasks | busy s | idle s | first–last task, s | PNG tasks | PNGs drawn, s |")
        print("|---|---:|---:|---:|---:|---:|---:|---|---:|---|")
        for label, runs in results.items():
            for i, r in enumerate(runs):
                for j, w in enumerate(r["workers"]):
                    drawn = f"{w['plots_from']:.2f}–{w['plots_to']:.2f}" if w["plots"] else "—"
                    print(f"| {label} | {i + 1} | {r['seconds']:.2f} | {j + 1} | {w['tasks']} | {w['busy']:.2f} | "
                          f"{w['idle']:.2f} | {w['first']:.2f}–{w['last']:.2f} | {w['plots']} | {drawn} |")
    elif args.mode == "stages":
        labels = list(results)
        best = {k: min(v, key=lambda r: r["cpu"]) for k, v in results.items()}
        print(f"\nCPU ms per object ({best[labels[0]]['objects']} objects, {best[labels[0]]['spectra']} spectra; "
              f"best of {args.rounds}):")
        print("| stage | " + " | ".join(labels) + " |")
        print("|---|" + "---:|" * len(labels))
        for stage in STAGES + ("other",):
            print(f"| {stage} | " + " | ".join(f"{best[k]['ms_per_object'].get(stage, 0.0):.2f}" for k in labels) + " |")
        print("| **total** | " + " | ".join(f"**{best[k]['cpu'] / best[k]['objects'] * 1e3:.2f}**" for k in labels)
              + " |")
        print("| objects/s (CPU) | " + " | ".join(f"{best[k]['objects'] / best[k]['cpu']:.1f}" for k in labels) + " |")
    else:
        digests: dict[tuple, list[str]] = {}
        for label, runs in results.items():
            for i, r in enumerate(runs):
                one, two = r[1], r[2]
                for n, x in ((1, one), (2, two)):
                    digests.setdefault((x["outputs"]["files"], x["outputs"]["sha256"]), []).append(
                        f"{label} round {i + 1} {n} worker{'s' if n > 1 else ''}")
                # two workers cannot take less wall time than their run's CPU (workers, client, scheduler)
                # spread over every core: the most 2 / 1 can be with this much CPU
                ceiling = one["seconds"] / ((two["worker_cpu"] + two["client_scheduler_cpu"]) / os.cpu_count())
                # the same with the 1-worker run's own CPU (its worker and client: the chain its wall time
                # cannot be shorter than) in place of its wall time, which the machine's other jobs stretch
                cpu_ceiling = (one["worker_cpu"] + one["client_cpu"]) / (
                    (two["worker_cpu"] + two["client_scheduler_cpu"]) / os.cpu_count())
                print(f"{label}: 1 worker {one['objects_per_s']:.1f} objects/s ({one['seconds']:.1f} s), 2 workers "
                      f"{two['objects_per_s']:.1f} objects/s ({two['seconds']:.1f} s): "
                      f"{two['objects_per_s'] / one['objects_per_s']:.2f}x (at most {ceiling:.2f}x with the 2-worker "
                      f"run's CPU on {os.cpu_count()} idle cores; {cpu_ceiling:.2f}x from both runs' CPU alone)")
                for n, x in ((1, one), (2, two)):
                    total = x["worker_cpu"] + x["client_scheduler_cpu"]
                    t = x["timings"]
                    print(f"    {n} worker{'s' if n > 1 else ' '}: CPU s workers {x['worker_cpu']:.1f}, client {x['client_cpu']:.1f}, scheduler + comms "
                          f"{x['scheduler_cpu']:.1f}; all {total:.1f} = {total / (os.cpu_count() * x['seconds']):.0%} "
                          f"of {os.cpu_count()} cores x wall; first task at {t.get('first_task_after_start')} s, "
                          f"after the compute {t.get('finish', float('nan')):.2f} s")
        if len(digests) == 1:
            print(f"outputs: identical in every run ({next(iter(digests))[0]} files)")
        else:
            print("outputs: DIFFERENT: " + "; ".join(f"{d[1]} ({d[0]} files): {', '.join(runs)}"
                                                     for d, runs in digests.items()))


if __name__ == "__main__":
    main()
