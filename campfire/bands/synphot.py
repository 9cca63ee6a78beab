"""Synthetic photometry: the photon-counting AB band average over real transmission curves.

    <f_nu> = ∫ f_nu T λ⁻¹ dλ / ∫ T λ⁻¹ dλ

evaluated on the spectrum's own pixels (trapezoid-like weights w_i = T(λ_i) Δλ_i / λ_i),
so the error propagates as σ² = Σ (w_i σ_i)² / (Σ w_i)². A flat f_nu returns itself.

It lives with the band curves (not in :mod:`campfire.tasks`) because the quick-look
calibration figures, which sit below the tasks, draw synthetic points too;
:mod:`campfire.tasks.synphot` is the task-side name of the same functions.
"""
from __future__ import annotations

import numpy as np

from campfire.bands import Band, get_band
from campfire.errors import ValidationError

__all__ = ["synthetic_photometry", "band_weights", "band_weight_matrix", "band_coverage"]


def _pixel_widths(wavelength: np.ndarray) -> np.ndarray:
    edges = np.empty(wavelength.size + 1)
    edges[1:-1] = 0.5 * (wavelength[1:] + wavelength[:-1])
    edges[0] = wavelength[0] - 0.5 * (wavelength[1] - wavelength[0])
    edges[-1] = wavelength[-1] + 0.5 * (wavelength[-1] - wavelength[-2])
    return np.diff(edges)


def band_coverage(wavelength, valid, band: Band | str) -> float:
    """Fraction of the band's photon weight (T/λ) that falls on valid pixels (0..1).

    Parameters
    ----------
    wavelength : array_like
        Pixel wavelengths [μm] (increasing).
    valid : array_like of bool
        Good pixels.
    band : Band or str

    Returns
    -------
    float

    Raises
    ------
    ValidationError
        An unknown band name.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.linspace(0.6, 5.3, 2000)
    >>> band_coverage(w, np.ones(w.size, bool), 'f444w')
    1.0
    """
    band = get_band(band) if isinstance(band, str) else band
    wave = np.asarray(wavelength, float)
    valid = np.asarray(valid, bool) & np.isfinite(wave)
    if valid.sum() < 2:
        return 0.0
    t = band.throughput / band.wavelength
    inside = np.interp(band.wavelength, wave, valid.astype(float), left=0.0, right=0.0) > 0.999
    total = np.trapezoid(t, band.wavelength)
    return float(np.trapezoid(t * inside, band.wavelength) / total) if total > 0 else 0.0


def band_weights(wavelength: np.ndarray, band: Band) -> np.ndarray:
    """w_i = T(λ_i) Δλ_i / λ_i on the spectrum's pixels.

    Parameters
    ----------
    wavelength : numpy.ndarray
        Pixel wavelengths [μm] (increasing, ≥ 2).
    band : Band

    Returns
    -------
    numpy.ndarray
        One photon weight per pixel (0 outside the band).

    Examples
    --------
    >>> import numpy as np
    >>> from campfire.bands import get_band
    >>> float(band_weights(np.linspace(0.6, 5.3, 2000), get_band('f444w')).max()) > 0
    True
    """
    return band_weight_matrix(wavelength, [band])[0]


def band_weight_matrix(wavelength: np.ndarray, bands) -> np.ndarray:
    """:func:`band_weights` of several bands on one grid: an (n_bands × n_pixels) array.

    The pixel widths and 1/λ are computed once for all bands. On an increasing grid each
    curve is interpolated only on the pixels within its wavelength range (a band covers
    a tenth to a third of a PRISM spectrum; outside it the interpolation gives 0 either
    way), through only the curve's points around those pixels (``np.interp``'s cost grows
    with the curve's length: the HST curves have ~10⁴ points). The same values, bit for
    bit — each pixel is interpolated between the same two points of the curve.
    """
    factor = _pixel_widths(wavelength) / wavelength
    mat = np.zeros((len(bands), wavelength.size))
    increasing = wavelength.size > 1 and bool(np.all(wavelength[1:] >= wavelength[:-1]))  # False with a NaN
    for i, band in enumerate(bands):
        xp, fp = band.wavelength, band.throughput
        if not increasing:
            mat[i] = np.interp(wavelength, xp, fp, left=0.0, right=0.0)
            continue
        lo = int(wavelength.searchsorted(xp[0], side="left"))  # the pixels in [xp[0], xp[-1]]
        hi = int(wavelength.searchsorted(xp[-1], side="right"))
        if hi <= lo:
            continue
        k0 = int(xp.searchsorted(wavelength[lo], side="right")) - 1  # the curve's points around them
        k1 = int(xp.searchsorted(wavelength[hi - 1], side="left")) + 1
        mat[i, lo:hi] = np.interp(wavelength[lo:hi], xp[k0:k1], fp[k0:k1], left=0.0, right=0.0)
    mat *= factor
    return mat


def synthetic_photometry(wavelength, fnu, fnu_err, band: str, *, min_coverage: float = 0.99):
    """AB synthetic photometry of one band from a spectrum.

    Parameters
    ----------
    wavelength : array_like
        Wavelength in micron (increasing).
    fnu, fnu_err : array_like
        f_ν and its error in μJy; NaN marks bad pixels.
    band : str
        Band name, e.g. ``'f444w'``; unknown names raise ValidationError listing the known bands.
    min_coverage : float
        Fraction of the band (throughput-weighted) that valid pixels must cover.

    Returns
    -------
    (flux, err) : tuple of float
        Band-averaged f_ν and its 1σ error in μJy.

    Raises
    ------
    ValidationError
        Unknown band, or a band the spectrum does not cover.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.linspace(0.6, 5.3, 2000)
    >>> flux, err = synthetic_photometry(w, np.full(w.size, 2.0), np.full(w.size, 0.1), 'f444w')
    >>> round(flux, 6)
    2.0
    """
    band_obj = get_band(band)
    wave = np.asarray(wavelength, dtype=float)
    f = np.asarray(fnu, dtype=float)
    e = np.asarray(fnu_err, dtype=float)
    if wave.ndim != 1 or f.shape != wave.shape or e.shape != wave.shape:
        raise ValidationError(
            f"wavelength, fnu, fnu_err: expected 1D arrays of one length, got {wave.shape}, {f.shape}, {e.shape}"
        )
    valid = np.isfinite(wave) & np.isfinite(f) & np.isfinite(e)
    coverage = band_coverage(wave, valid, band_obj)
    if coverage < min_coverage:
        lo, hi = band_obj.support()
        good = wave[valid]
        span = f"{good.min():.3f}-{good.max():.3f} μm" if good.size else "no valid pixels"
        raise ValidationError(
            f"band {band!r} ({lo:.3f}-{hi:.3f} μm) is not covered by the spectrum "
            f"({span}; {coverage:.0%} of the band covered, {min_coverage:.0%} needed)"
        )
    w = band_weights(wave, band_obj) * valid
    total = w.sum()
    flux = float(np.sum(w * np.where(valid, f, 0.0)) / total)
    err = float(np.sqrt(np.sum((w * np.where(valid, e, 0.0)) ** 2)) / total)
    return flux, err
