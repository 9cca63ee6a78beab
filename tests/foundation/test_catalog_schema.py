"""Catalog schema version 2: the spectra's copies of their object's columns, the upgrade of
version-1 files, and the access paths LocalCatalog chooses for query_spectra.

Every access path must return exactly the rows (and row order) of every other one, so
the same filter cases run through: the default choice, forced table scans, a version-1
catalog answered through the join, and that catalog after ``upgrade_catalog``.
"""
from __future__ import annotations

import logging
import re
import shutil
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from test_local_catalog import expected_objects, expected_spectra, filter_cases, raw  # noqa: F401, F811 (fixture)

from campfire import Campfire
from campfire.catalog import planner
from campfire.catalog.filters import build_query
from campfire.catalog.local import LocalCatalog
from campfire.catalog.visibility import Visibility
from campfire.catalog.schema import (
    FIT_COLUMNS,
    OBJECT_COPIES,
    SCHEMA_VERSION,
    create_catalog,
    finalize_catalog,
    has_object_copies,
    schema_statements,
    upgrade_catalog,
)
from campfire.flags import DQFlags

COPIES = ", ".join(OBJECT_COPIES)


def _copy_root(demo_root, dest):
    """A private copy of the demo catalog at the current schema (a prebuilt older demo is upgraded)."""
    (dest / "meta").mkdir(parents=True)
    shutil.copyfile(demo_root / "meta" / "campfire.db", dest / "meta" / "campfire.db")
    upgrade_catalog(dest)
    return dest


def make_v1(root):
    """Turn the catalog under ``root`` into what campfire wrote before schema version 2."""
    conn = sqlite3.connect(root / "meta" / "campfire.db")
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    for name in ("spectra_field_redshift_filters", "spectra_field_redshift", "spectra_redshift"):
        conn.execute(f"DROP INDEX IF EXISTS {name}")  # a file has one of the first two (or both: upgraded)
    for col in OBJECT_COPIES:
        conn.execute(f"ALTER TABLE spectra DROP COLUMN {col}")
    conn.execute("UPDATE archive_meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    return root


@pytest.fixture(scope="module")
def v1_root(demo_root, tmp_path_factory):
    return make_v1(_copy_root(demo_root, tmp_path_factory.mktemp("v1") / "root"))


@pytest.fixture(scope="module")
def v2_root(demo_root, tmp_path_factory):
    return _copy_root(demo_root, tmp_path_factory.mktemp("v2") / "root")


def _version(conn) -> str:
    return conn.execute("SELECT value FROM archive_meta WHERE key = 'schema_version'").fetchone()[0]


def _mismatched_copies(conn) -> int:
    return conn.execute(
        "SELECT count(*) FROM spectra s LEFT JOIN objects o ON o.object_id = s.object_id WHERE "
        + " OR ".join(f"s.{copy} IS NOT o.{col}" for copy, col in OBJECT_COPIES.items())
    ).fetchone()[0]


def _cases(raw):
    cases = [dict(f) for f in filter_cases(raw)]
    cases += [
        {},
        {"limit": 25},
        {"gratings": ["PRISM"], "limit": 10, "offset": 5},
        {"sort": "signal_to_noise", "sort_dir": "desc", "limit": 20},
        {"sort": "observation", "redshift_range": (1.0, 5.0)},
        {"redshift_range": (0.0, 20.0), "gratings": ["PRISM"], "max_snr_range": (3.0, 1e9),
         "dq_flags": ~DQFlags.CONTAMINATION, "inspected_only": True, "sort": "exposure_time"},
        {"tags": ["lrd"], "sort": "object_id", "sort_dir": "desc", "limit": 7},
        {"redshift_range": (2.0, 4.0), "search": "uds", "limit": 5},
        {"gratings": ["G395M"], "redshift_range": (0.0, 20.0), "limit": 30},
        {"gratings": ["G140M"], "sort_dir": "desc", "offset": 3, "limit": 12},
        # every filter the field+redshift index tests in its entries
        {"fields": ["uds"], "redshift_range": (1.0, 9.0), "gratings": ["PRISM", "G395M"], "max_snr_range": (2.0, 1e9),
         "dq_flags": ~DQFlags.CONTAMINATION, "redshift_quality": [3, 4], "has_photometry": True},
        {"fields": ["uds"], "programs": [max(raw["programs"], key=[s["program_id"] for s in raw["spectra"]].count)],
         "gratings": ["PRISM", "G395M"], "inspected_only": True, "sort": "signal_to_noise"},
    ]
    return cases


def _spectra(catalog, f):
    q = build_query("spectra", **f)
    return catalog.query(q), catalog.count(q)


def _same_table(a, b, label):
    assert a.colnames == b.colnames, label
    assert len(a) == len(b), label
    for name in a.colnames:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if name == "local_path":  # absolute: the copies live under other roots
            x, y = np.char.partition(x, "/products/")[:, 1:], np.char.partition(y, "/products/")[:, 1:]
        assert x.dtype.kind == y.dtype.kind, (label, name)
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), (label, name)


def test_new_catalogs_are_current_with_equal_copies(demo_root):
    conn = sqlite3.connect(f"file:{demo_root / 'meta' / 'campfire.db'}?mode=ro", uri=True)
    try:
        assert _version(conn) == SCHEMA_VERSION == "4", \
            "the demo predates catalog schema 4 (a stale CAMPFIRE_TEST_DEMO_ROOT?)"
        assert has_object_copies(conn)
        assert _mismatched_copies(conn) == 0
        assert conn.execute("SELECT count(*) FROM spectra WHERE object_field IS NULL").fetchone()[0] == 0
    finally:
        conn.close()


def test_schema_statements_put_indexes_and_triggers_after_the_rows():
    tables, post = schema_statements()
    assert not any("TRIGGER" in s or "INDEX" in s for s in tables)
    assert {s.split()[5] for s in post if "TRIGGER" in s} == {
        "spectra_object_copy_insert", "spectra_object_copy_move", "objects_copy_insert", "objects_copy_update",
        "objects_copy_delete", "inspections_keep_history", "inspections_keep_rows"}


def test_every_access_path_returns_the_same_rows(v2_root, v1_root, raw, monkeypatch):
    """Default choice, forced scans and version 1 (the join): one answer, in one order."""
    v2 = LocalCatalog(v2_root)
    old = LocalCatalog(v1_root)
    assert v2._layout().copies and not old._layout().copies
    for f in _cases(raw):
        want = _spectra(old, f)
        got = _spectra(v2, f)
        _same_table(want[0], got[0], f)
        assert want[1] == got[1], f
        if "limit" not in f:
            assert got[1] == len(got[0]), f
        if not {"limit", "offset", "sort"} & set(f):
            assert set(got[0]["spectrum_id"]) == expected_spectra(raw, f), f
    # the same with every index refused (a catalog too large for any filter to be selective)
    monkeypatch.setattr(planner, "_MIN_CAP", 0)
    monkeypatch.setattr(planner, "_SELECTIVE", 0.0)
    for page_walk in (0, 10**9):
        monkeypatch.setattr(planner, "_PAGE_WALK", page_walk)
        scan = LocalCatalog(v2_root)
        for f in _cases(raw):
            _same_table(_spectra(old, f)[0], _spectra(scan, f)[0], (f, page_walk))
            assert _spectra(scan, f)[1] == _spectra(old, f)[1], f


def test_objects_and_records_agree_between_versions(v2_root, v1_root, raw):
    new, old = Campfire(data_dir=v2_root), Campfire(data_dir=v1_root)
    for f in filter_cases(raw):
        _same_table(old.query_objects(**f), new.query_objects(**f), f)
        assert set(new.query_objects(**f)["object_id"]) == expected_objects(raw, f)
    oid = "ember_uds_p4_123456"

    def rel(row):  # local_path is absolute: the copies live under other roots
        return dict(row, local_path=row["local_path"].rpartition("/products/")[1:])

    assert [rel(r) for r in new.local_catalog.object_spectra(oid)] == \
        [rel(r) for r in old.local_catalog.object_spectra(oid)]
    sid = new.local_catalog.object_spectra(oid)[0]["spectrum_id"]
    assert rel(new.local_catalog.spectrum_row(sid)) == rel(old.local_catalog.spectrum_row(sid))


def test_access_paths_follow_the_probes(v2_root, monkeypatch):
    """Selective filters drive an index; broad ones scan the table once; a small page walks the order."""
    cat = LocalCatalog(v2_root)
    n = cat._layout().n_spectra
    monkeypatch.setattr(planner, "_MIN_CAP", 0)
    monkeypatch.setattr(planner, "_SELECTIVE", 0.2)  # the demo is small: call 20 % selective

    def plan(count=False, **f):
        sql, params = cat.compile(build_query("spectra", **f).resolve(cat.vocabulary()), count=count)
        return " | ".join(r[-1] for r in cat.conn.execute("EXPLAIN QUERY PLAN " + sql, params))

    some_obs = cat.observations()[0]
    assert "USING INDEX spectra_observation" in plan(observations=[some_obs])
    assert "USING INDEX spectra_field_redshift_filters (" in plan(fields=["uds"], redshift_range=(3, 4))
    # the other filters are tested in the index's entries: a count of them reads the index alone, for a
    # caller of a few programs too (program_id is one of its columns)
    multi = dict(fields=["uds"], redshift_range=(3, 4), gratings=["PRISM"], max_snr_range=(1, 1e9),
                 dq_flags=~DQFlags.CONTAMINATION, inspected_only=True, has_photometry=True)
    assert plan(**multi).startswith("SEARCH s USING INDEX spectra_field_redshift_filters (object_field=? AND "
                                     "object_redshift>? AND object_redshift<?)")
    assert plan(count=True, **multi) == "SEARCH s USING COVERING INDEX spectra_field_redshift_filters " \
                                        "(object_field=? AND object_redshift>? AND object_redshift<?)"
    public = LocalCatalog(v2_root, visibility=Visibility(program_ids=frozenset(
        r[0] for r in cat.conn.execute("SELECT program_id FROM programs WHERE is_public")), key=""))
    sql, params = public.compile(build_query("spectra", fields=["uds"], gratings=["PRISM"], max_snr_range=(1, 1e9))
                                 .resolve(public.vocabulary()), count=True)
    assert "s.program_id IN" in sql
    assert "COVERING INDEX spectra_field_redshift_filters (object_field=?)" in " | ".join(
        r[-1] for r in public.conn.execute("EXPLAIN QUERY PLAN " + sql, params))
    assert "USING INDEX spectra_redshift" in plan(redshift_range=(7.0, 7.5))
    broad = plan(gratings=["PRISM", "G395M"], redshift_range=(0, 20))
    assert "SCAN s" in broad and "USING INDEX" not in broad.split("|")[0] and "TEMP B-TREE FOR ORDER BY" in broad
    walk = plan(gratings=["PRISM", "G395M"], limit=10)
    assert "SCAN s USING INDEX sqlite_autoindex_spectra_1" in walk and "TEMP B-TREE" not in walk
    assert "SCAN s USING INDEX sqlite_autoindex_spectra_1" in plan()  # everything, in order, no sort
    # any page in spectrum_id order walks (nearly storage order); other orders only small pages
    assert "SCAN s USING INDEX sqlite_autoindex_spectra_1" in plan(gratings=["PRISM", "G395M"], limit=10**6)
    # one grating in spectrum_id order: its own rows in order, a page or all, other broad filters tested on the way
    for f in ({"limit": 10}, {"limit": 10**6}, {}, {"redshift_range": (0, 20)}, {"offset": 5, "limit": 10}):
        one = plan(gratings=["PRISM"], **f)
        assert one.startswith("SEARCH s USING INDEX spectra_grating_id (grating=?)") and "TEMP B-TREE" not in one, f
    assert plan(gratings=["PRISM"], search="uds", limit=10).startswith("SCAN s |")  # a search may pass few
    assert "SCAN s USING INDEX spectra_snr" in plan(gratings=["PRISM"], sort="signal_to_noise", limit=10)
    big = plan(gratings=["PRISM"], sort="signal_to_noise", limit=10**6)
    assert big.startswith("SCAN s |") and "TEMP B-TREE FOR ORDER BY" in big
    assert "SEARCH s USING INDEX spectra_snr" in plan(max_snr_range=(1e6, 1e9))
    # counts: over one index alone when it holds every filter, else one scan
    assert "COVERING INDEX spectra_redshift" in plan(count=True, redshift_range=(0, 20))
    assert "COVERING INDEX spectra_grating" in plan(count=True, gratings=["PRISM"], max_snr_range=(0, 1e9))
    assert plan(count=True, gratings=["PRISM"], inspected_only=True) == "SCAN s"
    assert n > 0


def test_a_second_probe_walks_filters_selective_only_together(v2_root, v1_root, raw, monkeypatch):
    """Before a scan or a whole walk, the field+redshift index is counted with every filter it tests:
    uds (162 of the demo's 460 spectra), PRISM (266) are broad at 20 %, uds + PRISM + inspected (78) is
    not — its walk reads only those rows, and answers as the join of a version-1 file and the oracle.
    Broad together, a scan still; a page, the walk that stops after it; a count, the index alone."""
    cat, old = LocalCatalog(v2_root), LocalCatalog(v1_root)
    monkeypatch.setattr(planner, "_MIN_CAP", 0)
    monkeypatch.setattr(planner, "_SELECTIVE", 0.2)  # the demo is small: call 20 % selective (cap 92)

    def plan(count=False, **f):
        sql, params = cat.compile(build_query("spectra", **f).resolve(cat.vocabulary()), count=count)
        return " | ".join(r[-1] for r in cat.conn.execute("EXPLAIN QUERY PLAN " + sql, params))

    together = dict(fields=["uds"], gratings=["PRISM"], inspected_only=True)
    for alone in ({"fields": ["uds"]}, {"gratings": ["PRISM"]}):
        assert cat.count(build_query("spectra", **alone)) >= 92, alone
    assert cat.count(build_query("spectra", **together)) < 92
    for f in (together, dict(together, sort="signal_to_noise", sort_dir="desc"), dict(together, offset=3)):
        # one grating in spectrum_id order walked that grating's rows, by S/N or with an offset alone a scan
        assert plan(**f).startswith("SEARCH s USING INDEX spectra_field_redshift_filters (object_field=?)"), f
        got, n = _spectra(cat, f)
        want, n_old = _spectra(old, f)
        _same_table(want, got, f)
        assert n == n_old == len(got) + f.get("offset", 0), f
        if "offset" not in f:
            assert set(got["spectrum_id"]) == expected_spectra(raw, f), f
    assert plan(fields=["uds"], gratings=["PRISM", "G395M"]).startswith("SCAN s")  # 142: broad together too
    assert plan(limit=10, **together).startswith("SEARCH s USING INDEX spectra_grating_id (grating=?)")  # a page
    assert plan(count=True, **together) == "SEARCH s USING COVERING INDEX spectra_field_redshift_filters " \
                                           "(object_field=?)"


def test_upgrade_in_place(demo_root, tmp_path, raw, caplog):
    root = make_v1(_copy_root(demo_root, tmp_path / "root"))
    with caplog.at_level(logging.WARNING, logger="campfire.catalog"):
        old = Campfire(data_dir=root)
        old.query_spectra(gratings=["PRISM"])
    assert "schema 1" in caplog.text and "python -m campfire.catalog.schema upgrade" in caplog.text
    before = {repr(f): old.query_spectra(**f) for f in filter_cases(raw)}
    assert upgrade_catalog(root) is True
    assert upgrade_catalog(root) is False  # idempotent
    conn = sqlite3.connect(root / "meta" / "campfire.db")
    try:
        assert _version(conn) == SCHEMA_VERSION
        assert _mismatched_copies(conn) == 0
    finally:
        conn.close()
    new = Campfire(data_dir=root)  # a fresh client; an existing one notices the file changed
    assert new.local_catalog._layout().copies and old.local_catalog._layout().copies
    for f in filter_cases(raw):
        _same_table(before[repr(f)], new.query_spectra(**f), f)


@pytest.mark.parametrize("index, before, query", [
    # one grating in spectrum_id order (stop 26): without it, the spectrum_id walk
    ("spectra_grating_id", "sqlite_autoindex_spectra_1", {"gratings": ["PRISM"], "limit": 40, "offset": 2}),
    # field + redshift with the other filters' columns (stop 27): without it, the two-column index of older files
    ("spectra_field_redshift_filters", "spectra_field_redshift",
     {"fields": ["uds"], "redshift_range": (3, 4), "gratings": ["PRISM"], "inspected_only": True, "limit": 40,
      "offset": 2}),
])
def test_upgrade_builds_an_index_a_file_lacks(demo_root, tmp_path, raw, monkeypatch, index, before, query):
    """A current-version file written before an index existed: the planner does without it, and the
    upgrade builds it with its statistics, no version change, in place."""
    monkeypatch.setattr(planner, "_MIN_CAP", 0)
    monkeypatch.setattr(planner, "_SELECTIVE", 0.2)  # the demo is small: a grating is broad (as on 10⁶ spectra)
    root = _copy_root(demo_root, tmp_path / "root")
    db = root / "meta" / "campfire.db"
    conn = sqlite3.connect(db)
    conn.execute(f"DROP INDEX {index}")  # drops its sqlite_stat1 row too
    if before == "spectra_field_redshift":  # what schema.sql had before (a demo built since lacks it)
        conn.execute("CREATE INDEX IF NOT EXISTS spectra_field_redshift ON spectra (object_field, object_redshift)")
        conn.execute("ANALYZE spectra_field_redshift")
    conn.commit()
    conn.close()
    cf = Campfire(data_dir=root)
    cat = cf.local_catalog

    def plan():
        sql, params = cat.compile(build_query("spectra", **query).resolve(cat.vocabulary()))
        return cat.conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchone()[-1] + " "

    assert index not in cat._layout().indexes
    without = cf.query_spectra(**query)
    assert f"INDEX {before} " in plan() and index not in plan()
    inode = db.stat().st_ino
    assert upgrade_catalog(root) is True
    assert upgrade_catalog(root) is False
    assert db.stat().st_ino == inode
    conn = sqlite3.connect(db)
    try:
        assert _version(conn) == SCHEMA_VERSION
        n, per_value = map(int, conn.execute(
            "SELECT stat FROM sqlite_stat1 WHERE idx = ?", (index,)).fetchone()[0].split()[:2])
        assert n == conn.execute("SELECT count(*) FROM spectra").fetchone()[0] and per_value > 1
    finally:
        conn.close()
    assert index in cat._layout().indexes  # the file changed: the layout is read again
    # the two-column field+redshift index is superseded (its columns lead the new one's): gone once that is built
    assert "spectra_field_redshift" not in cat._layout().indexes
    assert f"INDEX {index} " in plan()
    _same_table(without, cf.query_spectra(**query), query)
    unpaged = {k: v for k, v in query.items() if k not in ("limit", "offset")}
    assert list(without["spectrum_id"]) == sorted(expected_spectra(raw, unpaged))[2:42]
    assert len(without) > 0


def test_spectra_carry_the_interval_of_redshift_auto(demo_root, tmp_path):
    """Schema 4: every fitted spectrum has its 68% interval and confidence (those of its FITS
    header); a schema-3 file answers NaN for them until upgraded, and the upgrade adds them empty."""
    from astropy.io import fits

    cf = Campfire(data_dir=demo_root)
    t = cf.query_spectra()
    fitted = np.isfinite(t["redshift_auto"])
    assert fitted.sum() > 0.9 * len(t)
    lo, z, hi, conf = (np.asarray(t[c][fitted]) for c in ("redshift_auto_lo", "redshift_auto", "redshift_auto_hi",
                                                             "redshift_auto_confidence"))
    assert np.all(lo <= z) and np.all(z <= hi) and np.all(hi - lo > 0)
    assert np.all((conf >= 0) & (conf <= 1))
    assert np.all(np.isnan(t["redshift_auto_lo"][~fitted]))
    for row in t[fitted][:5]:
        with fits.open(row["local_path"]) as hdul:
            h = hdul[0].header
            assert (h["ZAUTOLO"], h["ZAUTOHI"], h["ZCONF"]) == pytest.approx(
                (row["redshift_auto_lo"], row["redshift_auto_hi"], row["redshift_auto_confidence"]), abs=1e-4)
    # a cut on them, as a user makes it
    sure = t[fitted][conf >= 0.9]
    assert 0 < len(sure) < fitted.sum()

    root = _copy_root(demo_root, tmp_path / "root")
    conn = sqlite3.connect(root / "meta" / "campfire.db")
    for col in FIT_COLUMNS:
        conn.execute(f"ALTER TABLE spectra DROP COLUMN {col}")
    conn.execute("UPDATE archive_meta SET value = '3' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    old = Campfire(data_dir=root).query_spectra(gratings=["PRISM"], limit=20)
    assert len(old) == 20 and np.all(np.isnan(old["redshift_auto_lo"])) and np.all(np.isfinite(old["redshift_auto"]))
    assert upgrade_catalog(root) is True
    conn = sqlite3.connect(root / "meta" / "campfire.db")
    try:
        assert _version(conn) == SCHEMA_VERSION
        assert conn.execute("SELECT count(*) FROM spectra WHERE redshift_auto_lo IS NOT NULL").fetchone()[0] == 0
    finally:
        conn.close()
    new = Campfire(data_dir=root).query_spectra(gratings=["PRISM"], limit=20, sort="redshift_auto_hi")
    assert np.all(np.isnan(new["redshift_auto_hi"]))


def test_upgrade_from_the_command_line(demo_root, tmp_path):
    root = make_v1(_copy_root(demo_root, tmp_path / "root"))
    out = subprocess.run([sys.executable, "-m", "campfire.catalog.schema", "upgrade", str(root)],
                         capture_output=True, text=True, check=True)
    assert f"upgraded to schema {SCHEMA_VERSION}" in out.stdout
    out = subprocess.run([sys.executable, "-m", "campfire.catalog.schema", "upgrade", str(root)],
                         capture_output=True, text=True, check=True)
    assert "already at schema" in out.stdout


def test_triggers_keep_the_copies_equal(demo_root, tmp_path):
    root = _copy_root(demo_root, tmp_path / "root")
    db = root / "meta" / "campfire.db"
    conn = sqlite3.connect(db)
    cat = Campfire(data_dir=root)
    oid = "ember_uds_p4_123456"
    n = len(cat.query_spectra(search=oid))
    assert n >= 3
    # an object's redshift or inspection changes (a server edit, a sync delta's upsert)
    conn.execute("UPDATE objects SET redshift = 9.87, redshift_quality = 1, has_photometry = 0 WHERE object_id = ?",
                 (oid,))
    conn.commit()
    assert set(cat.query_spectra(redshift_range=(9.86, 9.88))["object_id"]) == {oid}
    assert len(cat.query_spectra(redshift_range=(9.86, 9.88), redshift_quality=[1], has_photometry=False)) == n
    # an upsert as sync applies it
    conn.execute("INSERT INTO objects (object_id, field, ra, dec, cx, cy, cz, redshift, redshift_quality, updated_at) "
                 "SELECT object_id, 'cosmos', ra, dec, cx, cy, cz, 2.5, 4, updated_at FROM objects WHERE object_id = ? "
                 "ON CONFLICT(object_id) DO UPDATE SET field = excluded.field, redshift = excluded.redshift, "
                 "redshift_quality = excluded.redshift_quality", (oid,))
    conn.commit()
    assert len(cat.query_spectra(fields=["cosmos"], redshift_range=(2.5, 2.5), redshift_quality=[4],
                                 search=oid)) == n
    # a spectrum written without the copies gets them; one that arrives before its object too
    conn.execute("PRAGMA foreign_keys = OFF")
    cols = [r[1] for r in conn.execute("PRAGMA table_info(spectra)") if r[1] not in OBJECT_COPIES]
    sel = ", ".join("'late_obj_prism_clear_1'" if c == "spectrum_id" else "'late_obj'" if c == "object_id" else c
                    for c in cols)
    conn.execute(f"INSERT INTO spectra ({', '.join(cols)}) SELECT {sel} FROM spectra WHERE object_id = ? LIMIT 1",
                 (oid,))
    assert conn.execute("SELECT object_field FROM spectra WHERE object_id = 'late_obj'").fetchone() == (None,)
    conn.execute("INSERT INTO objects (object_id, field, ra, dec, cx, cy, cz, redshift, redshift_quality, updated_at) "
                 "VALUES ('late_obj', 'uds', 1, 1, 1, 0, 0, 6.5, 3, 'x')")
    conn.commit()
    assert conn.execute(f"SELECT {COPIES} FROM spectra WHERE object_id = 'late_obj'").fetchone() == ("uds", 6.5, 3, 0)
    conn.execute("DELETE FROM objects WHERE object_id = 'late_obj'")
    conn.commit()
    assert conn.execute("SELECT object_field FROM spectra WHERE object_id = 'late_obj'").fetchone() == (None,)
    assert _mismatched_copies(conn) == 0
    conn.close()


def test_finalize_fills_a_bulk_load(tmp_path):
    """Rows loaded before the triggers exist (a sync snapshot) get their copies in finalize_catalog."""
    tables, post = schema_statements()
    db = tmp_path / "meta" / "campfire.db"
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    for stmt in tables:
        conn.execute(stmt)
    conn.execute("INSERT INTO archive_meta VALUES ('schema_version', '1'), ('owner', 'client')")
    conn.execute("INSERT INTO programs VALUES (1, 'p', 'P', 'pi', 1)")
    conn.execute("INSERT INTO observations (observation, program_id, field) VALUES ('obs', 1, 'uds')")
    conn.execute("INSERT INTO objects (object_id, field, ra, dec, cx, cy, cz, redshift, redshift_quality, "
                 "has_photometry, updated_at) VALUES ('obs_1', 'uds', 1, 1, 1, 0, 0, 4.5, 4, 1, 'x')")
    conn.execute("INSERT INTO spectra (spectrum_id, object_id, target_id, observation, program_id, grating, filter, "
                 "fits_path, updated_at) VALUES ('obs_prism_clear_1', 'obs_1', 'obs_1', 'obs', 1, 'PRISM', 'CLEAR', "
                 "'products/obs/obs_prism_clear_1.spec.fits', 'x')")
    conn.commit()
    for stmt in post:
        conn.execute(stmt)
    conn.commit()
    finalize_catalog(conn)
    assert conn.execute(f"SELECT {COPIES} FROM spectra").fetchone() == ("uds", 4.5, 4, 1)
    assert _version(conn) == SCHEMA_VERSION
    conn.close()
    got = LocalCatalog(tmp_path).query(build_query("spectra", fields=["uds"], redshift_range=(4, 5),
                                                   has_photometry=True, redshift_quality=["secure"]))
    assert list(got["spectrum_id"]) == ["obs_prism_clear_1"]


def test_create_catalog_is_current(tmp_path):
    conn = create_catalog(tmp_path / "meta" / "campfire.db", owner="pipeline")
    try:
        assert has_object_copies(conn)
        assert _version(conn) == SCHEMA_VERSION
        # the whole schema.sql, written in one transaction that is over
        assert not conn.in_transaction
        assert conn.execute("PRAGMA page_size").fetchone()[0] == 16384  # taken before the first write
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        made = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        tables, post = schema_statements()
        wanted = {re.search(r"IF NOT EXISTS\s+(\w+)", stmt).group(1) for stmt in tables[1:] + post}
        assert len(wanted) > 30 and wanted <= made
        assert dict(conn.execute("SELECT key, value FROM archive_meta")) == {
            "owner": "pipeline", "schema_version": SCHEMA_VERSION}
    finally:
        conn.close()
