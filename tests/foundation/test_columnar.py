"""The columnar reader (campfire.catalog.columnar) gives the Tables of the row reader, and reads safely.

Local queries read their Tables column by column when the ``fast`` extra
(adbc-driver-sqlite, pyarrow) is installed; the rows of ``sqlite3`` stay the
reference and the fallback. Checked here: the same Tables for every filter of the
oracle tests, each column conversion against the row reader's, the fallbacks (a
column whose type the first batch did not show, a WAL-mode catalog, no extra), and
the locking: a read holds the file still against writers, and sees their commits
(and a replaced file) afterwards.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import threading

import dask
import numpy as np
import pytest
import pyarrow as pa  # the 'fast' extra, which the dev extra installs
from hypothesis import given, settings, strategies as st
from test_local_catalog import filter_cases, raw  # noqa: F401 - the oracle's cases and its raw tables

from campfire import Campfire, CampfireError, ValidationError
from campfire.catalog import columnar, columns, local
from campfire.catalog.filters import build_query
from campfire.catalog.local import LocalCatalog
from campfire.catalog.visibility import Visibility


def _query(cf, kind, reader, **filters):
    with dask.config.set({"campfire.catalog.reader": reader}):
        return (cf.query_objects if kind == "objects" else cf.query_spectra)(**filters)


def assert_same_table(a, b):
    assert a.colnames == b.colnames and len(a) == len(b)
    for name in a.colnames:
        x, y = a[name], b[name]
        assert type(x) is type(y) and x.dtype == y.dtype, (name, x.dtype, y.dtype)
        assert x.unit is y.unit, name
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=name)


@pytest.fixture(scope="module")
def cf(demo_root):
    return Campfire(data_dir=demo_root)


@pytest.fixture
def counted(monkeypatch):
    """How many Tables the columnar reader made (to show the path a test took)."""
    calls = []
    real = columnar.read_columns

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(len(out[0]))
        return out

    monkeypatch.setattr(columnar, "read_columns", spy)
    return calls


@pytest.mark.parametrize("kind", ["objects", "spectra"])
def test_columnar_tables_are_the_row_tables(cf, raw, kind, counted):  # noqa: F811
    cases = filter_cases(raw) + [{}, {"sort": "redshift", "sort_dir": "desc", "limit": 50},
                                 {"search": "no-such-thing-anywhere"}, {"offset": 7, "limit": 3}]
    for filters in cases:
        if kind == "spectra" and filters.get("sort") == "redshift":
            filters = {**filters, "sort": "redshift_auto"}
        assert_same_table(_query(cf, kind, "columnar", **filters), _query(cf, kind, "rows", **filters))
    assert len(counted) == len(cases) and max(counted) > 100 and min(counted) == 0


def test_columnar_table_is_the_users_to_change(cf):
    t = _query(cf, "spectra", "columnar", limit=5)
    t["signal_to_noise"][0] = -1.0
    t["object_id"][1] = "x"
    t.sort("signal_to_noise")
    assert t["signal_to_noise"][0] == -1.0 and "x" in list(t["object_id"])


TEXT = st.lists(st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
                                              max_size=12)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_text_columns_convert_as_the_rows_do(values):
    want = columns._convert(np.array(values, dtype=object), "str") if values else np.zeros(0, "U1")
    shipped = columnar._PYTHON_STRINGS_UP_TO
    try:
        for up_to in (shipped, 0):  # a short column through Python strings, a long one through Arrow's buffers
            columnar._PYTHON_STRINGS_UP_TO = up_to
            got = columnar.column_array(pa.array(values, type=pa.string()), "str")
            assert got.dtype == want.dtype and got.tolist() == want.tolist()
            assert got.flags.writeable
    finally:
        columnar._PYTHON_STRINGS_UP_TO = shipped


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-2**62, 2**62)), max_size=30),
       st.lists(st.one_of(st.none(), st.floats(allow_nan=False)), max_size=30))
def test_number_columns_convert_as_the_rows_do(ints, floats):
    for values, arrow, dtypes in ((ints, pa.int64(), ("int", "bool", "float")), (floats, pa.float64(), ("float",))):
        for dtype in dtypes:
            got = columnar.column_array(pa.array(values, type=arrow), dtype)
            want = columns._convert(np.array(values, dtype=object), dtype) if values else got
            assert got.dtype == want.dtype, dtype
            np.testing.assert_array_equal(got, want)
            assert got.flags.writeable


def test_sliced_and_chunked_arrays():
    long = pa.array(["x" * (i % 7) if i % 5 else None for i in range(columnar._PYTHON_STRINGS_UP_TO + 2)])
    assert columnar.column_array(long.slice(1), "str").tolist() == [v or "" for v in long.slice(1).to_pylist()]
    assert columnar.column_array(long, "str").dtype == np.dtype("<U6")
    chunked = pa.chunked_array([pa.array(["a", None]), pa.array(["ccc", "é"])])
    assert columnar.column_array(chunked, "str").tolist() == ["a", "", "ccc", "é"]
    assert columnar.column_array(pa.array(["zz", "a", "bb"]).slice(1), "str").tolist() == ["a", "bb"]
    assert columnar.column_array(pa.array(["", ""]), "str").dtype == np.dtype("<U1")
    assert columnar.column_array(pa.array([None, None], type=pa.int64()), "str").tolist() == ["", ""]


@pytest.mark.parametrize("values,dtype", [([1, 2], "str"), ([1.5], "int"), (["1"], "float"), ([b"x"], "str")])
def test_other_types_go_to_the_rows(values, dtype):
    with pytest.raises(columnar.Unsupported):
        columnar.column_array(pa.array(values), dtype)


def _small_catalog(path, rows):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (i INTEGER PRIMARY KEY, x REAL, s TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    conn.commit()
    conn.close()
    return path


def test_a_type_the_first_batch_did_not_show(tmp_path):
    # 1,500 NULLs, then numbers: the driver's first batch (1,024 rows) says int64, the rest is read in one batch
    rows = [(i, None if i < 1500 else i / 2, None if i < 1500 else f"s{i}") for i in range(1600)]
    db = _small_catalog(tmp_path / "c.db", rows)
    x, s = columnar.read_columns(db, "SELECT x, s FROM t ORDER BY i", [], ["float", "str"])
    assert np.isnan(x[:1500]).all() and x[1500] == 750.0 and s[0] == "" and s[-1] == "s1599"
    assert x.dtype == np.float64 and s.dtype == np.dtype("<U5")


def test_a_wal_catalog_is_read_through_rows(tmp_path, demo_root, counted):
    root = tmp_path / "root"
    shutil.copytree(demo_root / "meta", root / "meta")
    conn = sqlite3.connect(root / "meta" / "campfire.db")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    with pytest.raises(columnar.Unsupported, match="WAL"):
        columnar.read_columns(root / "meta" / "campfire.db", "SELECT 1", [], ["int"])
    cat = LocalCatalog(root)
    with dask.config.set({"campfire.catalog.reader": "columnar"}):
        table = cat.query(build_query("spectra", gratings=["PRISM"]))
    with dask.config.set({"campfire.catalog.reader": "rows"}):
        assert_same_table(table, cat.query(build_query("spectra", gratings=["PRISM"])))
    assert len(table) > 0 and counted == []


def test_a_read_holds_the_file_still_and_sees_commits_after(tmp_path, monkeypatch):
    db = _small_catalog(tmp_path / "c.db", [(i, float(i), "a") for i in range(10)])
    blocked = []
    real_run = columnar._Reader._run

    def run_and_try_to_write(self, sql, params, batch_rows):
        if sql.startswith("SELECT"):
            writer = sqlite3.connect(db, timeout=0)
            try:
                writer.execute("UPDATE t SET x = -1")
                writer.commit()
            except sqlite3.OperationalError as err:
                blocked.append(str(err))
            finally:
                writer.close()
        return real_run(self, sql, params, batch_rows)

    monkeypatch.setattr(columnar._Reader, "_run", run_and_try_to_write)
    (x,) = columnar.read_columns(db, "SELECT x FROM t ORDER BY i", [], ["float"])
    assert blocked == ["database is locked"] and x.tolist() == [float(i) for i in range(10)]
    monkeypatch.setattr(columnar._Reader, "_run", real_run)
    writer = sqlite3.connect(db)
    writer.execute("UPDATE t SET x = x + 100")
    writer.commit()
    writer.close()
    (x,) = columnar.read_columns(db, "SELECT x FROM t ORDER BY i", [], ["float"])
    assert x.tolist() == [i + 100.0 for i in range(10)]  # the driver's page cache saw the commit


def test_a_replaced_file_is_read_anew(tmp_path):
    db = _small_catalog(tmp_path / "c.db", [(1, 1.0, "old")])
    assert columnar.read_columns(db, "SELECT s FROM t", [], ["str"])[0].tolist() == ["old"]
    new = _small_catalog(tmp_path / "new.db", [(1, 1.0, "new"), (2, 2.0, "new")])
    os.replace(new, db)  # as sync swaps a catalog in
    assert columnar.read_columns(db, "SELECT s FROM t", [], ["str"])[0].tolist() == ["new", "new"]


def test_threads_read_at_once(cf, demo_root):
    want = _query(cf, "spectra", "rows")
    cat = LocalCatalog(demo_root)
    results, errors = [], []

    def work():
        try:
            for _ in range(5):
                results.append(cat.query(build_query("spectra")))
        except Exception as err:  # pragma: no cover - shown by the assert below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(4)]
    with dask.config.set({"campfire.catalog.reader": "columnar"}):  # set once: dask.config.set is not thread-safe
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert not errors and len(results) == 20
    for table in results:
        assert_same_table(table, want)


def test_the_reader_setting(cf, monkeypatch):
    with dask.config.set({"campfire.catalog.reader": "fastest"}):
        with pytest.raises(ValidationError, match="campfire.catalog.reader.*auto, columnar, rows"):
            cf.query_objects(limit=1)
    monkeypatch.setattr(columnar, "available", lambda: False)
    with dask.config.set({"campfire.catalog.reader": "columnar"}):
        with pytest.raises(CampfireError, match=r'campfire\[fast\]'):
            cf.query_objects(limit=1)
    assert len(cf.query_objects(limit=3)) == 3  # auto without the extra: rows


def test_auto_reads_small_results_through_rows(cf, raw, monkeypatch):  # noqa: F811
    """auto: a result the plan bounds to few rows (a small page, a cone, nothing) through rows, others through columns.

    The same Table either way (to the dtype, unit and value), and a reader insisted on is used.
    """
    monkeypatch.setattr(local, "_ROWS_UP_TO", 20)  # the demo is small: "few" is 20 rows here
    calls = []
    read_columns = columnar.read_columns
    monkeypatch.setattr(columnar, "read_columns", lambda *a, **k: calls.append(a[1]) or read_columns(*a, **k))
    o = raw["objects"]["ember_uds_p4_123456"]
    near = {"cone_search": (o["ra"], o["dec"], 2.0)}
    wide = {"cone_search": (o["ra"], o["dec"], 1800.0)}
    nothing = {"cone_search": (o["ra"], o["dec"] + 1.0, 0.01)}
    cases = [  # (kind, filters, read through columns)
        ("spectra", {"limit": 10}, False),
        ("spectra", {"limit": 600}, True),
        ("spectra", {}, True),  # no limit, no index: not known, maybe large
        ("objects", near, False),
        ("objects", wide, True),
        ("objects", nothing, False),
        ("spectra", nothing, False),  # the spectra_object probe counts 0
        ("spectra", {"fields": ["uds"], "redshift_range": (50.0, 60.0)}, False),  # the field+redshift probe: 0
    ]
    cat = cf.local_catalog
    bounds = [cat._plan(build_query(kind, **f).resolve(cat.vocabulary()), bound=True).max_rows for kind, f, _ in cases]
    assert bounds[:2] == [10, 600] and bounds[2] is None and bounds[3] <= 20 < bounds[4]
    assert bounds[5:] == [0, 0, 0]
    for (kind, f, by_columns), bound in zip(cases, bounds):
        calls.clear()
        auto = _query(cf, kind, "auto", **f)
        assert len(calls) == by_columns, (kind, f, bound)
        assert bound is None or len(auto) <= bound
        assert_same_table(auto, _query(cf, kind, "rows", **f))
        calls.clear()
        assert_same_table(auto, _query(cf, kind, "columnar", **f))
        assert len(calls) == 1, (kind, f)
    assert 1 <= len(_query(cf, "objects", "auto", **near)) <= 20 < len(_query(cf, "objects", "auto", **wide))


def test_readers_of_files_that_are_gone_close(tmp_path):
    first = _small_catalog(tmp_path / "a.db", [(1, 1.0, "a")])
    columnar.read_columns(first, "SELECT s FROM t", [], ["str"])
    (reader,) = columnar._POOL[columnar._PATHS[str(first)]]
    first.unlink()
    second = _small_catalog(tmp_path / "b.db", [(1, 1.0, "b")])
    assert columnar.read_columns(second, "SELECT s FROM t", [], ["str"])[0].tolist() == ["b"]
    assert str(first) not in columnar._PATHS
    with pytest.raises(sqlite3.ProgrammingError):  # closed
        reader.guard.execute("SELECT 1")
    with pytest.raises(columnar.Unsupported, match="no catalog file"):
        columnar.read_columns(first, "SELECT s FROM t", [], ["str"])


def test_reads_never_see_half_a_commit_of_another_process(tmp_path):
    # another process rewrites every row in each transaction (many pages); every read must see one commit
    db = _small_catalog(tmp_path / "c.db", [(i, 0.0, "v" * 40) for i in range(20_000)])
    script = (f"import sqlite3, time\nc = sqlite3.connect({str(db)!r}, timeout=30)\nend = time.time() + 2\nk = 0\n"
              "while time.time() < end:\n    k += 1\n    c.execute('UPDATE t SET x = ?', (float(k),))\n    c.commit()\n"
              "print(k)\n")
    import subprocess
    import sys

    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    seen = set()
    while writer.poll() is None:
        (x,) = columnar.read_columns(db, "SELECT x FROM t ORDER BY i", [], ["float"])
        assert len(x) == 20_000 and (x == x[0]).all(), np.unique(x)[:5]
        seen.add(float(x[0]))
    commits = int(writer.communicate(timeout=30)[0])
    assert writer.returncode == 0 and commits > 5 and len(seen) > 3  # the reads fell between many commits


def test_the_tags_column_for_every_caller(demo_root, tmp_path):
    """The objects' ``tags`` column for every caller, through either reader — several tags an object
    (distinct, sorted by name), user tags named slug or owner/slug (two users' tags of one title stay
    two), private ones hidden, a user tag sharing a system slug, two system tags of one slug (NULL owners
    are distinct to UNIQUE (slug, owner)) shown once."""
    root = tmp_path / "root"
    (root / "meta").mkdir(parents=True)
    shutil.copyfile(demo_root / "meta" / "campfire.db", root / "meta" / "campfire.db")
    conn = sqlite3.connect(root / "meta" / "campfire.db")
    stamp = "2026-12-03T00:00:00Z"
    for slug, kind, owner in [("cands", "shared", "alice"), ("cands", "shared", "bob"), ("mine", "private", "bob"),
                              ("lrd", "private", "alice"), ("Zeta", "shared", "alice"), ("ä-tag", "shared", "bob"),
                              ("lrd", "system", None)]:
        conn.execute("INSERT INTO tags (slug, name, kind, owner, updated_at) VALUES (?, ?, ?, ?, ?)",
                     (slug, slug, kind, owner, stamp))
    oids = [r[0] for r in conn.execute("SELECT object_id FROM objects ORDER BY object_id LIMIT 40")]
    conn.executemany("INSERT OR IGNORE INTO object_tags (tag_id, object_id) SELECT tag_id, ? FROM tags "
                     "WHERE (length(?) + tag_id) % 3 != 0", [(o, o) for o in oids[::2]])
    conn.commit()
    tagged = conn.execute("SELECT max(n) FROM (SELECT count(*) n FROM object_tags GROUP BY object_id)").fetchone()[0]
    conn.close()
    assert tagged >= 5
    everything = Visibility.everything()
    callers = [everything, Visibility(user="alice", all_tags=False), Visibility(user="bob", all_tags=False),
               Visibility(user=None, all_tags=False), Visibility(program_ids=frozenset(), key="", user="bob",
                                                                  all_tags=False)]
    cases = [{"limit": 30}, {"limit": 7, "offset": 11, "sort_dir": "desc"}, {"tags": ["lrd"], "limit": 30},
             {"search": "no-such-object", "limit": 30}]
    seen = set()
    for visibility in callers:
        cat = LocalCatalog(root, visibility=visibility)
        for f in cases:
            q = build_query("objects", **f).resolve(cat.vocabulary())
            got = columns.objects_table(cat.conn.execute(*cat.compile(q)).fetchall())  # through rows
            with dask.config.set({"campfire.catalog.reader": "columnar"}):
                assert_same_table(got, cat.query(q))
            for t in got["tags"]:
                assert t.split(",") == sorted(set(t.split(","))), t
            seen |= {(visibility.user, tuple(t.split(","))) for t in got["tags"]}
    names = {user: {n for u, t in seen if u == user for n in t} for user in (None, "alice", "bob")}
    assert {"alice/cands", "bob/cands", "alice/lrd", "lrd", "bob/mine", "bob/ä-tag"} <= names[None]  # all_tags
    assert {"cands", "bob/cands", "Zeta", "bob/ä-tag", "alice/lrd"} <= names["alice"]  # her lrd: a system slug
    assert "bob/mine" not in names["alice"] and {"mine", "cands", "alice/cands"} <= names["bob"]
    assert max(len(t) for _, t in seen) >= 5 and ("",) in {t for _, t in seen}
    with contextlib.closing(sqlite3.connect(root / "meta" / "campfire.db")) as conn:  # one has both system lrd tags
        assert conn.execute("SELECT max(n) FROM (SELECT count(*) n FROM object_tags JOIN tags USING (tag_id) "
                            "WHERE slug = 'lrd' AND kind = 'system' GROUP BY object_id)").fetchone()[0] == 2


def test_the_tags_column_with_one_or_two_visible_tags(demo_root, tmp_path):
    """The tags column orders and dedupes only an object's two or more visible names: exactly two in the
    reverse of their tag_id order come sorted, two system tags of one slug come once, one visible of
    several is shown alone, none is '' — for each caller, through either reader and a single record."""
    root = tmp_path / "root"
    (root / "meta").mkdir(parents=True)
    shutil.copyfile(demo_root / "meta" / "campfire.db", root / "meta" / "campfire.db")
    with contextlib.closing(sqlite3.connect(root / "meta" / "campfire.db")) as conn:
        free = [r[0] for r in conn.execute("SELECT object_id FROM objects WHERE object_id NOT IN "
                                           "(SELECT object_id FROM object_tags) ORDER BY object_id LIMIT 4")]
        tag = {}
        for slug, kind, owner in [("zz", "system", None), ("aa", "system", None), ("dup", "system", None),
                                  ("dup", "system", None), ("mine", "private", "bob"), ("ours", "shared", "bob")]:
            cur = conn.execute("INSERT INTO tags (slug, name, kind, owner, updated_at) VALUES (?, ?, ?, ?, ?)",
                               (slug, slug, kind, owner, "2026-12-03T00:00:00Z"))
            tag.setdefault(slug, []).append(cur.lastrowid)
        members = {free[0]: tag["zz"] + tag["aa"], free[1]: tag["dup"], free[2]: tag["mine"] + tag["ours"]}
        conn.executemany("INSERT INTO object_tags (tag_id, object_id) VALUES (?, ?)",
                         [(t, o) for o, ts in members.items() for t in ts])
        conn.commit()
    assert tag["zz"][0] < tag["aa"][0] and len(tag["dup"]) == 2  # an unordered list would read "zz,aa", "dup,dup"
    expected = {  # caller → the four objects' tags
        Visibility.everything(): ["aa,zz", "dup", "bob/mine,bob/ours", ""],
        Visibility(user="bob", all_tags=False): ["aa,zz", "dup", "mine,ours", ""],
        Visibility(user="alice", all_tags=False): ["aa,zz", "dup", "bob/ours", ""],
        Visibility(user=None, all_tags=False): ["aa,zz", "dup", "", ""],
    }
    for visibility, want in expected.items():
        cat = LocalCatalog(root, visibility=visibility)
        q = build_query("objects")
        for reader in ("rows", "columnar"):
            with dask.config.set({"campfire.catalog.reader": reader}):
                table = cat.query(q)
            got = dict(zip(table["object_id"], table["tags"]))
            assert [got[o] for o in free] == want, (visibility, reader)
        assert [cat.object_row(o)["tags"] for o in free] == want, visibility
