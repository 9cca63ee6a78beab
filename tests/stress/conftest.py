"""Fixtures of the hardening suite: real servers (in a thread or in their own process), callers, secrets.

The helpers live in stresskit.py; the ``ids`` fixture of tests/server (proprietary-only,
mixed and public IDs of the demo) is re-used as it is.
"""
from __future__ import annotations

import contextlib
import pathlib

import dask
import pytest

from stresskit import Secrets, ServerProcess, catalog_secrets, copy_archive, free_port, server_helpers

ids = server_helpers.ids  # the same fixture as in tests/server


@pytest.fixture(scope="session", autouse=True)
def _fast_server_config():
    # cheap bcrypt and short backoffs keep the suite fast; everything else is the default
    with dask.config.set({"campfire.server.bcrypt-rounds": 4, "campfire.api.backoff": 0.01}):
        yield


@pytest.fixture(autouse=True)
def credentials_dir(tmp_path, monkeypatch):
    """Every test gets its own credentials file (never the user's)."""
    path = tmp_path / "campfire-config"
    monkeypatch.setenv("CAMPFIRE_CONFIG_DIR", str(path))
    monkeypatch.delenv("CAMPFIRE_API_URL", raising=False)
    monkeypatch.delenv("CAMPFIRE_ROOT", raising=False)
    return path


@pytest.fixture
def server_process_factory(demo_root, tmp_path):
    """Factory of servers in their own processes over private archive copies; all stopped at the end."""
    made: list[ServerProcess] = []

    def make(root: pathlib.Path | None = None, throttle: float = 0.0, port: int | None = None) -> ServerProcess:
        if root is None:
            root = copy_archive(pathlib.Path(demo_root), tmp_path / f"root{len(made)}")
        srv = ServerProcess(root, port or free_port(), throttle).start()
        made.append(srv)
        return srv

    yield make
    for srv in made:
        with contextlib.suppress(Exception):
            srv.stop()


@pytest.fixture(scope="session")
def secrets(demo_root) -> Secrets:
    return catalog_secrets(pathlib.Path(demo_root) / "meta" / "campfire.db")
