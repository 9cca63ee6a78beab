"""The I/O steps of a batch — *download* and *open* — run by the graph's tasks.

These are the graph edge where files are touched (the science steps of
:mod:`campfire.tasks` never are): :func:`resolve_items` makes every file readable by
the worker (a local path or fsspec URL is only checked; a server file is fetched by the
*downloader* the client passed in), :func:`open_items` reads each file into a
:class:`~campfire.models.SpectrumData`. The downloader the collection binds to its
client's server and data_dir is :func:`campfire.transfer.fetch_ref`: one server file,
streamed, verified against the catalog's hash and renamed into
``<data_dir>/<fits_path>``.

Examples
--------
>>> import numpy as np
>>> from campfire.models import SpectrumData
>>> from campfire.tasks.batch import Item, SpectrumRef
>>> spec = SpectrumData(np.linspace(1, 2, 50), np.ones(50), np.full(50, 0.1), spectrum_id='a')
>>> open_items([Item(SpectrumRef('a', object_id='o1', data=spec))])[0].value is spec
True
>>> bad = [Item(SpectrumRef('b', object_id='o2', url='/no/such/file.fits'))]
>>> open_items(bad, errors='record')[0].failure.step
'open'
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

from campfire.errors import CampfireError, NotFoundError
from campfire.io.store import is_object_url
from campfire.models import SpectrumData
from campfire.tasks.batch import Item, SpectrumRef, each_item

__all__ = ["resolve_items", "open_items", "is_server_url"]


def is_server_url(url: str) -> bool:
    """True for a file on the archive server (``http(s)://``), which must be downloaded first."""
    return url.startswith(("http://", "https://"))


def resolve_items(
    items: Sequence[Item],
    *,
    errors: str = "raise",
    download: Callable[[SpectrumRef], str] | None = None,
    cache: Callable[[SpectrumRef], str] | None = None,
) -> list[Item]:
    """The *download* step: make each file readable here and put its path in ``value``.

    Parameters
    ----------
    items : sequence of Item
        One batch.
    errors : {'raise', 'record'}
        Raise on the first failure, or record it on the item and go on.
    download : callable, optional
        ``download(ref) -> local path`` for server (``http(s)://``) files: streamed,
        verified against ``ref.file_hash``, renamed into place
        (:func:`campfire.transfer.fetch_ref` bound to a server and data_dir). Local
        paths and fsspec URLs (an archive root on shared or object storage) are only
        checked: workers read them where they are.
    cache : callable, optional
        ``cache(ref) -> local path`` for object-store URLs with a known content hash
        (:func:`campfire.transfer.workers.cached_object`: fetched once per worker, sha256
        verified).

    Returns
    -------
    list of Item
        ``value`` is the path or URL to read (or the in-memory SpectrumData).

    Raises
    ------
    NotFoundError
        A missing file (``errors='raise'``).
    CampfireError
        A reference without a location, or a server file and no downloader.
    """
    def one(it: Item) -> Item:
        ref = it.ref
        if ref.data is not None:
            return replace(it, value=ref.data)
        if not ref.url:
            raise CampfireError(f"{ref.spectrum_id}: no file location")
        if is_server_url(ref.url):
            if download is None:
                raise CampfireError(f"{ref.spectrum_id}: remote file but no downloader configured")
            return replace(it, value=str(download(ref)))
        if cache is not None and ref.file_hash:
            if is_object_url(ref.url):
                return replace(it, value=str(cache(ref)))
        import fsspec.core

        fs, path = fsspec.core.url_to_fs(ref.url)
        if not fs.exists(path):
            if download is not None and ref.dest:
                # the client's local copy is not visible here (a worker without its disk): from the server
                return replace(it, value=str(download(ref)))
            raise NotFoundError(f"no such file: {ref.url}")
        return replace(it, value=ref.url)

    return each_item(items, "download", errors, one)


def open_items(items: Sequence[Item], *, errors: str = "raise") -> list[Item]:
    """The *open* step: ``value`` → :class:`~campfire.models.SpectrumData` (files read through fsspec).

    Parameters
    ----------
    items : sequence of Item
        After :func:`resolve_items` (or references to local paths / fsspec URLs).
    errors : {'raise', 'record'}

    Returns
    -------
    list of Item
        ``value`` is the SpectrumData; its ``object_id`` is the reference's when the file
        has none.

    Raises
    ------
    FileFormatError, NotFoundError
        An unreadable or missing file (``errors='raise'``).
    """
    def one(it: Item) -> Item:
        if isinstance(it.value, SpectrumData):
            return it
        if it.ref.data is not None:
            return replace(it, value=it.ref.data)
        spec = SpectrumData.from_fits(it.value if it.value is not None else it.ref.url)
        if not spec.object_id and it.ref.object_id:
            spec.object_id = it.ref.object_id
        return replace(it, value=spec)

    return each_item(items, "open", errors, one)
