"""Combining spectra already on one grid: partial sums (mean, weighted mean) and per-chunk medians.

A stack is built from *partials* — per-pixel sums over some of the inputs, all on
one wavelength grid::

    Σ w f,  Σ w,  Σ f,  Σ f²,  Σ σ²,  N          (w = 1/σ², over good pixels only)

:func:`stack_partials` makes one from a batch (or a stream) of spectra,
:func:`combine_partials` adds two (associative and commutative: plain sums), and
:func:`finalize_stack` turns the total into a :class:`~campfire.models.SpectrumData`:

* ``weighted_mean``: f = Σwf / Σw,   σ = 1 / √Σw
* ``mean``:          f = Σf / N,     σ = √Σσ² / N

so a population stack is a tree reduction that never holds more than a few
partials in memory. A median does not decompose into sums: :func:`median_chunk`
takes one wavelength chunk of every input (N × k values) and returns the NaN-aware
median with its error from :func:`median_error`.

**The median's error** is the standard deviation the plain median of N Gaussian
inputs with the quoted σ_i would have — computed, not estimated from the scatter.
For N ≤ 40 it is exact: P(median > t) is the probability that at most ⌊(N−1)/2⌋
inputs lie below t (a Poisson-binomial sum, one small recursion per input), and the
variance follows by integrating over t; for even N the median averages the two
middle order statistics, whose correlation is taken from equal noise (tabulated;
exact for N = 2). Beyond 40 it is the asymptotic √(π/2)·√N / Σ(1/σ_i) — the density
of the inputs at the median, dominated by the *precise* ones. The old σ =
c(N)·√Σσ²/N (the mean's error scaled by σ(median)/σ(mean) for equal noise) is right
for equal noise but, with unequal noise, is set by the noisy inputs the median
largely ignores: 1.5–1.9× too large for a 10× spread of σ (χ²/dof ≈ 0.3–0.5).
Why not the alternatives: a weighted median changes the estimator (depth-weighted,
so a few deep spectra decide it — not what a median stack is for); a bootstrap or
MAD measures the inputs' scatter, which in a population stack is the population's
spread rather than the noise, and is itself noisy for a handful of inputs.

Pixels that are NaN, or have a non-finite or non-positive error, do not enter any
sum; ``count`` is the number of inputs that contributed to each pixel, and pixels
no input covers are NaN. Getting the inputs onto one grid (rest frame,
normalisation, resampling) is :mod:`campfire.tasks.stack`'s.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from campfire.errors import ValidationError
from campfire.models import SpectrumData

__all__ = [
    "STACK_METHODS",
    "Partial",
    "stack_partials",
    "combine_partials",
    "sum_partials",
    "finalize_stack",
    "median_chunk",
    "stack_median",
    "stack_grating",
    "check_method",
    "median_error_factor",
    "median_error",
]

STACK_METHODS = ("weighted_mean", "median", "mean")
# Var(median)/Var(mean) of n Gaussian samples (Monte Carlo, ±0.5%): small even n are
# much better than the asymptotic π/2, which is used beyond the table
_MEDIAN_VAR_RATIO = np.array([
    1.0, 1.0, 1.346, 1.195, 1.434, 1.287, 1.47, 1.345, 1.494, 1.386, 1.511, 1.41, 1.524, 1.429, 1.519,
    1.448, 1.523, 1.461, 1.532, 1.467, 1.537, 1.479, 1.545, 1.488, 1.549, 1.496, 1.547, 1.499, 1.543,
    1.5, 1.548, 1.505, 1.546, 1.507, 1.552, 1.507, 1.553, 1.518, 1.556, 1.517,
])


def median_error_factor(n) -> np.ndarray:
    """σ(median)/σ(mean) for ``n`` Gaussian inputs (→ √(π/2) for large n).

    Parameters
    ----------
    n : int or array_like of int
        Number of inputs per pixel.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> median_error_factor([1, 1000]).round(4)
    array([1.    , 1.2533])
    """
    n = np.asarray(n, np.int64)
    table = np.sqrt(_MEDIAN_VAR_RATIO)
    return np.where(n > table.size, math.sqrt(math.pi / 2.0), table[np.clip(n, 1, table.size) - 1])


# Corr(X_(m), X_(m+1)) of the two middle order statistics of N = 4, 6, … 40 equal
# Gaussians (Monte Carlo, 8 × 10⁵ draws, ±0.002): an even N's median averages them
_MIDDLE_PAIR_CORR = np.array([
    0.6558, 0.744, 0.7968, 0.8309, 0.8552, 0.8742, 0.8881, 0.8996, 0.9086, 0.9163, 0.923, 0.9286, 0.9332,
    0.9372, 0.9415, 0.9445, 0.9472, 0.9499, 0.9521,
])
_EXACT_MAX_N = 40  # beyond: the asymptotic error (within ~3% there)
_T_STEPS = 40  # points of the integral over t (geometric, 10⁻³ σ_h … 8 σ_max)


def median_error(errors) -> np.ndarray:
    """Standard deviation of the plain median of Gaussian inputs with errors ``errors``.

    Parameters
    ----------
    errors : array_like, shape (n_inputs, k)
        σ of each input at each of k pixels; NaN (or ≤ 0) where an input does not
        contribute.

    Returns
    -------
    numpy.ndarray, length k
        NaN where no input contributes. Exact for ≤ 40 inputs (odd; even N with the
        middle pair's correlation of equal noise), asymptotic beyond (module notes).

    Examples
    --------
    >>> import numpy as np
    >>> median_error([[0.1], [0.1], [0.1]]).round(4)   # equal noise: 1.16 σ/√3
    array([0.067])
    >>> median_error([[0.05], [0.05], [0.5]]).round(4)  # the noisy input barely matters
    array([0.0481])
    """
    e = np.atleast_2d(np.asarray(errors, float))
    good = np.isfinite(e) & (e > 0)
    n = good.sum(axis=0)
    inv = np.where(good, 1.0 / np.where(good, e, 1.0), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(n > 0, math.sqrt(math.pi / 2.0) * np.sqrt(n) / inv.sum(axis=0), np.nan)
    two = n == 2
    if two.any():  # the median of two is their mean
        out[two] = 0.5 * np.sqrt(np.sum(np.where(good[:, two], e[:, two], 0.0) ** 2, axis=0))
    exact = (n > 0) & (n <= _EXACT_MAX_N) & ~two
    if exact.any():
        out[exact] = _median_error_exact(e[:, exact], good[:, exact], n[exact])
    return out


def _median_error_exact(e: np.ndarray, good: np.ndarray, n: np.ndarray) -> np.ndarray:
    """σ of the median by integrating its Poisson-binomial tail (columns with 1 ≤ n ≤ 40, n ≠ 2)."""
    from scipy.special import ndtr

    rows = good.any(axis=1)
    e, good = e[rows], good[rows]
    k = e.shape[1]
    lo = (n - 1) // 2  # the median (odd n) or the lower middle (even n) is X_(lo+1), 1-based
    sig_h = n / np.sum(np.where(good, 1.0 / np.where(good, e, 1.0), 0.0), axis=0)
    sig_max = np.max(np.where(good, e, 0.0), axis=0)
    u = np.linspace(0.0, 1.0, _T_STEPS)
    t = (1e-3 * sig_h)[:, None] * ((8.0 * sig_max / (1e-3 * sig_h))[:, None] ** u)  # (k, T)
    top = int(lo.max()) + 2
    # dist[c]: P(exactly c inputs below t) for c ≤ top − 1, the last slot holds "≥ top"
    dist = np.zeros((top + 1, k, _T_STEPS))
    dist[0] = 1.0
    for ei, gi in zip(e, good):
        p = np.where(gi[:, None], ndtr(t / np.where(gi, ei, 1.0)[:, None]), 0.0)  # P(X_i < t)
        q = 1.0 - p
        dist[top] = dist[top] + dist[top - 1] * p
        dist[1:top] = dist[1:top] * q + dist[:top - 1] * p
        dist[0] = dist[0] * q
    cum = np.cumsum(dist[:top], axis=0)  # P(K ≤ c)
    cols = np.arange(k)
    above_lo = cum[lo, cols]  # P(X_(lo+1) > t)
    above_hi = cum[lo + 1, cols]  # P(X_(lo+2) > t) = P(X_(lo+1) < −t) when n is even (symmetry)
    odd = n % 2 == 1
    logt = np.log(t)
    # E[X²] = 2∫ t [P(X > t) + P(X < −t)] dt, E[X] = ∫ [P(X > t) − P(X < −t)] dt (on ln t)
    below = np.where(odd[:, None], above_lo, above_hi)
    m2 = 2.0 * np.trapezoid(t * t * (above_lo + below), logt, axis=1)
    var = np.where(odd, m2, 0.0)
    if (~odd).any():
        m1 = np.trapezoid(t * (above_lo - below), logt, axis=1)
        v_pair = m2 - m1**2  # Var(X_(m)) = Var(X_(m+1)) by symmetry
        corr = _MIDDLE_PAIR_CORR[np.clip(n // 2 - 2, 0, _MIDDLE_PAIR_CORR.size - 1)]
        var = np.where(odd, var, 0.5 * v_pair * (1.0 + corr))
    return np.sqrt(var)


def check_method(method: str, allowed: Sequence[str] = STACK_METHODS) -> str:
    """``method`` lower-cased if it is one of ``allowed``.

    Parameters
    ----------
    method : str
    allowed : sequence of str
        Default :data:`STACK_METHODS`.

    Returns
    -------
    str

    Raises
    ------
    ValidationError
        Another value (the message lists ``allowed``).

    Examples
    --------
    >>> check_method('Median')
    'median'
    """
    key = str(method).lower() if isinstance(method, str) else method
    if key not in allowed:
        raise ValidationError(f"method: expected one of {', '.join(repr(m) for m in allowed)}, got {method!r}")
    return key


@dataclass(frozen=True)
class Partial:
    """Per-pixel sums over some stack inputs, all on one grid of ``n`` pixels.

    Add two with :func:`combine_partials` (or ``a + b``). ``n_spectra`` counts the
    inputs, ``spectrum_ids`` names them (for provenance in ``meta``) and ``gratings``
    holds their distinct gratings (the stack's label, :func:`stack_grating`).
    """

    sum_wf: np.ndarray
    sum_w: np.ndarray
    sum_f: np.ndarray
    sum_f2: np.ndarray
    sum_e2: np.ndarray
    count: np.ndarray
    n_spectra: int = 0
    spectrum_ids: tuple[str, ...] = ()
    gratings: tuple[str, ...] = ()

    @classmethod
    def empty(cls, n: int) -> "Partial":
        """The partial of no inputs on a grid of ``n`` pixels (zeros).

        Parameters
        ----------
        n : int

        Returns
        -------
        Partial

        Examples
        --------
        >>> Partial.empty(4).n_pixels
        4
        """
        z = np.zeros(n)
        return cls(z, z.copy(), z.copy(), z.copy(), z.copy(), np.zeros(n, np.int64), 0, (), ())

    @property
    def n_pixels(self) -> int:
        """Length of the grid."""
        return int(self.sum_w.shape[0])

    def __add__(self, other: "Partial") -> "Partial":
        return combine_partials(self, other)


def stack_grating(gratings: Iterable[str]) -> str:
    """The grating label of a stack: its inputs' distinct gratings, sorted, joined by ``+``.

    An input that is itself a stack (``'G395M+PRISM'``) adds each of its gratings.

    Parameters
    ----------
    gratings : iterable of str

    Returns
    -------
    str

    Examples
    --------
    >>> stack_grating(['PRISM', 'G395M+PRISM', ''])
    'G395M+PRISM'
    """
    return "+".join(_distinct_gratings(gratings))


def _distinct_gratings(labels: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({g for label in labels for g in str(label or "").split("+") if g}))


def _rows(spectra_on_grid) -> Iterable[tuple[np.ndarray, np.ndarray, str, str]]:
    """(fnu, err, id, grating) per input: SpectrumData items, or a (fnu 2D, err 2D) tuple."""
    if isinstance(spectra_on_grid, tuple) and len(spectra_on_grid) == 2 and not isinstance(
        spectra_on_grid[0], SpectrumData
    ):
        f2 = np.atleast_2d(np.asarray(spectra_on_grid[0], float))
        e2 = np.atleast_2d(np.asarray(spectra_on_grid[1], float))
        if f2.shape != e2.shape:
            raise ValidationError(f"spectra_on_grid: flux {f2.shape} and error {e2.shape} shapes differ")
        for f, e in zip(f2, e2):
            yield f, e, "", ""
        return
    for s in spectra_on_grid:
        if not isinstance(s, SpectrumData):
            raise ValidationError(f"spectra_on_grid: expected SpectrumData items, got {type(s).__name__}")
        yield s.fnu, s.fnu_err, s.spectrum_id, s.grating


def stack_partials(spectra_on_grid, n_pixels: int | None = None) -> Partial:
    """Partial sums of spectra that are already on one common grid.

    Parameters
    ----------
    spectra_on_grid : iterable of SpectrumData, or (fnu, fnu_err) 2D arrays
        Inputs resampled onto the stack grid (all of one length). A generator is
        consumed one spectrum at a time, so memory stays at one partial.
    n_pixels : int, optional
        Grid length; needed only to return an empty partial for no inputs.

    Returns
    -------
    Partial

    Raises
    ------
    ValidationError
        Inputs of different lengths, or no inputs and no ``n_pixels``.

    Examples
    --------
    >>> import numpy as np
    >>> from campfire.models import SpectrumData
    >>> w = np.linspace(1, 2, 4)
    >>> a = SpectrumData(w, np.ones(4), np.full(4, 0.1))
    >>> b = SpectrumData(w, np.full(4, 3.0), np.full(4, 0.1))
    >>> p = stack_partials([a, b])
    >>> finalize_stack(p, w).fnu
    array([2., 2., 2., 2.])
    """
    ids: list[str] = []
    gratings: list[str] = []
    sums = None
    n_spec = 0
    for f, e, sid, grating in _rows(spectra_on_grid):
        f = np.asarray(f, float)
        e = np.asarray(e, float)
        if sums is None:
            n = f.shape[0]
            sums = [np.zeros(n) for _ in range(5)] + [np.zeros(n, np.int64)]
        if f.shape != sums[0].shape or e.shape != f.shape:
            raise ValidationError(
                f"spectra_on_grid: every input must be on the same grid ({sums[0].shape[0]} pixels), "
                f"got {f.shape[0]} (resample them first)"
            )
        good = np.isfinite(f) & np.isfinite(e) & (e > 0)
        fg = np.where(good, f, 0.0)
        eg = np.where(good, e, 1.0)
        w = np.where(good, 1.0 / (eg * eg), 0.0)
        sums[0] += w * fg
        sums[1] += w
        sums[2] += fg
        sums[3] += fg * fg
        sums[4] += np.where(good, eg * eg, 0.0)
        sums[5] += good
        n_spec += 1
        ids.append(sid)
        gratings.append(grating)
    if sums is None:
        if n_pixels is None:
            raise ValidationError("spectra_on_grid: no inputs (pass n_pixels for an empty partial)")
        return Partial.empty(int(n_pixels))
    return Partial(*sums, n_spectra=n_spec, spectrum_ids=tuple(ids), gratings=_distinct_gratings(gratings))


def combine_partials(a: Partial, b: Partial, *more: Partial) -> Partial:
    """Sum of partials (associative, commutative): the tree reduction's combine step.

    Parameters
    ----------
    a, b, *more : Partial
        Partials on one grid.

    Returns
    -------
    Partial

    Raises
    ------
    ValidationError
        Not a Partial, or grids of different lengths.

    Examples
    --------
    >>> import numpy as np
    >>> p = Partial.empty(3)
    >>> combine_partials(p, p, p).n_spectra
    0
    """
    parts = (a, b) + more
    n = a.n_pixels
    for p in parts:
        if not isinstance(p, Partial):
            raise ValidationError(f"partials: expected Partial, got {type(p).__name__}")
        if p.n_pixels != n:
            raise ValidationError(f"partials: grids differ ({n} vs {p.n_pixels} pixels)")
    out = Partial(
        *(np.sum([getattr(p, k) for p in parts], axis=0) for k in ("sum_wf", "sum_w", "sum_f", "sum_f2", "sum_e2")),
        count=np.sum([p.count for p in parts], axis=0).astype(np.int64),
        n_spectra=sum(p.n_spectra for p in parts),
        spectrum_ids=tuple(i for p in parts for i in p.spectrum_ids),
        gratings=_distinct_gratings(g for p in parts for g in p.gratings),
    )
    return out


def sum_partials(partials: Sequence[Partial]) -> Partial:
    """:func:`combine_partials` over a list (the shape ``tree_reduce`` combines take).

    Parameters
    ----------
    partials : sequence of Partial

    Returns
    -------
    Partial

    Raises
    ------
    ValidationError
        An empty list, or what :func:`combine_partials` raises.

    Examples
    --------
    >>> sum_partials([Partial.empty(2)] * 3).n_pixels
    2
    """
    parts = list(partials)
    if not parts:
        raise ValidationError("partials: nothing to combine")
    return parts[0] if len(parts) == 1 else combine_partials(*parts)


def finalize_stack(
    partial: Partial,
    grid,
    method: str = "weighted_mean",
    *,
    object_id: str | None = None,
    spectrum_id: str | None = None,
    grating: str = "",
    meta: dict | None = None,
) -> SpectrumData:
    """The stacked spectrum from total partial sums.

    Parameters
    ----------
    partial : Partial
        Sums over all inputs.
    grid : array_like
        The common wavelength grid [μm] (length ``partial.n_pixels``).
    method : {'weighted_mean', 'mean'}
        See the module notes (a median is not a sum: use :func:`median_chunk`).
    object_id, spectrum_id : str, optional
        The stack's identity (default id ``<object_id>_stack`` or ``stack``).
    grating : str, optional
        The stack's grating label; default the inputs' (:func:`stack_grating`).
    meta : dict, optional
        Added to the result's ``meta``.

    Returns
    -------
    SpectrumData
        With ``count`` per pixel and ``meta`` recording method and inputs.

    Raises
    ------
    ValidationError
        A median or unknown method, or a grid of the wrong length.

    Examples
    --------
    >>> import numpy as np
    >>> finalize_stack(Partial.empty(2), [1.0, 2.0], 'mean').fnu
    array([nan, nan])
    """
    m = check_method(method, ("weighted_mean", "mean"))
    grid = np.asarray(grid, float)
    if grid.shape != (partial.n_pixels,):
        raise ValidationError(f"grid: expected {partial.n_pixels} wavelengths (the partial's), got shape {grid.shape}")
    cnt = partial.count
    with np.errstate(invalid="ignore", divide="ignore"):
        if m == "weighted_mean":
            fnu = np.where(partial.sum_w > 0, partial.sum_wf / partial.sum_w, np.nan)
            err = np.where(partial.sum_w > 0, 1.0 / np.sqrt(partial.sum_w), np.nan)
        else:
            fnu = np.where(cnt > 0, partial.sum_f / cnt, np.nan)
            err = np.where(cnt > 0, np.sqrt(partial.sum_e2) / cnt, np.nan)
    info = {"method": m, "n_spectra": partial.n_spectra, "inputs": list(partial.spectrum_ids)}
    info.update(meta or {})
    return SpectrumData(
        grid.copy(), fnu, err,
        spectrum_id=spectrum_id or (f"{object_id}_stack" if object_id else "stack"),
        grating=grating or stack_grating(partial.gratings), object_id=object_id, count=cnt.copy(), meta=info,
    )


def median_chunk(fluxes, errors) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median across inputs of one wavelength chunk: pure, for a chunked median graph.

    Parameters
    ----------
    fluxes, errors : array_like, shape (n_inputs, k)
        The chunk of every input (on the common grid); bad pixels as in the stack.

    Returns
    -------
    (median, error, count) : arrays of length k
        NaN-aware median, its error (:func:`median_error`), and N per pixel.

    Raises
    ------
    ValidationError
        Fluxes and errors of different shapes.

    Examples
    --------
    >>> import numpy as np
    >>> m, e, n = median_chunk([[1.0, 2.0], [5.0, np.nan], [3.0, 4.0]], np.ones((3, 2)))
    >>> m, n
    (array([3., 3.]), array([3, 2]))
    """
    f = np.atleast_2d(np.asarray(fluxes, float))
    e = np.atleast_2d(np.asarray(errors, float))
    if f.shape != e.shape:
        raise ValidationError(f"errors: expected the shape of fluxes {f.shape}, got {e.shape}")
    good = np.isfinite(f) & np.isfinite(e) & (e > 0)
    n = good.sum(axis=0)
    # the median of columns with an input only: numpy warns of all-NaN columns, and silencing it with
    # warnings.catch_warnings is not thread-safe (chunks run in threads; a test saw the filter restored
    # by another thread mid-call)
    med = np.full(f.shape[1], np.nan)
    cols = n > 0
    if cols.any():
        med[cols] = np.nanmedian(np.where(good[:, cols], f[:, cols], np.nan), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = median_error(np.where(good, e, np.nan))
    return med, err, n.astype(np.int64)


def stack_median(spectra_on_grid: Sequence[SpectrumData], grid, *, chunk: int = 4096, object_id=None, grating="",
                 meta=None) -> SpectrumData:
    """Median stack of spectra already on ``grid``, evaluated chunk by chunk.

    Parameters
    ----------
    spectra_on_grid : sequence of SpectrumData
        All on ``grid``.
    grid : array_like
        The common grid [μm].
    chunk : int
        Pixels per :func:`median_chunk` call.
    object_id : str, optional
    grating : str
        The stack's grating label.
    meta : dict, optional
        Added to the result's ``meta``.

    Returns
    -------
    SpectrumData

    Raises
    ------
    ValidationError
        No inputs, or inputs not on ``grid``.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.linspace(1, 2, 3)
    >>> specs = [SpectrumData(w, np.full(3, v), np.ones(3)) for v in (1.0, 5.0, 2.0)]
    >>> stack_median(specs, w).fnu
    array([2., 2., 2.])
    """
    specs = list(spectra_on_grid)
    grid = np.asarray(grid, float)
    if not specs:
        raise ValidationError("spectra: nothing to stack")
    f = np.array([s.fnu for s in specs], float)
    e = np.array([s.fnu_err for s in specs], float)
    if f.shape[1] != grid.size:
        raise ValidationError(f"spectra_on_grid: expected {grid.size} pixels (the grid's), got {f.shape[1]}")
    med = np.empty(grid.size)
    err = np.empty(grid.size)
    cnt = np.empty(grid.size, np.int64)
    for lo in range(0, grid.size, chunk):
        sl = slice(lo, lo + chunk)
        med[sl], err[sl], cnt[sl] = median_chunk(f[:, sl], e[:, sl])
    info = {"method": "median", "n_spectra": len(specs), "inputs": [s.spectrum_id for s in specs]}
    info.update(meta or {})
    return SpectrumData(
        grid.copy(), med, err, spectrum_id=f"{object_id}_stack" if object_id else "stack", grating=grating,
        object_id=object_id, count=cnt, meta=info,
    )
