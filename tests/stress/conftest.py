"""Fixtures of the hardening suite: real servers (in a thread or in their own process), callers, secrets.

The helpers live in stresskit.py; the fixtures ``ids`` (proprietary-only, mixed and public
IDs of the demo), ``_fast_server_config`` and ``credentials_dir`` of tests/server are re-used
as they are.
"""
from __future__ import annotations

import contextlib
import pathlib

import pytest

from stresskit import Secrets, ServerProcess, catalog_secrets, copy_archive, free_port, server_helpers

# the same fixtures as in tests/server: the ``ids`` of the demo, and (autouse) cheap bcrypt and
# short backoffs for the session and a private credentials file for every test
ids = server_helpers.ids
_fast_server_config = server_helpers._fast_server_config
credentials_dir = server_helpers.credentials_dir


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
