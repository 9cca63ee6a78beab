"""Fixtures shared by the plot and imaging tests, and the demo-archive copy they use.

tests/ is on ``sys.path`` (through tests/conftest.py): the conftest.py of a folder
re-exports the fixtures it wants (``from shared_fixtures import archive``),
a test module imports ``link_copy``. ``archive`` is one private copy of the session's
demo archive per test module. (Figures are closed after every test by tests/conftest.py.)
"""
from __future__ import annotations

import os
import pathlib
import shutil

import pytest

__all__ = ["archive", "link_copy", "missing_tool"]


def link_copy(src: pathlib.Path, dest: pathlib.Path) -> pathlib.Path:
    """A private archive root: the catalog copied, the rest hard-linked (the demo root stays untouched)."""
    dest.mkdir(parents=True)
    for item in src.iterdir():
        if item.name == "cache":
            continue
        if item.name == "meta":
            shutil.copytree(item, dest / "meta", ignore=shutil.ignore_patterns("*.lock"))
        elif item.is_dir():
            shutil.copytree(item, dest / item.name, copy_function=os.link)
        else:
            shutil.copy2(item, dest / item.name)
    return dest


@pytest.fixture(scope="module")
def archive(demo_root, tmp_path_factory) -> pathlib.Path:
    """A copy of the demo archive shared by the tests of one module."""
    return link_copy(pathlib.Path(demo_root), tmp_path_factory.mktemp("demo-copy") / "root")


def missing_tool(why: str) -> None:
    """A system tool a test needs is absent: skip on a developer's machine, fail in CI (``CI`` set),
    where .ci/run installs it — so a broken CI image cannot turn a test into a silent skip."""
    if os.environ.get("CI"):
        pytest.fail(f"{why} (CI installs it: see .ci/run)")
    pytest.skip(why)
