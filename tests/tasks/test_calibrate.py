"""Calibration against photometry: recovery of an injected slit loss (synthetic and demo
truth), the flat method, band selection, degree lowering, errors; calibrate_and_stack."""
from __future__ import annotations

import pathlib
import sqlite3

import numpy as np
import pytest

from campfire.bands import get_band
from campfire.errors import ValidationError
from campfire.models import CalibrateAndStackResult, CalibrationResult, Photometry, Spectrum, SpectrumCollection, SpectrumData
from campfire.calibration import calibrate_and_stack  # the public one: a graph, computed now
from campfire.calibration import calibrate_to_photometry  # the public one: also opens Spectrum rows
from campfire.tasks.calibrate import select_bands
from campfire.tasks.synphot import synthetic_photometry

BANDS = ["f606w", "f814w", "f125w", "f160w", "f150w", "f277w", "f356w", "f444w"]  # the demo's UVCANDELS set
WAVE = np.exp(np.linspace(np.log(0.6), np.log(5.3), 1024))


def _sed(w):
    """A smooth galaxy-like SED with a break and a line or two."""
    f = 0.3 * (w / 1.0) ** 0.4 * (1 + 1.5 / (1 + np.exp(-(w - 1.6) / 0.05)))
    f += 2.0 * np.exp(-0.5 * ((w - 2.9) / 0.01) ** 2)
    return f


def _photometry(sed_fn, bands=BANDS, rel_err=0.02, seed=None):
    fine = np.exp(np.linspace(np.log(0.3), np.log(5.6), 20000))
    true = np.array([synthetic_photometry(fine, sed_fn(fine), np.full(fine.size, 1e-6), b)[0] for b in bands])
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, rel_err, true.size) * true if seed is not None else 0.0
    return Photometry(bands, true + noise, rel_err * np.abs(true), [get_band(b).pivot for b in bands], catalog="T")


def _loss(w, a=0.45, b=-0.06, c=0.01):
    """A smooth slit loss falling to the red (captured fraction)."""
    x = np.log(w)
    return a + b * x + c * x**2


def _observed(loss, snr=30.0, seed=0, wave=WAVE):
    rng = np.random.default_rng(seed)
    model = _sed(wave) * loss(wave)
    err = np.full(wave.size, np.median(model) / snr)
    return SpectrumData(wave, model + rng.normal(0, 1, wave.size) * err, err, spectrum_id=f"s{seed}", grating="PRISM")


def _rms_recovery(result, loss):
    """rms of (multiplier × loss − 1) over the range the used bands cover."""
    lo = min(get_band(b).support()[0] for b in result.bands_used)
    hi = max(get_band(b).support()[1] for b in result.bands_used)
    w = result.original.wavelength
    sel = (w >= lo) & (w <= hi)
    return float(np.sqrt(np.mean((result.multiplier[sel] * loss(w[sel]) - 1.0) ** 2)))


@pytest.mark.parametrize("seed", range(5))
def test_chebyshev_recovers_injected_slit_loss(seed):
    phot = _photometry(_sed, seed=100 + seed)  # photometry with 2% noise, like a real catalog
    result = calibrate_to_photometry(_observed(_loss, seed=seed), phot)
    assert isinstance(result, CalibrationResult)
    assert result.degree <= 3 and len(result.bands_used) >= 6
    assert _rms_recovery(result, _loss) < 0.03
    # precise photometry (0.2%): every coefficient is significant, degree 3 is used and the
    # method itself recovers the curve far better than that
    exact = calibrate_to_photometry(_observed(_loss, seed=seed, snr=300), _photometry(_sed, rel_err=0.002))
    assert exact.degree == 3
    assert _rms_recovery(exact, _loss) < 0.005


BORG = "/work/shared/data/real/spectra/dja_v4/borg-v4_prism-clear_1747_732.spec.fits"
NIRCAM8 = ["f090w", "f115w", "f150w", "f200w", "f277w", "f356w", "f410m", "f444w"]


@pytest.mark.parametrize("shape", ["quadratic", "ramp"])
def test_real_prism_spectrum_recovers_a_curved_slit_loss(shape):
    """Issue 17.6 on the real BoRG PRISM spectrum (z ≈ 8.2: f090w is below the break, 7 bands
    usable): a slit loss L(x) injected (x: the scaled wavelength over its valid range) and
    synthetic NIRCam photometry of the unscaled spectrum quoted at 3 %. Exact photometry:
    multiplier × L − 1 < 1 % rms over the bands' span (measured 0.32 % quadratic, 0.18 % ramp;
    the χ²-only rule kept a line: 3.4 %, 1.5 %). Noisy 3 % photometry, 7–8 bands given: median
    and mean over 200 draws ≤ 3 % (measured 2.2–2.5 %; before 3.6–3.7 % for the quadratic)."""
    spec = SpectrumData.from_fits(BORG)
    w = spec.wavelength
    lo, hi = w[spec.valid].min(), w[spec.valid].max()
    x = (w - lo) / (hi - lo)
    loss = 0.6 + 0.5 * x - 0.35 * x**2 if shape == "quadratic" else 0.5 + 0.3 * x
    obs = spec.copy(fnu=spec.fnu * loss, fnu_err=spec.fnu_err * loss)
    true = {b: synthetic_photometry(w, spec.fnu, spec.fnu_err, b)[0] for b in NIRCAM8}

    def span_rms(result):
        blo = min(get_band(b).support()[0] for b in result.bands_used)
        bhi = max(get_band(b).support()[1] for b in result.bands_used)
        sel = (w >= blo) & (w <= bhi)
        return float(np.sqrt(np.mean((result.multiplier[sel] * loss[sel] - 1) ** 2)))

    def phot(bands, noise=None):
        t = np.array([true[b] for b in bands])
        f = t if noise is None else t * (1 + 0.03 * noise.normal(size=t.size))
        return Photometry(bands, f, 0.03 * t, [get_band(b).pivot for b in bands])

    exact = calibrate_to_photometry(obs, phot(NIRCAM8))
    assert "f090w" in exact.rejected and len(exact.bands_used) == 7
    assert exact.degree == 2 and span_rms(exact) < 0.01
    rng = np.random.default_rng(1)
    noisy = [span_rms(calibrate_to_photometry(obs, phot(NIRCAM8 if i % 2 == 0 else
                                                        [b for b in NIRCAM8 if b != NIRCAM8[1 + (i // 2) % 7]], rng)))
             for i in range(200)]
    assert np.median(noisy) <= 0.03 and np.mean(noisy) <= 0.03, (np.median(noisy), np.mean(noisy))


def test_flat_recovers_a_constant():
    phot = _photometry(_sed)
    for const in (0.3, 0.62, 1.7):
        result = calibrate_to_photometry(_observed(lambda w: np.full(w.shape, const), seed=3), phot, method="flat")
        assert result.degree == 0 and result.method == "flat"
        assert np.ptp(result.multiplier) == 0
        assert result.multiplier[0] == pytest.approx(1 / const, rel=0.01)


def test_result_fields_and_calibrated_photometry_matches():
    phot = _photometry(_sed)
    spec = _observed(_loss, seed=1, snr=200)
    result = calibrate_to_photometry(spec, phot)
    assert result.original is spec and result.spectrum is not spec
    assert result.multiplier.shape == spec.wavelength.shape
    np.testing.assert_allclose(result.spectrum.fnu, spec.fnu * result.multiplier)
    np.testing.assert_allclose(result.spectrum.fnu_err, spec.fnu_err * result.multiplier)
    np.testing.assert_allclose(result.evaluate(spec.wavelength), result.multiplier)
    for b in result.bands_used:
        synth = synthetic_photometry(spec.wavelength, result.spectrum.fnu, result.spectrum.fnu_err, b)[0]
        assert synth == pytest.approx(phot[b].flux, rel=0.01)
    assert set(result.ratios) == set(result.bands_used)
    assert result.spectrum.meta["calibration"]["bands"] == result.bands_used
    assert result.photometry is phot and "CalibrationResult(" in repr(result)


def test_band_selection_and_degree_lowering():
    # a spectrum over 3.0-4.6 μm fully covers f356w and f410m, not f444w (to 5.14 μm) or f150w
    w = np.linspace(3.0, 4.6, 1000)
    spec = SpectrumData(w, np.ones(w.size), np.full(w.size, 0.01), spectrum_id="g395m")
    phot = Photometry(["f356w", "f410m", "f444w", "f150w"], [2.0, 2.5, 2.0, 2.0], [0.01, 0.01, 0.1, 0.1],
                      [3.56, 4.08, 4.40, 1.50])
    used, why = select_bands(spec, phot)
    assert used == ["f356w", "f410m"]
    assert "not fully covered" in why["f444w"] and "not fully covered" in why["f150w"]
    result = calibrate_to_photometry(spec, phot, degree=3)
    assert result.degree == 1  # two bands: degree lowered to 1 (documented)
    for b, want in (("f356w", 2.0), ("f410m", 2.5)):
        synth = synthetic_photometry(w, result.spectrum.fnu, result.spectrum.fnu_err, b)[0]
        assert synth == pytest.approx(want, rel=1e-6)
    # an insignificant slope is not fitted: the penalised choice keeps a constant
    loose = Photometry(["f356w", "f410m"], [2.0, 2.05], [0.2, 0.2], [3.56, 4.08])
    assert calibrate_to_photometry(spec, loose).degree == 0
    # S/N cut
    low = Photometry(["f356w", "f410m"], [2.0, 2.0], [10.0, 0.1], [3.56, 4.08])
    assert calibrate_to_photometry(spec, low).bands_used == ["f410m"]
    assert calibrate_to_photometry(spec, low, min_snr=0.1).bands_used == ["f356w", "f410m"]
    # an explicit band list restricts the candidates
    assert calibrate_to_photometry(spec, phot, bands=["f410m"]).bands_used == ["f410m"]


def test_no_usable_band_raises_with_reasons():
    w = np.linspace(2.87, 5.27, 1400)
    spec = SpectrumData(w, np.ones(w.size), np.full(w.size, 0.05))
    phot = Photometry(["f150w", "irac1"], [1.0, 1.0], [0.1, 0.1], [1.5, 3.6])
    with pytest.raises(ValidationError, match=r"bands: no usable band.*irac1: no transmission curve.*f150w: not fully covered"):
        calibrate_to_photometry(spec, phot)
    with pytest.raises(ValidationError, match="not in the photometry"):
        calibrate_to_photometry(spec, phot, bands=["f444w"])


def test_positivity_guard_lowers_the_degree():
    # two bands close together at the red end, spectrum from 0.6 μm: a steep line through
    # them would go negative in the blue, so the degree drops to a constant
    spec = _observed(lambda w: np.ones(w.shape), seed=2, snr=100)
    fine = np.exp(np.linspace(np.log(0.3), np.log(5.6), 20000))
    flux = [synthetic_photometry(fine, _sed(fine), np.full(fine.size, 1e-6), b)[0] for b in ("f410m", "f444w")]
    phot = Photometry(["f410m", "f444w"], [flux[0] * 0.5, flux[1] * 2.0], [0.01, 0.01], [4.08, 4.40])
    result = calibrate_to_photometry(spec, phot)
    assert result.degree == 0 and np.all(result.multiplier > 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"method": "spline"}, "method"), ({"degree": -1}, "degree"), ({"degree": 2.5}, "degree"),
     ({"min_snr": "x"}, "min_snr"), ({"min_snr": -1}, "min_snr")],
)
def test_parameter_validation(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        calibrate_to_photometry(_observed(_loss), _photometry(_sed), **kwargs)


def test_bad_inputs():
    with pytest.raises(ValidationError, match="photometry"):
        calibrate_to_photometry(_observed(_loss), None)
    with pytest.raises(ValidationError, match="spec"):
        calibrate_to_photometry("spec", _photometry(_sed))


def test_accepts_spectrum_rows_and_is_fast():
    import time

    data = _observed(_loss, seed=4)
    row = Spectrum("s4", grating="PRISM", _opener=lambda _: data)
    phot = _photometry(_sed)
    assert calibrate_to_photometry(row, phot).original is data
    times = []
    for _ in range(30):
        t0 = time.perf_counter()
        calibrate_to_photometry(data, phot)
        times.append(time.perf_counter() - t0)
    assert np.median(times) < 0.05  # the target is < 5 ms (bench/); generous here for loaded CI machines


@pytest.mark.parametrize("kind", ["collection", "rows", "data"])
def test_calibrate_and_stack(kind):
    phot = _photometry(_sed)
    losses = [lambda w, s=s: s * _loss(w) for s in (0.8, 1.0, 1.3)]
    datas = [_observed(loss, seed=i, snr=40) for i, loss in enumerate(losses)]
    rows = [Spectrum(d.spectrum_id, grating="PRISM", _opener=lambda _, d=d: d) for d in datas]
    spectra = {"collection": SpectrumCollection(rows), "rows": rows, "data": datas}[kind]
    result = calibrate_and_stack(spectra, photometry=phot, object_id="obj1")
    assert isinstance(result, CalibrateAndStackResult)
    assert len(result.calibrations) == 3 and len(result.input_spectra) == 3
    assert result.spectrum.object_id == "obj1" and np.all(result.spectrum.count[5:-5] == 3)
    # every input is calibrated onto the photometry, so the stack matches the true SED
    sel = (WAVE > 0.7) & (WAVE < 5.0)
    np.testing.assert_allclose(np.median(result.spectrum.fnu[sel] / _sed(WAVE[sel])), 1.0, atol=0.02)
    for cal, loss in zip(result.calibrations, losses):
        assert _rms_recovery(cal, loss) < 0.03
    with pytest.raises(ValidationError, match="photometry"):
        calibrate_and_stack(datas)
    with pytest.raises(ValidationError, match="method"):
        calibrate_and_stack(datas, phot, stacking_method="max")


def test_public_names():
    import campfire
    import campfire.calibration as cal

    for name in ("calibrate_to_photometry", "calibrate_and_stack", "stack_spectra", "CalibrationResult",
                 "synthetic_photometry", "resample_flux"):
        assert getattr(campfire, name) is getattr(cal, name)


# ------------------------------------------------------------------------------------
# demo archive truth (needs the session fixture ``demo_root`` from tests/conftest.py)
# ------------------------------------------------------------------------------------
@pytest.fixture
def demo(demo_root) -> pathlib.Path:
    return pathlib.Path(demo_root)


def test_demo_chebyshev_recovers_injected_slit_loss(demo):
    """Demo PRISM spectra with S/N > 10, photometry, and no additive contamination or
    background residual (those are not multiplicative: flags 2, 8): multiplier × injected
    slit loss = 1 to < 3% rms over the bands used (rms at the band pivots, weighted by each
    band's ratio precision) for ≥ 90% of them (measured on demo v3: 93% with the degree rule of
    issue 17.6, 91% with the χ²-only rule before it; median 1.8%), and a median < 2.5% over
    the whole wavelength span of those bands (measured 2.2%, before 2.5%; the catalog's ≥ 2%
    photometric errors and faint blue bands of red objects set that floor)."""
    from campfire.demo import truth
    from campfire.models import SpectrumData

    db = sqlite3.connect(f"file:{demo / 'meta' / 'campfire.db'}?mode=ro", uri=True)
    rows = db.execute(
        "select s.spectrum_id, s.object_id, s.fits_path from spectra s "
        "where s.grating = 'PRISM' and s.signal_to_noise > 10 and s.dq_flags & (2 | 8) = 0 order by s.spectrum_id"
    ).fetchall()
    phot_rows = {}
    for oid, band, flux, err in db.execute("select object_id, band, flux, flux_err from photometry"):
        phot_rows.setdefault(oid, []).append((band, flux, err))
    at_bands, over_span = [], []
    for sid, oid, path in rows:
        if oid not in phot_rows:
            continue
        bands, flux, err = zip(*phot_rows[oid])
        phot = Photometry(list(bands), flux, err, [get_band(b).pivot for b in bands])
        spec = SpectrumData.from_fits(demo / path)
        try:
            result = calibrate_to_photometry(spec, phot)
        except ValidationError:
            continue
        loss = truth.spectrum_truth(demo, sid)["slitloss"]
        ok = np.isfinite(loss)
        pivots = np.array([get_band(b).pivot for b in result.bands_used])
        ratio, ratio_err = np.array([result.ratios[b] for b in result.bands_used]).T
        weight = (ratio / ratio_err) ** 2
        resid = result.evaluate(pivots) * np.interp(pivots, spec.wavelength[ok], loss[ok]) - 1
        at_bands.append(np.sqrt(np.sum(weight * resid**2) / np.sum(weight)))
        lo = min(get_band(b).support()[0] for b in result.bands_used)
        hi = max(get_band(b).support()[1] for b in result.bands_used)
        sel = (spec.wavelength >= lo) & (spec.wavelength <= hi) & ok
        over_span.append(np.sqrt(np.mean((result.multiplier[sel] * loss[sel] - 1) ** 2)))
    at_bands, over_span = np.array(at_bands), np.array(over_span)
    assert at_bands.size >= 20
    assert np.mean(at_bands < 0.03) >= 0.9, np.sort(at_bands)[-8:]
    assert np.median(over_span) < 0.025


def test_demo_flat_recovers_a_constant(demo):
    """A constant injected into a demo spectrum's *true* model (no slit loss) comes back to 1%."""
    from campfire.demo import truth
    from campfire.models import SpectrumData

    db = sqlite3.connect(f"file:{demo / 'meta' / 'campfire.db'}?mode=ro", uri=True)
    sid, oid, path = db.execute(
        "select s.spectrum_id, s.object_id, s.fits_path from spectra s join photometry p on p.object_id = s.object_id "
        "where s.grating = 'PRISM' and s.signal_to_noise > 10 order by s.signal_to_noise desc limit 1"
    ).fetchone()
    spec = SpectrumData.from_fits(demo / path)
    model = truth.spectrum_truth(demo, sid)["model"]
    true_phot = dict(db.execute("select band, flux_true from truth_photometry where object_id = ?", (oid,)).fetchall())
    bands = list(true_phot)
    phot = Photometry(bands, [true_phot[b] for b in bands], [0.02 * abs(true_phot[b]) for b in bands],
                      [get_band(b).pivot for b in bands])
    fake = spec.copy(fnu=np.where(np.isfinite(spec.fnu), 0.37 * model, np.nan))
    result = calibrate_to_photometry(fake, phot, method="flat")
    assert result.multiplier[0] == pytest.approx(1 / 0.37, rel=0.01)
