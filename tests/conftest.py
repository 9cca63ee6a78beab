"""Shared pytest configuration: the --runslow option and session-wide fixtures."""
from __future__ import annotations

import os
import sys

import pytest

# tests never touch the user's real config or credentials
os.environ.setdefault("CAMPFIRE_CONFIG_DIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), f"campfire-test-config-{os.getpid()}"))
os.environ.pop("CAMPFIRE_API_URL", None)
os.environ.pop("CAMPFIRE_ROOT", None)


@pytest.fixture(autouse=True)
def close_figures():
    """No matplotlib figure outlives its test (plot() draws on the current axes, like pandas)."""
    yield
    plt = sys.modules.get("matplotlib.pyplot")  # never imported: nothing to close
    if plt is not None:
        plt.close("all")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run heavy variants marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="heavy variant: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    """The small demo archive (seed 0), built once per test session into a temporary directory.

    ``CAMPFIRE_TEST_DEMO_ROOT`` may point at an already built small seed-0 demo of the
    current generator version to skip the build (it is used read-only; do not modify it).
    """
    import pathlib

    import campfire.demo

    prebuilt = os.environ.get("CAMPFIRE_TEST_DEMO_ROOT")
    if prebuilt:
        marker = campfire.demo.read_build_marker(prebuilt) or {}
        if marker == {"size": "small", "seed": 0, "version": campfire.demo.DEMO_VERSION}:
            return pathlib.Path(prebuilt).absolute()
    root = tmp_path_factory.mktemp("demo") / "root"
    return campfire.demo.build(root, size="small", seed=0, progress=False)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session (Debian's, never a downloaded one).

    Shared by every browser test: Playwright's sync API runs one instance per thread, so a
    second ``sync_playwright()`` while this one lives fails ("Sync API inside the asyncio loop").
    """
    import shutil

    from shared_fixtures import missing_tool

    if not shutil.which("chromium") and not os.path.exists(CHROMIUM):
        missing_tool("no Chromium for the browser tests (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
