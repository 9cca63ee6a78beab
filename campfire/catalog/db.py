"""The catalog file: where it lives, how to open it, its ``archive_meta`` and its change stamp.

Every archive root keeps its catalog at ``<root>/meta/campfire.db`` (:func:`catalog_path`).
Everything that opens it — the client, the server, sync, the demo builder, schema
upgrades — goes through :func:`connect`, reads ``archive_meta`` with :func:`read_meta`
and writes it with :func:`write_meta`; caches keyed on the file's state use
:func:`change_stamp`, which also sees changes still in a WAL file.

Examples
--------
>>> catalog_path('/data/archive').as_posix()
'/data/archive/meta/campfire.db'
"""
from __future__ import annotations

import contextlib
import os
import pathlib
import sqlite3
from typing import Iterator, Mapping

from campfire.errors import CampfireError

__all__ = ["CATALOG_FILE", "catalog_path", "readonly_uri", "connect", "opened", "read_meta", "write_meta", "change_stamp"]

CATALOG_FILE = "meta/campfire.db"  # relative to an archive root


def catalog_path(root: str | os.PathLike) -> pathlib.Path:
    """The catalog file of the archive root (or client data_dir) ``root``.

    Parameters
    ----------
    root : path
        An archive root or a client ``data_dir``.

    Returns
    -------
    pathlib.Path
        ``<root>/meta/campfire.db`` (it need not exist).

    Examples
    --------
    >>> catalog_path('/tmp/root').name
    'campfire.db'
    """
    return pathlib.Path(root) / CATALOG_FILE


def readonly_uri(path: str | os.PathLike) -> str:
    """The SQLite URI that opens ``path`` read-only (``mode=ro``): no write, no new file.

    Examples
    --------
    >>> readonly_uri('/data/meta/campfire.db')
    'file:/data/meta/campfire.db?mode=ro'
    """
    return f"file:{os.fspath(path)}?mode=ro"


def connect(path: str | os.PathLike, readonly: bool = True, timeout: float = 30.0, *,
            autocommit: bool = False) -> sqlite3.Connection:
    """Open a catalog database (or another SQLite file of an archive root).

    Parameters
    ----------
    path : path
        The database file (see :func:`catalog_path`).
    readonly : bool
        Open with ``mode=ro``: the connection cannot modify the file by accident, and
        a missing file is an error instead of a new empty database. A writable
        connection creates the parent folder and enforces foreign keys.
    timeout : float
        Seconds to wait for another connection's lock.
    autocommit : bool
        No implicit transactions (``isolation_level=None``): the caller issues
        ``BEGIN``/``COMMIT`` itself.

    Returns
    -------
    sqlite3.Connection
        Usable from any thread (``check_same_thread=False``); never share one between
        threads at the same time.

    Raises
    ------
    CampfireError
        ``readonly`` and there is no file at ``path``.

    Examples
    --------
    >>> conn = connect(catalog_path(root))  # doctest: +SKIP
    """
    path = pathlib.Path(path)
    isolation = {"isolation_level": None} if autocommit else {}
    if readonly:
        if not path.exists():
            raise CampfireError(f"no catalog at {path}")
        conn = sqlite3.connect(readonly_uri(path), uri=True, timeout=timeout, check_same_thread=False,
                               **isolation)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False, **isolation)
        conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA cache_size = -65536")
    return conn


@contextlib.contextmanager
def opened(path: str | os.PathLike, readonly: bool = True, timeout: float = 30.0, *,
           autocommit: bool = False) -> Iterator[sqlite3.Connection]:
    """:func:`connect`, closed on exit (``with opened(db) as conn: ...``).

    The ``with`` block of :class:`sqlite3.Connection` itself commits but never closes;
    this one closes (and commits nothing: writers commit or use ``with conn:``).
    """
    conn = connect(path, readonly=readonly, timeout=timeout, autocommit=autocommit)
    try:
        yield conn
    finally:
        conn.close()


def read_meta(source: sqlite3.Connection | str | os.PathLike) -> dict[str, str]:
    """The ``archive_meta`` table as a dict (schema_version, owner, sync_cursor, ...).

    Parameters
    ----------
    source : sqlite3.Connection or path
        An open connection, or a database file (opened read-only for the call).

    Returns
    -------
    dict of str to str

    Raises
    ------
    CampfireError
        ``source`` is a path with no file.
    sqlite3.Error
        The file is not a catalog (no ``archive_meta`` table).

    Examples
    --------
    >>> read_meta(catalog_path(root)).get('owner')  # doctest: +SKIP
    'pipeline'
    """
    if isinstance(source, sqlite3.Connection):
        return dict(source.execute("SELECT key, value FROM archive_meta").fetchall())
    with opened(source) as conn:
        return read_meta(conn)


def write_meta(conn: sqlite3.Connection, values: Mapping[str, str]) -> None:
    """Set ``archive_meta`` keys (insert or replace); the caller commits."""
    conn.executemany("INSERT OR REPLACE INTO archive_meta (key, value) VALUES (?, ?)", list(values.items()))


def change_stamp(path: str | os.PathLike) -> tuple:
    """A value that changes whenever the database file at ``path`` does, WAL included.

    ``(mtime_ns, size)`` of the file, plus those of its ``-wal`` file when there is
    one: a WAL-mode catalog (the server's) changes in the ``-wal`` file until a
    checkpoint.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    """
    # os.stat on strings: asked on every query (twice from a client), where a pathlib object costs more
    path = os.fspath(path)
    st = os.stat(path)
    stamp: tuple = (st.st_mtime_ns, st.st_size)
    wal = path + "-wal"
    # access() first: a stat of a missing file raises, ~3 µs of a ~7 µs stamp (most files have no WAL)
    if os.access(wal, os.F_OK):
        with contextlib.suppress(FileNotFoundError):  # checkpointed and removed meanwhile
            wst = os.stat(wal)
            stamp += (wst.st_mtime_ns, wst.st_size)
    return stamp
