"""``Campfire.download`` on the graph path: the ``download`` step over the files to fetch, on threads.

The files to fetch are chosen from the synced catalog
(:func:`campfire.transfer.plan_downloads`: absent from ``local_files``, or stale — the
catalog's hash differs from the local copy's), turned into spectrum references with
the server's file URL, and put through the same per-batch ``download`` step a
``LazySpectra`` uses (:func:`campfire.graphs.fetch.resolve_items` with
:func:`campfire.transfer.fetch_ref`: stream to ``.part``, resume with HTTP Range, verify
sha256, rename, record in ``local_files``), as a :mod:`dask.bag`. ``max_workers``
threads run the batches; failures are recorded per file and reported together, so one
bad file never stops the others. This is the only download executor:
``Campfire.download``, ``campfire download`` and the benchmarks all call
:func:`download_files`.

Examples
--------
>>> download_files(cf.remote_catalog, cf.data_dir, build_query('spectra', observations=['ember_uds_p4']))  # doctest: +SKIP
{'downloaded': 42, 'skipped': 0, 'failed': [], 'bytes': 11975040, 'seconds': 1.8}
"""
from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import time
from dataclasses import replace
from typing import Any, Callable, Sequence

import dask.bag
import dask.threaded

from campfire.catalog.db import catalog_path
from campfire.catalog.filters import Query
from campfire.catalog.remote import RemoteCatalog
from campfire.errors import CampfireError, DownloadError
from campfire.graphs import builders  # noqa: F401 - SpectrumRef's cheap dask tokenizer (from_sequence)
from campfire.graphs.fetch import resolve_items
from campfire.tasks.batch import Failure, Item, SpectrumRef
from campfire.transfer import fetch_ref, plan_downloads, record_downloads
from campfire.transfer.datadir import LocalFilesWriter

__all__ = ["download_files"]


def _download_batch(refs: Sequence[SpectrumRef], *, remote: RemoteCatalog, data_dir: str | os.PathLike,
                    on_fetch: Callable[[str, int], None], record: Callable[[list[tuple]], None]) -> list[Item]:
    """Fetch a batch of files, handing each verified one's ``local_files`` record to ``record`` at once."""

    def fetch(ref: SpectrumRef) -> str:
        pending: list[tuple] = []
        try:
            # a synced client data_dir (plan_downloads checked it): not asked again for every file
            return fetch_ref(remote, data_dir, ref, on_fetch=on_fetch, pending=pending, client_root=True)
        finally:
            record(pending)  # staged: made durable, renamed and recorded with what gathers meanwhile

    return resolve_items([Item(r) for r in refs], errors="record", download=fetch)


class _Recorder:
    """Puts verified downloads in place and records them in ``local_files``, on a thread of its own.

    Making files durable and committing wait for the disk (tens of ms on a busy
    machine): done by the download threads, they held a connection idle after every
    file or batch. Here the files queue up as they are verified (written, their ``.part``
    locked) and one thread takes ``COMMIT_FILES`` of them, or what has gathered when the
    first has waited ``GATHER`` seconds: one sync for all of them, the renames, one
    transaction (:func:`campfire.transfer.record_downloads`; 2.5-4 ms of CPU each, whatever
    the number of files — a commit every 0.25 s cost one worker ~1 ms per file at 17 files/s),
    over one catalog connection kept for the whole download
    (:class:`~campfire.transfer.datadir.LocalFilesWriter`: ~1 ms less per commit).
    Leaving the ``with`` block commits the rest at once and waits;
    ``failed`` then maps each file not put in place or not recorded to why (a full
    disk: a file in place and verified, only unrecorded, is checked by its hash next
    time).
    """

    COMMIT_FILES = 32
    GATHER = 2.0
    # staged files waiting (each holds an open .part): past this the download threads wait
    MAX_WAITING = 256

    def __init__(self, data_dir: str | os.PathLike):
        self.data_dir = data_dir
        self._writer = LocalFilesWriter(catalog_path(data_dir))  # one catalog connection for every commit
        self.failed: dict[str, str] = {}
        self._queue: list[tuple] = []
        self._closing = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="campfire-record", daemon=True)

    def __call__(self, records: list[tuple]) -> None:
        if not records:
            return
        with self._cond:
            self._queue.extend(records)
            # the recorder waits for a first record, then for COMMIT_FILES: no wake-up for every file
            if len(self._queue) == len(records) or len(self._queue) >= self.COMMIT_FILES:
                self._cond.notify_all()
            if len(self._queue) >= self.MAX_WAITING:
                self._cond.wait_for(lambda: len(self._queue) < self.MAX_WAITING)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closing)
                if not self._queue:
                    return  # closing, and everything committed
                # let more files gather: one commit for several
                self._cond.wait_for(lambda: self._closing or len(self._queue) >= self.COMMIT_FILES,
                                    timeout=self.GATHER)
                records, self._queue = self._queue, []
                self._cond.notify_all()  # download threads waiting for room
            self._commit(records)

    def _commit(self, records: list[tuple]) -> None:
        try:
            self.failed.update(record_downloads(self.data_dir, records, writer=self._writer))
        except Exception as err:  # noqa: BLE001 - on this thread it would vanish: the files fail
            reason = str(err) if isinstance(err, DownloadError) else f"{type(err).__name__}: {err}"
            self.failed.update((rec[0], reason) for rec in records)

    def __enter__(self) -> "_Recorder":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()
        self._writer.close()


def _even_batches(items: Sequence, n: int) -> list[list]:
    """``items`` in ``n`` consecutive batches whose sizes differ by one at most.

    ``dask.bag.from_sequence(items, npartitions=n)`` cuts ``ceil(len / n)`` items at a time
    and may give fewer, unequal partitions (200 files for 32 batches: 28 of 7 and one of 4).

    Examples
    --------
    >>> [len(b) for b in _even_batches(list(range(10)), 4)]
    [3, 3, 2, 2]
    """
    size, extra = divmod(len(items), n)
    bounds = [i * size + min(i, extra) for i in range(n + 1)]
    return [list(items[a:b]) for a, b in zip(bounds, bounds[1:])]


@contextlib.contextmanager
def _file_bar(refs: Sequence[SpectrumRef], *, enabled: bool):
    """A progress bar in bytes with the files counted (``12/42 files``); yields ``advance(nbytes)``.

    The tasks of the download graph are batches of files, so a bar over tasks would
    count batches: this one counts what the user asked for.
    """
    if not enabled:
        yield lambda nbytes: None
        return
    from tqdm.std import tqdm as std_tqdm

    lock = threading.Lock()
    total_bytes = sum(r.file_size for r in refs) or None
    done = [0]
    with std_tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, desc="download",
                  file=sys.stderr, leave=False, mininterval=0.2) as bar:
        bar.set_postfix_str(f"0/{len(refs)} files")

        def advance(nbytes: int) -> None:
            with lock:
                done[0] += 1
                bar.set_postfix_str(f"{done[0]}/{len(refs)} files", refresh=False)
                bar.update(nbytes)
                if done[0] == len(refs):
                    bar.refresh()  # the last file shown, whatever the refresh interval

        yield advance


def download_files(remote: RemoteCatalog | None, data_dir: str | os.PathLike, query: Query, *,
                   max_workers: int = 4, stale_only: bool = False, progress: bool | None = None) -> dict[str, Any]:
    """Download the FITS files of the spectra ``query`` selects in the synced catalog of ``data_dir``.

    Files already present with the catalog's hash are skipped; stale ones (hash changed
    on the server) are fetched again; with ``stale_only`` only stale files are fetched.

    Parameters
    ----------
    remote : RemoteCatalog or None
        The server to fetch from (None: only an error if something must be fetched).
    data_dir : path
        A client data_dir holding a synced catalog.
    query : Query
        The spectra selection (``build_query('spectra', ...)``).
    max_workers : int
        Threads, i.e. parallel connections to the server.
    stale_only : bool
        Fetch only files whose server hash changed since they were downloaded.
    progress : bool, optional
        A tqdm progress bar of the bytes and files transferred; default: when stderr is a terminal.

    Returns
    -------
    dict
        ``{'downloaded', 'skipped', 'failed', 'bytes', 'seconds'}``: ``downloaded`` and
        ``bytes`` count what this call transferred; ``skipped`` the files already in
        place, including those another process fetched into the same data_dir meanwhile.

    Raises
    ------
    DownloadError
        Some files failed: raised after every other file was fetched and recorded,
        naming the first failure.
    CampfireError
        ``data_dir`` is not a synced client data_dir, or files must be fetched and
        there is no server.

    Examples
    --------
    >>> download_files(cf.remote_catalog, cf.data_dir, build_query('spectra', fields=['uds']), max_workers=8)  # doctest: +SKIP
    """
    rows, skipped = plan_downloads(data_dir, query, stale_only=stale_only)
    t0 = time.perf_counter()
    if not rows:
        return {"downloaded": 0, "skipped": skipped, "failed": [], "bytes": 0, "seconds": 0.0}
    if remote is None:
        raise CampfireError(f"{len(rows)} file(s) to download but no server to fetch them from: set "
                            "CAMPFIRE_API_URL (or pass base_url=)")
    # no object_id: a download does not keep an object's spectra together
    refs = [SpectrumRef(spectrum_id=r["spectrum_id"], grating=r["grating"], url=remote.file_url(r["spectrum_id"]),
                        file_hash=r["file_hash"] or "", file_size=int(r["file_size"] or 0), dest=r["fits_path"])
            for r in rows]
    # one batch per thread, their sizes differing by one file at most, so that the threads finish
    # together: dask runs a graph's batches in an order of its own (dask.order), and with several
    # per thread, of sizes n // k and n // k + 1, a thread could take three of the larger ones —
    # 200 files on 8 threads in 32 batches ended 24 to 27 files a thread (a 0.2 s tail at 50 ms
    # RTT). Each file is handed to the recorder as soon as it is verified, not at its batch's end.
    batches = _even_batches(refs, min(len(refs), max_workers))
    # what THIS process transferred: another process downloading into the same data_dir may
    # fetch some of the planned files first (this one then finds them verified in place)
    fetched: dict[str, int] = {}
    if progress is None:
        progress = sys.stderr.isatty()
    with _file_bar(refs, enabled=progress) as bar, _Recorder(data_dir) as record:
        def on_fetch(spectrum_id: str, nbytes: int) -> None:
            fetched[spectrum_id] = nbytes
            bar(nbytes)

        bag = dask.bag.from_sequence(batches, npartitions=len(batches)).map(
            _download_batch, remote=remote, data_dir=data_dir, on_fetch=on_fetch, record=record).flatten()
        # dask's threaded scheduler itself: a scheduler named by a string (or none) makes dask
        # import distributed to look for a Client (~0.3 s of CPU in a new process), and a
        # download always runs on this process's threads
        items = bag.compute(scheduler=functools.partial(dask.threaded.get, num_workers=max_workers))
    items = [replace(it, failure=Failure(it.ref.object_id, it.ref.spectrum_id, "download", record.failed[sid]))
             if (sid := it.ref.spectrum_id) in record.failed else it for it in items]
    failed = [{"spectrum_id": it.ref.spectrum_id, "error": it.failure.reason} for it in items if it.failure is not None]
    for f in failed:  # transferred, but not recorded: a failure, not a download
        fetched.pop(f["spectrum_id"], None)
    found = len(rows) - len(failed) - len(fetched)  # in place by the time this process got to them
    result = {"downloaded": len(fetched), "skipped": skipped + found, "failed": failed,
              "bytes": sum(fetched.values()), "seconds": round(time.perf_counter() - t0, 3)}
    if failed:
        first = failed[0]["error"]
        raise DownloadError(f"{len(failed)} of {len(rows)} downloads failed (first: {first}); "
                            f"{len(rows) - len(failed)} succeeded and are recorded. Run download() again to resume.")
    return result
