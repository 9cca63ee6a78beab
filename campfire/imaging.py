"""Cutouts around objects with the NIRSpec MSA shutters drawn on top.

Three layers, the way the rest of campfire reads files:

* **archive side** (used by the server for remote clients and directly by local
  clients): :func:`make_cutout_png` resamples the archive root's imaging mosaics onto
  a north-up, east-left tangent-plane grid centred on the object and returns PNG bytes;
  :func:`shutter_geometry` returns the MSA shutters around it as a JSON-ready dict;
* **client side**: :func:`cutout_for_client` / :func:`shutters_for_client` cache those
  under ``<data_dir>/cache/cutouts`` and ``<data_dir>/cache/shutters`` (behind
  ``cf.get_cutout`` / ``cf.get_shutters``);
* **figure**: :func:`plot_cutout` shows a cutout PNG with the shutters as matplotlib
  vector patches (they stay vector in PDF), a scalebar in arcsec and N/E arrows.

Coordinates: offsets are gnomonic (tangent-plane) coordinates about the object in
arcsec, ``east`` positive towards the east and ``north`` positive towards the north;
the cutout spans ``[-fov/2, fov/2]`` in both and is drawn east-left like the sky.

Examples
--------
>>> import matplotlib.pyplot as plt                                     # doctest: +SKIP
>>> fig, ax = plt.subplots(figsize=(5, 5))                              # doctest: +SKIP
>>> cf.plot_cutout('ember_uds_p4_123456', fov=3.2, ax=ax)               # doctest: +SKIP
>>> fig.savefig('cutout.pdf')  # the shutter overlay stays vector        # doctest: +SKIP
"""
from __future__ import annotations

import io
import json
import math
import os
import pathlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from campfire.errors import CampfireError, NotFoundError, ValidationError

__all__ = [
    "plot_cutout",
    "make_cutout_png",
    "shutter_geometry",
    "cutout_for_client",
    "shutters_for_client",
    "read_cutout_png",
    "render_cutout",
    "sky_to_offsets",
    "offsets_to_sky",
    "DEFAULT_SHUTTER_STYLES",
    "CATEGORIES",
    "MARKERS",
    "FOV_MAX",
    "SIZE_RANGE",
]

CATEGORIES = ("target", "other", "stuck_closed")
MARKERS = ("box", "corners")
FOV_MAX = 60.0  # arcsec: a cutout, not a mosaic
SIZE_RANGE = (16, 2048)  # output pixels per side
PNG_META_KEY = "campfire"

DEFAULT_SHUTTER_STYLES: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        # yellow reads on both the dark sky and a bright galaxy
        "target": MappingProxyType(
            {"marker": "box", "edgecolor": "#ffd60a", "facecolor": "none", "linewidth": 1.4, "linestyle": "-",
             "alpha": 1.0, "zorder": 4, "corner_length": 0.3}
        ),
        "other": MappingProxyType(
            {"marker": "box", "edgecolor": "white", "facecolor": "none", "linewidth": 0.7, "linestyle": "-",
             "alpha": 0.8, "zorder": 3, "corner_length": 0.3}
        ),
        # failed closed: filled, so they read as "no light here" (no 'alpha': it would override the fill's)
        "stuck_closed": MappingProxyType(
            {"marker": "box", "edgecolor": "#ff453a", "facecolor": (1.0, 0.27, 0.23, 0.35), "linewidth": 0.7,
             "linestyle": "-", "zorder": 3, "corner_length": 0.3}
        ),
    }
)
"""Per-category shutter styles; ``shutter_style`` entries are merged over these.

``marker`` is ``'box'`` (the shutter outline) or ``'corners'`` (four L-shaped corner
marks, JADES style, each ``corner_length`` × the side long); every other key is a
matplotlib patch property.
"""


# -- validation ----------------------------------------------------------------------------
def _check_fov(fov) -> float:
    if isinstance(fov, bool) or not isinstance(fov, (int, float, np.integer, np.floating)):
        raise ValidationError(f"fov: expected a number of arcsec in (0, {FOV_MAX:g}], got {fov!r}")
    value = float(fov)
    if not math.isfinite(value) or value <= 0 or value > FOV_MAX:
        raise ValidationError(f"fov: expected a number of arcsec in (0, {FOV_MAX:g}], got {fov!r}")
    return value


def _check_size(size) -> int | None:
    if size is None:
        return None
    lo, hi = SIZE_RANGE
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not lo <= int(size) <= hi:
        raise ValidationError(f"size: expected None (native resolution) or an integer {lo}-{hi} (pixels), got {size!r}")
    return int(size)


def _check_object_id(object_id) -> str:
    if not isinstance(object_id, str) or not object_id or any(c in object_id for c in "/\\\0"):
        raise ValidationError(f"object_id: expected an ID string like 'ember_uds_p4_123456', got {object_id!r}")
    return object_id


def _selected_categories(which) -> tuple[str, ...]:
    """``shutters=`` → the categories to draw: True/'all', 'target', False/None, or a list."""
    if which is None or which is False:
        return ()
    if which is True or which == "all":
        return CATEGORIES
    if isinstance(which, str):
        if which in CATEGORIES:
            return (which,)
    elif isinstance(which, (list, tuple, set, frozenset)) and all(isinstance(c, str) for c in which):
        bad = [c for c in which if c not in CATEGORIES]
        if not bad:
            return tuple(c for c in CATEGORIES if c in which)
    raise ValidationError(
        f"shutters: expected True or 'all' (all shutters), 'target' (target only), False (none), "
        f"a category among {', '.join(map(repr, CATEGORIES))} or a list of them; got {which!r}"
    )


def _merge_styles(shutter_style, marker=None) -> dict[str, dict[str, Any]]:
    """Defaults ← ``marker`` (all categories) ← per-category ``shutter_style`` entries."""
    styles = {cat: dict(style) for cat, style in DEFAULT_SHUTTER_STYLES.items()}
    if marker is not None:
        for style in styles.values():
            style["marker"] = marker
    if shutter_style is not None:
        if not isinstance(shutter_style, Mapping):
            raise ValidationError(
                f"shutter_style: expected a dict of per-category styles, e.g. "
                f"{{'target': {{'edgecolor': 'cyan'}}}}, got {type(shutter_style).__name__}"
            )
        for cat, override in shutter_style.items():
            if cat not in CATEGORIES:
                raise ValidationError(
                    f"shutter_style: unknown shutter category {cat!r}; allowed: {', '.join(map(repr, CATEGORIES))}"
                )
            if override is None:
                continue
            if not isinstance(override, Mapping):
                raise ValidationError(f"shutter_style[{cat!r}]: expected a dict of style properties, got {override!r}")
            styles[cat].update(override)
    from matplotlib.patches import Polygon

    for cat, style in styles.items():
        if style["marker"] not in MARKERS:
            raise ValidationError(
                f"marker: unknown shutter marker {style['marker']!r} for {cat!r}; allowed: {', '.join(map(repr, MARKERS))}"
            )
        length = style["corner_length"]
        if isinstance(length, bool) or not isinstance(length, (int, float)) or not 0 < length <= 0.5:
            raise ValidationError(f"corner_length: expected a fraction of the shutter side in (0, 0.5], got {length!r}")
        # matplotlib's own check, turned into a message that names the category
        try:
            Polygon(np.zeros((3, 2))).set(**_patch_props(style))
        except (AttributeError, TypeError, ValueError) as err:
            raise ValidationError(f"shutter_style[{cat!r}]: {err}") from err
    return styles


def _patch_props(style: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in style.items() if k not in ("marker", "corner_length")}


# -- geometry --------------------------------------------------------------------------------
def sky_to_offsets(ra, dec, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic offsets [arcsec] (east, north) of (ra, dec) [deg] about (ra0, dec0).

    The cutout grid is a TAN projection about the object, so these are exactly its
    pixel coordinates times the pixel scale.

    Examples
    --------
    >>> e, n = sky_to_offsets(150.0 + 1 / 3600 / np.cos(np.radians(2.0)), 2.0, 150.0, 2.0)
    >>> round(float(e), 6), round(float(n), 6)
    (1.0, 0.0)
    """
    a, d = np.radians(np.asarray(ra, float)), np.radians(np.asarray(dec, float))
    a0, d0 = math.radians(ra0), math.radians(dec0)
    cosc = math.sin(d0) * np.sin(d) + math.cos(d0) * np.cos(d) * np.cos(a - a0)
    xi = np.cos(d) * np.sin(a - a0) / cosc
    eta = (math.cos(d0) * np.sin(d) - math.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc
    rad2as = 180.0 / math.pi * 3600.0
    return xi * rad2as, eta * rad2as


def offsets_to_sky(east, north, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`sky_to_offsets`: (ra, dec) [deg] of gnomonic offsets [arcsec]."""
    as2rad = math.pi / 180.0 / 3600.0
    xi, eta = np.asarray(east, float) * as2rad, np.asarray(north, float) * as2rad
    a0, d0 = math.radians(ra0), math.radians(dec0)
    denom = math.cos(d0) - eta * math.sin(d0)
    a = a0 + np.arctan2(xi, denom)
    d = np.arctan2(math.sin(d0) + eta * math.cos(d0), np.hypot(xi, denom))
    return np.degrees(a) % 360.0, np.degrees(d)


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
    """
    from scipy.ndimage import map_coordinates

    n = max(1, int(round(fov / pixscale)))
    scale = fov / n
    # pixel centres: column j → east = fov/2 - (j + 0.5) scale; row i → north = fov/2 - (i + 0.5) scale
    centres = fov / 2 - (np.arange(n) + 0.5) * scale
    east, north = np.meshgrid(centres, centres)
    sky_ra, sky_dec = offsets_to_sky(east, north, ra, dec)
    cube = np.full((len(images), n, n), np.nan)
    for k, (data, wcs) in enumerate(images):
        x, y = wcs.world_to_pixel_values(sky_ra, sky_dec)
        ny, nx = data.shape
        inside = (x > -1) & (x < nx) & (y > -1) & (y < ny)
        if not inside.any():
            continue
        # read only the footprint (+1 px for the interpolation) of a possibly memory-mapped mosaic
        x0, x1 = max(int(np.floor(x[inside].min())) - 1, 0), min(int(np.ceil(x[inside].max())) + 2, nx)
        y0, y1 = max(int(np.floor(y[inside].min())) - 1, 0), min(int(np.ceil(y[inside].max())) + 2, ny)
        section = np.asarray(data[y0:y1, x0:x1], dtype=float)
        sampled = map_coordinates(section, [y - y0, x - x0], order=1, mode="constant", cval=np.nan)
        cube[k] = sampled
    return cube, scale


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


# -- archive format (campfire/demo/README.md) ------------------------------------------------------
# <root>/imaging/<field>/index.json            band, pixscale, the stamps (object_id, file, ra, dec)
# <root>/imaging/<field>/stamps/<object>.fits  images with a TAN WCS (SCI extension or primary)
# <root>/imaging/<field>/shutters/<obs>.json   MSA geometry of one observation (corners in ra/dec)
@dataclass(frozen=True)
class _Image:
    band: str
    pixscale: float  # arcsec
    data: Any  # 2D array
    wcs: Any  # astropy.wcs.WCS


def _read_json(path: pathlib.Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise NotFoundError(f"no such file: {path}") from err
    except ValueError as err:
        raise CampfireError(f"{path}: not valid JSON ({err})") from err


def _read_image(path: pathlib.Path, band: str | None, pixscale: float | None) -> _Image:
    import warnings

    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    with fits.open(path) as hdul:
        hdu = hdul["SCI"] if "SCI" in hdul else next(h for h in hdul if getattr(h, "data", None) is not None)
        data = np.asarray(hdu.data, dtype=np.float32)
        header = hdu.header
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)  # date/obsgeo fix-ups say nothing about the sky
            wcs = WCS(header).celestial
    if pixscale is None:
        pixscale = float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))) * 3600.0)
    return _Image(str(band or header.get("FILTER", "")).lower(), float(pixscale), data, wcs)


def _load_images(root: pathlib.Path, field: str, ra: float, dec: float, fov: float) -> list[_Image]:
    """Every image of the field whose footprint may reach into the ``fov`` square."""
    folder = root / "imaging" / field
    index_path = folder / "index.json"
    if not index_path.is_file():
        return []
    index = _read_json(index_path)
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


def _band_order(band: str) -> tuple[float, str]:
    """Sort bands blue → red by pivot wavelength (unknown names last, alphabetically)."""
    try:
        from campfire.bands import band_pivot

        return band_pivot(band), band
    except (CampfireError, ValueError, KeyError):
        return math.inf, band


def _shutter_key(observation: str, sh: Mapping[str, Any]) -> tuple:
    return observation, sh.get("quadrant"), sh.get("row"), sh.get("column")


def _msa_shutters(doc: Mapping[str, Any], object_id: str) -> tuple[list[tuple[str, dict]], str | None]:
    """(category, shutter) pairs of one observation's geometry, and the object's source ID there."""
    out: list[tuple[str, dict]] = []
    seen: set[tuple] = set()
    obs = doc.get("observation", "")
    source_id = None

    def add(category: str, sh: dict, sid) -> None:
        key = _shutter_key(obs, sh)
        if key in seen and key[1:] != (None, None, None):
            return
        seen.add(key)
        if sh.get("state", "open") == "stuck_closed":
            category = "stuck_closed"
        out.append((category, dict(sh, source_id=None if sid is None else str(sid))))

    targets = doc.get("targets", [])
    for t in targets:  # the object's own slitlet first, so its shutters keep the 'target' category
        if t.get("object_id") == object_id:
            source_id = str(t.get("source_id"))
            for sh in t.get("shutters", []):
                add("target", sh, t.get("source_id"))
    for t in targets:
        if t.get("object_id") != object_id:
            for sh in t.get("shutters", []):
                add("other", sh, t.get("source_id"))
    for f in doc.get("other_open", []):
        for sh in f.get("shutters", []):
            add("other", sh, f.get("source_id"))
    for sh in doc.get("stuck_closed", []):
        add("stuck_closed", sh, None)
    return out, source_id


# -- archive side ---------------------------------------------------------------------------------
def _object_row(root: pathlib.Path, object_id: str) -> dict[str, Any]:
    from campfire.catalog.local import LocalCatalog

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


def make_cutout_png(root: str | os.PathLike, object_id: str, fov: float, size: int | None = None) -> bytes:
    """PNG bytes of a cutout of the archive root's imaging around an object.

    North up, east left, ``fov`` arcsec on a side, at the mosaics' native pixel scale
    (``size=None``) or resampled to ``size`` × ``size`` pixels. A colour composite
    when several bands are present (blue = shortest), grey for one band. The PNG
    carries its geometry in a ``campfire`` text chunk (object_id, ra, dec, fov,
    pixscale, bands, orientation) that :func:`plot_cutout` reads.

    Parameters
    ----------
    root : path
        Archive root (``<root>/meta/campfire.db`` and ``<root>/imaging/``).
    object_id : str
        The object.
    fov : float
        Side in arcsec, 0 < fov ≤ 60.
    size : int, optional
        Output pixels per side (16–2048); native resolution when None.

    Raises
    ------
    NotFoundError
        Unknown object, or no imaging covers it.
    ValidationError
        Bad ``fov`` or ``size``.

    Examples
    --------
    >>> png = make_cutout_png(campfire.demo.ensure(), 'ember_uds_p4_123456', 3.2)  # doctest: +SKIP
    >>> png[:8] == b'\\x89PNG\\r\\n\\x1a\\n'  # doctest: +SKIP
    True
    """
    object_id = _check_object_id(object_id)
    fov = _check_fov(fov)
    size = _check_size(size)
    root = pathlib.Path(root)
    row = _object_row(root, object_id)
    ra, dec, field = float(row["ra"]), float(row["dec"]), str(row["field"])
    images = _load_images(root, field, ra, dec, fov)
    if not images:
        raise NotFoundError(f"no imaging covers object {object_id!r} (field {field!r}) under {root / 'imaging'}")
    native = min(im.pixscale for im in images)
    sampled, scale = render_cutout([(im.data, im.wcs) for im in images], ra, dec, fov, native)
    # overlapping images of one band (neighbouring stamps of a mosaic) are averaged where they overlap
    bands = sorted({im.band for im in images}, key=_band_order)
    cube = np.full((len(bands),) + sampled.shape[1:], np.nan)
    for k, band in enumerate(bands):
        layers = sampled[[i for i, im in enumerate(images) if im.band == band]]
        count = np.isfinite(layers).sum(axis=0)
        total = np.where(np.isfinite(layers), layers, 0.0).sum(axis=0)
        cube[k] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    if not np.isfinite(cube).any():
        raise NotFoundError(f"object {object_id!r} lies outside the {field!r} imaging under {root / 'imaging'}")
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


def shutter_geometry(root: str | os.PathLike, object_id: str, fov: float, *,
                     observations: Iterable[str] | None = None) -> dict[str, Any]:
    """MSA shutters around an object as a JSON-serialisable dict.

    Every observation that took a spectrum of the object contributes the shutters of
    its MSA configuration whose outline reaches into the ``fov`` square:
    ``'target'`` (the open shutters of the object's own slitlet), ``'other'`` (other
    sources' open shutters), ``'stuck_closed'`` (shutters that failed closed,
    including any in the object's slitlet).

    Parameters
    ----------
    root : path
        Archive root (``<root>/imaging/<field>/shutters/<observation>.json``).
    object_id : str
        The object.
    fov : float
        Side of the square [arcsec], 0 < fov ≤ 60.
    observations : iterable of str, optional
        Only these observations (the server passes the ones the caller may see).

    Returns
    -------
    dict
        ``object_id``, ``ra``, ``dec`` [deg], ``fov`` [arcsec], ``pa`` [deg] (of the
        first observation), ``observations`` (``observation``, ``pa``, ``source_id``),
        ``categories``, and ``shutters``: a list of ``{category, observation,
        source_id, role, quadrant, row, column, corners, corners_radec, center}``
        where ``corners`` are the four corners of the open area as (east, north)
        offsets [arcsec] from the object, ``corners_radec`` the same corners in
        degrees and ``center`` the centre offset.

    Examples
    --------
    >>> geo = shutter_geometry(campfire.demo.ensure(), 'ember_uds_p4_123456', 3.2)  # doctest: +SKIP
    >>> sorted({s['category'] for s in geo['shutters']})  # doctest: +SKIP
    ['other', 'stuck_closed', 'target']
    """
    object_id = _check_object_id(object_id)
    fov = _check_fov(fov)
    root = pathlib.Path(root)
    row = _object_row(root, object_id)
    ra, dec = float(row["ra"]), float(row["dec"])
    wanted = sorted({spec.get("observation") for spec in row["_spectra"] if spec.get("observation")})
    if observations is not None:
        allowed = {str(o).lower() for o in observations}
        wanted = [o for o in wanted if o.lower() in allowed]
    folder = root / "imaging" / str(row["field"]) / "shutters"
    found, shutters = [], []
    reach = fov / 2
    for obs in wanted:
        path = folder / f"{obs}.json"
        if not path.is_file():
            continue
        doc = _read_json(path)
        pairs, source_id = _msa_shutters(doc, object_id)
        found.append({"observation": obs, "pa": doc.get("pa_aper"), "source_id": source_id})
        for category, sh in pairs:
            corners = np.asarray(sh["corners"], dtype=float)
            east, north = sky_to_offsets(corners[:, 0], corners[:, 1], ra, dec)
            if east.max() < -reach or east.min() > reach or north.max() < -reach or north.min() > reach:
                continue
            shutters.append(
                {
                    "category": category,
                    "observation": obs,
                    "source_id": sh.get("source_id"),
                    "role": sh.get("role"),
                    "quadrant": sh.get("quadrant"),
                    "row": sh.get("row"),
                    "column": sh.get("column"),
                    "corners": [[round(float(e), 5), round(float(n), 5)] for e, n in zip(east, north)],
                    "corners_radec": [[float(a), float(d)] for a, d in corners],
                    "center": [round(float(east.mean()), 5), round(float(north.mean()), 5)],
                }
            )
    observations = found
    order = {c: i for i, c in enumerate(CATEGORIES)}
    shutters.sort(key=lambda s: (order[s["category"]], s["observation"], s["center"][1], s["center"][0]))
    return {
        "object_id": object_id,
        "ra": ra,
        "dec": dec,
        "fov": fov,
        "pa": observations[0]["pa"] if observations else None,
        "observations": observations,
        "categories": list(CATEGORIES),
        "units": {"corners": "arcsec offsets (east, north) from the object", "corners_radec": "deg"},
        "shutters": shutters,
    }


# -- client side: caches ----------------------------------------------------------------------------
def _cache_name(object_id: str, fov: float, size: int | None, suffix: str) -> str:
    size_part = f"_{size}px" if size else ""
    return f"{object_id}_fov{fov:g}{size_part}{suffix}"


def _write_atomic(path: pathlib.Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _has_imaging(root: pathlib.Path) -> bool:
    return (root / "imaging").is_dir()


def _source(cf) -> str:
    """'local' when the data_dir holds a catalog and imaging, else 'remote' (or an error)."""
    if cf.is_local and _has_imaging(pathlib.Path(cf.data_dir)):
        return "local"
    if cf.base_url:
        return "remote"
    if cf.is_local:
        # a synced data_dir without imaging and no server: say what is missing
        raise CampfireError(
            f"{cf.data_dir} has no imaging/ folder and no server is configured (CAMPFIRE_API_URL) to fetch cutouts from"
        )
    return "remote"  # remote_catalog raises the standard "no archive" message


def cutout_for_client(cf, object_id: str, fov: float = 5.0, size: int | None = None) -> str:
    """``cf.get_cutout``: the cached cutout PNG's path, made or fetched on the first call.

    Local archives (``<data_dir>/imaging``) render it with :func:`make_cutout_png`;
    otherwise it comes from ``GET /api/v1/objects/{id}/cutout.png?fov=&size=``
    (``cf.remote_catalog.cutout_png``). Either way it is stored under
    ``<data_dir>/cache/cutouts/``.
    """
    object_id = _check_object_id(object_id)
    fov = _check_fov(fov)
    size = _check_size(size)
    path = pathlib.Path(cf.data_dir) / "cache" / "cutouts" / _cache_name(object_id, fov, size, ".png")
    if path.is_file():
        return str(path)
    if _source(cf) == "local":
        data = make_cutout_png(cf.data_dir, object_id, fov, size)
    else:
        data = cf.remote_catalog.cutout_png(object_id, fov, size)
    _write_atomic(path, data)
    return str(path)


def shutters_for_client(cf, object_id: str, fov: float = 5.0) -> dict[str, Any]:
    """``cf.get_shutters``: the cached shutter geometry, computed or fetched on the first call.

    Local archives call :func:`shutter_geometry`; otherwise it comes from
    ``GET /api/v1/objects/{id}/shutters?fov=`` (``cf.remote_catalog.shutters``).
    Cached as JSON under ``<data_dir>/cache/shutters/``.
    """
    object_id = _check_object_id(object_id)
    fov = _check_fov(fov)
    path = pathlib.Path(cf.data_dir) / "cache" / "shutters" / _cache_name(object_id, fov, None, ".json")
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except ValueError:
            pass  # a damaged cache entry is refetched
    if _source(cf) == "local":
        data = shutter_geometry(cf.data_dir, object_id, fov)
    else:
        data = cf.remote_catalog.shutters(object_id, fov)
    _write_atomic(path, json.dumps(data, sort_keys=True).encode())
    return data


# -- figure ------------------------------------------------------------------------------------
def _nice_length(fov: float) -> float:
    """A round scalebar length of about a quarter of the field."""
    for length in (30.0, 20.0, 10.0, 5.0, 2.0, 1.0, 0.5, 0.25, 0.2, 0.1, 0.05, 0.02, 0.01):
        if length <= fov / 4:
            return length
    return fov / 4


def _corner_paths(corners: np.ndarray, fraction: float) -> list[np.ndarray]:
    """Four L-shaped marks (3 vertices each: along one edge, the corner, along the other)."""
    marks = []
    for i in range(4):
        c = corners[i]
        prev, nxt = corners[i - 1], corners[(i + 1) % 4]
        marks.append(np.array([c + fraction * (prev - c), c, c + fraction * (nxt - c)]))
    return marks


def _draw_shutter(ax, corners: np.ndarray, style: Mapping[str, Any], gid: str) -> list:
    from matplotlib.patches import PathPatch, Polygon
    from matplotlib.path import Path

    props = _patch_props(style)
    if style["marker"] == "box":
        patch = Polygon(corners, closed=True, gid=gid, **props)
        ax.add_patch(patch)
        return [patch]
    props.pop("facecolor", None)
    props["fill"] = False  # corner marks are open strokes
    props.setdefault("capstyle", "projecting")
    patches = []
    for k, mark in enumerate(_corner_paths(corners, float(style["corner_length"]))):
        path = Path(mark, [Path.MOVETO, Path.LINETO, Path.LINETO])
        patch = PathPatch(path, gid=f"{gid}:corner{k}", **props)
        ax.add_patch(patch)
        patches.append(patch)
    return patches


def _draw_scalebar(ax, fov: float, length: float, color: str = "white") -> None:
    import matplotlib.patheffects as pe

    outline = [pe.withStroke(linewidth=3.5, foreground="black")]
    # lower-left of the axes; x grows to the east = leftwards, so the bar runs from x0 to x0 - length
    x0 = fov / 2 - 0.07 * fov
    y0 = -fov / 2 + 0.07 * fov
    ax.plot([x0, x0 - length], [y0, y0], color=color, linewidth=2.0, solid_capstyle="butt", gid="scalebar",
            path_effects=outline, zorder=6)
    label = f"{length:g}″"
    ax.text(x0 - length / 2, y0 + 0.025 * fov, label, color=color, ha="center", va="bottom", fontsize=9,
            gid="scalebar-label", path_effects=outline, zorder=6)


def _draw_compass(ax, color: str = "white") -> None:
    import matplotlib.patheffects as pe

    outline = [pe.withStroke(linewidth=3, foreground="black")]
    base = (0.90, 0.08)  # axes fraction, lower right
    arm = 0.14
    for name, tip, label_at, ha, va in (
        ("N", (base[0], base[1] + arm), (base[0], base[1] + arm + 0.01), "center", "bottom"),
        ("E", (base[0] - arm, base[1]), (base[0] - arm - 0.015, base[1]), "right", "center"),
    ):
        ax.annotate("", xy=tip, xytext=base, xycoords="axes fraction", textcoords="axes fraction",
                    arrowprops={"arrowstyle": "-|>", "color": color, "linewidth": 1.3, "shrinkA": 0, "shrinkB": 0},
                    gid=f"compass-{name}", zorder=6)
        ax.text(*label_at, name, transform=ax.transAxes, color=color, ha=ha, va=va, fontsize=9, fontweight="bold",
                gid=f"compass-{name}-label", path_effects=outline, zorder=6)


def plot_cutout(
    path: str | os.PathLike,
    shutters: Mapping[str, Any] | bool | None = False,
    object_id: str | None = None,
    fov: float | None = None,
    ax=None,
    *,
    which: bool | str | Sequence[str] | None = None,
    shutter_style: Mapping[str, Mapping[str, Any]] | None = None,
    marker: str | None = None,
    scalebar: bool | float = True,
    compass: bool = True,
    title: str | bool | None = None,
):
    """Show a cutout PNG with the MSA shutters drawn as vector patches.

    Parameters
    ----------
    path : str or Path
        A cutout PNG (``cf.get_cutout(...)``); it is drawn north-up, east-left.
    shutters : dict or False
        Shutter geometry from ``cf.get_shutters(...)`` / :func:`shutter_geometry`, or
        False / None for no overlay.
    object_id : str, optional
        The object (title; checked against the PNG's and the geometry's object).
    fov : float, optional
        Field of view [arcsec]; read from the PNG's metadata when omitted.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into (``plt.gca()`` if None).
    which : True, 'all', 'target', False or list of categories
        Which shutters of the geometry to draw (default: all).
    shutter_style : dict, optional
        Per-category overrides merged over :data:`DEFAULT_SHUTTER_STYLES`, e.g.
        ``{'target': {'marker': 'corners', 'edgecolor': 'cyan'}}``. Keys are
        ``'target'``, ``'other'``, ``'stuck_closed'``; values hold ``marker``
        (``'box'`` or ``'corners'``), ``corner_length`` and matplotlib patch
        properties.
    marker : {'box', 'corners'}, optional
        Marker for every category (``shutter_style`` entries still win).
    scalebar : bool or float
        Draw a scalebar (True: a round length of about fov/4; a number: that many arcsec).
    compass : bool
        Draw north and east arrows.
    title : str or bool, optional
        Axes title; default the object ID, False for none.

    Returns
    -------
    matplotlib.axes.Axes
        Shutter patches carry ``gid='shutter:<category>:<index>'`` (corner marks
        ``...:corner<k>``).

    Examples
    --------
    >>> from campfire.imaging import plot_cutout
    >>> path = cf.get_cutout('ember_uds_p4_123456', fov=3.2)  # doctest: +SKIP
    >>> data = cf.get_shutters('ember_uds_p4_123456', fov=3.2)  # doctest: +SKIP
    >>> ax = plot_cutout(path, shutters=data, object_id='ember_uds_p4_123456', fov=3.2,  # doctest: +SKIP
    ...                  shutter_style={'target': {'marker': 'corners', 'edgecolor': 'cyan'}})
    """
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    if object_id is not None:
        _check_object_id(object_id)
    image, meta = read_cutout_png(path)
    if fov is None:
        fov = meta.get("fov") or (shutters.get("fov") if isinstance(shutters, Mapping) else None)
        if fov is None:
            raise ValidationError("fov: this PNG carries no campfire metadata; pass fov= (arcsec)")
    fov = _check_fov(fov)
    if meta.get("fov") is not None and not math.isclose(float(meta["fov"]), fov, rel_tol=1e-6):
        raise ValidationError(f"fov: {fov:g} does not match the cutout, which spans {float(meta['fov']):g} arcsec")
    for source, name in ((meta, "the cutout"), (shutters if isinstance(shutters, Mapping) else {}, "the shutter data")):
        other = source.get("object_id")
        if object_id is not None and other is not None and other != object_id:
            raise ValidationError(f"object_id: {object_id!r} does not match {name}, which is for {other!r}")
    object_id = object_id or meta.get("object_id") or (shutters.get("object_id") if isinstance(shutters, Mapping) else None)

    if shutters is None or shutters is False:
        categories: tuple[str, ...] = ()
    elif isinstance(shutters, Mapping):
        categories = _selected_categories(True if which is None else which)
        if not isinstance(shutters.get("shutters"), list):
            raise ValidationError("shutters: expected the geometry dict of cf.get_shutters() (with a 'shutters' list)")
    elif shutters is True or isinstance(shutters, (str, list, tuple)):
        _selected_categories(shutters)  # a bad value gets the full list of choices
        raise ValidationError(
            "shutters: campfire.imaging.plot_cutout needs the geometry dict, e.g. "
            "shutters=cf.get_shutters(object_id, fov=...); use cf.plot_cutout(..., shutters=True|'all'|'target') "
            "to fetch it for you"
        )
    else:
        raise ValidationError(f"shutters: expected the dict of cf.get_shutters() or False, got {type(shutters).__name__}")
    styles = _merge_styles(shutter_style, marker)
    if ax is None:
        ax = plt.gca()
    elif not isinstance(ax, Axes):
        raise ValidationError(f"ax: expected a matplotlib Axes or None, got {type(ax).__name__}")

    half = fov / 2
    kwargs = {"cmap": "gray", "vmin": 0, "vmax": 255} if image.ndim == 2 else {}
    ax.imshow(image, extent=(half, -half, -half, half), origin="upper", interpolation="nearest", zorder=0,
              gid="cutout", **kwargs)
    counters = dict.fromkeys(CATEGORIES, 0)
    for shutter in shutters.get("shutters", []) if categories else []:
        cat = shutter.get("category")
        if cat not in CATEGORIES:
            raise ValidationError(
                f"shutters: geometry has unknown shutter category {cat!r}; allowed: {', '.join(map(repr, CATEGORIES))}"
            )
        if cat not in categories:
            continue
        corners = np.asarray(shutter["corners"], dtype=float)
        if corners.shape != (4, 2):
            raise ValidationError(f"shutters: each shutter needs 4 (east, north) corners, got shape {corners.shape}")
        _draw_shutter(ax, corners, styles[cat], f"shutter:{cat}:{counters[cat]}")
        counters[cat] += 1
    ax.set_xlim(half, -half)
    ax.set_ylim(-half, half)
    ax.set_aspect("equal")
    ax.set_xlabel("ΔRA [arcsec]")
    ax.set_ylabel("ΔDec [arcsec]")
    if scalebar:
        if scalebar is True:
            length = _nice_length(fov)
        elif isinstance(scalebar, (int, float)) and 0 < float(scalebar) <= fov:
            length = float(scalebar)
        else:
            raise ValidationError(f"scalebar: expected True, False or a length in arcsec in (0, fov], got {scalebar!r}")
        _draw_scalebar(ax, fov, length)
    if compass:
        _draw_compass(ax)
    if title is None:
        title = object_id or ""
    if title:
        ax.set_title(str(title), fontsize=9)
    return ax
