"""Population stacks of a whole collection, as a tree over its batches.

Each batch becomes partial sums (mean, weighted mean) or wavelength chunks (median);
the graph builder (:mod:`campfire.graphs.stacking`) combines them in a tree and
finalises. Inputs enter through the one stack prelude of :mod:`campfire.tasks.stack`
(rest frame → window normalisation → resample), so the tree result equals the
one-shot ``stack_spectra`` to rounding; a batch of its own is stacked by
``stack_spectra`` itself (:func:`stack_all_items`). Spectra that cannot be prepared are
left out and reported in ``meta['excluded']``.

A grid not known when the graph is built is chosen at run time like
``stack_spectra``'s default: :func:`largest_grid` per batch, :func:`pick_grid` across,
carrying what every input covers, so that the final step warns, as ``stack_spectra``
does, when inputs reach outside that grid (:class:`~campfire.errors.StackRangeWarning`)
and records the lost ranges in ``meta['outside_grid']``; ``grid='union'`` is chosen
likewise by :func:`union_of_items` per batch, :func:`union_of_grids` across.

Examples
--------
>>> import numpy as np
>>> from campfire.models import SpectrumData
>>> from campfire.tasks.batch import Item, SpectrumRef
>>> w = np.linspace(1, 2, 20)
>>> items = [Item(SpectrumRef(f's{i}'), value=SpectrumData(w, np.full(20, v), np.full(20, 0.1), spectrum_id=f's{i}'))
...          for i, v in enumerate((1.0, 3.0))]
>>> parts = [population_partial(items[:1], w, on_grid=True), population_partial(items[1:], w, on_grid=True)]
>>> finalize_population(combine_population(parts), w, method='mean').fnu[:2]
array([2., 2.])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from campfire.errors import CampfireError
from campfire.models import SpectrumData
from campfire.tasks.batch import Failure, Item, failure_reason
from campfire.tasks.combine import finalize_stack, median_chunk, stack_grating, stack_partials, sum_partials
from campfire.tasks.grids import coverage, merge_ranges, ranges_outside, spectrum_label, union_grid, \
    warn_outside_default_grid
from campfire.tasks.stack import onto_grid, stack_spectra, to_stack_frame

__all__ = [
    "PopulationPartial",
    "population_partial",
    "combine_population",
    "finalize_population",
    "population_chunks",
    "chunk_edges",
    "median_of_chunk",
    "finalize_median",
    "stack_all_items",
    "DefaultGrid",
    "largest_grid",
    "pick_grid",
    "union_of_items",
    "union_of_grids",
]


_NO_GRID = "stack: no usable spectra to take a wavelength grid from"


@dataclass(frozen=True)
class PopulationPartial:
    """A stack :class:`~campfire.tasks.stack.Partial` plus the inputs left out and why."""

    partial: Any
    excluded: tuple[Failure, ...] = ()


@dataclass(frozen=True)
class DefaultGrid:
    """A population stack's default grid as it is chosen over the batches.

    Attributes
    ----------
    wavelength : numpy.ndarray
        The wavelengths of the input with the most pixels (``stack_spectra``'s default).
    source : str
        That input's name (:func:`~campfire.tasks.grids.spectrum_label`), for the warning.
    coverage : tuple of (float, float)
        What every input seen covers [μm] (merged), to tell what the grid leaves out.
    """

    wavelength: np.ndarray
    source: str = ""
    coverage: tuple[tuple[float, float], ...] = ()


def _prepare(
    items: Sequence[Item],
    *,
    grid: np.ndarray,
    rest_frame: bool,
    window: tuple[float, float] | None,
    on_grid: bool,
    min_coverage: float | None,
) -> tuple[list[SpectrumData], tuple[Failure, ...]]:
    """Good items → spectra on ``grid``: the stack prelude of :mod:`campfire.tasks.stack`
    (:func:`~campfire.tasks.stack.to_stack_frame` per input, then
    :func:`~campfire.tasks.stack.onto_grid`), with a spectrum that cannot be shifted or
    normalised left out and recorded instead of failing the batch."""
    excluded = [it.failure for it in items if it.failure is not None]
    specs = []
    for it in items:
        if it.failure is not None:
            continue
        try:
            specs.append(to_stack_frame(it.value, redshift=it.ref.redshift if rest_frame else None, window=window))
        except Exception as err:  # left out of the population, with the reason recorded
            excluded.append(Failure(it.ref.object_id, it.ref.spectrum_id, "stack", failure_reason(err)))
    if not on_grid and specs:
        specs = onto_grid(specs, grid, min_coverage=min_coverage)
    return specs, tuple(excluded)


def population_partial(
    items: Sequence[Item],
    grid: np.ndarray,
    *,
    rest_frame: bool = False,
    window: tuple[float, float] | None = None,
    on_grid: bool = False,
    min_coverage: float | None = None,
) -> PopulationPartial:
    """One batch's partial sums for a mean / weighted-mean population stack.

    The same per-spectrum operations as ``stack_spectra(redshift=..., normalize=...)``
    (rest frame → window normalisation → resample → ``stack_partials``); only the
    order of the sums differs, so the tree result equals the one-shot stack to rounding.

    Parameters
    ----------
    items : sequence of Item
        One batch (opened spectra; failed items are carried as exclusions).
    grid : numpy.ndarray
        The stack grid [μm].
    rest_frame : bool
        Shift each spectrum by its object's redshift (``ref.redshift``) first.
    window : (float, float), optional
        Normalise each spectrum by its median f_ν there [μm].
    on_grid : bool
        The spectra are on ``grid`` already (no resampling).
    min_coverage : float, optional
        Passed to the resampler.

    Returns
    -------
    PopulationPartial

    Examples
    --------
    See the module's example.
    """
    specs, excluded = _prepare(items, grid=grid, rest_frame=rest_frame, window=window, on_grid=on_grid,
                               min_coverage=min_coverage)
    return PopulationPartial(stack_partials(specs, n_pixels=grid.size), excluded)


def combine_population(parts: Sequence[PopulationPartial]) -> PopulationPartial:
    """Sum of population partials (the tree reduction's combine).

    Parameters
    ----------
    parts : sequence of PopulationPartial

    Returns
    -------
    PopulationPartial

    Raises
    ------
    ValidationError
        No parts, or partials on different grids.

    Examples
    --------
    See the module's example.
    """
    parts = list(parts)
    return PopulationPartial(sum_partials([p.partial for p in parts]), tuple(f for p in parts for f in p.excluded))


def _nothing_usable(excluded: Sequence[Failure]) -> CampfireError:
    why = "; ".join(str(f) for f in excluded[:5])
    return CampfireError(f"stack: no usable spectra{f' ({why})' if why else ''}")


def _population_meta(rest_frame: bool, window, excluded: Sequence[Failure]) -> dict:
    meta: dict[str, Any] = {}
    if rest_frame:
        meta["rest_frame"] = True
    if window is not None:
        meta["norm_window"] = list(window)
    if excluded:
        meta["excluded"] = [str(f) for f in excluded]
    return meta


def _default_grid_meta(default: DefaultGrid | None, grid: np.ndarray) -> dict:
    """``stack_spectra``'s ``meta['grid']`` / ``meta['outside_grid']`` for a default grid chosen
    over the batches, with its :class:`~campfire.errors.StackRangeWarning` when range is lost."""
    if default is None:
        return {}
    lost = ranges_outside(default.coverage, grid)
    warn_outside_default_grid(grid, lost, default.source, stacklevel=3)
    return {"grid": "largest input", "outside_grid": [list(r) for r in lost]}


def finalize_population(
    total: PopulationPartial,
    grid: np.ndarray,
    default: DefaultGrid | None = None,
    *,
    method: str = "weighted_mean",
    rest_frame: bool = False,
    window: tuple[float, float] | None = None,
    object_id: str | None = None,
) -> SpectrumData:
    """The population stack from the total partial.

    Parameters
    ----------
    total : PopulationPartial
    grid : numpy.ndarray
        The stack grid [μm].
    default : DefaultGrid, optional
        How ``grid`` was chosen when it is the default over the batches (:func:`pick_grid`):
        a :class:`~campfire.errors.StackRangeWarning` names what inputs cover outside it,
        and ``meta`` records it as ``stack_spectra`` does (``grid``, ``outside_grid``).
    method : {'weighted_mean', 'mean'}
    rest_frame : bool
        Recorded in ``meta``.
    window : (float, float), optional
        Recorded in ``meta['norm_window']``.
    object_id : str, optional
        Named like ``stack_spectra``'s result (``<object_id>_stack`` or ``stack``).

    Returns
    -------
    SpectrumData
        ``meta['excluded']`` names the inputs left out and why.

    Raises
    ------
    CampfireError
        No input was usable.

    Examples
    --------
    See the module's example.
    """
    if total.partial.n_spectra == 0:
        raise _nothing_usable(total.excluded)
    meta = _population_meta(rest_frame, window, total.excluded)
    meta.update(_default_grid_meta(default, grid))
    return finalize_stack(total.partial, grid, method, object_id=object_id, meta=meta)


def population_chunks(
    items: Sequence[Item],
    grid: np.ndarray,
    *,
    n_chunks: int,
    rest_frame: bool = False,
    window: tuple[float, float] | None = None,
    on_grid: bool = False,
    min_coverage: float | None = None,
) -> list[tuple]:
    """One batch split into wavelength chunks for a median.

    The grid is cut into ``n_chunks`` nearly equal pixel ranges (:func:`chunk_edges`);
    every chunk carries the batch's ids, exclusions and gratings so the final step can
    report them.

    Parameters
    ----------
    items : sequence of Item
    grid : numpy.ndarray
    n_chunks : int
    rest_frame, window, on_grid, min_coverage
        As in :func:`population_partial`.

    Returns
    -------
    list of tuple
        ``(fnu, err, ids, excluded, gratings)`` per chunk, fluxes of shape (n_spectra, chunk width).

    Examples
    --------
    >>> from campfire.tasks.batch import SpectrumRef
    >>> w = np.linspace(1, 2, 10)
    >>> item = Item(SpectrumRef('a'), value=SpectrumData(w, np.ones(10), np.ones(10), spectrum_id='a'))
    >>> [c[0].shape for c in population_chunks([item], w, n_chunks=3, on_grid=True)]
    [(1, 3), (1, 4), (1, 3)]
    """
    edges = chunk_edges(grid.size, n_chunks)
    specs, excluded = _prepare(items, grid=grid, rest_frame=rest_frame, window=window, on_grid=on_grid,
                               min_coverage=min_coverage)
    f = np.array([s.fnu for s in specs], float).reshape(len(specs), grid.size)
    e = np.array([s.fnu_err for s in specs], float).reshape(len(specs), grid.size)
    ids = tuple(s.spectrum_id for s in specs)
    gratings = tuple(s.grating for s in specs)
    return [(f[:, lo:hi], e[:, lo:hi], ids, excluded, gratings) for lo, hi in zip(edges[:-1], edges[1:])]


def chunk_edges(n_pixels: int, n_chunks: int) -> list[int]:
    """Pixel boundaries of ``n_chunks`` nearly equal chunks of ``n_pixels``.

    Parameters
    ----------
    n_pixels, n_chunks : int

    Returns
    -------
    list of int

    Examples
    --------
    >>> chunk_edges(10, 3)
    [0, 3, 7, 10]
    """
    return [int(round(i * n_pixels / n_chunks)) for i in range(n_chunks + 1)]


def median_of_chunk(pieces: Sequence[tuple]) -> tuple:
    """The median over every batch's piece of one chunk (:func:`~campfire.tasks.stack.median_chunk`).

    Parameters
    ----------
    pieces : sequence of tuple
        Chunk ``c`` of every batch's :func:`population_chunks`.

    Returns
    -------
    tuple
        ``(median, error, count, ids, excluded, gratings)``.

    Examples
    --------
    >>> piece = (np.array([[1.0, 2.0]]), np.ones((1, 2)), ('a',), (), ('PRISM',))
    >>> median_of_chunk([piece, piece])[0]
    array([1., 2.])
    """
    width = pieces[0][0].shape[1] if pieces else 0
    f = np.concatenate([p[0] for p in pieces], axis=0) if pieces else np.empty((0, width))
    e = np.concatenate([p[1] for p in pieces], axis=0) if pieces else np.empty((0, width))
    ids = tuple(i for p in pieces for i in p[2])
    excluded = tuple(x for p in pieces for x in p[3])
    gratings = tuple(g for p in pieces for g in p[4])
    return (*median_chunk(f, e), ids, excluded, gratings)


def finalize_median(
    chunks: Sequence[tuple],
    grid: np.ndarray,
    default: DefaultGrid | None = None,
    *,
    rest_frame: bool = False,
    window: tuple[float, float] | None = None,
    object_id: str | None = None,
) -> SpectrumData:
    """Concatenate the chunk medians into the population stack.

    Parameters
    ----------
    chunks : sequence of tuple
        :func:`median_of_chunk` of every chunk, in order.
    grid : numpy.ndarray
    default, rest_frame, window, object_id
        As in :func:`finalize_population`.

    Returns
    -------
    SpectrumData

    Raises
    ------
    CampfireError
        No input was usable.

    Examples
    --------
    >>> piece = (np.array([[1.0, 2.0]]), np.ones((1, 2)), ('a',), (), ('PRISM',))
    >>> finalize_median([median_of_chunk([piece])], np.array([1.0, 1.1])).fnu
    array([1., 2.])
    """
    ids = chunks[0][3] if chunks else ()
    excluded = chunks[0][4] if chunks else ()
    gratings = chunks[0][5] if chunks else ()
    if not ids:
        raise _nothing_usable(excluded)
    med = np.concatenate([c[0] for c in chunks])
    err = np.concatenate([c[1] for c in chunks])
    cnt = np.concatenate([c[2] for c in chunks]).astype(np.int64)
    meta = {"method": "median", "n_spectra": len(ids), "inputs": list(ids)}
    meta.update(_population_meta(rest_frame, window, excluded))
    meta.update(_default_grid_meta(default, grid))
    return SpectrumData(np.asarray(grid, float).copy(), med, err, spectrum_id=f"{object_id}_stack" if object_id else "stack",
                        grating=stack_grating(gratings), object_id=object_id, count=cnt, meta=meta)


def stack_all_items(
    items: Sequence[Item],
    *,
    method: str = "weighted_mean",
    grid: np.ndarray | None = None,
    rest_frame: bool = False,
    window: tuple[float, float] | None = None,
    object_id: str | None = None,
) -> SpectrumData:
    """One-shot stack of a whole (single) batch: exactly ``stack_spectra`` on the good items.

    Rest-frame shifts and window normalisation are applied per spectrum first (so a
    spectrum that cannot be shifted or normalised is left out and reported in
    ``meta['excluded']`` instead of failing the stack); the numbers are those of
    ``stack_spectra(spectra, redshift=..., normalize=window)``.

    Parameters
    ----------
    items : sequence of Item
    method : {'weighted_mean', 'mean', 'median'}
    grid : numpy.ndarray, optional
        Default: the largest input's (``stack_spectra``'s).
    rest_frame, window, object_id
        As in :func:`finalize_population`.

    Returns
    -------
    SpectrumData

    Raises
    ------
    CampfireError
        No input was usable.
    ValidationError
        What ``stack_spectra`` raises.

    Examples
    --------
    >>> from campfire.tasks.batch import SpectrumRef
    >>> w = np.linspace(1, 2, 10)
    >>> items = [Item(SpectrumRef(s), value=SpectrumData(w, np.full(10, v), np.ones(10), spectrum_id=s))
    ...          for s, v in (('a', 1.0), ('b', 3.0))]
    >>> stack_all_items(items, method='mean').fnu[:2]
    array([2., 2.])
    """
    specs, excluded = _prepare(items, grid=np.empty(0), rest_frame=rest_frame, window=window, on_grid=True,
                               min_coverage=None)
    if not specs:
        raise _nothing_usable(excluded)
    out = stack_spectra(specs, method=method, wavelength_grid=grid, object_id=object_id)
    out.meta.update(_population_meta(rest_frame, window, excluded))
    return out


def _good_items(items: Sequence[Item]) -> Iterator[Item]:
    """The items that did not fail and hold an opened spectrum (what a grid is chosen from)."""
    return (it for it in items if it.failure is None and isinstance(it.value, SpectrumData))


def _candidates(grids) -> list:
    """The per-batch grid candidates that are not None (a single one or None is taken as a
    list of one: the reduction's last step); none at all means nothing usable."""
    if grids is None or isinstance(grids, (np.ndarray, DefaultGrid)):
        grids = [grids]
    found = [g for g in grids if g is not None]
    if not found:
        raise CampfireError(_NO_GRID)
    return found


def largest_grid(items: Sequence[Item]) -> DefaultGrid | None:
    """The good spectrum with the most pixels (its grid and name) and what every good spectrum covers.

    Parameters
    ----------
    items : sequence of Item

    Returns
    -------
    DefaultGrid or None
        None when no item is usable.

    Examples
    --------
    >>> largest_grid([]) is None
    True
    """
    best, cov = None, []
    for spec in (it.value for it in _good_items(items)):
        cov += coverage(spec)
        if best is None or spec.n_pixels > best.n_pixels:
            best = spec
    if best is None:
        return None
    return DefaultGrid(best.wavelength, spectrum_label(best), tuple(merge_ranges(cov)))


def pick_grid(grids: Iterable[DefaultGrid | None] | DefaultGrid | None) -> DefaultGrid:
    """The largest of per-batch :func:`largest_grid` results (first wins on ties), covering what they all cover.

    Parameters
    ----------
    grids : iterable of DefaultGrid or None
        (a single one or None is taken as a list of one: the reduction's last step)

    Returns
    -------
    DefaultGrid

    Raises
    ------
    CampfireError
        Every candidate is None (no usable spectrum).

    Examples
    --------
    >>> g = pick_grid([None, DefaultGrid(np.arange(3.0), 'a', ((0.0, 2.0),)), DefaultGrid(np.arange(2.0), 'b', ((4.0, 5.0),))])
    >>> g.wavelength, g.source, g.coverage
    (array([0., 1., 2.]), 'a', ((0.0, 2.0), (4.0, 5.0)))
    """
    found = _candidates(grids)
    best = max(found, key=lambda g: g.wavelength.size)  # the first of equals, as stack_spectra
    return DefaultGrid(best.wavelength, best.source, tuple(merge_ranges(iv for g in found for iv in g.coverage)))


def union_of_items(items: Sequence[Item], *, rest_frame: bool = False) -> np.ndarray | None:
    """The union grid (:func:`~campfire.tasks.grids.union_grid`) of a batch's good spectra (None if none).

    Parameters
    ----------
    items : sequence of Item
    rest_frame : bool
        Divide each spectrum's wavelengths by 1 + its object's redshift first (items
        without a redshift are skipped, as the stack skips them).

    Returns
    -------
    numpy.ndarray or None

    Examples
    --------
    >>> union_of_items([]) is None
    True
    """
    waves = []
    for it in _good_items(items):
        w = it.value.wavelength[it.value.valid & np.isfinite(it.value.wavelength)]
        if rest_frame:
            z = it.ref.redshift
            if z is None or not np.isfinite(z) or z <= -1:
                continue
            w = w / (1.0 + z)
        if w.size >= 2:
            waves.append(w)
    return union_grid(waves) if waves else None


def union_of_grids(grids: Iterable[np.ndarray | None]) -> np.ndarray:
    """The union grid of per-batch :func:`union_of_items` results.

    Parameters
    ----------
    grids : iterable of numpy.ndarray or None
        (a single array or None is taken as a list of one: the reduction's last step)

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    CampfireError
        Every candidate is None (no usable spectrum).

    Examples
    --------
    >>> union_of_grids([None, np.linspace(1.0, 2.0, 11), np.linspace(3.0, 4.0, 3)]).size
    14
    """
    return union_grid(_candidates(grids))
