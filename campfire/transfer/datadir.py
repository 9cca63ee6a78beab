"""The client's data_dir as a place to write: whose catalog it holds, safe paths, hashes, durable writes, disk errors.

A client writes only into a data_dir holding its own synced catalog (``owner`` =
``client`` in ``archive_meta``): an archive root of a pipeline or server is the
source, never overwritten. Files land only under the data_dir, each verified by its
sha256 and recorded in ``local_files``.
"""
from __future__ import annotations

import contextlib
import ctypes
import datetime as _dt
import errno
import functools
import hashlib
import os
import pathlib
import sqlite3
import sys
from typing import Sequence

from campfire.catalog.db import catalog_path, connect, opened, read_meta
from campfire.catalog.writer import CatalogWriter
from campfire.errors import CampfireError, DownloadError

__all__ = ["file_sha256", "disk_problem", "discard", "catalog_owner", "is_client_root", "safe_dest",
           "record_files", "LocalFilesWriter", "now", "sync_files"]


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
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


def disk_problem(err: BaseException) -> str:
    """A short reason for a local write failure (an OSError or SQLite's "disk is full")."""
    if isinstance(err, OSError) and err.errno in _DISK_PROBLEMS:
        return _DISK_PROBLEMS[err.errno]
    return f"{type(err).__name__}: {err}"


def discard(path: pathlib.Path) -> None:
    """Remove ``path`` if it is there."""
    with contextlib.suppress(OSError):
        path.unlink()


# file systems whose syncfs(2) writes back every dirty file and flushes the device (Linux
# statfs f_type): ext2/3/4, xfs, btrfs; elsewhere (network and FUSE file systems among
# them) only an fsync per file is trusted
_SYNCFS_TYPES = frozenset({0xEF53, 0x58465342, 0x9123683E})


@functools.lru_cache(maxsize=1)
def _libc():
    """libc with syncfs and fstatfs (Linux), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syncfs, libc.fstatfs  # noqa: B018 - both must exist
    except (OSError, AttributeError):
        return None
    return libc


def _syncfs(fd: int) -> bool:
    """syncfs(2) on the file system of ``fd`` when it is one that honours it; False: not done."""
    libc = _libc()
    if libc is None:
        return False
    buf = ctypes.create_string_buffer(512)  # struct statfs: f_type (a C long) first
    if libc.fstatfs(fd, buf) != 0 or (ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF) not in _SYNCFS_TYPES:
        return False
    return libc.syncfs(fd) == 0  # an error: the caller falls back to fsync per file, which tells which


def sync_files(fds: Sequence[int]) -> list[OSError | None]:
    """Make what was written to the open files ``fds`` durable, all at once; the error of each, or None.

    Several files on one local file system: one ``syncfs(2)`` (the kernel writes them
    back together and flushes the device once, instead of once per file). Else, or if
    it fails: ``fsync`` per file. Directories too (after renames in them).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryFile() as a, tempfile.TemporaryFile() as b:
    ...     _ = a.write(b"x"), b.write(b"y"); a.flush(); b.flush()
    ...     sync_files([a.fileno(), b.fileno()])
    [None, None]
    """
    errors: list[OSError | None] = [None] * len(fds)
    by_device: dict[int, list[int]] = {}
    for i, fd in enumerate(fds):
        try:
            by_device.setdefault(os.fstat(fd).st_dev, []).append(i)
        except OSError as err:
            errors[i] = err
    for idx in by_device.values():
        if len(idx) > 1 and _syncfs(fds[idx[0]]):
            continue
        for i in idx:
            try:
                os.fsync(fds[i])
            except OSError as err:
                errors[i] = err
    return errors


def catalog_owner(db: pathlib.Path) -> tuple[bool, str | None]:
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


def is_client_root(data_dir: str | os.PathLike) -> bool:
    """True when data_dir holds a client's synced catalog (the only kind downloads write into)."""
    db = catalog_path(data_dir)
    if not db.exists():
        return False
    valid, owner = catalog_owner(db)
    return valid and owner == "client"


@functools.lru_cache(maxsize=64)
def _resolved(root: str) -> pathlib.Path:
    return pathlib.Path(root).resolve()


def safe_dest(root: pathlib.Path, fits_path: str) -> pathlib.Path:
    """``root/fits_path``, refusing anything that would leave ``root``."""
    if not fits_path or os.path.isabs(fits_path) or "\0" in fits_path:
        raise DownloadError(f"refusing unsafe file path {fits_path!r} from the catalog")
    # lexically: the path comes from the server, the directories under root are the user's own
    # (a resolve() per file costs a stat per path component)
    rel = os.path.normpath(fits_path)
    if rel == "." or rel == ".." or rel.startswith(("../", "/")) or os.path.isabs(rel):
        raise DownloadError(f"refusing file path {fits_path!r}: it leaves {root}")
    return _resolved(str(root)) / rel


class LocalFilesWriter:
    """Records verified files in a data_dir's ``local_files`` over one connection, kept from commit to commit.

    Opening the catalog costs ~1 ms of CPU per commit (SQLite reads its schema anew), and a
    download commits every few dozen files. Before each commit the connection is checked
    against the catalog file in place — the caller holds the data_dir's lock
    (:func:`~campfire.transfer.locks.dir_lock`), as a sync does while it replaces the file
    — and a catalog replaced meanwhile is opened again: no record goes to a file no longer
    in place.

    Examples
    --------
    >>> writer = LocalFilesWriter(catalog_path(data_dir))             # doctest: +SKIP
    >>> writer.add([(spectrum_id, sha256, size, now())])              # doctest: +SKIP
    >>> writer.close()                                                # doctest: +SKIP
    """

    def __init__(self, db: pathlib.Path):
        self.db = db
        self._conn: sqlite3.Connection | None = None
        self._file: tuple[int, int] | None = None

    def add(self, records: list[tuple]) -> None:
        """Record (spectrum_id, sha256, size, downloaded_at) tuples in one transaction.

        Raises
        ------
        DownloadError
            The catalog cannot be written (a full disk, or it is gone); the files themselves are in place.
        """
        if not records:
            return
        try:
            st = os.stat(self.db)
            if self._conn is None or self._file != (st.st_dev, st.st_ino):
                self.close()
                self._conn = connect(self.db, readonly=False, timeout=60)
                self._file = (st.st_dev, st.st_ino)
            with self._conn:
                CatalogWriter(self._conn).add_local_files(records, replace=True)
        except (OSError, sqlite3.OperationalError) as err:  # a full disk: the files are in place, only the record is lost
            self.close()
            raise DownloadError(f"cannot record {len(records)} downloaded file(s) in {self.db} ({disk_problem(err)}); "
                                "they are verified and recorded by the next download()") from err

    def close(self) -> None:
        """Close the connection (the next :meth:`add` opens one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = self._file = None


def record_files(db: pathlib.Path, records: list[tuple]) -> None:
    """Record verified files in the catalog's ``local_files``: (spectrum_id, sha256, size, downloaded_at).

    Raises
    ------
    DownloadError
        The catalog cannot be written (a full disk); the files themselves are in place.
    """
    writer = LocalFilesWriter(db)
    try:
        writer.add(records)
    finally:
        writer.close()
