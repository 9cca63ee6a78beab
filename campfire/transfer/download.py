"""Fetching FITS files from a server into a client data_dir: plan, stream, resume, verify, record.

:func:`fetch_spectrum` fetches one file: it streams it to ``<file>.part`` (locked: one
writer per file across threads and processes), resumes a partial ``.part`` with an HTTP
Range request, verifies the sha256 against the catalog, makes it durable, renames it
into place, and only then records it in ``local_files``. In batch mode (``pending``)
the last three steps are :func:`record_downloads`' for many files at once: one sync,
the renames, one transaction. It is the per-file
step of every download: ``open_spectrum``'s API fallback, and the ``download`` step of
a graph (:func:`fetch_ref`), which ``Campfire.download``
(:func:`campfire.graphs.download.download_files`) computes on ``max_workers`` threads
over the files :func:`plan_downloads` selects. Everything here takes the server
(:class:`~campfire.catalog.remote.RemoteCatalog`) and the data_dir, never the client.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pathlib
import time
from typing import Callable, NamedTuple

import requests
import urllib3

from campfire import config
from campfire.catalog.db import catalog_path
from campfire.catalog.filters import Query
from campfire.catalog.local import LocalCatalog
from campfire.catalog.remote import RemoteCatalog
from campfire.errors import CampfireError, DownloadError, NotFoundError, ValidationError
from campfire.transfer.datadir import (
    catalog_owner,
    discard,
    disk_problem,
    file_sha256,
    LocalFilesWriter,
    is_client_root,
    now,
    record_files,
    safe_dest,
    sync_files,
)
from campfire.transfer.locks import dir_lock, locked_open

__all__ = ["plan_downloads", "fetch_spectrum", "fetch_ref", "record_downloads"]


class _LocalWriteError(Exception):
    """A failure of the local disk while writing a download, kept apart from network errors.

    Not an OSError on purpose: requests' network exceptions are OSErrors too, and a
    full disk must neither be retried nor leave a partial file behind.
    """

    def __init__(self, err: OSError):
        super().__init__(str(err))
        self.err = err


class _Part:
    """``<file>.part`` opened by this thread and locked (:func:`~campfire.transfer.locks.locked_open`).

    The lock is the ``.part`` file's own: one writer per file across threads and
    processes, and no lock file created and removed per download (on ext4 without a
    journal every recently removed inode makes the next file creations scan past it).
    ``ours`` stays True while the path names the locked file: only its holder removes
    (:meth:`drop`) or renames (:meth:`publish`) it, which hands the path to the next waiter.
    """

    def __init__(self, path: pathlib.Path):
        self.path = path
        try:
            self.f = locked_open(path, _open_part)
        except FileNotFoundError:  # the file's directory is new: one mkdir, not one per file
            path.parent.mkdir(parents=True, exist_ok=True)
            self.f = locked_open(path, _open_part)
        self.ours = True

    def drop(self) -> None:
        """Remove the ``.part`` (nothing half-written stays behind; a full disk gets its space back)."""
        if self.ours:
            discard(self.path)
            self.ours = False

    def publish(self, dest: pathlib.Path) -> None:
        """Rename the verified ``.part`` to ``dest``."""
        os.replace(self.path, dest)
        self.ours = False

    def close(self) -> None:
        """Release the lock; an empty ``.part`` (nothing arrived) is removed first."""
        with contextlib.suppress(OSError):
            self.f.flush()
            if self.ours and os.fstat(self.f.fileno()).st_size == 0:
                self.drop()
        with contextlib.suppress(OSError):
            self.f.close()


def _open_part(path: pathlib.Path):
    """A ``.part`` for reading what it holds and appending (created if absent, never truncated here)."""
    return open(path, "a+b")


class _Staged(NamedTuple):
    """A verified download not yet in place: its ``local_files`` record, its locked ``.part``, where it goes."""

    spectrum_id: str
    sha256: str
    size: int
    downloaded_at: str
    part: _Part
    dest: pathlib.Path


def _cannot_write(spectrum_id: str, path: pathlib.Path, err: OSError) -> DownloadError:
    return DownloadError(f"{spectrum_id}: cannot write {path} ({disk_problem(err)}); nothing was kept — "
                         "free some space or fix the permissions, then download again")


def _download_one(remote, root: pathlib.Path, row: dict, *, stage: bool = False
                  ) -> tuple[str, int, bool, _Part | None]:
    """Fetch one file to ``<dest>.part`` (resuming), verify sha256, make it durable, rename.

    Returns (sha256, size, fetched, part): ``fetched`` is False when another process put
    the verified file in place while this one waited for it. With ``stage`` the verified
    ``.part`` is neither synced nor renamed: ``part`` is returned still open and locked,
    for :func:`_publish` to make a batch durable at once.

    One writer per file: ``open_spectrum`` in two processes (Dask workers sharing a
    data_dir) must not write the same ``.part`` — the second waits for the first and then
    finds the verified file in place.
    """
    spectrum_id = row["spectrum_id"]
    expected = row.get("file_hash") or ""
    dest = safe_dest(root, row["fits_path"])
    part_path = dest.with_name(dest.name + ".part")

    def cannot_write(err: OSError, part: _Part | None = None) -> DownloadError:
        if part is not None:
            part.drop()
        return _cannot_write(spectrum_id, part_path, err)

    try:
        part = _Part(part_path)
    except OSError as err:
        raise cannot_write(err) from err
    staged = False
    try:
        try:
            if expected and dest.is_file() and file_sha256(dest) == expected:
                part.drop()  # finished by another process while we waited: a .part is of no use
                return expected, dest.stat().st_size, False, None
        except OSError as err:
            raise cannot_write(err, part) from err
        digest = _transfer(remote, row, part, functools.partial(cannot_write, part=part))
        try:
            size = os.fstat(part.f.fileno()).st_size
            if stage:
                staged = True
                return digest, size, True, part
            os.fsync(part.f.fileno())  # on disk before it has its name
            part.publish(dest)
        except OSError as err:
            raise cannot_write(err, part) from err
        return digest, size, True, None
    finally:
        if not staged:
            part.close()


def _blocks(resp, chunk_size: int):
    """The body of a streamed response, in blocks of what has arrived.

    The fast path's blocks are views of one reused buffer (``readview``: no new bytes
    object per block), each valid until the next is read: written and hashed at once.
    Else urllib3's ``read1``.
    """
    if hasattr(resp, "readview"):
        return iter(lambda: resp.readview(chunk_size), b"")
    if hasattr(resp, "read1"):
        return iter(lambda: resp.read1(chunk_size), b"")
    return resp.stream(min(chunk_size, 65536))  # requests (through a proxy): small reads lose little


def _transfer(remote, row: dict, part: _Part, cannot_write) -> str:
    """Stream the file into the locked ``part`` (resuming what it holds), retrying; its verified sha256.

    The data is flushed to the kernel, not yet synced. A ``.part`` that already holds the
    whole verified file (a batch interrupted before its renames) needs no request.
    """
    spectrum_id = row["spectrum_id"]
    expected = row.get("file_hash") or ""
    chunk_size = int(config.get("download.chunk-size"))
    retries = int(config.get("download.retries"))
    backoff = float(config.get("api.backoff"))
    f = part.f
    attempt = 0
    while True:
        h = hashlib.sha256()
        try:
            offset = f.seek(0, os.SEEK_END)
            if offset:
                f.seek(0)
                while block := f.read(chunk_size):
                    h.update(block)
        except OSError as err:
            raise cannot_write(err) from err
        if offset and expected and h.hexdigest() == expected:
            return expected
        headers = {"Range": f"bytes={offset}-", "If-Range": f'"{expected}"'} if offset and expected else None
        try:
            resp = remote.open_file(spectrum_id, headers=headers)
        except CampfireError as err:
            if offset and isinstance(err, ValidationError) and "Range" in str(err):
                # 416: the part is longer than the file (it changed): start over
                try:
                    f.truncate(0)
                except OSError as err2:
                    raise cannot_write(err2) from err2
                continue
            raise DownloadError(f"{spectrum_id}: {err}") from err
        read_all = False
        try:
            etag = (resp.headers.get("ETag") or "").strip('"')
            if expected and etag and etag != expected:
                raise DownloadError(
                    f"{spectrum_id}: the file changed on the server since your last sync "
                    f"(server hash {etag[:12]}…, catalog {expected[:12]}…); run cf.sync() first"
                )
            if resp.status != 206 and offset:  # 200: the whole file (the server ignored If-Range)
                try:
                    f.truncate(0)
                except OSError as err:
                    raise _LocalWriteError(err) from err
                h = hashlib.sha256()
            # whatever has arrived, up to 1 MiB a step: few Python steps per file, and a
            # dropped connection loses nothing that arrived (the rest resumes by Range);
            # the file is opened for appending: each block lands at its end
            for block in _blocks(resp, chunk_size):  # network errors: below
                try:
                    f.write(block)
                except OSError as err:
                    raise _LocalWriteError(err) from err
                h.update(block)
            read_all = True
            try:
                f.flush()
            except OSError as err:
                raise _LocalWriteError(err) from err
        except DownloadError:
            raise  # a changed file is not a network hiccup: no retry
        except _LocalWriteError as err:
            raise cannot_write(err.err) from err.err  # retrying cannot help a full or read-only disk
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
            if attempt < retries:
                attempt += 1
                time.sleep(backoff * 2 ** (attempt - 1))
                continue  # resume from what reached the .part file
            raise DownloadError(f"{spectrum_id}: download failed after {attempt + 1} attempts ({err}); "
                                f"{part.path.name} is kept and resumes next time") from err
        finally:
            if not read_all:
                resp.close()  # a body left unread must not go back to the pool
            resp.release_conn()
        digest = h.hexdigest()
        if expected and digest != expected:
            if attempt < retries:
                attempt += 1
                try:
                    f.truncate(0)
                except OSError as err:
                    raise cannot_write(err) from err
                continue
            part.drop()
            raise DownloadError(f"{spectrum_id}: sha256 mismatch (got {digest[:12]}…, expected {expected[:12]}…); "
                                "nothing was kept")
        return digest


def _publish(staged: list[_Staged]) -> dict[str, str]:
    """Make staged downloads durable together, rename them into place, release their locks.

    The order a crash can interrupt safely: the data of every ``.part`` reaches the disk
    (one ``syncfs`` where the file system honours it, else an fsync each), then the
    renames, then the renames themselves are synced — all before the caller records
    the files in ``local_files``. Interrupted before a rename, a ``.part`` holds the
    whole verified file and the next download renames it without a request; a file
    whose sync or rename failed is removed, not recorded.

    Returns
    -------
    dict
        ``{spectrum_id: reason}`` of the files not published.
    """
    failed: dict[str, str] = {}
    try:
        published = []
        for s, err in zip(staged, sync_files([s.part.f.fileno() for s in staged])):
            if err is None:
                try:
                    s.part.publish(s.dest)
                    published.append(s)
                    continue
                except OSError as rename_err:
                    err = rename_err
            s.part.drop()
            failed[s.spectrum_id] = str(_cannot_write(s.spectrum_id, s.part.path, err))
        # the new names on disk too: a file recorded in local_files is there under its name
        folders = {s.dest.parent for s in published}
        for folder, err in _sync_dirs(folders).items():
            for s in published:
                if s.dest.parent == folder:  # in place, unrecorded: the next download checks its hash
                    failed[s.spectrum_id] = (f"{s.spectrum_id}: cannot sync {folder} ({disk_problem(err)}); "
                                             "the file is in place, verified and recorded by the next download()")
    finally:
        for s in staged:
            s.part.close()
    return failed


def _sync_dirs(folders) -> dict[pathlib.Path, OSError]:
    """Sync directories after renames in them (POSIX); the ones that failed, with why."""
    if os.name != "posix" or not folders:
        return {}
    folders = sorted(folders)
    fds: list[int] = []
    failed: dict[pathlib.Path, OSError] = {}
    try:
        opened_folders = []
        for folder in folders:
            try:
                fds.append(os.open(folder, os.O_RDONLY))
                opened_folders.append(folder)
            except OSError as err:
                failed[folder] = err
        for folder, err in zip(opened_folders, sync_files(fds)):
            if err is not None:
                failed[folder] = err
    finally:
        for fd in fds:
            os.close(fd)
    return failed


def plan_downloads(data_dir: str | os.PathLike, query: Query, *, stale_only: bool = False
                   ) -> tuple[list[dict], int]:
    """The rows of ``query`` whose files must be fetched into ``data_dir``, and how many are skipped.

    Present with the catalog's hash → skipped; stale (hash changed on the server) or
    absent → fetched; with ``stale_only`` only stale files are fetched.

    Parameters
    ----------
    data_dir : path
        A client data_dir with a synced catalog.
    query : Query
        The spectra selection (``build_query('spectra', ...)``).
    stale_only : bool
        Only files whose server hash changed since they were downloaded.

    Returns
    -------
    (list of dict, int)
        The catalog rows to fetch, and the number of files skipped.

    Raises
    ------
    CampfireError
        ``data_dir`` is an archive root this client does not own (a pipeline's or
        server's files are the source).

    Examples
    --------
    >>> rows, skipped = plan_downloads(cf.data_dir, build_query('spectra', fields=['uds']))  # doctest: +SKIP
    """
    root = pathlib.Path(data_dir)
    db = catalog_path(root)
    if not is_client_root(root):
        _, owner = catalog_owner(db) if db.exists() else (False, None)
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


def fetch_spectrum(remote: RemoteCatalog, data_dir: str | os.PathLike, spectrum_id: str,
                   row: dict | None = None, on_fetch: Callable[[str, int], None] | None = None, *,
                   pending: list[tuple] | None = None, client_root: bool | None = None) -> str:
    """The local path of one spectrum's FITS file, fetched into ``<data_dir>/products/`` if needed.

    Streams to ``<file>.part`` (resuming a partial one with HTTP Range), verifies the
    sha256 against the catalog, renames it into place and records it in the synced
    catalog's ``local_files``. A file already present with the catalog's hash is
    returned without any request.

    Parameters
    ----------
    remote : RemoteCatalog
        The server the file comes from.
    data_dir : path
        The client's data directory (a synced copy, or one without a catalog).
    spectrum_id : str
    row : dict, optional
        The spectrum's catalog row (``fits_path``, ``file_hash``); None: asked from the server.
    on_fetch : callable, optional
        Called with ``(spectrum_id, size)`` when this call transferred the file (not when
        it was in place already, or another process fetched it meanwhile).
    pending : list, optional
        Batch mode (a client data_dir): the verified file is appended to this list
        instead of being synced, renamed and recorded; the caller makes the batch durable
        at once, renames it into place and records it in one transaction
        (:func:`record_downloads`), and the returned path exists only then. Until then
        the file's ``.part`` stays locked; interrupted, it holds the whole verified file
        and the next download renames it without a request.
    client_root : bool, optional
        Whether ``data_dir`` holds this client's synced catalog, when the caller has
        checked it once for many files (:func:`plan_downloads` does); None: checked here.

    Returns
    -------
    str
        The absolute path of the verified file.

    Raises
    ------
    NotFoundError
        No such spectrum on the server, or ``data_dir`` is an archive root this client
        does not write into.
    DownloadError
        The download failed (network, hash mismatch, full disk); nothing half-written is kept.

    Examples
    --------
    >>> fetch_spectrum(cf.remote_catalog, cf.data_dir, 'ember_uds_p4_prism_clear_123456')  # doctest: +SKIP
    """
    root = pathlib.Path(data_dir)
    if row is None:
        row = remote.spectrum_row(spectrum_id)
        if row is None:
            raise NotFoundError(f"spectrum {spectrum_id!r} not found on {remote.base_url}")
    if client_root is None:
        client_root = is_client_root(root)
    if not client_root and catalog_path(root).exists():
        raise NotFoundError(
            f"spectrum {spectrum_id!r}: its file is missing from the archive root {root}, which this client "
            "does not write into"
        )
    dest = safe_dest(root, row["fits_path"])
    part = None
    if dest.is_file() and row.get("file_hash") and file_sha256(dest) == row["file_hash"]:
        digest, size, fetched = row["file_hash"], dest.stat().st_size, False
    else:
        digest, size, fetched, part = _download_one(remote, root, row, stage=client_root and pending is not None)
    if fetched and on_fetch is not None:
        on_fetch(spectrum_id, size)
    if client_root:
        record = (spectrum_id, digest, size, now())
        if pending is not None:
            pending.append(record if part is None else _Staged(*record, part, dest))
        else:
            record_downloads(root, [record])
    return str(dest)


def record_downloads(data_dir: str | os.PathLike, records: list[tuple], *,
                     writer: LocalFilesWriter | None = None) -> dict[str, str]:
    """Put verified files in place and record them in ``data_dir``'s ``local_files``, in one transaction.

    Parameters
    ----------
    data_dir : path
        A client data_dir with a synced catalog.
    records : list of tuple
        The ``pending`` of :func:`fetch_spectrum`: ``(spectrum_id, sha256, size,
        downloaded_at)`` of files in place, and staged downloads, which are first made
        durable together and renamed into place.
    writer : LocalFilesWriter, optional
        The catalog connection of a caller that records many batches (kept between
        them); None: one opened for this call.

    Returns
    -------
    dict
        ``{spectrum_id: reason}`` of staged files that could not be put in place (not recorded).

    Raises
    ------
    DownloadError
        The catalog cannot be written (a full disk); the files themselves are in place.

    Examples
    --------
    >>> pending = []
    >>> fetch_spectrum(remote, data_dir, spectrum_id, row, pending=pending)  # doctest: +SKIP
    >>> record_downloads(data_dir, pending)                                 # doctest: +SKIP
    {}
    """
    staged = [r for r in records if isinstance(r, _Staged)]
    failed = _publish(staged) if staged else {}
    rows = [tuple(r[:4]) for r in records if r[0] not in failed]
    if rows:
        db = catalog_path(data_dir)
        with dir_lock(db.parent):
            if writer is None:
                record_files(db, rows)
            else:
                writer.add(rows)
    return failed


def fetch_ref(remote: RemoteCatalog, data_dir: str | os.PathLike, ref,
              on_fetch: Callable[[str, int], None] | None = None, *, pending: list[tuple] | None = None,
              client_root: bool | None = None) -> str:
    """:func:`fetch_spectrum` for a :class:`~campfire.tasks.batch.SpectrumRef` (the graphs' download step).

    ``ref.dest`` is the file's place under ``data_dir`` (its catalog ``fits_path``).
    """
    row = {"spectrum_id": ref.spectrum_id, "fits_path": ref.dest, "file_hash": ref.file_hash,
           "file_size": ref.file_size}
    return fetch_spectrum(remote, data_dir, ref.spectrum_id, row, on_fetch=on_fetch, pending=pending,
                          client_root=client_root)
