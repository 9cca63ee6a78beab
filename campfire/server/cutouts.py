"""Cutout PNGs on the server: bounded renders and a cache of rendered cutouts.

A cutout costs seconds of CPU and up to ~100 MB for a wide field
(:func:`campfire.imaging.make_cutout_png` bounds the grid, so one render's memory is
bounded too); the server bounds how many run at once and remembers what it rendered:

* renders run on :func:`render_executor` — ``campfire.server.render-concurrency``
  threads of their own (default: half the CPUs, at least one); at most
  ``render-queue`` more requests wait, each at most ``render-wait`` seconds, then a
  ``503`` with ``Retry-After``. Waiting requests hold no thread, so every other
  endpoint keeps the server's whole thread pool;
* :class:`CutoutCache` keeps rendered PNGs (least recently used first out, at most
  ``campfire.server.cutout-cache-bytes``), keyed by object, position, fov, size and
  the state of the field's imaging (its ``index.json``, on disk or on the object store of
  ``archive_meta.imaging_url``), and the renders in flight: a request for a cutout
  being rendered waits for that render (taking no place in the queue), so twenty
  identical requests render once.

What a cutout shows does not depend on who asks (imaging is public; the route checks
that the caller may see the object), so one cache serves every caller.

Examples
--------
>>> png = await cutout_png(archive, row, fov=5.0, size=None)  # doctest: +SKIP
"""
from __future__ import annotations

import asyncio
import collections
import os
import threading
from typing import Hashable

from starlette.concurrency import run_in_threadpool

from campfire import config
from campfire.errors import NotFoundError
from campfire.imaging.archive import imaging_store, index_state
from campfire.imaging.render import make_cutout_png
from campfire.server.limits import BoundedExecutor

__all__ = ["CutoutCache", "render_executor", "cutout_png"]


class CutoutCache:
    """Rendered PNGs, least recently used out first, at most ``max_bytes`` in all.

    Parameters
    ----------
    max_bytes : int, optional
        ``campfire.server.cutout-cache-bytes`` when None; 0 keeps nothing.
    """

    def __init__(self, max_bytes: int | None = None):
        self.max_bytes = int(config.get("server.cutout-cache-bytes", override_with=max_bytes))
        self._items: collections.OrderedDict[Hashable, bytes] = collections.OrderedDict()
        self._bytes = 0
        self.in_flight: dict[Hashable, asyncio.Future] = {}  # renders under way (event loop only)
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            png = self._items.get(key)
            if png is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return png

    def put(self, key: Hashable, png: bytes) -> None:
        if len(png) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            self._bytes -= len(old) if old is not None else 0
            self._items[key] = png
            self._bytes += len(png)
            while self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)


def render_executor() -> BoundedExecutor:
    """The executor cutouts render on (``server.render-concurrency``, ``render-queue``, ``render-wait``)."""
    workers = config.get("server.render-concurrency")
    if workers is None:
        workers = max(1, (os.cpu_count() or 2) // 2)
    return BoundedExecutor("cutout renders", workers=int(workers), queue=int(config.get("server.render-queue")),
                           wait=float(config.get("server.render-wait")), cost=2.0)


def _imaging_state(root, field: str, object_id: str) -> tuple:
    """Where the archive's imaging is and what the field's index looks like now: part of the cache key.

    Raises
    ------
    NotFoundError
        The archive has no imaging (one ingested from spectra alone).
    """
    store = imaging_store(root)
    if not store.available:
        raise NotFoundError(f"this archive has no imaging, so there is no cutout of {object_id}")
    return store.where, index_state(store, field)


async def cutout_png(archive, row: dict, fov: float, size: int | None) -> bytes:
    """The cutout PNG of the object ``row`` (from the cache, or rendered within the limits).

    Raises
    ------
    campfire.server.limits.Busy
        No render slot within ``render-wait`` seconds, or too many requests waiting.
    NotFoundError
        The archive has no imaging, or none covers the object.
    ImagingError
        The imaging cannot be read (corrupt index, unreachable object store).
    """
    object_id = row["object_id"]
    # in a thread: with the imaging on an object store, its state is a request to the store
    state = await run_in_threadpool(_imaging_state, archive.root, str(row["field"]), object_id)
    key = (object_id, float(row["ra"]), float(row["dec"]), fov, size, state)
    cache = archive.cutouts
    png = cache.get(key)
    if png is not None:
        return png
    render = cache.in_flight.get(key)
    if render is None:  # the first request for it: render (others asking meanwhile share this one)

        async def render_and_keep() -> bytes:
            png = await archive.renders.run(make_cutout_png, archive.root, object_id, fov, size)
            cache.put(key, png)
            return png

        render = cache.in_flight[key] = asyncio.ensure_future(render_and_keep())
        render.add_done_callback(lambda _: cache.in_flight.pop(key, None))
    # shielded: a client that hangs up does not cancel the render the others wait for
    return await asyncio.shield(render)
