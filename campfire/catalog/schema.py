"""schema.sql as statements, and the upgrade of catalogs written by an older schema.

A bulk load (the server's export snapshot, the client's sync) creates the tables,
inserts every row, and only then builds each index and trigger once — much faster
than maintaining the indexes row by row.

Schema versions (``archive_meta.schema_version``):

1. the original tables.
2. ``spectra`` carries copies of its object's ``field``, ``redshift``,
   ``redshift_quality`` and ``has_photometry`` (:data:`OBJECT_COPIES`), indexed and
   kept equal by triggers, so ``query_spectra``'s object-level filters need no join
   to ``objects`` (a 50,000-row answer from 1,000,000 spectra without a field filter
   took 2-5 s through the join, 0.5 s now: bench/RESULTS.md). New files get 16 KiB pages.
3. reviewers' ``inspections`` are kept as records, and ``object_aggregates`` holds
   the inspection fields per visibility set (:data:`VIEW_COLUMNS`, derived from the
   inspections each set may see: :mod:`campfire.catalog.aggregates`).
4. ``spectra`` carries the automatic redshift's 68% interval and confidence
   (:data:`FIT_COLUMNS`: ``redshift_auto_lo``, ``redshift_auto_hi``,
   ``redshift_auto_confidence``). An upgrade adds them empty (NULL): they are filled
   when the spectrum is fitted again (a new ingest of the file, a demo rebuild).

An index a newer campfire adds (``spectra_grating_id``: one grating in spectrum_id
order) changes no version: readers use it when the file has it (the planner's
:class:`~campfire.catalog.planner.Layout`), and :func:`upgrade_catalog` builds what is
missing (a full sync, a demo build, the server's start, a delta sync).

:func:`upgrade_catalog` brings an older file to the current version in place (one
transaction; version 1 → 2: 6 s per million spectra, plus 8 s to repack the file). On
the way to version 3, the grades of a pipeline's or server's catalog become inspection
records of the reviewer :data:`CARRIED_OVER` resting on all of the object's spectra (so
a grade that may rest on a proprietary spectrum stays with that program's members); a
client's synced copy keeps the values its server sent. A version-1 catalog that is
not upgraded still answers every query, through the join (see ``LocalCatalog``), and a
version-2 one with the objects' own inspection fields; writers that finish with
:func:`finalize_catalog` (demo builds, sync) and the server upgrade them.
From the shell: ``python -m campfire.catalog.schema upgrade ROOT`` (which also repacks
the file, see :func:`repack_catalog`).

Examples
--------
>>> tables, post = schema_statements()
>>> any('CREATE TABLE IF NOT EXISTS spectra' in s for s in tables)
True
>>> all(('INDEX' in s or 'TRIGGER' in s) and 'CREATE TABLE' not in s for s in post)
True
"""
from __future__ import annotations

import logging
import os
import pathlib
import re
import sqlite3
import sys
import time

from campfire.catalog.aggregates import refresh_inspected, visibility_keys, visible_program_ids
from campfire.catalog.db import catalog_path, connect, opened, read_meta, write_meta

__all__ = ["SCHEMA_PATH", "SCHEMA_VERSION", "OBJECT_COPIES", "VIEW_COLUMNS", "CARRIED_OVER", "EXPORT_TABLES", "FIT_COLUMNS",
           "schema_statements", "create_catalog", "finalize_catalog", "has_object_copies", "has_inspection_views",
           "fill_object_copies", "upgrade_catalog", "repack_catalog"]

log = logging.getLogger("campfire.catalog")

SCHEMA_PATH = pathlib.Path(__file__).with_name("schema.sql")
SCHEMA_VERSION = "4"

# the tables a server's export carries to a client (not archive_meta, local_files or the demo's truth)
EXPORT_TABLES = ("programs", "observations", "objects", "photometry", "spectra", "object_aggregates",
                 "tags", "object_tags", "inspections")

# spectra column -> the objects column it copies (schema version 2)
OBJECT_COPIES = {
    "object_field": "field",
    "object_redshift": "redshift",
    "object_redshift_quality": "redshift_quality",
    "object_has_photometry": "has_photometry",
}

_COPY_TYPES = {"object_field": "TEXT", "object_redshift": "REAL", "object_redshift_quality": "INTEGER",
               "object_has_photometry": "INTEGER"}

# spectra columns of schema version 4: what fit_redshift says of redshift_auto
FIT_COLUMNS = {"redshift_auto_lo": "REAL", "redshift_auto_hi": "REAL", "redshift_auto_confidence": "REAL"}

# object_aggregates columns of schema version 3 (the inspection fields per visibility set)
VIEW_COLUMNS = {
    "redshift": "REAL",
    "redshift_inspected": "REAL",
    "redshift_quality": "INTEGER NOT NULL DEFAULT 0",
    "inspection_state": "TEXT NOT NULL DEFAULT 'none'",
    "n_reviewers": "INTEGER NOT NULL DEFAULT 0",
    "inspected_at": "TEXT",
}
# an index of an older schema.sql -> the one that does its work now: the upgrade drops the old one once the
# new one is there (one less index to keep per inserted spectrum; it frees its pages for reuse)
_SUPERSEDED_INDEXES = {"spectra_field_redshift": "spectra_field_redshift_filters"}
# the reviewer of the grades a catalog held before inspections were recorded (schema 2 → 3)
CARRIED_OVER = "catalog:carried-over"


def schema_statements() -> tuple[list[str], list[str]]:
    """schema.sql split into (table statements, index and trigger statements).

    The second list is what a bulk load runs after inserting its rows. PRAGMAs are
    dropped, except ``page_size``, which leads the first list: a new, empty file takes
    it (the server's export snapshot), an existing one ignores it.
    """
    text = "\n".join(line.split("--", 1)[0] for line in SCHEMA_PATH.read_text().splitlines())
    statements, buf = [], ""
    for line in text.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    post = [s for s in statements if re.match(r"CREATE\s+((UNIQUE\s+)?INDEX|TRIGGER)\b", s, re.I)]
    pragmas = [s for s in statements if re.match(r"PRAGMA\s+page_size\b", s, re.I)]
    tables = pragmas + [s for s in statements if s not in post and not s.upper().startswith("PRAGMA")]
    return tables, post


def create_catalog(path: str | os.PathLike, owner: str) -> sqlite3.Connection:
    """Create (or open) a catalog with the schema and mark who owns it.

    Parameters
    ----------
    path : path
        The database file (:func:`campfire.catalog.db.catalog_path` of the archive root).
    owner : {'pipeline', 'server', 'client'}
        Who writes this catalog; ``sync()`` never overwrites one it does not own.

    Returns
    -------
    sqlite3.Connection
        A writable connection; the caller closes it.

    Examples
    --------
    >>> conn = create_catalog(catalog_path('/tmp/archive'), owner='pipeline')  # doctest: +SKIP
    """
    conn = connect(path, readonly=False)
    # one transaction: each DDL statement on its own is a commit and a disk sync (~0.75 s)
    conn.executescript(f"BEGIN;\n{SCHEMA_PATH.read_text()}\nCOMMIT;")
    write_meta(conn, {"schema_version": SCHEMA_VERSION})
    conn.execute("INSERT OR IGNORE INTO archive_meta (key, value) VALUES ('owner', ?)", (owner,))
    conn.commit()
    return conn


def finalize_catalog(conn: sqlite3.Connection) -> None:
    """Bring a bulk-loaded catalog (build, sync) to the current schema and refresh the planner's statistics.

    Fills the spectra's copies of their object's columns where the load left them unset
    (a sync snapshot's rows are inserted before the triggers exist), adds whatever an
    older schema lacks (:func:`upgrade_catalog`) and records the schema version.
    Without the statistics SQLite cannot tell that ``object_aggregates.visibility``
    has a few values, and drives cone searches from the wrong table (seconds instead
    of ms).

    Parameters
    ----------
    conn : sqlite3.Connection
        A writable connection; an open transaction is committed first.
    """
    if conn.in_transaction:
        conn.commit()
    upgrade_catalog(conn)
    conn.execute("ANALYZE")
    conn.commit()


def has_object_copies(conn: sqlite3.Connection) -> bool:
    """True when ``spectra`` has the object-copy columns of schema version 2."""
    cols = {r[1] for r in conn.execute("PRAGMA table_info(spectra)")}
    return set(OBJECT_COPIES) <= cols


def has_inspection_views(conn: sqlite3.Connection) -> bool:
    """True when ``object_aggregates`` has the inspection fields of schema version 3."""
    cols = {r[1] for r in conn.execute("PRAGMA table_info(object_aggregates)")}
    return set(VIEW_COLUMNS) <= cols


def fill_object_copies(conn: sqlite3.Connection, *, only_missing: bool = True) -> int:
    """Set the spectra's copies of their object's columns from ``objects``; the number of rows set.

    ``only_missing`` touches only rows whose copies were never set (``object_field`` is
    NULL: rows bulk-loaded before the triggers existed, or inserted before their object).
    The caller commits.
    """
    sets = ", ".join(f"{copy} = o.{col}" for copy, col in OBJECT_COPIES.items())
    where = " AND spectra.object_field IS NULL" if only_missing else ""
    cur = conn.execute(f"UPDATE spectra SET {sets} FROM objects o WHERE o.object_id = spectra.object_id{where}")
    return max(cur.rowcount, 0)


def upgrade_catalog(conn_or_path: sqlite3.Connection | str | os.PathLike) -> bool:
    """Bring a catalog to the current schema in place; True if anything changed.

    Adds the missing columns, indexes and triggers, fills the object copies that are
    not set, records ``schema_version`` and refreshes the planner statistics — in one
    transaction, so readers see the old catalog or the new one. Idempotent: on a
    current catalog it only checks (milliseconds).

    Parameters
    ----------
    conn_or_path : sqlite3.Connection or path
        A writable connection (not inside a transaction), or the database file or its
        archive root.

    Examples
    --------
    >>> upgrade_catalog('/data/campfire-root')  # doctest: +SKIP
    True
    """
    if isinstance(conn_or_path, sqlite3.Connection):
        return _upgrade(conn_or_path)
    path = pathlib.Path(conn_or_path)
    if path.is_dir():
        path = catalog_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no catalog at {path}")
    with opened(path, readonly=False, timeout=60) as conn:
        return _upgrade(conn)


def _upgrade(conn: sqlite3.Connection) -> bool:
    if conn.in_transaction:
        raise sqlite3.OperationalError("upgrade_catalog: commit the open transaction first")
    if read_meta(conn).get("schema_version") == SCHEMA_VERSION and _complete(conn):
        return False
    t0 = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")  # one writer; readers keep the old catalog until COMMIT
    try:
        cols = {r[1] for r in conn.execute("PRAGMA table_info(spectra)")}
        added = [c for c in OBJECT_COPIES if c not in cols]
        for col in added:
            conn.execute(f"ALTER TABLE spectra ADD COLUMN {col} {_COPY_TYPES[col]}")
        for col, decl in FIT_COLUMNS.items():  # schema 4: empty until the spectrum is fitted again
            if col not in cols:
                conn.execute(f"ALTER TABLE spectra ADD COLUMN {col} {decl}")
        filled = fill_object_copies(conn, only_missing=True)  # before the new indexes: cheaper
        views = _add_inspections(conn)
        before = _index_names(conn)
        for stmt in schema_statements()[1]:  # IF NOT EXISTS: only the missing ones are built
            conn.execute(stmt)
        built = sorted(_index_names(conn) - before)
        for name in _index_names(conn) & _SUPERSEDED_INDEXES.keys():
            # its successor is there now (built above): readers read the file's indexes again when it changes
            # (planner.Layout) and plan without it
            conn.execute(f"DROP INDEX {name}")
        write_meta(conn, {"schema_version": SCHEMA_VERSION})
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if added or filled or views:
        conn.execute("ANALYZE")  # the new indexes need statistics for the planner
        conn.commit()
    elif built:
        # only indexes were missing (one a newer campfire added): statistics for them alone (~1 s per
        # million spectra). Without any, SQLite guesses ~10 rows per value and may prefer one unwisely
        for name in built:
            conn.execute(f"ANALYZE {name}")
        conn.commit()
    log.info("catalog upgraded to schema %s (%d spectra rows filled, inspection fields %s) in %.1f s",
             SCHEMA_VERSION, filled, "derived" if views else "current", time.perf_counter() - t0)
    return True


def _add_inspections(conn: sqlite3.Connection) -> bool:
    """Schema 3: the inspections table and the per-visibility inspection fields; True if they were added."""
    has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'inspections'").fetchone()
    if has_table and has_inspection_views(conn):
        return False
    for stmt in schema_statements()[0]:
        if re.match(r"CREATE TABLE IF NOT EXISTS inspections\b", stmt):
            conn.execute(stmt)
    cols = {r[1] for r in conn.execute("PRAGMA table_info(object_aggregates)")}
    for col, decl in VIEW_COLUMNS.items():
        if col not in cols:
            conn.execute(f"ALTER TABLE object_aggregates ADD COLUMN {col} {decl}")
    if read_meta(conn).get("owner") == "client":
        # a synced copy: its objects hold what the server let this user see
        conn.execute("UPDATE object_aggregates SET redshift = o.redshift, redshift_inspected = o.redshift_inspected, "
                     "redshift_quality = o.redshift_quality FROM objects o "
                     "WHERE o.object_id = object_aggregates.object_id AND object_aggregates.visibility = '*'")
        return True
    if not has_table:
        # the grades held so far become records resting on every spectrum of the object
        conn.execute(
            "INSERT INTO inspections (object_id, reviewer, redshift, quality, comment, issues, spectra_seen, "
            "resolves_conflict, created_at, recorded_at) "
            "SELECT o.object_id, ?, o.redshift_inspected, o.redshift_quality, ?, 0, "
            "(SELECT json_group_array(json_object('spectrum_id', s.spectrum_id, 'sha256', s.file_hash)) "
            " FROM (SELECT spectrum_id, file_hash FROM spectra WHERE object_id = o.object_id ORDER BY spectrum_id) s), "
            "0, o.updated_at, o.updated_at FROM objects o "
            "WHERE o.redshift_quality > 0 AND EXISTS (SELECT 1 FROM spectra s WHERE s.object_id = o.object_id)",
            (CARRIED_OVER, "grade held by the catalog before inspections were recorded (schema 2)"))
    for key in set(visibility_keys(conn)) | {"*"}:
        refresh_inspected(conn, key, visible_program_ids(conn, key))
    return True


def _index_names(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def _complete(conn: sqlite3.Connection) -> bool:
    """Every column, table, index and trigger of the current schema is there."""
    if not has_object_copies(conn) or not has_inspection_views(conn):
        return False
    if not set(FIT_COLUMNS) <= {r[1] for r in conn.execute("PRAGMA table_info(spectra)")}:
        return False
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('index', 'trigger', 'table')")}
    wanted = {re.search(r"IF NOT EXISTS\s+(\w+)", s).group(1) for s in schema_statements()[1]}
    return wanted <= names and "inspections" in names and not names & _SUPERSEDED_INDEXES.keys()


def repack_catalog(path: str | os.PathLike, page_size: int = 16384) -> bool:
    """VACUUM a catalog into ``page_size`` pages; False if it cannot now (WAL mode, or in use).

    An in-place upgrade leaves the spectra rows where they were, grown; a repack
    writes every table contiguously in the page size of new catalogs (schema.sql),
    which scans ~30 % faster. It rewrites the whole file (and needs as much free
    disk space again) and needs the catalog to itself.
    """
    conn = connect(path, readonly=False, timeout=5, autocommit=True)
    try:
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
            return False  # the page size of a WAL database cannot change
        conn.execute(f"PRAGMA page_size = {int(page_size)}")
        conn.execute("VACUUM")
        return True
    except sqlite3.OperationalError as err:
        log.warning("%s: not repacked (%s); it works as it is", path, err)
        return False
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m campfire.catalog.schema upgrade [--no-repack] ROOT [ROOT ...]`` (ROOT: archive root or .db file)."""
    argv = sys.argv[1:] if argv is None else argv
    repack = "--no-repack" not in argv
    roots = [a for a in argv[1:] if a != "--no-repack"]
    if not argv or argv[0] != "upgrade" or not roots:
        print("usage: python -m campfire.catalog.schema upgrade [--no-repack] ROOT [ROOT ...]", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for root in roots:
        t0 = time.perf_counter()
        changed = upgrade_catalog(root)
        state = f"upgraded to schema {SCHEMA_VERSION}" if changed else f"already at schema {SCHEMA_VERSION}"
        if changed and repack:
            db = pathlib.Path(root)
            db = catalog_path(db) if db.is_dir() else db
            state += ", repacked" if repack_catalog(db) else ", not repacked"
        print(f"{root}: {state} ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
