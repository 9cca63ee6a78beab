"""Graph builders of stacks: per object (a map) and over the collection (a tree reduction).

* ``by='object'``: batches never split an object, so each task stacks the objects of
  its batch with ``stack_spectra`` — a per-partition map, as parallel as the batches.
* ``by='all'``, mean / weighted mean: every batch becomes partial sums
  (Σ w·f, Σ w, Σ f, Σ σ², N; ``campfire.tasks.stack.Partial``), combined in a tree of
  fan-in ``split_every``, then finalised. Memory per task is one batch plus at most
  ``split_every`` partials, whatever N is.
* ``by='all'``, median: not a sum, so each batch is cut into wavelength chunks and
  one task per chunk takes the median across all inputs (N × chunk width values).

A grid that is not given and not known at build time (observed frame, spectra on
their own grids) comes from a small reduction that picks the input with the most
pixels, like ``stack_spectra``'s default; tasks depend on its key. It also carries
what every input covers, so the final task warns, like ``stack_spectra``, when inputs
reach outside that grid. ``grid='union'`` is a reduction too: per-batch union grids,
united (``campfire.tasks.grids``).

Examples
--------
>>> import numpy as np
>>> g = grid_from_spec({'start': 1.0, 'stop': 1.1, 'resolution': 100})
>>> g.size, round(float(g[1] / g[0]), 6)
(10, 1.01)
"""
from __future__ import annotations

import math
from operator import attrgetter
from typing import Any

import numpy as np
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from campfire import config
from campfire.errors import ValidationError
from campfire.graphs.builders import bind, layer_name
from campfire.graphs.reduction import chunked_gather, tree_reduce
from campfire.tasks import batch as B
from campfire.tasks import population as P
from campfire.tasks.resample import check_grid
from campfire.tasks.stack import check_window

__all__ = ["stack_by_object", "stack_all", "grid_from_spec", "resolve_window"]


def grid_from_spec(spec) -> np.ndarray:
    """A wavelength grid [μm] from ``{start, stop, num}`` (linear), ``{start, stop, step}``
    or ``{start, stop, resolution}`` (constant R = λ/Δλ, logarithmic), or an explicit list."""
    if isinstance(spec, np.ndarray) or isinstance(spec, (list, tuple)):
        return np.asarray(spec, dtype=float)
    if not isinstance(spec, dict) or "start" not in spec or "stop" not in spec:
        raise ValidationError(f"grid: expected {{start, stop, num|step|resolution}} or a list, got {spec!r}")
    start, stop = float(spec["start"]), float(spec["stop"])
    if not 0 < start < stop:
        raise ValidationError(f"grid: expected 0 < start < stop, got {start!r}, {stop!r}")
    if "num" in spec:
        return np.linspace(start, stop, int(spec["num"]))
    if "step" in spec:
        step = float(spec["step"])
        n = int(math.floor((stop - start) / step + 1e-9)) + 1
        return start + step * np.arange(n)
    if "resolution" in spec:
        r = float(spec["resolution"])
        factor = 1.0 + 1.0 / r
        n = int(math.floor(math.log(stop / start) / math.log(factor) + 1e-9)) + 1
        return start * factor ** np.arange(n)
    raise ValidationError("grid: give one of num, step, resolution")


def resolve_window(window) -> tuple[float, float]:
    """The rest-frame normalisation window: ``window``, else ``campfire.stack.rest-window`` (read now).

    Parameters
    ----------
    window : (float, float) or None

    Returns
    -------
    (float, float)

    Raises
    ------
    ValidationError
        A malformed window (:func:`campfire.tasks.stack.check_window`).

    Examples
    --------
    >>> resolve_window(None)
    (0.42, 0.48)
    """
    return check_window(config.get("stack.rest-window", override_with=window))


def _grid_arg(grid) -> np.ndarray | str | None:
    if grid is None:
        return None
    if isinstance(grid, str):
        if grid.lower() != "union":
            raise ValidationError(f"grid: expected None, 'union', {{start, stop, num|step|resolution}} or a list "
                                  f"of wavelengths [μm], got {grid!r}")
        return "union"
    return check_grid("grid", grid_from_spec(grid) if isinstance(grid, dict) else grid)


def stack_by_object(src, method: str, *, rest_frame: bool = False, grid=None):
    """One stack per object (a LazySpectra with one element per object)."""
    g = _grid_arg(grid)
    if g is None and not rest_frame:
        g = src.grid
    func = bind(B.stack_object_items, errors=src.errors, method=method, grid=g, rest_frame=rest_frame)
    parts = [B.object_refs(p) for p in src.parts]
    return src.map_partitions(func, step="stack-object", token=(src.errors, method, g, rest_frame),
                              stage="stacked", kind="objects", parts=parts,
                              grid=None if isinstance(g, str) else g)  # 'union': one grid per object


def _identity(x):
    return x


def _grid_layer(src, union: bool = False, rest_frame: bool = False) -> tuple[dict, str, str | None]:
    """Tasks that pick the stack grid at run time: the largest input's (``stack_spectra``'s
    default) or, for ``grid='union'``, the union of every input's. Returns the tasks, the
    key of the grid array and, for the default, the key of its
    :class:`~campfire.tasks.population.DefaultGrid` (what the inputs cover, for the warning)."""
    name = layer_name("stack-grid", src.name, (union, rest_frame))
    keys = [(src.name, i) for i in range(src.npartitions)]
    split_every = config.get("graph.split-every")
    if union:
        dsk, key = tree_reduce(name, keys, part=bind(P.union_of_items, rest_frame=rest_frame),
                               combine=P.union_of_grids, finalize=P.union_of_grids, split_every=split_every)
        return dsk, key, None
    dsk, key = tree_reduce(name, keys, part=P.largest_grid, combine=P.pick_grid, finalize=P.pick_grid,
                           split_every=split_every)
    dsk[f"{name}-wavelength"] = (attrgetter("wavelength"), key)
    return dsk, f"{name}-wavelength", key


def stack_all(src, method: str, *, rest_frame: bool = False, grid=None, window=None, split_every: int | None = None,
              normalize: bool | None = None, object_id: str | None = None) -> Delayed:
    """The population stack of ``src`` as a :class:`~dask.delayed.Delayed` SpectrumData."""
    if src.npartitions == 0:
        raise ValidationError("stack: the collection is empty")
    split_every = int(config.get("graph.split-every", override_with=split_every))
    if split_every < 2:
        raise ValidationError(f"split_every: expected an int >= 2, got {split_every!r}")
    if normalize is None:
        normalize = rest_frame
    win = resolve_window(window) if (normalize or window is not None) else None
    g = _grid_arg(grid)
    union = isinstance(g, str)
    on_grid = False
    if g is None and rest_frame:
        g = _grid_arg(config.get("stack.rest-grid"))
    if g is None and src.grid is not None:
        g, on_grid = src.grid, True
    elif g is not None and not union and not rest_frame and src.grid is not None:
        on_grid = bool(src.grid.shape == g.shape and np.array_equal(src.grid, g))
    opts = {"rest_frame": rest_frame, "window": win, "on_grid": on_grid, "min_coverage": None}
    token_params = (method, rest_frame, g, win, split_every, on_grid, object_id, src.errors)
    name = layer_name("stack", src.name, token_params)
    inputs = [(src.name, i) for i in range(src.npartitions)]
    dsk: dict[Any, Any] = {}
    guard = (lambda f: bind(B.guarded, func=f)) if src.errors == "record" else (lambda f: f)
    if src.npartitions == 1:
        # one batch: the one-shot stack_spectra itself (what the eager API computes)
        one = guard(bind(P.stack_all_items, method=method, grid=g, rest_frame=rest_frame, window=win,
                         object_id=object_id))
        graph = HighLevelGraph.from_collections(name, {name: (one, inputs[0])}, dependencies=[src])
        return Delayed(name, graph, layer=name)
    if union:  # from here on like a grid chosen at run time, only by another rule
        g = None
    if g is None:
        grid_dsk, grid_key, default_key = _grid_layer(src, union=union, rest_frame=rest_frame)
        dsk.update(grid_dsk)
        # the default grid's finalize warns, like stack_spectra, about the range it leaves out
        fin_extra = (grid_key,) if default_key is None else (grid_key, default_key)
    if method == "median":
        if g is not None:
            n_chunks = max(1, math.ceil(g.size / int(config.get("graph.wave-chunk"))))
        else:
            n_chunks = int(config.get("graph.median-chunks"))
        split = bind(P.population_chunks, n_chunks=n_chunks, **opts)
        fin = guard(bind(P.finalize_median, rest_frame=rest_frame, window=win, object_id=object_id))
        if g is None:
            red, key = chunked_gather(name, inputs, split=split, gather=P.median_of_chunk, concat=_identity,
                                      n_chunks=n_chunks, split_extra=(grid_key,))
            red[key] = (fin, red[key], *fin_extra)
        else:
            red, key = chunked_gather(name, inputs, split=bind(split, grid=g), gather=P.median_of_chunk,
                                      concat=bind(fin, grid=g), n_chunks=n_chunks)
    else:
        part = bind(P.population_partial, **opts)
        fin = guard(bind(P.finalize_population, method=method, rest_frame=rest_frame, window=win, object_id=object_id))
        if g is None:
            red, key = tree_reduce(name, inputs, part=part, combine=P.combine_population, finalize=_identity,
                                   split_every=split_every, part_extra=(grid_key,))
            red[key] = (fin, red[key], *fin_extra)
        else:
            red, key = tree_reduce(name, inputs, part=bind(part, grid=g), combine=P.combine_population,
                                   finalize=bind(fin, grid=g), split_every=split_every)
    dsk.update(red)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[src])
    return Delayed(key, graph, layer=name)
