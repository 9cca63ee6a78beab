"""``sync()``: the server's bulk export into ``<data_dir>/meta/campfire.db``, all or nothing.

:func:`sync_catalog` pulls the export (one streamed gzip response, see
:mod:`campfire.server.export`):

* a full export is a SQLite snapshot of what the caller may see. It is decompressed
  into a temporary file next to the catalog, indexed (schema.sql's indexes and the
  cone-search R*Tree), given the client's ``local_files`` and bookkeeping, and only
  then renamed over the old catalog — an interrupted sync leaves the previous
  catalog untouched (a stream without its gzip trailer is discarded);
* an incremental export (``since`` = the cursor stored by the previous sync) is
  NDJSON applied to the existing catalog inside one SQLite transaction — also all or
  nothing — and checked against the server's counts (a mismatch, e.g. after a
  deletion on the server, triggers a full sync);
* ``local_files`` (the hashes of the FITS files the client holds) survive every sync,
  so files whose server hash changed show up as stale.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import pathlib
import sqlite3
import uuid
import zlib
from typing import Iterator

import requests
import urllib3

from campfire.catalog.db import catalog_path, connect, opened, read_meta, write_meta
from campfire.catalog.remote import RemoteCatalog
from campfire.catalog.schema import (EXPORT_TABLES, SCHEMA_VERSION, finalize_catalog, has_object_copies,
                                     schema_statements, upgrade_catalog)
from campfire.catalog.writer import CatalogWriter
from campfire.errors import APIError, CampfireError, DownloadError
from campfire.transfer.datadir import catalog_owner, disk_problem, now
from campfire.transfer.locks import dir_lock

__all__ = ["sync_catalog", "SyncInterrupted"]

log = logging.getLogger("campfire.transfer")

_SNAPSHOT_OBJECTS = {"table", "index"}  # what a snapshot's sqlite_master may hold (no triggers or views)
# what a broken stream raises: the network's errors, a corrupt gzip, the socket's OSError
_STREAM_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, zlib.error, OSError)


class SyncInterrupted(APIError):
    """The export stream ended early; the previous catalog is intact."""


def _interrupted(nbytes: int, err: BaseException | None = None) -> SyncInterrupted:
    nbytes += _partial_bytes(err)
    why = f" ({type(err).__name__}: {err})" if err is not None else ""
    return SyncInterrupted(f"sync interrupted after {nbytes:,} bytes{why}; the previous catalog is intact — "
                           "run sync again")


def _partial_bytes(err: BaseException | None) -> int:
    """Bytes of a last, incomplete HTTP chunk that arrived before the connection broke.

    urllib3 drops them (they never reach ``iter_content``) but says how many there were
    in the IncompleteRead somewhere in the exception's chain.
    """
    stack, seen = [err], set()
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, http.client.IncompleteRead):  # urllib3's subclasses it too
            return e.partial if isinstance(e.partial, int) else len(e.partial)
        stack += [a for a in e.args if isinstance(a, BaseException)] + [e.__cause__, e.__context__]
    return 0


class _Gunzip:
    """Decompress a (possibly multi-member) gzip stream; ``complete`` once the last member ended."""

    def __init__(self):
        self._z = zlib.decompressobj(31)
        self._fresh = True  # no byte of the current member seen yet

    def feed(self, data: bytes) -> bytes:
        out = []
        while data:
            self._fresh = False
            out.append(self._z.decompress(data))
            if self._z.eof:  # a member ended; the rest is the next member
                data = self._z.unused_data
                self._z = zlib.decompressobj(31)
                self._fresh = True
            else:
                data = b""
        return b"".join(out)

    @property
    def complete(self) -> bool:
        """True when the stream ended at a member boundary (a cut stream never does)."""
        return self._fresh


class _ExportStream:
    """The decompressed blocks (or NDJSON lines) of a streamed gzip export, counting what arrived."""

    def __init__(self, resp, chunk_size: int = 1 << 20):
        self.resp = resp
        self.chunk_size = chunk_size
        self.nbytes = 0  # compressed bytes received

    def interrupted(self, err: BaseException | None = None) -> SyncInterrupted:
        return _interrupted(self.nbytes, err)

    def blocks(self) -> Iterator[bytes]:
        """Decompressed blocks; SyncInterrupted if the stream breaks or is cut short."""
        gz = _Gunzip()
        try:
            for chunk in self.resp.iter_content(chunk_size=self.chunk_size):
                self.nbytes += len(chunk)
                out = gz.feed(chunk)
                if out:
                    yield out
        except _STREAM_ERRORS as err:
            raise self.interrupted(err) from err
        if self.nbytes == 0 or not gz.complete:
            raise self.interrupted()

    def lines(self) -> Iterator[dict]:
        """The parsed lines of a gzip NDJSON delta."""
        tail = b""
        for block in self.blocks():
            lines = (tail + block).split(b"\n")
            tail = lines.pop()
            for line in lines:
                if line:
                    yield json.loads(line)
        if tail.strip():
            yield json.loads(tail)


class _Loader:
    """Writes the sections of an NDJSON delta into the catalog."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.known = {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in EXPORT_TABLES}
        self.table: str | None = None
        self.sql: str | None = None
        self.index: list[int] | None = None
        self.columns: list[str] = []
        self.touched_objects: list[str] = []

    def start(self, section: dict) -> None:
        table = section.get("table")
        if table not in self.known:
            raise APIError(f"sync: unexpected table {table!r} in the export (incompatible server version)")
        columns = list(section["columns"])
        keep = [c for c in columns if c in self.known[table]]
        self.index = None if keep == columns else [columns.index(c) for c in keep]
        self.table, self.columns = table, keep
        placeholders = ",".join("?" * len(keep))
        cols = ",".join(keep)
        if section.get("mode") == "replace":
            # small tables come whole: a deletion on the server reaches the client
            self.conn.execute(f"DELETE FROM {table}")
            self.sql = f"INSERT INTO {table} ({cols}) VALUES ({placeholders})"
        elif table == "inspections":
            # records are never changed: one already here stays as it is
            self.sql = f"INSERT OR IGNORE INTO inspections ({cols}) VALUES ({placeholders})"
        elif table == "objects":
            # keep the rowid of an existing object: the R*Tree row points at it
            updates = ",".join(f"{c}=excluded.{c}" for c in keep if c != "object_id")
            self.sql = (f"INSERT INTO objects ({cols}) VALUES ({placeholders}) "
                        f"ON CONFLICT(object_id) DO UPDATE SET {updates}")
        else:
            self.sql = f"INSERT OR REPLACE INTO {table} ({cols}) VALUES ({placeholders})"

    def rows(self, rows: list) -> None:
        if self.index is not None:
            rows = [[r[i] for i in self.index] for r in rows]
        if self.table == "objects":
            pos = self.columns.index("object_id")
            ids = [r[pos] for r in rows]
            self.touched_objects.extend(ids)
            # the photometry of a changed object is resent whole
            self.conn.executemany("DELETE FROM photometry WHERE object_id = ?", [(i,) for i in ids])
        self.conn.executemany(self.sql, rows)


def _local_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {
        "observations": conn.execute("SELECT count(*) FROM observations").fetchone()[0],
        "objects": conn.execute("SELECT count(*) FROM object_aggregates WHERE visibility = '*'").fetchone()[0],
        "spectra": conn.execute("SELECT count(*) FROM spectra").fetchone()[0],
    }


def _stale_count(conn: sqlite3.Connection) -> int:
    return conn.execute(
        "SELECT count(*) FROM local_files lf JOIN spectra s ON s.spectrum_id = lf.spectrum_id "
        "WHERE lf.sha256 != s.file_hash"
    ).fetchone()[0]


def _check_complete(path: pathlib.Path, stream: _ExportStream) -> None:
    """A snapshot cut at a gzip member boundary still fails here: its size must match its header."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        raise stream.interrupted()
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    if pages and size != page_size * pages:
        raise stream.interrupted()


def _apply_snapshot(resp, db: pathlib.Path, meta_values: dict) -> dict:
    """Write a streamed gzip SQLite snapshot to a temp file, index it, then rename it over ``db``."""
    tmp = db.with_name(f"{db.name}.sync-{uuid.uuid4().hex[:8]}.tmp")
    conn = None
    stream = _ExportStream(resp)
    try:
        with open(tmp, "wb") as f:
            for block in stream.blocks():  # raises if the stream is cut (no final gzip trailer)
                f.write(block)
        _check_complete(tmp, stream)
        conn = connect(tmp, readonly=False, autocommit=True)
        try:
            kinds = {r[0] for r in conn.execute("SELECT type FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")}
            meta = read_meta(conn)
        except sqlite3.DatabaseError as err:
            raise APIError(f"sync: the server's snapshot is not a readable catalog ({err})") from err
        if meta.get("export_format") != "sqlite-snapshot" or not kinds <= _SNAPSHOT_OBJECTS:
            raise APIError("sync: the server's snapshot is not a campfire catalog export (incompatible server)")
        conn.execute("PRAGMA foreign_keys = OFF")  # the server's rows, loaded as they are
        conn.execute("PRAGMA journal_mode = OFF")  # a scratch file until the rename
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -131072")
        conn.execute("BEGIN")
        if has_object_copies(conn):
            for stmt in schema_statements()[1]:  # the indexes, built once over the loaded rows
                conn.execute(stmt)
        # else: an older server's schema-1 snapshot; finalize_catalog below upgrades it (columns, indexes)
        CatalogWriter(conn).index_objects()
        if db.exists():
            # the client's own record of its files survives the new catalog
            with contextlib.suppress(sqlite3.Error), opened(db, timeout=30) as old:
                rows = old.execute("SELECT spectrum_id, sha256, size, downloaded_at FROM local_files").fetchall()
                CatalogWriter(conn).add_local_files(rows, replace=True)
        write_meta(conn, {"schema_version": meta.get("schema_version", SCHEMA_VERSION), "owner": "client",
                         "sync_cursor": meta["export_cursor"], **meta_values})
        conn.execute("COMMIT")
        finalize_catalog(conn)  # planner statistics: cone searches use the R*Tree
        result = dict(_local_counts(conn), stale_count=_stale_count(conn))
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.close()
        conn = None
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, db)  # atomic: readers see the old catalog or the new one, never a mix
        with contextlib.suppress(OSError):
            dfd = os.open(db.parent, os.O_RDONLY)
            os.fsync(dfd)
            os.close(dfd)
        return result
    finally:
        if conn is not None:
            conn.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _apply_delta(resp, db: pathlib.Path, meta_values: dict) -> dict | None:
    """Apply an NDJSON delta in one transaction; None when the counts say a full sync is needed."""
    conn = connect(db, readonly=False, timeout=30, autocommit=True)
    try:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("BEGIN IMMEDIATE")
        try:
            stream = _ExportStream(resp)
            lines = stream.lines()
            header = next(lines, None)
            if not header or header.get("type") != "header" or header.get("format") != "campfire-export":
                raise APIError("sync: the server's export is not a campfire export (incompatible server version)")
            loader = _Loader(conn)
            end = None
            for item in lines:
                kind = item.get("type")
                if kind == "rows":
                    loader.rows(item["rows"])
                elif kind == "table":
                    loader.start(item)
                elif kind == "end":
                    end = item
                    break
            if end is None:
                raise stream.interrupted()
            if loader.touched_objects:
                CatalogWriter(conn).index_objects(loader.touched_objects)
            got = _local_counts(conn)
            if got != end["counts"]:
                log.info("sync: counts differ after the delta (%s vs %s): full sync", got, end["counts"])
                conn.execute("ROLLBACK")
                return None
            write_meta(conn, {"sync_cursor": header["cursor"], **meta_values})
            result = dict(got, stale_count=_stale_count(conn))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        # an index this campfire adds that the copy lacks (a check of ms when none is missing)
        upgrade_catalog(conn)
        return result
    finally:
        conn.close()


def _apply(resp, db: pathlib.Path, meta_values: dict) -> dict | None:
    kind = resp.headers.get("X-Campfire-Export")
    try:
        if kind == "sqlite-snapshot":
            return _apply_snapshot(resp, db, meta_values)
        if kind == "ndjson-delta":
            return _apply_delta(resp, db, meta_values)
        if "content-type" not in resp.headers:
            # every answer of the server says its type: these headers stopped short (http.client
            # takes a connection closed inside the headers for their end)
            raise SyncInterrupted("sync interrupted in the response headers; the previous catalog is intact — "
                                  "run sync again")
        raise APIError(f"sync: unknown export kind {kind!r} (incompatible server version)")
    except CampfireError:
        raise
    except (OSError, sqlite3.OperationalError) as err:
        # the network side raises SyncInterrupted; what is left is the local disk (full,
        # read-only, quota): the snapshot's temporary file is gone, a delta rolled back
        raise DownloadError(f"sync: cannot write the catalog in {db.parent} ({disk_problem(err)}); "
                            "the previous catalog is intact") from err
    finally:
        resp.close()


def sync_catalog(remote: RemoteCatalog, data_dir: str | os.PathLike) -> dict[str, int]:
    """Pull the catalog the server lets you see into ``<data_dir>/meta/campfire.db``.

    Parameters
    ----------
    remote : campfire.catalog.remote.RemoteCatalog
    data_dir : path
        The client's data directory (created if missing).

    Returns
    -------
    dict
        ``{'observations', 'objects', 'spectra', 'stale_count'}``.

    Raises
    ------
    CampfireError
        ``data_dir`` is an archive root owned by a pipeline or server (never overwritten).
    SyncInterrupted
        The stream broke; the previous catalog is intact.

    Examples
    --------
    >>> sync_catalog(cf.remote_catalog, cf.data_dir)  # doctest: +SKIP
    {'observations': 8, 'objects': 2450, 'spectra': 7200, 'stale_count': 0}
    """
    root = pathlib.Path(data_dir).expanduser()
    db = catalog_path(root)
    meta_dir = db.parent
    with dir_lock(meta_dir):
        for leftover in meta_dir.glob(f"{db.name}.sync-*.tmp"):  # from a killed sync
            with contextlib.suppress(OSError):
                leftover.unlink()
        cursor = None
        if db.exists():
            valid, owner = catalog_owner(db)
            if not valid:
                raise CampfireError(
                    f"{db} exists but is not a campfire catalog; move it away or choose another data_dir"
                )
            if owner != "client":
                raise CampfireError(
                    f"refusing to sync into {root}: it is an archive root owned by the {owner or 'unknown'} "
                    "(its catalog is the source, not a copy). Use another data_dir for the synced copy."
                )
            meta = read_meta(db)
            # a delta applies to the catalog as it is: one written by an older schema gets a full export
            if (meta.get("server_url") == remote.base_url and meta.get("sync_user", "") == (remote.username or "")
                    and meta.get("schema_version") == SCHEMA_VERSION):
                cursor = meta.get("sync_cursor")
        meta_values = {"last_synced": now(), "server_url": remote.base_url, "sync_user": remote.username or ""}
        result = _apply(remote.export(cursor), db, meta_values)
        if result is None:  # the delta did not add up: start over with a full export
            result = _apply(remote.export(None), db, meta_values)
        return result


