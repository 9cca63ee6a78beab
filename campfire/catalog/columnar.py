"""Query results read column by column: SQLite → Arrow (ADBC) → numpy, no Python object per row.

``sqlite3`` hands every row over as a tuple of Python objects (~5 µs per row of
``query_spectra`` before any Table exists). The ADBC SQLite driver
(``adbc-driver-sqlite``, with ``pyarrow``: the ``fast`` extra) runs the same SQL
and fills Arrow columns in C; numbers become numpy arrays in one copy and strings
numpy unicode in a few vectorised passes (:func:`column_array`).
:class:`~campfire.catalog.local.LocalCatalog` reads its Tables here when the
extra is installed (config ``campfire.catalog.reader``) and falls back to the
rows of ``sqlite3`` for anything this reader does not do exactly as they do.

Two SQLite libraries in one process (the driver bundles its own) must not both
lock the same file: POSIX locks belong to the process, so one library's unlock
or ``close()`` silently drops the other's locks (sqlite.org, "How To Corrupt
An SQLite Database File", 2.2). Hence:

* the driver opens the catalog ``mode=ro&nolock=1``: it never writes, never
  takes or drops a lock;
* each read runs inside a read transaction of a ``sqlite3`` connection to the same
  file (the guard): its SHARED lock keeps every writer — this process's, through
  sqlite3's own bookkeeping, and other processes', through the file lock — from
  changing the file until the columns are read. A writer waits for it (its busy
  timeout), as it waits for any reader;
* a driver connection closes only when its file is gone or was replaced (a sync's
  swap): closing a live catalog's file would drop this process's locks on it;
* a catalog in WAL mode (a served archive) is read through rows: its readers lock
  the ``-shm`` file, which the driver would share.

Examples
--------
>>> column_array(pa.array(['ab', None, 'é']), 'str')          # doctest: +SKIP
array(['ab', '', 'é'], dtype='<U2')
"""
from __future__ import annotations

import collections
import functools
import os
import sqlite3
import threading
from typing import Any, Sequence

import numpy as np

from campfire.catalog.db import connect, readonly_uri

__all__ = ["available", "read_columns", "column_array", "Unsupported"]

# rows per Arrow batch: the driver infers each column's type from the first batch, and
# a column NULL throughout it and not after fails; then the query runs again in one batch
# of up to _MAX_BATCH_ROWS (a batch reserves memory for its rows: ~0.1 ms per 50,000).
# A limited query reads its rows in one batch (no second run); batches of 1,024 for 50,000
# rows were no faster within the bench's alternation (bench/RESULTS.md, stop 25)
_BATCH_ROWS = 1024
_MAX_BATCH_ROWS = 1 << 20
_STATEMENTS = 16  # prepared statements kept per reader
_MISSING = {"float": np.nan, "int": 0, "bool": False, "str": ""}
_EMPTY = {"float": np.float64, "int": np.int64, "bool": bool, "str": "U1"}
# a text column of up to this many values becomes numpy text through Python strings (~0.25 µs a
# value): Arrow's padding and null-filling kernels cost 40-80 µs a call (bench/RESULTS.md, stop 37)
_PYTHON_STRINGS_UP_TO = 300


class Unsupported(Exception):
    """This result is read through rows instead (a type or state the columns would not match exactly)."""


@functools.lru_cache(maxsize=None)
def available() -> bool:
    """True when the driver and pyarrow import (``pip install "campfire[fast]"``).

    Examples
    --------
    >>> isinstance(available(), bool)
    True
    """
    try:
        import adbc_driver_manager  # noqa: F401
        import adbc_driver_sqlite  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _is_wal(conn: sqlite3.Connection) -> bool:
    return conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"


def _driver_errors() -> tuple[type[BaseException], ...]:
    """What a failed read raises: the driver's errors, and pyarrow's when a later batch fails (an OSError)."""
    import adbc_driver_manager
    import pyarrow as pa

    return adbc_driver_manager.Error, pa.ArrowException, OSError


def _bind_batch(params: Sequence):
    """The parameters as a one-row Arrow batch (one column each): one Arrow array per Python type, sliced."""
    import pyarrow as pa

    by_type: dict[type, list[int]] = {}
    for i, value in enumerate(params):
        by_type.setdefault(type(value), []).append(i)
    cols: list[Any] = [None] * len(params)
    for positions in by_type.values():
        values = pa.array([params[i] for i in positions])
        for k, i in enumerate(positions):
            cols[i] = values.slice(k, 1)
    return pa.RecordBatch.from_arrays(cols, names=[str(i) for i in range(len(params))])


class _Reader:
    """A driver connection and its guard (a sqlite3 connection) on one catalog file; one thread at a time.

    Its statements stay prepared (the last :data:`_STATEMENTS`), as sqlite3 keeps
    its own: preparing a query's SQL costs as much as running a small one.
    """

    def __init__(self, path: str, timeout: float):
        import adbc_driver_manager
        import adbc_driver_sqlite

        self.guard = connect(path, readonly=True, timeout=timeout, autocommit=True)
        try:
            self.db = adbc_driver_sqlite.connect(readonly_uri(path) + "&nolock=1")
            self.conn = adbc_driver_manager.AdbcConnection(self.db)
            self.conn.set_autocommit(True)  # no transaction of its own: the guard's lock is the one
        except adbc_driver_manager.Error as err:
            self.guard.close()
            raise Unsupported(f"the driver cannot open {path}: {err}") from err
        self.statements: collections.OrderedDict[tuple[str, int], Any] = collections.OrderedDict()
        self._tuned = False

    def _statement(self, sql: str, batch_rows: int):
        import adbc_driver_manager

        key = (sql, batch_rows)
        stmt = self.statements.pop(key, None)
        if stmt is None:
            stmt = adbc_driver_manager.AdbcStatement(self.conn)
            stmt.set_options(**{"adbc.sqlite.query.batch_rows": str(batch_rows)})
            stmt.set_sql_query(sql)
            stmt.prepare()
            if len(self.statements) >= _STATEMENTS:
                self.statements.popitem(last=False)[1].close()
        self.statements[key] = stmt
        return stmt

    def _run(self, sql: str, params: Sequence, batch_rows: int):
        import pyarrow as pa

        stmt = self._statement(sql, batch_rows)
        try:
            if params:
                stmt.bind(_bind_batch(params))
            handle, _ = stmt.execute_query()
            return pa.RecordBatchReader.from_stream(handle).read_all()
        except BaseException:
            # a statement stopped before its end keeps its read open (a snapshot, never refreshed): finalised
            self.statements.pop((sql, batch_rows)).close()
            raise

    def read(self, sql: str, params: Sequence, batch_rows: int):
        """The result of ``sql`` as a pyarrow Table, read while the guard holds the file still."""
        failed = _driver_errors()
        self.guard.execute("BEGIN")
        try:
            # the SHARED lock: taken by the transaction's first read, held until COMMIT
            self.guard.execute("SELECT count(*) FROM sqlite_master").fetchone()
            if _is_wal(self.guard):
                raise Unsupported("a WAL-mode catalog")
            if not self._tuned:  # as connect() does for sqlite3: the indexes stay cached between queries
                self._run("PRAGMA cache_size = -65536", [], 1)
                self._tuned = True
            try:
                return self._run(sql, params, batch_rows)
            except failed as err:
                if "type mismatch" not in str(err).lower() or batch_rows >= _MAX_BATCH_ROWS:
                    raise Unsupported(str(err)) from err
            # a column NULL throughout the first batch and not after: all in one batch (as far as it goes)
            try:
                return self._run(sql, params, _MAX_BATCH_ROWS)
            except failed as err:
                raise Unsupported(str(err)) from err
        finally:
            self.guard.execute("COMMIT")

    def close(self) -> None:
        for stmt in self.statements.values():
            stmt.close()
        for handle in (self.conn, self.db, self.guard):
            handle.close()


# idle readers per (process, device, inode) of a catalog file; a thread takes one for a read
_POOL: dict[tuple[int, int, int], list[_Reader]] = {}
_PATHS: dict[str, tuple[int, int, int]] = {}
_POOL_LOCK = threading.Lock()


def _file_key(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return os.getpid(), st.st_dev, st.st_ino


def _retire(path: str) -> None:
    """Close the idle readers of ``path``'s former file (a busy one closes when given back). Under the lock."""
    key = _PATHS.pop(path)
    if key[0] == os.getpid():  # a forked child leaves its parent's readers alone
        for reader in _POOL.pop(key, []):
            reader.close()


def _take(path: str, timeout: float) -> tuple[tuple[int, int, int], _Reader]:
    key = _file_key(path)
    if key is None:
        raise Unsupported(f"no catalog file at {path}")
    with _POOL_LOCK:
        if _PATHS.get(path) != key:
            # a new file at ``path`` (or a first read): the readers of files that are gone or
            # were replaced close now; those of a live catalog never do (closing its file would
            # drop this process's locks on it)
            for other in [p for p, k in _PATHS.items() if p == path or _file_key(p) != k]:
                _retire(other)
            _PATHS[path] = key
        idle = _POOL.setdefault(key, [])
        if idle:
            return key, idle.pop()
    reader = _Reader(path, timeout)
    if _file_key(path) != key:  # replaced while it opened: the guard and the driver may see different files
        reader.close()
        raise Unsupported("the catalog file was replaced while it opened")
    return key, reader


def _give_back(path: str, key: tuple[int, int, int], reader: _Reader) -> None:
    with _POOL_LOCK:
        if _PATHS.get(path) == key:
            _POOL.setdefault(key, []).append(reader)
            return
    reader.close()  # its file is no longer the catalog


def read_columns(path: str | os.PathLike, sql: str, params: Sequence, dtypes: Sequence[str], *,
                 limit: int | None = None, timeout: float = 30.0) -> list[np.ndarray]:
    """The result of ``sql`` as one numpy array per column, typed as :mod:`campfire.catalog.columns` types them.

    Parameters
    ----------
    path : path
        The catalog file.
    sql, params
        A statement of :func:`campfire.catalog.compile.compile_query` and its parameters.
    dtypes : sequence of str
        ``'float'``, ``'int'``, ``'bool'`` or ``'str'`` per selected column.
    limit : int, optional
        The query's LIMIT: so many rows are read in one batch (their types inferred at once).
    timeout : float
        Seconds the guard waits for a writer's lock.

    Returns
    -------
    list of numpy.ndarray
        As :func:`campfire.catalog.columns.make_table` makes them from the rows: NaN,
        0, False or '' where SQL gives NULL, unicode exactly as wide as its longest value.

    Raises
    ------
    Unsupported
        The columns would not be exactly those of the rows (a value of another type in
        a column, a WAL-mode catalog, a driver error): read the rows instead.
    """
    path = os.fspath(path)
    key, reader = _take(path, timeout)
    try:
        batch_rows = _BATCH_ROWS if limit is None else min(max(limit, _BATCH_ROWS), _MAX_BATCH_ROWS)
        table = reader.read(sql, params, batch_rows)
    finally:  # a failed read leaves nothing in the reader that the next one sees
        _give_back(path, key, reader)
    if table.num_columns != len(dtypes):
        raise ValueError(f"dtypes: {len(dtypes)} given for {table.num_columns} selected columns")
    if table.num_rows == 0:
        return [np.zeros(0, dtype=_EMPTY[dtype]) for dtype in dtypes]
    return [column_array(table.column(i), dtype) for i, dtype in enumerate(dtypes)]


def column_array(values: Any, dtype: str) -> np.ndarray:
    """One Arrow column as a numpy array of ``dtype`` (``'float'``, ``'int'``, ``'bool'``, ``'str'``).

    Nulls become NaN, 0, False or ''; a ``'str'`` column becomes ``<U{n}``, ``n`` the
    length of its longest value (1 at least), without a Python string per value.

    Raises
    ------
    Unsupported
        An Arrow type the row reader would convert otherwise (text in a number
        column, a number in a text column, a blob).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pa.ChunkedArray):
        values = values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()
    kind = values.type
    n = len(values)
    if pa.types.is_null(kind) or values.null_count == n:  # no value at all (the driver says int64)
        return np.full(n, _MISSING[dtype], dtype=_EMPTY[dtype])
    if dtype == "str":
        if not pa.types.is_string(kind):
            raise Unsupported(f"a {kind} value in a text column")
        return _unicode(values)
    if not (pa.types.is_integer(kind) or (dtype == "float" and pa.types.is_floating(kind))):
        raise Unsupported(f"a {kind} value in a {dtype} column")
    # writable copies (a Table's columns are the user's to change), not views of Arrow's buffers
    if dtype == "float":
        if kind != pa.float64():
            values = values.cast(pa.float64(), safe=False)  # rounded beyond 2**53, as numpy casts
        return values.to_numpy(zero_copy_only=False, writable=True)  # nulls: NaN
    if values.null_count:
        values = pc.fill_null(values, 0)
    if dtype == "bool":
        return values.to_numpy() != 0
    return values.cast(pa.int64()).to_numpy(zero_copy_only=False, writable=True)


def _buffers(values) -> tuple[np.ndarray, np.ndarray]:
    """The offsets and the bytes of an Arrow string array (of its slice), as numpy views."""
    n = len(values)
    _, offset_buf, data_buf = values.buffers()
    offsets = np.frombuffer(offset_buf, dtype=np.int32, count=n + 1, offset=4 * values.offset)
    if data_buf is None:  # only empty strings
        return offsets, np.zeros(0, dtype=np.uint8)
    return offsets, np.frombuffer(data_buf, dtype=np.uint8)[offsets[0]:offsets[-1]]


def _unicode(values) -> np.ndarray:
    """An Arrow string array as ``<U{longest}`` (nulls ''): each value padded with NUL to one width, then widened.

    numpy's unicode is UTF-32 with trailing NULs ignored, so padding every value with NUL
    to the longest one's length lays the array out as numpy wants it; ASCII bytes are
    their own code points (one cast), other text is decoded once as a whole. A short array
    (:data:`_PYTHON_STRINGS_UP_TO` values) goes through Python strings instead.
    """
    import pyarrow.compute as pc

    n = len(values)
    if n <= _PYTHON_STRINGS_UP_TO:
        strings = values.to_pylist()
        if values.null_count:
            strings = ["" if s is None else s for s in strings]
        return np.array(strings, dtype=str)
    if values.null_count:
        values = pc.fill_null(values, "")
    offsets, data = _buffers(values)
    ascii_only = data.max(initial=0) < 0x80
    lengths = np.diff(offsets) if ascii_only else pc.utf8_length(values).to_numpy()
    width = max(int(lengths.max(initial=0)), 1)
    if not (lengths == width).all():
        values = pc.utf8_rpad(values, width=width, padding="\0")
        offsets, data = _buffers(values)
    if ascii_only:
        return data.astype(np.uint32).view(f"<U{width}")
    return np.frombuffer(bytearray(data.tobytes().decode("utf-8").encode("utf-32-le")), dtype=f"<U{width}")
