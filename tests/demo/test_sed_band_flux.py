"""``campfire.demo.sed.true_band_flux``: the demo's true band fluxes (catalog photometry, the
imaging's F444W) with each band's weights computed once per process, to the bit what
``synthetic_photometry`` on the truth grid gives (the demo's bytes rest on it)."""
from __future__ import annotations

import numpy as np
import pytest

from campfire.demo import survey
from campfire.demo.sed import TRUTH_WAVE, true_band_flux, true_sed
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
