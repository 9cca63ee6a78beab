"""Fixtures of the imaging tests: a tiny archive root with known geometry (mini_archive.py); a copy
of the demo archive and the figure clean-up shared with tests/plots (tests/shared_fixtures.py)."""
from __future__ import annotations

import pathlib

import pytest
from mini_archive import build_mini_root
from shared_fixtures import archive  # noqa: F401 (fixtures of this folder)


@pytest.fixture(scope="session")
def mini_root(tmp_path_factory) -> pathlib.Path:
    return build_mini_root(tmp_path_factory.mktemp("mini-archive"))


@pytest.fixture
def mini_cf(mini_root, tmp_path):
    """A client on a private copy of the mini archive (so cache tests start empty)."""
    import shutil

    from campfire.client import Campfire

    root = tmp_path / "root"
    shutil.copytree(mini_root, root)
    return Campfire(data_dir=root)
