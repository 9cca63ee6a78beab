"""Where an archive root keeps its imaging, and the object rows cutouts are made for.

Layout (``campfire/demo/README.md``), below ``<root>/imaging`` or the object-store URL
the catalog records as ``archive_meta.imaging_url`` (``campfire archive push-imaging``;
:class:`campfire.io.store.ImagingStore` reads either)::

    <field>/index.json            band, pixscale, the stamps (object_id, file, ra, dec)
    <field>/stamps/<object>.fits  images with a TAN WCS (SCI extension or primary)
    <field>/shutters/<obs>.json   MSA geometry of one observation (corners in ra/dec)

Images are read region by region (``hdu.section``; from an object store in byte-range
requests): a mosaic is never read whole. A field's parsed index and its images'
headers are remembered, keyed by the state of the field's ``index.json`` (mtime and
size, or the store's ETag), so a render from an object store costs a few ``HEAD``
requests and the pixel reads of the images it covers.

The object's position, field and observations come from the archive root's catalog.
"""
from __future__ import annotations

import collections
import contextlib
import json
import os
import pathlib
import threading
import warnings
from dataclasses import dataclass
from typing import Any, Hashable, Iterator

import numpy as np

from campfire.catalog.db import catalog_path, read_meta
from campfire.catalog.local import LocalCatalog
from campfire.errors import CampfireError, ImagingError, NotFoundError
from campfire.imaging.geometry import FOV_MAX, sky_to_offsets
from campfire.io.store import ImagingStore, imaging_store_from_meta

__all__ = ["Image", "object_row", "imaging_store", "read_json", "load_images", "index_state"]

INDEX = "index.json"


@dataclass(frozen=True)
class Image:
    """One imaging band around an object: pixels and their WCS."""

    band: str
    pixscale: float  # arcsec
    data: Any  # 2D array-like (a FitsSection: read region by region)
    wcs: Any  # astropy.wcs.WCS


def imaging_store(root: str | os.PathLike) -> ImagingStore:
    """Where the archive root keeps its imaging: ``archive_meta.imaging_url``, else ``<root>/imaging``.

    Examples
    --------
    >>> imaging_store(root).where  # doctest: +SKIP
    's3://bucket/imaging'
    """
    meta = read_meta(catalog_path(root)) if LocalCatalog.is_valid(root) else {}
    return imaging_store_from_meta(root, meta)


@contextlib.contextmanager
def _open_fits(store: ImagingStore, parts: tuple[str, ...]) -> Iterator[Any]:
    """The FITS file, opened lazily: headers as needed, pixels only through ``.section``."""
    from astropy.io import fits

    if not store.is_remote:
        with fits.open(store.location(*parts), memmap=True) as hdul:
            yield hdul
        return
    with store.open(*parts) as f, fits.open(f, lazy_load_hdus=True) as hdul:
        yield hdul


@dataclass(frozen=True)
class FitsSection:
    """A 2D FITS image read one region at a time (``hdu.section``): a mosaic is never loaded whole."""

    store: ImagingStore
    parts: tuple[str, ...]
    ext: int
    shape: tuple[int, int]

    def __getitem__(self, key) -> np.ndarray:
        try:
            with _open_fits(self.store, self.parts) as hdul:
                return np.asarray(hdul[self.ext].section[key], dtype=np.float32)
        except (CampfireError, MemoryError):
            raise
        except Exception as err:  # a file changed or truncated since its header was read
            raise ImagingError(f"{self.store.location(*self.parts)}: cannot read pixels "
                               f"({type(err).__name__}: {err})") from err


class _Remembered:
    """A small thread-safe LRU of parsed imaging files (indexes, image headers), by location and state."""

    def __init__(self, size: int):
        self.size = size
        self._items: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_INDEXES = _Remembered(64)
_HEADERS = _Remembered(4096)  # (ext, shape, header text): a WCS is rebuilt per use (not shared across threads)


def read_json(store: ImagingStore, *parts: str) -> dict[str, Any]:
    """A JSON file of the imaging folder (``'uds', 'index.json'``), wherever the imaging lives.

    Parameters
    ----------
    store : ImagingStore
        The archive's imaging (:func:`imaging_store`).
    *parts : str
        The file's path below the imaging folder.

    Returns
    -------
    dict

    Raises
    ------
    NotFoundError
        No such file.
    ImagingError
        Not a JSON object, or the store could not be read (the message names the file).

    Examples
    --------
    >>> index = read_json(imaging_store(root), 'uds', 'index.json')  # doctest: +SKIP
    """
    data = store.read_bytes(*parts)
    try:
        doc = json.loads(data)
    except ValueError as err:
        raise ImagingError(f"{store.location(*parts)}: not valid JSON ({err})") from err
    if not isinstance(doc, dict):
        raise ImagingError(f"{store.location(*parts)}: expected a JSON object, got {type(doc).__name__}")
    return doc


def index_state(store: ImagingStore, field: str) -> tuple:
    """The state of a field's ``index.json`` (what the caches of its imaging key on); () without one."""
    return store.state(field, INDEX)


def _index(store: ImagingStore, field: str, state: tuple) -> dict[str, Any] | None:
    """The field's index (checked), or None when the field has none."""
    if not state:
        return None
    key = (store.location(field, INDEX), state)
    index = _INDEXES.get(key)
    if index is not None:
        return index
    try:
        index = read_json(store, field, INDEX)
    except NotFoundError:
        return None  # gone since its state was taken
    stamps = index.get("stamps", [])
    if not isinstance(stamps, list) or not all(
            isinstance(e, dict) and isinstance(e.get("file"), str) and "ra" in e and "dec" in e for e in stamps):
        raise ImagingError(f"{store.location(field, INDEX)}: 'stamps' must be a list of "
                           "{object_id, file, ra, dec} entries")
    for e in stamps:
        try:
            store.relative(field, e["file"])
        except NotFoundError:
            raise ImagingError(f"{store.location(field, INDEX)}: stamp file {e['file']!r} is not a path "
                               "inside the field's folder") from None
    _INDEXES.put(key, index)
    return index


def _image_header(store: ImagingStore, parts: tuple[str, ...], state: tuple) -> tuple[int, tuple[int, int], str]:
    """(extension, shape, header text) of an image: the SCI extension, else the first HDU holding an image."""
    key = (store.location(*parts), state)
    hit = _HEADERS.get(key)
    if hit is not None:
        return hit
    try:
        with _open_fits(store, parts) as hdul:
            # headers only: no pixel is read here
            ext = hdul.index_of("SCI") if "SCI" in hdul else next(
                i for i, h in enumerate(hdul) if h.header.get("NAXIS", 0) >= 2 and h.is_image)
            header = hdul[ext].header
            got = ext, (int(header["NAXIS2"]), int(header["NAXIS1"])), header.tostring()
    except (CampfireError, MemoryError):
        raise
    except FileNotFoundError as err:
        raise NotFoundError(f"no such file: {store.location(*parts)}") from err
    except Exception as err:  # not FITS, no image HDU, a mangled header
        raise ImagingError(f"{store.location(*parts)}: not a readable FITS image "
                           f"({type(err).__name__}: {err})") from err
    _HEADERS.put(key, got)
    return got


def _read_image(store: ImagingStore, parts: tuple[str, ...], state: tuple, band: str | None,
                pixscale: float | None) -> Image:
    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    ext, shape, text = _image_header(store, parts, state)
    header = fits.Header.fromstring(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)  # date/obsgeo fix-ups say nothing about the sky
        wcs = WCS(header).celestial
    if pixscale is None:
        pixscale = float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))) * 3600.0)
    return Image(str(band or header.get("FILTER", "")).lower(), float(pixscale), FitsSection(store, parts, ext, shape),
                 wcs)


def load_images(root: str | os.PathLike, field: str, ra: float, dec: float, fov: float) -> list[Image]:
    """Every image of the field whose footprint may reach into the ``fov`` square, nearest first.

    Parameters
    ----------
    root : path
        Archive root (its imaging: ``<root>/imaging`` or ``archive_meta.imaging_url``).
    field : str
    ra, dec : float
        The object [deg].
    fov : float
        Side [arcsec].

    Returns
    -------
    list of Image
        Empty when the field has no imaging index.

    Raises
    ------
    ImagingError
        A corrupt index or image, or an object store that cannot be read.

    Examples
    --------
    >>> images = load_images(root, 'uds', 34.4, -5.1, 3.2)  # doctest: +SKIP
    """
    store = imaging_store(root)
    state = index_state(store, field)
    index = _index(store, field, state)
    if index is None:
        return []
    band, pixscale = index.get("band"), index.get("pixscale")
    half_stamp = 0.5 * float(index.get("stamp_pix", 0)) * float(pixscale or 0)
    entries = index.get("stamps", [])
    if entries:
        east, north = sky_to_offsets([e["ra"] for e in entries], [e["dec"] for e in entries], ra, dec)
        reach = fov / 2 + (half_stamp or FOV_MAX)
        near = (np.abs(east) <= reach) & (np.abs(north) <= reach)
        # nearest first: the object's own stamp is the one that matters most
        order = np.argsort(np.hypot(east, north))
        entries = [entries[i] for i in order if near[i]]
    images = []
    for e in entries:
        try:
            images.append(_read_image(store, (field, e["file"]), state, band, pixscale))
        except NotFoundError:
            continue  # an index entry whose file is missing: the others still make the cutout
    return images


def object_row(root: pathlib.Path, object_id: str) -> dict[str, Any]:
    """The object's catalog row (and its spectra under ``'_spectra'``) from the archive root's catalog.

    Parameters
    ----------
    root : pathlib.Path
        Archive root.
    object_id : str

    Returns
    -------
    dict

    Raises
    ------
    CampfireError
        ``root`` is not an archive root.
    NotFoundError
        No such object.

    Examples
    --------
    >>> object_row(root, 'ember_uds_p4_123456')['field']  # doctest: +SKIP
    'uds'
    """
    if not LocalCatalog.is_valid(root):
        raise CampfireError(f"{root} is not an archive root (no valid meta/campfire.db)")
    catalog = LocalCatalog(root)
    try:
        row = catalog.object_row(object_id)
        if row is None:
            raise NotFoundError(f"object {object_id!r} is not in the catalog at {root}")
        row = dict(row)
        row["_spectra"] = catalog.object_spectra(object_id)
    finally:
        catalog.close()
    return row
