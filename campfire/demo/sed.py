"""True spectral energy distributions of the demo's galaxies (the ground truth).

Every demo object has a set of SED parameters (:class:`SEDParams`, stored in the
``truth_objects`` table as JSON) and one true SED: f_ν [μJy] tabulated as pixel averages
on :data:`TRUTH_WAVE`, a logarithmic observed-frame grid (0.3–5.6 μm, 8000 pixels per
unit ln λ ≈ 37.5 km/s). Pixel averages (not point samples) keep every line's flux exact
however narrow it is, so the flux-conserving LSF convolution of
:mod:`campfire.demo.instrument` and the synthetic photometry of the truth agree.

The continuum families follow SCIENCE.md: star-forming galaxies with a UV power law and
a Balmer break, quiescent galaxies with a strong Balmer/4000 Å break, and the "V-shaped"
little red dots (a blue UV power law plus a steep red optical component turning over at
the Balmer limit). Lines are Gaussians of given rest equivalent width, so
λ_obs = (1 + z) λ_rest exactly. The IGM transmission blueward of Lyα is Madau (1995)'s
Lyα-forest term, which is ≈ 0 above z ≈ 6; below the Lyman limit the flux is 0.

Examples
--------
>>> from campfire.demo.sed import SEDParams, true_sed, TRUTH_WAVE
>>> p = SEDParams(sed_type='hae', z=2.0, norm=1.0, beta=-2.0, balmer=1.2,
...               lines=(('Halpha', 6564.61, 400.0, 150.0),))
>>> fnu = true_sed(p)
>>> fnu.shape == TRUTH_WAVE.shape
True
"""
from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from scipy.special import erf

from campfire.lines import EMISSION_LINES

__all__ = [
    "SED_TYPES",
    "TAGGED_TYPES",
    "TRUTH_WAVE",
    "TRUTH_EDGES",
    "SEDParams",
    "true_sed",
    "true_band_flux",
    "true_sed_band_flux",
    "continuum",
    "igm_transmission",
    "draw_sed_params",
]

C_KMS = 299792.458
LYA = 1215.67
LYMAN_LIMIT = 911.75
NORM_WAVE = 4.0  # observed micron where the continuum equals ``norm``
OIII_RATIO = 2.98  # F(5008)/F(4960), fixed by the transition probabilities (Storey & Zeippen 2000)
NII_RATIO = 2.95  # F(6585)/F(6550), likewise
DOUBLET_RATIOS = (("[OIII]-4960", "[OIII]-5008", OIII_RATIO), ("[NII]-6550", "[NII]-6585", NII_RATIO))
"""(weak line, strong line, flux ratio strong/weak) of the doublets whose ratio is atomic physics."""

SED_TYPES = ("sf", "hae", "lae", "qg", "blagn", "lrd")
"""SED families; every type but ``sf`` (plain star-forming) is also the object's tag."""
TAGGED_TYPES = ("lrd", "blagn", "lae", "hae", "qg")

_R_TRUTH = 8000.0
_N = int(np.ceil(_R_TRUTH * np.log(5.6 / 0.3)))
TRUTH_EDGES: np.ndarray = 0.3 * np.exp(np.arange(_N + 1) / _R_TRUTH)
"""Pixel edges of the truth grid [μm]."""
TRUTH_WAVE: np.ndarray = np.sqrt(TRUTH_EDGES[1:] * TRUTH_EDGES[:-1])
"""Pixel centres of the truth grid [μm] (observed frame)."""
TRUTH_EDGES.setflags(write=False)
TRUTH_WAVE.setflags(write=False)


@dataclass(frozen=True)
class SEDParams:
    """Parameters of one true SED.

    ``lines`` holds ``(name, rest wavelength Å, rest EW Å, FWHM km/s)``; a negative EW
    is an absorption line. ``red_amp``/``red_slope`` are the LRD red component
    (relative to the UV component at rest 5000 Å, and its f_ν power-law index).
    ``lya_skew`` > 0 gives Lyα its red wing (a skewed Gaussian).
    """

    sed_type: str
    z: float
    norm: float  # continuum f_ν [μJy] at NORM_WAVE (observed)
    beta: float  # UV slope, f_λ ∝ λ^β
    balmer: float = 1.0  # f_ν ratio across the Balmer limit (3646 Å)
    d4000: float = 1.0  # extra f_ν ratio across 4000 Å
    opt_slope: float = 0.0  # f_ν power-law index redward of the Balmer limit (the UV one is β + 2)
    red_amp: float = 0.0
    red_slope: float = 0.0
    lya_skew: float = 0.0
    lines: tuple[tuple[str, float, float, float], ...] = field(default_factory=tuple)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "SEDParams":
        d = json.loads(text)
        d["lines"] = tuple(tuple(x) for x in d["lines"])
        return cls(**d)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(x))


def continuum(p: SEDParams, rest_aa: np.ndarray) -> np.ndarray:
    """Continuum f_ν shape (arbitrary units) at rest wavelengths [Å], before the IGM."""
    lam = np.asarray(rest_aa, float)
    # UV power law up to the Balmer limit, then the optical f_nu power law (continuous)
    uv = (np.minimum(lam, 3650.0) / 1500.0) ** (p.beta + 2.0)
    opt = (np.maximum(lam, 3650.0) / 3650.0) ** p.opt_slope
    step = 1.0 + (p.balmer - 1.0) * _sigmoid((lam - 3700.0) / 60.0)
    step *= 1.0 + (p.d4000 - 1.0) * _sigmoid((lam - 4000.0) / 80.0)
    cont = uv * step * opt
    if p.red_amp > 0:
        # the LRD red component: steep power law that turns over at the Balmer limit
        red = p.red_amp * (5000.0 / 1500.0) ** (p.beta + 2.0) * (lam / 5000.0) ** p.red_slope
        cont = cont + red * _sigmoid((lam - 3650.0) / 120.0)
    # the near-IR decline past the 1.6 μm stellar bump
    cont = cont * (1.0 + (lam / 16000.0) ** 4) ** -0.25
    return cont


def igm_transmission(obs_um: np.ndarray, z: float) -> np.ndarray:
    """Madau (1995) Lyα-forest transmission, 0 below the Lyman limit."""
    obs_aa = np.asarray(obs_um, float) * 1e4
    rest = obs_aa / (1.0 + z)
    # the optical depth where it is not 0 only: at most a few of the pixels of a truth grid
    forest = rest < LYA
    tau = np.zeros(obs_aa.shape)
    tau[forest] = 0.0036 * (obs_aa[forest] / LYA) ** 3.46
    t = np.exp(-tau)
    return np.where(rest < LYMAN_LIMIT, 0.0, t)


def _line_profile_avg(edges_um, center_um, sigma_um, skew=0.0):
    """Average over each truth pixel of a unit-area Gaussian (exact via erf)."""
    if skew <= 0:
        cdf = 0.5 * (1.0 + erf((edges_um - center_um) / (np.sqrt(2.0) * sigma_um)))
    else:
        # skewed line: narrow blue side, wide red side (Lyα); split-normal, unit area
        s_blue, s_red = sigma_um, sigma_um * (1.0 + skew)
        w_blue, w_red = s_blue / (s_blue + s_red), s_red / (s_blue + s_red)
        x = edges_um - center_um
        cdf = np.where(
            x < 0,
            2 * w_blue * 0.5 * (1.0 + erf(x / (np.sqrt(2.0) * s_blue))),
            w_blue + 2 * w_red * (0.5 * erf(x / (np.sqrt(2.0) * s_red))),
        )
    return np.diff(cdf) / np.diff(edges_um)


def true_sed(p: SEDParams, edges: np.ndarray | None = None) -> np.ndarray:
    """The true f_ν [μJy] of an object as pixel averages on a grid (default the truth grid).

    Parameters
    ----------
    p : SEDParams
        The object's parameters.
    edges : ndarray, optional
        Pixel edges [μm] of the grid; default :data:`TRUTH_EDGES`.

    Returns
    -------
    ndarray
        f_ν in μJy, one value per pixel.

    Examples
    --------
    >>> p = SEDParams(sed_type='sf', z=1.5, norm=0.5, beta=-2.0)
    >>> f = true_sed(p)
    >>> round(float(np.interp(4.0, TRUTH_WAVE, f)), 3)
    0.5
    """
    edges = TRUTH_EDGES if edges is None else np.asarray(edges, float)
    wave = np.sqrt(edges[1:] * edges[:-1])
    zp1 = 1.0 + p.z
    rest = wave * 1e4 / zp1
    scale = p.norm / float(continuum(p, np.array([NORM_WAVE * 1e4 / zp1]))[0])
    cont = continuum(p, rest) * scale
    fnu = cont.copy()
    # the continuum under every line in one call (a call per line cost ~0.2 ms, most of a true SED)
    line_cont = continuum(p, np.array([line[1] for line in p.lines], float)) * scale
    for (name, rest_aa, ew_rest, fwhm_kms), cont_c in zip(p.lines, line_cont.tolist()):
        center = rest_aa * zp1 * 1e-4
        sigma = center * fwhm_kms / C_KMS / 2.3548
        lo = np.searchsorted(edges, center - 10 * sigma * (1 + 3 * p.lya_skew)) - 1
        hi = np.searchsorted(edges, center + 10 * sigma * (1 + 3 * p.lya_skew)) + 1
        lo, hi = max(lo, 0), min(hi, edges.size - 1)
        if hi <= lo + 1:
            continue
        skew = p.lya_skew if name == "Lyalpha" else 0.0
        prof = _line_profile_avg(edges[lo:hi + 1], center, sigma, skew)
        # f_nu line = continuum f_nu at the line × observed EW × unit-area profile (in μm)
        fnu[lo:hi] += cont_c * ew_rest * zp1 * 1e-4 * prof
    fnu *= igm_transmission(wave, p.z)
    return fnu


@functools.lru_cache(maxsize=None)
def _truth_band_weights(band: str) -> tuple[np.ndarray, float]:
    """A band's photon weights on the truth grid and their sum (the same for every object)."""
    from campfire.bands import get_band
    from campfire.bands.synphot import band_weights

    w = band_weights(TRUTH_WAVE, get_band(band))
    return w, float(w.sum())


def true_band_flux(fnu: np.ndarray, band: str) -> float:
    """The band-averaged f_ν [μJy] of a true SED on the truth grid (:func:`true_sed`).

    ``synthetic_photometry(TRUTH_WAVE, fnu, err, band)[0]`` to the bit (the truth grid covers
    every band and a true SED has no bad pixels), with the band's weights computed once per
    process instead of once per object and band.

    Examples
    --------
    >>> f = true_sed(SEDParams(sed_type='sf', z=1.5, norm=0.5, beta=-2.0))
    >>> round(true_band_flux(f, 'f444w'), 3)
    0.475
    """
    fnu = np.asarray(fnu, float)
    if fnu.shape != TRUTH_WAVE.shape or not np.isfinite(fnu).all():
        from campfire.errors import ValidationError

        raise ValidationError(f"fnu: expected {TRUTH_WAVE.size} finite values on the truth grid, "
                              f"got shape {fnu.shape}")
    w, total = _truth_band_weights(band)
    return float(np.sum(w * fnu) / total)


@functools.lru_cache(maxsize=None)
def _band_support(band: str) -> tuple[int, int]:
    """The truth-grid pixels [start, stop) around a band's non-zero weights, with two of weight 0 each side
    (the whole grid for a band without any)."""
    nonzero = np.flatnonzero(_truth_band_weights(band)[0])
    if not nonzero.size:
        return 0, TRUTH_WAVE.size
    return max(int(nonzero[0]) - 2, 0), min(int(nonzero[-1]) + 3, TRUTH_WAVE.size)


def true_sed_band_flux(p: SEDParams, band: str) -> float:
    """``true_band_flux(true_sed(p), band)`` to the bit, the SED evaluated on the band's pixels only.

    Every pixel of :func:`true_sed` is computed on its own (the continuum, each line's
    average over the pixel, the IGM), so the band's pixels have the same values on a grid
    cut to them; outside them the weights are 0 and so are their products either way.
    ~5× faster for a band a tenth of the truth grid wide.

    Examples
    --------
    >>> p = SEDParams(sed_type='sf', z=1.5, norm=0.5, beta=-2.0)
    >>> true_sed_band_flux(p, 'f444w') == true_band_flux(true_sed(p), 'f444w')
    True
    """
    start, stop = _band_support(band)
    fnu = np.zeros(TRUTH_WAVE.size)
    fnu[start:stop] = true_sed(p, TRUTH_EDGES[start:stop + 1])
    return true_band_flux(fnu, band)


# --------------------------------------------------------------------------------------
# drawing parameters per type


def _line(name: str, ew: float, fwhm: float) -> tuple[str, float, float, float]:
    return (name, float(EMISSION_LINES[name]), float(ew), float(fwhm))


def _nebular(rng: np.random.Generator, ew_ha: float, fwhm: float, metal: float = 1.0) -> list:
    """A star-forming nebular line set scaled to the Hα rest EW."""
    o3 = ew_ha * rng.uniform(0.6, 1.6) * metal
    lines = [
        _line("Halpha", ew_ha, fwhm),
        _line("Hbeta", ew_ha * 0.22, fwhm),
        _line("Hgamma", ew_ha * 0.09, fwhm),
        _line("[OIII]-5008", o3, fwhm),
        _line("[OIII]-4960", 0.0, fwhm),  # tied to [OIII] 5008 by _tie_doublets
        _line("[OII]-3727", ew_ha * 0.12, fwhm),
        _line("[OII]-3730", ew_ha * 0.16, fwhm),
        _line("[NeIII]", o3 * 0.08, fwhm),
        _line("[NII]-6585", ew_ha * rng.uniform(0.05, 0.3) / metal, fwhm),
        _line("[NII]-6550", 0.0, fwhm),  # tied to [NII] 6585 by _tie_doublets
        _line("[SII]-6718", ew_ha * 0.08, fwhm),
        _line("[SII]-6733", ew_ha * 0.06, fwhm),
        _line("HeI-10833", ew_ha * 0.12, fwhm),
        _line("Pabeta", ew_ha * 0.08, fwhm),
        _line("Paalpha", ew_ha * 0.15, fwhm),
        _line("[SIII]-9533", ew_ha * 0.1, fwhm),
    ]
    return lines


REDSHIFT_RANGES = {
    "sf": (0.5, 12.0),
    "hae": (1.0, 6.0),
    "lae": (4.5, 10.5),
    "qg": (1.5, 5.0),
    "blagn": (1.0, 7.0),
    "lrd": (3.0, 9.0),
}


def draw_redshift(rng: np.random.Generator, sed_type: str) -> float:
    """A redshift from the type's distribution (SCIENCE.md: the demo's object types)."""
    lo, hi = REDSHIFT_RANGES[sed_type]
    if sed_type == "lrd":
        z = rng.normal(6.0, 1.3)
    elif sed_type == "lae":
        z = 4.8 + rng.gamma(2.0, 0.8)
    elif sed_type == "sf":
        z = np.exp(rng.normal(np.log(3.0), 0.55))
    else:
        z = rng.uniform(lo, hi)
    return float(np.clip(z, lo, hi))


def draw_sed_params(rng: np.random.Generator, sed_type: str, z: float | None = None) -> SEDParams:
    """Draw plausible SED parameters of one type (deterministic for a given ``rng`` state).

    Examples
    --------
    >>> p = draw_sed_params(np.random.default_rng(1), 'lrd')
    >>> p.sed_type, 3.0 <= p.z <= 9.0
    ('lrd', True)
    """
    if sed_type not in SED_TYPES:
        from campfire.errors import ValidationError

        raise ValidationError(f"sed_type: expected one of {', '.join(SED_TYPES)}, got {sed_type!r}")
    if z is None:
        z = draw_redshift(rng, sed_type)
    narrow = float(rng.uniform(120.0, 260.0))
    kw: dict = {}
    if sed_type == "sf":
        ew = float(np.exp(rng.normal(np.log(120.0), 0.5)))
        kw = dict(beta=rng.uniform(-2.4, -1.5), balmer=rng.uniform(1.05, 1.5), opt_slope=rng.uniform(-0.2, 0.6),
                  lines=_nebular(rng, ew, narrow) + [_line("Lyalpha", rng.uniform(0, 15), 300.0)])
        norm = np.exp(rng.normal(np.log(0.25), 0.7))
    elif sed_type == "hae":
        ew = float(rng.uniform(300.0, 1000.0))
        kw = dict(beta=rng.uniform(-2.5, -1.8), balmer=rng.uniform(1.0, 1.25), opt_slope=rng.uniform(-0.5, 0.2),
                  lines=_nebular(rng, ew, narrow, metal=1.2))
        norm = np.exp(rng.normal(np.log(0.2), 0.6))
    elif sed_type == "lae":
        ew = float(rng.uniform(150.0, 600.0))
        lines = _nebular(rng, ew, narrow, metal=1.4)
        lines.append(_line("Lyalpha", rng.uniform(40.0, 200.0), rng.uniform(250.0, 450.0)))
        lines.append(_line("CIII]", rng.uniform(5.0, 20.0), narrow))
        kw = dict(beta=rng.uniform(-2.8, -2.2), balmer=rng.uniform(0.95, 1.1), lya_skew=rng.uniform(0.8, 2.0),
                  opt_slope=rng.uniform(-0.6, 0.0),
                  lines=lines)
        norm = np.exp(rng.normal(np.log(0.08), 0.5))
    elif sed_type == "qg":
        fw = rng.uniform(500.0, 900.0)
        kw = dict(beta=rng.uniform(-0.5, 1.0), balmer=rng.uniform(1.6, 2.4), d4000=rng.uniform(1.2, 1.6),
                  opt_slope=rng.uniform(0.4, 1.2),
                  lines=[_line("Hdelta", -rng.uniform(3, 7), fw), _line("Hgamma", -rng.uniform(2, 5), fw),
                         _line("Hbeta", -rng.uniform(2, 5), fw), _line("Halpha", -rng.uniform(1, 3), fw),
                         _line("[NII]-6585", rng.uniform(0, 3), 300.0)])
        norm = np.exp(rng.normal(np.log(1.2), 0.5))
    elif sed_type == "blagn":
        ew = float(np.exp(rng.normal(np.log(100.0), 0.4)))
        broad = float(rng.uniform(2000.0, 5000.0))
        lines = _nebular(rng, ew, narrow)
        lines += [_line("Halpha", rng.uniform(150.0, 450.0), broad), _line("Hbeta", rng.uniform(30.0, 90.0), broad)]
        kw = dict(beta=rng.uniform(-2.3, -1.5), balmer=rng.uniform(1.05, 1.4), opt_slope=rng.uniform(-0.2, 0.5),
                  lines=lines)
        norm = np.exp(rng.normal(np.log(0.5), 0.6))
    else:  # lrd
        broad = float(rng.uniform(1500.0, 4000.0))
        ew_ha, ew_hb, ew_hg, ew_o3 = (rng.uniform(lo, hi) for lo, hi in ((300, 900), (40, 150), (10, 40), (10, 80)))
        # demo v2 drew [OIII] 4960's EW here, independently of 5008 (4960 could outshine 5008);
        # the draw stays so that every later draw of the object (lines, size, ...) is unchanged
        rng.uniform(3.0, 25.0)
        lines = [
            _line("Halpha", ew_ha, broad),
            _line("Hbeta", ew_hb, broad),
            _line("Hgamma", ew_hg, broad),
            _line("[OIII]-5008", ew_o3, narrow),
            _line("[OIII]-4960", 0.0, narrow),  # tied to [OIII] 5008 by _tie_doublets
            _line("HeI-10833", rng.uniform(20.0, 80.0), broad * 0.7),
            _line("Paalpha", rng.uniform(30.0, 120.0), broad * 0.8),
        ]
        if rng.random() < 0.4:  # narrow Balmer absorption on the broad lines
            lines += [_line("Halpha", -rng.uniform(5.0, 20.0), 250.0), _line("Hbeta", -rng.uniform(2.0, 8.0), 250.0)]
        kw = dict(beta=rng.uniform(-2.5, -1.8), balmer=1.0, red_amp=rng.uniform(3.0, 10.0),
                  red_slope=rng.uniform(1.5, 3.0), lines=lines)
        norm = np.exp(rng.normal(np.log(0.8), 0.5))
    kw = {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in kw.items()}
    kw["lines"] = tuple(kw.get("lines", ()))
    return _tie_doublets(SEDParams(sed_type=sed_type, z=round(float(z), 4), norm=float(norm), **kw))


def _tie_doublets(p: SEDParams) -> SEDParams:
    """Set the weak member of each fixed-ratio doublet (:data:`DOUBLET_RATIOS`) from the strong one.

    Line strengths are rest EWs relative to the continuum at each line, so the flux ratio
    F_strong/F_weak = EW_strong·f_λ(strong) / (EW_weak·f_λ(weak)); the weak EW is chosen to
    make that exactly the atomic ratio on this object's continuum.
    """
    lines = list(p.lines)
    names = [ln[0] for ln in lines]
    for weak, strong, ratio in DOUBLET_RATIOS:
        if weak not in names or strong not in names:
            continue
        iw, is_ = names.index(weak), names.index(strong)
        rest = np.array([lines[is_][1], lines[iw][1]])
        cont_flam = continuum(p, rest) / rest**2  # f_λ ∝ f_ν / λ²
        ew = lines[is_][2] / ratio * float(cont_flam[0] / cont_flam[1])
        lines[iw] = (weak, lines[iw][1], float(ew), lines[iw][3])
    return replace(p, lines=tuple(lines))
