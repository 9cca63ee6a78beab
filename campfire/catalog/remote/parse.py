"""API responses → the Tables and dicts the local backend returns (pure: no network).

The third of the client's stages (astroquery's ``_parse_result``): so ``remote=True``
gives the same rows, columns and dtypes as a local catalog
(:mod:`campfire.catalog.columns`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from campfire.catalog.columns import Column, columns_of, make_table, objects_table, row_dict, spectra_table
from campfire.errors import APIError

if TYPE_CHECKING:  # astropy.table takes ~0.3 s to import: every Dask worker imports this module
    from astropy.table import Table

__all__ = ["parse_table", "check_columns", "parse_row", "parse_generic_table", "parse_arrays"]


def check_columns(payload: dict, columns: Sequence[Column]) -> None:
    """APIError unless a page's ``columns`` are exactly ``columns`` (an incompatible server)."""
    names = [c[0] for c in columns]
    if payload.get("columns") != names:
        raise APIError(f"server sent columns {payload.get('columns')}, expected {names} (incompatible server version)")


def parse_table(kind: str, payload: dict) -> Table:
    """A page of ``/objects`` or ``/spectra`` → the Table the local backend returns."""
    check_columns(payload, columns_of(kind))
    rows = [tuple(r) for r in payload["rows"]]
    return objects_table(rows) if kind == "objects" else spectra_table(rows)


def parse_row(columns: Sequence[Column], row: dict) -> dict:
    """A JSON row (nulls) → the dict LocalCatalog returns (NaN, 0, '' for missing values)."""
    return row_dict(columns, tuple(row.get(c[0]) for c in columns))


def parse_generic_table(columns: Sequence[Column], payload: dict) -> Table:
    """``{"columns", "rows"}`` (programs, tags) → a Table of ``columns`` (missing ones empty)."""
    names = [c[0] for c in columns]
    got = payload.get("columns", [])
    index = [got.index(n) if n in got else None for n in names]
    rows = [tuple(r[i] if i is not None else None for i in index) for r in payload.get("rows", [])]
    return make_table(columns, rows)


def parse_arrays(payload: dict) -> dict:
    """JSON of the data / redshift-fit endpoints → numpy arrays (null → NaN)."""
    out = {}
    for key, value in payload.items():
        if isinstance(value, list):
            out[key] = np.array(value, dtype=float) if value else np.array([], dtype=float)
        elif value is None:
            out[key] = float("nan")
        else:
            out[key] = value
    return out
