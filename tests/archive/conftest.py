"""Fixtures of the ingest tests (the inputs they use are written by ``real_inputs``)."""
from __future__ import annotations

import os
import pathlib

import pytest
from real_inputs import REAL, SPECTRA, write_dja_table, write_photometry


@pytest.fixture(scope="session")
def dja_table(tmp_path_factory) -> pathlib.Path:
    return write_dja_table(tmp_path_factory.mktemp("dja") / "dja_msaexp_emission_lines_v4.test.csv")


@pytest.fixture(scope="session")
def phot_catalog(tmp_path_factory) -> pathlib.Path:
    return write_photometry(tmp_path_factory.mktemp("phot") / "synthetic_nircam.ecsv")


@pytest.fixture(scope="session")
def real_archive(tmp_path_factory, dja_table, phot_catalog) -> pathlib.Path:
    """The real spectra (and the JWST slitlets, which fail) ingested once with the table and the catalogue."""
    from campfire.archive import ingest

    root = tmp_path_factory.mktemp("real") / "archive"
    summary = ingest(root, [str(REAL)], table=dja_table, photometry=phot_catalog, scheduler="threads", workers=2,
                     progress=False)
    assert summary.meta["counts"]["new"] == len(SPECTRA), summary
    return root


@pytest.fixture
def server_env(monkeypatch, tmp_path):
    """Tests never use the user's credentials."""
    monkeypatch.setenv("CAMPFIRE_CONFIG_DIR", str(tmp_path / "campfire-config"))
    monkeypatch.delenv("CAMPFIRE_API_URL", raising=False)
    monkeypatch.delenv("CAMPFIRE_ROOT", raising=False)
    return os.environ
