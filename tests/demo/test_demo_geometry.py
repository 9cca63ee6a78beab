"""The demo's geometry without astropy.wcs and scipy.interpolate, checked against them."""
from __future__ import annotations

import numpy as np
import pytest

from campfire.demo import instrument, survey
from campfire.demo.imaging import MOSAIC_NPIX, PIXSCALE, field_wcs_cards, mosaic_pixels


def _astropy_field_wcs(field):
    """The field's mosaic WCS as the demo built it with astropy before (CD matrix, ICRS)."""
    from astropy.wcs import WCS

    ra0, dec0 = survey.FIELDS[field]
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra0, dec0]
    w.wcs.crpix = [MOSAIC_NPIX / 2 + 0.5, MOSAIC_NPIX / 2 + 0.5]
    w.wcs.cd = np.array([[-PIXSCALE / 3600.0, 0.0], [0.0, PIXSCALE / 3600.0]])
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    return w


@pytest.mark.parametrize("field", sorted(survey.FIELDS))
def test_field_wcs_cards_are_astropys_and_mosaic_pixels_its_projection(field):
    wcs = _astropy_field_wcs(field)
    cards = [(c.keyword, c.value, c.comment) for c in wcs.to_header().cards]
    ours = [(k, v, c) for k, (v, c) in field_wcs_cards(field).items()]
    assert ours == cards
    assert [type(v) for _, v, _ in ours] == [type(v) for _, v, _ in cards]  # 2 stays an int, 1.0 a float
    ra0, dec0 = survey.FIELDS[field]
    rng = np.random.default_rng(7)
    ra = ra0 + rng.uniform(-0.15, 0.15, 5000) / np.cos(np.radians(dec0))
    dec = dec0 + rng.uniform(-0.15, 0.15, 5000)
    x, y = mosaic_pixels(field, ra, dec)
    ax, ay = wcs.all_world2pix(ra, dec, 0)
    assert np.abs(x - ax).max() < 1e-7 and np.abs(y - ay).max() < 1e-7  # pixels (~3e-9 seen)
    assert np.abs(ax - (MOSAIC_NPIX / 2 - 0.5)).max() > 1000  # the points spread over the mosaic


def test_prism_resolution_is_scipys_pchip_to_the_bit():
    from scipy.interpolate import PchipInterpolator

    anchors = instrument._PRISM_ANCHORS
    pchip = PchipInterpolator(np.log(anchors[:, 0]), np.log(anchors[:, 1]), extrapolate=True)
    rng = np.random.default_rng(3)
    # inside, outside (extrapolated), at the anchors, and a scalar
    for wave in (np.geomspace(0.3, 7.0, 100001), rng.uniform(0.5, 6.0, 20000), anchors[:, 0], 1.15):
        ours = instrument.prism_resolution(wave)
        assert np.shape(ours) == np.shape(wave)
        assert np.array_equal(ours, np.exp(pchip(np.log(np.asarray(wave, float)))))


FIELD_TASK = """
import sys
from campfire.demo import builder, survey
plan = survey.make_plan("small", 0)
field = sorted({o.field for o in plan.objects})[0]
assert builder._field_task((sys.argv[1], plan, field))["n_stamps"] > 0
print(sorted(m for m in ("astropy.wcs", "scipy.interpolate") if m in sys.modules))
"""


def test_a_demo_build_worker_imports_neither_astropy_wcs_nor_scipy_interpolate(tmp_path):
    """Imported in each worker they cost ~0.5 s of its start (astropy.coordinates with the WCS)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", FIELD_TASK, str(tmp_path)], capture_output=True, text=True,
                         check=True, timeout=300)
    assert out.stdout.strip() == "[]"
    assert list((tmp_path / "imaging").glob("*/stamps/*.fits"))
