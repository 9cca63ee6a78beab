"""One writer at a time: advisory locks on a data_dir's catalog and on each downloaded file.

:func:`dir_lock` serialises the writers of a data_dir's catalog (sync, the
``local_files`` records of downloads); :func:`file_lock` lets one thread or process
fetch a given file while the others wait and then find it in place.
"""
from __future__ import annotations

import contextlib
import os
import pathlib

from campfire.errors import DownloadError
from campfire.transfer.datadir import disk_problem

__all__ = ["dir_lock", "file_lock"]


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


@contextlib.contextmanager
def file_lock(path: pathlib.Path):
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
