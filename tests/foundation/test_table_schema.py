"""The schema of the Tables the catalog queries return, pinned: names, order, dtypes, units.

Users and the server's JSON depend on it. The lists below are written out (not read
from campfire.catalog.columns) so that a change there shows here. The Tables are built
by a fast path (campfire.catalog.columns._table: Columns by views, assembled as astropy
assembles its slices); the second half checks it against astropy's public constructor,
attribute by attribute and through what users do with a Table.
"""
from __future__ import annotations

import copy
import io
import pickle

import dask
import numpy as np
import pytest
from astropy import units as u
from astropy.table import Column, Table, vstack

from campfire import Campfire
from campfire.catalog import columns

OBJECTS = [
    ("object_id", "U", None), ("field", "U", None), ("ra", "float64", "deg"), ("dec", "float64", "deg"),
    ("redshift", "float64", None), ("redshift_auto", "float64", None), ("redshift_inspected", "float64", None),
    ("redshift_quality", "int64", None), ("programs", "U", None), ("tags", "U", None), ("gratings", "U", None),
    ("n_spectra", "int64", None), ("max_snr", "float64", None), ("max_exposure_time", "float64", "s"),
    ("has_photometry", "bool", None), ("photo_z", "float64", None), ("photo_z_err_lo", "float64", None),
    ("photo_z_err_hi", "float64", None),
]
SPECTRA = [
    ("spectrum_id", "U", None), ("target_id", "U", None), ("object_id", "U", None), ("grating", "U", None),
    ("fits_path", "U", None), ("signal_to_noise", "float64", None), ("exposure_time", "float64", "s"),
    ("reduction_version", "U", None), ("redshift_auto", "float64", None), ("dq_flags", "int64", None),
    ("local_path", "U", None), ("filter", "U", None), ("observation", "U", None), ("program", "U", None),
    ("file_hash", "U", None), ("file_size", "int64", None), ("redshift_auto_lo", "float64", None),
    ("redshift_auto_hi", "float64", None), ("redshift_auto_confidence", "float64", None),
]
PROGRAMS = [("program_id", "int64", None), ("slug", "U", None), ("program_name", "U", None),
            ("pi_name", "U", None), ("is_public", "bool", None)]
TAGS = [("slug", "U", None), ("name", "U", None), ("member_count", "int64", None), ("kind", "U", None),
        ("owner", "U", None), ("description", "U", None)]


@pytest.fixture(scope="module")
def cf(demo_root):
    return Campfire(data_dir=demo_root)


def assert_schema(table: Table, schema: list[tuple[str, str, str | None]]) -> None:
    assert isinstance(table, Table) and type(table) is Table
    assert table.colnames == [name for name, _, _ in schema]
    assert not table.masked and table.meta == {}
    for name, dtype, unit in schema:
        col = table[name]
        assert type(col) is Column, name
        if dtype == "U":
            # unicode exactly as wide as the longest value ('<U1' without rows)
            longest = max((len(v) for v in col.tolist()), default=1)
            assert col.dtype == np.dtype(f"<U{max(longest, 1)}"), (name, col.dtype)
        else:
            assert col.dtype == np.dtype(dtype), (name, col.dtype)
        assert col.unit == (u.Unit(unit) if unit else None), name
        assert (col.description, col.format, dict(col.meta)) == (None, None, {}), name
        assert col.parent_table is table and col.info.indices == []


@pytest.mark.parametrize("reader", ["columnar", "rows"])  # campfire.catalog.columnar, or sqlite3's rows
@pytest.mark.parametrize("filters", [{}, {"gratings": ["PRISM"], "limit": 7}, {"search": "no-such-thing-anywhere"}],
                         ids=["all", "page", "empty"])
def test_query_tables_have_the_pinned_schema(cf, filters, reader):
    with dask.config.set({"campfire.catalog.reader": reader}):
        spectra = cf.query_spectra(**filters)
        objects = cf.query_objects(**filters)
    assert_schema(spectra, SPECTRA)
    assert_schema(objects, OBJECTS)
    if filters.get("search"):
        assert len(spectra) == len(objects) == 0
        assert all(spectra[n].dtype == np.dtype("<U1") for n, d, _ in SPECTRA if d == "U")
    else:
        assert len(spectra) > 0 and len(objects) > 0
        # a column with missing values: NaN, not None or a masked value
        assert np.isnan(objects["photo_z"]).any() and not np.isnan(objects["ra"]).any()


def test_listing_tables_have_the_pinned_schema(cf):
    assert_schema(cf.get_programs(), PROGRAMS)
    assert_schema(cf.get_tags(), TAGS)
    assert len(cf.get_programs()) > 0 and len(cf.get_tags()) > 0


def _replaced_then_cast(values, dtype):
    """An int or str column with None replaced (0 or '') before its cast: the width of the values alone."""
    values = values.copy()
    values[values == None] = 0 if dtype == "int" else ""  # noqa: E711 - elementwise on an object array
    return values.astype(np.int64 if dtype == "int" else str)


def _public_table(cols, rows):
    """The Table as astropy's public constructor makes it (what make_table did before its fast path)."""
    names = [c[0] for c in cols]
    if rows:
        grid = np.empty((len(rows), len(cols)), dtype=object)
        grid[:] = rows
        data = [_replaced_then_cast(grid[:, i], d) if d in ("int", "str") else columns._convert(grid[:, i], d)
                for i, (_, _, d) in enumerate(cols)]
    else:
        data = [np.zeros(0, dtype={"float": float, "int": np.int64, "bool": bool, "str": "U1"}[d])
                for _, _, d in cols]
    table = Table(data, names=names, copy=False)
    for name, unit in columns.UNITS.items():
        if name in table.colnames:
            table[name].unit = unit
    return table


def _ecsv(table):
    buf = io.StringIO()
    table.write(buf, format="ascii.ecsv")
    return buf.getvalue()


# rows with missing values in every kind of column, a str column holding 'None' itself,
# short strings next to a None (the width must be that of the values), a number in a str column
ROWS = [
    ("a", "f", 1.0, None, None, 2.0, None, None, "p", None, "", 3, 1.5, None, 1, None, 0.1, 0.2),
    ("bbbb", None, 2.0, 3.0, 1.0, None, 1.0, 2, None, "t", "g", None, None, 5.0, 0, 1.0, None, None),
    ("None", "x", 2.5, -3.0, 1.0, None, 1.0, 2, 7, "t,u", "g", 4, None, 5.0, None, 1.0, None, None),
]


@pytest.mark.parametrize("cols,rows", [
    (columns.OBJECT_COLUMNS, ROWS), (columns.OBJECT_COLUMNS, ROWS[:1]), (columns.OBJECT_COLUMNS, []),
    (columns.SPECTRUM_COLUMNS, []), (columns.PROGRAM_COLUMNS, [(1, "ab", None, "x", 1), (2, "c", "n", None, 0)]),
    (columns.TAG_COLUMNS, [("lrd", "LRD", 3, "system", "", "little red dots")]),
], ids=["objects", "one-row", "no-objects", "no-spectra", "programs", "tags"])
def test_fast_table_is_the_public_table(cols, rows):
    fast, public = columns.make_table(cols, rows), _public_table(cols, rows)
    assert fast.colnames == public.colnames and len(fast) == len(public)
    for name in fast.colnames:
        a, b = fast[name], public[name]
        assert type(a) is type(b) and a.dtype == b.dtype, name
        assert a.unit == b.unit and a.unit is b.unit, name  # the same unit object
        assert (a.description, a.format, dict(a.meta)) == (b.description, b.format, dict(b.meta)), name
        assert a.parent_table is fast and a.info.indices == b.info.indices == []
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)
    assert type(fast.meta) is type(public.meta) and fast.masked == public.masked
    assert fast.primary_key == public.primary_key
    # what users do with it
    assert _ecsv(fast) == _ecsv(public)
    assert fast.pformat(max_lines=-1, max_width=-1) == public.pformat(max_lines=-1, max_width=-1)
    assert _ecsv(pickle.loads(pickle.dumps(fast))) == _ecsv(public)
    assert _ecsv(copy.deepcopy(fast)) == _ecsv(public)
    assert _ecsv(vstack([fast, public])) == _ecsv(vstack([public, public]))
    first = cols[0][0]
    if rows:
        fast.add_row(fast[0])
        public.add_row(public[0])
        fast.sort(first)
        public.sort(first)
        assert _ecsv(fast) == _ecsv(public) and _ecsv(fast[1:]) == _ecsv(public[1:])
    fast["extra"] = np.arange(len(fast))
    fast.rename_column(first, "renamed")
    fast.add_index("renamed")
    assert fast.colnames[0] == "renamed" and fast.colnames[-1] == "extra"
    assert fast["renamed"].parent_table is fast


def test_missing_values_and_widths():
    t = columns.make_table(columns.OBJECT_COLUMNS, ROWS)
    assert t["object_id"].tolist() == ["a", "bbbb", "None"]  # a value 'None' is kept
    assert t["field"].tolist() == ["f", "", "x"] and t["field"].dtype == np.dtype("<U1")
    assert t["programs"].tolist() == ["p", "", "7"]  # a non-string value becomes its str
    assert t["redshift_quality"].tolist() == [0, 2, 2] and t["n_spectra"].tolist() == [3, 0, 4]
    assert t["has_photometry"].tolist() == [True, False, False]
    assert np.isnan(t["dec"][0]) and t["dec"][2] == -3.0
    with pytest.raises(ValueError, match="rows: expected 18 values"):
        columns.make_table(columns.OBJECT_COLUMNS, [ROWS[0], ROWS[1][:-1]])
