"""Batch helpers: the pure step functions applied to a *batch* of spectra at once.

A Dask task handles a batch (hundreds of spectra) so the scheduler's ~1 ms per task
stays small next to the work. This module only composes the science functions of
:mod:`campfire.tasks` (``read_spectrum``, ``calibrate_to_photometry``,
``resample_spectra``, ``stack_spectra``, the stack partial sums) over lists; it holds
no science of its own and imports no Dask (graphs depend on tasks, never back).

Items carry their failure with them: with ``errors='record'`` a spectrum that cannot
be read, calibrated or resampled becomes an :class:`Item` with a :class:`Failure`
(step + reason) and later steps pass it through, so one corrupt file never stops a
batch. With ``errors='raise'`` (the default) the exception propagates unchanged.

Examples
--------
>>> import numpy as np
>>> from campfire.models import SpectrumData
>>> spec = SpectrumData(np.linspace(1, 2, 50), np.ones(50), np.full(50, 0.1), spectrum_id='a')
>>> items = [Item(SpectrumRef('a', object_id='o1', data=spec))]
>>> out = open_items(items)
>>> out[0].value is spec
True
>>> bad = [Item(SpectrumRef('b', object_id='o2', url='/no/such/file.fits'))]
>>> open_items(bad, errors='record')[0].failure.step
'open'
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from campfire.errors import CampfireError, ValidationError
from campfire.models import Photometry, SpectrumData

__all__ = [
    "SpectrumRef",
    "Item",
    "Failure",
    "ERRORS",
    "resolve_items",
    "open_items",
    "calibrate_items",
    "resample_items",
    "map_items",
    "stack_object_items",
    "largest_grid",
    "pick_grid",
    "values_of",
]

ERRORS = ("raise", "record")


@dataclass(frozen=True, eq=False)
class SpectrumRef:
    """What a task needs to fetch and process one spectrum (small, picklable).

    ``url`` is a local path or an fsspec URL (``memory://``, ``s3://``, ``file://``) of the
    FITS file, or an ``http(s)://`` URL of the archive server (then the file is
    downloaded to ``dest``, a path relative to the client's data directory). ``data`` holds an in-memory spectrum instead of a file.
    ``redshift`` and ``photometry`` are the parent object's, for calibration and
    rest-frame stacks.
    """

    spectrum_id: str
    object_id: str = ""
    grating: str = ""
    url: str = ""
    file_hash: str = ""
    file_size: int = 0
    redshift: float = float("nan")
    photometry: Photometry | None = None
    data: SpectrumData | None = None
    dest: str = ""

    def token_parts(self) -> tuple:
        """The plain values that identify this input (for deterministic graph keys)."""
        phot = None
        if self.photometry is not None:
            p = self.photometry
            phot = (tuple(p.bands), p.flux.tobytes(), p.flux_err.tobytes(), p.wavelength.tobytes())
        data = None
        if self.data is not None:
            d = self.data
            data = (d.wavelength.tobytes(), d.fnu.tobytes(), d.fnu_err.tobytes(), d.spectrum_id, d.grating)
        z = None if self.redshift != self.redshift else float(self.redshift)
        return (self.spectrum_id, self.object_id, self.url, self.file_hash, z, phot, data, self.dest)

    def identity(self) -> tuple:
        """What the *content* of this input is, wherever it is read from: the token parts
        without the location when the content hash is known (a file downloaded since the
        last run is the same input)."""
        parts = self.token_parts()
        if self.file_hash:
            return parts[:2] + parts[3:7]
        return parts


@dataclass(frozen=True)
class Failure:
    """Why one spectrum (or object) could not be processed."""

    object_id: str
    spectrum_id: str
    step: str
    reason: str

    def __str__(self) -> str:
        who = self.spectrum_id or self.object_id
        return f"{who}: {self.step}: {self.reason}"


@dataclass(frozen=True, eq=False)
class Item:
    """One element of a batch: its reference, current value and history.

    ``value`` is a path after *download*, a :class:`SpectrumData` after *open*,
    *calibrate*, *resample* and *stack*, or whatever a ``map`` function returned.
    """

    ref: SpectrumRef
    value: Any = None
    calibration: Any = None
    failure: Failure | None = None
    inputs: tuple[str, ...] = ()
    failed_inputs: tuple[Failure, ...] = field(default=())
    info: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True unless a step failed for this element."""
        return self.failure is None


def _reason(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text if isinstance(err, CampfireError) else f"{type(err).__name__}: {text}"


def _check_errors(errors: str) -> None:
    if errors not in ERRORS:
        raise ValidationError(f"errors: expected 'raise' or 'record', got {errors!r}")


def _each(items: Sequence[Item], step: str, errors: str, fn: Callable[[Item], Item]) -> list[Item]:
    """Apply ``fn`` to the good items; failures pass through (or are recorded)."""
    _check_errors(errors)
    out = []
    for it in items:
        if it.failure is not None:
            out.append(it)
            continue
        if errors == "raise":
            out.append(fn(it))
            continue
        try:
            out.append(fn(it))
        except Exception as err:  # recorded per item; the batch goes on (issue: one bad object never stops it)
            out.append(replace(it, failure=Failure(it.ref.object_id, it.ref.spectrum_id, step, _reason(err))))
    return out


# -------------------------------------------------------------------------------- steps
def resolve_items(
    items: Sequence[Item],
    *,
    errors: str = "raise",
    download: Callable[[SpectrumRef], str] | None = None,
) -> list[Item]:
    """The *download* step: make each file readable here and put its path in ``value``.

    A local path or fsspec URL is checked for existence (an archive root on shared or
    object storage needs no copy); an ``http(s)://`` URL is fetched with
    ``download(ref)`` (streamed, verified against ``ref.file_hash``, renamed into
    place), which returns the local path.
    """
    def one(it: Item) -> Item:
        ref = it.ref
        if ref.data is not None:
            return replace(it, value=ref.data)
        if not ref.url:
            raise CampfireError(f"{ref.spectrum_id}: no file location")
        if ref.url.startswith(("http://", "https://")):
            if download is None:
                raise CampfireError(f"{ref.spectrum_id}: remote file but no downloader configured")
            return replace(it, value=str(download(ref)))
        import fsspec.core

        fs, path = fsspec.core.url_to_fs(ref.url)
        if not fs.exists(path):
            from campfire.errors import NotFoundError

            raise NotFoundError(f"no such file: {ref.url}")
        return replace(it, value=ref.url)

    return _each(items, "download", errors, one)


def open_items(items: Sequence[Item], *, errors: str = "raise") -> list[Item]:
    """The *open* step: ``value`` → :class:`SpectrumData` (files read through fsspec)."""
    from campfire.io.fits import read_spectrum

    def one(it: Item) -> Item:
        if isinstance(it.value, SpectrumData):
            return it
        if it.ref.data is not None:
            return replace(it, value=it.ref.data)
        spec = read_spectrum(it.value if it.value is not None else it.ref.url)
        if not spec.object_id and it.ref.object_id:
            spec.object_id = it.ref.object_id
        return replace(it, value=spec)

    return _each(items, "open", errors, one)


def calibrate_items(
    items: Sequence[Item],
    *,
    errors: str = "raise",
    photometry: Photometry | None = None,
    options: dict | None = None,
) -> list[Item]:
    """The *calibrate* step: ``calibrate_to_photometry`` per spectrum.

    ``photometry`` overrides each object's own (``ref.photometry``); the
    :class:`~campfire.tasks.calibrate.CalibrationResult` is kept in ``calibration``.
    """
    from campfire.tasks.calibrate import calibrate_to_photometry

    def one(it: Item) -> Item:
        phot = photometry if photometry is not None else it.ref.photometry
        if phot is None:
            raise CampfireError(f"object {it.ref.object_id or '?'} has no photometry to calibrate against")
        result = calibrate_to_photometry(it.value, phot, **(options or {}))
        return replace(it, value=result.spectrum, calibration=result)

    return _each(items, "calibrate", errors, one)


def resample_items(
    items: Sequence[Item],
    *,
    grid: np.ndarray,
    errors: str = "raise",
    min_coverage: float | None = None,
) -> list[Item]:
    """The *resample* step: every good spectrum onto ``grid`` in one batched call.

    If the batched call fails (one spectrum with a broken grid), the batch is redone
    one spectrum at a time so only the bad one is recorded.
    """
    from campfire.tasks.resample import resample_spectra

    _check_errors(errors)
    kw = {} if min_coverage is None else {"min_coverage": min_coverage}
    good = [i for i, it in enumerate(items) if it.failure is None]
    out = list(items)
    try:
        specs = resample_spectra([items[i].value for i in good], grid, **kw)
    except Exception:
        if errors == "raise" and len(good) <= 1:
            raise
        return _each(items, "resample", errors, lambda it: replace(it, value=resample_spectra([it.value], grid, **kw)[0]))
    for i, spec in zip(good, specs):
        out[i] = replace(items[i], value=spec)
    return out


def map_items(items: Sequence[Item], *, func: Callable[[Any], Any], errors: str = "raise", step: str = "map") -> list[Item]:
    """Apply a user function to each good ``value``."""
    return _each(items, step, errors, lambda it: replace(it, value=func(it.value)))


def _group_by_object(items: Sequence[Item]) -> dict[str, list[Item]]:
    groups: dict[str, list[Item]] = {}
    for it in items:
        # a spectrum without an object is its own group (as when batches are made)
        groups.setdefault(it.ref.object_id or "\0" + it.ref.spectrum_id, []).append(it)
    return groups


def stack_object_items(
    items: Sequence[Item],
    *,
    method: str = "weighted_mean",
    grid: np.ndarray | None = None,
    errors: str = "raise",
    rest_frame: bool = False,
    options: dict | None = None,
) -> list[Item]:
    """Per-object stacks: ``stack_spectra`` of each object's good spectra (batches never split objects).

    With ``rest_frame`` each spectrum is shifted by its object's redshift first. An
    object whose spectra all failed becomes a failed item naming their reasons;
    partial failures are kept in ``failed_inputs``.
    """
    from campfire.tasks.stack import stack_spectra

    _check_errors(errors)
    out = []
    for group in _group_by_object(items).values():
        object_id = group[0].ref.object_id
        good = [it for it in group if it.failure is None]
        bad = tuple(it.failure for it in group if it.failure is not None)
        ref = object_refs([group[0].ref])[0]
        if not good:
            reason = "; ".join(f"{f.spectrum_id}: {f.step}: {f.reason}" for f in bad)
            out.append(Item(ref, failure=Failure(object_id, "", "stack", f"no usable spectra ({reason})"), failed_inputs=bad))
            continue
        try:
            kw = dict(options or {})
            if rest_frame:
                kw["redshift"] = [it.ref.redshift for it in good]
            spec = stack_spectra(
                [it.value for it in good], method=method, wavelength_grid=grid, object_id=object_id or None, **kw,
            )
        except Exception as err:
            if errors == "raise":
                raise
            out.append(Item(ref, failure=Failure(object_id, "", "stack", _reason(err)), failed_inputs=bad))
            continue
        bands = sorted({b for it in good if it.calibration is not None for b in it.calibration.bands_used})
        info = {"bands_used": bands} if bands else {}
        out.append(Item(ref, value=spec, inputs=tuple(it.ref.spectrum_id for it in good), failed_inputs=bad, info=info))
    return out


def largest_grid(items: Sequence[Item]) -> np.ndarray | None:
    """The wavelength array of the good spectrum with the most pixels (None if none)."""
    best = None
    for it in items:
        if it.failure is None and isinstance(it.value, SpectrumData):
            if best is None or it.value.n_pixels > best.size:
                best = it.value.wavelength
    return best


def pick_grid(grids: Iterable[np.ndarray | None]) -> np.ndarray:
    """The largest of per-batch :func:`largest_grid` results (first wins on ties)."""
    best = None
    for g in grids:
        if g is not None and (best is None or g.size > best.size):
            best = g
    if best is None:
        raise CampfireError("stack: no usable spectra to take a wavelength grid from")
    return best


def pick_grid_one(grid: np.ndarray | None) -> np.ndarray:
    """:func:`pick_grid` of a single candidate (the last step of the grid reduction)."""
    return pick_grid([grid])


def values_of(items: Sequence[Item]) -> list[Any]:
    """Values of the items, a :class:`Failure` in place of each failed one."""
    return [it.value if it.failure is None else it.failure for it in items]


def nan_safe(x: float) -> float | None:
    """``None`` for NaN (JSON-friendly), else ``x``."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


# --------------------------------------------------------------------------- population stacks
@dataclass(frozen=True)
class PopulationPartial:
    """A stack :class:`~campfire.tasks.stack.Partial` plus the inputs left out and why."""

    partial: Any
    excluded: tuple[Failure, ...] = ()


def _prepare_population(
    items: Sequence[Item],
    *,
    grid: np.ndarray,
    rest_frame: bool,
    window: tuple[float, float] | None,
    on_grid: bool,
    min_coverage: float | None,
) -> tuple[list[SpectrumData], tuple[Failure, ...]]:
    """Good items → spectra on ``grid`` (rest frame and window-normalised when asked)."""
    from campfire.tasks.resample import DEFAULT_MIN_COVERAGE, resample_spectra
    from campfire.tasks.stack import normalize_in_window, to_rest_frame

    excluded = [it.failure for it in items if it.failure is not None]
    specs = []
    for it in items:
        if it.failure is not None:
            continue
        try:
            spec = it.value
            if rest_frame:
                spec = to_rest_frame(spec, it.ref.redshift)
            if window is not None:
                spec = normalize_in_window(spec, window)
            specs.append(spec)
        except Exception as err:  # left out of the population, with the reason recorded
            excluded.append(Failure(it.ref.object_id, it.ref.spectrum_id, "stack", _reason(err)))
    if not on_grid and specs:
        cov = DEFAULT_MIN_COVERAGE if min_coverage is None else min_coverage
        specs = resample_spectra(specs, grid, min_coverage=cov)
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
    """
    from campfire.tasks.stack import stack_partials

    specs, excluded = _prepare_population(items, grid=grid, rest_frame=rest_frame, window=window, on_grid=on_grid,
                                          min_coverage=min_coverage)
    return PopulationPartial(stack_partials(specs, n_pixels=grid.size), excluded)


def combine_population(parts: Sequence[PopulationPartial]) -> PopulationPartial:
    """Sum of population partials (the tree reduction's combine)."""
    from campfire.tasks.stack import sum_partials

    parts = list(parts)
    return PopulationPartial(sum_partials([p.partial for p in parts]), tuple(f for p in parts for f in p.excluded))


def _population_meta(rest_frame: bool, window, excluded: Sequence[Failure]) -> dict:
    meta: dict[str, Any] = {}
    if rest_frame:
        meta["rest_frame"] = True
    if window is not None:
        meta["norm_window"] = list(window)
    if excluded:
        meta["excluded"] = [str(f) for f in excluded]
    return meta


def finalize_population(
    total: PopulationPartial,
    grid: np.ndarray,
    *,
    method: str = "weighted_mean",
    rest_frame: bool = False,
    window: tuple[float, float] | None = None,
    object_id: str | None = None,
) -> SpectrumData:
    """The population stack from the total partial; fails when no input was usable.

    Named like ``stack_spectra``'s result (``<object_id>_stack`` or ``stack``).
    """
    from campfire.tasks.stack import finalize_stack

    if total.partial.n_spectra == 0:
        why = "; ".join(str(f) for f in total.excluded[:5])
        raise CampfireError(f"stack: no usable spectra{f' ({why})' if why else ''}")
    return finalize_stack(total.partial, grid, method, object_id=object_id,
                          meta=_population_meta(rest_frame, window, total.excluded))


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
    """One batch split into wavelength chunks for a median: ``[(fnu, err, ids, excluded, gratings), ...]``.

    The grid is cut into ``n_chunks`` nearly equal pixel ranges; every chunk carries
    the batch's ids, exclusions and gratings so the final step can report them.
    """
    edges = chunk_edges(grid.size, n_chunks)
    specs, excluded = _prepare_population(items, grid=grid, rest_frame=rest_frame, window=window, on_grid=on_grid,
                                          min_coverage=min_coverage)
    f = np.array([s.fnu for s in specs], float).reshape(len(specs), grid.size)
    e = np.array([s.fnu_err for s in specs], float).reshape(len(specs), grid.size)
    ids = tuple(s.spectrum_id for s in specs)
    gratings = tuple(s.grating for s in specs)
    return [(f[:, lo:hi], e[:, lo:hi], ids, excluded, gratings) for lo, hi in zip(edges[:-1], edges[1:])]


def chunk_edges(n_pixels: int, n_chunks: int) -> list[int]:
    """Pixel boundaries of ``n_chunks`` nearly equal chunks of ``n_pixels``.

    >>> chunk_edges(10, 3)
    [0, 3, 7, 10]
    """
    return [int(round(i * n_pixels / n_chunks)) for i in range(n_chunks + 1)]


def median_of_chunk(pieces: Sequence[tuple]) -> tuple:
    """The median over every batch's piece of one chunk (``median_chunk``)."""
    from campfire.tasks.stack import median_chunk

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
    *,
    rest_frame: bool = False,
    window: tuple[float, float] | None = None,
    object_id: str | None = None,
) -> SpectrumData:
    """Concatenate the chunk medians into the population stack."""
    from campfire.tasks.stack import stack_grating

    ids = chunks[0][3] if chunks else ()
    excluded = chunks[0][4] if chunks else ()
    gratings = chunks[0][5] if chunks else ()
    if not ids:
        why = "; ".join(str(f) for f in excluded[:5])
        raise CampfireError(f"stack: no usable spectra{f' ({why})' if why else ''}")
    med = np.concatenate([c[0] for c in chunks])
    err = np.concatenate([c[1] for c in chunks])
    cnt = np.concatenate([c[2] for c in chunks]).astype(np.int64)
    meta = {"method": "median", "n_spectra": len(ids), "inputs": list(ids)}
    meta.update(_population_meta(rest_frame, window, excluded))
    return SpectrumData(np.asarray(grid, float).copy(), med, err, spectrum_id=f"{object_id}_stack" if object_id else "stack",
                        grating=stack_grating(gratings), object_id=object_id, count=cnt, meta=meta)


def object_refs(refs: Sequence[SpectrumRef]) -> list[SpectrumRef]:
    """The reference of each object's stack, in order of first appearance (what
    :func:`stack_object_items` returns as ``Item.ref``)."""
    seen: dict[str, SpectrumRef] = {}
    for r in refs:
        key = r.object_id or "\0" + r.spectrum_id
        if key not in seen:
            seen[key] = replace(r, spectrum_id=r.object_id or r.spectrum_id, grating="", url="", file_hash="",
                                        data=None, dest="")
    return list(seen.values())


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
    """
    from campfire.tasks.stack import stack_spectra

    specs, excluded = _prepare_population(items, grid=np.empty(0), rest_frame=rest_frame, window=window,
                                          on_grid=True, min_coverage=None)
    if not specs:
        why = "; ".join(str(f) for f in excluded[:5])
        raise CampfireError(f"stack: no usable spectra{f' ({why})' if why else ''}")
    out = stack_spectra(specs, method=method, wavelength_grid=grid, object_id=object_id)
    out.meta.update(_population_meta(rest_frame, window, excluded))
    return out


def guarded(*args, func: Callable, step: str = "stack", object_id: str = "", **kwargs):
    """``func(*args, **kwargs)``, or a :class:`Failure` when it raises (``errors='record'`` results)."""
    try:
        return func(*args, **kwargs)
    except Exception as err:  # recorded: a population stack with no usable input must not stop the run
        return Failure(object_id, "", step, _reason(err))
