"""The columns of the catalog's answers, and rows → astropy Tables / dicts.

One place for what ``query_objects`` / ``query_spectra`` (and the program and tag
listings) return: each column's name, the SQL expression that selects it, its dtype
and unit. Both backends build their Tables and row dicts here, so local and remote
answers have the same columns, dtypes and missing-value conventions (NaN for
floats, 0 for ints, '' for strings, False for booleans); :mod:`campfire.models`
reads the spectrum column names from here too.

Examples
--------
>>> objects_table([]).colnames[:4]
['object_id', 'field', 'ra', 'dec']
>>> row_dict(PROGRAM_COLUMNS, (1180, 'JADES', None, 'PI', 1))['program_name']
''
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from astropy.table import Table

__all__ = [
    "Column",
    "OBJECT_COLUMNS",
    "SPECTRUM_COLUMNS",
    "SPECTRUM_COLUMN_NAMES",
    "PROGRAM_COLUMNS",
    "TAG_COLUMNS",
    "columns_of",
    "make_table",
    "objects_table",
    "spectra_table",
    "row_dict",
]

# (name, SQL expression, dtype); an expression in braces is filled in by the compiler
Column = tuple[str, str, str]

# the columns of query_objects, in order
OBJECT_COLUMNS: tuple[Column, ...] = (
    ("object_id", "o.object_id", "str"),
    ("field", "o.field", "str"),
    ("ra", "o.ra", "float"),
    ("dec", "o.dec", "float"),
    ("redshift", "o.redshift", "float"),
    ("redshift_auto", "o.redshift_auto", "float"),
    ("redshift_inspected", "o.redshift_inspected", "float"),
    ("redshift_quality", "o.redshift_quality", "int"),
    ("programs", "a.programs", "str"),
    ("tags", "{tags}", "str"),
    ("gratings", "a.gratings", "str"),
    ("n_spectra", "a.n_spectra", "int"),
    ("max_snr", "a.max_snr", "float"),
    ("max_exposure_time", "a.max_exposure_time", "float"),
    ("has_photometry", "o.has_photometry", "bool"),
    ("photo_z", "o.photo_z", "float"),
    ("photo_z_err_lo", "o.photo_z_err_lo", "float"),
    ("photo_z_err_hi", "o.photo_z_err_hi", "float"),
)

# the columns of query_spectra: the reference's order, then the extra ones
SPECTRUM_COLUMNS: tuple[Column, ...] = (
    ("spectrum_id", "s.spectrum_id", "str"),
    ("target_id", "s.target_id", "str"),
    ("object_id", "s.object_id", "str"),
    ("grating", "s.grating", "str"),
    ("fits_path", "s.fits_path", "str"),
    ("signal_to_noise", "s.signal_to_noise", "float"),
    ("exposure_time", "s.exposure_time", "float"),
    ("reduction_version", "s.reduction_version", "str"),
    ("redshift_auto", "s.redshift_auto", "float"),
    ("dq_flags", "s.dq_flags", "int"),
    ("local_path", "{local_path}", "str"),
    ("filter", "s.filter", "str"),
    ("observation", "s.observation", "str"),
    ("program", "p.slug", "str"),
    ("file_hash", "s.file_hash", "str"),
    ("file_size", "s.file_size", "int"),
)
SPECTRUM_COLUMN_NAMES: tuple[str, ...] = tuple(c[0] for c in SPECTRUM_COLUMNS)

PROGRAM_COLUMNS: tuple[Column, ...] = (
    ("program_id", "p.program_id", "int"),
    ("slug", "p.slug", "str"),
    ("program_name", "p.program_name", "str"),
    ("pi_name", "p.pi_name", "str"),
    ("is_public", "p.is_public", "bool"),
)
TAG_COLUMNS: tuple[Column, ...] = (
    ("slug", "t.slug", "str"),
    ("name", "t.name", "str"),
    ("member_count", "{member_count}", "int"),
    ("kind", "t.kind", "str"),
    ("owner", "coalesce(t.owner, '')", "str"),
    ("description", "t.description", "str"),
)

UNITS = {"ra": "deg", "dec": "deg", "exposure_time": "s", "max_exposure_time": "s"}
_MISSING = {"float": float("nan"), "int": 0, "str": "", "bool": False}


def columns_of(kind: str) -> tuple[Column, ...]:
    """The columns of a query kind, ``'objects'`` or ``'spectra'``."""
    return OBJECT_COLUMNS if kind == "objects" else SPECTRUM_COLUMNS


def _convert(values: Sequence, dtype: str) -> np.ndarray:
    """One column of row values as a numpy array (None: NaN, 0, False or '')."""
    if dtype == "float":
        return np.array(values, dtype=float)  # numpy turns None into NaN
    if dtype == "int":
        if None in values:
            values = [0 if v is None else v for v in values]
        return np.array(values, dtype=np.int64)
    if dtype == "bool":
        return np.array([bool(v) for v in values], dtype=bool)
    if None in values:
        values = ["" if v is None else v for v in values]
    return np.array(values, dtype=str)  # a non-string value becomes str(value), as before


def make_table(columns: Sequence[Column], rows: list[tuple]) -> Table:
    """An astropy Table of row tuples in the order of ``columns`` (with units).

    Parameters
    ----------
    columns : sequence of (name, sql, dtype)
        E.g. :data:`OBJECT_COLUMNS`.
    rows : list of tuple
        One tuple per row, values in column order (None for missing).

    Returns
    -------
    astropy.table.Table
    """
    names = [c[0] for c in columns]
    if rows:
        cols = list(zip(*rows))
        data = [_convert(col, dtype) for col, (_, _, dtype) in zip(cols, columns)]
    else:
        empty = {"float": float, "int": np.int64, "bool": bool, "str": "U1"}
        data = [np.zeros(0, dtype=empty[dtype]) for _, _, dtype in columns]
    table = Table(data, names=names, copy=False)
    for name, unit in UNITS.items():
        if name in table.colnames:
            table[name].unit = unit
    return table


def objects_table(rows: list[tuple]) -> Table:
    """An astropy Table with the query_objects columns from row tuples."""
    return make_table(OBJECT_COLUMNS, rows)


def spectra_table(rows: list[tuple]) -> Table:
    """An astropy Table with the query_spectra columns from row tuples."""
    return make_table(SPECTRUM_COLUMNS, rows)


def row_dict(columns: Sequence[Column], row: Sequence) -> dict[str, Any]:
    """One row tuple as a dict, missing values as in the Tables (NaN, 0, '' or False).

    Parameters
    ----------
    columns : sequence of (name, sql, dtype)
    row : sequence
        Values in column order.

    Returns
    -------
    dict
    """
    out = {}
    for (name, _, dtype), value in zip(columns, row):
        if value is None:
            value = _MISSING[dtype]
        elif dtype == "bool":
            value = bool(value)
        out[name] = value
    return out
