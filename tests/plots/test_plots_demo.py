"""The reference's plotting examples, as written, against the demo archive (locally and through a server)."""
from __future__ import annotations

import os
import pathlib

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from astropy.io import fits  # noqa: E402

from campfire import EMISSION_LINES  # noqa: E402
from campfire.client import Campfire  # noqa: E402

OBJ = "ember_uds_p4_123456"
SPEC = "ember_uds_p4_prism_clear_123456"


@pytest.fixture
def shown(monkeypatch):
    """fig.show() would open a browser: record the figures instead."""
    import plotly.graph_objects as go

    figs = []
    monkeypatch.setattr(go.Figure, "show", lambda self, *a, **k: figs.append(self))
    return figs


def _sci_sqrt_wht(path) -> np.ndarray:
    with fits.open(path) as hdul:
        sci = hdul["SCI"].data.astype(float)
        wht = hdul["WHT"].data.astype(float)
    with np.errstate(invalid="ignore"):
        return np.where(wht > 0, sci * np.sqrt(np.where(wht > 0, wht, 1.0)), np.nan)


def test_reference_plotting_helpers_example(archive, monkeypatch, shown):
    monkeypatch.setenv("CAMPFIRE_ROOT", str(archive))
    # --- as in the reference ---
    from campfire import plot_spectrum, plot_redshift_fit, plot_spectrum_simple
    cf = Campfire()
    spectrum_id = 'ember_uds_p4_prism_clear_123456'
    data = cf.get_spectrum_data(spectrum_id)
    # Multi-panel: 2D heatmap + profile + 1D spectrum
    fig = plot_spectrum(data, redshift=2.5, show_emission_lines=True)
    fig.show()
    # Redshift fit visualization
    fit = cf.get_redshift_fit_data(spectrum_id)
    fig = plot_redshift_fit(fit, spectrum_data=data)
    fig.show()
    # Simple 1D spectrum (lightweight)
    fig = plot_spectrum_simple(data, redshift=2.5)
    fig.show()
    # ---
    assert len(shown) == 3
    assert set(data) >= {"wave", "fnu", "fnu_err", "snr_2d", "n_spatial", "n_wave", "profile", "profile_fit",
                         "profile_pix"}
    assert set(fit) >= {"redshift", "chi2_min", "confidence", "z_grid", "chi2_grid", "model_wave", "model_fnu"}
    heat = next(t for t in shown[0].data if t.type == "heatmap")
    path = cf.local_path(spectrum_id)
    np.testing.assert_array_equal(np.array(heat.z, float), _sci_sqrt_wht(path))
    assert np.array(heat.z).shape == (data["n_spatial"], data["n_wave"])
    lines = {s.name.split(":", 1)[1]: s.x0 for s in shown[0].layout.shapes if str(s.name).startswith("line:")}
    assert lines["Halpha"] == pytest.approx(3.5 * EMISSION_LINES["Halpha"] / 1e4)
    best = next(t for t in shown[1].data if str(t.name).startswith("best z"))
    assert best.x[0] == pytest.approx(fit["redshift"])


def test_reference_spectrum_plot_examples(archive):
    cf = Campfire(data_dir=archive)
    spec = cf.open_spectrum('ember_uds_p4_prism_clear_123456')
    # --- as in the reference ---
    import matplotlib.pyplot as plt
    spec.plot(flux_unit='fnu')  # or flux_unit='flam'
    # Or plot by hand
    plt.step(spec.wavelength, spec.fnu, where='mid')
    # ---
    ax = plt.gca()
    assert ax.get_ylabel() == r"$f_\nu$ [μJy]"
    plt.figure()
    ax = spec.plot(flux_unit='flam')
    assert "erg s$^{-1}$" in ax.get_ylabel()
    obj = cf.get_object(OBJ)
    s = obj.spectra[0]
    plt.figure()
    ax = s.plot()  # quick-look matplotlib (alias for s.open().plot())
    spectrum = [line for line in ax.lines if line.get_gid() == "spectrum"][0]
    np.testing.assert_array_equal(spectrum.get_ydata(), s.open().fnu)
    plt.figure()
    ax = spec.plot(redshift=obj.redshift)
    markers = {str(l.get_gid()).split(":", 1)[1]: l.get_xdata()[0] for l in ax.lines
               if str(l.get_gid()).startswith("emission-line:")}
    assert markers["Halpha"] == pytest.approx((1 + obj.redshift) * EMISSION_LINES["Halpha"] / 1e4)
    # the Hα marker is on the line: the brightest pixel within 0.1 μm of it is within 2 pixels
    near = np.abs(spec.wavelength - markers["Halpha"]) < 0.1
    peak = spec.wavelength[near][np.nanargmax(spec.fnu[near])]
    assert abs(peak - markers["Halpha"]) < 2 * np.median(np.diff(spec.wavelength[near]))


def test_reference_calibration_examples(archive):
    from campfire import calibrate_and_stack, calibrate_to_photometry, stack_spectra

    cf = Campfire(data_dir=archive)
    obj = cf.get_object(OBJ)
    spec = cf.open_spectrum(SPEC)
    result = calibrate_to_photometry(spec, obj.photometry, method='chebyshev')
    fig = result.plot()  # diagnostic matplotlib plot
    ax_spec, ax_mult = fig.axes[:2]
    mult = next(line for line in ax_mult.lines if line.get_gid() == "multiplier")
    np.testing.assert_allclose(mult.get_ydata(), result.multiplier)
    fit_points = next(c for c in ax_spec.containers if c.get_label() == "photometry (fit)").lines[0]
    np.testing.assert_allclose(sorted(fit_points.get_xdata()),
                               sorted(obj.photometry[b].wavelength for b in result.bands_used))
    prism = obj.spectra[obj.spectra.grating == 'PRISM']
    stacked = stack_spectra([s.open() for s in prism], method='weighted_mean', object_id=obj.object_id)
    plt.figure()
    stacked.plot()
    result = calibrate_and_stack(prism, photometry=obj.photometry, method='chebyshev',
                                 stacking_method='weighted_mean', object_id=obj.object_id)
    fig = result.plot()  # 3-panel diagnostic
    assert len(fig.axes) == 3
    stack_line = [line for line in fig.axes[2].lines if line.get_gid() == "spectrum"][-1]
    np.testing.assert_array_equal(stack_line.get_ydata(), result.spectrum.fnu)


def test_reference_examples_through_a_server(archive, tmp_path, monkeypatch, shown):
    """The same examples with `cf = Campfire()` configured for a server by CAMPFIRE_API_URL."""
    from campfire.server.testing import running_server

    local = Campfire(data_dir=archive)
    with running_server(archive) as url:
        monkeypatch.setenv("CAMPFIRE_API_URL", url)
        monkeypatch.setenv("CAMPFIRE_ROOT", str(tmp_path / "client"))
        # --- as in the reference ---
        from campfire import plot_spectrum, plot_redshift_fit, plot_spectrum_simple
        cf = Campfire()
        spectrum_id = 'ember_uds_p4_prism_clear_123456'
        data = cf.get_spectrum_data(spectrum_id)
        fig = plot_spectrum(data, redshift=2.5, show_emission_lines=True)
        fig.show()
        fit = cf.get_redshift_fit_data(spectrum_id)
        fig = plot_redshift_fit(fit, spectrum_data=data)
        fig.show()
        fig = plot_spectrum_simple(data, redshift=2.5)
        fig.show()
        spec = cf.open_spectrum('ember_uds_p4_prism_clear_123456')
        import matplotlib.pyplot as plt
        spec.plot(flux_unit='fnu')  # or flux_unit='flam'
        plt.step(spec.wavelength, spec.fnu, where='mid')
        # ---
        assert not cf.is_local
    assert len(shown) == 3
    heat = next(t for t in shown[0].data if t.type == "heatmap")
    np.testing.assert_array_equal(np.array(heat.z, float), _sci_sqrt_wht(local.local_path(SPEC)))
    chi2 = next(t for t in shown[1].data if t.name == "χ²(z)")
    assert np.array(chi2.y, float) == pytest.approx(local.get_redshift_fit_data(SPEC)["chi2_grid"], nan_ok=True)
    spectrum = next(line for line in plt.gca().lines if line.get_gid() == "spectrum")
    np.testing.assert_array_equal(spectrum.get_ydata(), local.open_spectrum(SPEC).fnu)


def test_gallery_writes_every_figure(archive, tmp_path):
    from campfire.gallery import write_gallery

    paths = write_gallery(tmp_path / "gallery", data_dir=archive)
    names = {pathlib.Path(p).name for p in paths}
    expected = {"cutout.png", "cutout.pdf", "cutout_recipe5.png", "cutout_by_hand.png", "spectrum_fnu.png",
                "spectrum_flam.png", "spectrum_quicklook.png", "plotly_spectrum.html", "plotly_redshift_fit.html",
                "plotly_spectrum_simple.html", "index.html"}
    assert expected <= names
    assert {"calibration.png", "stack.png", "calibrate_and_stack.png"} <= names
    index = (tmp_path / "gallery" / "index.html").read_text()
    for name in names - {"index.html"}:
        assert name in index
    for p in paths:
        assert os.path.getsize(p) > 0
