"""``campfire.demo.sed.true_band_flux``: the demo's true band fluxes (catalog photometry, the
imaging's F444W) with each band's weights computed once per process, to the bit what
``synthetic_photometry`` on the truth grid gives (the demo's bytes rest on it)."""
from __future__ import annotations

import numpy as np
import pytest

from campfire.demo import survey
from campfire.demo.sed import TRUTH_WAVE, _band_support, true_band_flux, true_sed, true_sed_band_flux
from campfire.errors import ValidationError
from campfire.tasks.synphot import synthetic_photometry


def test_true_band_flux_is_synthetic_photometry_to_the_bit():
    plan = survey.make_plan("small", 0)
    tiny = np.full(TRUTH_WAVE.size, 1e-12)
    bands = sorted({b for _, bs in survey.PHOT_CATALOGS.values() for b, _ in bs} | {"f444w"})
    n = 0
    for obj in plan.objects[::20]:
        fnu = true_sed(obj.sed)
        for band in bands:
            assert true_band_flux(fnu, band) == synthetic_photometry(TRUTH_WAVE, fnu, tiny, band)[0], (obj.object_id, band)
            n += 1
    assert n >= 12 * len(bands)


@pytest.mark.parametrize("fnu", [np.ones(10), np.r_[np.ones(TRUTH_WAVE.size - 1), np.nan]])
def test_true_band_flux_wants_a_finite_sed_on_the_truth_grid(fnu):
    with pytest.raises(ValidationError, match="fnu: expected"):
        true_band_flux(fnu, "f444w")


def test_the_band_limited_true_flux_is_the_full_seds_to_the_bit():
    """``true_sed_band_flux`` (the imaging's F444W) evaluates the SED on the band's pixels only and
    gives the full SED's band flux to the bit — lines at the cut's edges included."""
    plan = survey.make_plan("small", 0)
    bands = sorted({b for _, bs in survey.PHOT_CATALOGS.values() for b, _ in bs} | {"f444w"})
    edge_lines = 0
    for obj in plan.objects[::4]:
        full = true_sed(obj.sed)
        for band in bands:
            assert true_sed_band_flux(obj.sed, band) == true_band_flux(full, band), (obj.object_id, band)
            start, stop = _band_support(band)
            cut = TRUTH_WAVE[[start, stop - 1]]
            edge_lines += sum(abs(rest * 1e-4 * (1 + obj.sed.z) - c) < 0.01 * c for _, rest, _, _ in obj.sed.lines
                              for c in cut)
        start, stop = _band_support("f444w")
        assert stop - start < TRUTH_WAVE.size / 5  # a cut grid, not the whole one
    assert edge_lines > 0  # some lines straddle a band's cut
