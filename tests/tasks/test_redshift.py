"""fit_redshift: real spectra with known redshifts, the compiled kernel against its numpy
reference, the result structure, and (when the demo archive exists) recovery of demo truth."""
from __future__ import annotations

import math
import pathlib

import numpy as np
import pytest

from campfire.errors import ValidationError
from campfire.models import SpectrumData
from campfire.tasks import redshift as R
from campfire.tasks._jit import numba_available
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
    assert list(fit) == ["redshift", "chi2_min", "confidence", "z_grid", "chi2_grid", "model_wave", "model_fnu"]
    assert isinstance(fit["redshift"], float) and 3.0 <= fit["redshift"] <= 6.0
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


def _quiescent(z, seed=0, snr=30.0):
    """A line-less quiescent continuum: red power law with a Balmer break (×2 at 3680 Å) and a
    4000 Å break (×1.4 at 3990 Å), edges close to but not at the fitter's step templates."""
    from scipy.special import ndtr

    rng = np.random.default_rng(seed)
    wave = np.exp(np.arange(np.log(0.6), np.log(5.3), 1 / 320))
    rest = wave * 1e4 / (1 + z)
    cont = (rest / 4000.0) ** 1.2 * (1 + ndtr((rest - 3680.0) / 45.0)) * (1 + 0.4 * ndtr((rest - 3990.0) / 60.0))
    cont = np.where(wave < 0.1216 * (1 + z), 0.0, 0.5 * cont / np.interp(4.0, wave, cont))
    err = np.full(wave.size, 0.5 / snr)
    return SpectrumData(wave, cont + rng.normal(0, err), err, grating="PRISM")


@pytest.mark.parametrize("z", [3.3, 4.1, 5.0])
def test_synthetic_quiescent_recovered(z):
    # the Balmer / 4000 Å break alone gives the redshift (before the continuum steps: 0 of these 9)
    for seed in range(3):
        fit = fit_redshift(_quiescent(z, seed=seed))
        assert _dz(fit["redshift"], z) < 0.01, (seed, fit["redshift"])


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
    """The demo's redshift_auto comes from this fitter (not the truth): re-fitting a file gives it back."""
    import sqlite3

    db = sqlite3.connect(f"file:{demo / 'meta' / 'campfire.db'}?mode=ro", uri=True)
    path, z_auto = db.execute(
        "select fits_path, redshift_auto from spectra where grating = 'PRISM' and redshift_auto is not null "
        "order by signal_to_noise desc limit 1"
    ).fetchone()
    assert fit_redshift(SpectrumData.from_fits(demo / path))["redshift"] == pytest.approx(z_auto, abs=0.01 * (1 + z_auto))


def test_demo_quiescent_recovered(demo):
    """Line-less quiescent galaxies (demo type ``qg``: Balmer + 4000 Å breaks, Balmer absorption):
    ≥ 70% of the PRISM spectra within |Δz|/(1+z) < 0.01 of the truth, fitted blind over z = 0-15.

    Measured: 20 of 25 (before the continuum steps and the per-component penalty: 0 of 25,
    the breaks were filled in with emission lines at wrong redshifts). Of the 5 misses, 4 are flagged spectra (a
    chip gap over the break, bad background, off-centre at S/N 7); the clean one confuses
    the Balmer with the 4000 Å break (Δz/(1+z) ≈ 0.07), only one of them being significant.
    """
    import sqlite3

    db = sqlite3.connect(f"file:{demo / 'meta' / 'campfire.db'}?mode=ro", uri=True)
    rows = db.execute(
        "select s.fits_path, t.z_true from spectra s join truth_objects t on t.object_id = s.object_id "
        "where s.grating = 'PRISM' and t.sed_type = 'qg' and s.signal_to_noise > 5 order by s.spectrum_id"
    ).fetchall()
    assert len(rows) >= 15
    good = sum(_dz(fit_redshift(SpectrumData.from_fits(demo / p))["redshift"], z) < 0.01 for p, z in rows)
    assert good / len(rows) >= 0.7, (good, len(rows))
