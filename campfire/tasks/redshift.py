"""Template redshift fitting: χ² over a ln(1+z) grid with continuum + emission lines.

The model at redshift z, fitted linearly to f_ν with inverse-variance weights::

    f_ν(λ) = T_IGM(λ, z) · Σ_c a_c B_c(ln λ)  +  Σ_j e_j P_j(ln λ)  +  Σ_k b_k L_k(λ, z),   b_k ≥ 0

* ``B_c``: cubic B-splines in ln λ over the observed range — a flexible continuum
  template set (the approach of msaexp's spline fits), smooth on the scale of a
  knot spacing that follows the resolution (≈0.17 in ln λ for PRISM), so it cannot
  absorb lines but follows any galaxy/AGN continuum shape. A curvature prior on the
  coefficients (:data:`SPLINE_CURVATURE`, relative to the local flux level) keeps it from
  bending into a break: at low S/N an unconstrained spline could drop to zero within one
  knot interval and fake a Lyman or Balmer break anywhere, and a faint UV continuum could
  follow a real break, leaving it no weight in χ²(z).
* ``P_j``: an additive pedestal (a constant and a slope in ln λ) that the IGM does not
  absorb, with a Gaussian prior of :data:`PEDESTAL_PRIOR` median errors: a residual of the
  background subtraction, which otherwise fills in the Lyα forest of the true redshift.
  It is marginalised, not fitted freely (:data:`PEDESTAL_OCCAM`): redward of Lyα the
  spline can do what it does, so it costs nothing, but where the IGM absorbs, the data
  pin it and its Occam factor enters χ² — otherwise a faint red UV continuum below a
  Balmer break passed for a pedestal below a Lyman break at z ≈ 6–13.
* ``T_IGM``: the intergalactic medium at z: 1 redward of Lyα, the mean Lyα-forest
  transmission of Madau (1995), exp(−0.0036 (λ_obs/1216 Å)^3.46), between the Lyman
  limit and Lyα, 0 below the Lyman limit, each step smoothed by the resolution.
  This gives Lyman-break galaxies without lines their redshift.
* ``L_k``: emission-line components (:data:`LINE_COMPONENTS`; doublets with fixed
  ratios, narrow lines plus broad (1,500 km/s) and, in grating spectra, very broad
  (4,000 km/s) permitted lines, a red wing of Lyα), pixel-integrated Gaussians whose width is
  the instrument resolution at the observed wavelength (:func:`resolving_power`:
  R ≈ 30–300 for PRISM, ≈1000 for the M gratings) ⊕ the intrinsic width; and the
  rest-frame Balmer and 4000 Å breaks as smoothed up-steps (:data:`CONTINUUM_STEPS`),
  which give line-less quiescent galaxies their redshift: always the two together, at
  their fixed relative position, with a 4000 Å-to-Balmer amplitude ratio within the range
  of evolved stellar populations (:data:`BREAK_PAIR_RATIO`), and the Balmer absorption
  series as one component of fixed relative strengths whose equivalent width must stay
  stellar (:data:`STELLAR_ABSORPTION_MAX_EW`). A step is allowed only while
  the break contrast stays physical (:data:`BREAK_MAX_RATIO`), so a low-z Balmer break
  cannot imitate the zero flux blueward of a Lyman break.

The amplitudes b_k are non-negative (absent lines cost nothing, dips are not
"lines"). Which components enter is a model choice made per redshift by minimising
χ² + LINE_SNR_MIN² per component (stepwise: add the component of largest Δχ², drop
negative or insignificant ones), so lines fitted to noise at a wrong redshift do not
outweigh fewer real features; the second break component costs only BREAK_PAIR_SNR²
(the pair is one break with a free amplitude ratio). The "χ²" reported (``chi2_grid``,
``chi2_min``) is this penalised χ², spline curvature prior and the pedestal's Occam
term included.

The grid is coarse-to-fine: a coarse pass over the whole ``z_range`` in which each
line profile is averaged over the positions within ± half a grid step (so a narrow
grating line is never stepped over, and a strong line scores the same wherever it
falls between two grid points) and the broad components (≥ ``BROAD_FWHM``) are left
out; the best coarse minima re-ranked at ±⅓ step with every component; fine grids
around the best of them at the true resolution, a parabolic refinement of the best point,
and a few points on the scale of its own χ² curvature. Outside the fine grids,
``chi2_grid`` holds the coarse pass's values. A fit that emission lines hardly shape (a
quiescent galaxy's breaks and absorption) sits in a broad χ² well whose minimum a line fitted
to noise moves: its redshift is the median of p(z) within that well on a χ² curve without
emission lines (:func:`_break_refined`); ``chi2_grid`` stays the full model's.

What the fit reports about its own reliability comes from p(z) ∝ exp(−Δχ²/2s), a flat
prior in ln(1+z), s = max(1, χ²_min/dof) absorbing underestimated errors (:func:`_posterior`):

* ``confidence``: the probability that z lies within ``|Δz|/(1+z) < 0.01`` of the best
  redshift *and* that the spectrum has redshift features at all — the alternative
  being the continuum spline alone, with no redshift (prior odds
  :data:`NULL_PRIOR_ODDS`). That second term is what keeps a best χ² picked among
  thousands of redshifts and dozens of components in pure noise from looking certain.
  The Δχ² between solutions is tempered by :data:`CONFIDENCE_TEMPERATURE` (= 2): the
  templates are not the truth, and one feature read as two different lines (Lyα as
  C III]) differs by less than its χ² says. A spectrum flagged BAD_BACKGROUND (an additive
  residual the pedestal follows only in part) is tempered by
  :data:`BAD_BACKGROUND_TEMPERATURE` (= 4) instead. Measured on the demo truth
  (``bench/bench_redshift.py``, bench/RESULTS.md), fits with confidence ≥ 0.9 are right
  ≥ 99.5% of the time and catastrophically wrong (``|Δz|/(1+z) > 0.1``) in ≲ 0.2%.
* ``redshift_lo``, ``redshift_hi``: the 16th and 84th percentiles of p(z), widened to
  contain ``redshift`` when p(z) has several peaks, with a systematic floor
  (:data:`Z_SYS_FRACTION` of the resolution) added in quadrature.

A compiled kernel evaluates the grid in ≈30–45 ms per PRISM spectrum: C
(:mod:`campfire.tasks._czfit`, built at install) or numba's
(:mod:`campfire.tasks._numba_kernels`), the same numbers bit for bit; a plain numpy
implementation of the same model (:func:`_chi2_dense`) is the fallback and the reference
the kernels are tested against.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from campfire.errors import ValidationError
from campfire.flags import DQFlags
from campfire.tasks._blas import one_blas_thread
from campfire.tasks._jit import fit_c_kernels, kernels, resolve_engine

__all__ = ["fit_redshift", "redshift_alternatives", "resolving_power", "LINE_COMPONENTS", "FIT_KEYS"]

C_KMS = 299792.458
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
FIT_KEYS = ("redshift", "chi2_min", "confidence", "z_grid", "chi2_grid", "model_wave", "model_fnu",
            "redshift_lo", "redshift_hi")

# (name, ((vacuum rest wavelength Å, relative line flux), ...), intrinsic FWHM km/s).
# The first line of a component is its reference (coverage is judged on it).
NARROW_FWHM = 150.0
# broad permitted lines (AGN, little red dots) span FWHM ≈ 1,500–10,000 km/s. In grating
# spectra (R ≈ 1000) one width does not fit them all: a 2,500 km/s profile on a 4,500 km/s
# line leaves ±4σ wings, and on a 1,900 km/s line a narrow emission core, which then hides
# narrow Balmer absorption; weak lines at a wrong redshift "explain" the residuals (a
# little red dot's Hα fitted as Mg II at z = 14.7, confidence 1.0). Two widths, summed with
# free amplitudes, follow the whole range; PRISM (resolution 1,000–10,000 km/s) keeps one.
BROAD_FWHM = 1500.0
VERY_BROAD_FWHM = 4000.0
# stellar Balmer absorption lines (A stars: pressure-broadened wings)
BALMER_ABSORPTION_FWHM = 1000.0
# components that are stellar absorption: their reference line's rest equivalent width may
# not exceed STELLAR_ABSORPTION_MAX_EW Å (A-star dominated post-starbursts reach Hβ, Hδ
# ≈ 8–12 Å). Beyond it the component is barred at that redshift: otherwise a broad
# emission line with a deep absorption core (a little red dot's Hα) was read as Hβ at
# z × 1.35 with the "series" carving its core (confidence 1.0 at S/N 22)
STELLAR_ABSORPTION = frozenset({"Balmer-absorption"})
STELLAR_ABSORPTION_MAX_EW = 15.0
# Lyα is asymmetric (a red peak and a red wing, radiative transfer): a symmetric Gaussian
# left its wing to the second line of C IV or C III] at a lower redshift
LYA_WING_SHIFT_KMS = 500.0
LINE_COMPONENTS: tuple[tuple[str, tuple[tuple[float, float], ...], float], ...] = (
    ("Lyalpha", ((1215.67, 1.0),), 300.0),
    ("Lyalpha-wing", ((1215.67 * (1 + LYA_WING_SHIFT_KMS / C_KMS), 1.0),), 900.0),
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
    ("Halpha-vbroad", ((6564.61, 1.0),), VERY_BROAD_FWHM),
    ("Hbeta-vbroad", ((4862.68, 1.0),), VERY_BROAD_FWHM),
    ("HeI-5877-vbroad", ((5877.25, 1.0),), VERY_BROAD_FWHM),
    ("HeI-10833-vbroad", ((10833.3, 1.0),), VERY_BROAD_FWHM),
    ("Pabeta-vbroad", ((12821.6, 1.0),), VERY_BROAD_FWHM),
    ("Paalpha-vbroad", ((18756.1, 1.0),), VERY_BROAD_FWHM),
    # narrow Balmer absorption on top of broad lines (little red dots): a negative
    # relative flux, so the non-negative amplitude makes it an absorption line
    ("Halpha-absorption", ((6564.61, -1.0),), NARROW_FWHM),
    ("Hbeta-absorption", ((4862.68, -1.0),), NARROW_FWHM),
    # the Balmer absorption series of A stars (quiescent and post-starburst galaxies), one
    # component with fixed relative strengths: Hβ, Hγ, Hδ of equal equivalent width (flux ∝
    # λ⁻² on a flat f_ν continuum) and Hα at half of it (filled in by [N II] and weak
    # emission); the higher-order lines crowd into the Balmer break (CONTINUUM_STEPS).
    # Together they fix z to a fraction of the resolution where the smooth break alone
    # leaves the z of a PRISM spectrum uncertain by a few per cent
    ("Balmer-absorption", ((4862.68, -1.0), (4341.69, -(4862.68 / 4341.69) ** 2),
                           (4102.89, -(4862.68 / 4102.89) ** 2), (6564.61, -0.5 * (4862.68 / 6564.61) ** 2)),
     BALMER_ABSORPTION_FWHM),
)

# Rest-frame continuum breaks of evolved stellar populations: the Balmer break (the
# Balmer-continuum jump at 3646 Å, with the high-order Balmer absorption lines crowding
# toward it: its effective centre in low-resolution spectra ≈ 3700 Å) and the 4000 Å break
# (Ca II H&K and metal blanketing at 3930–4000 Å), each a smoothed up-step
# Φ((ln λ − ln λ_b)/σ). They come *together*, at a fixed relative position: a free single
# step at either place let one break be read as the other (Δz/(1+z) ≈ 0.08) or a blend of
# the two land a few per cent off. A break component is both steps with fixed weights, and
# there are two: the ends of the range of 4000 Å-to-Balmer step amplitudes
# (BREAK_PAIR_RATIO) that stellar populations of 0.1–3 Gyr span (A-star dominated, Balmer
# break ≈ 1.5–2 and D4000 ≈ 1.1–1.3, to old, Balmer break ≈ 1.2 and D4000 ≈ 1.6–1.9 in
# f_ν; the additive step ratio is (D4000 − 1)·B/(B − 1)); with non-negative amplitudes
# their sum spans exactly that range. Selected like line components.
# (name, ((rest wavelength Å, weight), ...), intrinsic width σ in ln λ.)
# The spline alone cannot follow a break this sharp; without the steps, a staircase of
# [O II], [Ne III], Hε, Hδ emission lines filled it in at a wrong redshift.
BALMER_BREAK_AA = 3700.0
D4000_BREAK_AA = 4000.0
BREAK_PAIR_RATIO = (0.3, 3.0)
CONTINUUM_STEPS: tuple[tuple[str, tuple[tuple[float, float], ...], float], ...] = (
    ("Balmer-dominated-break", ((BALMER_BREAK_AA, 1.0), (D4000_BREAK_AA, BREAK_PAIR_RATIO[0])), 0.016),
    ("4000A-dominated-break", ((D4000_BREAK_AA, 1.0), (BALMER_BREAK_AA, 1.0 / BREAK_PAIR_RATIO[1])), 0.016),
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
# gratings ≈0.0016). In that pass a line's profile is averaged over the positions within
# ± half a step (a box): with the Gaussian broadening used before, a strong grating line
# (floor ≈ 4 σ) scored up to ~70% of its Δχ² worse between grid points than on one, so
# other lines aligned by chance outranked the true redshift. The N_CANDIDATES best coarse
# minima are then re-ranked at ±⅓ step (box ± ⅙ step) before the zooms are chosen
Z_STEP_COARSE = (0.0015, 0.0035)
Z_STEP_SIGMAS = 2.7
N_PEAKS = 8  # fine zooms
N_CANDIDATES = 24  # coarse minima re-ranked before the zooms are chosen
SYS_ERR = 0.02  # fractional systematic error floor added in quadrature (model mismatch)
# prior odds of "no redshift features" (the spline alone) against "features at some z in
# the searched range": see _posterior
NULL_PRIOR_ODDS = 1.0
# the confidence weighs distinct redshift solutions by exp(−Δχ²/2sT): the templates are not
# the truth (line ratios, profiles, break shapes), so the Δχ² between two interpretations of
# the same feature (Lyα as C III], a line at the edge of a grating) overstates the evidence.
# T = 2 measured on the demo truth (bench/RESULTS.md; a third of the full-size demo): with
# T = 1, 7 of 1263 fits with confidence ≥ 0.9 were catastrophic (|Δz|/(1+z) > 0.1), with
# T = 2 1 of 1171. The 68% interval keeps T = 1 (its width is calibrated by coverage)
CONFIDENCE_TEMPERATURE = 2.0
# a spectrum flagged BAD_BACKGROUND carries a smooth additive residual of its background
# subtraction (≈ 1–2.5 σ per pixel in the demo) that the two-term pedestal follows only in
# part: at low S/N its shape reads as a break or a line, and the Δχ² between redshifts
# overstates the evidence more than template mismatch alone does. Measured on the 284 flagged
# spectra of the full-size demo: with T = 2, 7 of the 153 fits with confidence ≥ 0.9 were
# catastrophic (4.6%, all at S/N < 5); with T = 4, 1 of 135 (T = 8: 0 of 120). A freer pedestal
# (4 Legendre terms) instead found 5 more right redshifts but left 7 catastrophes at ≥ 0.9
BAD_BACKGROUND_TEMPERATURE = 4.0
# systematic floor of the redshift interval, as a fraction of the median resolution σ in
# ln λ (PRISM ≈ 2e-4, M gratings ≈ 2e-5): the resolution curve, line shapes and pixel
# phase are known imperfectly, which χ²(z) alone does not see. Set by coverage on a third of
# the full-size demo (1,396 correct redshifts): the interval holds the truth for 61% of the
# PRISM redshifts at S/N > 5 without a floor, 69% with 0.012 (73% of all), 83% with 0.04
Z_SYS_FRACTION = 0.012
MIN_COVER = 0.25  # a line counts when ≥ this fraction of its flux lands on valid pixels
RIDGE = 1e-9
_KNOT_MAX = 0.2
_KNOT_FAC = 40.0
# a line or step enters the model only when detected at ≥ this S/N; each component used
# costs LINE_SNR_MIN² in the χ² compared across redshifts (so noise fitted by lines at a
# wrong redshift does not win over fewer, real features)
LINE_SNR_MIN = 2.0
# the two break components (CONTINUUM_STEPS) are one break with a free 4000 Å-to-Balmer
# ratio: the second one in the model needs only this S/N (costs its square). At the full
# LINE_SNR_MIN, a break whose ratio lies between the pair's ends paid twice, so z moved to
# where one end alone fits: on noiseless demo quiescent spectra at z < 3 (PRISM R ≈ 30)
# by +0.004 in the mean (rms 0.0075) in Δz/(1+z)
BREAK_PAIR_SNR = 1.0
IGM_SIGMA_KMS = 300.0  # extra smoothing of the IGM steps (damping wing, forest structure)
# curvature prior on the continuum spline: each second difference of the B-spline
# coefficients ~ N(0, (SPLINE_CURVATURE · level_j)²), level_j = the mean |coefficient| of
# the three it spans in a z-independent spline fit (≥ the median error): a relative
# curvature, so a power law up to |α| ≈ 3 costs ≲ 1 per knot wherever it lies, while a
# faint blue continuum that rises several-fold within a knot interval (a break the spline
# would fake) costs ≳ 10 — the break components or the IGM must explain it. (With one
# level for the whole spectrum, the 80th percentile of |f_ν|, a quiescent galaxy's faint
# UV let the spline follow its Balmer/4000 Å break at PRISM's R ≈ 30 for ≈ 5 in χ², and
# lines fitted to noise at a wrong z outweighed the break: a third of the full-size demo's
# quiescent galaxies at S/N > 5 were then missed, Lyman breaks at z ≈ 6–10 among them)
SPLINE_CURVATURE = 0.15
# an additive pedestal (constant + slope in ln λ) beside the continuum, not absorbed by the
# IGM, with a Gaussian prior of PEDESTAL_PRIOR median errors per coefficient: background-
# subtraction residuals of MSA spectra add flux where the IGM absorbs it, and the forest of
# the true redshift then looked "too bright" (demo spectra flagged BAD_BACKGROUND: a z = 4.84
# quiescent galaxy fitted at z = 3.29 with confidence 0.94; z ≈ 7 emitters at z ≈ 2.7 with
# confidence 1.0). It has no structure, so it cannot fake a break (a pedestal ∝ the error
# array, steep at PRISM's blue end, could, and did)
PEDESTAL_TERMS = 2
PEDESTAL_PRIOR = 2.0
# the pedestal is a nuisance: marginalised over its Gaussian prior (the rest of the model
# profiled), it adds ln det(posterior precision / prior precision) of its coefficients to
# χ² — 0 where the spline could do the same (no IGM in the range), ≈ 3 at z = 4, 7 at
# z = 6, 11 at z = 13 for a PRISM spectrum from 0.6 μm. Fitted freely (0 here), it let a
# faint red UV continuum below a Balmer break pass for the background below a Lyman break:
# 25 of the 235 quiescent galaxies at S/N > 5 of the full-size demo (v5) were fitted at
# z ≈ 6–13, 7 with this term
PEDESTAL_OCCAM = 1.0
# a fit without emission lines (breaks and stellar absorption only) has a broad χ² well
# (σ ≈ 0.005–0.015 in ln(1+z) at PRISM's R ≈ 30 near 1–1.5 μm) in which a line fitted to
# noise (Δχ² just above LINE_SNR_MIN²) moves the minimum by up to a few per cent: when the
# emission lines improve χ² at the best redshift by less than BREAK_REFINE_GAIN, the redshift
# is the median of p(z) ∝ exp(−Δχ²/2s) within ± BREAK_REFINE_HALF (ln(1+z)) of it on a χ²
# curve without emission lines (every BREAK_REFINE_STEP, at most the fine step)
BREAK_REFINE_GAIN = 9.0
BREAK_REFINE_HALF = 0.02
BREAK_REFINE_STEP = 0.0005
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


def _resolves_broad(grating: str) -> bool:
    """Whether a spectrum of ``grating`` can tell the very broad components from the broad ones
    (``_line_tables(resolved=...)``): the gratings can, PRISM cannot."""
    return not grating.upper().startswith("PRISM")


@functools.lru_cache(maxsize=8)  # keyed by how it is called: positional and keyword calls differ
def _line_tables(resolved: bool = True, broad: bool = True, emission: bool = True):
    """Flattened components: pointers, ln rest λ [μm], ratios, intrinsic σ (ln λ), kind (0 line, 1 step,
    2 stellar absorption: a line whose equivalent width is bounded, :data:`STELLAR_ABSORPTION`).

    ``resolved=False`` (PRISM: resolution FWHM ≈ 1,000–10,000 km/s) leaves out the very
    broad components, whose width such a spectrum cannot tell from the broad ones.
    ``broad=False`` leaves out every component of ≥ :data:`BROAD_FWHM` (the coarse pass of
    :func:`fit_redshift`). ``emission=False`` keeps of the line components only the stellar
    absorption (:data:`STELLAR_ABSORPTION`; the breaks stay): :func:`_break_refined`.
    """
    ptr = [0]
    xrest, ratio, sig, kind = [], [], [], []
    for name, lines, fwhm in LINE_COMPONENTS:
        if (fwhm >= VERY_BROAD_FWHM and not resolved) or (fwhm >= BROAD_FWHM and not broad):
            continue
        if not emission and name not in STELLAR_ABSORPTION:
            continue
        ref = lines[0][0]
        for rest, r in lines:
            xrest.append(math.log(rest * 1e-4))
            # f_ν of a line of flux F and width σ(ln λ) scales as F·λ: keep ratios in F
            ratio.append(r * rest / ref)
        ptr.append(len(xrest))
        sig.append(fwhm * FWHM_TO_SIGMA / C_KMS)
        kind.append(2 if name in STELLAR_ABSORPTION else 0)
    for _, steps, width in CONTINUUM_STEPS:
        total = sum(r for _, r in steps)
        for rest, r in steps:
            xrest.append(math.log(rest * 1e-4))
            ratio.append(r / total)
        ptr.append(len(xrest))
        sig.append(width)
        kind.append(1)
    return (np.array(ptr, np.int64), np.array(xrest), np.array(ratio), np.array(sig), np.array(kind, np.int64))


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
    ped: np.ndarray  # the pedestal's columns (n, PEDESTAL_TERMS) on the valid pixels
    ped_prior: np.ndarray  # its prior, added to its block of the normal matrix
    chi2_null: float  # penalised χ² of the spline alone: no IGM, lines or steps (no redshift at all)
    tables: tuple  # the line/step component tables of this resolution (_line_tables)
    kernel_inputs: tuple | None = None


def _bspline_design(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    from scipy.interpolate import BSpline

    xc = np.clip(x, knots[3], knots[-4])
    return BSpline.design_matrix(xc, knots, 3).toarray()


def _spline_fit(cont: np.ndarray, y: np.ndarray, w: np.ndarray, pen: np.ndarray | None = None):
    """Weighted least-squares spline alone: (coefficients, penalised χ²)."""
    m = cont.T @ (w[:, None] * cont)
    if pen is not None:
        m += pen
    m[np.diag_indices_from(m)] += RIDGE * m.diagonal().max() + 1e-300
    v = cont.T @ (w * y)
    a = np.linalg.solve(m, v)
    return a, float(np.sum(w * y**2) - a @ v)


def _curvature_prior(cont: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Penalty matrix Dᵀ diag(1/(SPLINE_CURVATURE·level_j)²) D on the second differences D of the spline coefficients.

    ``level_j`` is the mean |coefficient| of the three that second difference spans, in a
    redshift-independent spline fit, at least 1 (the median error: ``y`` is in those units).
    """
    nc = cont.shape[1]
    if SPLINE_CURVATURE <= 0 or nc < 3:
        return np.zeros((nc, nc))
    a, _ = _spline_fit(cont, y, w)
    aa = np.abs(a)
    level = np.maximum((aa[:-2] + aa[1:-1] + aa[2:]) / 3.0, 1.0)
    dd = np.diff(np.eye(nc), 2, axis=0) / (SPLINE_CURVATURE * level)[:, None]
    return dd.T @ dd


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
    pen = _curvature_prior(cont, y, w)
    ped = _pedestal(x, x[0], x[-1])
    ped_prior = np.eye(PEDESTAL_TERMS) / PEDESTAL_PRIOR**2
    nc = cont.shape[1]
    pen_full = np.zeros((nc + PEDESTAL_TERMS, nc + PEDESTAL_TERMS))
    pen_full[:nc, :nc] = pen
    pen_full[nc:, nc:] = ped_prior
    return _Prepared(
        x=x, elo=elo, ehi=ehi, y=y, w=w, cont=cont, knots=knots, scale=scale,
        res_x=res_x, res_sig=res_sig, wave_all=wave_f[in_range],
        x_all_edges=(edges[:-1][in_range], edges[1:][in_range]), grating=grating,
        pen=pen, ped=ped, ped_prior=ped_prior, chi2_null=_spline_fit(np.hstack([cont, ped]), y, w, pen_full)[1],
        tables=_line_tables(_resolves_broad(grating)),
    )


def _pedestal(x: np.ndarray, x0: float, x1: float) -> np.ndarray:
    """The pedestal's columns at ln λ ``x``: Legendre polynomials in ln λ scaled to [−1, 1] over [x0, x1]."""
    u = 2.0 * (np.asarray(x, float) - x0) / max(x1 - x0, 1e-12) - 1.0
    return np.polynomial.legendre.legvander(u, PEDESTAL_TERMS - 1)


# ----------------------------------------------------------------------------------
# the numpy reference of the model (dense design matrix, one z at a time)
# ----------------------------------------------------------------------------------
# the normal CDF, tabulated exactly as the compiled kernel does (so both agree to rounding)
_PHI_T0, _PHI_DT, _PHI_N = -8.0, 1e-3, 16001
_PHI_INV_DT = 1000.0  # 1 / _PHI_DT (the kernel's arithmetic: a multiplication)


@functools.lru_cache(maxsize=1)
def _phi_table() -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(_PHI_T0 + np.arange(_PHI_N) * _PHI_DT)


@functools.lru_cache(maxsize=1)
def _psi_table() -> np.ndarray:
    """Ψ(t) = ∫Φ = tΦ(t) + φ(t) on the same nodes."""
    t = _PHI_T0 + np.arange(_PHI_N) * _PHI_DT
    return t * _phi_table() + np.exp(-0.5 * t**2) / math.sqrt(2.0 * math.pi)


def _tabulated(table: np.ndarray, t, above):
    u = (np.asarray(t, float) - _PHI_T0) * _PHI_INV_DT
    i = np.clip(np.floor(u).astype(np.int64), 0, _PHI_N - 2)
    f = u - i
    out = table[i] * (1.0 - f) + table[i + 1] * f
    return np.where(u <= 0, 0.0, np.where(u >= _PHI_N - 1, above, out))


def _phi(t):
    return _tabulated(_phi_table(), t, 1.0)


def _box_phi(t, hb):
    """Φ(t) averaged over a shift in [−hb, hb] (a line position known to ± hb σ); ``hb`` a number
    or an array like ``t`` (then Φ(t) itself where hb < 1e-6)."""
    t = np.asarray(t, float)
    if np.ndim(hb) == 0:
        if hb < 1e-6:
            return _phi(t)
        return (_tabulated(_psi_table(), t + hb, t + hb) - _tabulated(_psi_table(), t - hb, t - hb)) * (0.5 / hb)
    hb = np.asarray(hb, float)
    out = _phi(t)
    wide = hb >= 1e-6
    if wide.any():
        tw, hw = t[wide], hb[wide]
        out[wide] = (_tabulated(_psi_table(), tw + hw, tw + hw) - _tabulated(_psi_table(), tw - hw, tw - hw)) * (0.5 / hw)
    return out


def madau_forest(wave_um: np.ndarray) -> np.ndarray:
    """Madau (1995) mean Lyα-forest transmission exp(−0.0036 (λ_obs/1216 Å)^3.46).

    Applies blueward of Lyα at the source redshift (the fitter handles that step).
    """
    return np.exp(-0.0036 * (np.asarray(wave_um, float) / LYA_UM) ** 3.46)


def _igm(lz: float, x: np.ndarray, res_x, res_sig, sig_extra: float) -> tuple[np.ndarray, tuple]:
    """IGM transmission on pixels ``x`` (and the index windows the kernel uses), broadened by ``sig_extra``."""
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


def _line_columns(lz, x, elo, ehi, res_x, res_sig, smear, tables, *, truncate=True, only=None):
    """Line-component profiles on pixels: (n, K) array and the active component indices.

    ``smear`` > 0: line profiles averaged over positions within ± smear (ln λ), steps
    broadened by σ = smear/√3 (as the kernel does). ``only``: a boolean mask of the
    components wanted; the others' columns stay 0 (a model needs its non-zero amplitudes only).
    """
    ptr, xrest, ratio, sig_intr, kind = tables
    sig_extra = smear / math.sqrt(3.0)
    ncomp = ptr.size - 1
    cols = np.zeros((x.size, ncomp))
    active = []
    pending, t_hi, t_lo, hbs = [], [], [], []  # line components: Φ evaluated for all at the end
    # every line's position and resolution at once (element by element the values of the
    # per-component slices), and which lines fall on the pixels: most components do not
    xc_all = xrest + lz
    sl_all = np.interp(xc_all, res_x, res_sig)
    below = (xc_all < x[0]).tolist()
    above = (xc_all > x[-1]).tolist()
    for k in range(ncomp):
        if only is not None and not only[k]:
            continue
        l0, l1 = int(ptr[k]), int(ptr[k + 1])
        if kind[k] == 1:
            # a break: Σ_l r_l Φ((ln λ − ln λ_l)/σ_l) (weights summing to 1) within ±4σ of its
            # sub-steps, 0 blueward and 1 redward of that
            if any(below[l0:l1]) or any(above[l0:l1]):
                continue
            if not (math.log(BREAK_CHECK_UM[0]) + lz >= x[0] and math.log(BREAK_CHECK_UM[1]) + lz <= x[-1]):
                continue
            xc = xc_all[l0:l1]
            sg = np.sqrt(sl_all[l0:l1] ** 2 + sig_intr[k] ** 2 + sig_extra**2)
            i0 = int(np.searchsorted(x, float(np.min(xc - 4 * sg))))
            i4 = int(np.searchsorted(x, float(np.max(xc + 4 * sg))))
            if int(np.searchsorted(x, xc.min())) - i0 < 3 or i4 - int(np.searchsorted(x, xc.max())) < 3:
                continue
            for j in range(l1 - l0):
                cols[i0:i4, k] += ratio[l0 + j] * _phi((x[i0:i4] - xc[j]) * (1.0 / sg[j]))
            cols[i4:, k] = 1.0
            active.append(k)
            continue
        if all(b or a for b, a in zip(below[l0:l1], above[l0:l1])):
            continue
        xc = xc_all[l0:l1]
        sg = np.sqrt(sl_all[l0:l1] ** 2 + sig_intr[k] ** 2)
        i0 = int(np.searchsorted(ehi, (xc - 5 * sg - smear).min()))
        i1 = int(np.searchsorted(elo, (xc + 5 * sg + smear).max()))
        if i1 - i0 < 2:
            continue
        lines = []
        for j in range(l1 - l0):
            hb = smear / sg[j]
            if truncate:
                j0, j1 = i0, i1
            elif hb < 1e-6:
                # the whole spectrum (the model): the tabulated Φ is exactly 0 below −8σ and 1 above
                # +8σ, so frac is 0 there; evaluated where it is not (the same values)
                j0 = int(np.searchsorted(ehi, xc[j] - 8.5 * sg[j]))
                j1 = max(int(np.searchsorted(elo, xc[j] + 8.5 * sg[j])), j0)
            else:
                j0, j1 = 0, x.size
            lines.append((j, hb, j0, j1))
            isg = 1.0 / sg[j]  # the kernel's arithmetic: reciprocals, then multiplications
            t_hi.append((ehi[j0:j1] - xc[j]) * isg)
            t_lo.append((elo[j0:j1] - xc[j]) * isg)
            hbs.append(np.full(j1 - j0, hb))
        pending.append((k, l0, i0, i1, math.sqrt(2 * math.pi) * sg[0], lines))
    if not pending:
        return cols, np.array(active, np.int64)
    # every line's Φ at once (element by element the same arithmetic as line by line)
    hb_all = np.concatenate(hbs)
    frac_all = _box_phi(np.concatenate(t_hi), hb_all) - _box_phi(np.concatenate(t_lo), hb_all)
    pos = 0
    for k, l0, i0, i1, norm, lines in pending:
        cover = 0.0
        for j, hb, j0, j1 in lines:
            frac = frac_all[pos:pos + j1 - j0]
            pos += j1 - j0
            cols[j0:j1, k] += ratio[l0 + j] * norm * frac * (1.0 / (ehi[j0:j1] - elo[j0:j1]))
            if j == 0:
                if j0 <= i0 and i1 <= j1:
                    cover = float(np.sum(frac[i0 - j0:i1 - j0]))
                else:  # the model's ±8.5σ range: frac is 0 beyond it
                    fw = np.zeros(i1 - i0)
                    fw[max(j0, i0) - i0:max(min(j1, i1), i0) - i0] = frac[max(j0, i0) - j0:max(min(j1, i1), j0) - j0]
                    cover = float(np.sum(fw))
        if cover < MIN_COVER:
            cols[:, k] = 0.0
            continue
        active.append(k)
    active.sort()
    return cols, np.array(active, np.int64)


def _solve_at(lz: float, d: _Prepared, smear: float, tables: tuple | None = None):
    """Dense fit at one ln(1+z): (penalised χ², continuum coefs (splines, then the pedestal),
    amplitudes by component, active); ``tables``: the components (default ``d.tables``)."""
    tables = d.tables if tables is None else tables
    t, _ = _igm(lz, d.x, d.res_x, d.res_sig, smear / math.sqrt(3.0))
    nc = d.cont.shape[1]
    tc = np.hstack([d.cont * t[:, None], d.ped])  # the continuum block: splines × IGM, pedestal
    lines, active = _line_columns(lz, d.x, d.elo, d.ehi, d.res_x, d.res_sig, smear, tables)
    w = d.w
    m = tc.T @ (w[:, None] * tc)
    v = tc.T @ (w * d.y)
    m[:nc, :nc] += d.pen
    m[nc:, nc:] += d.ped_prior
    m[np.diag_indices_from(m)] += RIDGE * m.diagonal().max() + 1e-300
    a0 = np.linalg.solve(m, v)
    ywy = float(np.sum(w * d.y**2))
    chi2c = ywy - float(a0 @ v) + _pedestal_occam(m, nc, d)
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
    kinds = tables[4][active]
    is_step = kinds == 1
    ib, ir = _break_pixels(lz, d.x)
    # stellar absorption: the pixel of its reference line and its rest EW per unit amplitude
    ptr, xrest, _, sig_intr, _ = tables
    ew_pix = np.zeros(active.size, np.int64)
    ew_fac = np.zeros(active.size)
    for j in np.flatnonzero(kinds == 2):
        xr = xrest[ptr[active[j]]]
        sl = float(np.interp(xr + lz, d.res_x, d.res_sig))
        ew_pix[j] = min(int(np.searchsorted(d.x, xr + lz)), d.x.size - 1)
        ew_fac[j] = math.sqrt(2 * math.pi) * math.sqrt(sl * sl + sig_intr[active[j]] ** 2) * math.exp(xr) * 1e4

    def observed_continuum(i, keep, bsol):
        a_full = a0 - zk[:, keep] @ bsol
        return float(d.cont[i] @ a_full[:nc] + d.ped[i] @ a_full[nc:] + lk[i, keep] @ np.where(is_step[keep], bsol, 0.0))

    def ew_bad(keep, bsol):
        # stellar absorption must keep a stellar equivalent width (≤ STELLAR_ABSORPTION_MAX_EW)
        bad = np.zeros(keep.size, bool)
        for j in np.flatnonzero(kinds[keep] == 2):
            bad[j] = bsol[j] * ew_fac[keep[j]] > STELLAR_ABSORPTION_MAX_EW * observed_continuum(ew_pix[keep[j]], keep, bsol)
        return bad

    def contrast_bad(keep, bsol):
        # the continuum contrast across the Balmer/4000 Å break must stay physical
        # (≤ BREAK_MAX_RATIO): otherwise the steps go (they would mimic a Lyman break)
        # (on the observed continuum, pedestal included: a negative pedestal under a positive
        # continuum would otherwise let a Balmer break reach zero flux within the limit)
        st = is_step[keep]
        a_full = a0 - zk[:, keep] @ bsol
        cb = float(d.cont[ib] @ a_full[:nc] + d.ped[ib] @ a_full[nc:] + lk[ib, keep] @ np.where(st, bsol, 0.0))
        cr = float(d.cont[ir] @ a_full[:nc] + d.ped[ir] @ a_full[nc:] + lk[ir, keep] @ np.where(st, bsol, 0.0))
        return cr > BREAK_MAX_RATIO * cb

    keep, bsol = _select_components(s, rhs, is_step, contrast_bad, ew_bad)
    gain = float(bsol @ rhs[keep]) - _penalty(keep.size, int(is_step[keep].sum())) if keep.size else 0.0
    amps_active = np.zeros(active.size)
    if keep.size:
        amps_active[keep] = bsol
    amps[active] = amps_active
    # continuum coefficients given the lines: a = M⁻¹(v − Xᵀ b)
    a = a0 - zk @ amps_active
    return chi2c - gain, a, amps, active


def _ped_lndet_prior(d: _Prepared) -> float:
    return float(np.linalg.slogdet(d.ped_prior)[1])


def _pedestal_occam(m: np.ndarray, nc: int, d: _Prepared) -> float:
    """PEDESTAL_OCCAM × ln det of the pedestal's posterior precision given the splines (the Schur
    complement of its block of ``m``) over its prior's: the cost of marginalising it."""
    if PEDESTAL_OCCAM == 0:
        return 0.0
    schur = m[nc:, nc:] - m[nc:, :nc] @ np.linalg.solve(m[:nc, :nc], m[:nc, nc:])
    return PEDESTAL_OCCAM * (float(np.linalg.slogdet(schur)[1]) - _ped_lndet_prior(d))


def _subset_solve(s, rhs, keep):
    """Solve S_KK b = rhs_K (ridge as in the kernel): (L, L⁻¹ rhs_K, b, σ_b) or None."""
    sub = s[np.ix_(keep, keep)]  # a copy (fancy indexing)
    sub.flat[:: keep.size + 1] = sub.diagonal() * (1 + RIDGE) + 1e-300  # the diagonal, without index arrays
    try:
        lower = np.linalg.cholesky(sub)
    except np.linalg.LinAlgError:
        return None
    y = np.linalg.solve(lower, rhs[keep])
    b = np.linalg.solve(lower.T, y)
    linv = np.linalg.solve(lower, np.eye(keep.size))
    sd = np.sqrt(np.sum(linv**2, axis=0))
    return lower, y, b, sd


def _penalty(nkeep: int, nstep: int) -> float:
    """χ² penalty of ``nkeep`` components, ``nstep`` of them continuum steps: LINE_SNR_MIN² each,
    BREAK_PAIR_SNR² for every step after the first (the kernel's ``_penalty``)."""
    extra = max(nstep - 1, 0)
    return LINE_SNR_MIN**2 * (nkeep - extra) + BREAK_PAIR_SNR**2 * extra


def _select_components(s, rhs, is_step, contrast_bad, ew_bad):
    """Components (indices into ``rhs``) and amplitudes minimising χ² + the penalty (:func:`_penalty`).

    Stepwise: remove a negative amplitude (most negative b/σ first), the continuum steps
    when the break contrast is unphysical (then they are barred at this redshift), stellar
    absorption whose equivalent width is not stellar (``ew_bad``: a mask over the kept; then
    barred), a component below its threshold (LINE_SNR_MIN; BREAK_PAIR_SNR for a step while
    the other is kept) — the one furthest below it first; else add the candidate of largest
    Δχ² (its b/σ squared, given the kept ones) net of its penalty, if that is positive.
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
            thr = np.where(st & (st.sum() > 1), BREAK_PAIR_SNR, LINE_SNR_MIN)
            if st.any() and contrast_bad(keep, bsol):
                banned[keep[st]] = True
                keep, solved = keep[~st], False
                continue
            bad = ew_bad(keep, bsol)
            if bad.any():
                banned[keep[bad]] = True
                keep, solved = keep[~bad], False
                continue
            if np.any(snr < thr):
                keep, solved = np.delete(keep, int(np.argmin(snr - thr))), False
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
        thr = np.where(is_step & is_step[keep].any(), BREAK_PAIR_SNR**2, pen)
        gains = np.where(ok, q * q / np.where(ok, r, 1.0) - thr, -np.inf)
        best = int(np.argmax(gains))
        if not gains[best] > 0:
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


def _chi2_dense(lnz: np.ndarray, d: _Prepared, smear: float, tables: tuple | None = None) -> np.ndarray:
    return np.array([_solve_at(float(lz), d, smear, tables)[0] for lz in lnz])


def _suffix_sums(terms: np.ndarray) -> np.ndarray:
    """Σ_{i≥j} terms[i] for j = 0 … n, along the first axis (row n: zeros).

    ``np.cumsum(terms[::-1], axis=0)[::-1]``, the same additions in the same order, with the
    rows laid along the last axis first: a cumulative sum over a strided first axis of
    ~100 columns cost ~4× as much.
    """
    n = terms.shape[0]
    flat = np.ascontiguousarray(terms.reshape(n, -1)[::-1].T)
    np.cumsum(flat, axis=1, out=flat)
    out = np.zeros((n + 1,) + terms.shape[1:])
    out[:-1] = flat.T[::-1].reshape(terms.shape)
    return out


def _kernel_inputs(d: _Prepared) -> tuple:
    """Suffix sums, sparse B-spline rows and the Lyα-forest transmission per pixel for the compiled kernel
    (once per spectrum)."""
    if d.kernel_inputs is None:
        n, nc = d.cont.shape
        wc = d.w[:, None] * d.cont
        # B-spline rows are sparse (≤ 4 non-zeros from cidx): the kernel loops over those only
        nb = min(4, nc)
        cidx = np.minimum(np.argmax(d.cont > 0, axis=1), nc - nb).astype(np.int64)
        cval = np.ascontiguousarray(d.cont[np.arange(n)[:, None], cidx[:, None] + np.arange(nb)])
        # suffix sums Σ_{i≥j}: the continuum normal equations for any IGM step position; of
        # Σ w C_p C_q only the band |p − q| < nb is non-zero: pcc[j, p, nb − 1 + q − p]. A row's
        # products are non-zero within its nb × nb window from cidx only (the others are w·C_p·0 = +0)
        a, b = np.meshgrid(np.arange(nb), np.arange(nb), indexing="ij")
        wcval = d.w[:, None] * cval
        terms = np.zeros((n, nc, 2 * nb - 1))
        terms[np.arange(n)[:, None, None], cidx[:, None, None] + a, nb - 1 + b - a] = (
            wcval[:, :, None] * cval[:, None, :])
        pcc = _suffix_sums(terms)
        pcy = _suffix_sums(wc * d.y[:, None])
        # plain suffix sums Σ w, Σ w y, Σ w C (continuum steps are 1 redward of their edge)
        sw = _suffix_sums(d.w)
        sy = _suffix_sums(d.w * d.y)
        sc = _suffix_sums(wc)
        # the pedestal: suffix sums of w C Pᵀ (beyond the IGM window) and of w P (steps),
        # and its constant Gram block (prior included) and Σ w y P
        wp = d.w[:, None] * d.ped
        pcp = _suffix_sums(wc[:, :, None] * d.ped[:, None, :])
        spd = _suffix_sums(wp)
        ppp = d.ped.T @ wp + d.ped_prior
        vpp = wp.T @ d.y
        d.kernel_inputs = (cidx, cval, nc, pcc, pcy, float(np.sum(d.w * d.y**2)), sw, sy, sc,
                           np.ascontiguousarray(d.ped), pcp, ppp, vpp, spd, madau_forest(np.exp(d.x)))
    return d.kernel_inputs


def _chi2_grid(lnz: np.ndarray, d: _Prepared, smear: float, engine: str, tables: tuple | None = None) -> np.ndarray:
    """Penalised χ² at each ln(1+z) of ``lnz``; ``smear``: line positions averaged over ± smear (coarse passes);
    ``tables``: the components (default ``d.tables``)."""
    tables = d.tables if tables is None else tables
    if engine == "numpy":
        return _chi2_dense(lnz, d, smear, tables)
    k = fit_c_kernels() if engine == "c" else kernels()
    ptr, xrest, ratio, sig_intr, kind = tables
    cidx, cval, nc, pcc, pcy, ywy, sw, sy, sc, ped, pcp, ppp, vpp, spd, tforest = _kernel_inputs(d)
    out = np.empty(lnz.size)
    k.zfit_chi2_grid(
        np.ascontiguousarray(lnz, float), d.x, d.elo, d.ehi, d.y, d.w, cidx, cval, nc,
        pcc, pcy, ywy, sw, sy, sc, ped, pcp, ppp, vpp, spd,
        ptr, xrest, ratio, sig_intr, kind, d.res_x, d.res_sig, float(smear), RIDGE,
        MIN_COVER, LINE_SNR_MIN, BREAK_PAIR_SNR, math.log(LYA_UM), math.log(LYLIMIT_UM), IGM_SIGMA_KMS / C_KMS,
        tforest, d.pen, math.log(BREAK_CHECK_UM[0]), math.log(BREAK_CHECK_UM[1]),
        BREAK_MAX_RATIO, STELLAR_ABSORPTION_MAX_EW, PEDESTAL_OCCAM, _ped_lndet_prior(d), out,
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


def _parabola_vertex(lnz: np.ndarray, chi2: np.ndarray, i: int) -> float:
    """ln(1+z) of the vertex of the parabola through grid point ``i`` and its neighbours (``lnz[i]`` if none)."""
    if not 0 < i < lnz.size - 1:
        return float(lnz[i])
    h0, h1 = lnz[i] - lnz[i - 1], lnz[i + 1] - lnz[i]
    # χ² ≈ c + b·u + a·u² with u = lnz − lnz[i]; the secant slopes are b − a·h0 and b + a·h1
    d0, d1 = (chi2[i] - chi2[i - 1]) / h0, (chi2[i + 1] - chi2[i]) / h1
    a = (d1 - d0) / (h0 + h1)
    if not a > 0:
        return float(lnz[i])
    b = d0 + a * h0
    return float(lnz[i] + np.clip(-b / (2 * a), -h0, h1))


def _peak_sigma(lnz: np.ndarray, chi2: np.ndarray, i: int, s: float) -> float:
    """σ in ln(1+z) of p ∝ exp(−χ²/2s) at the grid minimum ``i``, from the parabola through it (NaN if none)."""
    if not 0 < i < lnz.size - 1:
        return math.nan
    h0, h1 = lnz[i] - lnz[i - 1], lnz[i + 1] - lnz[i]
    # second derivative of χ² on an uneven 3-point stencil
    curv = 2.0 * (h0 * chi2[i + 1] - (h0 + h1) * chi2[i] + h1 * chi2[i - 1]) / (h0 * h1 * (h0 + h1))
    return math.sqrt(2.0 * s / curv) if curv > 0 else math.nan


def _pz_cdf(lnz: np.ndarray, chi2: np.ndarray, chi2_min: float, s: float) -> tuple[np.ndarray, np.ndarray]:
    """p(z) ∝ exp(−(χ² − χ²_min)/2s) on ``lnz`` (0 where χ² is not finite) and its running integral
    (trapezoids in ln(1+z), starting at 0)."""
    p = np.exp(-(chi2 - chi2_min) / (2.0 * s))
    p[~np.isfinite(p)] = 0.0
    return p, np.concatenate([[0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(lnz))])


def _posterior(lnz, chi2, lz_best, chi2_min, chi2_null, s, prior_width,
               temperature: float = CONFIDENCE_TEMPERATURE) -> tuple[float, float, float]:
    """``confidence`` and the 68% interval (ln(1+z)) from χ²(z).

    p(z) ∝ exp(−(χ² − χ²_min)/2s) with a flat prior in ln(1+z) over the searched range
    (``prior_width`` long). ``confidence`` is the posterior probability that the spectrum
    has redshift features at all *and* that z lies within ``|Δz|/(1+z) < 0.01`` of the best
    one: the alternative "no redshift" is the spline alone (``chi2_null``), with prior
    odds :data:`NULL_PRIOR_ODDS` — the Bayesian form of the look-elsewhere effect, which
    a best χ² picked among thousands of redshifts and dozens of components needs — with
    the Δχ² tempered by ``temperature`` (template mismatch; :data:`CONFIDENCE_TEMPERATURE`). The
    interval is the 16th–84th percentiles of p(z) given that there are features,
    widened to contain the best redshift when p(z) has several peaks.
    """
    if lnz.size < 2:
        return 0.0, lz_best, lz_best

    p, cdf = _pz_cdf(lnz, chi2, chi2_min, s)
    total = float(cdf[-1])
    if not total > 0:
        return 0.0, lz_best, lz_best
    pt, cdf_t = _pz_cdf(lnz, chi2, chi2_min, s * temperature)
    near = np.abs(np.expm1(lnz - lz_best)) < 0.01
    m_near = float(np.trapezoid(pt * near, lnz))
    m_null = NULL_PRIOR_ODDS * prior_width * math.exp(
        -max(chi2_null - chi2_min, 0.0) / (2.0 * s * temperature))
    confidence = float(np.clip(m_near / (float(cdf_t[-1]) + m_null), 0.0, 1.0))
    lo, hi = np.interp([0.16 * total, 0.84 * total], cdf, lnz)
    return confidence, min(float(lo), lz_best), max(float(hi), lz_best)


def _break_refined(lz_best: float, chi2_best: float, d: _Prepared, s: float, step: float, l_lo: float,
                   l_hi: float, engine: str) -> float:
    """ln(1+z) of a fit that emission lines hardly shape (:data:`BREAK_REFINE_GAIN`): the median of
    p(z) within ± :data:`BREAK_REFINE_HALF` of ``lz_best`` on a χ² curve without emission lines
    (``step`` apart); ``lz_best`` itself otherwise."""
    tables = _line_tables(_resolves_broad(d.grating), emission=False)
    if _chi2_grid(np.array([lz_best]), d, 0.0, engine, tables)[0] - chi2_best >= BREAK_REFINE_GAIN:
        return lz_best
    n = int(round(BREAK_REFINE_HALF / step))
    lnz = lz_best + step * np.arange(-n, n + 1)
    lnz = lnz[(lnz >= l_lo) & (lnz <= l_hi)]
    if lnz.size < 3:
        return lz_best
    chi2 = _chi2_grid(lnz, d, 0.0, engine, tables)
    _, cdf = _pz_cdf(lnz, chi2, np.nanmin(chi2), s)
    if not cdf[-1] > 0:
        return lz_best
    return float(np.interp(0.5 * cdf[-1], cdf, lnz))


def _flagged_bad_background(spec) -> bool:
    """Whether the spectrum's ``DQFLAGS`` header card has BAD_BACKGROUND (False without one)."""
    try:
        return bool(int(spec.header.get("DQFLAGS", 0)) & int(DQFlags.BAD_BACKGROUND))
    except (TypeError, ValueError):
        return False


def fit_redshift(
    spec,
    z_range: tuple[float, float] = (0.0, 15.0),
    *,
    engine: str = "auto",
    bad_background: bool | None = None,
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
    engine : {'auto', 'c', 'numba', 'numpy'}
        'auto' uses the compiled kernel: C when it was built at install, else numba's
        (the same numbers bit for bit), else numpy.
    bad_background : bool, optional
        The spectrum carries a residual of a bad background subtraction: its
        ``confidence`` is tempered more (:data:`BAD_BACKGROUND_TEMPERATURE`). By
        default, whether its ``DQFLAGS`` header card (the archive's FITS files) has
        ``BAD_BACKGROUND``.

    Returns
    -------
    dict
        The keys of ``get_redshift_fit_data`` (:data:`FIT_KEYS`): ``redshift`` (float),
        ``chi2_min`` (float, the penalised χ² at the best redshift: χ² plus the spline
        curvature prior plus LINE_SNR_MIN² per line/step component used (BREAK_PAIR_SNR²
        for the second break component) plus the pedestal's Occam term, the quantity
        ``chi2_grid`` holds), ``confidence`` (0–1: the probability that the spectrum
        has redshift features and z is within ``|Δz|/(1+z) < 0.01`` of ``redshift``),
        ``z_grid`` and ``chi2_grid`` (the coarse grid with the fine zooms merged in,
        sorted by z), ``model_wave`` [μm] and ``model_fnu`` [μJy] (best-fit model over
        the spectrum's valid range), ``redshift_lo`` and ``redshift_hi`` (the 68%
        interval of the redshift: 16th–84th percentiles of p(z), containing
        ``redshift``, with a systematic floor; see the module notes).

    Raises
    ------
    ValidationError
        Bad ``z_range`` or a spectrum with fewer than 10 valid pixels.

    Notes
    -----
    Called from the main thread, the fit runs the process's BLAS on one thread and
    gives its thread count back after (:mod:`campfire.tasks._blas`): half the CPU at
    the same speed, and the archive's numbers bit for bit on any machine.

    Examples
    --------
    >>> from campfire import SpectrumData, fit_redshift          # doctest: +SKIP
    >>> fit = fit_redshift(SpectrumData.from_fits('x.spec.fits'))  # doctest: +SKIP
    >>> fit['redshift'], fit['confidence']                        # doctest: +SKIP
    (4.2333, 1.0)
    >>> fit['redshift_lo'], fit['redshift_hi']                    # doctest: +SKIP
    (4.2324, 4.2342)
    """
    if bad_background is not None and not isinstance(bad_background, (bool, np.bool_)):
        raise ValidationError(f"bad_background: expected True, False or None, got {bad_background!r}")
    try:
        z_lo, z_hi = (float(v) for v in z_range)
    except (TypeError, ValueError):
        raise ValidationError(f"z_range: expected (z_min, z_max), got {z_range!r}") from None
    if not (np.isfinite(z_lo) and np.isfinite(z_hi) and 0 <= z_lo < z_hi <= 30):
        raise ValidationError(f"z_range: expected 0 <= z_min < z_max <= 30, got {z_range!r}")
    eng = resolve_engine(engine)
    from campfire.models import as_spectrum_data

    spec = as_spectrum_data(spec)
    if bad_background is None:
        bad_background = _flagged_bad_background(spec)
    with one_blas_thread():  # the same bits on any machine, and no spinning BLAS threads
        return _fit(_prepare(spec), z_lo, z_hi, eng, bad_background)


def _fit(d: _Prepared, z_lo: float, z_hi: float, eng: str, bad_background: bool) -> dict[str, Any]:
    """:func:`fit_redshift` of a prepared spectrum."""

    # coarse pass: uniform in ln(1+z), line positions averaged over ± half a step
    l_lo, l_hi = math.log1p(z_lo), math.log1p(z_hi)
    sig_min = float(np.min(np.sqrt(d.res_sig**2 + (NARROW_FWHM * FWHM_TO_SIGMA / C_KMS) ** 2)))
    coarse = float(np.clip(Z_STEP_SIGMAS * sig_min, *Z_STEP_COARSE))
    n_coarse = max(int(math.ceil((l_hi - l_lo) / coarse)) + 1, 3)
    lnz_c = np.linspace(l_lo, l_hi, n_coarse)
    step = lnz_c[1] - lnz_c[0]
    # the coarse pass leaves out the broad components (AGN, little red dots: ≥ BROAD_FWHM,
    # ~100 grating pixels per line); the candidates' re-ranking and the fine passes have them
    # again. The narrow twin of each broad line still marks its redshift, and at wrong
    # redshifts broad profiles mostly fitted noise. Re-ranking without them too read a little
    # red dot's broad Hβ as Hα at confidence 1.0 (full demo, G395M): with them the same
    # successes and catastrophic failures as before on the small demo and a quarter of the
    # full one, and the fits 9 % (PRISM) to 23 % (gratings) cheaper (bench/RESULTS.md, stop 29)
    coarse_tables = _line_tables(_resolves_broad(d.grating), broad=False)
    chi2_c = _chi2_grid(lnz_c, d, 0.5 * step, eng, coarse_tables)

    # candidates: the best N_CANDIDATES coarse minima, re-ranked on a sub-grid of ≤ 1.3 σ (of
    # the narrowest line) across their coarse step, each point's lines smeared over its cell
    n_mid = max(3, 2 * int(math.ceil(0.5 * (step / (1.3 * sig_min) - 1))) + 1)
    cand = lnz_c[_local_minima(chi2_c, N_CANDIDATES)]
    lnz_mid = np.clip((cand[:, None] + (np.arange(n_mid) - n_mid // 2) * (step / n_mid)).ravel(), l_lo, l_hi)
    chi2_mid = _chi2_grid(lnz_mid, d, 0.5 * step / n_mid, eng).reshape(cand.size, n_mid)
    centres = lnz_mid.reshape(cand.size, n_mid)[np.arange(cand.size), np.argmin(chi2_mid, axis=1)]
    centres = centres[np.argsort(chi2_mid.min(axis=1), kind="stable")][:N_PEAKS]

    # fine passes around the best candidates, at the true line widths
    fine_step = min(step / 4.0, sig_min / 2.0)
    n_half = int(math.ceil(1.5 * step / fine_step))
    fine = [g[(g >= l_lo) & (g <= l_hi)] for g in centres[:, None] + fine_step * np.arange(-n_half, n_half + 1)]
    lnz_f = np.unique(np.concatenate(fine))
    chi2_f = _chi2_grid(lnz_f, d, 0.0, eng)
    # the minimum of every zoom refined by a parabola: a strong line's χ² changes by tens
    # within a fraction of a fine step, more than what tells two redshifts apart
    vertices = []
    for g in fine:
        if g.size:
            sel = np.flatnonzero((lnz_f >= g[0]) & (lnz_f <= g[-1]))
            i = sel[int(np.argmin(chi2_f[sel]))]
            vertices.append(_parabola_vertex(lnz_f, chi2_f, i))
    lnz_v = np.unique(np.clip(vertices, l_lo, l_hi))
    chi2_v = _chi2_grid(lnz_v, d, 0.0, eng)
    ib = int(np.argmin(chi2_v))
    lz_best = float(lnz_v[ib])
    if chi2_f.min() < chi2_v[ib]:  # a parabola through noise can miss; the grid point stands
        lz_best = float(lnz_f[np.argmin(chi2_f)])
    chi2_best, a, amps, active = _solve_at(lz_best, d, 0.0)

    dof = max(d.x.size - d.cont.shape[1] - len(active), 1)
    s = max(1.0, chi2_best / dof)
    lz_refined = _break_refined(lz_best, chi2_best, d, s, min(BREAK_REFINE_STEP, fine_step), l_lo, l_hi, eng)
    if lz_refined != lz_best:
        lz_best = lz_refined
        chi2_best, a, amps, active = _solve_at(lz_best, d, 0.0)
    # p(z) near the best redshift may be narrower than the fine step (a strong line): sample
    # it on its own scale (σ from the parabola through the fine minimum) so that the
    # interval is not set by the grid
    sigma = _peak_sigma(lnz_f, chi2_f, int(np.argmin(np.abs(lnz_f - lz_best))), s)
    sigma = float(np.clip(sigma, fine_step / 50.0, fine_step)) if np.isfinite(sigma) else fine_step
    lnz_m = lz_best + sigma * np.linspace(-4.0, 4.0, 11)
    lnz_m = lnz_m[(lnz_m >= l_lo) & (lnz_m <= l_hi)]
    chi2_m = _chi2_grid(lnz_m, d, 0.0, eng)

    # the reported grid: coarse points outside the fine zooms + the fine and local points
    # (inside a zoom the fine χ² is the true-resolution one)
    inside = np.zeros(lnz_c.size, bool)
    for g in fine:
        if g.size:
            inside |= (lnz_c >= g[0]) & (lnz_c <= g[-1])
    lz_all = np.concatenate([lnz_c[~inside], lnz_f, lnz_v, lnz_m])
    c_all = np.concatenate([chi2_c[~inside], chi2_f, chi2_v, chi2_m])
    order = np.argsort(lz_all, kind="stable")
    lz_all, c_all = lz_all[order], c_all[order]
    keep = np.r_[True, np.diff(lz_all) > 1e-9 * fine_step]
    lz_all, c_all = lz_all[keep], c_all[keep]
    confidence, lz_lo, lz_hi = _posterior(lz_all, c_all, lz_best, min(chi2_best, float(np.nanmin(c_all))),
                                          d.chi2_null, s, l_hi - l_lo,
                                          BAD_BACKGROUND_TEMPERATURE if bad_background else CONFIDENCE_TEMPERATURE)
    # the systematic floor: line centroids are known to a fraction of the resolution only
    sys_floor = Z_SYS_FRACTION * float(np.median(np.interp(d.x, d.res_x, d.res_sig)))
    lz_lo = lz_best - math.hypot(lz_best - lz_lo, sys_floor)
    lz_hi = lz_best + math.hypot(lz_hi - lz_best, sys_floor)

    # model over the valid range, on every pixel (gaps included)
    xa = np.log(d.wave_all)
    t_all, _ = _igm(lz_best, xa, d.res_x, d.res_sig, 0.0)
    cont_all = np.hstack([_bspline_design(xa, d.knots) * t_all[:, None], _pedestal(xa, d.x[0], d.x[-1])])
    # the components of non-zero amplitude only: the others' columns would be multiplied by 0
    lines_all, _ = _line_columns(lz_best, xa, *d.x_all_edges, d.res_x, d.res_sig, 0.0, d.tables, truncate=False,
                                 only=amps != 0)
    model = (cont_all @ a + lines_all @ amps) * d.scale

    return {
        "redshift": float(math.expm1(lz_best)),
        "chi2_min": float(chi2_best),
        "confidence": confidence,
        "z_grid": np.expm1(lz_all),
        "chi2_grid": c_all,
        "model_wave": d.wave_all.copy(),
        "model_fnu": model,
        "redshift_lo": float(math.expm1(lz_lo)),
        "redshift_hi": float(math.expm1(lz_hi)),
    }


def redshift_alternatives(z_grid, chi2_grid, n: int = 5, separation: float = 0.02) -> list[tuple[float, float]]:
    """The ``n`` best distinct solutions of a χ²(z) curve: its deepest local minima.

    Minima closer than ``separation`` in ``|Δz|/(1+z)`` to a better one are the same
    solution (the fine zooms of :func:`fit_redshift` put several points in one well).

    Parameters
    ----------
    z_grid, chi2_grid : array_like
        The curve (``get_redshift_fit_data``'s ``z_grid`` and ``chi2_grid``), sorted by z.
    n : int
        How many solutions at most.
    separation : float
        Smallest ``|Δz|/(1+z)`` between two solutions.

    Returns
    -------
    list of (z, Δχ²)
        Best first; Δχ² is relative to the best solution (0 for the first).

    Examples
    --------
    >>> z = np.linspace(0, 4, 401)
    >>> chi2 = np.minimum((z - 1) ** 2 * 100, (z - 3) ** 2 * 100 + 5)
    >>> [(round(a, 2), round(b, 1)) for a, b in redshift_alternatives(z, chi2, n=2)]
    [(1.0, 0.0), (3.0, 5.0)]
    """
    z = np.asarray(z_grid, dtype=float)
    c = np.asarray(chi2_grid, dtype=float)
    if z.shape != c.shape or z.ndim != 1:
        raise ValidationError(f"z_grid, chi2_grid: expected 1D arrays of one length, got {z.shape} and {c.shape}")
    if not np.isfinite(c).any():
        return []
    chosen: list[tuple[float, float]] = []
    for i in _local_minima(c, z.size):
        zi = float(z[i])
        if all(abs(zi - zc) / (1 + zc) >= separation for zc, _ in chosen):
            chosen.append((zi, float(c[i])))
            if len(chosen) == n:
                break
    best = chosen[0][1]
    return [(zi, ci - best) for zi, ci in chosen]
