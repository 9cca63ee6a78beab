"""The Dask graph of an ingest: the per-file step over batches of files, with a progress bar.

One ``dask.delayed`` task per batch of files
(:func:`campfire.archive.prepare.prepare_batch_file`), keyed ``ingest-prepare-<token>``
from the batch file and the options. A task reads its jobs from the run's staging
folder and writes its records there (:mod:`campfire.archive.staging`): the graph holds
file names and the scheduler gets file names back, so the memory of the run does not
grow with the number of files. It runs where
:func:`campfire.graphs.scheduler.run_context` says: threads, processes (the default:
reading FITS and fitting hold the GIL), a ``distributed.LocalCluster`` (``local:N``) or
an existing cluster (``tcp://...``; its workers must see the archive root).

Examples
--------
>>> for records in prepare_all(batch_files, options, scheduler='threads', workers=2):  # doctest: +SKIP
...     store.add_records(records)
"""
from __future__ import annotations

import contextlib
import os
import pickle
import sys
from typing import Any, Iterator

import dask
from dask.base import tokenize

from campfire.archive.prepare import PrepareOptions, prepare_batch_file
from campfire.graphs.scheduler import run_context

__all__ = ["prepare_graph", "prepare_all"]


def prepare_graph(batch_files: list[str], options: PrepareOptions) -> list:
    """The delayed tasks, one per batch file."""
    return [dask.delayed(prepare_batch_file, pure=False)(path, options,
                                                        dask_key_name=f"ingest-prepare-{tokenize(path, options)}")
            for path in batch_files]


def _records(path: str) -> list[dict[str, Any]]:
    with open(path, "rb") as f:
        records = pickle.load(f)
    os.unlink(path)
    return records


def prepare_all(batch_files: list[str], options: PrepareOptions, *, scheduler: str | None = None,
                workers: int | None = None, progress: bool = True) -> Iterator[list[dict[str, Any]]]:
    """Run the per-file step over every batch; yields each batch's records once it is done.

    Parameters
    ----------
    batch_files : list of str
        Pickled job lists in the run's staging folder.
    options : PrepareOptions
        Mode, staging folder, fitting.
    scheduler : str, optional
        ``threads`` | ``processes`` | ``synchronous`` | ``local:N`` | ``tcp://HOST:PORT``
        (:func:`campfire.graphs.scheduler.parse_scheduler`).
    workers : int, optional
        Pool size, or LocalCluster workers with ``scheduler=None``.
    progress : bool
        A tqdm bar on stderr.
    """
    if not batch_files:
        return
    tasks = prepare_graph(batch_files, options)
    with run_context(scheduler, workers) as ctx:
        if ctx.distributed:
            from distributed import as_completed
            from tqdm.std import tqdm as std_tqdm

            futures = ctx.client.compute(tasks)
            with std_tqdm(total=len(futures), desc="ingest", unit="task", file=sys.stderr, leave=False,
                          disable=not progress) as bar:
                for future in as_completed(futures):
                    path = future.result()
                    future.release()
                    bar.update(1)
                    yield _records(path)
            return
        bar = contextlib.nullcontext()
        if progress:
            from tqdm.dask import TqdmCallback
            from tqdm.std import tqdm as std_tqdm

            bar = TqdmCallback(desc="ingest", tqdm_class=std_tqdm, file=sys.stderr, leave=False, unit="task")
        with bar:
            paths = ctx.compute(*tasks)
    for path in paths:
        yield _records(path)
