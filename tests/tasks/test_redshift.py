"""fit_redshift: real spectra with known redshifts, the compiled kernel against its numpy
reference, the result structure, and (when the demo archive exists) recovery of demo truth."""
from __future__ import annotations

import math
import pathlib

import numpy as np
import pytest

from campfire.errors import ValidationError
from campfire.flags import DQFlags
from campfire.models import SpectrumData
from campfire.tasks import redshift as R
from campfire.tasks._jit import numba_available, resolve_engine
from campfire.tasks.redshift import fit_redshift

REAL = pathlib.Path("/work/shared/data/real/spectra")
MSAEXP = REAL / "msaexp_tests" / "static-test-driz-center-bkg_933.spec.fits"
STARK = sorted((REAL / "dja_v4").glob("stark-rxcj2248-v4_*_2478_3.spec.fits"))
# JADES-GS-z13-0 (RA 53.14988, Dec −27.77650): the 56-hour PRISM spectrum of program 3215, a
# Lyman-break galaxy without lines; published z = 13.20 +0.03/−0.04 (Hainline et al. 2024,
# arXiv:2404.04325; 13.20 +0.04/−0.07 from the first spectrum, Curtis-Lake et al. 2023)
Z13 = REAL / "dja_v4" / "gds-udeep-v4_prism-clear_3215_20128771.spec.fits"

needs_real = pytest.mark.skipif(not MSAEXP.exists(), reason="real test spectra not present")
needs_numba = pytest.mark.skipif(not numba_available(), reason="numba not installed")


def _dz(z, truth):
    return abs(z - truth) / (1 + truth)


@needs_real
def test_msaexp_test_spectrum_redshift():
    # msaexp's own test suite expects z = 4.2341 for this CEERS PRISM spectrum
    fit = fit_redshift(SpectrumData.from_fits(MSAEXP))
    assert _dz(fit["redshift"], 4.2341) < 0.01
    assert _dz(fit["redshift"], 4.2341) < 0.001  # in practice it lands within 0.0002 (1+z)
    assert fit["confidence"] > 0.9


@needs_real
@pytest.mark.parametrize("path", STARK, ids=lambda p: p.name.split("_")[1])
def test_stark_gratings_redshift(path):
    # one object (z ≈ 6.10: C IV, O III], C III] / [O III] / Hα) seen with three gratings
    fit = fit_redshift(SpectrumData.from_fits(path))
    assert _dz(fit["redshift"], 6.10) < 0.01


@needs_real
@pytest.mark.parametrize(
    "name, z",
    [("borg-v4_prism-clear_1747_732", 8.22), ("excels-uds04-v4_g395m-f290lp_3543_63107", 8.27)],
)
def test_other_real_line_emitters(name, z):
    fit = fit_redshift(SpectrumData.from_fits(REAL / "dja_v4" / f"{name}.spec.fits"))
    assert _dz(fit["redshift"], z) < 0.01


@needs_real
def test_real_lyman_break_z13():
    """The z ≈ 13 dropout: flux ≈ 0 blueward of 1.72 μm, ≈ 0.018 μJy redward, no lines.

    It used to fit z = 3.71 (a Balmer break filled in by [O II], [Ne III], Hε, Hδ emission
    fitted to noise, and a spline bending onto zero flux). Measured now: z = 13.27,
    |Δz|/(1+z) = 0.005. The tolerance 0.02 is that of a break-only PRISM redshift at
    S/N ≈ 5 per pixel: the break position also moves with damped Lyα absorption, which
    the model (mean IGM only) leaves out.
    """
    fit = fit_redshift(SpectrumData.from_fits(Z13))
    assert _dz(fit["redshift"], 13.20) < 0.02, fit["redshift"]
    # the low-z alternative is disfavoured on the reported χ² grid as well
    low = fit["z_grid"] < 6
    assert fit["chi2_grid"][low].min() > fit["chi2_min"] + 4


@needs_real
def test_result_structure_and_model():
    spec = SpectrumData.from_fits(MSAEXP)
    fit = fit_redshift(spec, z_range=(3.0, 6.0))
    # the reference's keys of get_redshift_fit_data first, then the 68% interval
    assert list(fit) == ["redshift", "chi2_min", "confidence", "z_grid", "chi2_grid", "model_wave", "model_fnu",
                         "redshift_lo", "redshift_hi"]
    assert tuple(fit) == R.FIT_KEYS
    assert isinstance(fit["redshift"], float) and 3.0 <= fit["redshift"] <= 6.0
    # msaexp's z = 4.2341 (another fitter) agrees within twice the 68% interval, which is a few
    # 1e-4 wide for this spectrum (measured: 1.03 half-widths above our 4.2333)
    half = 0.5 * (fit["redshift_hi"] - fit["redshift_lo"])
    assert abs(4.2341 - fit["redshift"]) <= 2 * half
    assert fit["redshift_lo"] < fit["redshift"] < fit["redshift_hi"]
    assert fit["redshift_hi"] - fit["redshift_lo"] < 0.002 * (1 + fit["redshift"])
    assert fit["z_grid"].shape == fit["chi2_grid"].shape
    assert np.all(np.diff(fit["z_grid"]) > 0)
    assert fit["z_grid"][0] >= 3.0 - 1e-12 and fit["z_grid"][-1] <= 6.0 + 1e-12
    assert fit["chi2_min"] <= fit["chi2_grid"].min() + 1e-6
    assert fit["model_wave"].shape == fit["model_fnu"].shape and np.all(np.isfinite(fit["model_fnu"]))
    # the model describes the data: residuals ≈ errors where the spectrum is valid
    m = np.interp(spec.wavelength, fit["model_wave"], fit["model_fnu"])
    pull = ((spec.fnu - m) / spec.fnu_err)[spec.valid]
    assert np.median(np.abs(pull)) < 1.5


def _synthetic(z, grating="PRISM", seed=0, snr=20.0, lines=True):
    """A smooth continuum with Hα, [O III], Hβ, [O II] at resolution, plus noise."""
    rng = np.random.default_rng(seed)
    if grating == "PRISM":
        wave = np.exp(np.arange(np.log(0.6), np.log(5.3), 1 / 320))
    else:
        wave = np.arange(2.87, 5.27, 0.0018)
    cont = 0.5 * (wave / 2.0) ** 0.5
    # Lyman break
    cont = np.where(wave < 0.1216 * (1 + z), 0.0, cont)
    f = cont.copy()
    if lines:
        r = R.resolving_power(wave, grating)
        for rest, amp in [(6564.61, 3.0), (5008.24, 4.0), (4960.30, 1.34), (4862.68, 1.2), (3728.0, 1.5)]:
            lo = rest * 1e-4 * (1 + z)
            sig = lo / r / 2.3548
            # line flux amp·0.003 μJy·(ln λ): peak ≈ 0.3·amp (PRISM), ≈ 3·amp (M grating)
            f = f + amp * 0.003 / (np.sqrt(2 * np.pi) * sig / lo) * np.exp(-0.5 * ((wave - lo) / sig) ** 2)
    err = np.full(wave.size, 0.5 / snr)
    return SpectrumData(wave, f + rng.normal(0, err), err, grating=grating)


@pytest.mark.parametrize("z", [0.8, 2.3, 4.5, 7.1])
def test_synthetic_prism_recovered(z):
    fit = fit_redshift(_synthetic(z, seed=int(z * 10)))
    assert _dz(fit["redshift"], z) < 0.003


def test_synthetic_grating_recovered():
    fit = fit_redshift(_synthetic(5.3, grating="G395M", seed=3))
    assert _dz(fit["redshift"], 5.3) < 0.001


def test_nan_and_zero_error_pixels_ignored():
    spec = _synthetic(3.2, seed=5)
    spec.fnu[100:140] = np.nan
    spec.fnu_err[300:310] = 0.0
    spec.fnu[5] = np.inf
    fit = fit_redshift(spec)
    assert _dz(fit["redshift"], 3.2) < 0.003


def _quiescent(z, seed=0, snr=30.0, forest=False, offset=0.0):
    """A line-less quiescent continuum: red power law with a Balmer break (×2 at 3680 Å) and a
    4000 Å break (×1.4 at 3990 Å), edges close to but not at the fitter's step templates.
    Zero blueward of Lyα, or with ``forest`` the mean Lyα forest there (zero below the Lyman
    limit); ``offset`` [μJy] is added everywhere (a background-subtraction residual)."""
    from scipy.special import ndtr

    rng = np.random.default_rng(seed)
    wave = np.exp(np.arange(np.log(0.6), np.log(5.3), 1 / 320))
    rest = wave * 1e4 / (1 + z)
    cont = (rest / 4000.0) ** 1.2 * (1 + ndtr((rest - 3680.0) / 45.0)) * (1 + 0.4 * ndtr((rest - 3990.0) / 60.0))
    cont = 0.5 * cont / np.interp(4.0, wave, cont)
    t_forest = np.exp(-0.0036 * (wave / 0.121567) ** 3.46) if forest else 0.0
    cont = cont * np.where(wave < 0.0912 * (1 + z), 0.0, np.where(wave < 0.1216 * (1 + z), t_forest, 1.0))
    err = np.full(wave.size, 0.5 / snr)
    return SpectrumData(wave, cont + offset + rng.normal(0, err), err, grating="PRISM")


@pytest.mark.parametrize("z", [3.3, 4.1, 5.0])
def test_synthetic_quiescent_recovered(z):
    # the Balmer / 4000 Å break alone gives the redshift (before the continuum steps: 0 of these 9)
    for seed in range(3):
        fit = fit_redshift(_quiescent(z, seed=seed))
        assert _dz(fit["redshift"], z) < 0.01, (seed, fit["redshift"])


def _quiescent_absorbed(z, seed=0, snr=20.0, spike=None):
    """A quiescent galaxy as the demo draws one, on a PRISM grid: a red UV power law (f_ν ∝ λ²) up
    to the Balmer limit and λ^0.8 beyond, a Balmer break (×2 at 3700 Å) and a 4000 Å break (×1.4),
    Hδ, Hγ, Hβ, Hα in absorption (rest EW 5, 3.5, 3.5, 2 Å; 700 km/s), zero blueward of Lyα.
    ``spike``: (observed μm, S/N) of an emission line of the resolution's width added to the
    noise (a noise excursion an emission-line component fits)."""
    rng = np.random.default_rng(seed)
    wave = np.exp(np.arange(np.log(0.6), np.log(5.3), 1 / 320))
    lam = wave * 1e4 / (1 + z)
    r = R.resolving_power(wave, "PRISM")

    def step(x):
        return 0.5 * (1 + np.tanh(x))

    cont = (np.minimum(lam, 3650.0) / 1500.0) ** 2.0 * (np.maximum(lam, 3650.0) / 3650.0) ** 0.8
    cont *= (1 + step((lam - 3700.0) / 60.0)) * (1 + 0.4 * step((lam - 4000.0) / 80.0))
    f = cont.copy()
    for rest, ew in ((4102.89, 5.0), (4341.69, 3.5), (4862.68, 3.5), (6564.61, 2.0)):
        c = rest * 1e-4 * (1 + z)
        sig = c * math.hypot(1 / np.interp(c, wave, r), 700.0 / R.C_KMS) / 2.3548
        depth = np.interp(rest, lam, cont) * ew * (1 + z) * 1e-4 / (math.sqrt(2 * math.pi) * sig)
        f -= depth * np.exp(-0.5 * ((wave - c) / sig) ** 2)
    f = np.where(wave < 0.1216 * (1 + z), 0.0, f)
    f = 0.5 * f / np.interp(3.0, wave, f)
    err = np.full(wave.size, 0.5 / snr)
    y = f + rng.normal(0, err)
    if spike is not None:
        c, nsig = spike
        prof = np.exp(-0.5 * ((wave - c) / (c / np.interp(c, wave, r) / 2.3548)) ** 2)
        y += nsig * err * prof / math.sqrt(np.sum(prof**2))
    return SpectrumData(wave, y, err, grating="PRISM")


@pytest.mark.parametrize("z, seed", [(2.2, 2), (3.0, 1)])
def test_noise_line_in_a_break_does_not_move_the_redshift(z, seed, monkeypatch):
    """A quiescent galaxy's break pins z only within a broad χ² well (σ ≈ 0.005–0.015 in ln(1+z)
    at PRISM's R ≈ 30–100); a noise excursion at S/N 3 where [Ne III] 3869 would lie 0.8% bluer
    is fitted as that line and moved the χ² minimum by −0.008 (z = 2.2) and +0.012 (z = 3.0) in
    Δz/(1+z) (without it: +0.0001 and −0.0002). Such a fit, which emission lines hardly shape,
    takes the median of p(z) within its well on a χ² curve without emission lines
    (:func:`~campfire.tasks.redshift._break_refined`): within 0.002 of the truth again."""
    spec = _quiescent_absorbed(z, seed, spike=(3869.0e-4 * (1 + z) * (1 - 0.008), 3.0))
    fit = fit_redshift(spec)
    assert abs(_dz(fit["redshift"], z)) < 0.002, fit["redshift"]
    assert fit["redshift_lo"] <= fit["redshift"] <= fit["redshift_hi"]
    monkeypatch.setattr(R, "BREAK_REFINE_GAIN", -np.inf)  # the minimum itself: moved by the line
    assert abs(_dz(fit_redshift(spec)["redshift"], z)) > 0.006


def test_break_refinement_leaves_line_redshifts_alone(monkeypatch):
    """Emission lines that shape the fit (Δχ² ≥ BREAK_REFINE_GAIN at the best z) keep their
    χ² minimum: the same redshift, to the bit, with the refinement switched off."""
    spec = _synthetic(2.3, seed=23, snr=10.0)
    fit = fit_redshift(spec)
    monkeypatch.setattr(R, "BREAK_REFINE_GAIN", -np.inf)
    assert fit_redshift(spec)["redshift"] == fit["redshift"]


def test_background_offset_does_not_move_a_break_redshift():
    """An additive offset of 1.5–3 σ (what a bad background subtraction leaves) fills in the
    Lyα forest of a z ≈ 4.4–5.3 quiescent galaxy. The pedestal term absorbs it: the redshift is
    the one without the offset. (Without the pedestal, 12 of these 18 offset fits missed by
    > 0.01 (1+z), two of them with confidence > 0.95.) A fit may move only to another minimum
    that was already as good (Δχ² < 1 at the redshift without the offset: a tie between two
    interpretations of the noise, as z = 5.3, seed 0 has at 5.269 and 5.320), never by more
    than 0.01, and at most 2 of the 18 may move at all."""
    moved = 0
    for z in (4.4, 4.84, 5.3):
        for seed in (0, 1, 2):
            ref = fit_redshift(_quiescent(z, seed=seed, snr=15.0, forest=True))["redshift"]
            for offset in (0.05, 0.1):
                spec = _quiescent(z, seed=seed, snr=15.0, forest=True, offset=offset)
                fit = fit_redshift(spec)
                if _dz(fit["redshift"], ref) < 0.002:
                    continue
                moved += 1
                chi2_ref = R._chi2_grid(np.log1p([ref]), R._prepare(spec), 0.0, resolve_engine("auto"))[0]
                assert chi2_ref - fit["chi2_min"] < 1.0, (z, seed, offset, fit["redshift"], ref, chi2_ref, fit["chi2_min"])
                assert _dz(fit["redshift"], ref) < 0.01, (z, seed, offset, fit["redshift"], ref)
    assert moved <= 2




def test_bad_background_tempers_the_confidence():
    """A spectrum flagged BAD_BACKGROUND (an additive residual the pedestal follows only in
    part) has its confidence tempered by BAD_BACKGROUND_TEMPERATURE instead of
    CONFIDENCE_TEMPERATURE: same redshift and interval, lower confidence — by default when
    the DQFLAGS card (as the archive's files have it) says so."""
    spec = _synthetic(2.0, seed=1, snr=4.0)
    plain = fit_redshift(spec, bad_background=False)
    tempered = fit_redshift(spec, bad_background=True)
    assert tempered["redshift"] == plain["redshift"] and tempered["redshift_lo"] == plain["redshift_lo"]
    assert 0.9 < plain["confidence"] < 1.0 and tempered["confidence"] < plain["confidence"] - 0.03
    assert fit_redshift(spec)["confidence"] == plain["confidence"]  # no header: not flagged
    for flags, expected in ((int(DQFlags.BAD_BACKGROUND) | int(DQFlags.CHIP_GAP), tempered), (int(DQFlags.LOW_SNR), plain)):
        flagged = SpectrumData(spec.wavelength, spec.fnu, spec.fnu_err, grating="PRISM", header={"DQFLAGS": flags})
        assert fit_redshift(flagged)["confidence"] == expected["confidence"], flags
    with pytest.raises(ValidationError, match="bad_background"):
        fit_redshift(spec, bad_background="yes")


def test_red_uv_continuum_is_not_read_as_a_lyman_break():
    """Line-less quiescent continua at z = 1.8–2.6 (red UV, f_ν ∝ λ^1.2, below a Balmer break
    at PRISM's R ≈ 30), S/N 10 and 20, 6 seeds each. With the pedestal fitted freely its
    slope passed the UV for the background below a Lyman break: 7 of these 36 within 0.01,
    25 at z ≈ 6–9. Marginalised (its Occam term, PEDESTAL_OCCAM): 17 within 0.01, 6 off by
    more than 0.1."""
    ok = bad = 0
    for z in (1.8, 2.2, 2.6):
        for snr in (10.0, 20.0):
            for seed in range(6):
                dz = _dz(fit_redshift(_quiescent(z, seed=seed, snr=snr))["redshift"], z)
                ok += dz < 0.01
                bad += dz > 0.1
    assert ok >= 15 and bad <= 8, (ok, bad)


def test_pedestal_occam_term_only_where_the_igm_absorbs(monkeypatch):
    """The pedestal's Occam term is 0 where the spline can do what it does (Lyα blueward of
    the spectrum: z < 3.9 from 0.6 μm) and grows with the range the IGM absorbs."""
    d = R._prepare(_quiescent(2.0))
    lnz = np.log1p([1.0, 3.0, 6.0, 10.0])
    with_term = R._chi2_dense(lnz, d, 0.0)
    monkeypatch.setattr(R, "PEDESTAL_OCCAM", 0.0)
    diff = with_term - R._chi2_dense(lnz, d, 0.0)
    assert np.all(np.abs(diff[:2]) < 0.3), diff
    assert 3.0 < diff[2] < diff[3] < 15.0, diff


def test_second_break_component_costs_less():
    """The two break components are one break with a free 4000 Å-to-Balmer ratio: the second
    costs BREAK_PAIR_SNR² (not LINE_SNR_MIN²), so a ratio between the pair's ends is not
    pushed to one end at a shifted redshift. Two strongly correlated components (each at
    b/σ ≈ 1.1, the second adding Δχ² ≈ 1.2): kept together as steps, one alone as lines."""
    s = np.array([[1.0, 0.9], [0.9, 1.0]])
    rhs = s @ np.array([2.5, 2.5])

    def no_contrast_limit(keep, b):
        return False

    def no_ew_limit(keep, b):
        return np.zeros(keep.size, bool)

    keep, b = R._select_components(s, rhs, np.array([True, True]), no_contrast_limit, no_ew_limit)
    assert sorted(keep.tolist()) == [0, 1]
    np.testing.assert_allclose(b, [2.5, 2.5], rtol=1e-6)
    keep, _ = R._select_components(s, rhs, np.array([False, False]), no_contrast_limit, no_ew_limit)
    assert keep.size == 1
    assert R._penalty(3, 2) == 2 * R.LINE_SNR_MIN**2 + R.BREAK_PAIR_SNR**2


def test_interval_contains_the_redshift_and_shrinks_with_noise():
    widths = []
    for snr in (5.0, 50.0):
        fit = fit_redshift(_synthetic(3.4, seed=4, snr=snr))
        assert fit["redshift_lo"] < fit["redshift"] < fit["redshift_hi"]
        widths.append(fit["redshift_hi"] - fit["redshift_lo"])
    assert widths[1] < 0.5 * widths[0]
    # the floor: a line centroid is not known better than a few % of the resolution
    assert widths[1] / (1 + 3.4) > 2 * 0.5 * R.Z_SYS_FRACTION / (2.3548 * 300)


@pytest.mark.parametrize("grating", ["PRISM", "G395M"])
def test_noise_alone_is_not_a_confident_redshift(grating):
    """Pure noise: the best χ² among thousands of redshifts and dozens of line components
    always "finds" something (Δχ² ≈ 15–25 over the continuum alone); the null alternative
    keeps the confidence low (measured ≤ 0.12 for these six) and the interval wide."""
    if grating == "PRISM":
        wave = np.exp(np.arange(np.log(0.6), np.log(5.3), 1 / 320))
    else:
        wave = np.arange(2.87, 5.27, 0.0018)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        spec = SpectrumData(wave, 0.3 + rng.normal(0, 0.1, wave.size), np.full(wave.size, 0.1), grating=grating)
        fit = fit_redshift(spec)
        assert fit["confidence"] < 0.3, (seed, fit["redshift"], fit["confidence"])
        assert fit["redshift_hi"] - fit["redshift_lo"] > 1.0


@pytest.mark.parametrize("frac", [0.0, 0.2, 0.4, 0.6, 0.8])
def test_strong_grating_lines_between_coarse_points_are_found(frac):
    """A bright Hα + [N II] + [S II] + He I in G235M, at redshifts spread over one coarse
    grid step: without re-ranking the coarse minima, a strong line midway between two
    coarse points scored worse than other lines aligned by chance (a demo hae fitted at
    z = 0.73 with Paβ, confidence 1.0, truth 2.37 with a better χ²)."""
    rng = np.random.default_rng(int(frac * 10))
    wave = np.arange(1.66, 3.17, 0.00106)
    z = 2.3719 + frac * 0.0015 * 3.3719
    r = R.resolving_power(wave, "G235M")
    f = 0.2 * (wave / 2.5) ** 0.3
    for rest, amp in [(6564.61, 4.0), (6585.27, 0.8), (6549.86, 0.27), (6718.29, 0.4), (6732.67, 0.3), (5877.25, 0.3)]:
        lo = rest * 1e-4 * (1 + z)
        sig = lo / r / 2.3548
        f = f + amp * 0.002 / (np.sqrt(2 * np.pi) * sig / lo) * np.exp(-0.5 * ((wave - lo) / sig) ** 2)
    err = np.full(wave.size, 0.05)
    fit = fit_redshift(SpectrumData(wave, f + rng.normal(0, err), err, grating="G235M"))
    assert _dz(fit["redshift"], z) < 0.001, fit["redshift"]


def test_very_broad_components_only_where_the_resolution_tells_them_apart():
    names = [c[0] for c in R.LINE_COMPONENTS] + [c[0] for c in R.CONTINUUM_STEPS]
    n_vb = sum(n.endswith("-vbroad") for n in names)
    assert n_vb >= 4
    prism = R._prepare(_synthetic(2.0, grating="PRISM"))
    grating = R._prepare(_synthetic(5.3, grating="G395M"))
    assert prism.tables[0].size - 1 == len(names) - n_vb
    assert grating.tables[0].size - 1 == len(names)


def test_coarse_pass_without_broad_components_fine_pass_with_them():
    """The coarse pass's tables leave out every component of ≥ BROAD_FWHM (and only those);
    the fine passes fit with them: an AGN whose Hα is mostly broad (FWHM 1500 km/s) in
    G395M is found, and its best-fit model follows the broad line (χ² ≈ the pixels)."""
    broad = [c[0] for c in R.LINE_COMPONENTS if c[2] >= R.BROAD_FWHM]
    assert len(broad) >= 8
    full, coarse = R._line_tables(True), R._line_tables(True, broad=False)
    assert coarse[0].size == full[0].size - len(broad)
    sig_broad = R.BROAD_FWHM * R.FWHM_TO_SIGMA / R.C_KMS
    assert coarse[3][coarse[4] != 1].max() < sig_broad <= full[3][full[4] != 1].max()
    rng = np.random.default_rng(5)
    wave = np.arange(2.87, 5.27, 0.0018)
    z = 5.05
    r = R.resolving_power(wave, "G395M")
    f = 0.3 * (wave / 4.0) ** 0.5
    for rest, amp, fwhm in [(6564.61, 12.0, R.BROAD_FWHM), (6564.61, 0.6, 150.0), (5008.24, 0.8, 150.0)]:
        lo = rest * 1e-4 * (1 + z)
        sig = lo * math.hypot(1 / r[np.searchsorted(wave, lo)] / 2.3548, fwhm / 2.3548 / R.C_KMS)
        f = f + amp * 0.002 / (np.sqrt(2 * np.pi) * sig / lo) * np.exp(-0.5 * ((wave - lo) / sig) ** 2)
    err = np.full(wave.size, 0.03)
    fit = fit_redshift(SpectrumData(wave, f + rng.normal(0, err), err, grating="G395M"))
    assert _dz(fit["redshift"], z) < 0.001, fit["redshift"]
    assert fit["chi2_min"] < 1.3 * wave.size, fit["chi2_min"]


def test_lyman_break_without_lines():
    spec = _synthetic(7.6, seed=9, snr=15.0, lines=False)
    fit = fit_redshift(spec)
    assert _dz(fit["redshift"], 7.6) < 0.02


@needs_numba
@pytest.mark.parametrize("grating", ["PRISM", "G395M"])
def test_kernel_matches_numpy_reference(grating):
    spec = _synthetic(4.1, grating=grating, seed=11)
    d = R._prepare(spec)
    lnz = np.linspace(0.0, math.log(16.0), 40)
    for extra in (0.0, 0.001):
        fast = R._chi2_grid(lnz, d, extra, "numba")
        ref = R._chi2_dense(lnz, d, extra)
        np.testing.assert_allclose(fast, ref, rtol=1e-9)


@needs_numba
def test_kernel_matches_numpy_reference_with_breaks():
    # continuum steps selected, and (real file) the break-contrast veto exercised
    specs = [_quiescent(3.3, seed=1)] + ([SpectrumData.from_fits(Z13)] if Z13.exists() else [])
    lnz = np.linspace(0.0, math.log(16.0), 60)
    for spec in specs:
        d = R._prepare(spec)
        np.testing.assert_allclose(R._chi2_grid(lnz, d, 0.0, "numba"), R._chi2_dense(lnz, d, 0.0), rtol=1e-9)


def _balmer_absorbed(z, ew, seed=0, snr=30.0):
    """A smooth PRISM continuum with Hβ, Hγ, Hδ in absorption, each of rest equivalent width ``ew`` Å."""
    rng = np.random.default_rng(seed)
    wave = np.exp(np.arange(np.log(0.6), np.log(5.3), 1 / 320))
    cont = 0.5 * (wave / 2.0) ** 0.5
    sig = wave / R.resolving_power(wave, "PRISM") / 2.3548
    f = cont.copy()
    for rest in (4862.68, 4341.69, 4102.89):
        lo = rest * 1e-4 * (1 + z)
        f -= cont * ew * (1 + z) * 1e-4 / (np.sqrt(2 * np.pi) * sig) * np.exp(-0.5 * ((wave - lo) / sig) ** 2)
    err = np.full(wave.size, 0.5 / snr)
    return SpectrumData(wave, f + rng.normal(0, err), err, grating="PRISM")


def test_balmer_absorption_series_is_stellar(monkeypatch):
    """The Balmer absorption series fits stellar absorption (5 Å) and is barred beyond
    STELLAR_ABSORPTION_MAX_EW (40 Å: the deep absorbed core of an AGN's broad line is not a
    stellar population); the compiled kernel applies the same bound as the numpy reference."""
    names = [c[0] for c in R.LINE_COMPONENTS if c[2] < R.VERY_BROAD_FWHM] + [c[0] for c in R.CONTINUUM_STEPS]
    k = names.index("Balmer-absorption")
    z = 3.5
    lz = math.log1p(z)
    weak, deep = _balmer_absorbed(z, 5.0), _balmer_absorbed(z, 40.0)
    assert R._solve_at(lz, R._prepare(weak), 0.0)[2][k] > 0
    assert R._solve_at(lz, R._prepare(deep), 0.0)[2][k] == 0
    lnz = lz + np.linspace(-0.02, 0.02, 9)
    if numba_available():
        for spec in (weak, deep):
            d = R._prepare(spec)
            np.testing.assert_allclose(R._chi2_grid(lnz, d, 0.0, "numba"), R._chi2_dense(lnz, d, 0.0), rtol=1e-9)
    monkeypatch.setattr(R, "STELLAR_ABSORPTION_MAX_EW", np.inf)  # without the bound it would be used
    assert R._solve_at(lz, R._prepare(deep), 0.0)[2][k] > 0


@needs_numba
def test_kernel_scalar_interp_is_numpys_to_the_bit():
    # the χ² kernel's one-value interpolation replaces np.interp (its array set-up cost a fifth
    # of the fit): same numbers, bit for bit, at nodes, between them and beyond both ends
    from campfire.tasks._jit import kernels

    k = kernels()
    rng = np.random.default_rng(3)
    xp = np.log(np.exp(np.linspace(-0.9, 1.9, 64)))  # the fit's resolution grid (R._prepare)
    fp = 1.0 / rng.uniform(30, 3000, 64)
    xs = np.concatenate([rng.uniform(-1.2, 2.2, 5000), xp, np.nextafter(xp, 9), np.nextafter(xp, -9)])
    hint = k._bucket_index(xp, xp.size)
    got = np.array([k._interp1(v, xp, fp, hint) for v in xs])
    assert np.array_equal(got, np.interp(xs, xp, fp))
    flat = np.full(64, 0.5)  # equal neighbours: numpy's non-finite fallback is not needed
    assert np.array_equal(np.array([k._interp1(v, xp, flat, hint) for v in xs]), np.interp(xs, xp, flat))


@needs_numba
@pytest.mark.parametrize("nbk", [1, 7, 64, 500])
def test_kernel_search_is_numpys_searchsorted(nbk):
    # the χ² kernel's searches walk from a bucket's start instead of bisecting: numpy's index
    # for either side, at the values, between them, beyond both ends, with repeated values
    # and for any number of buckets (the hint changes the walk, never the answer)
    from campfire.tasks._jit import kernels

    k = kernels()
    rng = np.random.default_rng(5)
    arr = np.sort(np.concatenate([rng.uniform(0.0, 3.0, 300) ** 2, [1.0, 1.0, 1.0, 4.0, 4.0]]))
    vs = np.concatenate([rng.uniform(-1.0, 10.0, 3000), arr, np.nextafter(arr, 99), np.nextafter(arr, -99),
                         [-np.inf, np.inf, np.nan]])
    hint = k._bucket_index(arr, nbk)
    for side in ("left", "right"):
        got = np.array([k._find(arr, v, side == "right", hint) for v in vs])
        assert np.array_equal(got, np.searchsorted(arr, vs, side))


@needs_numba
def test_numpy_engine_gives_same_answer():
    spec = _synthetic(2.7, seed=2)
    a = fit_redshift(spec, z_range=(2.0, 3.5), engine="numba")
    b = fit_redshift(spec, z_range=(2.0, 3.5), engine="numpy")
    assert a["redshift"] == pytest.approx(b["redshift"], rel=1e-9)
    np.testing.assert_allclose(a["chi2_grid"], b["chi2_grid"], rtol=1e-9)


def test_resolving_power():
    r = R.resolving_power(np.array([0.6, 1.15, 5.0]), "PRISM")
    assert 80 <= r[0] <= 100 and r[1] == pytest.approx(30) and r[2] == pytest.approx(300)
    assert R.resolving_power(np.array([4.05]), "G395M")[0] == pytest.approx(1000)


@pytest.mark.parametrize("bad", [(5, 1), (-1, 3), (0, 100), "x", (0, np.nan)])
def test_bad_z_range(bad):
    with pytest.raises(ValidationError, match="z_range"):
        fit_redshift(_synthetic(1.0), z_range=bad)


def test_too_few_pixels():
    with pytest.raises(ValidationError, match="spec"):
        fit_redshift(SpectrumData(np.linspace(1, 2, 5), np.ones(5), np.ones(5)))
    with pytest.raises(ValidationError, match="spec"):
        fit_redshift("not a spectrum")


def test_public_name():
    import campfire

    assert campfire.fit_redshift is fit_redshift


# ------------------------------------------------------------------------------------
# demo archive truth (needs the session fixture ``demo_root`` from tests/conftest.py)
# ------------------------------------------------------------------------------------
@pytest.fixture
def demo(demo_root) -> pathlib.Path:
    return pathlib.Path(demo_root)


def _has_lines(params: dict, z: float, lo: float, hi: float, ew_min: float = 20.0) -> bool:
    """An emission line of rest EW > ew_min Å inside the spectrum's valid range."""
    return any(ew > ew_min and lo < rest * (1 + z) / 1e4 < hi for _, rest, ew, _ in params["lines"])


def test_demo_prism_line_emitters_recovered(demo):
    """> 90% of demo PRISM spectra with S/N > 5 and emission lines (rest EW > 20 Å in range)
    within |Δz|/(1+z) < 0.01 of the truth, fitted blind over z = 0-15 (measured: all of them)."""
    import json
    import sqlite3

    db = sqlite3.connect(f"file:{demo / 'meta' / 'campfire.db'}?mode=ro", uri=True)
    rows = db.execute(
        "select s.fits_path, t.z_true, t.sed_params from spectra s join truth_objects t on t.object_id = s.object_id "
        "where s.grating = 'PRISM' and s.signal_to_noise > 5 order by s.spectrum_id"
    ).fetchall()
    good = total = 0
    for path, z_true, params in rows:
        spec = SpectrumData.from_fits(demo / path)
        w = spec.wavelength[spec.valid]
        if not _has_lines(json.loads(params), z_true, w.min(), w.max()):
            continue
        total += 1
        good += _dz(fit_redshift(spec)["redshift"], z_true) < 0.01
    assert total >= 50
    assert good / total > 0.9, (good, total)


def test_demo_catalog_redshift_auto_is_the_fit(demo):
    """The demo's redshift_auto comes from this fitter (not the truth): re-fitting a file gives
    it back, and the file's primary header carries its 68% interval (ZAUTOLO, ZAUTOHI)."""
    import sqlite3

    from astropy.io import fits

    db = sqlite3.connect(f"file:{demo / 'meta' / 'campfire.db'}?mode=ro", uri=True)
    path, z_auto = db.execute(
        "select fits_path, redshift_auto from spectra where grating = 'PRISM' and redshift_auto is not null "
        "order by signal_to_noise desc limit 1"
    ).fetchone()
    fit = fit_redshift(SpectrumData.from_fits(demo / path))
    assert fit["redshift"] == pytest.approx(z_auto, abs=0.01 * (1 + z_auto))
    header = fits.getheader(demo / path, 0)
    assert header["ZAUTOLO"] == pytest.approx(fit["redshift_lo"], abs=2e-5)
    assert header["ZAUTOHI"] == pytest.approx(fit["redshift_hi"], abs=2e-5)
    assert fits.getheader(demo / path, "ZFIT")["CONFID"] == pytest.approx(fit["confidence"], abs=1e-6)


def _demo_stored_fits(demo: pathlib.Path) -> list[dict]:
    """Every demo spectrum's stored automatic fit (primary header ZAUTO/ZAUTOLO/ZAUTOHI, ZFIT
    CONFID) with its truth: the builder ran this fitter on each (see the test above)."""
    import sqlite3

    from astropy.io import fits

    db = sqlite3.connect(f"file:{demo / 'meta' / 'campfire.db'}?mode=ro", uri=True)
    rows = db.execute(
        "select s.fits_path, s.grating, s.signal_to_noise, s.dq_flags, t.z_true, t.sed_type from spectra s "
        "join truth_objects t on t.object_id = s.object_id where s.redshift_auto is not null order by s.spectrum_id"
    ).fetchall()
    out = []
    for path, grating, snr, flags, z_true, sed_type in rows:
        with fits.open(demo / path) as hdul:
            h, zf = hdul[0].header, hdul["ZFIT"].header
            out.append({"z": h["ZAUTO"], "lo": h["ZAUTOLO"], "hi": h["ZAUTOHI"], "confidence": zf["CONFID"],
                        "grating": grating, "snr": snr or 0.0, "flags": flags, "z_true": z_true, "type": sed_type})
    return out


def test_demo_confidence_can_be_trusted(demo):
    """Among the demo's automatic redshifts (all 460 spectra, every grating and S/N) those with
    confidence ≥ 0.9 have no catastrophic failure (|Δz|/(1+z) > 0.1) and ≥ 98% are within
    0.01; below 0.5 most are wrong. Measured on the small demo: 0 of 286 catastrophic
    (0 of 281 before the paired breaks of issue 17.1; the integ fitter: 4 of 294, one a quiescent galaxy at S/N 15 with confidence 0.94); on
    a third of the full-size demo 1 of 1171 (bench/RESULTS.md)."""
    fits_ = _demo_stored_fits(demo)
    assert len(fits_) >= 400
    dz = np.array([_dz(f["z"], f["z_true"]) for f in fits_])
    conf = np.array([f["confidence"] for f in fits_])
    sure = conf >= 0.9
    assert sure.sum() >= 250
    assert np.all(dz[sure] <= 0.1), [(f["z"], f["z_true"], f["confidence"]) for f, bad in zip(fits_, sure & (dz > 0.1)) if bad]
    assert np.mean(dz[sure] < 0.01) >= 0.98
    assert np.mean(dz[conf < 0.5] < 0.01) < 0.3


def test_demo_interval_covers_the_truth(demo):
    """The 68% interval [redshift_lo, redshift_hi] contains the true redshift for 68% ± 10% of
    the correct (|Δz|/(1+z) < 0.01) PRISM redshifts at S/N > 5 and of all correct redshifts
    (binomial σ ≈ 3–4% for these ~150–330 spectra; measured 65% and 70%). The systematic
    floor, Z_SYS_FRACTION, was set on a third of the full-size demo (69% there; 61% without
    a floor, 83% with the earlier 0.04)."""
    fits_ = [f for f in _demo_stored_fits(demo) if _dz(f["z"], f["z_true"]) < 0.01]
    prism = [f for f in fits_ if f["grating"] == "PRISM" and f["snr"] > 5]
    assert len(prism) >= 100
    for subset in (prism, fits_):
        covered = np.mean([f["lo"] <= f["z_true"] <= f["hi"] for f in subset])
        assert 0.58 <= covered <= 0.78, (covered, len(subset))


def test_demo_quiescent_and_star_forming_recovered(demo):
    """PRISM spectra at S/N > 5, fitted blind over z = 0-15 (every one re-fitted here).

    Star-forming (``sf``): ≥ 95% within |Δz|/(1+z) < 0.01 and ≥ 90% within 0.002 (measured:
    all of them). Quiescent (``qg``: breaks and Balmer absorption only): ≥ 96% within 0.01 and
    ≥ 56% within 0.002 (measured 24/25 and 14/25, as pinned here). Before the fits that emission
    lines hardly shape took the median of p(z) in their well without emission lines
    (``_break_refined``): 22/25 — ember_uds_p4_prism_clear_9956 (S/N 11, chip gap, [O II]
    fitted into its break) +0.0106 → +0.0056, cinder_egs_p2_prism_clear_17234 (S/N 7, off
    centre; C IV and [S III] fitted to noise) −0.0188 → −0.0084; on the full-size demo's
    quiescent galaxies at S/N > 5, 77% → 79% within 0.01 over three noise draws
    (bench/RESULTS.md, stop 30). The issue's 95% / 90% are not reached on the full-size
    demo: fitting each spectrum with its own *true* model (only z and a scale free), the
    Cramér–Rao bound predicts 81% within 0.002 here and 65% (0.01: 96%) on the full-size
    sample (``bench/bench_redshift.py --bound``); with the fitter's free continuum and break
    amplitudes the same bound is 89% / 53% there. The one miss at 0.01 is flagged (chip gap +
    stuck shutter + off-centre).
    """
    import sqlite3

    db = sqlite3.connect(f"file:{demo / 'meta' / 'campfire.db'}?mode=ro", uri=True)
    for sed_type, n_min, ok1, ok2 in (("sf", 40, 0.95, 0.90), ("qg", 15, 0.96, 0.56)):
        rows = db.execute(
            "select s.fits_path, t.z_true from spectra s join truth_objects t on t.object_id = s.object_id "
            "where s.grating = 'PRISM' and t.sed_type = ? and s.signal_to_noise > 5 order by s.spectrum_id", (sed_type,)
        ).fetchall()
        assert len(rows) >= n_min
        dz = np.array([_dz(fit_redshift(SpectrumData.from_fits(demo / p))["redshift"], z) for p, z in rows])
        assert np.mean(dz < 0.01) >= ok1, (sed_type, np.sort(dz)[::-1][:6])
        assert np.mean(dz < 0.002) >= ok2, (sed_type, np.sort(dz)[::-1][:6])


def _blas_threads() -> int:
    from threadpoolctl import threadpool_info

    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


def test_fit_runs_blas_on_one_thread_in_the_main_thread_and_gives_its_count_back(monkeypatch):
    # one thread: the archive's bits on any machine and no spinning BLAS threads (campfire.tasks._blas)
    import threading

    from threadpoolctl import threadpool_limits

    seen = []
    fit = R._fit
    monkeypatch.setattr(R, "_fit", lambda *a: (seen.append(_blas_threads()), fit(*a))[1])
    spec = _synthetic(3.1)
    with threadpool_limits(2, user_api="blas"):
        assert _blas_threads() == 2
        assert abs(fit_redshift(spec)["redshift"] - 3.1) < 0.01
        assert _blas_threads() == 2
        # from another thread nothing is set (OpenBLAS would ignore it there)
        worker = threading.Thread(target=fit_redshift, args=(spec,))
        worker.start()
        worker.join()
    assert seen == [1, 2]


def test_the_model_is_drawn_from_the_components_of_non_zero_amplitude_only():
    """fit_redshift's model computes the line columns of its kept components only (``only=``):
    the same model to the bit as from every component's column."""
    d = R._prepare(_synthetic(2.5))
    lz = math.log1p(2.5)
    _, _, amps, _ = R._solve_at(lz, d, 0.0)
    xa = np.log(d.wave_all)
    args = (lz, xa, *d.x_all_edges, d.res_x, d.res_sig, 0.0, d.tables)
    every, _ = R._line_columns(*args, truncate=False)
    kept, _ = R._line_columns(*args, truncate=False, only=amps != 0)
    assert np.count_nonzero(amps) >= 3
    assert np.any(every[:, amps == 0] != 0)  # components on the pixels that the fit did not keep ...
    assert not np.any(kept[:, amps == 0])  # ... are not computed
    np.testing.assert_array_equal(kept[:, amps != 0], every[:, amps != 0])
    np.testing.assert_array_equal(kept @ amps, every @ amps)


@pytest.mark.parametrize("grating", ["PRISM", "G395M"])
def test_the_kernels_suffix_sums_are_the_dense_cumulative_sums_to_the_bit(grating):
    """``_kernel_inputs`` builds Σ_{i≥j} w C_p C_q from each row's B-spline window and sums along a
    contiguous axis: the bytes of the dense definition (every product, a reversed cumsum)."""
    d = R._prepare(_synthetic(3.2, grating))
    cidx, _, nc, pcc, pcy, _, sw, sy, sc, _, pcp, *_ = R._kernel_inputs(d)

    def suffix(terms):
        out = np.zeros((terms.shape[0] + 1,) + terms.shape[1:])
        out[:-1] = np.cumsum(terms[::-1], axis=0)[::-1]
        return out

    band = np.arange(-3, 4)
    q = np.arange(nc)[:, None] + band
    wc = d.w[:, None] * d.cont
    dense = wc[:, :, None] * np.where((q >= 0) & (q < nc), d.cont[:, np.clip(q, 0, nc - 1)], 0.0)
    assert np.count_nonzero(dense) < dense.size / 3  # sparse: each row's window only
    expected = [suffix(dense), suffix(wc * d.y[:, None]), suffix(d.w), suffix(d.w * d.y), suffix(wc),
                suffix(wc[:, :, None] * d.ped[:, None, :])]
    for got, want in zip([pcc, pcy, sw, sy, sc, pcp], expected):
        assert got.shape == want.shape
        assert got.tobytes() == want.tobytes()
