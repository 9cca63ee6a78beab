"""One writer at a time: advisory locks on a data_dir's catalog and on each downloaded file.

:func:`dir_lock` serialises the writers of a data_dir's catalog (sync, the
``local_files`` records of downloads); :func:`locked_open` lets one thread or process
write a given file (a download's ``.part``, locked itself) while the others wait and
then find it in place; :func:`file_lock` is the same with a lock file of its own.
"""
from __future__ import annotations

import contextlib
import os
import pathlib
from typing import IO, Callable

from campfire.errors import DownloadError
from campfire.transfer.datadir import disk_problem

__all__ = ["dir_lock", "file_lock", "locked_open"]


@contextlib.contextmanager
def dir_lock(meta: pathlib.Path):
    """One sync/download writer per data_dir at a time (advisory lock)."""
    try:
        meta.mkdir(parents=True, exist_ok=True)
        fd = os.open(meta / ".campfire.lock", os.O_CREAT | os.O_RDWR, 0o644)
    except OSError as err:
        raise DownloadError(f"cannot write into {meta} ({disk_problem(err)}); choose a writable data_dir") from err
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover
            pass
        yield
    finally:
        os.close(fd)


def locked_open(path: pathlib.Path, opener: Callable[[pathlib.Path], IO]) -> IO:
    """``opener(path)``, with an exclusive lock on the file it opened, across threads and processes.

    The lock is the opened file's own (``flock``): no lock file beside it. A holder
    that removes or renames ``path`` hands over to the next waiter, which sees that the
    path no longer names the file it locked and opens (creates) the one now there, so
    two holders of one path never overlap. Closing the file releases the lock.

    Examples
    --------
    >>> f = locked_open(tmp / 'x.fits.part', lambda p: open(p, 'a+b'))  # doctest: +SKIP
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX: no cross-process download lock
        return opener(path)
    while True:
        f = opener(path)
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            mine = os.fstat(f.fileno())
            try:
                now = os.stat(path)
            except FileNotFoundError:
                now = None
        except BaseException:
            f.close()
            raise
        if now is not None and (now.st_ino, now.st_dev) == (mine.st_ino, mine.st_dev):
            return f
        f.close()  # the holder before us removed or renamed this file: lock the one there now


@contextlib.contextmanager
def file_lock(path: pathlib.Path):
    """An exclusive lock on one download (a ``<file>.lock`` next to it), across threads and processes.

    The lock file is removed on release (see :func:`locked_open`).
    """
    f = locked_open(path, lambda p: open(p, "ab"))
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        f.close()
