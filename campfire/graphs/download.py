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
import math
import os
import pathlib
import sys
import time
from typing import Any, Callable, Sequence

import dask
import dask.bag

from campfire import config
from campfire.catalog.filters import Query
from campfire.catalog.remote import RemoteCatalog
from campfire.errors import CampfireError, DownloadError
from campfire.graphs.fetch import resolve_items
from campfire.tasks.batch import Item, SpectrumRef
from campfire.transfer import fetch_ref, plan_downloads

__all__ = ["download_files"]


def _download_batch(refs: Sequence[SpectrumRef], *, fetch: Callable[[SpectrumRef], str]) -> list[Item]:
    return resolve_items([Item(r) for r in refs], errors="record", download=fetch)


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
        A tqdm progress bar of the download tasks; default: when stderr is a terminal.

    Returns
    -------
    dict
        ``{'downloaded', 'skipped', 'failed', 'bytes', 'seconds'}``.

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
    # small batches: downloads are I/O bound, so several per worker keep every connection busy
    batch = max(1, min(int(config.get("graph.batch-size")), math.ceil(len(refs) / (4 * max_workers))))
    fetch = functools.partial(fetch_ref, remote, data_dir)
    bag = dask.bag.from_sequence(refs, partition_size=batch).map_partitions(_download_batch, fetch=fetch)
    if progress is None:
        progress = sys.stderr.isatty()
    bar = contextlib.nullcontext()
    if progress:
        from tqdm.dask import TqdmCallback
        from tqdm.std import tqdm as std_tqdm

        bar = TqdmCallback(desc="download", tqdm_class=std_tqdm, file=sys.stderr, leave=False)
    with dask.config.set(scheduler="threads", num_workers=max_workers), bar:
        items = bag.compute()
    failed = [{"spectrum_id": it.ref.spectrum_id, "error": it.failure.reason} for it in items if it.failure is not None]
    done_bytes = 0
    for it in items:
        if it.failure is None:
            with contextlib.suppress(OSError):
                done_bytes += pathlib.Path(it.value).stat().st_size
    result = {"downloaded": len(rows) - len(failed), "skipped": skipped, "failed": failed, "bytes": done_bytes,
              "seconds": round(time.perf_counter() - t0, 3)}
    if failed:
        first = failed[0]["error"]
        raise DownloadError(f"{len(failed)} of {len(rows)} downloads failed (first: {first}); "
                            f"{result['downloaded']} succeeded and are recorded. Run download() again to resume.")
    return result
