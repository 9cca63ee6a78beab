"""Shared pytest configuration: the --runslow option and session-wide fixtures."""
from __future__ import annotations

import os

import pytest

# tests never touch the user's real config or credentials
os.environ.setdefault("CAMPFIRE_CONFIG_DIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), f"campfire-test-config-{os.getpid()}"))
os.environ.pop("CAMPFIRE_API_URL", None)
os.environ.pop("CAMPFIRE_ROOT", None)


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run heavy variants marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="heavy variant: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)
