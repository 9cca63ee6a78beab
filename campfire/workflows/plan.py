"""What a ``campfire run`` will do: the selection, the graph of the steps and outputs, the plan.

1. :func:`open_archive` — a workflow's ``archive:`` value → a client;
2. :func:`select` — the selection resolved into spectrum references (file locations,
   content hashes, object photometry), their order, batches and *input keys*;
3. :func:`build_graph` — the steps (LazySpectra methods) applied to what is not
   complete yet (:mod:`campfire.workflows.resume`) and the output layers added:
   per-batch FITS + PNG writers, chunk-aligned zarr writers, population stacks;
4. :func:`make_plan` / :func:`plan_text` — what ``--dry-run`` prints.

Nothing here computes; :mod:`campfire.workflows.runner` does, in one ``dask.compute``.
"""
from __future__ import annotations

import functools
import os
import pathlib
from dataclasses import dataclass, field
from typing import Any, Callable

from dask.base import tokenize

from campfire import config
from campfire.errors import CampfireError, ValidationError
from campfire.graphs.builders import Batch, bind, token_of
from campfire.graphs.collection import LazySpectra
from campfire.graphs.fetch import is_server_url
from campfire.graphs.scheduler import parse_scheduler
from campfire.graphs.selection import refs_from_rows
from campfire.graphs.stacking import grid_from_spec
from campfire.graphs.zarr_out import jsonable
from campfire.tasks.batch import SpectrumRef, object_refs
from campfire.workflows import provenance as P
from campfire.workflows.outputs import OutDir, finish_batch, fits_path_for, plot_batch
from campfire.workflows.registry import get_step
from campfire.workflows.options import Invalid
from campfire.workflows.steps import RunState

__all__ = ["open_archive", "Selection", "select", "RunGraph", "build_graph", "output_paths", "make_plan", "plan_text",
           "human_bytes"]


def open_archive(archive: str):
    """``(Campfire, description)`` of a workflow's ``archive:`` value.

    ``demo`` / ``demo:SIZE`` (built on first use, sizes side by side), an ``http(s)://``
    server, or an archive root directory.

    Raises
    ------
    CampfireError
        A directory that is not an archive root.
    """
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


# quick-look PNGs per task (~0.15 s each): small tasks that spread over the workers
PLOTS_PER_TASK = 4
# their priority on a distributed cluster (Dask's default is 0): see _gather
PLOT_PRIORITY = 1


@dataclass
class Selection:
    """A workflow's inputs, resolved: references in collection order and their keys.

    ``kind`` is ``'objects'`` when a per-object stack makes one output per object, else
    ``'spectra'``; ``keys`` maps object id → input key (steps + input hashes,
    :func:`campfire.workflows.provenance.object_key`); ``layout`` identifies the order of
    the rows of the zarr store.
    """

    cf: Any
    archive: str
    full: LazySpectra
    batch_size: int
    objects: dict[str, SpectrumRef]
    by_object: dict[str, list[SpectrumRef]]
    keys: dict[str, str]
    kind: str
    populations: dict[str, Any]
    population_keys: dict[str, str]
    layout: str

    @property
    def refs(self) -> list[SpectrumRef]:
        """Every spectrum, in collection order."""
        return self.full.refs

    @property
    def object_order(self) -> list[SpectrumRef]:
        """The reference of each object's stack, in collection order."""
        return list(self.objects.values())


def _selection_error(wf, err: ValidationError) -> ValidationError:
    msg = str(err)
    key, sep, rest = msg.partition(": ")
    if sep and key in wf.selection:
        return wf.error(("selection", key), rest)
    return wf.error(("selection",), msg)


def _batch_size(wf, n_refs: int, scheduler: str | None, workers: int | None) -> int:
    batch_size = int(config.get("graph.batch-size"))  # the workflow's cluster.batch_size is merged into it
    if wf.cluster.batch_size is None:
        # small selections: at least two batches per worker so every worker has work;
        # large ones: campfire.graph.batch-size spectra per task
        kind, arg = parse_scheduler(scheduler or wf.cluster.scheduler, workers if workers is not None else wf.cluster.workers)
        n_workers = int(arg) if kind in ("threads", "processes", "local") and arg else (os.cpu_count() or 1)
        batch_size = max(1, min(batch_size, -(-n_refs // (2 * n_workers))))
    return batch_size


def select(wf, *, scheduler: str | None = None, workers: int | None = None) -> Selection:
    """Open the archive and resolve the workflow's selection (nothing is read but the catalog).

    Raises
    ------
    ValidationError
        A bad selection (the message points into the workflow file).
    """
    cf, archive = open_archive(wf.archive)
    try:
        rows = list(cf.iter_spectra(**wf.selection))
    except ValidationError as err:
        raise _selection_error(wf, err) from err
    refs = refs_from_rows(cf, rows)
    batch_size = _batch_size(wf, len(refs), scheduler, workers)
    full = LazySpectra.from_refs(refs, errors="record", batch_size=batch_size, client=cf)
    objects = {r.object_id: r for p in full.parts for r in object_refs(p)}
    by_object: dict[str, list] = {}
    for r in full.refs:
        by_object.setdefault(r.object_id, []).append(r)
    steps_tok = P.steps_token(wf)
    keys = {oid: P.object_key(steps_tok, rs) for oid, rs in by_object.items()}
    per_object = any(s.name == "stack" and s.options["by"] == "object" for s in wf.steps)
    populations = {(s.options["name"] or ("population_rest" if s.options["rest_frame"] else "population")): s
                   for s in wf.steps if s.name == "stack" and s.options["by"] == "all"}
    return Selection(
        cf=cf, archive=archive, full=full, batch_size=batch_size, objects=objects, by_object=by_object, keys=keys,
        kind="objects" if per_object else "spectra", populations=populations,
        population_keys={lab: P.population_key(steps_tok, lab, keys.values()) for lab in populations},
        layout=tokenize([r.spectrum_id for r in full.refs], steps_tok),
    )


@dataclass
class RunGraph:
    """The collections one ``dask.compute`` evaluates, named for the runner (``rows``,
    ``zarr``, ``population:<name>``), and what is computed."""

    state: RunState
    todo_refs: list[SpectrumRef]
    population_todo: list[str]
    collections: list = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    plots: int = 0  # quick-look PNGs the graph draws


def _plot_ids(wf, sel: Selection) -> frozenset | None:
    if wf.outputs.plots is True:
        return None
    if wf.outputs.plots is False:
        return frozenset()
    return frozenset(r.object_id for r in sel.object_order[: int(wf.outputs.plots)])


def build_graph(wf, sel: Selection, done, outdir: OutDir, prov: dict, *, create: bool = True,
                plot_worker: str | None = None) -> RunGraph:
    """The steps applied to what is not complete, with the output layers.

    Parameters
    ----------
    wf : Workflow
    sel : Selection
    done : Completed
        What earlier runs completed (:func:`campfire.workflows.resume.completed`).
    outdir : OutDir
    prov : dict
        The provenance record the outputs carry.
    create : bool
        Open (create) the zarr store; False for a dry run, which builds the same layers
        against placeholders so the plan counts the tasks without touching the disk.
    plot_worker : str, optional
        A distributed worker's address: when the quick-look PNGs come from one batch (the
        default 24 do), they and that batch go there first (the worker whose matplotlib is
        warm); another worker takes them only if it is idle or that one fails.

    Raises
    ------
    ValidationError
        A step's options do not fit the data (the message points into the workflow file).
    """
    todo_refs = [r for r in sel.refs if r.object_id not in done.objects]
    source = sel.full if len(todo_refs) == len(sel.refs) else LazySpectra.from_refs(
        todo_refs, errors="record", batch_size=sel.batch_size, client=sel.cf)
    state = RunState(spectra=source)
    if sel.kind == "objects" and done.objects and len(done.populations) < len(sel.populations):
        # population stacks over objects read the stacks of complete objects back from their files
        grid_spec = next((s.options["grid"] for s in wf.steps if s.name == "resample"), None)
        loaded = [SpectrumRef(spectrum_id=oid, object_id=oid, url=fits_path_for(str(outdir), ref, "objects"),
                              redshift=ref.redshift, photometry=ref.photometry)
                  for oid, ref in sel.objects.items() if oid in done.objects]
        state.done_objects = LazySpectra.from_refs(loaded, errors="record", batch_size=sel.batch_size).open().as_stacks(
            grid_from_spec(grid_spec) if grid_spec is not None else None)
    for i, step in enumerate(wf.steps):
        try:
            get_step(step.name).apply(state, **step.options)
        except Invalid as err:
            raise wf.error(("steps", i), str(err)) from None
        except ValidationError as err:
            raise wf.error(("steps", i), str(err)) from err

    graph = RunGraph(state=state, todo_refs=todo_refs,
                     population_todo=[lab for lab in sel.populations if lab not in done.populations])
    results = state.current
    if todo_refs:
        rest_frame = any(s.name == "stack" and s.options["by"] == "object" and s.options["rest_frame"] for s in wf.steps)
        finish = bind(finish_batch, outdir=str(outdir), kind=sel.kind, fits=wf.outputs.fits)
        plot = bind(plot_batch, outdir=str(outdir), kind=sel.kind, rest_frame=rest_frame)
        chunks = _plot_chunks(results, sel.kind, _plot_ids(wf, sel))
        graph.plots = sum(len(ids) for _, ids in chunks)
        if len({i for i, _ in chunks}) > 1:
            plot_worker = None  # PNGs from several batches: every worker draws (one would get them all)
        graph.collections.append(_gather(results, finish, "finish", {"provenance": prov, "keys": sel.keys},
                                         plots=(plot, chunks), in_turn=plot_worker is not None))
        graph.names.append("rows")
    zarr_path = outdir / wf.outputs.zarr if wf.outputs.zarr else None
    if zarr_path is not None and todo_refs:
        writes = _zarr_layers(state, zarr_path, done.same_layout, sel, prov, wf, create=create)
        graph.collections.extend(writes)
        graph.names.extend(["zarr"] * len(writes))
    for lab in graph.population_todo:
        graph.collections.append(state.populations[lab])
        graph.names.append(f"population:{lab}")
    graph.outputs.update(output_paths(wf, outdir))
    graph.collections = _fused(graph.collections, plot_worker)
    return graph


def _fused(collections: list, plot_worker: str | None = None) -> list:
    """The run's outputs over one graph whose linear chains are fused.

    Each output is a Delayed, and dask optimises a Delayed by culling alone, so without
    this every step of every batch would be a task of its own: a batch's select, download,
    open, calibrate and resample then run as one task (as :class:`LazySpectra` computes them), with fewer
    tasks to schedule and no intermediate result a worker could be asked to ship. The
    graph is fused once over all outputs, which share their upstream batches. The layers'
    ``priority`` annotations (the quick-look PNGs') are kept for the keys that remain and
    given to the tasks they depend on, which also go to ``plot_worker`` when one is named.
    """
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

    from campfire.graphs.collection import optimize

    if not collections or not all(isinstance(c, Delayed) for c in collections):
        return collections
    keys = [c.key for c in collections]
    merged = HighLevelGraph.merge(*(c.dask for c in collections))
    dsk = optimize(merged, keys)
    annotated = {k: p for layer in merged.layers.values() if (p := (layer.annotations or {}).get("priority"))
                 for k in layer if k in dsk}
    priorities = _upstream_priorities(dsk, annotated)
    annotations = {}
    if priorities:
        annotations["priority"] = functools.partial(_annotation_of, priorities, 0)
        if plot_worker:
            annotations["workers"] = functools.partial(_annotation_of, dict.fromkeys(priorities, [plot_worker]), None)
            annotations["allow_other_workers"] = functools.partial(_annotation_of, dict.fromkeys(priorities, True),
                                                                   None)
    graph = HighLevelGraph({"campfire-run": MaterializedLayer(dsk, annotations=annotations or None)},
                           {"campfire-run": set()})
    return [Delayed(key, graph, layer="campfire-run") for key in keys]


def _upstream_priorities(dsk: dict, priorities: dict) -> dict:
    """``priorities`` extended to every task they depend on: a task runs early only if its inputs do
    (Dask's order may put the quick-look PNGs' batch last)."""
    from dask.core import get_dependencies

    out = dict(priorities)
    todo = list(priorities)
    while todo:
        key = todo.pop()
        for dep in get_dependencies(dsk, key):
            if out.get(dep, 0) < out[key]:
                out[dep] = out[key]
                todo.append(dep)
    return out


def _annotation_of(values: dict, default: Any, key) -> Any:
    """A task's annotation on a distributed cluster: its ``priority`` (higher runs first; 0 is Dask's
    default), the ``workers`` it should run on (None: any)."""
    return values.get(key, default)


def output_paths(wf, outdir: pathlib.Path) -> dict[str, str]:
    """Where a run of ``wf`` writes: ``dir``, and ``fits``, ``plots``, ``zarr``, ``table`` if it writes them."""
    paths = {"dir": str(outdir)}
    if wf.outputs.fits:
        paths["fits"] = str(outdir / "fits")
    if wf.outputs.plots is not False:
        paths["plots"] = str(outdir / "plots")
    if wf.outputs.zarr:
        paths["zarr"] = str(outdir / wf.outputs.zarr)
    if wf.outputs.table:
        paths["table"] = str(outdir / wf.outputs.table)
    return paths


def _plot_chunks(coll, kind: str, ids: frozenset | None) -> list[tuple[int, tuple[str, ...]]]:
    """(partition, ids) of the quick-look PNGs to draw, a few per task.

    The plots are the slowest output (~0.15 s each) and the first N objects of a run
    share its first batch: drawn inside that batch's finish task they made one task of
    several seconds that the other workers waited for at the end of a run.
    """
    chunks = []
    for i, part in enumerate(coll.parts):
        wanted = list(dict.fromkeys(r.object_id if kind == "objects" else r.spectrum_id for r in part
                                    if ids is None or r.spectrum_id in ids or r.object_id in ids))
        # tuples in collection order, not sets: the ids go into the graph's (deterministic) keys
        chunks += [(i, tuple(wanted[j:j + PLOTS_PER_TASK])) for j in range(0, len(wanted), PLOTS_PER_TASK)]
    return chunks


def _gather(coll, func, step: str, shared: Any, plots: tuple[Callable, list] | None = None, *,
            in_turn: bool = False):
    """A Delayed list: ``func(partition, shared)`` per partition, results concatenated (small rows only).

    ``shared`` (the run's provenance, say) is one task of the graph, so each worker receives
    it once: bound into every partition's function, the scheduler would pickle all of it
    again for every task it sends (~0.8 MB a batch for the full demo's provenance).
    ``plots`` = (``plot(partition, ids)``, [(partition, ids), ...]): tasks whose results
    (row id → columns) are merged into the rows; ``in_turn``: each waits for the one before,
    so that one is ready at a time (on a cluster a worker whose queue holds several lets an
    idle one steal them, which then starts matplotlib for one PNG task).
    """
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

    name = f"{step}-{tokenize(coll.name, func, token_of(shared), plots and (plots[0], token_of(plots[1])), in_turn)}"
    dsk = {f"{name}-shared": (_first, Batch((shared,)))}
    dsk.update({(f"{name}-part", i): (func, (coll.name, i), f"{name}-shared") for i in range(coll.npartitions)})
    plot, chunks = plots or (None, [])
    drawn = {}
    for j, (i, ids) in enumerate(chunks):
        draw = bind(plot, ids=ids)
        drawn[(f"{name}-plot", j)] = ((bind(_in_turn, draw=draw), (coll.name, i), (f"{name}-plot", j - 1))
                                      if in_turn and j else (draw, (coll.name, i)))
    dsk[name] = (_rows, [(f"{name}-part", i) for i in range(coll.npartitions)], list(drawn))
    upstream = coll.__dask_graph__()
    layers = {**upstream.layers, name: MaterializedLayer(dsk)}
    dependencies = {**upstream.dependencies, name: set(coll.__dask_layers__())}
    if drawn:
        # drawn as soon as their batch is ready (on a cluster): the PNGs are the run's largest
        # tasks (~0.2 s each), all from the first batch, and left to the end by Dask's order
        # they made a tail that one worker drew while the other waited
        layers[f"{name}-plot"] = MaterializedLayer(drawn, annotations={"priority": PLOT_PRIORITY})
        dependencies[f"{name}-plot"] = set(coll.__dask_layers__())
        dependencies[name].add(f"{name}-plot")
    return Delayed(name, HighLevelGraph(layers, dependencies), layer=name)


def _in_turn(batch, _previous, *, draw: Callable) -> Any:
    """``draw(batch)``, run once the previous task (whose result it does not use) is done."""
    return draw(batch)


def _first(batch: Batch) -> Any:
    return batch.items[0]


def _rows(lists: list[list[dict]], plotted: list[dict[str, dict]]) -> list[dict]:
    """The batches' summary rows, each with what its quick-look PNG task returned."""
    rows = [x for part in lists for x in part]
    done = {k: v for chunk in plotted for k, v in chunk.items()}
    for row in rows:
        got = done.get(row["spectrum_id"] or row["object_id"])
        if got is not None and row["status"] == "ok":
            row.update(got)
    return rows


def _zarr_layers(state: RunState, zarr_path: OutDir, reuse: bool, sel: Selection, prov: dict, wf, *,
                 create: bool = True) -> list:
    """Chunk-aligned write layers for the per-spectrum and per-object groups (``create=False``:
    against placeholder arrays, for a dry run)."""
    from campfire.graphs.zarr_out import create_group, write_layer

    rows_cfg = int(config.get("graph.batch-size"))
    root = None
    if create:
        import zarr

        root = zarr.open_group(str(zarr_path), mode="a")
    writes = []
    groups = [("spectra", state.spectra, sel.refs, lambda r: r.spectrum_id)]
    if state.objects is not None:
        groups.append(("objects", state.objects, sel.object_order, lambda r: r.object_id))
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
    if root is not None:
        # last: zarr re-reads the root's metadata for every array it creates below it, and the
        # provenance makes that ~0.65 MB of JSON for the full demo (build_graph 0.18 -> 0.15 s)
        root.attrs.update({"workflow": wf.name, "provenance": jsonable(prov)})
    return writes


def _graph_size(collections) -> int:
    from dask.highlevelgraph import HighLevelGraph

    graphs = [c.__dask_graph__() for c in collections]
    return len(HighLevelGraph.merge(*graphs)) if graphs else 0


def make_plan(wf, sel: Selection, done, graph: RunGraph | None, outdir: pathlib.Path | None = None) -> dict[str, Any]:
    """The plan of a run: objects and spectra to process, files to fetch, tasks, outputs.

    ``graph`` None: everything is complete (nothing to build); the plan says so, with
    the outputs under ``outdir``.
    """
    todo = graph.todo_refs if graph is not None else []
    fetch = [r for r in todo if is_server_url(r.url)
             and not (r.dest and (pathlib.Path(sel.cf.data_dir) / r.dest).exists())]
    return {
        "workflow": wf.path, "archive": sel.archive, "selection": wf.selection,
        "complete": graph is None,
        "objects": {"total": len(sel.objects), "todo": len({r.object_id for r in todo}),
                    "skipped": len(done.objects)},
        "spectra": {"total": len(sel.refs), "todo": len(todo)},
        "fetch": {"files": len(fetch), "bytes": int(sum(r.file_size for r in fetch))},
        "tasks": _graph_size(graph.collections) if graph is not None else 0,
        "partitions": graph.state.spectra.npartitions if graph is not None else 0,
        "batch_size": sel.batch_size,
        "steps": [s.name + ("" if s.name != "stack" else f"(by={s.options['by']})") for s in wf.steps],
        "populations": {lab: ("complete, skipped" if lab in done.populations else "compute") for lab in sel.populations},
        "outputs": graph.outputs if graph is not None else output_paths(wf, outdir),
    }


def human_bytes(n: float) -> str:
    """A byte count for people: ``'812 bytes'``, ``'3.0 MiB'``.

    Examples
    --------
    >>> human_bytes(3 * 1024 ** 2)
    '3.0 MiB'
    """
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return ""  # unreachable


def plan_text(wf, plan: dict) -> str:
    """The ``--dry-run`` plan, human-readable."""
    import json

    o, s, f = plan["objects"], plan["spectra"], plan["fetch"]
    head = f"plan of {wf.name} ({plan['workflow']})"
    if plan.get("complete"):
        head += (": COMPLETE, nothing to do — every output exists with unchanged inputs and options "
                 "(--force recomputes)")
    lines = [
        head,
        f"  archive:    {plan['archive']}",
        f"  selection:  {json.dumps(jsonable(plan['selection']))}",
        f"  objects:    {o['total']} ({o['todo']} to process, {o['skipped']} complete and skipped)",
        f"  spectra:    {s['total']} ({s['todo']} to process)",
        f"  fetch:      {f['files']} files, {human_bytes(f['bytes'])}",
        f"  steps:      {' → '.join(plan['steps'])}",
        f"  tasks:      {plan['tasks']} ({plan['partitions']} batches of ≤ {plan['batch_size']} spectra)",
    ]
    for lab, what in plan["populations"].items():
        lines.append(f"  population: {lab} ({what})")
    lines.append("  outputs:")
    for k, v in plan["outputs"].items():
        lines.append(f"    {k:6s} {v}")
    return "\n".join(lines)
