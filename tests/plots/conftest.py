"""Fixtures of the plotting tests: a synthetic pipeline-format spectrum (synthetic_spectrum.py); a copy
of the demo archive and the figure clean-up shared with tests/imaging (tests/shared_fixtures.py)."""
from __future__ import annotations

import pytest
from shared_fixtures import archive  # noqa: F401 (fixtures of this folder)
from synthetic_spectrum import write_synthetic


@pytest.fixture(scope="session")
def spec_file(tmp_path_factory) -> str:
    return write_synthetic(tmp_path_factory.mktemp("plots") / "syn_prism_clear_1.spec.fits")


@pytest.fixture
def spec_data(spec_file) -> dict:
    from campfire.io.fits import read_spectrum_2d

    return read_spectrum_2d(spec_file)


@pytest.fixture
def fit_data(spec_file) -> dict:
    from campfire.io.fits import read_redshift_fit

    return read_redshift_fit(spec_file)
