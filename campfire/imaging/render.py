"""Cutout images: the archive's mosaics resampled about an object and encoded as PNG.

:func:`make_cutout_png` is what the server's cutout endpoint and a local client call;
:func:`render_cutout` (mosaics → a north-up, east-left grid), the stretch and
:func:`encode_png` / :func:`read_cutout_png` are its pure parts. The PNG carries its
geometry in a ``campfire`` text chunk that :func:`campfire.imaging.plot.plot_cutout` reads.
"""
from __future__ import annotations

import io
import json
import math
import os
import pathlib
from typing import Any, Mapping, Sequence

import numpy as np

from campfire.errors import CampfireError, NotFoundError, ValidationError
from campfire.imaging.archive import Image, imaging_store, load_images, object_row
from campfire.imaging.geometry import check_fov, check_object_id, check_size, offsets_to_sky, sky_to_offsets

__all__ = ["make_cutout_png", "render_cutout", "encode_png", "read_cutout_png", "PNG_META_KEY", "RENDER_MAX_SIDE"]

PNG_META_KEY = "campfire"
RENDER_MAX_SIDE = 2048  # pixels per side of the grid a cutout is resampled onto (bounds memory per render)


def _grid(fov: float, pixscale: float, max_side: int | None = None) -> tuple[int, float]:
    """Pixels per side and the pixel scale of a ``fov`` grid near ``pixscale`` (``n * scale == fov``)."""
    n = max(1, int(round(fov / pixscale)))
    if max_side is not None:
        n = min(n, max_side)
    return n, fov / n


def _sample(data, wcs, ra: float, dec: float, fov: float, n: int, scale: float):
    """One image resampled onto the part of the ``n × n`` cutout grid its footprint covers.

    Returns ``(rows, cols, values)`` — two slices of the grid and the values there (NaN
    off the image) — or None when the image misses the grid. Only that part of the grid
    is projected and only the image's footprint (+1 px for the interpolation) is read,
    so a small stamp costs little in a wide cutout, and a mosaic (a memory map or a
    :class:`~campfire.imaging.archive.FitsSection`) is never read whole.
    """
    from scipy.ndimage import map_coordinates

    ny, nx = data.shape
    # the image's outline on the grid: its edge pixels' centres, a margin for the interpolation
    edge = np.concatenate([np.linspace(-0.5, nx - 0.5, 17), np.full(17, nx - 0.5), np.linspace(-0.5, nx - 0.5, 17),
                           np.full(17, -0.5)])
    side = np.concatenate([np.full(17, -0.5), np.linspace(-0.5, ny - 0.5, 17), np.full(17, ny - 0.5),
                           np.linspace(-0.5, ny - 0.5, 17)])
    east, north = sky_to_offsets(*wcs.pixel_to_world_values(edge, side), ra, dec)
    cols = (fov / 2 - np.asarray(east)) / scale - 0.5
    rows = (fov / 2 - np.asarray(north)) / scale - 0.5
    if not (np.isfinite(cols).all() and np.isfinite(rows).all()):
        r0, r1, c0, c1 = 0, n, 0, n  # a projection that fails at the edges: sample everything
    else:
        r0, r1 = max(int(np.floor(rows.min())) - 1, 0), min(int(np.ceil(rows.max())) + 2, n)
        c0, c1 = max(int(np.floor(cols.min())) - 1, 0), min(int(np.ceil(cols.max())) + 2, n)
    if r0 >= r1 or c0 >= c1:
        return None
    # pixel centres: column j → east = fov/2 - (j + 0.5) scale; row i → north = fov/2 - (i + 0.5) scale
    grid_east, grid_north = np.meshgrid(fov / 2 - (np.arange(c0, c1) + 0.5) * scale,
                                        fov / 2 - (np.arange(r0, r1) + 0.5) * scale)
    x, y = wcs.world_to_pixel_values(*offsets_to_sky(grid_east, grid_north, ra, dec))
    inside = (x > -1) & (x < nx) & (y > -1) & (y < ny)
    if not inside.any():
        return None
    x0, x1 = max(int(np.floor(x[inside].min())) - 1, 0), min(int(np.ceil(x[inside].max())) + 2, nx)
    y0, y1 = max(int(np.floor(y[inside].min())) - 1, 0), min(int(np.ceil(y[inside].max())) + 2, ny)
    section = np.asarray(data[y0:y1, x0:x1], dtype=float)
    values = map_coordinates(section, [y - y0, x - x0], order=1, mode="constant", cval=np.nan)
    return slice(r0, r1), slice(c0, c1), values


def render_cutout(images: Sequence[tuple[np.ndarray, Any]], ra: float, dec: float, fov: float,
                  pixscale: float) -> tuple[np.ndarray, float]:
    """Resample mosaics onto a north-up, east-left grid of ``fov`` arcsec about (ra, dec).

    Parameters
    ----------
    images : sequence of (array, astropy.wcs.WCS)
        One 2D image per band (arrays may be memory-mapped: only the footprint is read).
    ra, dec : float
        Centre [deg].
    fov : float
        Side [arcsec].
    pixscale : float
        Wanted pixel scale [arcsec]; adjusted so that ``n * scale == fov`` exactly.

    Returns
    -------
    (cube, scale) : (ndarray of shape (n_band, n, n), float)
        Row 0 is the northern edge, column 0 the eastern edge; NaN off the mosaics.

    Examples
    --------
    >>> cube, scale = render_cutout([(image, wcs)], 34.4, -5.1, fov=3.2, pixscale=0.04)  # doctest: +SKIP
    >>> cube.shape, scale  # doctest: +SKIP
    ((1, 80, 80), 0.04)
    """
    n, scale = _grid(fov, pixscale)
    cube = np.full((len(images), n, n), np.nan)
    for k, (data, wcs) in enumerate(images):
        got = _sample(data, wcs, ra, dec, fov, n, scale)
        if got is not None:
            rows, cols, values = got
            cube[k, rows, cols] = values
    return cube, scale


def _band_means(images: Sequence[Image], bands: Sequence[str], ra: float, dec: float, fov: float,
                n: int, scale: float) -> np.ndarray:
    """The cutout per band: overlapping images of a band (neighbouring stamps) averaged where they overlap.

    One running sum and count per band, each image added on the part of the grid it
    covers: memory grows with the bands and the grid, not with the number of images.
    """
    total = np.zeros((len(bands), n, n))
    count = np.zeros((len(bands), n, n), dtype=np.uint16)
    for im in images:
        got = _sample(im.data, im.wcs, ra, dec, fov, n, scale)
        if got is None:
            continue
        rows, cols, values = got
        k = bands.index(im.band)
        finite = np.isfinite(values)
        total[k, rows, cols] += np.where(finite, values, 0.0)
        count[k, rows, cols] += finite
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _stretch(cube: np.ndarray) -> np.ndarray:
    """Noise-normalised asinh stretch to 0..1 (one scale for all bands, so colours are real)."""
    out = np.zeros_like(cube)
    scaled = []
    for k, band in enumerate(cube):
        finite = band[np.isfinite(band)]
        if finite.size < 4:
            scaled.append(np.zeros_like(band))
            continue
        med = np.median(finite)
        sigma = 1.4826 * np.median(np.abs(finite - med))
        if not sigma > 0:
            sigma = np.std(finite) or 1.0
        scaled.append((band - med) / sigma)
    top = max((np.nanpercentile(s, 99.8) for s in scaled if np.isfinite(s).any()), default=1.0)
    top = max(top, 20.0)  # an empty field stays dark instead of stretching its noise to white
    soft = 3.0
    lo = math.asinh(-1.0 / soft)  # one sigma below the sky is black
    hi = math.asinh(top / soft)
    for k, s in enumerate(scaled):
        out[k] = (np.arcsinh(np.nan_to_num(s, nan=-1.0) / soft) - lo) / (hi - lo)
    return np.clip(out, 0.0, 1.0)


def _to_rgb(cube: np.ndarray) -> np.ndarray:
    """Bands (sorted blue → red) → grey (1 band) or an RGB image (2+ bands)."""
    levels = _stretch(cube)
    if len(levels) == 1:
        return levels[0]
    if len(levels) == 2:
        b, r = levels
        return np.stack([r, 0.5 * (r + b), b], axis=-1)
    # several bands: blue = shortest, red = longest, green = the mean of the rest
    return np.stack([levels[-1], levels[1:-1].mean(axis=0), levels[0]], axis=-1)


def encode_png(image: np.ndarray, meta: Mapping[str, Any], size: int | None = None) -> bytes:
    """PNG bytes of a 0..1 grey or RGB image, with ``meta`` as a JSON text chunk.

    Deterministic: the same image and metadata give the same bytes.

    Parameters
    ----------
    image : numpy.ndarray
        (n, n) grey or (n, n, 3) RGB, values 0..1.
    meta : dict
        JSON-serialisable; read back by :func:`read_cutout_png`.
    size : int, optional
        Resample to ``size`` × ``size`` pixels (Lanczos).

    Returns
    -------
    bytes

    Examples
    --------
    >>> png = encode_png(np.zeros((4, 4)), {'fov': 1.0})
    >>> read_cutout_png(png)[1]
    {'fov': 1.0}
    """
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    arr = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    img = Image.fromarray(arr, mode="L" if arr.ndim == 2 else "RGB")
    if size is not None and img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    info = PngInfo()
    info.add_text(PNG_META_KEY, json.dumps(dict(meta), sort_keys=True))
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info, optimize=False)
    return buf.getvalue()


def read_cutout_png(path: str | os.PathLike | bytes) -> tuple[np.ndarray, dict[str, Any]]:
    """The pixels (uint8, grey or RGB, row 0 = north) and the campfire metadata of a cutout PNG.

    Parameters
    ----------
    path : str, os.PathLike or bytes
        A PNG file, or its bytes.

    Returns
    -------
    (numpy.ndarray, dict)
        The metadata is empty for a PNG campfire did not write.

    Raises
    ------
    NotFoundError
        No such file.
    ValidationError
        Not a PNG image, or not a path.

    Examples
    --------
    >>> img, meta = read_cutout_png(cf.get_cutout('ember_uds_p4_123456', fov=3.2))  # doctest: +SKIP
    >>> meta['fov'], meta['pixscale']  # doctest: +SKIP
    (3.2, 0.04)
    """
    from PIL import Image, UnidentifiedImageError

    try:
        src = io.BytesIO(path) if isinstance(path, (bytes, bytearray)) else open(os.fspath(path), "rb")
    except FileNotFoundError as err:
        raise NotFoundError(f"no such cutout file: {path}") from err
    except TypeError as err:
        raise ValidationError(f"path: expected a PNG file path, got {type(path).__name__}") from err
    with src:
        try:
            img = Image.open(src)
            img.load()
        except (UnidentifiedImageError, OSError) as err:
            raise ValidationError(f"path: {path} is not a PNG image ({err})") from err
        meta = {}
        text = img.info.get(PNG_META_KEY)
        if text:
            try:
                meta = json.loads(text)
            except ValueError:
                meta = {}
        if img.mode not in ("L", "RGB", "RGBA"):
            img = img.convert("RGB")
        return np.asarray(img), meta


def _band_order(band: str) -> tuple[float, str]:
    """Sort bands blue → red by pivot wavelength (unknown names last, alphabetically)."""
    try:
        from campfire.bands import band_pivot

        return band_pivot(band), band
    except (CampfireError, ValueError, KeyError):
        return math.inf, band


def make_cutout_png(root: str | os.PathLike, object_id: str, fov: float, size: int | None = None) -> bytes:
    """PNG bytes of a cutout of the archive root's imaging around an object.

    North up, east left, ``fov`` arcsec on a side, at the mosaics' native pixel scale
    (``size=None``) or resampled to ``size`` × ``size`` pixels. The mosaics are resampled
    onto at most :data:`RENDER_MAX_SIDE` pixels a side (a coarser scale beyond), reading
    only the region of each image the cutout covers, so memory per cutout is bounded
    (about 100 MB for a 60 arcsec, 1500-pixel, one-band cutout) whatever the imaging is. A colour composite
    when several bands are present (blue = shortest), grey for one band. The PNG
    carries its geometry in a ``campfire`` text chunk (object_id, ra, dec, fov,
    pixscale, bands, orientation) that :func:`plot_cutout` reads.

    Parameters
    ----------
    root : path
        Archive root (``<root>/meta/campfire.db``; imaging in ``<root>/imaging/`` or under
        ``archive_meta.imaging_url``).
    object_id : str
        The object.
    fov : float
        Side in arcsec, 0 < fov ≤ 60.
    size : int, optional
        Output pixels per side (16–2048); native resolution when None.

    Returns
    -------
    bytes
        The PNG (its ``campfire`` text chunk holds the geometry).

    Raises
    ------
    NotFoundError
        Unknown object, or no imaging covers it.
    ValidationError
        Bad ``fov`` or ``size``.
    ImagingError
        The imaging cannot be read (a corrupt index or image, an unreachable object store).

    Examples
    --------
    >>> png = make_cutout_png(campfire.demo.ensure(), 'ember_uds_p4_123456', 3.2)  # doctest: +SKIP
    >>> png[:8] == b'\\x89PNG\\r\\n\\x1a\\n'  # doctest: +SKIP
    True
    """
    object_id = check_object_id(object_id)
    fov = check_fov(fov)
    size = check_size(size)
    root = pathlib.Path(root)
    row = object_row(root, object_id)
    ra, dec, field = float(row["ra"]), float(row["dec"]), str(row["field"])
    images = load_images(root, field, ra, dec, fov)
    if not images:
        raise NotFoundError(f"no imaging covers object {object_id!r} (field {field!r}) under "
                            f"{imaging_store(root).where}")
    native = min(im.pixscale for im in images)
    # the native scale, on at most RENDER_MAX_SIDE pixels a side (coarser beyond): memory per render is
    # bounded by that grid, whatever fov, size and imaging (stamps or mosaics) there are
    n, scale = _grid(fov, native, RENDER_MAX_SIDE)
    bands = sorted({im.band for im in images}, key=_band_order)
    cube = _band_means(images, bands, ra, dec, fov, n, scale)
    if not np.isfinite(cube).any():
        raise NotFoundError(f"object {object_id!r} lies outside the {field!r} imaging under "
                            f"{imaging_store(root).where}")
    n = cube.shape[-1]
    meta = {
        "object_id": object_id,
        "ra": ra,
        "dec": dec,
        "fov": fov,
        "pixscale": fov / (size or n),
        "native_pixscale": scale,
        "size": size or n,
        "bands": bands,
        "orientation": "north-up east-left",
    }
    return encode_png(_to_rgb(cube), meta, size=size)
