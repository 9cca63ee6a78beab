"""Stacking: noise statistics, partial sums (associativity, streaming), median chunks,
rest-frame normalisation, the default grid."""
from __future__ import annotations

import numpy as np
import pytest

from campfire.errors import StackRangeWarning, ValidationError
from campfire.models import Spectrum, SpectrumData
from campfire.tasks.stack import (
    Partial,
    combine_partials,
    finalize_stack,
    median_chunk,
    median_error,
    stack_partials,
    sum_partials,
    to_rest_frame,
)
# the public names: they open Spectrum rows and read the configured window (the tasks take values)
from campfire.calibration import normalize_in_window, stack_spectra

W = np.exp(np.linspace(np.log(0.7), np.log(5.0), 400))
TRUTH = 1.0 + 0.5 * np.sin(W * 3)


def _realisations(n, seed, sigma=0.2, shift=False):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        w = W * (1 + rng.uniform(-2e-3, 2e-3)) if shift else W
        truth = np.interp(w, W, TRUTH)
        err = np.full(w.size, sigma) * rng.uniform(0.7, 1.3)  # per-spectrum depth
        out.append(SpectrumData(w, truth + rng.normal(0, 1, w.size) * err, err, spectrum_id=f"s{i}", grating="PRISM"))
    return out


@pytest.mark.parametrize("method", ["weighted_mean", "mean", "median"])
def test_scatter_falls_as_inverse_sqrt_n_and_error_matches(method):
    # many independent stacks of N realisations: their scatter about the truth, per pixel
    sig = {}
    for n in (4, 16, 64):
        stacks = [stack_spectra(_realisations(n, seed=1000 * n + k), method=method, wavelength_grid=W)
                  for k in range(40)]
        resid = np.array([s.fnu - TRUTH for s in stacks])[:, 20:-20]
        scatter = np.std(resid, axis=0).mean()
        reported = np.mean([s.fnu_err[20:-20].mean() for s in stacks])
        # the reported error matches the measured scatter to 10%
        assert reported == pytest.approx(scatter, rel=0.10), (n, reported, scatter)
        sig[n] = scatter
    # scatter ∝ 1/√N: quadrupling N halves it (to 10%)
    assert sig[4] / sig[16] == pytest.approx(2.0, rel=0.10)
    assert sig[16] / sig[64] == pytest.approx(2.0, rel=0.10)


def test_partials_associative_and_equal_one_shot():
    specs = _realisations(30, seed=4)
    for s in specs[::7]:
        s.fnu[50:60] = np.nan  # some bad pixels so counts differ
    one = finalize_stack(stack_partials(specs), W)
    parts = [stack_partials(specs[i:i + 5]) for i in range(0, 30, 5)]
    left = parts[0]
    for p in parts[1:]:
        left = combine_partials(left, p)
    right = parts[-1]
    for p in parts[-2::-1]:
        right = combine_partials(p, right)
    tree = sum_partials([sum_partials(parts[:3]), sum_partials(parts[3:])])
    for p in (left, right, tree):
        st = finalize_stack(p, W)
        np.testing.assert_allclose(st.fnu, one.fnu, rtol=1e-12)
        np.testing.assert_allclose(st.fnu_err, one.fnu_err, rtol=1e-12)
        np.testing.assert_array_equal(st.count, one.count)
        for m in ("mean",):
            np.testing.assert_allclose(finalize_stack(p, W, m).fnu, finalize_stack(stack_partials(specs), W, m).fnu,
                                       rtol=1e-12)
    assert tree.n_spectra == 30 and sorted(tree.spectrum_ids) == sorted(s.spectrum_id for s in specs)
    assert one.count[55] == 30 - len(specs[::7]) and one.count[0] == 30
    # the eager stack_spectra equals the partial route
    np.testing.assert_allclose(stack_spectra(specs, wavelength_grid=W).fnu, one.fnu, rtol=1e-12)


def test_partials_stream_from_generator_and_arrays():
    specs = _realisations(10, seed=8)
    gen = (s for s in specs)
    a = stack_partials(gen)
    b = stack_partials((np.array([s.fnu for s in specs]), np.array([s.fnu_err for s in specs])))
    np.testing.assert_allclose(a.sum_wf, b.sum_wf, rtol=1e-14)
    assert a.n_spectra == b.n_spectra == 10
    assert stack_partials([], n_pixels=5).n_pixels == 5
    with pytest.raises(ValidationError, match="same grid"):
        stack_partials([specs[0], SpectrumData(W[:10], np.ones(10), np.ones(10))])
    with pytest.raises(ValidationError, match="grids differ"):
        combine_partials(a, Partial.empty(3))


def test_weighted_mean_by_hand():
    f = np.array([[1.0, 2.0, np.nan], [3.0, 4.0, 5.0]])
    e = np.array([[1.0, 0.5, 1.0], [2.0, 0.5, 0.0]])
    st = finalize_stack(stack_partials((f, e)), np.array([1.0, 2.0, 3.0]))
    w1 = np.array([1.0, 4.0]); w2 = np.array([0.25, 4.0])
    np.testing.assert_allclose(st.fnu[:2], (w1 * f[0, :2] + w2 * f[1, :2]) / (w1 + w2))
    np.testing.assert_allclose(st.fnu_err[:2], 1 / np.sqrt(w1 + w2))
    assert np.isnan(st.fnu[2]) and st.count.tolist() == [2, 2, 0]  # NaN and zero error both excluded


def test_median_chunk_and_outlier_robustness():
    m, e, n = median_chunk([[1.0, 1.0], [1.2, np.nan], [50.0, 0.9]], [[0.1, 0.1], [0.1, 0.1], [0.1, 0.1]])
    np.testing.assert_allclose(m, [1.2, 0.95])
    assert n.tolist() == [3, 2]
    # equal noise: σ(median)/σ(mean) of 3 Gaussians is √1.346 (tabulated); a median of two is their mean
    np.testing.assert_allclose(e, np.sqrt([1.346, 1.0]) * np.sqrt([0.03, 0.02]) / np.array([3, 2]), rtol=0.005)
    specs = _realisations(9, seed=3)
    specs[0].fnu[100] = 1e6  # a cosmic ray in one input
    st = stack_spectra(specs, method="median", wavelength_grid=W)
    assert abs(st.fnu[100] - TRUTH[100]) < 0.3


@pytest.mark.parametrize("n, spread", [(30, 10.0), (30, 1.0), (3, 10.0), (4, 10.0), (9, 10.0)])
def test_median_stack_chi2_with_unequal_noise(n, spread):
    """Issue 17.3: the median stack's error matches its scatter about the truth (χ²/dof in
    0.9–1.1) when the inputs' σ spans a factor ``spread`` (0.05–0.5 for 10×), and with equal
    noise. Each input has one σ over its whole spectrum, drawn anew for every stack."""
    chi2, dof = 0.0, 0
    for k in range(60):
        rng = np.random.default_rng(7000 + k)
        sig = rng.uniform(0.05, 0.05 * spread, n) if spread > 1 else np.full(n, 0.2)
        specs = [SpectrumData(W, TRUTH + rng.normal(0, s, W.size), np.full(W.size, s), spectrum_id=f"s{i}")
                 for i, s in enumerate(sig)]
        st = stack_spectra(specs, method="median", wavelength_grid=W)
        chi2 += float(np.sum(((st.fnu - TRUTH) / st.fnu_err) ** 2))
        dof += W.size
    assert 0.9 <= chi2 / dof <= 1.1, chi2 / dof


@pytest.mark.parametrize("sig", [np.linspace(0.05, 0.5, 4), np.array([0.05, 0.05, 0.05, 0.5, 0.5]),
                                 np.geomspace(0.05, 0.5, 12), np.r_[np.full(7, 0.05), 0.5], np.full(6, 0.3)])
def test_median_error_equals_monte_carlo(sig):
    """median_error against the scatter of 2·10⁵ simulated medians (an independent computation): 3%
    (the even-N middle-pair correlation is that of equal noise; measured ≤ 1.5% off for these)."""
    rng = np.random.default_rng(11)
    scatter = np.median(rng.normal(size=(200_000, sig.size)) * sig, axis=1).std()
    assert median_error(sig[:, None])[0] == pytest.approx(scatter, rel=0.03)
    # columns are independent: NaN-padded inputs do not count, and order does not matter
    padded = np.r_[sig, np.nan, np.nan][::-1]
    assert median_error(np.c_[padded, padded])[1] == pytest.approx(median_error(sig[:, None])[0], rel=1e-12)


def test_default_grid_is_the_largest_input_and_counts():
    a = SpectrumData(np.linspace(1, 2, 50), np.ones(50), np.full(50, 0.1), spectrum_id="a")
    b = SpectrumData(np.linspace(1.5, 3, 120), np.full(120, 2.0), np.full(120, 0.1), spectrum_id="b")
    with pytest.warns(StackRangeWarning, match=r"leaves out 1\.00–1\.50 μm.*wavelength_grid='union'"):
        st = stack_spectra([a, b], method="mean", object_id="o1")
    np.testing.assert_array_equal(st.wavelength, b.wavelength)
    assert st.meta["grid"] == "largest input"
    assert st.object_id == "o1" and st.spectrum_id == "o1_stack" and st.meta["inputs"] == ["a", "b"]
    both = (st.wavelength > 1.55) & (st.wavelength < 1.95)
    assert np.all(st.count[both] == 2) and np.all(st.count[st.wavelength > 2.05] == 1)
    np.testing.assert_allclose(st.fnu[both], 1.5)


def test_spectrum_inputs_are_opened():
    data = SpectrumData(np.linspace(1, 2, 20), np.ones(20), np.full(20, 0.1), spectrum_id="x")
    s = Spectrum("x", _opener=lambda _: data)
    st = stack_spectra([s, data])
    np.testing.assert_allclose(st.fnu, 1.0)


def test_rest_frame_normalisation():
    import dask.config

    rng = np.random.default_rng(2)
    specs, zs = [], [1.0, 2.5, 4.0]
    rest = np.linspace(0.2, 1.0, 300)
    for i, z in enumerate(zs):
        amp = 10.0 ** rng.uniform(-1, 1)
        f = amp * (1 + rest) / (1 + z) * (1 + z)  # shape (1 + λ_rest), arbitrary amplitude
        specs.append(SpectrumData(rest * (1 + z), f, 0.01 * f, spectrum_id=f"s{i}"))
    st = stack_spectra(specs, redshift=zs, normalize=True, method="mean")
    assert st.meta["rest_frame"] and st.meta["norm_window"] == [0.42, 0.48]
    inwin = (st.wavelength > 0.42) & (st.wavelength < 0.48)
    assert np.median(st.fnu[inwin]) == pytest.approx(1.0, rel=1e-3)
    # the shape survives: every input was normalised to the same curve
    np.testing.assert_allclose(st.fnu[10:-10], ((1 + st.wavelength) / 1.45)[10:-10], rtol=1e-3)
    # the window is read from config when the function runs
    with dask.config.set({"campfire.stack.rest-window": [0.6, 0.7]}):
        st2 = stack_spectra(specs, redshift=zs, normalize=True)
    assert st2.meta["norm_window"] == [0.6, 0.7]
    one = normalize_in_window(to_rest_frame(specs[0], zs[0]))
    assert one.meta["norm_window"] == [0.42, 0.48] and one.meta["redshift"] == 1.0
    with pytest.raises(ValidationError, match="window"):
        normalize_in_window(specs[0], (8.0, 9.0))
    with pytest.raises(ValidationError, match="rest frame"):
        to_rest_frame(one, 1.0)


def test_a_stack_is_labelled_with_its_input_gratings():
    prism = _realisations(3, seed=5)
    g395m = [s.copy(grating="G395M", spectrum_id=f"m{i}") for i, s in enumerate(_realisations(2, seed=6))]
    one = stack_spectra(prism, method="mean")
    assert one.grating == "PRISM" and repr(one).startswith("SpectrumData(stack, PRISM, ")
    mixed = stack_spectra(prism + g395m, method="median")
    assert mixed.grating == "G395M+PRISM" and "mixed: G395M+PRISM" in repr(mixed)
    # a stack of stacks, and the partial sums a tree reduction combines, keep the label
    assert stack_spectra([one, mixed]).grating == "G395M+PRISM"
    tree = finalize_stack(combine_partials(stack_partials(prism), stack_partials(g395m)), W)
    assert tree.grating == "G395M+PRISM"
    # inputs without a grating: the repr still says it is a stack (never '?')
    bare = finalize_stack(stack_partials((np.ones((2, W.size)), np.ones((2, W.size)))), W)
    assert bare.grating == "" and repr(bare).startswith("SpectrumData(stack, stack, ")


def test_rest_frame_inputs_make_a_rest_frame_stack():
    specs = _realisations(3, seed=7)
    shifted = [to_rest_frame(s, 2.0) for s in specs]
    assert all(s.rest_frame for s in shifted) and not any(s.rest_frame for s in specs)
    assert stack_spectra(shifted).rest_frame and stack_spectra(specs, redshift=2.0).rest_frame
    assert not stack_spectra(specs).rest_frame
    with pytest.raises(ValidationError, match="rest frame"):
        stack_spectra([specs[0], shifted[1]])


def test_validation():
    s = SpectrumData(np.linspace(1, 2, 20), np.ones(20), np.full(20, 0.1))
    with pytest.raises(ValidationError, match="method"):
        stack_spectra([s], method="mode")
    with pytest.raises(ValidationError, match="spectra"):
        stack_spectra([])
    with pytest.raises(ValidationError, match="redshift"):
        stack_spectra([s, s], redshift=[1, 2, 3])
    with pytest.raises(ValidationError, match="wavelength_grid"):
        stack_spectra([s], wavelength_grid=[2, 1])


def test_public_names():
    import campfire

    assert campfire.stack_spectra is stack_spectra
