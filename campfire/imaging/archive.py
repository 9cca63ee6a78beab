"""Where an archive root keeps its imaging, and the object rows cutouts are made for.

Layout (``campfire/demo/README.md``)::

    <root>/imaging/<field>/index.json            band, pixscale, the stamps (object_id, file, ra, dec)
    <root>/imaging/<field>/stamps/<object>.fits  images with a TAN WCS (SCI extension or primary)
    <root>/imaging/<field>/shutters/<obs>.json   MSA geometry of one observation (corners in ra/dec)

The object's position, field and observations come from the archive root's catalog.
"""
from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from campfire.catalog.local import LocalCatalog
from campfire.errors import CampfireError, NotFoundError
from campfire.imaging.geometry import FOV_MAX, sky_to_offsets

__all__ = ["Image", "object_row", "read_json", "load_images"]


@dataclass(frozen=True)
class Image:
    """One imaging band around an object: pixels and their WCS."""

    band: str
    pixscale: float  # arcsec
    data: Any  # 2D array-like (a FitsSection: read region by region)
    wcs: Any  # astropy.wcs.WCS


@dataclass(frozen=True)
class FitsSection:
    """A 2D FITS image read one region at a time (``hdu.section``): a mosaic is never loaded whole."""

    path: pathlib.Path
    ext: int
    shape: tuple[int, int]

    def __getitem__(self, key) -> np.ndarray:
        from astropy.io import fits

        with fits.open(self.path, memmap=True) as hdul:
            return np.asarray(hdul[self.ext].section[key], dtype=np.float32)


def read_json(path: pathlib.Path) -> dict[str, Any]:
    """A JSON file of the imaging folder.

    Parameters
    ----------
    path : pathlib.Path

    Returns
    -------
    dict

    Raises
    ------
    NotFoundError
        No such file.
    CampfireError
        Not valid JSON (the message names the file).

    Examples
    --------
    >>> index = read_json(root / 'imaging' / 'uds' / 'index.json')  # doctest: +SKIP
    """
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise NotFoundError(f"no such file: {path}") from err
    except ValueError as err:
        raise CampfireError(f"{path}: not valid JSON ({err})") from err


def _read_image(path: pathlib.Path, band: str | None, pixscale: float | None) -> Image:
    import warnings

    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    with fits.open(path, memmap=True) as hdul:
        # the SCI extension, else the first HDU holding an image (headers only: no pixel is read here)
        ext = hdul.index_of("SCI") if "SCI" in hdul else next(
            i for i, h in enumerate(hdul) if h.header.get("NAXIS", 0) >= 2 and h.is_image)
        header = hdul[ext].header
        shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)  # date/obsgeo fix-ups say nothing about the sky
            wcs = WCS(header).celestial
    if pixscale is None:
        pixscale = float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))) * 3600.0)
    return Image(str(band or header.get("FILTER", "")).lower(), float(pixscale), FitsSection(path, ext, shape), wcs)


def load_images(root: pathlib.Path, field: str, ra: float, dec: float, fov: float) -> list[Image]:
    """Every image of the field whose footprint may reach into the ``fov`` square, nearest first.

    Parameters
    ----------
    root : pathlib.Path
        Archive root.
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
    CampfireError
        A corrupt index.

    Examples
    --------
    >>> images = load_images(root, 'uds', 34.4, -5.1, 3.2)  # doctest: +SKIP
    """
    folder = root / "imaging" / field
    index_path = folder / "index.json"
    if not index_path.is_file():
        return []
    index = read_json(index_path)
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
    return [_read_image(folder / e["file"], band, pixscale) for e in entries if (folder / e["file"]).is_file()]


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
