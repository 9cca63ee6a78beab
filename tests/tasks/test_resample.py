"""Flux-conserving resampling: against spectres, flux conservation, error propagation,
bad-pixel exclusion, batching over own grids, the C, numba and numpy paths (the C and numba
kernels agree bit for bit: test_resample_c.py)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import spectres

from campfire.errors import ValidationError
from campfire.models import SpectrumData
from campfire.tasks._jit import c_available, numba_available
from campfire.tasks.resample import bin_edges, resample_batch, resample_flux, resample_spectrum


ENGINES = ["numpy"] + (["numba"] if numba_available() else []) + (["c"] if c_available() else [])
RTOL = 1e-8  # the contract: agree with spectres to 1e-8 relative wherever both are defined


def _spectres(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spectres.spectres(*args, fill=np.nan, verbose=False, **kwargs)


def _random_case(rng, n_rows=1, scale=1.0, centred=False):
    n, m = rng.integers(4, 400), rng.integers(3, 400)
    old = np.unique(rng.uniform(1.0, 5.0, n))
    new = np.unique(rng.uniform(0.8, 5.2, m))
    mean = 0.0 if centred else 1.0
    flux = (mean + rng.normal(0, 1, (n_rows, old.size))) * scale
    err = np.abs(rng.normal(1, 0.3, flux.shape)) * scale
    return new, old, flux, err


def _ref(new, old, flux, err, min_cov=0.5):
    """Slow, obvious reference: explicit overlaps, bad pixels dropped."""
    oe, _ = bin_edges(old)
    ne, _ = bin_edges(new)
    good = np.isfinite(flux) & np.isfinite(err) & (err > 0)
    out_f = np.full(new.size, np.nan)
    out_e = np.full(new.size, np.nan)
    for j in range(new.size):
        a, b = ne[j], ne[j + 1]
        if a < oe[0] or b > oe[-1]:
            continue
        o = np.clip(np.minimum(b, oe[1:]) - np.maximum(a, oe[:-1]), 0, None)
        og = o * good
        if og.sum() > 0 and og.sum() >= min_cov * o.sum():
            out_f[j] = np.sum(og * np.where(good, flux, 0)) / og.sum()
            out_e[j] = np.sqrt(np.sum((og * np.where(good, err, 0)) ** 2)) / og.sum()
    return out_f, out_e


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", ["ordinary", "tiny", "near_zero", "huge"])
def test_matches_spectres_random_grids(engine, kind):
    rng = np.random.default_rng({"ordinary": 1, "tiny": 2, "near_zero": 3, "huge": 4}[kind])
    scale = {"ordinary": 1.0, "tiny": 1e-20, "near_zero": 1e-3, "huge": 1e12}[kind]
    for _ in range(60):
        new, old, flux, err = _random_case(rng, n_rows=1, scale=scale, centred=kind == "near_zero")
        sf, se = _spectres(new, old, flux[0], err[0])
        rf, re = resample_flux(new, old, flux[0], err[0], engine=engine)
        # defined in the same places, equal there to 1e-8 relative (pointwise: near zero too)
        np.testing.assert_array_equal(np.isnan(rf), np.isnan(sf))
        ok = ~np.isnan(sf)
        np.testing.assert_allclose(rf[ok], sf[ok], rtol=RTOL, atol=0)
        np.testing.assert_allclose(re[ok], se[ok], rtol=RTOL, atol=0)


@pytest.mark.parametrize("engine", ENGINES)
def test_matches_spectres_2d(engine):
    rng = np.random.default_rng(7)
    for _ in range(20):
        new, old, flux, err = _random_case(rng, n_rows=5, centred=True)
        sf, se = _spectres(new, old, flux, err)
        rf, re = resample_flux(new, old, flux, err, engine=engine)
        assert rf.shape == (5, new.size)
        ok = ~np.isnan(sf)
        np.testing.assert_allclose(rf[ok], sf[ok], rtol=RTOL, atol=0)
        np.testing.assert_allclose(re[ok], se[ok], rtol=RTOL, atol=0)
        # 3D leading shape, no errors
        f3 = flux.reshape(5, 1, -1)
        np.testing.assert_allclose(resample_flux(new, old, f3, engine=engine)[:, 0][ok], sf[ok], rtol=RTOL)


@pytest.mark.parametrize("engine", ENGINES)
def test_flux_is_conserved(engine):
    rng = np.random.default_rng(11)
    old = np.cumsum(rng.uniform(0.5, 1.5, 300)) * 0.01 + 1.0
    oe, ow = bin_edges(old)
    flux = rng.lognormal(0, 1, old.size)
    new = np.sort(rng.uniform(1.2, old[-1] - 0.2, 60))
    nedges, _ = bin_edges(new)
    rf = resample_flux(new, old, flux, engine=engine)
    lo, hi = nedges[0], nedges[-1]
    overlap = np.clip(np.minimum(hi, oe[1:]) - np.maximum(lo, oe[:-1]), 0, None)
    np.testing.assert_allclose(np.sum(rf * np.diff(nedges)), np.sum(overlap * flux), rtol=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_bad_pixels_excluded(engine):
    rng = np.random.default_rng(5)
    old = np.linspace(1.0, 2.0, 201)
    flux = rng.normal(1, 0.1, old.size)
    err = np.full(old.size, 0.1)
    flux[50] = np.nan  # NaN flux (DJA v4)
    flux[80] = err[80] = 0.0  # flux = err = 0 (older msaexp)
    err[120] = np.inf  # zero weight
    flux[150:160] = np.nan  # a gap
    new = np.linspace(1.01, 1.99, 57)
    for min_cov in (0.0, 0.5, 1.0):
        rf, re = resample_flux(new, old, flux, err, min_coverage=min_cov, engine=engine)
        ef, ee = _ref(new, old, flux, err, min_cov)
        np.testing.assert_array_equal(np.isnan(rf), np.isnan(ef))
        ok = np.isfinite(ef)
        np.testing.assert_allclose(rf[ok], ef[ok], rtol=1e-12)
        np.testing.assert_allclose(re[ok], ee[ok], rtol=1e-12)
    # the gap (10 px of 5 mm each = 0.05) swallows whole output bins (width ~0.0175) at 0.5
    rf = resample_flux(new, old, flux, err, engine=engine)[0]
    gap = (new > old[151]) & (new < old[158])
    assert np.all(np.isnan(rf[gap])) and np.isfinite(rf[~gap & (new < 1.7)]).sum() > 0
    # no bad pixel contaminates a value
    assert np.all(np.isnan(rf) | (np.abs(rf - 1) < 0.5))


@pytest.mark.parametrize("engine", ENGINES)
def test_fill_and_range(engine):
    old = np.linspace(1, 2, 11)
    new = np.array([0.5, 1.5, 2.5])
    rf, re = resample_flux(new, old, np.ones(11), np.ones(11), fill=-99.0, engine=engine)
    assert rf[0] == -99 and rf[2] == -99 and rf[1] == pytest.approx(1.0)
    assert re[0] == -99


@pytest.mark.parametrize("engine", ENGINES)
def test_batch_own_grids_equals_one_by_one(engine):
    rng = np.random.default_rng(3)
    new = np.linspace(1.2, 4.8, 150)
    ws, fs, es = [], [], []
    for i in range(25):
        n = rng.integers(50, 400)
        w = np.sort(rng.uniform(1.0, 5.0, n))
        f = rng.normal(0, 1, n)
        e = rng.uniform(0.5, 1.5, n)
        f[rng.integers(0, n, 3)] = np.nan
        ws.append(w), fs.append(f), es.append(e)
    bf, be = resample_batch(new, ws, fs, es, engine=engine)
    for i in range(25):
        rf, re = resample_flux(new, ws[i], fs[i], es[i], engine="numpy")
        np.testing.assert_allclose(bf[i], rf, rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(be[i], re, rtol=1e-12, equal_nan=True)
    # 2D input (equal lengths, own grids) and no errors
    W = np.array([np.sort(rng.uniform(1.0, 5.0, 80)) for _ in range(6)])
    F = rng.normal(0, 1, W.shape)
    bf2, be2 = resample_batch(new, W, F, engine=engine)
    assert be2 is None
    for i in range(6):
        np.testing.assert_allclose(bf2[i], resample_flux(new, W[i], F[i], engine="numpy"), rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("engine", ENGINES)
def test_batch_rejects_bad_grid(engine):
    ws = [np.linspace(1, 2, 10), np.linspace(2, 1, 10)]
    with pytest.raises(ValidationError, match=r"wavelengths\[1\]"):
        resample_batch(np.linspace(1.2, 1.8, 5), ws, [np.ones(10)] * 2, engine=engine)


def test_validation():
    w = np.linspace(1, 2, 10)
    with pytest.raises(ValidationError, match="new_wavelength"):
        resample_flux(w[::-1], w, np.ones(10))
    with pytest.raises(ValidationError, match="flux"):
        resample_flux(w, w, np.ones(9))
    with pytest.raises(ValidationError, match="flux_err"):
        resample_flux(w, w, np.ones(10), np.ones(9))
    with pytest.raises(ValidationError, match="min_coverage"):
        resample_flux(w, w, np.ones(10), min_coverage=2)
    with pytest.raises(ValidationError, match="engine"):
        resample_flux(w, w, np.ones(10), engine="fortran")


def test_resample_spectrum_keeps_identity():
    w = np.linspace(1, 2, 101)
    spec = SpectrumData(w, np.ones(101), np.full(101, 0.1), spectrum_id="x", grating="PRISM", meta={"a": 1})
    out = resample_spectrum(spec, np.linspace(1.1, 1.9, 41))  # (SpectrumData.resample was this function)
    assert out.spectrum_id == "x" and out.grating == "PRISM" and out.meta["a"] == 1
    np.testing.assert_allclose(out.fnu, 1.0)
    # each new bin: half, whole, half an input pixel → σ = 0.1·√1.5 / 2
    np.testing.assert_allclose(out.fnu_err, 0.1 * np.sqrt(1.5) / 2, rtol=1e-12)
    assert spec.wavelength.size == 101  # input untouched
    stacked = spec.copy(count=np.full(101, 3))
    assert np.all(resample_spectrum(stacked, np.linspace(1.1, 1.9, 41)).count == 3)


def test_public_name():
    import campfire

    assert campfire.resample_flux is resample_flux


def test_per_call_path_equals_general_path_and_names_problems():
    # resample_flux of one 1D float64 spectrum takes one compiled call that checks the grids
    # and lengths itself (issue 16.4): the same numbers, bit for bit, as the general path
    # (a 2D flux), and every problem still reaches the general path's message
    rng = np.random.default_rng(12)
    for _ in range(30):
        new, old, flux, err = _random_case(rng)
        flux[0, rng.integers(0, old.size, 5)] = np.nan
        for mc, fill in ((0.5, np.nan), (0.0, -1.0), (1.0, 0.0)):
            f1, e1 = resample_flux(new, old, flux[0], err[0], fill, min_coverage=mc)
            f2, e2 = resample_flux(new, old, flux, err, fill, min_coverage=mc)
            assert np.array_equal(f1, f2[0], equal_nan=True) and np.array_equal(e1, e2[0], equal_nan=True)
            assert np.array_equal(resample_flux(new, old, flux[0], fill=fill, min_coverage=mc),
                                  resample_flux(new, old, flux, fill=fill, min_coverage=mc)[0], equal_nan=True)
    w = np.linspace(1, 2, 10)
    for bad, name, what in ((np.r_[w[:5], np.nan, w[6:]], "wavelength", "finite"),
                            (np.r_[w[:9], np.inf], "wavelength", "finite"),
                            (np.r_[w[:5], w[4], w[6:]], "wavelength", "increase")):
        with pytest.raises(ValidationError, match=f"^{name}: .*{what}"):
            resample_flux(w, bad, np.ones(10))
        with pytest.raises(ValidationError, match=f"^new_{name}: .*{what}"):
            resample_flux(bad, w, np.ones(10))
    with pytest.raises(ValidationError, match="^flux: the last axis"):
        resample_flux(w, w, np.ones(11), np.ones(11))
    with pytest.raises(ValidationError, match="^flux_err: "):
        resample_flux(w, w, np.ones(10), np.ones(11))
    with pytest.raises(ValidationError, match="^new_wavelength: expected a 1D array of ≥ 2"):
        resample_flux(w[:1], w, np.ones(10))
