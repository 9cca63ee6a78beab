"""The object page in a real browser: the plots are drawn from the object's real data, lines
follow the redshift, a clicked feature can be identified as a line, f_ν ↔ f_λ, the cutout.
"""
from __future__ import annotations

import numpy as np
import pytest
from portal_kit import login

OBJECT = "ember_uds_p4_123456"  # three spectra (PRISM, G140M, G395M), photometry, imaging
HALPHA_UM = 0.656461


def traces(page, div: str) -> list[dict]:
    return page.evaluate("""(id) => document.getElementById(id).data.map(t => ({
        type: t.type, role: t.meta && t.meta.role, sid: t.meta && t.meta.spectrum_id, name: t.name,
        x: t.x ? Array.from(t.x) : [], y: t.y ? Array.from(t.y) : [], z: t.z ? t.z.length : 0,
        category: t.meta && t.meta.category}))""", div)


def open_object(page, portal, object_id=OBJECT):
    page.goto(f"{portal.url}/objects/{object_id}")
    page.wait_for_selector("body[data-plots-ready='1']")


def test_plots_show_the_objects_spectra_fit_photometry_and_cutout(page, portal, artefacts):
    login(page, portal, "alice")
    open_object(page, portal)
    view = page.request.get(f"{portal.url}/objects/{OBJECT}/view.json").json()
    spectra = {s["spectrum_id"]: s for s in view["spectra"]}
    assert len(spectra) == 3

    drawn = traces(page, "spectrum-plot")
    flux = [t for t in drawn if t["role"] == "flux"]
    assert sorted(t["sid"] for t in flux) == sorted(spectra)
    for t in flux:  # the arrays of the spectrum's file, in f_nu
        s = spectra[t["sid"]]
        assert len(t["x"]) == len(s["wave"]) > 500
        assert np.allclose(np.array(t["y"], dtype=float), np.array(s["fnu"], dtype=float), equal_nan=True)
    images = [t for t in drawn if t["role"] == "snr2d"]
    assert sorted(t["sid"] for t in images) == sorted(spectra) and all(t["z"] >= 5 for t in images)
    assert len([t for t in drawn if t["role"] == "error"]) == 2 * len(spectra)  # the ±1σ band
    phot = next(t for t in drawn if t["role"] == "photometry")
    assert len(phot["x"]) == len(view["photometry"]["bands"]) == 8
    assert any(t["role"] == "synphot" and len(t["x"]) > 0 for t in drawn)

    # lines at the shown redshift, on the wavelength axis of spectra and 2D images alike
    z = float(page.input_value("#z-input"))
    assert z == pytest.approx(view["object"]["redshift"], abs=1e-5)
    shapes = page.evaluate("() => document.getElementById('spectrum-plot').layout.shapes")
    halpha = [s for s in shapes if s.get("name") == "line Halpha"]
    assert halpha and halpha[0]["x0"] == pytest.approx(HALPHA_UM * (1 + z), rel=1e-6) and halpha[0]["yref"] == "paper"
    masked = [s for s in shapes if s.get("name") == "masked"]
    assert masked  # the G140M and G395M spectra have masked pixel runs
    assert "μm" in page.evaluate("() => document.getElementById('spectrum-plot').layout.xaxis.title.text")
    assert "μJy" in page.evaluate("() => document.getElementById('spectrum-plot').layout.yaxis.title.text")

    # chi2(z) of each fit with its best solutions; the cutout with this object's shutters
    chi2 = traces(page, "chi2-plot")
    assert len([t for t in chi2 if t["role"] == "chi2"]) == 3
    alternatives = [t for t in chi2 if t["role"] == "alternatives"]
    assert all(1 <= len(t["x"]) <= 5 for t in alternatives)
    assert page.get_attribute("#cutout-plot", "data-image") == "yes"
    assert any(t["category"] == "target" for t in traces(page, "cutout-plot"))
    assert page.eval_on_selector_all("#alternatives button.alt", "b => b.length") >= 5
    page.screenshot(path=str(artefacts / "object.png"), full_page=True)

    # f_lambda with the keyboard, and back
    page.keyboard.press("f")
    page.wait_for_selector("#spectrum-plot[data-unit='flam']")
    assert "f<sub>λ</sub>" in page.evaluate("() => document.getElementById('spectrum-plot').layout.yaxis.title.text")
    flam = {t["sid"]: t for t in traces(page, "spectrum-plot") if t["role"] == "flux"}
    for sid, t in flam.items():
        assert np.allclose(np.array(t["y"], dtype=float), np.array(spectra[sid]["flam"], dtype=float), equal_nan=True)
    page.screenshot(path=str(artefacts / "object-flam.png"), full_page=False)
    page.keyboard.press("f")
    page.wait_for_selector("#spectrum-plot[data-unit='fnu']")


def test_typed_redshift_moves_the_lines_and_a_clicked_feature_sets_it(page, portal):
    login(page, portal, "alice")
    open_object(page, portal)
    page.keyboard.press("z")
    page.keyboard.type("2.5")
    page.keyboard.press("Escape")
    shapes = page.evaluate("() => document.getElementById('spectrum-plot').layout.shapes")
    assert next(s for s in shapes if s.get("name") == "line Halpha")["x0"] == pytest.approx(HALPHA_UM * 3.5, rel=1e-6)
    assert page.text_content("#z-lines") == "2.5000"

    # click the PRISM spectrum where Halpha sits at the automatic redshift; the menu offers lines
    z_auto = page.evaluate("() => JSON.parse(document.getElementById('page-data').textContent).redshift_auto")
    target = HALPHA_UM * (1 + z_auto)
    where = page.evaluate("""(target) => {
        const gd = document.getElementById('spectrum-plot');
        const t = gd.data.find(d => d.meta && d.meta.role === 'flux' && d.name.startsWith('PRISM'));
        const L = gd._fullLayout, box = gd.getBoundingClientRect();
        const [ylo, yhi] = L.yaxis.range;
        const inside = (i) => t.y[i] !== null && t.y[i] > ylo && t.y[i] < yhi;
        let best = -1;  // the pixel nearest the target that is drawn inside the panel
        t.x.forEach((x, i) => { if (inside(i) && (best < 0 || Math.abs(x - target) < Math.abs(t.x[best] - target))) best = i; });
        return {x: box.left + L._size.l + L.xaxis.l2p(t.x[best]), y: box.top + L.yaxis._offset + L.yaxis.l2p(t.y[best]),
                wave: t.x[best]};
    }""", target)
    page.mouse.click(where["x"], where["y"])
    page.wait_for_selector("#line-menu:not([hidden])")
    clicked = float(page.get_attribute("#line-menu", "data-wave"))
    assert f"{clicked:.4f} μm" in page.text_content("#line-menu .menu-title")
    assert clicked == pytest.approx(target, abs=0.02)
    names = page.eval_on_selector_all("#line-menu button", "bs => bs.map(b => b.querySelector('.name').textContent)")
    active = page.eval_on_selector_all("#line-menu button", "bs => bs.findIndex(b => b.classList.contains('active'))")
    steps = names.index("Halpha") - active
    for _ in range(abs(steps)):
        page.keyboard.press("ArrowDown" if steps > 0 else "ArrowUp")
    page.keyboard.press("Enter")
    assert page.is_hidden("#line-menu")
    assert float(page.input_value("#z-input")) == pytest.approx(clicked / HALPHA_UM - 1, abs=2e-5)
    assert float(page.input_value("#z-input")) == pytest.approx(z_auto, abs=0.01)

    # 'a' accepts the automatic fit, 'o' walks its best solutions
    page.keyboard.press("a")
    assert float(page.input_value("#z-input")) == pytest.approx(z_auto, abs=1e-5)
    page.keyboard.press("o")  # after 'a' (the best solution), the second one
    second = page.eval_on_selector_all("#alternatives button.alt", "bs => bs[1].textContent")
    assert f"{float(page.input_value('#z-input')):.3f}" in second


def test_help_lists_the_shortcuts(page, portal):
    open_object(page, portal)
    page.keyboard.press("?")
    page.wait_for_selector("#help[open]")
    text = page.text_content("#help")
    for key in ("accept the automatic fit", "refit near", "quality: 0 not_inspected", "next / previous", "fν ↔ fλ"):
        assert key in text
    page.keyboard.press("Escape")
    page.wait_for_selector("#help", state="hidden")
