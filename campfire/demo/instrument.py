"""A simple NIRSpec MSA model: wavelength grids, resolution, LSF, slit losses, noise.

Numbers follow SCIENCE.md (NIRSpec MSA configurations). Everything here is pure numpy
and deterministic; the random parts take a ``numpy.random.Generator``.

* **Grids.** PRISM: 1024 pixels whose centres are uniformly spaced in the resolution
  coordinate u(λ) = ∫ R(λ)/λ dλ (so the pixel width follows R), spanning 0.60–5.30 μm
  for a shutter at the MSA centre and shifted by a fraction of a pixel elsewhere.
  Gratings: linear grids with the real dispersions, extended 0.03 μm past the
  nominal range on both sides (NaN there, like DJA v4 files).
* **Resolution.** PRISM R(λ): a monotone cubic (PCHIP in log λ, log R) through
  ≈ 90 at 0.6 μm, ≈ 30 at 1.1–1.2 μm and ≈ 300 at 5 μm. Gratings: a FWHM of
  2.2 pixels (R ≈ 1000 mid-band).
* **LSF.** A Gaussian of that FWHM, applied by :func:`lsf_convolve` in the u coordinate
  where its width is constant; flux-conserving (bin integrals of the truth, then pixel
  averages of the convolved signal).
* **Slit loss.** :func:`slit_loss` — the fraction of a Gaussian source (σ_src) seen
  through a PSF of FWHM ≈ sqrt((0.033 λ/μm)² + 0.03²) arcsec that falls inside the
  0.20″ × 0.46″ open shutter area when the source sits (dx, dy) from the shutter centre,
  times an observation-level throughput factor. Smooth, and falling to the red.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf

__all__ = [
    "CONFIGS",
    "Config",
    "config",
    "prism_resolution",
    "fwhm_um",
    "pixel_grid",
    "lsf_convolve",
    "slit_loss",
    "psf_fwhm_arcsec",
    "noise_sigma",
    "SHUTTER_PITCH",
    "SHUTTER_OPEN",
    "SPATIAL_PIXSCALE",
    "N_SPATIAL",
]

SHUTTER_PITCH = (0.27, 0.53)  # arcsec: (dispersion x, along the slit y)
SHUTTER_OPEN = (0.20, 0.46)  # arcsec open area
SPATIAL_PIXSCALE = 0.10  # arcsec per detector pixel along the slit
N_SPATIAL = 15  # rows of the 2D spectra (0.1"/row: the 3-shutter slitlet is ~16 rows)

_PRISM_ANCHORS = np.array(
    [(0.55, 110.0), (0.6, 90.0), (0.8, 50.0), (1.0, 34.0), (1.15, 30.0), (1.3, 31.0), (1.6, 40.0),
     (2.0, 58.0), (2.5, 85.0), (3.0, 118.0), (3.5, 150.0), (4.0, 190.0), (4.5, 240.0), (5.0, 295.0),
     (5.3, 330.0), (5.6, 365.0)]
)


def _pchip_end_slope(h0: float, h1: float, m0: float, m1: float) -> float:
    """The end point's slope: a one-sided three-point estimate, kept monotone (Moler, *Numerical
    Computing with MATLAB*, §3.6)."""
    d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    if np.sign(d) != np.sign(m0):
        return 0.0
    if np.sign(m0) != np.sign(m1) and abs(d) > 3.0 * abs(m0):
        return 3.0 * m0
    return d


def _pchip_coefficients(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cubic coefficients (4, n − 1), highest power first, of the monotone piecewise-cubic (PCHIP,
    Fritsch & Butland) interpolant of (x, y): scipy's ``PchipInterpolator(x, y).c`` to the bit,
    without importing scipy.interpolate (~0.4 s of a demo build's start)."""
    h = np.diff(x)
    m = np.diff(y) / h
    w1 = 2 * h[1:] + h[:-1]
    w2 = h[1:] + 2 * h[:-1]
    flat = (np.sign(m[1:]) != np.sign(m[:-1])) | (m[1:] == 0) | (m[:-1] == 0)
    with np.errstate(divide="ignore", invalid="ignore"):  # where m is 0: flat
        inner = np.where(flat, 0.0, 1.0 / ((w1 / m[:-1] + w2 / m[1:]) / (w1 + w2)))
    d = np.r_[_pchip_end_slope(h[0], h[1], m[0], m[1]), inner, _pchip_end_slope(h[-1], h[-2], m[-1], m[-2])]
    t = (d[:-1] + d[1:] - 2 * m) / h
    return np.array([t / h, (m - d[:-1]) / h - t, d[:-1], y[:-1]])


_PRISM_LOG_WAVE = np.log(_PRISM_ANCHORS[:, 0])
_PRISM_LOG_R = _pchip_coefficients(_PRISM_LOG_WAVE, np.log(_PRISM_ANCHORS[:, 1]))


def prism_resolution(wave_um) -> np.ndarray:
    """PRISM resolving power R(λ) (≈ 90 at 0.6 μm, ≈ 30 at 1.1–1.2 μm, ≈ 300 at 5 μm).

    Examples
    --------
    >>> [int(round(float(prism_resolution(w)))) for w in (0.6, 1.15, 5.0)]
    [90, 30, 295]
    """
    lw = np.log(np.asarray(wave_um, float))
    # the PCHIP curve through the anchors in log-log, its end pieces extrapolated; summed as
    # scipy's PPoly sums it (its values to the bit)
    i = np.clip(np.searchsorted(_PRISM_LOG_WAVE, lw, side="right") - 1, 0, _PRISM_LOG_WAVE.size - 2)
    s = lw - _PRISM_LOG_WAVE[i]
    c3, c2, c1, c0 = _PRISM_LOG_R[:, i]
    return np.exp(c0 + c1 * s + c2 * (s * s) + c3 * (s * s * s))


@dataclass(frozen=True)
class Config:
    """One disperser/filter configuration."""

    grating: str
    filter: str
    nominal: tuple[float, float]  # μm, the range with data for a centred shutter
    dispersion: float | None = None  # μm per pixel (gratings)
    sigma_1hr: float = 0.0  # typical per-pixel 1σ noise [μJy] for a 1 hr exposure

    @property
    def key(self) -> str:
        return f"{self.grating}/{self.filter}"

    @property
    def is_prism(self) -> bool:
        return self.grating == "PRISM"


CONFIGS: dict[str, Config] = {
    c.key: c
    for c in (
        Config("PRISM", "CLEAR", (0.60, 5.30), None, 0.020),
        Config("G140M", "F070LP", (0.70, 1.27), 0.000636, 0.25),
        Config("G140M", "F100LP", (0.97, 1.89), 0.000636, 0.22),
        Config("G235M", "F170LP", (1.66, 3.17), 0.00106, 0.20),
        Config("G395M", "F290LP", (2.87, 5.27), 0.00179, 0.22),
    )
}


def config(grating: str, filt: str) -> Config:
    """The :class:`Config` of a grating/filter pair (upper-case names)."""
    return CONFIGS[f"{grating.upper()}/{filt.upper()}"]


def fwhm_um(cfg: Config, wave_um) -> np.ndarray:
    """LSF FWHM [μm] at each wavelength."""
    wave = np.asarray(wave_um, float)
    if cfg.is_prism:
        return wave / prism_resolution(wave)
    return np.full(wave.shape, 2.2 * cfg.dispersion)


# u(λ) = ∫ dλ / FWHM(λ) on a fine tabulation, for the PRISM grid and the LSF
_U_WAVE = np.exp(np.linspace(np.log(0.45), np.log(5.8), 20001))


def _u_table(cfg: Config) -> np.ndarray:
    inv = 1.0 / fwhm_um(cfg, _U_WAVE)
    return np.concatenate([[0.0], np.cumsum(0.5 * (inv[1:] + inv[:-1]) * np.diff(_U_WAVE))])


_U_TABLES = {key: _u_table(cfg) for key, cfg in CONFIGS.items()}


def wave_to_u(cfg: Config, wave_um) -> np.ndarray:
    return np.interp(wave_um, _U_WAVE, _U_TABLES[cfg.key])


def u_to_wave(cfg: Config, u) -> np.ndarray:
    return np.interp(u, _U_TABLES[cfg.key], _U_WAVE)


PRISM_NPIX = 1024
GRATING_PAD = 0.03  # μm of NaN padding past the nominal range (DJA v4 style)


def pixel_grid(cfg: Config, shift: float = 0.0) -> np.ndarray:
    """Pixel centres [μm] of a spectrum; ``shift`` in pixels (shutter position along x).

    Examples
    --------
    >>> w = pixel_grid(CONFIGS['PRISM/CLEAR'])
    >>> w.size, round(float(w[0]), 2), round(float(w[-1]), 2)
    (1024, 0.6, 5.3)
    """
    lo, hi = cfg.nominal
    if cfg.is_prism:
        u0, u1 = wave_to_u(cfg, np.array([lo, hi]))
        du = (u1 - u0) / (PRISM_NPIX - 1)
        u = u0 + (np.arange(PRISM_NPIX) + shift) * du
        return u_to_wave(cfg, u)
    d = cfg.dispersion
    start = lo - GRATING_PAD + shift * d
    n = int(np.floor((hi - lo + 2 * GRATING_PAD) / d)) + 1
    return start + np.arange(n) * d


def pixel_edges(wave: np.ndarray) -> np.ndarray:
    """Edges halfway between pixel centres (extrapolated at both ends)."""
    edges = np.empty(wave.size + 1)
    edges[1:-1] = 0.5 * (wave[1:] + wave[:-1])
    edges[0] = wave[0] - 0.5 * (wave[1] - wave[0])
    edges[-1] = wave[-1] + 0.5 * (wave[-1] - wave[-2])
    return edges


def lsf_convolve(cfg: Config, truth_edges: np.ndarray, truth_fnu: np.ndarray, wave: np.ndarray) -> np.ndarray:
    """The truth seen at the instrument's resolution, averaged over each output pixel.

    ``truth_fnu`` are pixel averages on ``truth_edges``; the result conserves flux.
    """
    # cumulative ∫ f dλ at the truth edges (exact: the truth is piecewise constant)
    cum = np.concatenate([[0.0], np.cumsum(truth_fnu * np.diff(truth_edges))])
    out_edges = pixel_edges(wave)
    u_lo, u_hi = wave_to_u(cfg, np.array([out_edges[0], out_edges[-1]]))
    du = 0.1  # ten samples per FWHM
    sig = 1.0 / 2.3548 / du  # Gaussian σ in samples
    half = int(np.ceil(5 * sig))
    ug = np.arange(u_lo - (half + 2) * du, u_hi + (half + 3) * du, du)
    wg = u_to_wave(cfg, ug)
    cg = np.interp(wg, truth_edges, cum)
    width = np.diff(wg)
    with np.errstate(invalid="ignore", divide="ignore"):
        g = np.where(width > 0, np.diff(cg) / width, 0.0)  # mean f_ν in each u bin
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sig) ** 2)
    k /= k.sum()
    conv = np.convolve(g, k, mode="same")
    # pixel averages of the convolved signal, integrating in u
    cum_u = np.concatenate([[0.0], np.cumsum(conv * du)])
    ue = wave_to_u(cfg, out_edges)
    ce = np.interp(ue, ug, cum_u)
    return np.diff(ce) / np.diff(ue)


def psf_fwhm_arcsec(wave_um) -> np.ndarray:
    """PSF FWHM [arcsec]: diffraction (≈ 1.03 λ/D, D = 6.5 m) plus a 0.03″ optics term."""
    wave = np.asarray(wave_um, float)
    return np.sqrt((0.0327 * wave) ** 2 + 0.03**2)


def slit_loss(wave_um, src_sigma: float, dx: float, dy: float, throughput: float = 1.0,
              psf_scale: float = 1.0) -> np.ndarray:
    """Fraction of the source's light captured by the open shutter (the demo's slit loss).

    Parameters
    ----------
    wave_um : array_like
        Wavelength [μm].
    src_sigma : float
        Gaussian σ of the source [arcsec].
    dx, dy : float
        Source offset from the shutter centre [arcsec] across / along the slit.
    throughput : float
        Observation-level flux-calibration factor (multiplies the captured fraction).
    psf_scale : float
        Multiplies the PSF FWHM (per observation: focus, jitter).

    Returns
    -------
    ndarray
        The multiplier applied to the true spectrum (before noise).

    Examples
    --------
    >>> s = slit_loss([1.0, 3.0, 5.0], 0.05, 0.0, 0.0)
    >>> bool(s[0] > s[1] > s[2])
    True
    """
    wave = np.asarray(wave_um, float)
    sig = np.sqrt(src_sigma**2 + (psf_scale * psf_fwhm_arcsec(wave) / 2.3548) ** 2)
    s2 = np.sqrt(2.0) * sig
    wx, wy = SHUTTER_OPEN[0] / 2, SHUTTER_OPEN[1] / 2
    fx = 0.5 * (erf((wx - dx) / s2) + erf((wx + dx) / s2))
    fy = 0.5 * (erf((wy - dy) / s2) + erf((wy + dy) / s2))
    return throughput * fx * fy


def noise_sigma(cfg: Config, wave_um, exptime: float) -> np.ndarray:
    """Per-pixel 1σ noise [μJy]: background-limited, ∝ 1/√t, worse at the band edges."""
    wave = np.asarray(wave_um, float)
    lo, hi = cfg.nominal
    x = (wave - lo) / (hi - lo)
    if cfg.is_prism:
        shape = 1.0 + 3.0 * np.exp(-(wave - 0.6) / 0.2) + 0.8 * ((wave - 2.5) / 2.8) ** 2
    else:
        shape = 1.0 + 0.8 * (2 * x - 1) ** 2 + 1.5 * np.exp(-x / 0.05)
    return cfg.sigma_1hr * shape * np.sqrt(3600.0 / exptime)
