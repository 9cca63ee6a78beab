"""Moving bytes between a server and a client data_dir: catalog sync and FITS downloads.

``sync_catalog`` pulls the server's bulk export (one streamed gzip response, see
:mod:`campfire.server.export`) into ``<data_dir>/meta/campfire.db``:

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

``fetch_spectrum`` fetches one FITS file: it streams it to ``<file>.part``, resumes a
partial ``.part`` with an HTTP Range request, verifies the sha256 against the catalog,
renames it into place, and only then records it in ``local_files``. It is the
per-file step of every download: ``open_spectrum``'s API fallback, and the
``download`` step of a LazySpectra graph, which ``Campfire.download``
(:func:`campfire.graphs.download.download_files`) computes on ``max_workers`` threads
over the files :func:`plan_downloads` selects.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import functools
import hashlib
import json
import logging
import os
import pathlib
import sqlite3
import time
import uuid
import zlib
from typing import Iterator

from campfire import config
from campfire.catalog.db import catalog_path, connect, opened, read_meta, write_meta
from campfire.catalog.local import LocalCatalog
from campfire.catalog.schema import SCHEMA_VERSION, finalize_catalog, has_object_copies, schema_statements
from campfire.catalog.writer import CatalogWriter
from campfire.errors import APIError, CampfireError, DownloadError, NotFoundError, ValidationError

__all__ = ["sync_catalog", "plan_downloads", "fetch_spectrum", "file_sha256", "SyncInterrupted"]

log = logging.getLogger("campfire.transfer")

_EXPORT_TABLES = ("programs", "observations", "objects", "photometry", "spectra", "object_aggregates",
                  "tags", "object_tags")
_SNAPSHOT_OBJECTS = {"table", "index"}  # what a snapshot's sqlite_master may hold (no triggers or views)


class SyncInterrupted(APIError):
    """The export stream ended early; the previous catalog is intact."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The sha256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


_DISK_PROBLEMS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is larger than this system allows",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


def _disk_problem(err: BaseException) -> str:
    """A short reason for a local write failure (an OSError or SQLite's "disk is full")."""
    if isinstance(err, OSError) and err.errno in _DISK_PROBLEMS:
        return _DISK_PROBLEMS[err.errno]
    return f"{type(err).__name__}: {err}"


class _LocalWriteError(Exception):
    """A failure of the local disk while writing a download, kept apart from network errors.

    Not an OSError on purpose: requests' network exceptions are OSErrors too, and a
    full disk must neither be retried nor leave a partial file behind.
    """

    def __init__(self, err: OSError):
        super().__init__(str(err))
        self.err = err


def _discard(path: pathlib.Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


# =============================================================================== sync
def _catalog_owner(db: pathlib.Path) -> tuple[bool, str | None]:
    """(is a campfire catalog, owner) of an existing database file."""
    try:
        st = os.stat(db)
    except OSError:
        return False, None
    # asked once per downloaded file: remembered until the file changes (a sync replaces it)
    key = (str(db), st.st_mtime_ns, st.st_size, st.st_ino)
    if key not in _OWNER_CACHE:
        if len(_OWNER_CACHE) > 64:
            _OWNER_CACHE.clear()
        _OWNER_CACHE[key] = _read_catalog_owner(db)
    return _OWNER_CACHE[key]


_OWNER_CACHE: dict[tuple, tuple[bool, str | None]] = {}


def _read_catalog_owner(db: pathlib.Path) -> tuple[bool, str | None]:
    try:
        with opened(db, timeout=10) as conn:
            meta = read_meta(conn)
    except (sqlite3.Error, CampfireError):
        return False, None
    return "schema_version" in meta, meta.get("owner")


def _stream_errors():
    import requests
    import urllib3

    return (requests.RequestException, urllib3.exceptions.HTTPError, zlib.error, OSError)


def _interrupted(nbytes: int, err: BaseException | None = None) -> SyncInterrupted:
    why = f" ({type(err).__name__}: {err})" if err is not None else ""
    return SyncInterrupted(f"sync interrupted after {nbytes:,} bytes{why}; the previous catalog is intact — "
                           "run sync again")


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


def _gunzip_stream(resp, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """Decompressed blocks of a streamed gzip response; SyncInterrupted if it breaks or is cut short."""
    gz = _Gunzip()
    nbytes = 0
    try:
        for chunk in resp.iter_content(chunk_size=chunk_size):
            nbytes += len(chunk)
            out = gz.feed(chunk)
            if out:
                yield out
    except _stream_errors() as err:
        raise _interrupted(nbytes, err) from err
    if nbytes == 0 or not gz.complete:
        raise _interrupted(nbytes)


def _ndjson_lines(resp) -> Iterator[dict]:
    """Decompress and split a streamed gzip NDJSON delta into parsed lines."""
    tail = b""
    for block in _gunzip_stream(resp):
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
        self.known = {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in _EXPORT_TABLES}
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


@contextlib.contextmanager
def _dir_lock(meta: pathlib.Path):
    """One sync/download writer per data_dir at a time (advisory lock)."""
    try:
        meta.mkdir(parents=True, exist_ok=True)
        fd = os.open(meta / ".campfire.lock", os.O_CREAT | os.O_RDWR, 0o644)
    except OSError as err:
        raise DownloadError(f"cannot write into {meta} ({_disk_problem(err)}); choose a writable data_dir") from err
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover
            pass
        yield
    finally:
        os.close(fd)


def _check_complete(path: pathlib.Path) -> None:
    """A snapshot cut at a gzip member boundary still fails here: its size must match its header."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        raise _interrupted(size)
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    if pages and size != page_size * pages:
        raise _interrupted(size)


def _apply_snapshot(resp, db: pathlib.Path, meta_values: dict) -> dict:
    """Write a streamed gzip SQLite snapshot to a temp file, index it, then rename it over ``db``."""
    tmp = db.with_name(f"{db.name}.sync-{uuid.uuid4().hex[:8]}.tmp")
    conn = None
    try:
        with open(tmp, "wb") as f:
            for block in _gunzip_stream(resp):  # raises if the stream is cut (no final gzip trailer)
                f.write(block)
        _check_complete(tmp)
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
            lines = _ndjson_lines(resp)
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
                raise _interrupted(0)
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
            return result
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


def _apply(resp, db: pathlib.Path, meta_values: dict) -> dict | None:
    kind = resp.headers.get("X-Campfire-Export")
    try:
        if kind == "sqlite-snapshot":
            return _apply_snapshot(resp, db, meta_values)
        if kind == "ndjson-delta":
            return _apply_delta(resp, db, meta_values)
        raise APIError(f"sync: unknown export kind {kind!r} (incompatible server version)")
    except CampfireError:
        raise
    except (OSError, sqlite3.OperationalError) as err:
        # the network side raises SyncInterrupted; what is left is the local disk (full,
        # read-only, quota): the snapshot's temporary file is gone, a delta rolled back
        raise DownloadError(f"sync: cannot write the catalog in {db.parent} ({_disk_problem(err)}); "
                            "the previous catalog is intact") from err
    finally:
        resp.close()


def sync_catalog(remote, data_dir: str | os.PathLike) -> dict[str, int]:
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
    with _dir_lock(meta_dir):
        for leftover in meta_dir.glob(f"{db.name}.sync-*.tmp"):  # from a killed sync
            with contextlib.suppress(OSError):
                leftover.unlink()
        cursor = None
        if db.exists():
            valid, owner = _catalog_owner(db)
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
        meta_values = {"last_synced": _now(), "server_url": remote.base_url, "sync_user": remote.username or ""}
        result = _apply(remote.export(cursor), db, meta_values)
        if result is None:  # the delta did not add up: start over with a full export
            result = _apply(remote.export(None), db, meta_values)
        return result


# ========================================================================== downloads
@functools.lru_cache(maxsize=64)
def _resolved(root: str) -> pathlib.Path:
    return pathlib.Path(root).resolve()


def _safe_dest(root: pathlib.Path, fits_path: str) -> pathlib.Path:
    """``root/fits_path``, refusing anything that would leave ``root``."""
    if not fits_path or os.path.isabs(fits_path) or "\0" in fits_path:
        raise DownloadError(f"refusing unsafe file path {fits_path!r} from the catalog")
    dest = (root / fits_path).resolve()
    if not dest.is_relative_to(_resolved(str(root))):
        raise DownloadError(f"refusing file path {fits_path!r}: it leaves {root}")
    return dest


@contextlib.contextmanager
def _file_lock(path: pathlib.Path):
    """An exclusive lock on one download (a ``<file>.lock`` next to it), across threads and processes.

    The lock file is removed on release. A waiter that then holds the lock of a removed
    file sees that the path no longer names its file and locks the new one, so two
    holders never overlap.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX: no cross-process download lock
        yield
        return
    while True:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            mine = os.fstat(fd)
            try:
                now = os.stat(path)
            except FileNotFoundError:
                now = None
        except BaseException:
            os.close(fd)
            raise
        if now is not None and (now.st_ino, now.st_dev) == (mine.st_ino, mine.st_dev):
            break
        os.close(fd)  # the holder before us removed this lock file: take the current one
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def _download_one(remote, root: pathlib.Path, row: dict) -> tuple[str, int]:
    """Fetch one file to ``<dest>.part`` (resuming), verify sha256, rename. Returns (sha256, size).

    One writer per file: ``open_spectrum`` in two processes (Dask workers sharing a
    data_dir) must not write the same ``.part`` — the second waits for the first and then
    finds the verified file in place.
    """
    spectrum_id = row["spectrum_id"]
    expected = row.get("file_hash") or ""
    dest = _safe_dest(root, row["fits_path"])
    part = dest.with_name(dest.name + ".part")

    def cannot_write(err: OSError) -> DownloadError:
        _discard(part)  # nothing half-written stays behind (and a full disk gets its space back)
        return DownloadError(f"{spectrum_id}: cannot write {part} ({_disk_problem(err)}); nothing was kept — "
                             "free some space or fix the permissions, then download again")

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        lock = _file_lock(dest.with_name(dest.name + ".lock"))
        lock.__enter__()
    except OSError as err:
        raise cannot_write(err) from err
    try:
        try:
            if expected and dest.is_file() and file_sha256(dest) == expected:
                return expected, dest.stat().st_size  # finished by another process while we waited
        except OSError as err:
            raise cannot_write(err) from err
        return _fetch_locked(remote, row, dest, part, cannot_write)
    finally:
        lock.__exit__(None, None, None)


def _fetch_locked(remote, row: dict, dest: pathlib.Path, part: pathlib.Path, cannot_write):
    """The body of :func:`_download_one`, run while holding the file's lock."""
    import requests
    import urllib3

    spectrum_id = row["spectrum_id"]
    expected = row.get("file_hash") or ""
    chunk_size = int(config.get("download.chunk-size"))
    retries = int(config.get("download.retries"))
    backoff = float(config.get("api.backoff"))
    attempt = 0
    while True:
        h = hashlib.sha256()
        try:
            offset = part.stat().st_size if part.exists() else 0
            if offset:
                with open(part, "rb") as f:
                    while block := f.read(chunk_size):
                        h.update(block)
        except OSError as err:
            raise cannot_write(err) from err
        headers = {"Range": f"bytes={offset}-", "If-Range": f'"{expected}"'} if offset and expected else None
        try:
            resp = remote.open_file(spectrum_id, headers=headers)
        except CampfireError as err:
            if offset and isinstance(err, ValidationError) and "Range" in str(err):
                # 416: the part is longer than the file (it changed): start over
                _discard(part)
                continue
            raise DownloadError(f"{spectrum_id}: {err}") from err
        try:
            etag = (resp.headers.get("ETag") or "").strip('"')
            if expected and etag and etag != expected:
                raise DownloadError(
                    f"{spectrum_id}: the file changed on the server since your last sync "
                    f"(server hash {etag[:12]}…, catalog {expected[:12]}…); run cf.sync() first"
                )
            if resp.status_code == 206:
                mode = "ab"
            else:  # 200: the whole file (no resume, or the server ignored If-Range)
                mode, offset, h = "wb", 0, hashlib.sha256()
            try:
                f = open(part, mode)
            except OSError as err:
                raise _LocalWriteError(err) from err
            try:
                # small reads: a dropped connection loses at most one of them (the rest resumes by Range)
                for block in resp.iter_content(chunk_size=min(chunk_size, 65536)):  # network errors: below
                    try:
                        f.write(block)
                    except OSError as err:
                        raise _LocalWriteError(err) from err
                    h.update(block)
                try:
                    f.flush()
                    os.fsync(f.fileno())
                except OSError as err:
                    raise _LocalWriteError(err) from err
            finally:
                with contextlib.suppress(OSError):
                    f.close()
        except DownloadError:
            raise  # a changed file is not a network hiccup: no retry
        except _LocalWriteError as err:
            raise cannot_write(err.err) from err.err  # retrying cannot help a full or read-only disk
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
            resp.close()
            if attempt < retries:
                attempt += 1
                time.sleep(backoff * 2 ** (attempt - 1))
                continue  # resume from what reached the .part file
            raise DownloadError(f"{spectrum_id}: download failed after {attempt + 1} attempts ({err}); "
                                f"{part.name} is kept and resumes next time") from err
        finally:
            resp.close()
        digest = h.hexdigest()
        if expected and digest != expected:
            _discard(part)
            if attempt < retries:
                attempt += 1
                continue
            raise DownloadError(f"{spectrum_id}: sha256 mismatch (got {digest[:12]}…, expected {expected[:12]}…); "
                                "nothing was kept")
        try:
            size = part.stat().st_size
            os.replace(part, dest)
        except OSError as err:
            raise cannot_write(err) from err
        return digest, size


def _writable_client_root(cf) -> bool:
    """True when data_dir holds a client's synced catalog (the only kind downloads write into)."""
    db = catalog_path(cf.data_dir)
    if not db.exists():
        return False
    valid, owner = _catalog_owner(db)
    return valid and owner == "client"


def _record(db: pathlib.Path, records: list[tuple]) -> None:
    if not records:
        return
    conn = connect(db, readonly=False, timeout=60)
    try:
        with conn:
            CatalogWriter(conn).add_local_files(records, replace=True)
    except sqlite3.OperationalError as err:  # a full disk: the files are in place, only the record is lost
        raise DownloadError(f"cannot record {len(records)} downloaded file(s) in {db} ({_disk_problem(err)}); "
                            "they are verified and recorded by the next download()") from err
    finally:
        conn.close()


def plan_downloads(cf, query, *, stale_only: bool = False) -> tuple[list[dict], int]:
    """The rows of ``query`` whose files must be fetched, and how many are skipped.

    Present with the catalog's hash → skipped; stale (hash changed on the server) or
    absent → fetched; with ``stale_only`` only stale files are fetched. Refuses an
    archive root this client does not own (a pipeline's or server's files are the source).
    """
    root = pathlib.Path(cf.data_dir)
    db = catalog_path(root)
    if not _writable_client_root(cf):
        _, owner = _catalog_owner(db) if db.exists() else (False, None)
        raise CampfireError(
            f"download() writes into a synced data_dir; {root} is owned by the {owner or 'unknown'} "
            "(its files are already there). Use another data_dir, then cf.sync() and cf.download()."
        )
    local = LocalCatalog(root)
    try:
        have = dict(local.conn.execute("SELECT spectrum_id, sha256 FROM local_files").fetchall())
        rows = list(local.iter_rows(query))
    finally:
        local.close()
    todo, skipped = [], 0
    for row in rows:
        sha = have.get(row["spectrum_id"])
        present = sha is not None and (root / row["fits_path"]).is_file()
        if present and sha == row["file_hash"]:
            skipped += 1
            continue
        if stale_only and not (sha is not None and sha != row["file_hash"]):
            skipped += 1
            continue
        todo.append(row)
    return todo, skipped


def fetch_spectrum(cf, spectrum_id: str, row: dict | None = None) -> str:
    """The local path of one spectrum's FITS file, fetched into ``<data_dir>/products/`` if needed.

    ``row`` is the spectrum's row in the local catalog (None when there is none); a
    file already present with the catalog's hash is returned without any request.
    """
    root = pathlib.Path(cf.data_dir)
    remote = cf.remote_catalog
    if row is None:
        row = remote.spectrum_row(spectrum_id)
        if row is None:
            raise NotFoundError(f"spectrum {spectrum_id!r} not found on {remote.base_url}")
    db = catalog_path(root)
    client_root = _writable_client_root(cf)
    if db.exists() and not client_root:
        raise NotFoundError(
            f"spectrum {spectrum_id!r}: its file is missing from the archive root {root}, which this client "
            "does not write into"
        )
    dest = _safe_dest(root, row["fits_path"])
    if dest.is_file() and row.get("file_hash") and file_sha256(dest) == row["file_hash"]:
        digest, size = row["file_hash"], dest.stat().st_size
    else:
        digest, size = _download_one(remote, root, row)
    if client_root:
        with _dir_lock(db.parent):
            _record(db, [(spectrum_id, digest, size, _now())])
    return str(dest)
