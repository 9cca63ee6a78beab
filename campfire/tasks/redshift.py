"""Template redshift fitting: χ² over a ln(1+z) grid with continuum + emission lines.

The model at redshift z, fitted linearly to f_ν with inverse-variance weights::

    f_ν(λ) = T_IGM(λ, z) · Σ_c a_c B_c(ln λ)  +  Σ_k b_k L_k(λ, z),   b_k ≥ 0

* ``B_c``: cubic B-splines in ln λ over the observed range — a flexible continuum
  template set (the approach of msaexp's spline fits), smooth on the scale of a
  knot spacing that follows the resolution (≈0.17 in ln λ for PRISM), so it cannot
  absorb lines but follows any galaxy/AGN continuum shape. A curvature prior on the
  coefficients (:data:`SPLINE_CURVATURE`) keeps it from bending into a break: at low
  S/N an unconstrained spline could drop to zero within one knot interval and fake a
  Lyman or Balmer break anywhere.
* ``T_IGM``: the intergalactic medium at z: 1 redward of Lyα, the mean Lyα-forest
  transmission of Madau (1995), exp(−0.0036 (λ_obs/1216 Å)^3.46), between the Lyman
  limit and Lyα, 0 below the Lyman limit, each step smoothed by the resolution.
  This gives Lyman-break galaxies without lines their redshift.
* ``L_k``: emission-line components (:data:`LINE_COMPONENTS`; doublets with fixed
  ratios, narrow lines plus broad Hα/Hβ), pixel-integrated Gaussians whose width is
  the instrument resolution at the observed wavelength (:func:`resolving_power`:
  R ≈ 30–300 for PRISM, ≈1000 for the M gratings) ⊕ the intrinsic width; and the
  rest-frame Balmer and 4000 Å breaks as smoothed up-steps (:data:`CONTINUUM_STEPS`),
  which give line-less quiescent galaxies their redshift. A step is allowed only while
  the break contrast stays physical (:data:`BREAK_MAX_RATIO`), so a low-z Balmer break
  cannot imitate the zero flux blueward of a Lyman break.

The amplitudes b_k are non-negative (absent lines cost nothing, dips are not
"lines"). Which components enter is a model choice made per redshift by minimising
χ² + LINE_SNR_MIN² per component (stepwise: add the component of largest Δχ², drop
negative or insignificant ones), so lines fitted to noise at a wrong redshift do not
outweigh fewer real features. The "χ²" reported (``chi2_grid``, ``chi2_min``) is this
penalised χ², spline curvature prior included.

The grid is coarse-to-fine: a coarse pass over the whole ``z_range`` with line
widths broadened by half a grid step (so a narrow grating line is never stepped
over), then fine grids around the best local minima at the true resolution, and a
parabolic refinement of the best point. ``confidence`` is the probability mass
within |Δz|/(1+z) < 0.01 of the best redshift, from p(z) ∝ exp(−Δχ²/2s) on the
coarse grid, where s = max(1, χ²_min/dof) absorbs underestimated errors.

A compiled kernel (numba) evaluates the grid in ≈20–40 ms per PRISM spectrum; a
plain numpy implementation of the same model (:func:`_chi2_dense`) is the fallback
and the reference the kernel is tested against.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from campfire.errors import ValidationError
from campfire.tasks._jit import kernels, resolve_engine

__all__ = ["fit_redshift", "resolving_power", "LINE_COMPONENTS", "FIT_KEYS"]

C_KMS = 299792.458
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
FIT_KEYS = ("redshift", "chi2_min", "confidence", "z_grid", "chi2_grid", "model_wave", "model_fnu")

# (name, ((vacuum rest wavelength Å, relative line flux), ...), intrinsic FWHM km/s).
# The first line of a component is its reference (coverage is judged on it).
NARROW_FWHM = 150.0
BROAD_FWHM = 2500.0
LINE_COMPONENTS: tuple[tuple[str, tuple[tuple[float, float], ...], float], ...] = (
    ("Lyalpha", ((1215.67, 1.0),), 300.0),
    ("CIV", ((1548.19, 1.0), (1550.77, 0.5)), NARROW_FWHM),
    ("HeII-1640", ((1640.42, 1.0),), NARROW_FWHM),
    ("OIII]-1666", ((1666.15, 1.0), (1660.81, 0.35)), NARROW_FWHM),
    ("CIII]", ((1906.68, 1.0), (1908.73, 0.7)), NARROW_FWHM),
    ("MgII", ((2796.35, 1.0), (2803.53, 0.6)), NARROW_FWHM),
    ("[OII]", ((3729.88, 1.0), (3727.09, 0.75)), NARROW_FWHM),
    ("[NeIII]", ((3869.86, 1.0),), NARROW_FWHM),
    ("Hepsilon", ((3971.20, 1.0),), NARROW_FWHM),
    ("Hdelta", ((4102.89, 1.0),), NARROW_FWHM),
    ("Hgamma", ((4341.69, 1.0),), NARROW_FWHM),
    ("Hbeta", ((4862.68, 1.0),), NARROW_FWHM),
    ("[OIII]", ((5008.24, 1.0), (4960.30, 1.0 / 2.98)), NARROW_FWHM),
    ("HeI-5877", ((5877.25, 1.0),), NARROW_FWHM),
    ("[OI]", ((6302.05, 1.0), (6365.54, 0.33)), NARROW_FWHM),
    ("Halpha", ((6564.61, 1.0),), NARROW_FWHM),
    ("[NII]", ((6585.27, 1.0), (6549.86, 1.0 / 2.95)), NARROW_FWHM),
    ("[SII]", ((6718.29, 1.0), (6732.67, 0.75)), NARROW_FWHM),
    ("[SIII]", ((9533.2, 1.0), (9071.1, 0.41)), NARROW_FWHM),
    ("HeI-10833", ((10833.3, 1.0),), NARROW_FWHM),
    ("Pagamma", ((10941.1, 1.0),), NARROW_FWHM),
    ("Pabeta", ((12821.6, 1.0),), NARROW_FWHM),
    ("Paalpha", ((18756.1, 1.0),), NARROW_FWHM),
    # broad (AGN / little red dot) components of the permitted lines
    ("Halpha-broad", ((6564.61, 1.0),), BROAD_FWHM),
    ("Hbeta-broad", ((4862.68, 1.0),), BROAD_FWHM),
    ("Hgamma-broad", ((4341.69, 1.0),), BROAD_FWHM),
    ("MgII-broad", ((2799.12, 1.0),), BROAD_FWHM),
    ("HeI-5877-broad", ((5877.25, 1.0),), BROAD_FWHM),
    ("HeI-10833-broad", ((10833.3, 1.0),), BROAD_FWHM),
    ("Pabeta-broad", ((12821.6, 1.0),), BROAD_FWHM),
    ("Paalpha-broad", ((18756.1, 1.0),), BROAD_FWHM),
    # narrow Balmer absorption on top of broad lines (little red dots): a negative
    # relative flux, so the non-negative amplitude makes it an absorption line
    ("Halpha-absorption", ((6564.61, -1.0),), NARROW_FWHM),
    ("Hbeta-absorption", ((4862.68, -1.0),), NARROW_FWHM),
)

# Rest-frame continuum steps: the Balmer break (its effective centre in low-resolution
# spectra, where the high-order Balmer lines crowd redward of the 3646 Å limit) and the
# 4000 Å break, as smoothed up-steps Φ((ln λ − ln λ_b)/σ) with amplitude ≥ 0, selected
# like line components. (name, rest wavelength Å, intrinsic width σ in ln λ.)
# The spline alone cannot follow a break this sharp; without the steps, a staircase of
# [O II], [Ne III], Hε, Hδ emission lines filled it in at a wrong redshift.
CONTINUUM_STEPS: tuple[tuple[str, float, float], ...] = (
    ("Balmer-break", 3700.0, 0.015),
    ("4000A-break", 4000.0, 0.018),
)
# A step is only allowed while the continuum contrast f_ν(4300 Å) / f_ν(3550 Å) of the
# model stays ≤ BREAK_MAX_RATIO (a generous bound: the demo's quiescent galaxies reach
# ≈ 5 with their Balmer, 4000 Å and red-slope factors together): otherwise a low-z
# "Balmer break" onto zero flux would mimic a Lyman break. When the contrast is
# exceeded the steps are barred at that redshift.
BREAK_CHECK_UM = (0.3550, 0.4300)
BREAK_MAX_RATIO = 6.0

# NIRSpec PRISM resolving power vs wavelength (SCIENCE.md: ≈80–100 at the blue end,
# minimum ≈30 near 1.1–1.2 μm, ≈300 at 5 μm), from the shape of the JDox dispersion curve.
_PRISM_R = (
    (0.50, 0.60, 0.80, 1.00, 1.15, 1.40, 1.70, 2.00, 2.50, 3.00, 3.50, 4.00, 4.50, 5.00, 5.30, 5.60),
    (100.0, 85.0, 50.0, 36.0, 30.0, 33.0, 42.0, 52.0, 72.0, 95.0, 125.0, 160.0, 215.0, 300.0, 330.0, 350.0),
)
# grating central wavelengths [μm]: R of the M (H) gratings grows ∝ λ across a band,
# ≈1000 (2700) at the centre
_GRATING_CENTRE = {"G140": 1.35, "G235": 2.4, "G395": 4.05}

# coarse ln(1+z) step: 2.7 σ of the narrowest line, within these bounds (PRISM 0.0035,
# gratings ≈0.0016); lines are broadened by half a step in that pass, which keeps a
# line template's overlap with the true line ≥ 0.85 between grid points
Z_STEP_COARSE = (0.0015, 0.0035)
Z_STEP_SIGMAS = 2.7
N_PEAKS = 8
SYS_ERR = 0.02  # fractional systematic error floor added in quadrature (model mismatch)
MIN_COVER = 0.25  # a line counts when ≥ this fraction of its flux lands on valid pixels
RIDGE = 1e-9
_KNOT_MAX = 0.2
_KNOT_FAC = 40.0
# a line or step enters the model only when detected at ≥ this S/N; each component used
# costs LINE_SNR_MIN² in the χ² compared across redshifts (so noise fitted by lines at a
# wrong redshift does not win over fewer, real features)
LINE_SNR_MIN = 2.0
IGM_SIGMA_KMS = 300.0  # extra smoothing of the IGM steps (damping wing, forest structure)
# curvature prior on the continuum spline: second differences of the B-spline
# coefficients ~ N(0, (SPLINE_CURVATURE · level)²), level = the 80th percentile of |f_ν|
# of a z-independent spline fit (≥ the median error). A smooth continuum (a power law
# up to |α| ≈ 3) costs ≲ 1 per knot at any redshift; a spline that drops to zero within
# a knot interval (a break it would fake) costs ≳ 10
SPLINE_CURVATURE = 0.3
LYA_UM = 0.121567
LYLIMIT_UM = 0.0911753


def resolving_power(wavelength, grating: str | None = None) -> np.ndarray:
    """Spectral resolving power R = λ/Δλ(FWHM) of NIRSpec at ``wavelength`` [μm].

    Parameters
    ----------
    wavelength : array_like
        Wavelength in micron.
    grating : str, optional
        ``'PRISM'`` (R ≈ 30–300), an M grating (``'G140M'``, ``'G235M'``, ``'G395M'``:
        R ≈ 1000 at the band centre, ∝ λ) or an H grating (≈2700). ``None`` or an
        unknown name: PRISM when the pixel sampling is PRISM-like (λ/Δλ < 800), else M.

    Returns
    -------
    numpy.ndarray
        R at each wavelength.

    Examples
    --------
    >>> import numpy as np
    >>> resolving_power(np.array([1.15, 5.0]), 'PRISM').round()
    array([ 30., 300.])
    """
    wave = np.asarray(wavelength, dtype=float)
    key = (grating or "").upper()
    if key in ("", "UNKNOWN", "?") or not (key.startswith("PRISM") or key[:4] in _GRATING_CENTRE):
        good = np.isfinite(wave) & (wave > 0)
        wg = np.sort(wave[good])
        dl = np.diff(wg)
        sampling = np.median(wg[1:][dl > 0] / dl[dl > 0]) if np.any(dl > 0) else 0.0
        key = "PRISM" if sampling < 800 else "G235M"
    if key.startswith("PRISM"):
        return np.interp(wave, *_PRISM_R)
    r0 = 2700.0 if key.endswith("H") else 1000.0
    return r0 * wave / _GRATING_CENTRE[key[:4]]


@functools.lru_cache(maxsize=1)
def _line_tables():
    """Flattened components: pointers, ln rest λ [μm], ratios, intrinsic σ (ln λ), kind (0 line, 1 step)."""
    ptr = [0]
    xrest, ratio, sig, kind = [], [], [], []
    for _, lines, fwhm in LINE_COMPONENTS:
        ref = lines[0][0]
        for rest, r in lines:
            xrest.append(math.log(rest * 1e-4))
            # f_ν of a line of flux F and width σ(ln λ) scales as F·λ: keep ratios in F
            ratio.append(r * rest / ref)
        ptr.append(len(xrest))
        sig.append(fwhm * FWHM_TO_SIGMA / C_KMS)
        kind.append(0)
    for _, rest, width in CONTINUUM_STEPS:
        xrest.append(math.log(rest * 1e-4))
        ratio.append(1.0)
        ptr.append(len(xrest))
        sig.append(width)
        kind.append(1)
    return (np.array(ptr, np.int64), np.array(xrest), np.array(ratio), np.array(sig), np.array(kind, np.int64))


def _component_names() -> list[str]:
    return [c[0] for c in LINE_COMPONENTS] + [c[0] for c in CONTINUUM_STEPS]


@dataclass
class _Prepared:
    x: np.ndarray  # ln λ of valid pixels
    elo: np.ndarray  # pixel edges in ln λ
    ehi: np.ndarray
    y: np.ndarray  # scaled f_ν
    w: np.ndarray  # inverse variance (scaled)
    cont: np.ndarray  # B-spline basis on valid pixels (n, nc)
    knots: np.ndarray
    scale: float
    res_x: np.ndarray
    res_sig: np.ndarray
    wave_all: np.ndarray  # finite wavelengths inside the valid range (for the model)
    x_all_edges: tuple[np.ndarray, np.ndarray]
    grating: str
    pen: np.ndarray  # curvature prior on the spline coefficients (nc, nc), added to the normal matrix
    kernel_inputs: tuple | None = None


def _bspline_design(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    from scipy.interpolate import BSpline

    xc = np.clip(x, knots[3], knots[-4])
    return BSpline.design_matrix(xc, knots, 3).toarray()


def _curvature_prior(cont: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Penalty matrix DᵀD/(SPLINE_CURVATURE·level)² on the second differences D of the spline coefficients.

    ``level`` is the 80th percentile of |f_ν| of a redshift-independent spline fit, at
    least 1 (the median error: ``y`` is in those units).
    """
    nc = cont.shape[1]
    if SPLINE_CURVATURE <= 0 or nc < 3:
        return np.zeros((nc, nc))
    m = cont.T @ (w[:, None] * cont)
    m[np.diag_indices_from(m)] += RIDGE * m.diagonal().max() + 1e-300
    a = np.linalg.solve(m, cont.T @ (w * y))
    level = max(float(np.quantile(np.abs(cont @ a), 0.8)), 1.0)
    dd = np.diff(np.eye(nc), 2, axis=0)
    return dd.T @ dd / (SPLINE_CURVATURE * level) ** 2


def _prepare(spec) -> _Prepared:
    wave = np.asarray(spec.wavelength, float)
    f = np.asarray(spec.fnu, float)
    e = np.asarray(spec.fnu_err, float)
    order = np.argsort(wave, kind="stable")
    wave, f, e = wave[order], f[order], e[order]
    finite_w = np.isfinite(wave) & (wave > 0)
    wave_f = wave[finite_w]
    if wave_f.size < 10:
        raise ValidationError(f"spec: needs ≥ 10 pixels with a finite wavelength, got {wave_f.size}")
    xf = np.log(wave_f)
    edges = np.empty(xf.size + 1)
    edges[1:-1] = 0.5 * (xf[1:] + xf[:-1])
    edges[0] = xf[0] - 0.5 * (xf[1] - xf[0])
    edges[-1] = xf[-1] + 0.5 * (xf[-1] - xf[-2])
    ff, ef = f[finite_w], e[finite_w]
    valid = np.isfinite(ff) & np.isfinite(ef) & (ef > 0)
    # pixels with zero width (duplicated wavelengths) cannot hold an integrated line
    valid &= np.diff(edges) > 0
    if valid.sum() < 10:
        raise ValidationError(f"spec: needs ≥ 10 valid pixels (finite flux, error > 0), got {int(valid.sum())}")
    x = xf[valid]
    elo, ehi = edges[:-1][valid], edges[1:][valid]
    y = ff[valid]
    err = ef[valid]
    scale = float(np.median(err))
    y = y / scale
    err = err / scale
    err = np.sqrt(err**2 + (SYS_ERR * np.abs(y)) ** 2)
    w = 1.0 / err**2

    grating = str(getattr(spec, "grating", "") or "")
    res_wave = np.exp(np.linspace(x[0] - 0.3, x[-1] + 0.3, 64))
    r = resolving_power(res_wave, grating or None)
    if not grating:
        grating = "PRISM" if np.median(r) < 500 else "G235M"
    res_x = np.log(res_wave)
    res_sig = FWHM_TO_SIGMA / r

    # knot spacing follows the resolution: ~40 resolution σ, 0.1–0.2 in ln λ
    span = x[-1] - x[0]
    spacing = float(np.clip(_KNOT_FAC * np.median(res_sig), 0.1, _KNOT_MAX))
    nint = int(np.clip(math.ceil(span / spacing), 1, 17))
    inner = np.linspace(x[0], x[-1], nint + 1)
    knots = np.concatenate([[x[0]] * 3, inner, [x[-1]] * 3])
    cont = _bspline_design(x, knots)

    in_range = (xf >= x[0]) & (xf <= x[-1])
    return _Prepared(
        x=x, elo=elo, ehi=ehi, y=y, w=w, cont=cont, knots=knots, scale=scale,
        res_x=res_x, res_sig=res_sig, wave_all=wave_f[in_range],
        x_all_edges=(edges[:-1][in_range], edges[1:][in_range]), grating=grating,
        pen=_curvature_prior(cont, y, w),
    )


# ----------------------------------------------------------------------------------
# the numpy reference of the model (dense design matrix, one z at a time)
# ----------------------------------------------------------------------------------
# the normal CDF, tabulated exactly as the compiled kernel does (so both agree to rounding)
_PHI_T0, _PHI_DT, _PHI_N = -8.0, 1e-3, 16001


@functools.lru_cache(maxsize=1)
def _phi_table() -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(_PHI_T0 + np.arange(_PHI_N) * _PHI_DT)


def _phi(t):
    table = _phi_table()
    u = (np.asarray(t, float) - _PHI_T0) / _PHI_DT
    i = np.clip(np.floor(u).astype(np.int64), 0, _PHI_N - 2)
    f = u - i
    out = table[i] * (1.0 - f) + table[i + 1] * f
    return np.where(u <= 0, 0.0, np.where(u >= _PHI_N - 1, 1.0, out))


def madau_forest(wave_um: np.ndarray) -> np.ndarray:
    """Madau (1995) mean Lyα-forest transmission exp(−0.0036 (λ_obs/1216 Å)^3.46).

    Applies blueward of Lyα at the source redshift (the fitter handles that step).
    """
    return np.exp(-0.0036 * (np.asarray(wave_um, float) / LYA_UM) ** 3.46)


def _igm(lz: float, x: np.ndarray, res_x, res_sig, sig_extra: float) -> tuple[np.ndarray, tuple]:
    """IGM transmission on pixels ``x`` (and the index windows the kernel uses)."""
    tf = madau_forest(np.exp(x))
    xly = math.log(LYA_UM) + lz
    xll = math.log(LYLIMIT_UM) + lz
    sr = float(np.interp(xly, res_x, res_sig))
    sb = math.sqrt(sr * sr + (IGM_SIGMA_KMS / C_KMS) ** 2 + sig_extra**2)
    i_ll_lo = int(np.searchsorted(x, xll - 5 * sb))
    i_ll_hi = int(np.searchsorted(x, xll + 5 * sb))
    i_ly_lo = max(int(np.searchsorted(x, xly - 5 * sb)), i_ll_hi)
    i_ly_hi = max(int(np.searchsorted(x, xly + 5 * sb)), i_ly_lo)
    t = np.ones(x.size)
    t[:i_ll_lo] = 0.0
    t[i_ll_lo:i_ll_hi] = tf[i_ll_lo:i_ll_hi] * _phi((x[i_ll_lo:i_ll_hi] - xll) / sb)
    t[i_ll_hi:i_ly_lo] = tf[i_ll_hi:i_ly_lo]
    t[i_ly_lo:i_ly_hi] = tf[i_ly_lo:i_ly_hi] + (1 - tf[i_ly_lo:i_ly_hi]) * _phi((x[i_ly_lo:i_ly_hi] - xly) / sb)
    return t, (i_ll_lo, i_ll_hi, i_ly_lo, i_ly_hi)


def _line_columns(lz, x, elo, ehi, res_x, res_sig, sig_extra, *, truncate=True):
    """Line-component profiles on pixels: (n, K) array and the active component indices."""
    ptr, xrest, ratio, sig_intr, kind = _line_tables()
    ncomp = ptr.size - 1
    cols = np.zeros((x.size, ncomp))
    active = []
    for k in range(ncomp):
        l0, l1 = ptr[k], ptr[k + 1]
        if kind[k] == 1:
            xc = xrest[l0] + lz
            if xc < x[0] or xc > x[-1]:
                continue
            if not (math.log(BREAK_CHECK_UM[0]) + lz >= x[0] and math.log(BREAK_CHECK_UM[1]) + lz <= x[-1]):
                continue
            sg = math.sqrt(float(np.interp(xc, res_x, res_sig)) ** 2 + sig_intr[k] ** 2 + sig_extra**2)
            i0 = int(np.searchsorted(x, xc - 4 * sg))
            im = int(np.searchsorted(x, xc))
            i4 = int(np.searchsorted(x, xc + 4 * sg))
            if im - i0 < 3 or i4 - im < 3:
                continue
            # Φ((ln λ − ln λ_b)/σ) within ±4σ, 0 blueward and 1 redward of that
            cols[i0:i4, k] = _phi((x[i0:i4] - xc) / sg)
            cols[i4:, k] = 1.0
            active.append(k)
            continue
        xc = xrest[l0:l1] + lz
        sl = np.interp(xc, res_x, res_sig)
        sg = np.sqrt(sl**2 + sig_intr[k] ** 2 + sig_extra**2)
        if not np.any((xc >= x[0]) & (xc <= x[-1])):
            continue
        i0 = int(np.searchsorted(ehi, (xc - 5 * sg).min()))
        i1 = int(np.searchsorted(elo, (xc + 5 * sg).max()))
        if i1 - i0 < 2:
            continue
        norm = math.sqrt(2 * math.pi) * sg[0]
        sl_ = slice(i0, i1) if truncate else slice(0, x.size)
        width = ehi[sl_] - elo[sl_]
        cover = 0.0
        for j in range(l1 - l0):
            frac = _phi((ehi[sl_] - xc[j]) / sg[j]) - _phi((elo[sl_] - xc[j]) / sg[j])
            cols[sl_, k] += ratio[l0 + j] * norm * frac / width
            if j == 0:
                cover = float(np.sum(frac[i0 - sl_.start : i1 - sl_.start]))
        if cover < MIN_COVER:
            cols[:, k] = 0.0
            continue
        active.append(k)
    return cols, np.array(active, np.int64)


def _solve_at(lz: float, d: _Prepared, sig_extra: float):
    """Dense fit at one ln(1+z): (penalised χ², continuum coefs, amplitudes by component, active)."""
    t, _ = _igm(lz, d.x, d.res_x, d.res_sig, sig_extra)
    tc = d.cont * t[:, None]
    lines, active = _line_columns(lz, d.x, d.elo, d.ehi, d.res_x, d.res_sig, sig_extra)
    w = d.w
    m = tc.T @ (w[:, None] * tc)
    v = tc.T @ (w * d.y)
    m += d.pen
    m[np.diag_indices_from(m)] += RIDGE * m.diagonal().max() + 1e-300
    a0 = np.linalg.solve(m, v)
    ywy = float(np.sum(w * d.y**2))
    chi2c = ywy - float(a0 @ v)
    amps = np.zeros(lines.shape[1])
    if active.size == 0:
        return chi2c, a0, amps, active
    lk = lines[:, active]
    g = lk.T @ (w[:, None] * lk)
    u = lk.T @ (w * d.y)
    xk = lk.T @ (w[:, None] * tc)
    zk = np.linalg.solve(m, xk.T)
    s = g - xk @ zk
    rhs = u - xk @ a0
    is_step = _line_tables()[4][active] == 1
    ib, ir = _break_pixels(lz, d.x)

    def contrast_bad(keep, bsol):
        # the continuum contrast across the Balmer/4000 Å break must stay physical
        # (≤ BREAK_MAX_RATIO): otherwise the steps go (they would mimic a Lyman break)
        st = is_step[keep]
        a_full = a0 - zk[:, keep] @ bsol
        cb = float(d.cont[ib] @ a_full + lk[ib, keep] @ np.where(st, bsol, 0.0))
        cr = float(d.cont[ir] @ a_full + lk[ir, keep] @ np.where(st, bsol, 0.0))
        return cr > BREAK_MAX_RATIO * cb

    keep, bsol = _select_components(s, rhs, is_step, contrast_bad)
    gain = float(bsol @ rhs[keep]) - LINE_SNR_MIN**2 * keep.size if keep.size else 0.0
    amps_active = np.zeros(active.size)
    if keep.size:
        amps_active[keep] = bsol
    amps[active] = amps_active
    # continuum coefficients given the lines: a = M⁻¹(v − Xᵀ b)
    a = a0 - zk @ amps_active
    return chi2c - gain, a, amps, active


def _subset_solve(s, rhs, keep):
    """Solve S_KK b = rhs_K (ridge as in the kernel): (L, L⁻¹ rhs_K, b, σ_b) or None."""
    sub = s[np.ix_(keep, keep)].copy()
    sub[np.diag_indices_from(sub)] = sub.diagonal() * (1 + RIDGE) + 1e-300
    try:
        lower = np.linalg.cholesky(sub)
    except np.linalg.LinAlgError:
        return None
    y = np.linalg.solve(lower, rhs[keep])
    b = np.linalg.solve(lower.T, y)
    linv = np.linalg.solve(lower, np.eye(keep.size))
    sd = np.sqrt(np.sum(linv**2, axis=0))
    return lower, y, b, sd


def _select_components(s, rhs, is_step, contrast_bad):
    """Components (indices into ``rhs``) and amplitudes minimising χ² + LINE_SNR_MIN² per component.

    Stepwise: remove a negative amplitude (most negative b/σ first), the continuum steps
    when the break contrast is unphysical (then they are barred at this redshift), a
    component below LINE_SNR_MIN (least significant first); else add the candidate of
    largest Δχ² (its b/σ squared, given the kept ones) if that exceeds the penalty.
    """
    n = rhs.size
    pen = LINE_SNR_MIN**2
    banned = np.zeros(n, bool)
    keep = np.zeros(0, np.int64)
    bsol = np.zeros(0)
    solved = True
    for it in range(4 * n + 4):
        grow = it < 3 * n + 3  # after that only removals (ends any cycling)
        if keep.size:
            sol = _subset_solve(s, rhs, keep)
            if sol is None:
                return np.zeros(0, np.int64), np.zeros(0)
            lower, y, bsol, sd = sol
            solved = True
            snr = bsol / sd
            if np.any(bsol < 0):
                keep, solved = np.delete(keep, int(np.argmin(snr))), False
                continue
            st = is_step[keep]
            if st.any() and contrast_bad(keep, bsol):
                banned[keep[st]] = True
                keep, solved = keep[~st], False
                continue
            if np.any(snr < LINE_SNR_MIN):
                keep, solved = np.delete(keep, int(np.argmin(snr))), False
                continue
        if not grow:
            break
        # Δχ² of adding j = q²/r: q, r its correlation with the residual and its variance
        # left after projecting out the kept components
        sjj = np.diagonal(s) * (1 + RIDGE) + 1e-300
        if keep.size:
            c = np.linalg.solve(lower, s[keep])
            r = sjj - np.sum(c * c, axis=0)
            q = rhs - y @ c
        else:
            r, q = sjj, rhs.copy()
        ok = (q > 0) & (r > 1e-12 * sjj) & ~banned
        ok[keep] = False
        gains = np.where(ok, q * q / np.where(ok, r, 1.0), -np.inf)
        best = int(np.argmax(gains))
        if not gains[best] > pen:
            break
        keep, solved = np.append(keep, best), False
    if not keep.size:
        return keep, np.zeros(0)
    if not solved:
        sol = _subset_solve(s, rhs, keep)
        if sol is None:
            return np.zeros(0, np.int64), np.zeros(0)
        bsol = sol[2]
    return keep, bsol


def _break_pixels(lz: float, x: np.ndarray) -> tuple[int, int]:
    """Pixels where the break contrast is judged (just blueward of the Balmer step, redward of 4000 Å)."""
    n = x.size
    ib = min(int(np.searchsorted(x, math.log(BREAK_CHECK_UM[0]) + lz)), n - 1)
    ir = min(int(np.searchsorted(x, math.log(BREAK_CHECK_UM[1]) + lz)), n - 1)
    return ib, ir


def _chi2_dense(lnz: np.ndarray, d: _Prepared, sig_extra: float) -> np.ndarray:
    return np.array([_solve_at(float(lz), d, sig_extra)[0] for lz in lnz])


def _kernel_inputs(d: _Prepared) -> tuple:
    """Suffix sums and sparse B-spline rows for the compiled kernel (once per spectrum)."""
    if d.kernel_inputs is None:
        nc = d.cont.shape[1]
        wc = d.w[:, None] * d.cont
        pcc = np.zeros((d.x.size + 1, nc, nc))
        pcy = np.zeros((d.x.size + 1, nc))
        # suffix sums Σ_{i≥j}: the continuum normal equations for any IGM step position
        pcc[:-1] = np.cumsum((wc[:, :, None] * d.cont[:, None, :])[::-1], axis=0)[::-1]
        pcy[:-1] = np.cumsum((wc * d.y[:, None])[::-1], axis=0)[::-1]
        # B-spline rows are sparse (≤ 4 non-zeros from cidx): the kernel loops over those only
        nb = min(4, nc)
        cidx = np.minimum(np.argmax(d.cont > 0, axis=1), nc - nb).astype(np.int64)
        cval = np.ascontiguousarray(d.cont[np.arange(d.x.size)[:, None], cidx[:, None] + np.arange(nb)])
        # plain suffix sums Σ w, Σ w y, Σ w C (continuum steps are 1 redward of their edge)
        sw = np.zeros(d.x.size + 1)
        sy = np.zeros(d.x.size + 1)
        sc = np.zeros((d.x.size + 1, nc))
        sw[:-1] = np.cumsum(d.w[::-1])[::-1]
        sy[:-1] = np.cumsum((d.w * d.y)[::-1])[::-1]
        sc[:-1] = np.cumsum(wc[::-1], axis=0)[::-1]
        d.kernel_inputs = (cidx, cval, nc, pcc, pcy, float(np.sum(d.w * d.y**2)), sw, sy, sc)
    return d.kernel_inputs


def _chi2_grid(lnz: np.ndarray, d: _Prepared, sig_extra: float, engine: str) -> np.ndarray:
    if engine == "numpy":
        return _chi2_dense(lnz, d, sig_extra)
    k = kernels()
    ptr, xrest, ratio, sig_intr, kind = _line_tables()
    cidx, cval, nc, pcc, pcy, ywy, sw, sy, sc = _kernel_inputs(d)
    out = np.empty(lnz.size)
    k.zfit_chi2_grid(
        np.ascontiguousarray(lnz, float), d.x, d.elo, d.ehi, d.y, d.w, cidx, cval, nc,
        pcc, pcy, ywy, sw, sy, sc, ptr, xrest, ratio, sig_intr, kind, d.res_x, d.res_sig, float(sig_extra), RIDGE,
        MIN_COVER, LINE_SNR_MIN, math.log(LYA_UM), math.log(LYLIMIT_UM), IGM_SIGMA_KMS / C_KMS,
        madau_forest(np.exp(d.x)), d.pen, math.log(BREAK_CHECK_UM[0]), math.log(BREAK_CHECK_UM[1]),
        BREAK_MAX_RATIO, out,
    )
    return out


def _local_minima(chi2: np.ndarray, n: int) -> np.ndarray:
    c = np.where(np.isfinite(chi2), chi2, np.inf)
    left = np.r_[np.inf, c[:-1]]
    right = np.r_[c[1:], np.inf]
    idx = np.flatnonzero((c <= left) & (c <= right) & np.isfinite(c))
    if idx.size == 0:
        return np.array([int(np.argmin(c))])
    return idx[np.argsort(c[idx], kind="stable")][:n]


def fit_redshift(
    spec,
    z_range: tuple[float, float] = (0.0, 15.0),
    *,
    engine: str = "auto",
) -> dict[str, Any]:
    """Fit a redshift by χ² over a grid with continuum templates and emission lines.

    Parameters
    ----------
    spec : SpectrumData or Spectrum
        The spectrum (a :class:`~campfire.models.Spectrum` is opened). NaN, zero-error
        and non-finite pixels are ignored. The grating (``spec.grating``) sets the
        line widths; when it is empty it is guessed from the pixel sampling.
    z_range : tuple of float
        (z_min, z_max) searched, 0 ≤ z_min < z_max ≤ 30.
    engine : {'auto', 'numba', 'numpy'}
        'auto' uses the compiled kernel when numba is installed.

    Returns
    -------
    dict
        Exactly the keys of ``get_redshift_fit_data``: ``redshift`` (float),
        ``chi2_min`` (float, the penalised χ² at the best redshift: χ² plus the spline
        curvature prior plus LINE_SNR_MIN² per line/step component used, the quantity
        ``chi2_grid`` holds), ``confidence`` (0–1, probability
        within |Δz|/(1+z) < 0.01 of ``redshift``), ``z_grid`` and ``chi2_grid`` (the
        coarse grid with the fine zooms merged in, sorted by z), ``model_wave`` [μm]
        and ``model_fnu`` [μJy] (best-fit model over the spectrum's valid range).

    Raises
    ------
    ValidationError
        Bad ``z_range`` or a spectrum with fewer than 10 valid pixels.

    Examples
    --------
    >>> from campfire import SpectrumData, fit_redshift          # doctest: +SKIP
    >>> fit = fit_redshift(SpectrumData.from_fits('x.spec.fits'))  # doctest: +SKIP
    >>> fit['redshift'], fit['confidence']                        # doctest: +SKIP
    (4.2341, 1.0)
    """
    try:
        z_lo, z_hi = (float(v) for v in z_range)
    except (TypeError, ValueError):
        raise ValidationError(f"z_range: expected (z_min, z_max), got {z_range!r}") from None
    if not (np.isfinite(z_lo) and np.isfinite(z_hi) and 0 <= z_lo < z_hi <= 30):
        raise ValidationError(f"z_range: expected 0 <= z_min < z_max <= 30, got {z_range!r}")
    eng = resolve_engine(engine)
    from campfire.models import as_spectrum_data

    spec = as_spectrum_data(spec)
    d = _prepare(spec)

    # coarse pass: uniform in ln(1+z), lines broadened by half a step
    l_lo, l_hi = math.log1p(z_lo), math.log1p(z_hi)
    sig_min = float(np.min(np.sqrt(d.res_sig**2 + (NARROW_FWHM * FWHM_TO_SIGMA / C_KMS) ** 2)))
    coarse = float(np.clip(Z_STEP_SIGMAS * sig_min, *Z_STEP_COARSE))
    n_coarse = max(int(math.ceil((l_hi - l_lo) / coarse)) + 1, 3)
    lnz_c = np.linspace(l_lo, l_hi, n_coarse)
    step = lnz_c[1] - lnz_c[0]
    chi2_c = _chi2_grid(lnz_c, d, 0.5 * step, eng)

    # fine passes around the best local minima, at the true line widths
    fine_step = min(step / 4.0, sig_min / 2.0)
    n_half = int(math.ceil(1.5 * step / fine_step))
    fine = []
    for i in _local_minima(chi2_c, N_PEAKS):
        g = lnz_c[i] + fine_step * np.arange(-n_half, n_half + 1)
        fine.append(g[(g >= l_lo) & (g <= l_hi)])
    lnz_f = np.unique(np.concatenate(fine))
    chi2_f = _chi2_grid(lnz_f, d, 0.0, eng)

    ib = int(np.argmin(chi2_f))
    lz_best = float(lnz_f[ib])
    # parabolic refinement when the neighbours are on the same fine grid
    if 0 < ib < lnz_f.size - 1 and np.isclose(lnz_f[ib + 1] - lnz_f[ib], lnz_f[ib] - lnz_f[ib - 1]):
        c0, c1, c2 = chi2_f[ib - 1], chi2_f[ib], chi2_f[ib + 1]
        denom = c0 - 2 * c1 + c2
        if denom > 0:
            lz_best += 0.5 * fine_step * (c0 - c2) / denom * (lnz_f[ib + 1] - lnz_f[ib]) / fine_step
    chi2_best, a, amps, active = _solve_at(lz_best, d, 0.0)
    if not chi2_best <= chi2_f[ib]:
        lz_best = float(lnz_f[ib])
        chi2_best, a, amps, active = _solve_at(lz_best, d, 0.0)

    # the reported grid: coarse points outside the fine zooms + the fine points (inside a
    # zoom the fine χ² is the true-resolution one); p(z) ∝ exp(−Δχ²/2s) on it,
    # integrated over ln(1+z), gives the confidence
    inside = np.zeros(lnz_c.size, bool)
    for g in fine:
        if g.size:
            inside |= (lnz_c >= g[0]) & (lnz_c <= g[-1])
    lz_all = np.concatenate([lnz_c[~inside], lnz_f])
    c_all = np.concatenate([chi2_c[~inside], chi2_f])
    order = np.argsort(lz_all, kind="stable")
    lz_all, c_all = lz_all[order], c_all[order]
    dof = max(d.x.size - d.cont.shape[1] - len(active), 1)
    cmin = float(np.nanmin(c_all))
    s = max(1.0, cmin / dof)
    pz = np.exp(-(c_all - cmin) / (2 * s))
    pz[~np.isfinite(pz)] = 0.0
    near = np.abs(np.expm1(lz_all - lz_best)) < 0.01
    total = np.trapezoid(pz, lz_all) if lz_all.size > 1 else 0.0
    confidence = float(np.clip(np.trapezoid(pz * near, lz_all) / total, 0.0, 1.0)) if total > 0 else 0.0

    # model over the valid range, on every pixel (gaps included)
    xa = np.log(d.wave_all)
    t_all, _ = _igm(lz_best, xa, d.res_x, d.res_sig, 0.0)
    cont_all = _bspline_design(xa, d.knots) * t_all[:, None]
    lines_all, _ = _line_columns(lz_best, xa, *d.x_all_edges, d.res_x, d.res_sig, 0.0, truncate=False)
    model = (cont_all @ a + lines_all @ amps) * d.scale

    return {
        "redshift": float(math.expm1(lz_best)),
        "chi2_min": float(chi2_best),
        "confidence": confidence,
        "z_grid": np.expm1(lz_all),
        "chi2_grid": c_all,
        "model_wave": d.wave_all.copy(),
        "model_fnu": model,
    }
