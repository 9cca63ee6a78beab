"""``campfire run WORKFLOW``: one workflow file → one Dask graph → outputs with provenance.

The run, in order:

1. validate the file (:mod:`campfire.workflows.schema`), merge the deployment's
   ``dask-config.yaml`` (:func:`campfire.graphs.scheduler.deployment_config`) and the
   file's ``cluster:`` settings into the Dask config for the run;
2. open the archive and resolve the selection (:func:`campfire.workflows.plan.select`);
3. skip objects whose outputs exist with the same *input key* unless ``force``
   (:func:`campfire.workflows.resume.completed`);
4. build the graph of the steps and outputs (:func:`campfire.workflows.plan.build_graph`);
5. ``--dry-run``: print the plan (objects, spectra, files to fetch and bytes, tasks,
   outputs) and stop; otherwise compute everything in **one** ``dask.compute`` on the
   chosen scheduler, with a progress bar (and the dashboard link when distributed);
6. write the population outputs, the summary table (ECSV), ``provenance.json`` and
   the run state (:func:`campfire.workflows.resume.next_state`), and print the summary.

A failing object (corrupt file, no usable band) is a row with its reason; it never
stops the batch. ``summary['ok']`` is False only when nothing succeeded or a
population stack failed.

Examples
--------
>>> summary = run_workflow('workflows/stack_lrds.yaml')              # doctest: +SKIP
>>> summary['objects']['done'], summary['outputs']['zarr']           # doctest: +SKIP
(31, '/.../results/stack_lrds/stack_lrds.zarr')
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import os
import sys
import threading
import time
from typing import Any, Callable

import dask

from campfire import config
from campfire.errors import ValidationError
from campfire.graphs.scheduler import deployment_config, find_deployment_file, parse_scheduler, run_context
from campfire.tasks.batch import Failure
from campfire.workflows import provenance as P
from campfire.graphs.failures import short_reason
from campfire.workflows.outputs import (
    OutDir,
    fits_path_for,
    output_dir,
    plots_in_processes,
    population_row,
    warm_plotting,
    write_json,
    write_population,
    write_summary_table,
)
from campfire.workflows.plan import build_graph, make_plan, plan_text, select
from campfire.workflows.resume import STATE_FILE, completed, next_state, write_state
from campfire.workflows.schema import load_workflow

__all__ = ["run_workflow", "plan_text", "summary_text", "STATE_FILE"]


# ------------------------------------------------------------------------------ computing
WARM_UP_PREFIX = "campfire-warm-up-"  # the keys of the workers' warm-up tasks (_warm_workers)


def _local_first_task_callback(stamp: dict):
    from dask.callbacks import Callback

    def pretask(key, dsk, state):
        if "first_task" not in stamp:
            stamp["first_task"] = time.perf_counter()

    return Callback(pretask=pretask)


@contextlib.contextmanager
def _progress(ctx, enabled: bool, stamp: dict):
    """A progress bar over every task for local schedulers (tqdm)."""
    cbs = [_local_first_task_callback(stamp)]
    if enabled:
        from tqdm.dask import TqdmCallback
        from tqdm.std import tqdm as std_tqdm

        cbs.append(TqdmCallback(desc="campfire run", tqdm_class=std_tqdm, file=sys.stderr, mininterval=0.5))
    with contextlib.ExitStack() as stack:
        for cb in cbs:
            stack.enter_context(cb)
        yield


def _compute(ctx, collections: list, progress: bool, stamp: dict) -> list:
    if ctx.client is None:
        with _progress(ctx, progress, stamp):
            return list(ctx.compute(*collections))
    from distributed import get_task_stream, progress as dprogress

    with get_task_stream(ctx.client) as ts:
        futures = ctx.client.compute(collections)
        if progress:
            dprogress(futures, notebook=False)
        results = ctx.client.gather(futures)
    # the run's own tasks: not the warm-up tasks submitted before it (which may end inside the window)
    starts = [s["start"] for rec in ts.data if not str(rec.get("key", "")).startswith(WARM_UP_PREFIX)
              for s in rec.get("startstops", ()) if s.get("action") == "compute"]
    if starts:
        stamp["first_task_wall"] = min(starts)
    return list(results)


# ------------------------------------------------------------------------------ the run
def run_workflow(
    path: str | os.PathLike,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    dry_run: bool = False,
    force: bool = False,
    output: str | os.PathLike | None = None,
    progress: bool | None = None,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run (or plan) a workflow file.

    Parameters
    ----------
    path : str or Path
        The workflow YAML file.
    scheduler : str, optional
        ``threads | processes | synchronous | local:N | tcp://HOST:PORT``; default the
        workflow's ``cluster.scheduler``, else ``campfire.graph.scheduler``.
    workers : int, optional
        Worker count; alone it starts a LocalCluster of N worker processes.
    dry_run : bool
        Print the plan and return it without running anything.
    force : bool
        Recompute outputs that are already complete.
    output : str or Path, optional
        Output directory (default: the workflow's ``outputs.dir``, else ``results/<name>``).
    progress : bool, optional
        Progress bar (default: when stderr is a terminal).
    echo : callable, optional
        Where the plan and summary lines go (default ``print``).

    Returns
    -------
    dict
        The summary: ``ok``, ``objects`` (total/done/failed/skipped), ``failures``
        (object, step, reason), ``outputs`` (paths), ``seconds``, ``scheduler``,
        ``dashboard``, ``plan``, ``tip`` (how a long threads run could go faster:
        :func:`threads_tip`, else None) ...
    """
    t0 = time.perf_counter()
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    echo = echo or print
    if progress is None:
        progress = sys.stderr.isatty()
    wf = load_workflow(path)

    deployment = find_deployment_file(path)
    settings = deployment_config(deployment)
    for key, value in (("batch-size", wf.cluster.batch_size), ("split-every", wf.cluster.split_every)):
        if value is not None:
            settings[f"campfire.graph.{key}"] = value
    with dask.config.set(settings):
        return _run(wf, deployment, scheduler=scheduler, workers=workers, dry_run=dry_run, force=force,
                    output=output, progress=progress, echo=echo, t0=t0, started=started)


def _run(wf, deployment, *, scheduler, workers, dry_run, force, output, progress, echo, t0, started) -> dict:
    where = (scheduler or wf.cluster.scheduler, workers if workers is not None else wf.cluster.workers)
    with contextlib.ExitStack() as stack:
        opened = None
        if not dry_run and parse_scheduler(*where)[0] == "address":
            # a running cluster: connect first, so its workers warm up while the selection runs
            opened = _open(stack, where, wf)
        return _run_in(stack, opened, where, wf, deployment, dry_run=dry_run, force=force, output=output,
                       progress=progress, echo=echo, t0=t0, started=started)


def _open(stack: contextlib.ExitStack, where: tuple, wf) -> tuple:
    """The run's context and, on a cluster, the worker warmed up to draw the quick-look PNGs."""
    ctx = stack.enter_context(run_context(*where))
    plot_worker = None
    if ctx.client is not None:
        plot_worker = _warm_workers(ctx.client, stack, plot_everywhere=wf.outputs.plots is True,
                                    **_warm_up_options(wf))
    return ctx, plot_worker


def _warm_up_options(wf) -> dict[str, bool]:
    """What a run's tasks will use for the first time on a worker: the quick-look figure, zarr,
    the resampling kernels (a resample step, or a stack, which resamples its inputs)."""
    return {"plots": wf.outputs.plots is not False, "zarr": bool(wf.outputs.zarr),
            "resample": any(s.name in ("resample", "stack") for s in wf.steps)}


def _warm_workers(client, stack: contextlib.ExitStack, *, plots: bool, plot_everywhere: bool,
                  **what) -> str | None:
    """Each worker's first use of a run (imports, the first figure) as a task of its own, started now.

    It then runs while the client selects, plans and submits (~1 s) instead of inside the
    run's first tasks; the graph's tasks queue behind it on each worker's thread. The
    futures are released when the run ends. Unless every object gets a quick-look PNG,
    only one worker starts matplotlib (~0.9 s of CPU: its imports, fonts, mathtext's
    parser, the first figure) and is returned: the PNGs are drawn there
    (``build_graph(plot_worker=...)``).
    """
    workers = sorted(client.scheduler_info().get("workers", {}))
    futures = [client.submit(_warm_up, workers=[addr], allow_other_workers=False, pure=False,
                             key=f"{WARM_UP_PREFIX}{i}-{time.time_ns()}", plots=plots and (plot_everywhere or i == 0),
                             **what)
               for i, addr in enumerate(workers)]
    stack.callback(futures.clear)
    return workers[0] if plots and not plot_everywhere and workers else None


def _warm_up(*, plots: bool, zarr: bool, resample: bool = False) -> None:
    """Import what a run's tasks use (this module imports the graph's and the outputs' code),
    draw one quick-look figure (matplotlib's first figure costs ~0.5 s more than the next) and
    make the first resampling call: ~1 ms with the C kernels built at install; where they are
    absent, numba's start-up and cache load (~0.5 s, once per worker process)."""
    import numpy as np

    from campfire.models import SpectrumData

    wave = np.linspace(1.0, 5.0, 64)
    spec = SpectrumData(wave, np.ones(64), np.full(64, 0.1), count=np.full(64, 2.0))
    if zarr:
        import zarr as _  # noqa: F401
    if resample:
        from campfire.tasks.resample import resample_spectra

        resample_spectra([spec], np.linspace(1.5, 4.5, 16))
    if plots:
        warm_plotting()


#: a run on the threads scheduler draws its quick-look PNGs in processes from this many on, and
#: gives each process at least this many (a process's start costs about what 4-6 PNGs do)
PLOTS_FOR_PROCESSES = 4
#: at most this many PNG processes (~80 MB each) however many threads and CPUs
MAX_PLOT_PROCESSES = 8


def plot_processes(ctx, plots: int) -> int:
    """How many processes draw a run's ``plots`` quick-look PNGs (0: the scheduler's own threads).

    ``campfire.graph.plot-processes``: ``auto`` gives a run on the threads scheduler
    drawing at least :data:`PLOTS_FOR_PROCESSES` PNGs one process per thread (PNGs hold
    the GIL: threads draw them one at a time), no more than the CPUs,
    :data:`MAX_PLOT_PROCESSES`, or one per :data:`PLOTS_FOR_PROCESSES` PNGs; a number
    applies to any threads run with PNGs; 0 never. The other schedulers' workers are
    processes already, and ``synchronous`` means one thing at a time.

    Examples
    --------
    >>> from campfire.graphs.scheduler import RunContext
    >>> plot_processes(RunContext("threads", 2), 29), plot_processes(RunContext("threads", 2), 1)  # 2 CPUs
    (2, 0)
    >>> with dask.config.set({"campfire.graph.plot-processes": 0}):
    ...     plot_processes(RunContext("threads", 2), 29)
    0
    """
    setting = config.get("graph.plot-processes")
    if setting != "auto" and (isinstance(setting, bool) or not isinstance(setting, int) or setting < 0):
        raise ValidationError(f"campfire.graph.plot-processes: expected 'auto' or a count >= 0, got {setting!r}")
    if ctx.kind != "threads" or plots < 1:
        return 0
    if setting == "auto":
        cpus = os.cpu_count() or 1
        if plots < PLOTS_FOR_PROCESSES or cpus < 2:
            return 0
        return min(ctx.n_workers, cpus, MAX_PLOT_PROCESSES, plots // PLOTS_FOR_PROCESSES)
    return setting


#: a run on threads whose compute takes this long (s) while keeping at most 1.5 cores or half of them busy
#: gets a tip
SLOW_THREADS_SECONDS = 10.0


def threads_tip(ctx, wall: float, cpu: float) -> str | None:
    """One line for a long run on threads that Python's GIL held to a fraction of its cores.

    Reading FITS, calibrating and drawing hold the GIL, so a run on the threads scheduler (the
    default) keeps about one core busy however many threads it has; a LocalCluster's worker
    processes do not share it (``calibrate_all`` on the full demo, 2 cores: 24.3 s on threads,
    13.1 s on ``local:2`` with the cluster's start). ``cpu`` is this process's CPU seconds
    during the compute (every thread); None when the run was short, had one core, or kept more
    than 1.5 cores or half of them busy.

    Examples
    --------
    >>> from campfire.graphs.scheduler import RunContext
    >>> threads_tip(RunContext("threads", 8), wall=60.0, cpu=66.0)  # doctest: +SKIP
    'tip: this run kept 1.1 of 8 cores busy (its threads share the GIL); --workers 8 ...'
    >>> threads_tip(RunContext("threads", 8), wall=3.0, cpu=3.3) is None
    True
    """
    cores = min(ctx.n_workers, os.cpu_count() or 1)
    if ctx.kind != "threads" or cores < 2 or wall < SLOW_THREADS_SECONDS or cpu / wall > max(1.5, cores / 2):
        return None
    return (f"tip: this run kept {cpu / wall:.1f} of {cores} cores busy (its threads share Python's GIL); "
            f"--workers {cores} (run_workflow(..., workers={cores})) runs it on a LocalCluster of {cores} "
            "processes, usually much faster for a run this long")


def _warm_table_writer() -> threading.Thread:
    """Import the summary table's writer in a thread while the compute runs.

    astropy.table and, through the ECSV header's YAML, astropy.coordinates: ~0.3 s of
    imports that would otherwise run after the compute, when nothing else can.
    """
    def warm():
        import io

        from astropy.table import Table

        Table({"a": [1]}).write(io.StringIO(), format="ascii.ecsv")

    thread = threading.Thread(target=warm, name="campfire-warm-table", daemon=True)
    thread.start()
    return thread


def _run_in(stack, opened, where, wf, deployment, *, dry_run, force, output, progress, echo, t0, started) -> dict:
    sel = select(wf, scheduler=where[0], workers=where[1])
    t_select = time.perf_counter()
    outdir = output_dir(output or wf.outputs.dir or os.path.join("results", wf.name))  # a path or an fsspec URL
    done = completed(wf, sel, outdir, force=force)
    prov = P.build_provenance(wf, sel.cf, sel.archive, sel.refs, started=started)
    if deployment is not None:
        prov["deployment_config"] = str(deployment)
    if len(done.objects) == len(sel.objects) and len(done.populations) == len(sel.populations):
        return _nothing_to_do(wf, sel, done, outdir, dry_run, echo, t0)
    if not dry_run and opened is None:
        opened = _open(stack, where, wf)  # a cluster to start: only when there is work
    ctx, plot_worker = opened or (None, None)

    graph = build_graph(wf, sel, done, outdir, prov, create=not dry_run, plot_worker=plot_worker)
    plan = make_plan(wf, sel, done, graph)
    if dry_run:
        echo(plan_text(wf, plan))
        return {"ok": True, "dry_run": True, "plan": plan, "seconds": round(time.perf_counter() - t0, 3)}

    outdir.mkdir()
    stamp: dict[str, float] = {}
    echo(f"campfire run {wf.name}: {plan['objects']['todo']} objects / {len(graph.todo_refs)} spectra "
         f"({len(done.objects)} objects complete, skipped) on {ctx.description}; {plan['tasks']} tasks")
    if ctx.dashboard_link:
        echo(f"  dashboard: {ctx.dashboard_link}")
    t_compute, cpu_compute = time.perf_counter(), time.process_time()
    table_writer = _warm_table_writer() if wf.outputs.table else None
    # the population stacks' PNGs too (drawn here after the compute, where no thread has started matplotlib)
    with plots_in_processes(plot_processes(ctx, graph.plots)):
        values = _compute(ctx, graph.collections, progress, stamp)
        t_done = time.perf_counter()
        tip = threads_tip(ctx, t_done - t_compute, time.process_time() - cpu_compute)
        description, dashboard = ctx.description, ctx.dashboard_link
        stack.close()  # the scheduler (a LocalCluster we started) is not needed for the outputs below
        got = dict(zip(graph.names, values)) if graph.names else {}
        rows = got.get("rows", [])

        # ---- population outputs (small: written here)
        failures = [{"object_id": r["object_id"], "id": r["spectrum_id"] or r["object_id"], "step": r["step"],
                     "reason": r["reason"]} for r in rows if r["status"] == "failed"]
        # spectra that failed inside objects that still succeeded with their other spectra
        spectrum_failures = [f for r in rows if r["status"] == "ok" for f in r.get("_input_failures", ())]
        populations: dict[str, Any] = {}
        zarr_path = outdir / wf.outputs.zarr if wf.outputs.zarr else None
        for lab in graph.population_todo:
            value = got[f"population:{lab}"]
            if isinstance(value, Failure):
                failures.append({"object_id": "", "id": lab, "step": value.step, "reason": value.reason})
                populations[lab] = {"status": "failed", "step": value.step, "reason": value.reason}
                continue
            populations[lab] = write_population(value, lab, sel.population_keys[lab], outdir, wf, prov, zarr_path)

    # ---- summary table, provenance, state
    skipped = [{"object_id": oid, "kind": "object" if sel.kind == "objects" else "spectrum", "status": "skipped",
                "step": "", "reason": "complete (inputs unchanged)", "redshift": ref.redshift,
                "fits": fits_path_for(str(outdir), ref, sel.kind) if sel.kind == "objects" else ""}
               for oid, ref in sel.objects.items() if oid in done.objects]
    population_rows = [population_row(lab, populations.get(lab) or {"status": "skipped",
                                                                      "reason": "complete (inputs unchanged)"})
                       for lab in sel.populations]
    if wf.outputs.table:
        table_writer.join()
        write_summary_table(outdir / wf.outputs.table, rows + skipped + population_rows, prov,
                            per_spectrum=sel.kind != "objects")
    write_json(outdir / "provenance.json", prov)
    ok_objects = _ok_objects(rows, sel.kind)
    write_state(outdir, next_state(sel, done, ok_objects, populations))

    failed_objects = {f["object_id"] for f in failures if f["object_id"]}
    if "first_task" in stamp:
        first = round(stamp["first_task"] - t0, 3)
    elif "first_task_wall" in stamp:
        first = round(stamp["first_task_wall"] - (time.time() - (time.perf_counter() - t0)), 3)
    else:
        first = None
    summary = {
        "ok": bool(ok_objects or not plan["objects"]["todo"]) and all(r.get("status") == "ok" for r in populations.values()),
        "workflow": wf.path,
        "objects": {"total": len(sel.objects), "done": len(ok_objects), "failed": len(failed_objects),
                    "skipped": len(done.objects)},
        "spectra": {"total": len(sel.refs), "processed": len(graph.todo_refs)},
        "failures": failures,
        "spectrum_failures": spectrum_failures,
        "populations": populations,
        "outputs": graph.outputs,
        "scheduler": description,
        "dashboard": dashboard,
        "plan": plan,
        "tip": tip,
        "seconds": round(time.perf_counter() - t0, 3),
        "timings": {
            "select": round(t_select - t0, 3),
            "compute": round(t_done - t_compute, 3),
            "first_task_after_start": first,
            "finish": round(time.perf_counter() - t_done, 3),
        },
    }
    echo(summary_text(summary))
    return summary


def _nothing_to_do(wf, sel, done, outdir: OutDir, dry_run: bool, echo, t0: float) -> dict:
    n_objects, n_pops = len(sel.objects), len(sel.populations)
    plan = make_plan(wf, sel, done, None, outdir)
    if dry_run:
        echo(plan_text(wf, plan))
    else:
        echo(f"campfire run {wf.name}: all {n_objects} objects and {n_pops} population stack(s) "
             f"are complete in {outdir} (inputs unchanged); nothing to do. Use --force to recompute.")
    return {"ok": True, "nothing_to_do": True, "dry_run": dry_run, "plan": plan,
            "objects": {"total": n_objects, "done": 0, "failed": 0, "skipped": n_objects},
            "failures": [], "spectrum_failures": [], "populations": {},
            "outputs": {"dir": str(outdir)}, "seconds": round(time.perf_counter() - t0, 3)}


def _ok_objects(rows: list[dict], kind: str) -> set[str]:
    if kind == "objects":
        return {r["object_id"] for r in rows if r["status"] == "ok"}
    bad = {r["object_id"] for r in rows if r["status"] != "ok"}
    return {r["object_id"] for r in rows} - bad


# ------------------------------------------------------------------------------ text
def summary_text(summary: dict) -> str:
    """The final summary, human-readable (objects done/failed/skipped, reasons, outputs, time)."""
    o = summary["objects"]
    lines = [f"done in {summary['seconds']:.1f} s on {summary['scheduler']}: {o['done']} objects ok, "
             f"{o['failed']} failed, {o['skipped']} skipped (complete)"]
    if summary.get("dashboard"):
        lines.append(f"  dashboard: {summary['dashboard']}")
    fails = summary["failures"]
    for fl in fails[:20]:
        who = fl["object_id"] or fl["id"]
        lines.append(f"  failed {who}: {fl['step']}: {short_reason(fl['reason'])}")
    if len(fails) > 20:
        lines.append(f"  ... {len(fails) - 20} more failures in the summary table")
    sfails = summary.get("spectrum_failures", [])
    if sfails:
        lines.append(f"  {len(sfails)} spectra left out of objects that succeeded with their other spectra:")
        for fl in sfails[:10]:
            lines.append(f"    {fl['id']}: {fl['step']}: {short_reason(fl['reason'])}")
        if len(sfails) > 10:
            lines.append(f"    ... {len(sfails) - 10} more in the summary table (failed_inputs)")
    for lab, r in summary["populations"].items():
        if r.get("status") == "ok":
            lines.append(f"  population {lab}: {r['n_inputs']} inputs stacked"
                         + (f", {r['excluded']} left out" if r["excluded"] else "") + f" -> {r.get('fits', '')}")
            for text in r.get("excluded_inputs", [])[:10]:
                lines.append(f"    left out {short_reason(text)}")
            if r["excluded"] > 10:
                lines.append(f"    ... {r['excluded'] - 10} more in the summary table (failed_inputs)")
    lines.append("  outputs:")
    for k, v in summary["outputs"].items():
        lines.append(f"    {k:6s} {v}")
    if summary.get("tip"):
        lines.append(summary["tip"])
    return "\n".join(lines)
