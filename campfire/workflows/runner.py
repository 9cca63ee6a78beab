"""``campfire run WORKFLOW``: one workflow file → one Dask graph → outputs with provenance.

The run, in order:

1. validate the file (:mod:`campfire.workflows.schema`), merge the deployment's
   ``dask-config.yaml`` (:func:`campfire.graphs.scheduler.deployment_config`) and the
   file's ``cluster:`` settings into the Dask config for the run;
2. open the archive (``demo`` builds the demo on first use) and resolve the selection
   into spectrum references (file locations + content hashes + object photometry);
3. skip objects whose outputs exist with the same *input key* (steps + options +
   input hashes; see :mod:`campfire.workflows.provenance`) unless ``force``;
4. apply the steps (LazySpectra methods) and add the output layers: per-batch FITS +
   PNG writers, chunk-aligned zarr writers, population stacks;
5. ``--dry-run``: print the plan (objects, spectra, files to fetch and bytes, tasks,
   outputs) and stop; otherwise compute everything in **one** ``dask.compute`` on the
   chosen scheduler, with a progress bar (and the dashboard link when distributed);
6. write the population outputs, the summary table (ECSV), ``provenance.json`` and
   the run state (what is complete), and print the summary.

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
import json
import os
import pathlib
import sys
import time
from typing import Any, Callable

import dask
import numpy as np

from campfire import config
from campfire.errors import CampfireError, ValidationError
from campfire.workflows.options import Invalid

__all__ = ["run_workflow", "plan_text", "STATE_FILE"]

STATE_FILE = ".campfire-run.json"


# ------------------------------------------------------------------------------ archive
def open_archive(archive: str):
    """``(Campfire, description)`` of a workflow's ``archive:`` value."""
    from campfire.client import Campfire

    low = archive.lower()
    if low.startswith("demo"):
        import campfire.demo

        size = low.partition(":")[2] or None
        root = config.demo_root()
        if size is not None:
            marker = campfire.demo.read_build_marker(root) if root.exists() else None
            if marker is None or marker.get("size") != size:
                # never rebuild the user's default demo into another size: keep sizes side by side
                root = root.with_name(f"{root.name}-{size}")
        path = campfire.demo.ensure(size, root=root)
        return Campfire(data_dir=path), f"demo ({path})"
    if low.startswith(("http://", "https://")):
        cf = Campfire(base_url=archive)
        return cf, f"server {cf.base_url}"
    root = pathlib.Path(archive).expanduser()
    cf = Campfire(data_dir=root)
    if not cf.is_local:
        raise CampfireError(f"archive: {root} is not an archive root (no valid meta/campfire.db)")
    return cf, f"archive root {cf.data_dir}"


# ------------------------------------------------------------------------------ helpers
def _sel_error(wf, err: ValidationError) -> ValidationError:
    msg = str(err)
    key, sep, rest = msg.partition(": ")
    if sep and key in wf.selection:
        return wf.error(("selection", key), rest)
    return wf.error(("selection",), msg)


def _read_state(outdir: pathlib.Path) -> dict:
    try:
        with open(outdir / STATE_FILE) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _write_json(path: pathlib.Path, data: dict) -> None:
    from campfire.graphs.zarr_out import jsonable

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(jsonable(data), f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _graph_size(collections) -> int:
    from dask.highlevelgraph import HighLevelGraph

    graphs = [c.__dask_graph__() for c in collections]
    if not graphs:
        return 0
    return len(HighLevelGraph.merge(*graphs))


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
            return list(dask.compute(*collections, scheduler=ctx.kind))
    from distributed import get_task_stream, progress as dprogress

    with get_task_stream(ctx.client) as ts:
        futures = ctx.client.compute(collections)
        if progress:
            dprogress(futures, notebook=False)
        results = ctx.client.gather(futures)
    starts = [s["start"] for rec in ts.data for s in rec.get("startstops", ()) if s.get("action") == "compute"]
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
        ``dashboard``, ``plan`` ...
    """
    from campfire.workflows.schema import load_workflow

    t0 = time.perf_counter()
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    echo = echo or print
    if progress is None:
        progress = sys.stderr.isatty()
    wf = load_workflow(path)

    from campfire.graphs.scheduler import deployment_config, find_deployment_file

    deployment = find_deployment_file(path)
    settings = deployment_config(deployment)
    for key, value in (("batch-size", wf.cluster.batch_size), ("split-every", wf.cluster.split_every)):
        if value is not None:
            settings[f"campfire.graph.{key}"] = value
    with dask.config.set(settings):
        return _run(wf, deployment, scheduler=scheduler, workers=workers, dry_run=dry_run, force=force,
                    output=output, progress=progress, echo=echo, t0=t0, started=started)


def _run(wf, deployment, *, scheduler, workers, dry_run, force, output, progress, echo, t0, started) -> dict:
    from dask.base import tokenize

    from campfire.graphs.collection import LazySpectra
    from campfire.graphs.scheduler import run_context
    from campfire.graphs.selection import refs_from_rows
    from campfire.tasks.batch import SpectrumRef, object_refs
    from campfire.workflows import provenance as P
    from campfire.workflows.registry import get_step
    from campfire.workflows.steps import RunState

    cf, archive_label = open_archive(wf.archive)
    try:
        rows = list(cf.iter_spectra(**wf.selection))
    except ValidationError as err:
        raise _sel_error(wf, err) from err
    refs = refs_from_rows(cf, rows)
    t_select = time.perf_counter()

    outdir = pathlib.Path(output or wf.outputs.dir or os.path.join("results", wf.name)).expanduser().absolute()
    sched = scheduler or wf.cluster.scheduler
    nworkers = workers if workers is not None else wf.cluster.workers
    batch_size = int(config.get("graph.batch-size"))  # the workflow's cluster.batch_size is merged into it
    if wf.cluster.batch_size is None:
        # small selections: at least two batches per worker so every worker has work;
        # large ones: campfire.graph.batch-size spectra per task
        from campfire.graphs.scheduler import parse_scheduler

        kind_, arg_ = parse_scheduler(sched, nworkers)
        n_w = int(arg_) if kind_ in ("threads", "processes", "local") and arg_ else (os.cpu_count() or 1)
        batch_size = max(1, min(batch_size, -(-len(refs) // (2 * n_w))))
    full = LazySpectra.from_refs(refs, errors="record", batch_size=batch_size, client=cf)
    spec_order = full.refs
    obj_order = [r for p in full.parts for r in object_refs(p)]
    objects = {r.object_id: r for r in obj_order}
    by_object: dict[str, list] = {}
    for r in spec_order:
        by_object.setdefault(r.object_id, []).append(r)
    steps_tok = P.steps_token(wf)
    keys = {oid: P.object_key(steps_tok, rs) for oid, rs in by_object.items()}
    has_object_stack = any(s.name == "stack" and s.options["by"] == "object" for s in wf.steps)
    kind = "objects" if has_object_stack else "spectra"
    pop_specs = [s for s in wf.steps if s.name == "stack" and s.options["by"] == "all"]
    pop_labels = [s.options["name"] or ("population_rest" if s.options["rest_frame"] else "population") for s in pop_specs]
    pop_keys = {lab: P.population_key(steps_tok, lab, keys.values()) for lab in pop_labels}
    layout = tokenize([r.spectrum_id for r in spec_order], steps_tok)
    zarr_path = outdir / wf.outputs.zarr if wf.outputs.zarr else None

    # ---- what is complete already
    state_file = _read_state(outdir) if not force else {}
    same_layout = state_file.get("layout") == layout and (zarr_path is None or zarr_path.exists())
    done_keys = state_file.get("objects", {}) if same_layout else {}
    from campfire.workflows.outputs import fits_path_for

    def complete(oid: str) -> bool:
        if done_keys.get(oid) != keys[oid]:
            return False
        if not wf.outputs.fits:
            return True
        if kind == "objects":
            return os.path.exists(fits_path_for(str(outdir), objects[oid], "objects"))
        return all(os.path.exists(fits_path_for(str(outdir), r, "spectra")) for r in by_object[oid])

    done = {oid for oid in objects if complete(oid)}
    pops_done = {lab for lab in pop_labels
                 if same_layout and state_file.get("populations", {}).get(lab) == pop_keys[lab]
                 and (not wf.outputs.fits or (outdir / "fits" / f"{lab}.fits").exists())}
    pop_needs_all_spectra = any(
        lab not in pops_done and (s.options["input"] == "spectra" or not has_object_stack)
        for lab, s in zip(pop_labels, pop_specs)
    )
    if pop_needs_all_spectra:
        done = set()  # a population over spectra needs every spectrum in this graph
    todo_refs = [r for r in spec_order if r.object_id not in done]
    nothing_to_do = not todo_refs and len(pops_done) == len(pop_labels)

    # ---- build the graph
    plot_ids: frozenset | None
    if wf.outputs.plots is True:
        plot_ids = None
    elif wf.outputs.plots is False:
        plot_ids = frozenset()
    else:
        plot_ids = frozenset(r.object_id for r in obj_order[: int(wf.outputs.plots)])
    prov = P.build_provenance(wf, cf, archive_label, spec_order, started=started)
    if deployment is not None:
        prov["deployment_config"] = str(deployment)

    if nothing_to_do:
        if not dry_run:
            echo(f"campfire run {wf.name}: all {len(objects)} objects and {len(pop_labels)} population stack(s) "
                 f"are complete in {outdir} (inputs unchanged); nothing to do. Use --force to recompute.")
        summary = {"ok": True, "nothing_to_do": True, "dry_run": dry_run,
                   "objects": {"total": len(objects), "done": 0, "failed": 0, "skipped": len(done)},
                   "failures": [], "spectrum_failures": [], "populations": {},
                   "outputs": {"dir": str(outdir)}, "seconds": round(time.perf_counter() - t0, 3)}
        if dry_run:
            echo(f"plan of {wf.name}: nothing to do; all {len(objects)} objects complete in {outdir}")
        return summary
    # nothing complete: the full selection is the graph's source (no second tokenization)
    source = full if len(todo_refs) == len(spec_order) else LazySpectra.from_refs(
        todo_refs, errors="record", batch_size=batch_size, client=cf)
    state = RunState(spectra=source)
    grid_spec = next((s.options["grid"] for s in wf.steps if s.name == "resample"), None)
    need_done_objects = has_object_stack and done and any(lab not in pops_done for lab in pop_labels)
    if need_done_objects:
        from campfire.graphs.stacking import grid_from_spec

        loaded = [SpectrumRef(spectrum_id=oid, object_id=oid, url=fits_path_for(str(outdir), objects[oid], "objects"),
                              redshift=objects[oid].redshift, photometry=objects[oid].photometry)
                  for oid in (r.object_id for r in obj_order) if oid in done]
        lazy_done = LazySpectra.from_refs(loaded, errors="record", batch_size=batch_size).open()
        grid = grid_from_spec(grid_spec) if grid_spec is not None else None
        state.done_objects = lazy_done.as_stacks(grid)
    for i, step in enumerate(wf.steps):
        try:
            get_step(step.name).apply(state, **step.options)
        except Invalid as err:
            raise wf.error(("steps", i), str(err)) from None
        except ValidationError as err:
            raise wf.error(("steps", i), str(err)) from err

    results = state.objects if state.objects is not None else state.spectra
    collections: list = []
    names: list[str] = []
    outputs: dict[str, Any] = {"dir": str(outdir)}
    if todo_refs:
        from campfire.graphs.builders import bind
        from campfire.workflows.outputs import finish_batch

        rest_frame = any(s.name == "stack" and s.options["by"] == "object" and s.options["rest_frame"] for s in wf.steps)
        finish = bind(finish_batch, outdir=str(outdir), kind=kind, fits=wf.outputs.fits, plot_ids=plot_ids,
                      provenance=prov, keys=keys, rest_frame=rest_frame)
        collections.append(_gather(results, finish, "finish"))
        names.append("rows")
    zarr_writes = []
    if zarr_path is not None and todo_refs:
        zarr_writes = _zarr_layers(state, zarr_path, same_layout and not force, spec_order, obj_order, prov, wf,
                                   create=not dry_run)
        collections.extend(zarr_writes)
        names.extend(["zarr"] * len(zarr_writes))
    pop_todo = [lab for lab in pop_labels if lab not in pops_done]
    for lab in pop_todo:
        collections.append(state.populations[lab])
        names.append(f"population:{lab}")
    if wf.outputs.fits:
        outputs["fits"] = str(outdir / "fits")
    if wf.outputs.plots is not False:
        outputs["plots"] = str(outdir / "plots")
    if zarr_path is not None:
        outputs["zarr"] = str(zarr_path)
    if wf.outputs.table:
        outputs["table"] = str(outdir / wf.outputs.table)

    # ---- the plan
    fetch = [r for r in todo_refs if r.url.startswith(("http://", "https://"))
             and not (r.dest and (pathlib.Path(cf.data_dir) / r.dest).exists())]
    plan = {
        "workflow": wf.path, "archive": archive_label, "selection": wf.selection,
        "objects": {"total": len(objects), "todo": len({r.object_id for r in todo_refs}), "skipped": len(done)},
        "spectra": {"total": len(spec_order), "todo": len(todo_refs)},
        "fetch": {"files": len(fetch), "bytes": int(sum(r.file_size for r in fetch))},
        "tasks": _graph_size(collections),
        "partitions": state.spectra.npartitions,
        "batch_size": batch_size,
        "steps": [s.name + ("" if s.name != "stack" else f"(by={s.options['by']})") for s in wf.steps],
        "populations": {lab: ("skip" if lab in pops_done else "compute") for lab in pop_labels},
        "outputs": outputs,
    }
    if dry_run:
        echo(plan_text(wf, plan))
        return {"ok": True, "dry_run": True, "plan": plan, "seconds": round(time.perf_counter() - t0, 3)}

    # ---- run
    outdir.mkdir(parents=True, exist_ok=True)
    stamp: dict[str, float] = {}
    with run_context(sched, nworkers) as ctx:
        echo(f"campfire run {wf.name}: {plan['objects']['todo']} objects / {len(todo_refs)} spectra "
             f"({len(done)} objects complete, skipped) on {ctx.description}; {plan['tasks']} tasks")
        if ctx.dashboard_link:
            echo(f"  dashboard: {ctx.dashboard_link}")
        t_compute = time.perf_counter()
        values = _compute(ctx, collections, progress, stamp)
        t_done = time.perf_counter()
        description, dashboard = ctx.description, ctx.dashboard_link
    got = dict(zip(names, values)) if names else {}
    rows_out = got.get("rows", [])

    # ---- population outputs (small: written here)
    failures = [{"object_id": r["object_id"], "id": r["id"], "step": r["step"], "reason": r["reason"]}
                for r in rows_out if r["status"] == "failed"]
    # spectra that failed inside objects that still succeeded with their other spectra
    spectrum_failures = [f for r in rows_out if r["status"] == "ok" for f in r.get("_input_failures", ())]
    pop_results: dict[str, Any] = {}
    from campfire.tasks.batch import Failure

    for lab in pop_todo:
        value = got[f"population:{lab}"]
        if isinstance(value, Failure):
            failures.append({"object_id": "", "id": lab, "step": value.step, "reason": value.reason})
            pop_results[lab] = {"status": "failed", "reason": value.reason}
            continue
        pop_results[lab] = _write_population(value, lab, pop_keys[lab], outdir, wf, prov, zarr_path)
    # ---- summary table, provenance, state
    skipped_rows = [{"object_id": oid, "id": oid, "status": "skipped", "step": "", "reason": "complete (inputs unchanged)",
                     "fits": fits_path_for(str(outdir), objects[oid], kind) if kind == "objects" else ""}
                    for oid in (r.object_id for r in obj_order) if oid in done]
    if wf.outputs.table:
        _write_table(outdir / wf.outputs.table, rows_out + skipped_rows, prov)
    _write_json(outdir / "provenance.json", prov)
    ok_objects = _ok_objects(rows_out, kind, by_object)
    new_state = {"layout": layout, "objects": {**(done_keys if same_layout else {}),
                                               **{oid: keys[oid] for oid in ok_objects}},
                 "populations": {**(state_file.get("populations", {}) if same_layout else {}),
                                 **{lab: pop_keys[lab] for lab, r in pop_results.items() if r.get("status") == "ok"}}}
    new_state["objects"] = {k: v for k, v in new_state["objects"].items() if k in keys}
    _write_json(outdir / STATE_FILE, new_state)

    failed_objects = {f["object_id"] for f in failures if f["object_id"]}
    n_todo = plan["objects"]["todo"]
    if "first_task" in stamp:
        first = round(stamp["first_task"] - t0, 3)
    elif "first_task_wall" in stamp:
        first = round(stamp["first_task_wall"] - (time.time() - (time.perf_counter() - t0)), 3)
    else:
        first = None
    summary = {
        "ok": bool(ok_objects or not n_todo) and all(r.get("status") == "ok" for r in pop_results.values()),
        "workflow": wf.path,
        "objects": {"total": len(objects), "done": len(ok_objects), "failed": len(failed_objects), "skipped": len(done)},
        "spectra": {"total": len(spec_order), "processed": len(todo_refs)},
        "failures": failures,
        "spectrum_failures": spectrum_failures,
        "populations": pop_results,
        "outputs": outputs,
        "scheduler": description,
        "dashboard": dashboard,
        "plan": plan,
        "seconds": round(time.perf_counter() - t0, 3),
        "timings": {
            "select": round(t_select - t0, 3),
            "compute": round(t_done - t_compute, 3),
            "first_task_after_start": first,
        },
    }
    echo(summary_text(summary))
    return summary


def _ok_objects(rows: list[dict], kind: str, by_object: dict) -> set[str]:
    if kind == "objects":
        return {r["object_id"] for r in rows if r["status"] == "ok"}
    bad = {r["object_id"] for r in rows if r["status"] != "ok"}
    return {r["object_id"] for r in rows} - bad


def _gather(coll, func, step: str):
    """A Delayed list: ``func`` per partition, results concatenated (small rows only)."""
    from dask.base import tokenize
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    name = f"{step}-{tokenize(coll.name, func)}"
    dsk = {(f"{name}-part", i): (func, (coll.name, i)) for i in range(coll.npartitions)}
    dsk[name] = (_concat, [(f"{name}-part", i) for i in range(coll.npartitions)])
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[coll])
    return Delayed(name, graph, layer=name)


def _concat(lists):
    return [x for part in lists for x in part]


def _zarr_layers(state, zarr_path: pathlib.Path, reuse: bool, spec_order, obj_order, prov, wf, *,
                 create: bool = True) -> list:
    """Chunk-aligned write layers for the per-spectrum and per-object groups.

    ``create=False`` (a dry run) builds the same layers against placeholder arrays, so
    the plan counts the tasks without touching the disk.
    """
    from campfire.graphs.zarr_out import create_group, write_layer

    rows_cfg = int(config.get("graph.batch-size"))
    root = None
    if create:
        import zarr

        root = zarr.open_group(str(zarr_path), mode="a")
        root.attrs.update({"workflow": wf.name, "provenance": _jsonable(prov)})
    writes = []
    groups = [("spectra", state.spectra, spec_order, lambda r: r.spectrum_id)]
    if state.objects is not None:
        groups.append(("objects", state.objects, obj_order, lambda r: r.object_id))
    for gname, coll, order, ident in groups:
        if coll.grid is None or not len(coll):
            continue
        fields = ["fnu", "fnu_err", "ok"] + (["count"] if coll.stage == "stacked" else [])
        index = {ident(r): i for i, r in enumerate(order)}
        if root is None:
            arrays, chunk_rows = dict.fromkeys(fields), max(1, min(rows_cfg, len(order)))
        elif reuse and gname in root and all(f in root[gname] for f in fields):
            g = root[gname]
            arrays = {f: g[f] for f in fields}
            chunk_rows = arrays["fnu"].chunks[0]
        else:
            g, arrays, chunk_rows = create_group(
                str(zarr_path), gname, ids=[r.spectrum_id for r in order], object_ids=[r.object_id for r in order],
                grid=coll.grid, fields=fields, chunk_rows=rows_cfg,
                attrs={"kind": coll.kind, "stage": coll.stage, "steps": [s for s, _ in coll.steps]},
            )
        rows = [index[ident(r)] for r in coll.refs]
        writes.append(write_layer(coll, arrays, rows, chunk_rows, len(order)))
    return writes


def _jsonable(x):
    from campfire.graphs.zarr_out import jsonable

    return jsonable(x)


def _write_population(spec, label: str, key: str, outdir: pathlib.Path, wf, prov: dict, zarr_path) -> dict:
    from campfire.graphs.zarr_out import write_spectrum_group
    from campfire.workflows.outputs import write_fits, write_plot
    from campfire.workflows.provenance import fits_cards

    out: dict[str, Any] = {"status": "ok", "n_inputs": int(spec.meta.get("n_spectra", 0)),
                           "excluded": len(spec.meta.get("excluded", []))}
    spec = spec.copy(spectrum_id=label)
    inputs = [(sid, prov["inputs"].get(sid, "")) for sid in spec.meta.get("inputs", [])]
    if wf.outputs.fits:
        out["fits"] = write_fits(str(outdir / "fits" / f"{label}.fits"), spec, cards=fits_cards(prov, key, inputs),
                                 provenance=dict(prov, population=label, input_key=key))
    if wf.outputs.plots is not False:
        try:
            frame = ", rest frame" if spec.meta.get("rest_frame") else ""
            title = f"{label}: {spec.meta.get('method', 'stack')} of {out['n_inputs']}{frame}"
            out["png"] = write_plot(str(outdir / "plots" / f"{label}.png"), spec, title=title)
        except Exception as err:  # a plot must not lose the stack
            out["png_error"] = f"{type(err).__name__}: {err}"
    if zarr_path is not None:
        write_spectrum_group(str(zarr_path), f"population/{label}", spec, attrs={"input_key": key, "provenance": prov})
        out["zarr"] = f"{zarr_path}/population/{label}"
    return out


def _write_table(path: pathlib.Path, rows: list[dict], prov: dict) -> None:
    from astropy.table import Table

    cols = ["object_id", "id", "status", "step", "reason", "n_inputs", "n_failed_inputs", "failed_inputs",
            "bands_used", "redshift", "fits", "png"]
    defaults = {"n_inputs": 0, "n_failed_inputs": 0, "redshift": np.nan}
    data = {c: [r.get(c, defaults.get(c, "")) for r in rows] for c in cols}  # private keys (_...) are left out
    t = Table(data, names=cols, dtype=[str, str, str, str, str, int, int, str, str, float, str, str]) if rows else Table(
        names=cols, dtype=[str, str, str, str, str, int, int, str, str, float, str, str])
    t.meta.update(workflow=prov["workflow"]["name"], workflow_sha256=prov["workflow"]["sha256"],
                  catalog=prov["catalog"], versions=prov["versions"], created=prov["created"],
                  selection=_jsonable(prov["selection"]))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    t.write(tmp, format="ascii.ecsv", overwrite=True)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------ text
def plan_text(wf, plan: dict) -> str:
    """The ``--dry-run`` plan, human-readable."""
    o, s, f = plan["objects"], plan["spectra"], plan["fetch"]
    lines = [
        f"plan of {wf.name} ({plan['workflow']})",
        f"  archive:    {plan['archive']}",
        f"  selection:  {json.dumps(_jsonable(plan['selection']))}",
        f"  objects:    {o['total']} ({o['todo']} to process, {o['skipped']} complete and skipped)",
        f"  spectra:    {s['total']} ({s['todo']} to process)",
        f"  fetch:      {f['files']} files, {_human_bytes(f['bytes'])}",
        f"  steps:      {' → '.join(plan['steps'])}",
        f"  tasks:      {plan['tasks']} ({plan['partitions']} batches of ≤ {plan['batch_size']} spectra)",
    ]
    for lab, what in plan["populations"].items():
        lines.append(f"  population: {lab} ({what})")
    lines.append("  outputs:")
    for k, v in plan["outputs"].items():
        lines.append(f"    {k:6s} {v}")
    return "\n".join(lines)


def _short(text: str, n: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


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
        lines.append(f"  failed {who}: {fl['step']}: {_short(fl['reason'])}")
    if len(fails) > 20:
        lines.append(f"  ... {len(fails) - 20} more failures in the summary table")
    sfails = summary.get("spectrum_failures", [])
    if sfails:
        lines.append(f"  {len(sfails)} spectra left out of objects that succeeded with their other spectra:")
        for fl in sfails[:10]:
            lines.append(f"    {fl['id']}: {fl['step']}: {_short(fl['reason'])}")
        if len(sfails) > 10:
            lines.append(f"    ... {len(sfails) - 10} more in the summary table (failed_inputs)")
    for lab, r in summary["populations"].items():
        if r.get("status") == "ok":
            lines.append(f"  population {lab}: {r['n_inputs']} inputs ({r['excluded']} excluded) -> {r.get('fits', '')}")
    lines.append("  outputs:")
    for k, v in summary["outputs"].items():
        lines.append(f"    {k:6s} {v}")
    return "\n".join(lines)
