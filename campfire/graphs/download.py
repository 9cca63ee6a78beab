"""``Campfire.download`` on the graph path: a LazySpectra ``download`` layer, computed on threads.

The files to fetch are chosen in the client (absent from ``local_files``, or stale:
the catalog's hash differs from the local copy's), turned into spectrum references
with the server's file URL, and downloaded by the same ``download`` step a workflow
uses — each task fetching a small batch through :func:`campfire.transfer.fetch_spectrum`
(stream to ``.part``, resume with HTTP Range, verify sha256, rename, record in
``local_files``). ``max_workers`` threads run the tasks; failures are recorded per
file and reported together, so one bad file never stops the others. This is the only
download executor: ``Campfire.download``, ``campfire download`` and the benchmarks all
call :func:`download_files`.

Examples
--------
>>> cf.download(observations=['ember_uds_p4'], max_workers=4)   # doctest: +SKIP
{'downloaded': 42, 'skipped': 0, 'failed': [], 'bytes': 11975040, 'seconds': 1.8}
"""
from __future__ import annotations

import contextlib
import math
import pathlib
import sys
import time
from typing import Any

import dask

from campfire import config
from campfire.errors import DownloadError

__all__ = ["download_files"]  # the per-file downloader is campfire.graphs.fetch.fetch_ref


def download_files(cf, query, *, max_workers: int = 4, stale_only: bool = False, progress: bool | None = None
                   ) -> dict[str, Any]:
    """Download the FITS files of the spectra ``query`` selects in the synced catalog.

    Files already present with the catalog's hash are skipped; stale ones (hash changed
    on the server) are fetched again; with ``stale_only`` only stale files are fetched
    (:func:`campfire.transfer.plan_downloads`).

    Parameters
    ----------
    cf : Campfire
        A client whose ``data_dir`` holds a synced catalog.
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
        ``{'downloaded', 'skipped', 'failed', 'bytes', 'seconds'}``; raises
        :class:`~campfire.errors.DownloadError` naming the first failure after every
        other file was fetched and recorded.

    Examples
    --------
    >>> download_files(cf, build_query('spectra', observations=['ember_uds_p4']), max_workers=8)  # doctest: +SKIP
    """
    from campfire import transfer
    from campfire.graphs.collection import LazySpectra
    from campfire.graphs.selection import refs_from_rows

    rows, skipped = transfer.plan_downloads(cf, query, stale_only=stale_only)
    # no object_id: batches keep an object's spectra together, which a download does not
    # need — the files of one object are fetched in parallel like any others
    todo = [dict(row, local_path="", object_id="") for row in rows]
    t0 = time.perf_counter()
    if not todo:
        return {"downloaded": 0, "skipped": skipped, "failed": [], "bytes": 0, "seconds": 0.0}
    # the server's URL for every row (the files are not local yet), with their place under data_dir
    refs = refs_from_rows(cf, todo, with_objects=False, prefer_server=True)
    # small batches: downloads are I/O bound, so several per worker keep every connection busy
    batch = max(1, min(int(config.get("graph.batch-size")), math.ceil(len(refs) / (4 * max_workers))))
    lazy = LazySpectra.from_refs(refs, batch_size=batch, errors="record", client=cf).download()
    if progress is None:
        progress = sys.stderr.isatty()
    bar = contextlib.nullcontext()
    if progress:
        from tqdm.dask import TqdmCallback
        from tqdm.std import tqdm as std_tqdm

        bar = TqdmCallback(desc="download", tqdm_class=std_tqdm, file=sys.stderr, leave=False)
    with dask.config.set(scheduler="threads", num_workers=max_workers), bar:
        items = lazy.items().compute()
    failed = [{"spectrum_id": it.ref.spectrum_id, "error": it.failure.reason} for it in items if it.failure is not None]
    done_bytes = 0
    for it in items:
        if it.failure is None:
            try:
                done_bytes += pathlib.Path(it.value).stat().st_size
            except OSError:
                pass
    result = {"downloaded": len(todo) - len(failed), "skipped": skipped, "failed": failed, "bytes": done_bytes,
              "seconds": round(time.perf_counter() - t0, 3)}
    if failed:
        first = failed[0]["error"]
        raise DownloadError(f"{len(failed)} of {len(todo)} downloads failed (first: {first}); "
                            f"{result['downloaded']} succeeded and are recorded. Run download() again to resume.")
    return result
