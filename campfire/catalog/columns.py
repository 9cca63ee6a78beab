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

import functools
import itertools
from typing import Any, Sequence, TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = [
    "Column",
    "OBJECT_COLUMNS",
    "SPECTRUM_COLUMNS",
    "SPECTRUM_COLUMN_NAMES",
    "PROGRAM_COLUMNS",
    "TAG_COLUMNS",
    "VIEW_FIELDS",
    "INSPECTION_COLUMNS",
    "columns_of",
    "columns_table",
    "auto_redshift_values",
    "inspections_table",
    "make_table",
    "objects_table",
    "spectra_table",
    "row_dict",
]

# (name, SQL expression, dtype); an expression in braces is filled in by the compiler
Column = tuple[str, str, str]

# the objects columns whose values depend on the caller: object_aggregates holds them per visibility set
VIEW_FIELDS = ("redshift", "redshift_inspected", "redshift_quality")

# the columns of query_objects, in order. The inspection fields come from the caller's
# visibility set (object_aggregates ``a``): what a caller sees of them rests only on
# inspections of spectra the caller may see (campfire.catalog.aggregates.refresh_inspected)
OBJECT_COLUMNS: tuple[Column, ...] = (
    ("object_id", "o.object_id", "str"),
    ("field", "o.field", "str"),
    ("ra", "o.ra", "float"),
    ("dec", "o.dec", "float"),
    ("redshift", "a.redshift", "float"),
    ("redshift_auto", "o.redshift_auto", "float"),
    ("redshift_inspected", "a.redshift_inspected", "float"),
    ("redshift_quality", "a.redshift_quality", "int"),
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
    # the automatic redshift's 68% interval and confidence (fit_redshift's redshift_lo,
    # redshift_hi, confidence): cut on them, e.g. confidence ≥ 0.9
    ("redshift_auto_lo", "s.redshift_auto_lo", "float"),
    ("redshift_auto_hi", "s.redshift_auto_hi", "float"),
    ("redshift_auto_confidence", "s.redshift_auto_confidence", "float"),
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

# the columns of get_inspections (an inspection record per row; see campfire.catalog.inspections)
INSPECTION_COLUMNS: tuple[Column, ...] = (
    ("inspection_id", "i.inspection_id", "int"),
    ("reviewer", "i.reviewer", "str"),
    ("redshift", "i.redshift", "float"),
    ("quality", "i.quality", "int"),
    ("quality_name", "", "str"),
    ("comment", "i.comment", "str"),
    ("issues", "", "str"),          # comma-joined flag names
    ("spectra_seen", "", "str"),    # comma-joined spectrum IDs (their sha256 are in the records)
    ("resolves_conflict", "i.resolves_conflict", "bool"),
    ("created_at", "i.created_at", "str"),
    ("outdated", "", "bool"),
)

UNITS = {"ra": "deg", "dec": "deg", "exposure_time": "s", "max_exposure_time": "s"}
_MISSING = {"float": float("nan"), "int": 0, "str": "", "bool": False}


def auto_redshift_values(fit: dict[str, Any] | None) -> dict[str, float | None]:
    """A spectrum's automatic-redshift columns from a ``fit_redshift`` result (None without one).

    ``redshift_auto``, ``redshift_auto_lo``, ``redshift_auto_hi`` (the 68% interval)
    and ``redshift_auto_confidence``: what the demo builder and the ingest write.

    Examples
    --------
    >>> auto_redshift_values({'redshift': 2.5, 'redshift_lo': 2.49, 'redshift_hi': 2.51, 'confidence': 0.97})
    {'redshift_auto': 2.5, 'redshift_auto_lo': 2.49, 'redshift_auto_hi': 2.51, 'redshift_auto_confidence': 0.97}
    """
    names = ("redshift_auto", "redshift_auto_lo", "redshift_auto_hi", "redshift_auto_confidence")
    if fit is None:
        return dict.fromkeys(names)
    return dict(zip(names, (float(fit[k]) for k in ("redshift", "redshift_lo", "redshift_hi", "confidence"))))


def columns_of(kind: str) -> tuple[Column, ...]:
    """The columns of a query kind, ``'objects'`` or ``'spectra'``."""
    return OBJECT_COLUMNS if kind == "objects" else SPECTRUM_COLUMNS


def _int_missing(values: np.ndarray) -> np.ndarray:
    """An int column with its None values replaced by 0, then cast."""
    values = values.copy()
    values[values == None] = 0  # noqa: E711 - elementwise on an object array
    return values.astype(np.int64)


def _text_missing(values: np.ndarray, text: np.ndarray) -> np.ndarray:
    """``text`` (``values`` cast to str) with '' where ``values`` is None, as wide as replacing first.

    Blanks the cast's ``'None'`` in place rather than casting again (a tags column,
    None for every untagged object: 60 of a 30″ cone's 90 µs of it, stop 28).
    """
    missing = values == None  # noqa: E711 - elementwise on an object array
    if not missing.any():  # the text 'None', not a missing value
        return text
    text[missing] = ""
    if text.dtype.itemsize == 16:  # 4 characters: the 'None' may have set the width
        text = text.astype(f"<U{max(int(np.char.str_len(text).max()), 1)}")
    return text


def _convert(values: np.ndarray, dtype: str) -> np.ndarray:
    """One column (an object array of row values) as a typed numpy array (None: NaN, 0, False or '').

    Columns rarely hold None, and looking for it costs a Python comparison per value: an
    int column is cast directly (a None makes the cast fail), a str column is checked
    after its cast (a None became ``'None'``); only then are the None values looked for
    (an int column replaced and cast again, a str column's text blanked), and the result
    (the string width too) is that of replacing first.
    """
    if dtype == "float":
        return values.astype(float)  # None becomes NaN
    if dtype == "bool":
        return values.astype(bool)  # truthiness: None is False
    if dtype == "int":
        try:
            return values.astype(np.int64)
        except TypeError:  # a None (int(None) fails)
            return _int_missing(values)
    text = values.astype(str)  # a non-string value becomes str(value)
    if text.dtype.itemsize >= 16 and (text == "None").any():  # 'None' is 4 characters of 4 bytes
        return _text_missing(values, text)
    return text


def _column_arrays(columns: Sequence[Column], rows: list[tuple]) -> list[np.ndarray]:
    """The row tuples as one typed array per column.

    One object array of all rows first (numpy's C loop over the chained row values,
    about twice as fast as assigning the list of tuples), then a cast per column.
    """
    n, width = len(rows), len(columns)
    if sum(map(len, rows)) != n * width:
        raise ValueError(f"rows: expected {width} values in every row, got rows of {sorted(set(map(len, rows)))}")
    grid = np.fromiter(itertools.chain.from_iterable(rows), dtype=object, count=n * width).reshape(n, width)
    return [_convert(grid[:, i], dtype) for i, (_, _, dtype) in enumerate(columns)]


_EMPTY = {"float": float, "int": np.int64, "bool": bool, "str": "U1"}


@functools.lru_cache(maxsize=None)
def _unit(name: str) -> Any:
    """The astropy unit of a column (None without one), parsed once."""
    from astropy import units

    return units.Unit(UNITS[name]) if name in UNITS else None


def _viewed_column(data: np.ndarray, name: str, unit: Any):
    """``data`` as an astropy ``Column`` (not copied) by astropy's own way: a view, then its name and unit."""
    col = data.view(_astropy_column())
    col.name = name
    if unit is not None:
        col.unit = unit
    return col


def _attributes(name: str, unit: Any) -> dict[str, Any]:
    return {"_parent_table": None, "indices": [], "_name": name, "_unit": unit, "_format": None,
            "description": None}


def _built_column(data: np.ndarray, name: str, unit: Any):
    """:func:`_viewed_column`'s Column in a tenth of the time (~0.8 against ~7.5 µs).

    A view runs astropy's ``__array_finalize__``, a dozen attribute settings through
    ``Column.__setattr__`` per column; here the array is made a Column without it (the
    constructor's path, on ``data``'s buffer) and given the attributes a view then a
    name and unit give it (:func:`_attributes`). :func:`_built_columns_match` checks
    once per process that they are what this astropy's view gives, else views are used.
    """
    col = np.ndarray.__new__(_astropy_column(), data.shape, data.dtype, data)
    col.__dict__.update(_attributes(name, unit))
    return col


@functools.lru_cache(maxsize=None)
def _astropy_column() -> type:
    from astropy.table import Column as AstropyColumn  # astropy imports on a first Table, not with campfire

    return AstropyColumn


@functools.lru_cache(maxsize=None)
def _built_columns_match() -> bool:
    """Whether :func:`_built_column` gives this astropy's :func:`_viewed_column` (attributes, buffer, flags)."""
    from astropy import units

    for data, unit in ((np.arange(3.0), units.deg), (np.array(["ab", ""]), None), (np.zeros(0, np.int64), None)):
        viewed, built = _viewed_column(data, "x", unit), _built_column(data, "x", unit)
        if not (viewed.__dict__ == built.__dict__ and type(viewed) is type(built) and built.base is data
                and viewed.flags.writeable == built.flags.writeable
                and (viewed.strides == built.strides or not len(data))):  # numpy's view of nothing: stride 0
            return False
    return True


def _table(names: Sequence[str], arrays: Sequence[np.ndarray]) -> Table:
    """An astropy Table of ``arrays`` (not copied) named ``names``, with :data:`UNITS`.

    The same Table as ``Table(arrays, names=names, copy=False)`` plus the units, in a
    tenth of the time: each array becomes a ``Column`` without a copy
    (:func:`_built_column`, or astropy's view) and the Table is assembled as astropy
    assembles its slices (``Table._make_table_from_cols``), skipping the Column
    copies, the configuration look-ups and the unit parsing that cost ~25 µs per
    column — most of a query that returns few rows. Without that (private) method,
    the public way.
    """
    from astropy.table import Table

    build = _built_column if _built_columns_match() else _viewed_column
    cols = [build(data, name, _unit(name)) if data.flags.c_contiguous else _viewed_column(data, name, _unit(name))
            for name, data in zip(names, arrays)]
    assemble = getattr(Table, "_make_table_from_cols", None)
    if assemble is None:  # pragma: no cover - an astropy without it
        return Table(cols, copy=False)
    table = Table()
    assemble(table, cols, verify=False, names=list(names))
    return table


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
        float columns float64 (None: NaN), int columns int64 (0), bool columns bool
        (False), str columns unicode as wide as their longest value (''; ``<U1``
        when there are no rows); ``ra``, ``dec`` in deg, the exposure times in s.

    Examples
    --------
    >>> t = make_table(PROGRAM_COLUMNS, [(1180, 'JADES', None, 'PI', 1)])
    >>> str(t['slug'].dtype), str(t['program_name'][0]), bool(t['is_public'][0])
    ('<U5', '', True)
    """
    if rows:
        data = _column_arrays(columns, rows)
    else:
        data = [np.zeros(0, dtype=_EMPTY[dtype]) for _, _, dtype in columns]
    return columns_table(columns, data)


def columns_table(columns: Sequence[Column], data: Sequence[np.ndarray]) -> Table:
    """An astropy Table of typed arrays, one per column of ``columns`` (not copied; with units).

    What :func:`make_table` makes of rows, for a reader that gives columns
    (:mod:`campfire.catalog.columnar`): the arrays must already have the dtypes and
    missing values of :func:`make_table`'s.

    Examples
    --------
    >>> t = columns_table(PROGRAM_COLUMNS[:2], [np.array([1180]), np.array(['JADES'])])
    >>> t.colnames, str(t['slug'][0])
    (['program_id', 'slug'], 'JADES')
    """
    if len(data) != len(columns):
        raise ValueError(f"data: expected {len(columns)} arrays, one per column, got {len(data)}")
    return _table([c[0] for c in columns], data)


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


def inspections_table(object_id: str, records: Sequence[dict[str, Any]], consensus: dict[str, Any]) -> Table:
    """An astropy Table of inspection records (oldest first), the consensus in ``meta``.

    Parameters
    ----------
    object_id : str
    records : sequence of dict
        As :func:`campfire.catalog.inspections.inspections_for` (or the API) gives them.
    consensus : dict
        ``{'state', 'redshift', 'quality', 'n_reviewers'}``.

    Returns
    -------
    astropy.table.Table
        :data:`INSPECTION_COLUMNS`; ``meta['object_id']``, ``meta['consensus']``.

    Examples
    --------
    >>> t = inspections_table('x', [], {'state': 'none', 'redshift': None, 'quality': 0, 'n_reviewers': 0})
    >>> len(t), t.meta['consensus']['state']
    (0, 'none')
    """
    rows = [(r["inspection_id"], r["reviewer"], r["redshift"], r["quality"], r["quality_name"], r["comment"],
             ",".join(r["issues"]), ",".join(s["spectrum_id"] for s in r["spectra_seen"]),
             r["resolves_conflict"], r["created_at"], r["outdated"]) for r in records]
    table = make_table(INSPECTION_COLUMNS, rows)
    table.meta["object_id"] = object_id
    table.meta["consensus"] = dict(consensus)
    return table
