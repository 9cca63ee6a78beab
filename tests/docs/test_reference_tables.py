"""The parameter tables of the client reference page match the code's signatures.

docs/reference/client.rst carries the seed reference's tables (name, type, default,
description) for ``Campfire()``, ``download()`` and ``plot_cutout()``; each default
written there must be the default of the real signature, and every parameter of the
signature must have a row.
"""
from __future__ import annotations

import ast
import inspect
import pathlib

import pytest

from campfire import Campfire

PAGE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "reference" / "client.rst"
REQUIRED = object()


def list_tables(text: str) -> list[list[list[str]]]:
    """The rows (lists of cell texts, first line of each cell) of every ``list-table``."""
    tables, rows, inside = [], None, False
    for line in text.splitlines():
        if line.startswith(".. list-table::"):
            rows, inside = [], True
            tables.append(rows)
        elif inside and line.startswith("   * - "):
            rows.append([line[len("   * - "):].strip()])
        elif inside and line.startswith("     - "):
            rows[-1].append(line[len("     - "):].strip())
        elif inside and line and not line.startswith(" "):
            inside = False
    return tables


def parameter_tables(text: str) -> list[dict[str, object]]:
    """Every list-table headed Parameter | Type | Default | Description, as {name: default}."""
    out = []
    for rows in list_tables(text):
        if not rows or rows[0][:3] != ["Parameter", "Type", "Default"]:
            continue
        out.append({name.strip("`"): REQUIRED if default == "—" else ast.literal_eval(default.strip("`"))
                    for name, _type, default, *_ in rows[1:]})
    return out


@pytest.mark.parametrize("index,func,skip", [
    (0, Campfire.__init__, {"self"}),
    (1, Campfire.download, {"self"}),
    (2, Campfire.plot_cutout, {"self"}),
])
def test_reference_table_matches_signature(index, func, skip):
    tables = parameter_tables(PAGE.read_text())
    assert len(tables) == 3, "the page has the three parameter tables of the reference"
    documented = tables[index]
    params = {name: p for name, p in inspect.signature(func).parameters.items() if name not in skip}
    assert list(documented) == list(params), f"{func.__qualname__}: rows {list(documented)} vs {list(params)}"
    for name, p in params.items():
        expected = REQUIRED if p.default is inspect.Parameter.empty else p.default
        assert documented[name] == expected, f"{func.__qualname__}({name}=...): page says {documented[name]!r}"
