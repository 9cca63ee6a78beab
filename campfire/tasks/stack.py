"""Stacking spectra: inputs onto one grid (rest frame → normalisation → resample), then combined.

:func:`stack_spectra` is the one-shot stack. Its inputs are prepared by the *stack
prelude* every stack shares — the one-shot one here and the streamed tree of
:mod:`campfire.tasks.population` alike: :func:`to_stack_frame` (per input:
:func:`to_rest_frame`, which divides wavelengths by (1+z) and f_ν by (1+z) too — the
rest-frame flux density per unit frequency — then :func:`normalize_in_window`, which
divides by the median f_ν in a rest-frame window and records it in ``meta``) and
:func:`onto_grid` (one batched resample). The combining itself — partial sums for the
means, chunks for the median — is :mod:`campfire.tasks.combine`'s (its names are
re-exported here).

The functions here are pure: inputs are :class:`~campfire.models.SpectrumData` and
plain values. The configured default window (``campfire.stack.rest-window``) and the
opening of ``Spectrum`` rows belong to the callers: ``campfire.stack_spectra`` /
``campfire.calibration`` and the graph builders resolve them and pass them in.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from campfire.errors import ValidationError
from campfire.models import SpectrumData
from campfire.tasks.combine import (
    STACK_METHODS,
    Partial,
    check_method,
    combine_partials,
    finalize_stack,
    median_chunk,
    median_error,
    median_error_factor,
    stack_grating,
    stack_median,
    stack_partials,
    sum_partials,
)
from campfire.tasks.grids import spectrum_label, uncovered_ranges, union_grid, warn_outside_default_grid
from campfire.tasks.resample import DEFAULT_MIN_COVERAGE, check_grid, resample_spectra

__all__ = [
    "stack_spectra",
    "to_rest_frame",
    "normalize_in_window",
    "to_stack_frame",
    "onto_grid",
    "check_window",
    "default_grid",
    "stack_grid",
    # the combining steps, from campfire.tasks.combine
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


def to_rest_frame(spec: SpectrumData, z: float) -> SpectrumData:
    """The spectrum in the rest frame: λ/(1+z), f_ν/(1+z) (errors likewise); z kept in ``meta``.

    Parameters
    ----------
    spec : SpectrumData
        Observed frame.
    z : float
        Redshift (> -1).

    Returns
    -------
    SpectrumData
        ``meta['rest_frame']`` True, ``meta['redshift']`` = z.

    Raises
    ------
    ValidationError
        A bad redshift, or a spectrum already in the rest frame.

    Examples
    --------
    >>> import numpy as np
    >>> s = SpectrumData(np.array([1.0, 2.0]), np.array([2.0, 2.0]), np.array([0.2, 0.2]))
    >>> r = to_rest_frame(s, 1.0)
    >>> r.wavelength, r.fnu, r.meta['redshift']
    (array([0.5, 1. ]), array([1., 1.]), 1.0)
    """
    try:
        zf = float(z)
    except (TypeError, ValueError):
        raise ValidationError(f"z: expected a number, got {z!r}") from None
    if not np.isfinite(zf) or zf <= -1:
        raise ValidationError(f"z: expected a finite redshift > -1, got {z!r}")
    if spec.meta.get("rest_frame"):
        raise ValidationError(f"spec: {spec.spectrum_id or 'spectrum'} is already in the rest frame")
    out = spec.copy(wavelength=spec.wavelength / (1 + zf), fnu=spec.fnu / (1 + zf), fnu_err=spec.fnu_err / (1 + zf))
    out.meta.update(rest_frame=True, redshift=zf)
    return out


def check_window(window) -> tuple[float, float]:
    """A normalisation window ``(min, max)`` [μm] as two floats.

    Parameters
    ----------
    window : (float, float)

    Returns
    -------
    (float, float)

    Raises
    ------
    ValidationError
        Not two finite numbers with 0 < min < max.

    Examples
    --------
    >>> check_window([0.42, 0.48])
    (0.42, 0.48)
    """
    try:
        lo, hi = (float(v) for v in window)
    except (TypeError, ValueError):
        raise ValidationError(f"window: expected (min, max) in micron, got {window!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
        raise ValidationError(f"window: expected 0 < min < max micron, got {window!r}")
    return lo, hi


def normalize_in_window(spec: SpectrumData, window) -> SpectrumData:
    """Divide by the median f_ν of the valid pixels in ``window`` [μm].

    Parameters
    ----------
    spec : SpectrumData
        Usually rest-frame (:func:`to_rest_frame`).
    window : (float, float)
        The window [μm] (``campfire.calibration.normalize_in_window`` defaults it to the
        configured ``campfire.stack.rest-window``).

    Returns
    -------
    SpectrumData
        ``meta['norm_window']`` and ``meta['norm_value']`` record what was done.

    Raises
    ------
    ValidationError
        A malformed window, no valid pixel in it, or a non-positive median there.

    Examples
    --------
    >>> import numpy as np
    >>> s = SpectrumData(np.linspace(0.4, 0.5, 11), np.full(11, 4.0), np.full(11, 0.1))
    >>> normalize_in_window(s, (0.42, 0.48)).fnu[:2], normalize_in_window(s, (0.42, 0.48)).meta['norm_value']
    (array([1., 1.]), 4.0)
    """
    lo, hi = check_window(window)
    sel = spec.valid & (spec.wavelength >= lo) & (spec.wavelength <= hi)
    if not sel.any():
        raise ValidationError(
            f"window: {spec.spectrum_id or 'spectrum'} has no valid pixel in {lo}-{hi} μm "
            f"(covers {np.nanmin(spec.wavelength):.3f}-{np.nanmax(spec.wavelength):.3f} μm)"
        )
    norm = float(np.median(spec.fnu[sel]))
    if not norm > 0:
        raise ValidationError(f"window: median f_ν of {spec.spectrum_id or 'spectrum'} in {lo}-{hi} μm is {norm:g} ≤ 0")
    out = spec.copy(fnu=spec.fnu / norm, fnu_err=spec.fnu_err / norm)
    out.meta.update(norm_window=[lo, hi], norm_value=norm)
    return out


def to_stack_frame(spec: SpectrumData, *, redshift: float | None = None,
                   window: tuple[float, float] | None = None) -> SpectrumData:
    """One input as it enters a stack: to the rest frame (``redshift``), then normalised (``window``).

    The first half of every stack's prelude (the eager :func:`stack_spectra` and the
    streamed population stacks alike); :func:`onto_grid` is the second.

    Parameters
    ----------
    spec : SpectrumData
    redshift : float, optional
        Shift to the rest frame first (:func:`to_rest_frame`).
    window : (float, float), optional
        Then divide by the median f_ν in this window [μm] (:func:`normalize_in_window`).

    Returns
    -------
    SpectrumData
        ``spec`` itself when neither is given.

    Raises
    ------
    ValidationError
        A bad redshift, an input already in the rest frame, or an unusable window.

    Examples
    --------
    >>> import numpy as np
    >>> s = SpectrumData(np.array([0.9, 1.0]), np.array([2.0, 2.0]), np.array([0.2, 0.2]))
    >>> to_stack_frame(s, redshift=1.0, window=(0.4, 0.6)).fnu
    array([1., 1.])
    """
    if redshift is not None:
        spec = to_rest_frame(spec, redshift)
    if window is not None:
        spec = normalize_in_window(spec, window)
    return spec


def onto_grid(spectra: Sequence[SpectrumData], grid, *, min_coverage: float | None = None) -> list[SpectrumData]:
    """Prepared stack inputs resampled onto the stack grid in one batched call (the prelude's end).

    Parameters
    ----------
    spectra : sequence of SpectrumData
        Inputs from :func:`to_stack_frame`.
    grid : array_like
        The stack grid [μm].
    min_coverage : float, optional
        Fraction of an output bin that good pixels must cover (default
        :data:`~campfire.tasks.resample.DEFAULT_MIN_COVERAGE`).

    Returns
    -------
    list of SpectrumData

    Examples
    --------
    >>> import numpy as np
    >>> s = SpectrumData(np.linspace(1, 2, 11), np.ones(11), np.full(11, 0.1))
    >>> onto_grid([s], np.linspace(1.2, 1.8, 4))[0].fnu
    array([1., 1., 1., 1.])
    """
    cov = DEFAULT_MIN_COVERAGE if min_coverage is None else min_coverage
    return resample_spectra(spectra, grid, min_coverage=cov)


def default_grid(spectra: Sequence[SpectrumData]) -> np.ndarray:
    """The finite, sorted wavelengths of the input with the most pixels (first on ties).

    Parameters
    ----------
    spectra : sequence of SpectrumData

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> import numpy as np
    >>> a = SpectrumData(np.linspace(1, 2, 3), np.ones(3), np.ones(3))
    >>> b = SpectrumData(np.linspace(1, 2, 5), np.ones(5), np.ones(5))
    >>> default_grid([a, b]).size
    5
    """
    best = max(spectra, key=lambda s: int(np.isfinite(s.wavelength).sum()))
    w = best.wavelength[np.isfinite(best.wavelength)]
    return np.unique(w)


def stack_grid(spectra: Sequence[SpectrumData], wavelength_grid=None) -> tuple[np.ndarray, str, list]:
    """The grid a stack of ``spectra`` uses, how it was chosen and what it leaves out; warns when the
    default loses range.

    Parameters
    ----------
    spectra : sequence of SpectrumData
        The inputs as they enter the stack (rest frame, normalised).
    wavelength_grid : None, 'union' or array_like
        None: the input with the most pixels (:func:`default_grid`) — a
        :class:`~campfire.errors.StackRangeWarning` names the ranges other inputs cover
        outside it; ``'union'``: :func:`~campfire.tasks.grids.union_grid` (every
        input's range, finest native sampling in each region); an array: itself.

    Returns
    -------
    (numpy.ndarray, str, list of (float, float))
        The grid; ``'largest input'``, ``'union'`` or ``'given'``; the ranges [μm] the
        inputs cover outside it (:func:`~campfire.tasks.grids.uncovered_ranges`).

    Raises
    ------
    ValidationError
        Another string, or a malformed grid.

    Examples
    --------
    >>> import numpy as np
    >>> a = SpectrumData(np.linspace(1, 2, 11), np.ones(11), np.ones(11))
    >>> b = SpectrumData(np.linspace(2, 4, 5), np.ones(5), np.ones(5))
    >>> g, how, lost = stack_grid([a, b], 'union')
    >>> how, float(g[0]), float(g[-1]), lost
    ('union', 1.0, 4.0, [])
    """
    if isinstance(wavelength_grid, str):
        if wavelength_grid.lower() != "union":
            raise ValidationError(f"wavelength_grid: expected None, 'union' or an array of wavelengths [μm], "
                                  f"got {wavelength_grid!r}")
        grid, how = union_grid(spectra), "union"
    elif wavelength_grid is not None:
        grid, how = check_grid("wavelength_grid", wavelength_grid), "given"
    else:
        grid, how = default_grid(spectra), "largest input"
    lost = uncovered_ranges(spectra, grid)
    if how == "largest input":
        best = max(spectra, key=lambda s: int(np.isfinite(s.wavelength).sum()))
        warn_outside_default_grid(grid, lost, spectrum_label(best), stacklevel=3)
    return grid, how, lost


def _as_data(spectra) -> list[SpectrumData]:
    out = list(spectra)
    for s in out:
        if not isinstance(s, SpectrumData):
            raise ValidationError(
                f"spectra: expected SpectrumData items, got {type(s).__name__} "
                "(open Spectrum rows first, or call campfire.stack_spectra, which opens them)"
            )
    return out


def stack_spectra(
    spectra: Sequence[SpectrumData],
    method: str = "weighted_mean",
    wavelength_grid=None,
    object_id: str | None = None,
    *,
    redshift=None,
    normalize=False,
    min_coverage: float | None = None,
) -> SpectrumData:
    """Resample spectra onto a common grid and combine them.

    Parameters
    ----------
    spectra : sequence of SpectrumData
        The inputs (``campfire.stack_spectra`` also takes ``Spectrum`` rows and opens them).
    method : {'weighted_mean', 'median', 'mean'}
        Inverse-variance weighted mean, NaN-aware median, or plain mean (module notes).
    wavelength_grid : None, 'union' or array_like
        Output grid [μm]. Default: the grid of the input with the most pixels (in the
        rest frame when ``redshift`` is given), with a
        :class:`~campfire.errors.StackRangeWarning` when other inputs reach outside it
        (several gratings); ``'union'``: a grid covering every input at the finest
        native sampling in each region (:func:`~campfire.tasks.grids.union_grid`).
    object_id : str, optional
        Stored on the result (``spectrum_id`` becomes ``<object_id>_stack``).
    redshift : float or sequence of float, optional
        Shift every input (one z for all, or one per input) to the rest frame first.
    normalize : False, None or (float, float)
        Divide each input by its median f_ν in this window [μm] before combining
        (``campfire.stack_spectra`` also takes True: the configured
        ``campfire.stack.rest-window``, read when it runs).
    min_coverage : float, optional
        Passed to the resampler (fraction of an output bin good pixels must cover).

    Returns
    -------
    SpectrumData
        The stack, with ``count`` (inputs per pixel) and ``meta`` (method, inputs,
        ``grid``: how it was chosen, ``outside_grid``: [min, max] ranges [μm] inputs
        cover outside it, rest-frame/normalisation settings).

    Raises
    ------
    ValidationError
        Unknown method, no inputs or inputs that are not SpectrumData, a redshift list
        of the wrong length, a bad grid or window, or inputs mixing rest and observed frames.

    Examples
    --------
    >>> import numpy as np
    >>> from campfire.models import SpectrumData
    >>> w = np.linspace(1, 2, 50)
    >>> specs = [SpectrumData(w, np.full(50, v), np.full(50, 0.1), spectrum_id=str(v)) for v in (1.0, 3.0)]
    >>> st = stack_spectra(specs, method='mean', object_id='obj')
    >>> float(st.fnu[10]), int(st.count[10]), st.spectrum_id
    (2.0, 2, 'obj_stack')
    """
    m = check_method(method)
    specs = _as_data(spectra)
    if not specs:
        raise ValidationError("spectra: nothing to stack (empty input)")
    meta: dict = {}
    zs: list = [None] * len(specs)
    if redshift is not None:
        z = np.atleast_1d(np.asarray(redshift, float))
        if z.size == 1:
            z = np.repeat(z, len(specs))
        if z.size != len(specs):
            raise ValidationError(f"redshift: expected one value or one per spectrum ({len(specs)}), got {z.size}")
        zs = list(z)
        meta["rest_frame"] = True
    elif any(s.rest_frame for s in specs):  # inputs already shifted (to_rest_frame, rest-frame stacks)
        if not all(s.rest_frame for s in specs):
            raise ValidationError("spectra: some inputs are in the rest frame and some are not; "
                                  "stack observed-frame inputs with redshift=... instead")
        meta["rest_frame"] = True
    window = None
    if normalize is True:
        raise ValidationError("normalize: expected False or a (min, max) window in micron here; "
                              "campfire.stack_spectra(normalize=True) uses the configured campfire.stack.rest-window")
    if normalize is not False and normalize is not None:
        window = check_window(normalize)
        meta["norm_window"] = list(window)
    specs = [to_stack_frame(s, redshift=z, window=window) for s, z in zip(specs, zs)]
    grid, meta["grid"], lost = stack_grid(specs, wavelength_grid)
    meta["outside_grid"] = [list(r) for r in lost]  # what the plots shade
    on_grid = onto_grid(specs, grid, min_coverage=min_coverage)
    grating = stack_grating(s.grating for s in specs)
    if m == "median":
        out = stack_median(on_grid, grid, object_id=object_id, grating=grating, meta=meta)
    else:
        out = finalize_stack(stack_partials(on_grid), grid, m, object_id=object_id, grating=grating, meta=meta)
    out.meta["inputs"] = [s.spectrum_id for s in specs]
    return out
