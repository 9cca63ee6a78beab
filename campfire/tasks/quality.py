"""What the data of one spectrum say about its quality: the catalog's S/N and DQ flags.

Pure functions of the arrays (wavelength [μm], f_ν and error [μJy], NaN for bad
pixels) and the grating/filter. The demo builder and the ingest of real products
(:mod:`campfire.archive`) use them, so ``signal_to_noise`` and the data-derived flags
mean the same in every archive:

``signal_to_noise``
    The median of flux/err over valid pixels (finite flux, finite positive error) —
    DJA's ``sn50``. NaN when no pixel is valid.
``LOW_SNR``
    ``signal_to_noise`` < :data:`LOW_SNR_THRESHOLD` (3), or NaN.
``PARTIAL_COVERAGE``
    The span of valid pixels covers less than :data:`PARTIAL_COVERAGE_FRACTION` (95 %)
    of the configuration's nominal range (:data:`NOMINAL_RANGES`, SCIENCE.md). Real
    files extend past the nominal range with NaN (DJA v4); only the part inside counts.
``CHIP_GAP``
    A run of at least :data:`CHIP_GAP_MIN_PIXELS` (20) consecutive invalid pixels
    *between* valid ones: the NRS1/NRS2 gap (≈170 pixels on the M-grating grids of the
    real DJA files; single bad pixels and short clusters are not a gap).

Examples
--------
>>> import numpy as np
>>> from campfire.flags import decode_flags
>>> wave = np.linspace(0.6, 5.3, 400)
>>> flux = np.ones(400); flux[100:150] = np.nan
>>> q = spectrum_quality(wave, flux, np.full(400, 0.1), 'PRISM', 'CLEAR')
>>> q['signal_to_noise'], decode_flags(q['dq_flags'], 'dq_flags')
(10.0, ['CHIP_GAP'])
"""
from __future__ import annotations

from typing import Any

import numpy as np

from campfire.flags import DQFlags

__all__ = [
    "LOW_SNR_THRESHOLD",
    "PARTIAL_COVERAGE_FRACTION",
    "CHIP_GAP_MIN_PIXELS",
    "NOMINAL_RANGES",
    "nominal_range",
    "median_snr",
    "invalid_runs",
    "spectrum_quality",
]

LOW_SNR_THRESHOLD = 3.0
PARTIAL_COVERAGE_FRACTION = 0.95
CHIP_GAP_MIN_PIXELS = 20

# NIRSpec MSA configurations: nominal wavelength range [μm] (SCIENCE.md). The H gratings
# cover the ranges of their M twins; G140M/F070LP's nominal range starts at 0.90 μm
# (its data extend to 0.70, which the demo's instrument model simulates).
NOMINAL_RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("PRISM", "CLEAR"): (0.60, 5.30),
    ("G140M", "F070LP"): (0.90, 1.27),
    ("G140M", "F100LP"): (0.97, 1.89),
    ("G235M", "F170LP"): (1.66, 3.17),
    ("G395M", "F290LP"): (2.87, 5.27),
    ("G140H", "F070LP"): (0.90, 1.27),
    ("G140H", "F100LP"): (0.97, 1.89),
    ("G235H", "F170LP"): (1.66, 3.17),
    ("G395H", "F290LP"): (2.87, 5.27),
}


def nominal_range(grating: str | None, filt: str | None) -> tuple[float, float] | None:
    """The nominal range [μm] of a grating/filter pair (any case), None when unknown.

    Examples
    --------
    >>> nominal_range('g395m', 'f290lp')
    (2.87, 5.27)
    >>> nominal_range('PRISM', None) is None
    True
    """
    return NOMINAL_RANGES.get((str(grating or "").upper(), str(filt or "").upper()))


def _valid(flux, err) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = np.asarray(flux, float)
    e = np.asarray(err, float)
    with np.errstate(invalid="ignore"):
        return f, e, np.isfinite(f) & np.isfinite(e) & (e > 0)


def median_snr(flux, err) -> float:
    """The catalog's ``signal_to_noise``: median of flux/err over valid pixels (NaN if none).

    Examples
    --------
    >>> median_snr([1.0, 2.0, np.nan, 4.0], [0.5, 0.5, 0.5, 1.0])
    4.0
    """
    f, e, v = _valid(flux, err)
    if not v.any():
        return float("nan")
    return float(np.median(f[v] / e[v]))


def invalid_runs(valid) -> list[tuple[int, int]]:
    """(start, stop) pixel index ranges of the runs of invalid pixels between valid ones.

    Runs at either end (before the first or after the last valid pixel) are padding,
    not gaps, and are left out.

    Examples
    --------
    >>> invalid_runs(np.array([0, 1, 0, 0, 1, 1, 0, 1, 0], bool))
    [(2, 4), (6, 7)]
    """
    v = np.asarray(valid, bool)
    idx = np.flatnonzero(v)
    if idx.size < 2:
        return []
    inner = ~v[idx[0]:idx[-1] + 1]
    edges = np.diff(np.r_[0, inner.astype(np.int8), 0])
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(a + idx[0]), int(b + idx[0])) for a, b in zip(starts, stops)]


def spectrum_quality(wave, flux, err, grating: str | None, filt: str | None) -> dict[str, Any]:
    """Summary numbers and data-derived DQ flags of one spectrum.

    Parameters
    ----------
    wave : array_like
        Wavelength [μm], increasing.
    flux, err : array_like
        f_ν and its error [μJy]; bad pixels NaN (or a non-positive error).
    grating, filt : str
        The configuration (sets the nominal range of PARTIAL_COVERAGE; an unknown one
        sets no PARTIAL_COVERAGE).

    Returns
    -------
    dict
        ``signal_to_noise`` (float or NaN), ``n_pix`` (pixels in the file),
        ``n_valid``, ``wave_min`` / ``wave_max`` (of valid pixels, None if none),
        ``gaps`` (list of (λ_start, λ_stop) μm of the CHIP_GAP runs), ``coverage``
        (fraction of the nominal range spanned, None when unknown) and ``dq_flags``
        (int: CHIP_GAP | LOW_SNR | PARTIAL_COVERAGE as they apply).
    """
    w = np.asarray(wave, float)
    _, _, v = _valid(flux, err)
    v &= np.isfinite(w)
    snr = median_snr(flux, err)
    flags = 0  # plain ints: DQFlags' own operators build filter expressions
    good = w[v]
    gaps = [(float(w[a - 1]), float(w[b])) for a, b in invalid_runs(v) if b - a >= CHIP_GAP_MIN_PIXELS]
    if gaps:
        flags |= int(DQFlags.CHIP_GAP)
    if not snr >= LOW_SNR_THRESHOLD:
        flags |= int(DQFlags.LOW_SNR)
    coverage = None
    nominal = nominal_range(grating, filt)
    if nominal is not None:
        lo, hi = nominal
        span = max(0.0, min(hi, good.max()) - max(lo, good.min())) if good.size else 0.0
        coverage = span / (hi - lo)
        if coverage < PARTIAL_COVERAGE_FRACTION:
            flags |= int(DQFlags.PARTIAL_COVERAGE)
    return {
        "signal_to_noise": snr,
        "n_pix": int(w.size),
        "n_valid": int(v.sum()),
        "wave_min": float(good.min()) if good.size else None,
        "wave_max": float(good.max()) if good.size else None,
        "gaps": gaps,
        "coverage": coverage,
        "dq_flags": flags,
    }
