"""``Campfire.download`` on the graph path: a LazySpectra ``download`` layer, computed on threads.

The files to fetch are chosen in the client (absent from ``local_files``, or stale:
the catalog's hash differs from the local copy's), turned into spectrum references
with the server's file URL, and downloaded by the same ``download`` step a workflow
uses — each task fetching a small batch through :func:`campfire.transfer.fetch_spectrum`
(stream to ``.part``, resume with HTTP Range, verify sha256, rename, record in
``local_files``). ``max_workers`` threads run the tasks; failures are recorded per
file and reported together, so one bad file never stops the others.

Examples
--------
>>> cf.download(observations=['ember_uds_p4'], max_workers=4)   # doctest: +SKIP
{'downloaded': 42, 'skipped': 0, 'failed': [], 'bytes': 11975040, 'seconds': 1.8}
"""
from __future__ import annotations

import math
import pathlib
import sys
import time
from typing import Any

import dask

from campfire import config
from campfire.errors import DownloadError

__all__ = ["download_files", "fetch_ref"]


def fetch_ref(cf, ref) -> str:
    """Download one server file for a reference (the per-item downloader of the download step)."""
    from campfire.transfer import fetch_spectrum

    row = {"spectrum_id": ref.spectrum_id, "fits_path": ref.dest, "file_hash": ref.file_hash,
           "file_size": ref.file_size}
    return fetch_spectrum(cf, ref.spectrum_id, row)


def download_files(cf, query, *, max_workers: int = 4, stale_only: bool = False, progress: bool | None = None
                   ) -> dict[str, Any]:
    """Download the FITS files of the spectra ``query`` selects in the synced catalog.

    Returns ``{'downloaded', 'skipped', 'failed', 'bytes', 'seconds'}``; raises
    :class:`~campfire.errors.DownloadError` naming the first failure after every other
    file was fetched and recorded.
    """
    from campfire import transfer
    from campfire.graphs.collection import LazySpectra
    from campfire.graphs.selection import refs_from_rows

    rows, skipped = transfer.plan_downloads(cf, query, stale_only=stale_only)
    todo = [dict(row, local_path="") for row in rows]
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
    callbacks = []
    if progress:
        from tqdm.dask import TqdmCallback
        from tqdm.std import tqdm as std_tqdm

        callbacks.append(TqdmCallback(desc="download", tqdm_class=std_tqdm, file=sys.stderr, leave=False))
    with dask.config.set(scheduler="threads", num_workers=max_workers):
        import contextlib

        with contextlib.ExitStack() as stack:
            for cb in callbacks:
                stack.enter_context(cb)
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
