"""Flux-conserving resampling (bin-overlap integration), the SpectRes algorithm.

Pixel edges sit half-way between wavelength centres (end pixels mirrored), exactly
as in ``spectres.make_bins``. An output bin's value is the overlap-weighted mean of
the input pixels it covers,

    f_j = Σ_i o_ij f_i / Σ_i o_ij,      σ_j = √(Σ_i (o_ij σ_i)²) / Σ_i o_ij,

where o_ij is the wavelength overlap of input pixel i with output bin j. This
conserves ∫ f dλ and propagates independent errors the way ``spectres`` does.

Bad pixels — flux not finite, or (when errors are given) error not finite or ≤ 0,
which covers NaN-padded DJA v4 files and the flux = err = 0 of older msaexp files —
are left out of both sums. **Partially bad output bins**: a bin takes the
overlap-weighted mean of its *good* pixels when those cover at least
``min_coverage`` (default 0.5) of the bin's overlap, and its error comes from the
good pixels only (so it grows as coverage shrinks); below that it is ``fill``. A bin
whose edges reach outside the input's first/last edge is ``fill``, as in SpectRes.
Where every covered pixel is good the result equals SpectRes's to rounding.

Sums run directly over each bin's pixels (``np.add.reduceat`` for the fully covered
ones, the two partial pixels added explicitly), never as differences of running
sums, so values near zero keep their relative precision. The compiled kernels do the
same per bin in one sweep and batch many spectra per call: in C, built at install
(``engine='c'``), or numba's (``'numba'``), the same numbers bit for bit; the numpy path
is the fallback when neither loads (:mod:`campfire.tasks._jit`).
"""
from __future__ import annotations

import functools
import os
from typing import Sequence

import numpy as np

from campfire.errors import ValidationError
from campfire.tasks._jit import c_kernels, resample_kernels, resolve_engine

__all__ = [
    "resample_flux",
    "resample_spectrum",
    "resample_batch",
    "resample_spectra",
    "bin_edges",
    "overlap_matrix",
    "check_grid",
    "DEFAULT_MIN_COVERAGE",
]

DEFAULT_MIN_COVERAGE = 0.5


def bin_edges(wavelength: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel edges and widths from centres (SpectRes ``make_bins``).

    Parameters
    ----------
    wavelength : numpy.ndarray
        Pixel centres (≥ 2, increasing).

    Returns
    -------
    (edges, widths) : numpy.ndarray
        ``n + 1`` edges half-way between centres (end pixels mirrored) and ``n`` widths.

    Examples
    --------
    >>> bin_edges(np.array([1.0, 2.0, 4.0]))
    (array([0.5, 1.5, 3. , 5. ]), array([1. , 1.5, 2. ]))
    """
    w = np.asarray(wavelength, float)
    edges = np.empty(w.size + 1)
    widths = np.empty(w.size)
    edges[0] = w[0] - (w[1] - w[0]) / 2
    widths[-1] = w[-1] - w[-2]
    edges[-1] = w[-1] + (w[-1] - w[-2]) / 2
    edges[1:-1] = (w[1:] + w[:-1]) / 2
    widths[:-1] = edges[1:-1] - edges[:-2]
    return edges, widths


def check_grid(name: str, w) -> np.ndarray:
    """``w`` as a wavelength grid: a 1D, finite, strictly increasing float array of ≥ 2 values.

    The one grid check of campfire (resampling, stacks, ``LazySpectra.resample``,
    workflow grids): the error names the parameter.

    Parameters
    ----------
    name : str
        The parameter name for the message (``'grid'``, ``'wavelength_grid'`` ...).
    w : array_like
        Wavelengths [μm].

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValidationError
        Not numbers, not 1D, fewer than 2 values, not finite or not strictly increasing.

    Examples
    --------
    >>> check_grid('grid', [1, 2, 3])
    array([1., 2., 3.])
    """
    try:
        arr = np.asarray(w, dtype=float)
    except (TypeError, ValueError):
        raise ValidationError(f"{name}: expected an increasing array of wavelengths [μm], got {w!r}") from None
    if arr.ndim != 1 or arr.size < 2:
        raise ValidationError(f"{name}: expected a 1D array of ≥ 2 wavelengths, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValidationError(f"{name}: wavelengths must be finite")
    if not np.all(np.diff(arr) > 0):
        raise ValidationError(f"{name}: wavelengths must increase strictly")
    return arr


def _check_coverage(min_coverage) -> float:
    mc = float(min_coverage)
    if not 0.0 <= mc <= 1.0:
        raise ValidationError(f"min_coverage: expected a fraction in [0, 1], got {min_coverage!r}")
    return mc


def _bins_rows(w2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`bin_edges` for every row of a 2D array of grids."""
    edges = np.empty((w2.shape[0], w2.shape[1] + 1))
    widths = np.empty(w2.shape)
    edges[:, 0] = w2[:, 0] - (w2[:, 1] - w2[:, 0]) / 2
    widths[:, -1] = w2[:, -1] - w2[:, -2]
    edges[:, -1] = w2[:, -1] + (w2[:, -1] - w2[:, -2]) / 2
    edges[:, 1:-1] = (w2[:, 1:] + w2[:, :-1]) / 2
    widths[:, :-1] = edges[:, 1:-1] - edges[:, :-2]
    return edges, widths


def overlap_matrix(new_w: np.ndarray, old_w: np.ndarray):
    """Sparse (n_old × n_new) matrix of pixel/bin overlaps [μm] and the in-range mask.

    Column j holds the overlap of every input pixel with output bin j (SpectRes's
    arithmetic for the two partial pixels); bins reaching outside the input are empty.

    Parameters
    ----------
    new_w, old_w : numpy.ndarray
        Output bin and input pixel centres (increasing).

    Returns
    -------
    (scipy.sparse.csc_matrix, numpy.ndarray of bool)

    Examples
    --------
    >>> mat, inside = overlap_matrix(np.array([1.5, 2.5]), np.arange(1.0, 4.0))
    >>> mat.toarray().round(2), inside
    (array([[0.5, 0. ],
           [0.5, 0.5],
           [0. , 0.5]]), array([ True,  True]))
    """
    from scipy import sparse

    oe, ow = bin_edges(old_w)
    ne, _ = bin_edges(new_w)
    n, m = old_w.size, new_w.size
    a, b = ne[:-1], ne[1:]
    inside = (a >= oe[0]) & (b <= oe[-1])
    start = np.clip(np.searchsorted(oe, a, side="right") - 1, 0, n - 1)
    stop = np.maximum(np.clip(np.searchsorted(oe, b, side="left") - 1, 0, n - 1), start)
    cols = np.flatnonzero(inside)
    counts = (stop - start + 1)[cols]
    col_idx = np.repeat(cols, counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    row_idx = np.repeat(start[cols], counts) + (np.arange(counts.sum()) - first)
    vals = ow[row_idx].astype(float)
    is_start = row_idx == start[col_idx]
    is_stop = row_idx == stop[col_idx]
    single = is_start & is_stop
    vals = np.where(is_start & ~single, ow[row_idx] * ((oe[row_idx + 1] - a[col_idx]) / (oe[row_idx + 1] - oe[row_idx])), vals)
    vals = np.where(is_stop & ~single, ow[row_idx] * ((b[col_idx] - oe[row_idx]) / (oe[row_idx + 1] - oe[row_idx])), vals)
    vals = np.where(single, b[col_idx] - a[col_idx], vals)
    mat = sparse.csc_matrix((vals, (row_idx, col_idx)), shape=(n, m))
    return mat, inside


def _resample_shared_numpy(new_w, old_w, flux, err, fill, min_cov):
    """numpy path for one input grid: a sparse overlap matrix applied to every row."""
    mat, inside = overlap_matrix(new_w, old_w)
    lead = flux.shape[:-1]
    n, m = old_w.size, new_w.size
    f2 = flux.reshape(-1, n)
    good = np.isfinite(f2)
    if err is not None:
        e2 = err.reshape(-1, n)
        good &= np.isfinite(e2) & (e2 > 0)
    fz = np.where(good, f2, 0.0)
    den_all = np.asarray(mat.sum(axis=0)).ravel()
    if good.all():
        den = np.broadcast_to(den_all, (f2.shape[0], m))
    else:
        den = (mat.T @ good.T.astype(float)).T
    num = (mat.T @ fz.T).T
    with np.errstate(invalid="ignore", divide="ignore"):
        out_f = num / den
        ok = inside & (den > 0) & (den >= min_cov * den_all)
        out_f = np.where(ok, out_f, fill).reshape(lead + (m,))
        if err is None:
            return out_f, None
        ez2 = np.where(good, e2, 0.0) ** 2
        var = (mat.multiply(mat).T @ ez2.T).T
        out_e = np.where(ok, np.sqrt(var) / den, fill).reshape(lead + (m,))
    return out_f, out_e


def _resample_numpy(new_w, old_w, flux, err, fill, min_cov):
    """numpy path. ``old_w`` 1D (one grid for all rows of ``flux``, any leading shape)
    or 2D (one grid per row of a 2D ``flux``)."""
    if old_w.ndim == 1:
        return _resample_shared_numpy(new_w, old_w, flux, err, fill, min_cov)
    # one grid per row: start/stop pointers per row, then everything vectorised
    ne, _ = bin_edges(new_w)
    a, b = ne[:-1], ne[1:]
    lead = flux.shape[:-1]
    n, m = flux.shape[-1], new_w.size
    f2 = flux.reshape(-1, n)
    e2 = err.reshape(-1, n) if err is not None else None
    rows = f2.shape[0]
    oe, ow = _bins_rows(old_w)
    start = np.empty((rows, m), np.int64)
    stop = np.empty((rows, m), np.int64)
    for r in range(rows):
        # first/last input pixel touched by each bin (SpectRes's start/stop pointers)
        start[r] = np.searchsorted(oe[r], a, side="right") - 1
        stop[r] = np.searchsorted(oe[r], b, side="left") - 1
    inside = (a >= oe[:, :1]) & (b <= oe[:, -1:])
    start = np.clip(start, 0, n - 1)
    stop = np.maximum(np.clip(stop, 0, n - 1), start)
    single = start == stop

    good = np.isfinite(f2)
    if e2 is not None:
        good &= np.isfinite(e2) & (e2 > 0)
    fz = np.where(good, f2, 0.0)
    ez = np.where(good, e2, 0.0) if e2 is not None else None

    def at(arr, idx):
        return np.take_along_axis(arr, idx, axis=1)

    # overlap of the two partial pixels (same arithmetic as SpectRes)
    oe_s1, oe_s0 = at(oe, start + 1), at(oe, start)
    oe_t1, oe_t0 = at(oe, stop + 1), at(oe, stop)
    o_start = at(ow, start) * ((oe_s1 - a) / (oe_s1 - oe_s0))
    o_stop = at(ow, stop) * ((b - oe_t0) / (oe_t1 - oe_t0))
    start_b, stop_b = start, stop
    gs = np.take_along_axis(good, start_b, axis=1)
    gt = np.take_along_axis(good, stop_b, axis=1)

    # fully covered pixels start+1 .. stop-1: direct segment sums with reduceat over the
    # flattened rows (segments never cross a row; bins are adjacent so indices increase)
    lo = np.minimum(start_b + 1, n - 1)
    hi = np.minimum(np.maximum(stop_b, start_b + 1), n - 1)
    has_full = stop_b > start_b + 1
    idx = np.empty((rows, 2 * m), np.int64)
    idx[:, 0::2] = lo
    idx[:, 1::2] = hi
    idx = np.maximum.accumulate(idx, axis=1) + (np.arange(rows) * n)[:, None]
    idx = idx.ravel()

    def seg(values2d):
        out = np.add.reduceat(values2d.ravel(), idx).reshape(rows, 2 * m)[:, 0::2]
        return np.where(has_full, out, 0.0)

    ow_b = ow
    num = seg(fz * ow_b) + gs * o_start * np.take_along_axis(fz, start_b, 1) + gt * o_stop * np.take_along_axis(fz, stop_b, 1)
    den = seg(good * ow_b) + gs * o_start + gt * o_stop
    den_all = seg(np.ascontiguousarray(ow_b)) + o_start + o_stop
    with np.errstate(invalid="ignore", divide="ignore"):
        out_f = num / den
        if e2 is not None:
            var = (
                seg((ez * ow_b) ** 2)
                + gs * (o_start * np.take_along_axis(ez, start_b, 1)) ** 2
                + gt * (o_stop * np.take_along_axis(ez, stop_b, 1)) ** 2
            )
            out_e = np.sqrt(var) / den
    # a bin inside one input pixel takes that pixel's values (SpectRes)
    ok = np.where(single, inside & gs, inside & (den > 0) & (den >= min_cov * den_all))
    out_f = np.where(ok, np.where(single, np.take_along_axis(f2, start_b, 1), out_f), fill)
    out_f = out_f.reshape(lead + (m,))
    if e2 is None:
        return out_f, None
    out_e = np.where(ok, np.where(single, np.take_along_axis(e2, start_b, 1), out_e), fill)
    return out_f, out_e.reshape(lead + (m,))


_FLOAT64 = np.dtype(np.float64)  # native float64 is one dtype object: an identity test is enough


def _kernels(eng: str):
    """The kernel module of a resolved engine, 'c' or 'numba'."""
    return c_kernels() if eng == "c" else resample_kernels()


@functools.lru_cache(maxsize=1)
def _one_kernel():
    """The compiled one-spectrum kernel of ``engine='auto'`` (C, else numba), or None (looked up once)."""
    eng = resolve_engine("auto", family="resample")
    return None if eng == "numpy" else _kernels(eng).resample_one_checked


def _resample_one_fast(new_wavelength, wavelength, flux, flux_err, fill, min_coverage, engine):
    """:func:`resample_flux` of one spectrum given as 1D float64 arrays, in one compiled call.

    None when the inputs are anything else (lists, N-D flux, another engine, a bad grid,
    mismatched lengths): the general path then converts, checks and names the problem.
    The tests are ordered cheapest first and cost ~0.5 µs in all: this is the path of
    the spectres-compatible loop over spectra, where the resampling itself takes a few µs.
    """
    if not (engine == "auto" and type(new_wavelength) is np.ndarray and type(wavelength) is np.ndarray
            and type(flux) is np.ndarray and new_wavelength.dtype is wavelength.dtype is flux.dtype is _FLOAT64
            and new_wavelength.ndim == 1 and wavelength.ndim == 1 and flux.ndim == 1
            and isinstance(fill, float) and isinstance(min_coverage, float) and 0.0 <= min_coverage <= 1.0):
        return None
    has_err = flux_err is not None
    if has_err and not (type(flux_err) is np.ndarray and flux_err.dtype is _FLOAT64 and flux_err.ndim == 1):
        return None
    one = _one_kernel()
    if one is None:
        return None
    out_f = np.empty(new_wavelength.shape[0])
    if not has_err:  # (flux and out_f stand in for the error arrays, never read or written)
        return out_f if one(new_wavelength, wavelength, flux, flux, False, fill, min_coverage, out_f, out_f) else None
    out_e = np.empty(new_wavelength.shape[0])
    # the kernel checks both grids and the lengths of flux and flux_err
    return (out_f, out_e) if one(new_wavelength, wavelength, flux, flux_err, True, fill, min_coverage, out_f, out_e) \
        else None


def resample_flux(
    new_wavelength,
    wavelength,
    flux,
    flux_err=None,
    fill: float = np.nan,
    *,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    engine: str = "auto",
):
    """Flux-conserving resampling onto a new wavelength grid (``spectres`` argument order).

    Parameters
    ----------
    new_wavelength : array_like
        Centres of the output bins [μm], strictly increasing.
    wavelength : array_like
        Centres of the input pixels [μm], strictly increasing.
    flux : array_like
        f_ν (or any flux density) on ``wavelength``: 1D, or N-D with the last axis
        along wavelength (many spectra on one input grid).
    flux_err : array_like, optional
        1σ errors, same shape as ``flux``; when given, ``(flux, err)`` is returned.
    fill : float
        Value of output bins that reach outside the input range or are too poorly
        covered by good pixels.
    min_coverage : float
        Fraction of an output bin that good (finite, positive-error) pixels must cover
        for the bin to be defined (see the module notes). 0 keeps any bin with a good pixel.
    engine : {'auto', 'c', 'numba', 'numpy'}
        'auto' takes the C kernels built at install, else numba's, else numpy. 'c' and
        'numba' give the same numbers bit for bit; numpy's agree to a few ulps.

    Returns
    -------
    numpy.ndarray or tuple of numpy.ndarray
        Resampled flux (shape ``flux.shape[:-1] + (len(new_wavelength),)``), and its
        error when ``flux_err`` was given.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.linspace(1.0, 2.0, 11)
    >>> resample_flux(np.array([1.2, 1.5, 1.8]), w, np.ones(11))
    array([1., 1., 1.])
    >>> f, e = resample_flux(np.array([1.25, 1.45]), w, np.ones(11), np.full(11, 0.1))
    >>> e.round(4)
    array([0.0707, 0.0707])

    Raises
    ------
    ValidationError
        A grid that is not 1D, finite and strictly increasing, arrays of mismatched
        shapes, a bad ``min_coverage`` or an unknown ``engine``.
    """
    fast = _resample_one_fast(new_wavelength, wavelength, flux, flux_err, fill, min_coverage, engine)
    if fast is not None:
        return fast
    new_w = check_grid("new_wavelength", new_wavelength)
    old_w = check_grid("wavelength", wavelength)
    f = np.asarray(flux, dtype=float)
    if f.ndim < 1 or f.shape[-1] != old_w.size:
        raise ValidationError(
            f"flux: the last axis must match wavelength ({old_w.size} values), got shape {f.shape}"
        )
    e = None
    if flux_err is not None:
        e = np.asarray(flux_err, dtype=float)
        if e.shape != f.shape:
            raise ValidationError(f"flux_err: expected the shape of flux {f.shape}, got {e.shape}")
    min_cov = _check_coverage(min_coverage)
    fill = float(fill)
    eng = resolve_engine(engine, family="resample")
    if eng == "numpy":
        out_f, out_e = _resample_numpy(new_w, old_w, f, e, fill, min_cov)
    else:
        lead = f.shape[:-1]
        f2 = np.ascontiguousarray(f.reshape(-1, old_w.size))
        e2 = np.ascontiguousarray(e.reshape(-1, old_w.size)) if e is not None else np.zeros((1, old_w.size))
        out_f = np.empty((f2.shape[0], new_w.size))
        out_e = np.empty_like(out_f) if e is not None else np.empty((1, 1))
        _kernels(eng).resample_shared(new_w, old_w, f2, e2, e is not None, fill, min_cov, out_f, out_e)
        out_f = out_f.reshape(lead + (new_w.size,))
        out_e = out_e.reshape(lead + (new_w.size,)) if e is not None else None
    return (out_f, out_e) if e is not None else out_f


def resample_batch(
    new_wavelength,
    wavelengths: Sequence[np.ndarray] | np.ndarray,
    fluxes: Sequence[np.ndarray] | np.ndarray,
    errors: Sequence[np.ndarray] | np.ndarray | None = None,
    fill: float = np.nan,
    *,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    engine: str = "auto",
    check: bool = True,
    parallel: bool = False,
):
    """Resample many spectra, each on its own input grid, onto one output grid.

    The real case for archives: every spectrum has its own wavelengths. With the C or
    numba kernels the whole batch is one compiled call (Python overhead paid once per
    batch); otherwise spectra go through the numpy path, grouped by length.

    Parameters
    ----------
    new_wavelength : array_like
        Output bin centres [μm].
    wavelengths, fluxes : sequence of 1D arrays, or 2D arrays (one row per spectrum)
        Input grids and fluxes; lengths may differ between spectra.
    errors : same layout as ``fluxes``, optional
    fill, min_coverage, engine
        As in :func:`resample_flux`.
    check : bool
        Validate every input grid (strictly increasing, finite). Turn off only for
        grids you have validated already.
    parallel : bool
        Spread the batch over all cores (the C kernel on one thread per core, numba's
        ``prange``). Off by default: under Dask the batches already run in parallel,
        one per worker thread.

    Returns
    -------
    (flux, err) : tuple of numpy.ndarray
        Arrays of shape (n_spectra, len(new_wavelength)); ``err`` is None without errors.

    Examples
    --------
    >>> import numpy as np
    >>> grids = [np.linspace(1, 2, 50), np.linspace(0.9, 2.1, 70)]
    >>> f, e = resample_batch(np.linspace(1.1, 1.9, 9), grids, [np.ones(50), np.ones(70)])
    >>> f.shape, bool(np.allclose(f, 1)), e
    ((2, 9), True, None)

    Raises
    ------
    ValidationError
        As :func:`resample_flux`; the message names the offending spectrum.
    """
    new_w = check_grid("new_wavelength", new_wavelength)
    min_cov = _check_coverage(min_coverage)
    fill = float(fill)
    has_err = errors is not None
    eng = resolve_engine(engine, family="resample")
    n_spec = len(wavelengths)
    if len(fluxes) != n_spec or (has_err and len(errors) != n_spec):
        raise ValidationError("wavelengths, fluxes, errors: expected one entry per spectrum in each")
    if n_spec == 0:
        return np.empty((0, new_w.size)), (np.empty((0, new_w.size)) if has_err else None)
    rect = isinstance(wavelengths, np.ndarray) and wavelengths.ndim == 2
    if eng != "numpy" and not rect:
        # a list of arrays: concatenate and resample a chunk at a time, so the flat
        # buffers stay cache-sized (one 50 MB concatenation of 10,000 spectra costs
        # more than the resampling itself)
        out_f = np.empty((n_spec, new_w.size))
        out_e = np.empty((n_spec, new_w.size)) if has_err else None

        def chunks(first, last):  # spectra first..last-1, a chunk at a time, in order
            for lo in range(first, last, BATCH_CHUNK):
                hi = min(lo + BATCH_CHUNK, last)
                _list_chunk(eng, new_w, wavelengths[lo:hi], fluxes[lo:hi], errors[lo:hi] if has_err else None, fill,
                            min_cov, check, parallel and eng == "numba", out_f[lo:hi],
                            out_e[lo:hi] if has_err else None, lo)

        if parallel and eng == "c":  # whole chunks per thread: the serial path's chunks, and its first error
            _in_threads(chunks, n_spec, BATCH_CHUNK)
        else:
            chunks(0, n_spec)
        return out_f, out_e
    if rect:
        w2 = np.ascontiguousarray(wavelengths, dtype=float)
        f2 = np.ascontiguousarray(fluxes, dtype=float)
        e2 = np.ascontiguousarray(errors, dtype=float) if has_err else None
        if f2.shape != w2.shape or (has_err and e2.shape != w2.shape):
            raise ValidationError(f"fluxes, errors: expected the shape of wavelengths {w2.shape}")
        lengths = np.full(n_spec, w2.shape[1], np.int64)
        wflat, fflat = w2.ravel(), f2.ravel()
        eflat = e2.ravel() if has_err else None
    else:
        ws = [np.asarray(w, float) for w in wavelengths]
        lengths = np.fromiter((w.size for w in ws), np.int64, n_spec)
        wflat = np.concatenate(ws)
        fflat = np.concatenate([np.asarray(f, float).ravel() for f in fluxes])
        eflat = np.concatenate([np.asarray(e, float).ravel() for e in errors]) if has_err else None
        if fflat.size != wflat.size or (has_err and eflat.size != wflat.size):
            for i, (w, f) in enumerate(zip(ws, fluxes)):
                if np.shape(f) != w.shape or (has_err and np.shape(errors[i]) != w.shape):
                    raise ValidationError(f"fluxes[{i}], errors[{i}]: expected the shape of wavelengths[{i}] {w.shape}")
    offsets = np.zeros(n_spec + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if check and eng == "numpy":
        # one vectorised pass: finite, ≥ 2 pixels, strictly increasing inside each spectrum
        bad = ~np.isfinite(wflat)
        inc = np.diff(wflat) > 0
        inc[offsets[1:-1] - 1] = True  # the step from one spectrum to the next does not count
        if bad.any() or not inc.all() or (lengths < 2).any():
            i = int(np.searchsorted(offsets, np.flatnonzero(bad | ~np.r_[inc, True])[0], side="right") - 1) if (
                bad.any() or not inc.all()) else int(np.flatnonzero(lengths < 2)[0])
            raise ValidationError(f"wavelengths[{i}]: expected ≥ 2 finite, strictly increasing wavelengths")
    out_f = np.empty((n_spec, new_w.size))
    out_e = np.empty((n_spec, new_w.size)) if has_err else None
    if eng == "numpy":
        if rect:
            return _resample_numpy(new_w, w2, f2, e2, fill, min_cov)
        # group spectra of equal length so each group is one vectorised call
        for length in np.unique(lengths):
            sel = np.flatnonzero(lengths == length)
            take = (offsets[sel][:, None] + np.arange(length)).ravel()
            rf, re = _resample_numpy(
                new_w, wflat[take].reshape(-1, length), fflat[take].reshape(-1, length),
                eflat[take].reshape(-1, length) if has_err else None, fill, min_cov,
            )
            out_f[sel] = rf
            if has_err:
                out_e[sel] = re
        return out_f, out_e
    bad = _ragged(eng, parallel, new_w, wflat, offsets, fflat, eflat if has_err else np.zeros(1), has_err, fill,
                  min_cov, bool(check), out_f, out_e if has_err else np.empty((1, 1)))
    if bad >= 0:
        raise ValidationError(f"wavelengths[{bad}]: expected ≥ 2 finite, strictly increasing wavelengths")
    return out_f, out_e


BATCH_CHUNK = 128  # spectra per compiled call on the list path (flat buffers ≈ 2 MB: cache-sized)


def _ragged(eng, parallel, new_w, wflat, offsets, fflat, eflat, has_err, fill, min_cov, check, out_f, out_e) -> int:
    """The ragged kernel of engine ``eng`` ('c', 'numba') over a batch: -1, or the first bad grid's index.

    ``parallel``: numba's ``prange`` kernel, or the C kernel (which releases the GIL) on one
    thread per core, each on a contiguous share of the spectra (offsets stay absolute).
    """
    if eng == "numba":
        k = resample_kernels()
        return (k.resample_ragged_parallel if parallel else k.resample_ragged)(
            new_w, wflat, offsets, fflat, eflat, has_err, fill, min_cov, check, out_f, out_e)
    kernel = c_kernels().resample_ragged
    if not parallel:
        return kernel(new_w, wflat, offsets, fflat, eflat, has_err, fill, min_cov, check, out_f, out_e)

    def share(lo, hi):
        bad = kernel(new_w, wflat, offsets[lo:hi + 1], fflat, eflat, has_err, fill, min_cov, check, out_f[lo:hi],
                     out_e[lo:hi] if has_err else out_e)
        return -1 if bad < 0 else lo + bad

    bad = [b for b in _in_threads(share, offsets.size - 1, 1) if b >= 0]
    return min(bad) if bad else -1


def _in_threads(fn, n: int, step: int) -> list:
    """``fn(lo, hi)`` over ``range(n)`` on one thread per core (the C kernels release the GIL), each
    thread a contiguous share of a whole number of steps; the results in order, or the first share's error."""
    steps = -(-n // step)
    threads = max(1, min(os.cpu_count() or 1, steps))
    bounds = [min(n, (i * steps // threads) * step) for i in range(threads + 1)]
    if threads == 1:
        return [fn(0, n)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(fn, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
    return [f.result() for f in futures]


def _list_chunk(eng, new_w, wavelengths, fluxes, errors, fill, min_cov, check, parallel, out_f, out_e, first):
    has_err = errors is not None
    ws = [np.asarray(w, float) for w in wavelengths]
    n_spec = len(ws)
    lengths = np.fromiter((w.size for w in ws), np.int64, n_spec)
    offsets = np.zeros(n_spec + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    wflat = np.concatenate(ws)
    fflat = np.concatenate([np.asarray(f, float).ravel() for f in fluxes])
    eflat = np.concatenate([np.asarray(e, float).ravel() for e in errors]) if has_err else np.zeros(1)
    if fflat.size != wflat.size or (has_err and eflat.size != wflat.size):
        for i, (w, f) in enumerate(zip(ws, fluxes)):
            if np.shape(f) != w.shape or (has_err and np.shape(errors[i]) != w.shape):
                raise ValidationError(
                    f"fluxes[{first + i}], errors[{first + i}]: expected the shape of wavelengths[{first + i}] {w.shape}"
                )
    bad = _ragged(eng, parallel, new_w, wflat, offsets, fflat, eflat, has_err, fill, min_cov, bool(check), out_f,
                  out_e if has_err else np.empty((1, 1)))
    if bad >= 0:
        raise ValidationError(f"wavelengths[{first + bad}]: expected ≥ 2 finite, strictly increasing wavelengths")


def resample_spectrum(spec, new_wavelength, *, min_coverage: float = DEFAULT_MIN_COVERAGE):
    """A :class:`~campfire.models.SpectrumData` resampled onto ``new_wavelength`` [μm].

    f_ν and its error are resampled with :func:`resample_flux` (bad pixels excluded,
    see the module notes); identifiers, header and meta are kept. A stack's ``count``
    becomes the overlap-weighted mean count, rounded.

    Parameters
    ----------
    spec : SpectrumData
    new_wavelength : array_like
        Output grid [μm].
    min_coverage : float
        See :func:`resample_flux`.

    Returns
    -------
    SpectrumData
        ``meta['resampled']`` is True.

    Raises
    ------
    ValidationError
        A bad grid, or a spectrum with fewer than 2 distinct finite wavelengths.

    Examples
    --------
    >>> import numpy as np
    >>> from campfire.models import SpectrumData
    >>> spec = SpectrumData(np.linspace(1, 2, 101), np.ones(101), np.full(101, 0.1))
    >>> resample_spectrum(spec, np.linspace(1.1, 1.9, 41)).fnu_err[:2].round(4)  # ½ + 1 + ½ pixel per bin
    array([0.0612, 0.0612])
    """
    new_w = check_grid("new_wavelength", new_wavelength)
    order = np.argsort(spec.wavelength, kind="stable")
    w = spec.wavelength[order]
    keep = np.isfinite(w)
    w = w[keep]
    if w.size < 2 or not np.all(np.diff(w) > 0):
        raise ValidationError(f"spec: {spec.spectrum_id or 'spectrum'} needs ≥ 2 distinct finite wavelengths")
    f = spec.fnu[order][keep]
    e = spec.fnu_err[order][keep]
    rf, re = resample_flux(new_w, w, f, e, min_coverage=min_coverage)
    count = None
    if spec.count is not None:
        c = resample_flux(new_w, w, np.asarray(spec.count, float)[order][keep], fill=0.0, min_coverage=0.0)
        count = np.rint(c).astype(np.int64)
    out = spec.copy(wavelength=new_w.copy(), fnu=rf, fnu_err=re, count=count)
    out.meta["resampled"] = True
    return out


def resample_spectra(spectra, new_wavelength, *, min_coverage: float = DEFAULT_MIN_COVERAGE, engine: str = "auto"):
    """Many SpectrumData onto one grid in one batched call (:func:`resample_batch`).

    Parameters
    ----------
    spectra : iterable of SpectrumData
    new_wavelength : array_like
        Output grid [μm].
    min_coverage : float
        See :func:`resample_flux`.
    engine : {'auto', 'c', 'numba', 'numpy'}
        See :func:`resample_flux`.

    Returns
    -------
    list of SpectrumData
        Identities, header and meta kept; ``count`` dropped.

    Raises
    ------
    ValidationError
        As :func:`resample_batch`.

    Examples
    --------
    >>> from campfire.models import SpectrumData
    >>> specs = [SpectrumData(np.linspace(1, 2, 11), np.ones(11), np.ones(11)) for _ in range(2)]
    >>> [s.n_pixels for s in resample_spectra(specs, np.linspace(1.2, 1.8, 4))]
    [4, 4]
    """
    new_w = check_grid("new_wavelength", new_wavelength)
    specs = list(spectra)
    ws, fs, es = [], [], []
    for s in specs:
        order = np.argsort(s.wavelength, kind="stable")
        keep = np.isfinite(s.wavelength[order])
        ws.append(s.wavelength[order][keep])
        fs.append(s.fnu[order][keep])
        es.append(s.fnu_err[order][keep])
    rf, re = resample_batch(new_w, ws, fs, es, min_coverage=min_coverage, engine=engine)
    return [
        s.copy(wavelength=new_w.copy(), fnu=rf[i], fnu_err=re[i], count=None) for i, s in enumerate(specs)
    ]
