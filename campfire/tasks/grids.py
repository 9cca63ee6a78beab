"""Stack grids over inputs of several gratings: what each input covers, a grid covering them all.

A stack's default grid is the input with the most pixels (the reference's rule): for
one grating that loses nothing, but for G140M + G395M + PRISM it is G140M's 0.97–1.9 μm
of the 0.6–5.3 μm the inputs cover. Three pure helpers:

* :func:`coverage` — the wavelength intervals an input has valid data in (a jump of
  more than :data:`GAP_FACTOR` × the local pixel step, such as a detector gap, splits it);
* :func:`union_grid` — a grid over every input's coverage at the *finest native
  sampling in each region*: the local step at λ is the smallest pixel step of the
  inputs covering λ, and the grid follows it (its pixel count is ∫ dλ / step(λ)).
  Regions no input covers get no pixels. ``wavelength_grid='union'`` uses it;
* :func:`uncovered_ranges` — the parts of the inputs' coverage a grid leaves out
  (what :func:`~campfire.tasks.stack.stack_spectra` warns about, in the words of
  :func:`warn_outside_default_grid`, the one message every stack route uses).

Inputs are :class:`~campfire.models.SpectrumData` or wavelength arrays (of valid
pixels), so a union of per-batch union grids is the union grid of all of them.
"""
from __future__ import annotations

import warnings
from typing import Iterable, Sequence

import numpy as np

from campfire.errors import StackRangeWarning, ValidationError
from campfire.models import SpectrumData

__all__ = ["GAP_FACTOR", "MIN_LOST_FRACTION", "coverage", "merge_ranges", "union_grid", "uncovered_ranges",
           "ranges_outside", "format_ranges", "spectrum_label", "warn_outside_default_grid"]

GAP_FACTOR = 5.0  # a step this many times the median of its neighbours splits an input's coverage
MIN_LOST_FRACTION = 0.01  # uncovered pieces narrower than 1% of their wavelength are not reported


def _valid_wavelengths(spec) -> np.ndarray:
    """The finite wavelengths of an input's valid pixels (SpectrumData) or of an array, unsorted."""
    w = spec.wavelength[spec.valid] if isinstance(spec, SpectrumData) else np.asarray(spec, float)
    return w[np.isfinite(w)]


def _segments(spec) -> list[np.ndarray]:
    """The valid wavelengths of one input, split at gaps (each piece ≥ 2 pixels)."""
    w = np.unique(_valid_wavelengths(spec))
    if w.size < 2:
        return []
    step = np.diff(w)
    k = 5
    pad = np.pad(step, k, mode="edge")
    local = np.median(np.lib.stride_tricks.sliding_window_view(pad, 2 * k + 1), axis=1)
    cuts = np.flatnonzero(step > GAP_FACTOR * local) + 1
    return [p for p in np.split(w, cuts) if p.size >= 2]


def coverage(spec) -> list[tuple[float, float]]:
    """The (min, max) wavelength intervals [μm] where ``spec`` has valid pixels.

    Parameters
    ----------
    spec : SpectrumData or array_like
        A spectrum (its valid pixels count), or the wavelengths of valid pixels.

    Returns
    -------
    list of (float, float)
        Sorted; a detector gap (a step > ``GAP_FACTOR`` × the local one) splits them.

    Examples
    --------
    >>> import numpy as np
    >>> coverage(np.r_[np.linspace(1.0, 1.5, 51), np.linspace(1.7, 2.0, 31)])
    [(1.0, 1.5), (1.7, 2.0)]
    """
    return [(float(p[0]), float(p[-1])) for p in _segments(spec)]


def merge_ranges(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sorted, overlapping (min, max) intervals joined.

    Parameters
    ----------
    intervals : iterable of (float, float)

    Returns
    -------
    list of (float, float)

    Examples
    --------
    >>> merge_ranges([(2.0, 3.0), (0.5, 1.0), (0.8, 1.5)])
    [(0.5, 1.5), (2.0, 3.0)]
    """
    out: list[list[float]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(a, b) for a, b in out]


def union_grid(spectra: Sequence) -> np.ndarray:
    """A grid [μm] covering every input, at the finest native sampling in each region.

    Parameters
    ----------
    spectra : sequence of SpectrumData or array_like
        The inputs (SpectrumData: their valid pixels), or wavelength arrays — such as
        union grids of other inputs, so per-batch results combine.

    Returns
    -------
    numpy.ndarray
        Strictly increasing. Where inputs overlap the step is the smallest of theirs
        (G140M's 0.6 nm over PRISM's 5–20 nm); gaps no input covers are left out.

    Raises
    ------
    ValidationError
        No input with two valid pixels.

    Examples
    --------
    >>> import numpy as np
    >>> coarse = np.linspace(1.0, 3.0, 21)          # step 0.1
    >>> fine = np.linspace(2.0, 2.5, 51)            # step 0.01
    >>> g = union_grid([coarse, fine])
    >>> float(g[0]), float(g[-1]), round(float(np.diff(g[(g > 2.1) & (g < 2.4)]).max()), 3)
    (1.0, 3.0, 0.01)
    """
    segs = [p for s in spectra for p in _segments(s)]
    if not segs:
        raise ValidationError("spectra: no input with two valid pixels to build a grid from")
    mesh = np.unique(np.concatenate(segs))
    step = np.full(mesh.size, np.inf)
    for p in segs:
        inside = (mesh >= p[0]) & (mesh <= p[-1])
        mid = 0.5 * (p[1:] + p[:-1])
        local = np.interp(mesh[inside], mid, np.diff(p))
        step[inside] = np.minimum(step[inside], local)
    pieces = []
    for lo, hi in merge_ranges((float(p[0]), float(p[-1])) for p in segs):
        sel = (mesh >= lo) & (mesh <= hi)
        w, d = mesh[sel], step[sel]
        # pixel coordinate u(λ) = ∫ dλ / step(λ); the grid sits at (rescaled) integer u
        u = np.concatenate([[0.0], np.cumsum(np.diff(w) * 0.5 * (1.0 / d[1:] + 1.0 / d[:-1]))])
        n = max(int(round(u[-1])), 1)
        pieces.append(np.interp(np.linspace(0.0, u[-1], n + 1), u, w))
    grid = np.concatenate(pieces)
    return grid[np.concatenate([[True], np.diff(grid) > 0])]


def uncovered_ranges(spectra: Sequence, grid) -> list[tuple[float, float]]:
    """The parts of the inputs' coverage outside ``grid``'s range [μm].

    Parameters
    ----------
    spectra : sequence of SpectrumData or array_like
    grid : array_like
        The stack grid [μm].

    Returns
    -------
    list of (float, float)
        Merged; pieces narrower than :data:`MIN_LOST_FRACTION` of their wavelength (a
        shifted grid of the same grating) are not reported.

    Examples
    --------
    >>> import numpy as np
    >>> uncovered_ranges([np.linspace(0.6, 5.3, 400)], np.linspace(0.97, 1.89, 1500))
    [(0.6, 0.97), (1.89, 5.3)]
    """
    g = _finite(grid)
    glo, ghi = float(g.min()), float(g.max())
    # an input whose valid pixels all lie in the grid's range loses nothing: its coverage (a
    # running median of its steps) is computed only when it reaches outside
    reaching = [s for s in spectra if not _within(s, glo, ghi)]
    return ranges_outside((iv for s in reaching for iv in coverage(s)), g)


def _finite(grid) -> np.ndarray:
    g = np.asarray(grid, float)
    return g[np.isfinite(g)]


def _within(spec, lo: float, hi: float) -> bool:
    """Whether every valid wavelength of ``spec`` lies in [lo, hi]."""
    w = _valid_wavelengths(spec)
    return w.size == 0 or (w.min() >= lo and w.max() <= hi)


def ranges_outside(intervals: Iterable[tuple[float, float]], grid) -> list[tuple[float, float]]:
    """The parts of ``intervals`` [μm] outside ``grid``'s range: :func:`uncovered_ranges` of
    coverages already computed (such as those merged over the batches of a population).

    Parameters
    ----------
    intervals : iterable of (float, float)
        What the inputs cover (:func:`coverage`), in any order.
    grid : array_like
        The stack grid [μm].

    Returns
    -------
    list of (float, float)
        As :func:`uncovered_ranges`.

    Examples
    --------
    >>> import numpy as np
    >>> ranges_outside([(0.6, 1.0), (2.9, 5.1)], np.linspace(0.97, 1.89, 10))
    [(0.6, 0.97), (2.9, 5.1)]
    """
    g = _finite(grid)
    glo, ghi = float(g.min()), float(g.max())
    out = []
    for lo, hi in merge_ranges(intervals):
        for a, b in ((lo, min(hi, glo)), (max(lo, ghi), hi)):
            if b - a > MIN_LOST_FRACTION * b:
                out.append((a, b))
    return merge_ranges(out)


def format_ranges(ranges: Sequence[tuple[float, float]]) -> str:
    """``'0.60–0.97, 1.89–5.30 μm'``.

    Parameters
    ----------
    ranges : sequence of (float, float)

    Returns
    -------
    str

    Examples
    --------
    >>> format_ranges([(0.6, 0.97), (1.89, 5.3)])
    '0.60–0.97, 1.89–5.30 μm'
    """
    return ", ".join(f"{a:.2f}–{b:.2f}" for a, b in ranges) + " μm"


def spectrum_label(spec: SpectrumData) -> str:
    """How the range warning names an input: its grating and spectrum id.

    Parameters
    ----------
    spec : SpectrumData

    Returns
    -------
    str
        ``'G140M s1'``, or ``'unnamed'``.

    Examples
    --------
    >>> import numpy as np
    >>> spectrum_label(SpectrumData(np.arange(2.0), np.ones(2), np.ones(2), spectrum_id='s1', grating='G140M'))
    'G140M s1'
    """
    return " ".join(x for x in (spec.grating, spec.spectrum_id) if x) or "unnamed"


def warn_outside_default_grid(grid, lost: Sequence[tuple[float, float]], source: str, *, stacklevel: int = 2) -> None:
    """The :class:`~campfire.errors.StackRangeWarning` of a default grid that leaves range out.

    Every stack route (one-shot, and the population tree over batches) says it in these
    words: which input the grid is taken from, what it leaves out, and how to keep it.

    Parameters
    ----------
    grid : array_like
        The default grid [μm] (the input with the most pixels).
    lost : sequence of (float, float)
        :func:`uncovered_ranges` / :func:`ranges_outside` of it; nothing is issued when empty.
    source : str
        That input's name (grating and spectrum id).
    stacklevel : int
        As in :func:`warnings.warn`, counted from the caller of this function.

    Examples
    --------
    >>> import warnings, numpy as np
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter('always')
    ...     warn_outside_default_grid(np.linspace(0.97, 1.89, 5), [(1.89, 5.3)], 'G140M s1')
    >>> 'leaves out 1.89–5.30 μm' in str(caught[0].message)
    True
    """
    if not lost:
        return
    g = np.asarray(grid, float)
    warnings.warn(
        f"stack: the default grid, that of the input with the most pixels ({source}: {g[0]:.2f}–"
        f"{g[-1]:.2f} μm), leaves out {format_ranges(lost)} that other inputs cover; "
        "pass wavelength_grid='union' to keep every input's range (at the finest native sampling in each "
        "region), or a grid of your own",
        StackRangeWarning, stacklevel=stacklevel + 1,
    )
