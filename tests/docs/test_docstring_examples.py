"""Every ``>>>`` example in campfire's docstrings runs and prints what it shows.

The public API's docstrings carry short examples (numpydoc ``Examples``); run here so an
example cannot drift from the code it documents. Examples that need a server or a
network say so with ``# doctest: +SKIP``.
"""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import campfire

MODULES = sorted(m.name for m in pkgutil.walk_packages(campfire.__path__, "campfire.") if m.name != "campfire.__main__")


@pytest.mark.parametrize("name", ["campfire", *MODULES])
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (output above)"


def test_the_examples_are_found():
    """The finder sees the package's examples (a refactor that hid them would pass the test above)."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    examples = sum(len(t.examples) for name in MODULES for t in finder.find(importlib.import_module(name), name))
    assert examples > 500
