"""What an ingest remembers between runs, inside the catalog file (never exported to clients).

``ingest_files``
    One row per input file ingested: its key (absolute path or URL), the spectrum it
    became, its stamp (size + mtime / ETag) and sha256 when last read, how it is held
    (copy, link, in-place) and whether it was fitted. An input whose stamp is
    unchanged is not even read again; one whose bytes are unchanged changes nothing.
``ingest_grades``
    Which DJA grades (per object and reviewer) were stored as inspection records, so
    an unchanged table adds none again (:mod:`campfire.archive.grades`).
``ingest_pending``
    File operations (move a staged product into place, link, delete) that belong to a
    committed catalog change. They are written in the catalog's transaction and done
    right after the commit; if the process dies in between, the next ingest finishes
    them first (roll forward), so files and catalog end up consistent either way.

The tables live in ``<root>/meta/campfire.db`` so that they change in the same
transaction as the catalog rows; the export behind ``sync()`` copies only the catalog
tables, so clients never see them.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import shutil
import sqlite3
from dataclasses import dataclass

from campfire.catalog.db import read_meta
from campfire.io.store import ProductStore, is_url, store_from_meta

__all__ = ["STATE_SCHEMA", "IngestedFile", "ensure_state", "record_files", "forget_files",
           "add_pending", "run_pending", "STAGING_DIR"]

log = logging.getLogger("campfire.archive")

STAGING_DIR = ".ingest-staging"  # under <root>/products: same file system as the products, so renames are atomic

STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS ingest_files (
    source        TEXT PRIMARY KEY,      -- absolute real path or URL of the input
    spectrum_id   TEXT NOT NULL,
    stamp         TEXT,                  -- size:mtime_ns (local) or size:ETag/Last-Modified (URL)
    source_sha256 TEXT NOT NULL,
    mode          TEXT NOT NULL CHECK (mode IN ('copy', 'link', 'in-place')),
    fitted        INTEGER NOT NULL,      -- 1 when the automatic redshift fit ran on these bytes
    ingested_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ingest_files_spectrum ON ingest_files (spectrum_id);
CREATE TABLE IF NOT EXISTS ingest_grades (
    object_id TEXT NOT NULL,
    reviewer  TEXT NOT NULL,             -- dja:<initials>
    signature TEXT NOT NULL,             -- the group of table rows last stored as inspection records
    PRIMARY KEY (object_id, reviewer)
);
CREATE TABLE IF NOT EXISTS ingest_pending (
    seq    INTEGER PRIMARY KEY,
    action TEXT NOT NULL CHECK (action IN ('move', 'link', 'delete')),
    src    TEXT,                         -- staged file (move) or link target (link)
    dest   TEXT NOT NULL                 -- absolute path under the archive root, or URL under products_url
);
"""


@dataclass(frozen=True)
class IngestedFile:
    """A row of ``ingest_files``."""

    source: str
    spectrum_id: str
    stamp: str | None
    source_sha256: str
    mode: str
    fitted: bool


def ensure_state(conn: sqlite3.Connection) -> None:
    """Create the state tables if missing (the caller commits)."""
    for statement in STATE_SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)


def record_files(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    """Insert or replace ``(source, spectrum_id, stamp, source_sha256, mode, fitted, ingested_at)`` rows."""
    conn.executemany("INSERT OR REPLACE INTO ingest_files (source, spectrum_id, stamp, source_sha256, mode, fitted, "
                     "ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def forget_files(conn: sqlite3.Connection, sources: list[str]) -> None:
    """Drop inputs from the state (withdrawn, or replaced by another input of the same spectrum)."""
    conn.executemany("DELETE FROM ingest_files WHERE source = ?", [(s,) for s in sources])


def add_pending(conn: sqlite3.Connection, ops: list[tuple[str, str | None, str]]) -> None:
    """Journal ``(action, src, dest)`` file operations in the open transaction."""
    conn.executemany("INSERT INTO ingest_pending (action, src, dest) VALUES (?, ?, ?)", ops)


def _link(target: str, dest: pathlib.Path) -> None:
    """``dest`` → ``target``: a hard link when both are on one file system, else a symbolic link."""
    tmp = dest.with_name(f".{dest.name}.link{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        os.link(target, tmp)
    except OSError:
        os.symlink(target, tmp)
    os.replace(tmp, dest)


def _apply_remote(action: str, ops: list[tuple[str | None, str]], store: ProductStore) -> None:
    """A run of one kind of operation on the object store, sent concurrently (s3fs batches them).

    Every upload is whole or nothing; an operation done before an interruption is done
    again harmlessly (an upload whose staged file is gone must have reached the store).
    """
    fs = store.fs
    if action == "delete":
        fs.rm([fs._strip_protocol(dest) for _, dest in ops])  # a missing key is not an error on S3
        return
    if action != "move":
        raise ValueError(f"cannot {action} onto an object store ({ops[0][1]})")
    todo = [(src, dest) for src, dest in ops if src and os.path.exists(src)]
    staged = {dest for _, dest in todo}
    for src, dest in ops:
        if dest not in staged and not fs.isfile(fs._strip_protocol(dest)):
            raise FileNotFoundError(f"staged file {src} is gone and {dest} does not exist")
    if todo:
        fs.put([src for src, _ in todo], [fs._strip_protocol(dest) for _, dest in todo])
        for src, _ in todo:
            os.unlink(src)


def _apply(action: str, src: str | None, dest: str) -> None:
    path = pathlib.Path(dest)
    if action == "delete":
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if action == "move":
        if src and os.path.exists(src):
            os.replace(src, path)
        elif not path.exists():
            raise FileNotFoundError(f"staged file {src} is gone and {dest} does not exist")
    elif action == "link":
        _link(str(src), path)


def run_pending(conn: sqlite3.Connection, root: pathlib.Path) -> int:
    """Do the journalled file operations, then clear them; the number done.

    Called after every commit and at the start of every ingest (to finish what an
    interrupted one committed). Left-over staging folders of runs that never committed
    are removed.
    """
    rows = conn.execute("SELECT seq, action, src, dest FROM ingest_pending ORDER BY seq").fetchall()
    store = store_from_meta(root, read_meta(conn)) if rows else None
    batch: list[tuple[str | None, str]] = []
    for i, (_, action, src, dest) in enumerate(rows):
        if not is_url(dest):
            _apply(action, src, dest)
            continue
        batch.append((src, dest))  # consecutive operations of one kind on the store go together, in order
        following = rows[i + 1] if i + 1 < len(rows) else None
        if following is None or following[1] != action or not is_url(following[3]):
            _apply_remote(action, batch, store)
            batch = []
    if rows:
        with conn:
            conn.execute("DELETE FROM ingest_pending WHERE seq <= ?", (rows[-1][0],))
        log.info("finished %d file operations of a committed ingest", len(rows))
    staging = root / "products" / STAGING_DIR
    if staging.is_dir():
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
    return len(rows)
