"""Plotly helpers: the figures' data against the FITS file, and a real rendering to PNG."""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np
import plotly.graph_objects as go
import pytest
from astropy.io import fits
from shared_fixtures import missing_tool
from synthetic_spectrum import Z_TRUE

from campfire import EMISSION_LINES
from campfire.errors import ValidationError

from campfire.plotting import plot_redshift_fit, plot_spectrum, plot_spectrum_simple
from campfire.quicklook.spectrum import pretty_line_name


def _shapes(fig, xref=None) -> dict[str, float]:
    return {s.name.split(":", 1)[1]: s.x0 for s in fig.layout.shapes
            if s.name and s.name.startswith("line:") and (xref is None or s.xref == xref)}


def _expected_lines(wave) -> dict[str, float]:
    lo, hi = np.nanmin(wave), np.nanmax(wave)
    obs = {n: (1 + Z_TRUE) * w / 1e4 for n, w in EMISSION_LINES.items()}
    return {n: w for n, w in obs.items() if lo <= w <= hi}


def test_import_campfire_stays_light():
    code = "import sys, campfire; print('plotly' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
    code = "import sys; from campfire import plot_spectrum; print(plot_spectrum.__module__)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == \
        "campfire.plotting"


def test_heatmap_is_sci_times_sqrt_wht(spec_file, spec_data):
    fig = plot_spectrum(spec_data, redshift=Z_TRUE, show_emission_lines=True)
    assert isinstance(fig, go.Figure)
    (heat,) = [t for t in fig.data if t.type == "heatmap"]
    with fits.open(spec_file) as hdul:
        sci = hdul["SCI"].data.astype(float)
        wht = hdul["WHT"].data.astype(float)
        wave = np.asarray(hdul["SPEC1D"].data["wave"], float)
    with np.errstate(invalid="ignore"):
        expected = np.where(wht > 0, sci * np.sqrt(wht), np.nan)
    z = np.array(heat.z, dtype=float)
    np.testing.assert_array_equal(z, expected)  # NaN where WHT = 0, equal elsewhere
    assert np.isnan(z[3, 100:110]).all()
    np.testing.assert_array_equal(np.asarray(heat.x, float), wave)
    np.testing.assert_array_equal(np.asarray(heat.y, float), spec_data["profile_pix"])


def test_plot_spectrum_panels_and_linked_axes(spec_data):
    fig = plot_spectrum(spec_data)
    kinds = [(t.type, t.xaxis, t.yaxis, t.name) for t in fig.data]
    assert ("heatmap", "x", "y", "snr_2d") in kinds
    assert ("scatter", "x2", "y2", "profile") in kinds and ("scatter", "x2", "y2", "profile fit") in kinds
    spectrum = next(t for t in fig.data if t.name == "f<sub>ν</sub>")
    assert (spectrum.xaxis, spectrum.yaxis) == ("x3", "y3")
    np.testing.assert_array_equal(np.array(spectrum.y, float), spec_data["fnu"])
    band = [t for t in fig.data if t.type == "scatter" and t.fill == "tonexty"]
    assert len(band) == 1 and band[0].xaxis == "x3"
    np.testing.assert_allclose(np.array(band[0].y, float), spec_data["fnu"] + spec_data["fnu_err"])
    # the 2D and 1D wavelength axes are one (zoom moves both); the profile shares the 2D's rows
    assert fig.layout.xaxis.matches == "x3" and fig.layout.yaxis2.matches == "y"
    profile = next(t for t in fig.data if t.name == "profile")
    np.testing.assert_array_equal(np.array(profile.y, float), spec_data["profile_pix"])
    np.testing.assert_array_equal(np.array(profile.x, float), spec_data["profile"])
    assert fig.layout.xaxis3.title.text == "Observed wavelength [μm]"
    assert fig.layout.yaxis3.title.text == "f<sub>ν</sub> [μJy]"
    assert _shapes(fig) == {}  # no lines unless asked


def test_emission_lines_at_one_plus_z_rest_in_both_panels(spec_data):
    fig = plot_spectrum(spec_data, redshift=Z_TRUE, show_emission_lines=True)
    expected = _expected_lines(spec_data["wave"])
    for xref in ("x", "x3"):
        got = _shapes(fig, xref)
        assert set(got) == set(expected)
        for name, x in got.items():
            assert x == pytest.approx(expected[name], rel=1e-12)
    labels = [a.text for a in fig.layout.annotations if a.name and a.name.startswith("line-label:")]
    assert "Hα+[NII]" in labels  # crowded lines share the strong line's label, and all are named
    named = {part for text in labels for part in text.split("+")}
    assert {pretty_line_name(n) for n in expected} <= named
    assert f"z = {Z_TRUE:.4f}" in fig.layout.title.text


def test_server_json_form_gives_the_same_figure(spec_data):
    """The server sends lists with null for NaN; the figure must not care."""
    as_json = json.loads(json.dumps({k: (np.where(np.isfinite(v), v, None).tolist() if hasattr(v, "shape") else v)
                                     for k, v in spec_data.items()}))
    a = plot_spectrum(spec_data)
    b = plot_spectrum(as_json)
    np.testing.assert_array_equal(np.array(a.data[0].z, float), np.array(b.data[0].z, float))


def test_redshift_fit_figure(fit_data, spec_data):
    fig = plot_redshift_fit(fit_data, spectrum_data=spec_data)
    chi2 = next(t for t in fig.data if t.name == "χ²(z)")
    np.testing.assert_array_equal(np.array(chi2.x, float), fit_data["z_grid"])
    np.testing.assert_array_equal(np.array(chi2.y, float), fit_data["chi2_grid"])
    best = next(t for t in fig.data if str(t.name).startswith("best z"))
    assert best.x[0] == fit_data["redshift"] and best.y[0] == fit_data["chi2_min"]
    model = next(t for t in fig.data if t.name == "best-fit model")
    np.testing.assert_array_equal(np.array(model.y, float), fit_data["model_fnu"])
    assert (model.xaxis, model.yaxis) == ("x2", "y2")
    got = _shapes(fig, "x2")
    for name, x in _expected_lines(spec_data["wave"]).items():
        assert got[name] == pytest.approx(x)
    assert "z = 3.4210" in fig.layout.title.text
    only_fit = plot_redshift_fit(fit_data)
    assert any(t.name == "best-fit model" for t in only_fit.data)
    assert not any(t.name == "spectrum" for t in only_fit.data)


def test_spectrum_simple(spec_data, spec_file):
    from campfire import SpectrumData

    fig = plot_spectrum_simple(spec_data, redshift=Z_TRUE)
    assert isinstance(fig, go.Figure)
    line = next(t for t in fig.data if t.name == "f<sub>ν</sub>")
    np.testing.assert_array_equal(np.array(line.y, float), spec_data["fnu"])
    assert set(_shapes(fig)) == set(_expected_lines(spec_data["wave"]))
    fig2 = plot_spectrum_simple(SpectrumData.from_fits(spec_file))  # a SpectrumData works too
    assert _shapes(fig2) == {}
    assert fig.layout.xaxis.title.text == fig2.layout.xaxis.title.text == "Observed wavelength [μm]"


def test_spectrum_simple_of_a_rest_frame_stack(spec_file):
    from campfire import SpectrumData, stack_spectra

    spec = SpectrumData.from_fits(spec_file)
    fig = plot_spectrum_simple(stack_spectra([spec], redshift=Z_TRUE))
    assert fig.layout.xaxis.title.text == "Rest-frame wavelength [μm]"


@pytest.mark.parametrize("call, match", [
    (lambda d, f: plot_spectrum({"wave": [1, 2]}), r"data: missing fnu, fnu_err, snr_2d"),
    (lambda d, f: plot_spectrum(d, show_emission_lines=True), "show_emission_lines: needs redshift"),
    (lambda d, f: plot_spectrum(d, redshift=-0.5), "redshift"),
    (lambda d, f: plot_spectrum(d, show_emission_lines="yes"), "show_emission_lines"),
    (lambda d, f: plot_spectrum(dict(d, snr_2d=np.zeros((3, 5)))), r"snr_2d.*columns"),
    (lambda d, f: plot_spectrum("ember"), "get_spectrum_data"),
    (lambda d, f: plot_redshift_fit({"redshift": 1.0}), "fit: missing chi2_min"),
    (lambda d, f: plot_redshift_fit(dict(f, z_grid=[1, 2, 3])), "differ in length"),
    (lambda d, f: plot_spectrum_simple(dict(d, fnu=[1.0])), "fnu"),
])
def test_bad_inputs(spec_data, fit_data, call, match):
    with pytest.raises(ValidationError, match=match):
        call(spec_data, fit_data)


def test_figures_render_to_png(spec_data, fit_data, tmp_path):
    """A real rendering (kaleido + Chrome, or headless Chromium on the HTML).

    The figures' data are asserted above; only this rendering step is skipped when the
    machine has no browser: `pip install kaleido` and `apt-get install chromium`.
    """
    from PIL import Image

    from campfire.gallery import chrome_executable, figures_to_png

    if chrome_executable() is None:
        missing_tool("no Chrome/Chromium to render Plotly to PNG here (apt-get install chromium)")
    figs = [plot_spectrum(spec_data, redshift=Z_TRUE, show_emission_lines=True),
            plot_redshift_fit(fit_data, spectrum_data=spec_data),
            plot_spectrum_simple(spec_data, redshift=Z_TRUE)]
    paths = figures_to_png(figs, [tmp_path / f"fig{k}.png" for k in range(3)])
    assert paths is not None, "a Chrome/Chromium is installed but rendering failed"
    for fig, path in zip(figs, paths):
        img = np.asarray(Image.open(path).convert("RGB"), dtype=float)
        assert img.shape[1] >= fig.layout.width * 0.9  # the layout's size (kaleido may scale it)
        assert img.std() > 10  # not a blank page
    # the heatmap panel is drawn: the upper-left region holds dark and light pixels
    img = np.asarray(Image.open(paths[0]).convert("L"), dtype=float)
    h, w = img.shape
    region = img[int(0.12 * h):int(0.4 * h), int(0.1 * w):int(0.7 * w)]
    assert region.min() < 80 and region.max() > 200


def test_chromium_screenshot_fallback_without_kaleido(spec_data, tmp_path, monkeypatch):
    """Without kaleido the figure's HTML is screenshotted by headless Chromium."""
    from PIL import Image

    import campfire.gallery as gallery

    if gallery.chrome_executable() is None:
        missing_tool("no Chrome/Chromium to render Plotly to PNG here (apt-get install chromium)")
    monkeypatch.setattr(gallery, "_kaleido_ok", lambda: False)
    fig = plot_spectrum_simple(spec_data, redshift=Z_TRUE)
    (path,) = gallery.figures_to_png([fig], [tmp_path / "simple.png"])
    img = np.asarray(Image.open(path).convert("L"), dtype=float)
    assert img.shape == (fig.layout.height, fig.layout.width)
    assert img.min() < 100 and img.std() > 5  # the spectrum and axes are drawn on the white page


def test_no_renderer_returns_none(spec_data, tmp_path, monkeypatch):
    import campfire.gallery as gallery

    monkeypatch.setattr(gallery, "_kaleido_ok", lambda: False)
    monkeypatch.setattr(gallery, "chrome_executable", lambda: None)
    assert gallery.figures_to_png([plot_spectrum_simple(spec_data)], [tmp_path / "x.png"]) is None


def test_write_image_the_documented_way(spec_data, tmp_path):
    """Issue 18.6: ``fig.write_image`` works as the docs say — kaleido from the ``plotting`` extra,
    Debian's chromium found on PATH (no browser download)."""
    from PIL import Image

    from campfire.gallery import chrome_executable

    if chrome_executable() is None:
        missing_tool("no Chrome/Chromium to render Plotly to PNG here (apt-get install chromium)")
    import kaleido  # noqa: F401  (in the plotting extra)

    fig = plot_spectrum_simple(spec_data, redshift=Z_TRUE)
    fig.write_image(tmp_path / "simple.png", width=900, height=400)
    img = np.asarray(Image.open(tmp_path / "simple.png").convert("L"), dtype=float)
    assert img.shape == (400, 900) and img.std() > 10


def test_save_html_shares_one_plotly_js(spec_data, tmp_path):
    """Issue 18.6: pages of a few tens of kB beside one plotly.min.js (offline), instead of 5 MB each."""
    from campfire.plotting import save_html

    pages = [save_html(plot_spectrum_simple(spec_data), tmp_path / "figs" / f"p{k}.html") for k in range(2)]
    js = tmp_path / "figs" / "plotly.min.js"
    assert js.stat().st_size > 3_000_000 and sorted(p.name for p in (tmp_path / "figs").iterdir()) == [
        "p0.html", "p1.html", "plotly.min.js"]
    for page in pages:
        text = open(page).read()
        assert len(text) < 300_000 and 'src="plotly.min.js"' in text
    inline = save_html(plot_spectrum_simple(spec_data), tmp_path / "one.html", plotlyjs="inline")
    assert pathlib.Path(inline).stat().st_size > 3_000_000
    with pytest.raises(ValidationError, match="plotlyjs"):
        save_html(plot_spectrum_simple(spec_data), tmp_path / "x.html", plotlyjs="cdn")
