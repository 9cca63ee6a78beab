"""Fixtures of the portal tests: a real server over a copy of the demo archive, a real headless Chromium.

The server is the app under uvicorn on a free loopback port (``campfire.server.testing``),
one per test module; the browser is Debian's ``chromium`` driven by Playwright for Python,
one per test session, a fresh context (cookies, storage) per test. Screenshots the tests
take go to the artefacts folder (``$CAMPFIRE_TEST_ARTEFACTS``, default a folder of the
session's temporary directory), printed at the end of the run.

Every page a test opens is watched: a Content-Security-Policy violation, an uncaught
script error or a JavaScript dialog (``alert()`` from an injected script) fails the test.
"""
from __future__ import annotations

import os
import pathlib

import dask
import pytest
from portal_kit import Portal
from shared_fixtures import link_copy

_ARTEFACTS: list[pathlib.Path] = []


@pytest.fixture(scope="session", autouse=True)
def _fast_server_config():
    with dask.config.set({"campfire.server.bcrypt-rounds": 4, "campfire.api.backoff": 0.01}):
        yield


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory) -> pathlib.Path:
    """Where the tests save screenshots (kept after the run; the path is printed at the end)."""
    path = pathlib.Path(os.environ.get("CAMPFIRE_TEST_ARTEFACTS") or tmp_path_factory.getbasetemp() / "portal-artefacts")
    path.mkdir(parents=True, exist_ok=True)
    _ARTEFACTS.append(path)
    return path


def pytest_terminal_summary(terminalreporter):
    for path in _ARTEFACTS:
        shots = sorted(p.name for p in path.glob("*.png"))
        if shots:
            terminalreporter.write_line(f"portal screenshots in {path}: {', '.join(shots)}")


@pytest.fixture(scope="module")
def portal(demo_root, tmp_path_factory):
    """The real server over a copy of the demo archive, shared by one test module."""
    from campfire.server.testing import ServerThread

    root = link_copy(pathlib.Path(demo_root), tmp_path_factory.mktemp("portal") / "root")
    thread = ServerThread(root).start()
    yield Portal(thread, root)
    thread.stop()


class Watch:
    """What went wrong on the pages of one context: CSP violations, script errors, dialogs."""

    def __init__(self):
        self.problems: list[str] = []

    def attach(self, page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda err: self.problems.append(f"uncaught script error: {err}"))
        page.on("dialog", self._dialog)

    def _console(self, message) -> None:
        text = message.text
        if "Content Security Policy" in text or "CSP" in text:
            self.problems.append(f"CSP: {text}")

    def _dialog(self, dialog) -> None:
        if dialog.type == "confirm":  # the portal's own "delete this tag?" confirmation
            dialog.accept()
            return
        self.problems.append(f"unexpected {dialog.type} dialog: {dialog.message}")
        dialog.dismiss()


@pytest.fixture
def context(browser):
    """A fresh browser context (no cookies); fails the test on CSP violations, script errors, alerts."""
    ctx = browser.new_context(viewport={"width": 1480, "height": 1000})
    ctx.set_default_timeout(30_000)
    watch = Watch()
    ctx.on("page", watch.attach)
    ctx.watch = watch
    yield ctx
    ctx.close()
    assert not watch.problems, "\n".join(watch.problems)


@pytest.fixture
def page(context):
    return context.new_page()
