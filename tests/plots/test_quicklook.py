"""matplotlib quick-look figures: rendered with Agg and checked for what a person would look at."""
from __future__ import annotations

import io
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from synthetic_spectrum import Z_TRUE  # noqa: E402

from campfire import EMISSION_LINES, Photometry, SpectrumData  # noqa: E402
from campfire.errors import ValidationError  # noqa: E402
from campfire.lines import convert_flux_units  # noqa: E402
from campfire.quicklook import (  # noqa: E402
    plot_calibrate_and_stack,
    plot_calibration,
)
from campfire.quicklook.spectrum import pretty_line_name  # noqa: E402


@pytest.fixture
def spec(spec_file) -> SpectrumData:
    return SpectrumData.from_fits(spec_file)


def _png(fig) -> np.ndarray:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    buf.seek(0)
    return plt.imread(buf)


def _line_markers(ax) -> dict[str, float]:
    return {line.get_gid().split(":", 1)[1]: float(line.get_xdata()[0]) for line in ax.lines
            if str(line.get_gid()).startswith("emission-line:")}


def test_spectrum_plot_fnu_has_error_band_labels_and_renders(spec):
    fig, ax = plt.subplots()
    returned = spec.plot(flux_unit="fnu", ax=ax)
    assert returned is ax
    (step,) = [line for line in ax.lines if line.get_gid() == "spectrum"]
    np.testing.assert_array_equal(step.get_xdata(), spec.wavelength)
    np.testing.assert_array_equal(step.get_ydata(), spec.fnu)
    (band,) = [c for c in ax.collections if c.get_gid() == "error-band"]
    # the band spans flux ± err: its vertical extent at the brightest pixel matches
    verts = np.concatenate([p.vertices for p in band.get_paths()])
    i = int(np.nanargmax(spec.fnu))
    near = (verts[:, 0] > spec.wavelength[i - 1]) & (verts[:, 0] < spec.wavelength[i + 1])  # step='mid' edges
    assert verts[near, 1].max() == pytest.approx(spec.fnu[i] + spec.fnu_err[i])
    assert verts[near, 1].min() == pytest.approx(np.min((spec.fnu - spec.fnu_err)[i - 1:i + 2]))
    assert ax.get_xlabel() == "Observed wavelength [μm]"
    assert ax.get_ylabel() == r"$f_\nu$ [μJy]"
    assert "syn_prism_clear_1" in ax.get_title() and "PRISM" in ax.get_title()
    # the strong line is inside the view (a hot-pixel-proof but line-keeping y range)
    assert ax.get_ylim()[1] > np.nanmax(spec.fnu)
    img = _png(fig)
    assert img.shape[0] > 100 and img[..., :3].std() > 0.05


def test_spectrum_plot_flam_is_scaled_and_says_so(spec):
    fig, ax = plt.subplots()
    spec.plot(flux_unit="flam", ax=ax)
    (step,) = [line for line in ax.lines if line.get_gid() == "spectrum"]
    label = ax.get_ylabel()
    assert label.startswith(r"$f_\lambda$ [$10^{") and "erg s$^{-1}$ cm$^{-2}$ Å$^{-1}$" in label
    exponent = int(label.split("10^{")[1].split("}")[0])
    flam = convert_flux_units(spec.fnu, spec.wavelength, to_unit="flam")
    np.testing.assert_allclose(step.get_ydata() * 10.0**exponent, flam, rtol=1e-12)
    assert 0.1 <= np.nanpercentile(np.abs(step.get_ydata()), 90) < 10  # numbers of order unity on the axis
    fig, ax = plt.subplots()
    spec.plot(flux_unit="flambda", ax=ax)  # the alias
    assert ax.get_ylabel() == label


def test_line_markers_sit_at_one_plus_z_times_rest(spec):
    fig, ax = plt.subplots()
    spec.plot(redshift=Z_TRUE, ax=ax)
    markers = _line_markers(ax)
    lo, hi = np.nanmin(spec.wavelength[spec.valid]), np.nanmax(spec.wavelength[spec.valid])
    expected = {n: (1 + Z_TRUE) * w / 1e4 for n, w in EMISSION_LINES.items()}
    inside = {n for n, w in expected.items() if ax.get_xlim()[0] <= w <= ax.get_xlim()[1]}
    assert set(markers) == inside and {"Halpha", "[OIII]-5008", "Hbeta"} <= inside
    for name, x in markers.items():
        assert x == pytest.approx(expected[name], rel=1e-12)
    # the marker for Hα is where the data peak is
    assert abs(markers["Halpha"] - spec.wavelength[np.nanargmax(spec.fnu)]) < 0.02
    labels = [t.get_text() for t in ax.texts if str(t.get_gid()).startswith("emission-line-label:")]
    # crowded ones share a label (the strong line's first), and every marked line is named in one
    assert any(t.startswith("Hα") for t in labels) and any(t.startswith("[OIII]") for t in labels)
    assert len(labels) < len(markers)
    assert {pretty_line_name(n) for n in markers} <= {p for t in labels for p in t.split("+")}
    assert f"z = {Z_TRUE:.4f}" in ax.get_title()
    assert lo < hi


def test_no_markers_without_redshift_and_gca(spec):
    plt.figure()
    ax = spec.plot()
    assert ax is plt.gca() and _line_markers(ax) == {}


def test_two_spectra_on_one_axes_share_the_scale(spec):
    fig, ax = plt.subplots()
    spec.plot(ax=ax, flux_unit="flam", label="a")
    half = spec.copy(fnu=spec.fnu / 2, spectrum_id="half")
    half.plot(ax=ax, flux_unit="flam", label="b")
    a, b = [line for line in ax.lines if line.get_gid() == "spectrum"]
    np.testing.assert_allclose(b.get_ydata(), a.get_ydata() / 2)
    with pytest.raises(ValidationError, match="already show 'flam'"):
        spec.plot(ax=ax, flux_unit="fnu")


def test_rest_frame_stack_is_labelled_rest_frame(spec):
    from campfire.calibration import stack_spectra

    ax = spec.plot()
    assert ax.get_xlabel() == "Observed wavelength [μm]"
    stack = stack_spectra([spec, spec.copy(spectrum_id="again")], redshift=Z_TRUE)
    plt.figure()
    ax = stack.plot()
    assert ax.get_xlabel() == "Rest-frame wavelength [μm]"
    assert ax.get_xlim()[1] < spec.wavelength.max() / (1 + Z_TRUE) * 1.05  # the data are rest-frame μm too
    with pytest.raises(ValidationError, match="not in that frame"):
        spec.plot(ax=ax)  # an observed spectrum on rest-frame axes


def test_rest_frame_stack_marks_lines_at_rest_wavelengths(spec, tmp_path):
    from campfire.calibration import stack_spectra

    stack = stack_spectra([spec, spec.copy(spectrum_id="again")], redshift=Z_TRUE)
    ax = stack.plot(redshift=Z_TRUE)
    markers = _line_markers(ax)
    assert "Halpha" in markers
    for name, x in markers.items():
        assert x == pytest.approx(EMISSION_LINES[name] / 1e4, rel=1e-12)
    # the rest-frame mark and the counts survive a trip through the pipeline FITS format
    again = SpectrumData.from_fits(stack.to_fits(tmp_path / "stack.fits"))
    assert again.rest_frame and again.count is not None
    np.testing.assert_array_equal(again.count, stack.count)
    plt.figure()
    assert again.plot().get_xlabel() == "Rest-frame wavelength [μm]"
    assert not SpectrumData.from_fits(spec.to_fits(tmp_path / "obs.fits")).rest_frame


@pytest.mark.parametrize("kwargs, match", [
    ({"flux_unit": "jansky"}, r"flux_unit: unknown flux unit 'jansky'; allowed: 'fnu'"),
    ({"redshift": -1}, "redshift"),
    ({"redshift": "high"}, "redshift"),
    ({"ax": "no"}, "ax: expected a matplotlib Axes"),
])
def test_spectrum_plot_bad_inputs(spec, kwargs, match):
    with pytest.raises(ValidationError, match=match):
        spec.plot(**kwargs)


def test_spectrum_row_plot_is_open_then_plot(spec, spec_file):
    from campfire.models import Spectrum

    s = Spectrum("syn_prism_clear_1", grating="PRISM", local_path=spec_file)
    plt.figure()
    ax = s.plot(redshift=Z_TRUE)
    np.testing.assert_array_equal([l for l in ax.lines if l.get_gid() == "spectrum"][0].get_ydata(), spec.fnu)


# -- calibration diagnostics (stand-ins with the CalibrationResult attributes) -----------------------------
def _phot() -> Photometry:
    bands = ["f115w", "f150w", "f200w", "f277w", "f356w", "f444w"]
    from campfire.bands import band_pivot

    waves = [band_pivot(b) for b in bands]
    return Photometry(bands, [2.0 + 0.3 * w for w in waves], [0.1] * 6, waves, catalog="TEST")


def _calibration(spec: SpectrumData, scale: float = 1.3):
    mult = scale * (1 + 0.05 * (spec.wavelength - 3))
    cal = spec.copy(fnu=spec.fnu * mult, fnu_err=spec.fnu_err * mult)
    return SimpleNamespace(spectrum=cal, original=spec, multiplier=mult, bands_used=["f150w", "f277w", "f444w"],
                           photometry=_phot(), method="chebyshev")


def test_calibration_plot_shows_before_after_photometry_synthetic_and_multiplier(spec):
    result = _calibration(spec)
    fig = plot_calibration(result)
    ax_spec, ax_mult = fig.axes[:2]
    gids = [line.get_gid() for line in ax_spec.lines]
    assert gids.count("spectrum") == 2  # original and calibrated
    containers = {c.get_label(): c for c in ax_spec.containers}
    assert "photometry (fit)" in containers and "photometry (not used)" in containers
    fit_points = containers["photometry (fit)"].lines[0]
    np.testing.assert_allclose(fit_points.get_xdata(), [result.photometry[b].wavelength for b in result.bands_used])
    assert "synthetic (calibrated)" in containers and "synthetic (original)" in containers
    (mult,) = [line for line in ax_mult.lines if line.get_gid() == "multiplier"]
    np.testing.assert_allclose(mult.get_ydata(), result.multiplier)
    assert ax_mult.get_ylabel() == "multiplier" and ax_mult.get_xlabel() == "Observed wavelength [μm]"
    assert _png(fig)[..., :3].std() > 0.05


def test_calibration_plot_into_one_axes(spec):
    fig, ax = plt.subplots()
    returned = plot_calibration(_calibration(spec), ax=ax)
    assert returned is fig and len(fig.axes) == 2  # the multiplier on a twin axis


def test_calibrate_and_stack_plot_has_three_panels(spec):
    cals = [_calibration(spec, 1.2), _calibration(spec.copy(spectrum_id="b"), 1.4)]
    stack = cals[0].spectrum.copy(spectrum_id="stack", object_id="obj_1")
    result = SimpleNamespace(spectrum=stack, calibrations=cals, input_spectra=[c.spectrum for c in cals])
    fig = plot_calibrate_and_stack(result, redshift=Z_TRUE)
    axes = fig.axes
    assert len(axes) == 3
    assert sum(line.get_gid() == "spectrum" for line in axes[0].lines) == 2
    assert [line.get_gid() for line in axes[1].lines if str(line.get_gid()).startswith("multiplier")] == [
        "multiplier:0", "multiplier:1"]
    assert sum(line.get_gid() == "spectrum" for line in axes[2].lines) == 3  # 2 inputs + the stack
    assert _line_markers(axes[2])["Halpha"] == pytest.approx((1 + Z_TRUE) * EMISSION_LINES["Halpha"] / 1e4)
    assert "obj_1" in fig._suptitle.get_text()
    assert _png(fig)[..., :3].std() > 0.05


def test_calibration_plot_bad_inputs(spec):
    with pytest.raises(ValidationError, match="CalibrationResult"):
        plot_calibration(spec)
    with pytest.raises(ValidationError, match="calibrate_and_stack"):
        plot_calibrate_and_stack(spec)


def test_a_quick_look_figure_does_not_import_astropy_table():
    """A run's quick-look PNGs are drawn on Dask workers that import nothing else of astropy.table:
    the line markers come from plain arrays (astropy.table and the asdf reader it registers cost
    each worker ~0.35 s of first use)."""
    import subprocess
    import sys

    code = ("import io, sys, numpy as np; from campfire.models import SpectrumData; "
            "from campfire.quicklook.figure import quicklook_figure; w = np.linspace(1, 5, 64); "
            "fig = quicklook_figure(SpectrumData(w, np.ones(64), np.full(64, .1)), redshift=2.0); "
            "fig.savefig(io.BytesIO(), format='png'); "
            "print(sum(str(a.get_gid()).startswith('emission-line:') for a in fig.axes[0].lines), "
            "'astropy.table' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert int(out[0]) > 3 and out[1] == "False"


@pytest.mark.parametrize("z, lo, hi", [(0.0, None, None), (3.0, 2.6, 2.65), (6.5, 1.0, 5.3), (2.0, 9.0, 9.5)])
def test_emission_lines_in_are_the_table_of_get_emission_lines(z, lo, hi):
    from campfire.lines import emission_lines_in, get_emission_lines

    names, rest, obs = emission_lines_in(z, lo, hi)
    table = get_emission_lines(z, lo, hi)
    assert list(names) == list(table["name"])
    assert np.array_equal(rest, table["rest_wavelength"].value) and np.array_equal(obs, table["observed_wavelength"].value)
    assert table.meta["redshift"] == z
