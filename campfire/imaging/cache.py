"""The client's caches of cutouts and shutter geometry (``cf.get_cutout``, ``cf.get_shutters``).

A local archive (imaging in ``<data_dir>/imaging`` or under its ``archive_meta.imaging_url``)
renders them (:mod:`campfire.imaging.render`, :mod:`campfire.imaging.shutters`); otherwise
they come from the server
(``cf.remote_catalog``). Either way they are stored under ``<data_dir>/cache/cutouts``
and ``<data_dir>/cache/shutters`` and served from there afterwards.
"""
from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Callable

from campfire.errors import CampfireError
from campfire.imaging.archive import imaging_store
from campfire.imaging.geometry import check_fov, check_object_id, check_size
from campfire.imaging.render import make_cutout_png
from campfire.imaging.shutters import shutter_geometry

__all__ = ["cutout_for_client", "shutters_for_client"]


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


def _source(cf) -> str:
    """'local' when the data_dir holds a catalog and imaging (its own or on its object store), else 'remote'."""
    if cf.is_local and imaging_store(cf.data_dir).available:
        return "local"
    if cf.base_url:
        return "remote"
    if cf.is_local:
        # a synced data_dir without imaging and no server: say what is missing
        raise CampfireError(
            f"{cf.data_dir} has no imaging/ folder and no server is configured (CAMPFIRE_API_URL) to fetch cutouts from"
        )
    return "remote"  # remote_catalog raises the standard "no archive" message


def _cached(cf, path: pathlib.Path, local: Callable[[], bytes], remote: Callable[[], bytes],
            valid: Callable[[pathlib.Path], bool] = pathlib.Path.is_file) -> pathlib.Path:
    """The cache file ``path``; when missing (or not ``valid``), made from this archive or the server and kept."""
    if path.is_file() and valid(path):
        return path
    _write_atomic(path, local() if _source(cf) == "local" else remote())
    return path


def _json_readable(path: pathlib.Path) -> bool:
    try:
        json.loads(path.read_text())
        return True
    except ValueError:
        return False  # a damaged cache entry is made again


def cutout_for_client(cf, object_id: str, fov: float = 5.0, size: int | None = None) -> str:
    """``cf.get_cutout``: the cached cutout PNG's path, made or fetched on the first call.

    Local archives (imaging in ``<data_dir>/imaging`` or under ``archive_meta.imaging_url``)
    render it with :func:`make_cutout_png`; otherwise it comes from ``GET /api/v1/objects/{id}/cutout.png?fov=&size=``
    (``cf.remote_catalog.cutout_png``). Either way it is stored under
    ``<data_dir>/cache/cutouts/``.

    Parameters
    ----------
    cf : Campfire
    object_id : str
    fov : float
        Side [arcsec].
    size : int, optional
        Pixels per side (native resolution when None).

    Returns
    -------
    str
        The PNG's path.

    Raises
    ------
    ValidationError
        Bad ``object_id``, ``fov`` or ``size``.
    NotFoundError
        Unknown object, or no imaging covers it.
    CampfireError
        No imaging here and no server to ask.

    Examples
    --------
    >>> path = cutout_for_client(cf, 'ember_uds_p4_123456', fov=3.2)  # what cf.get_cutout does  # doctest: +SKIP
    """
    object_id = check_object_id(object_id)
    fov = check_fov(fov)
    size = check_size(size)
    path = pathlib.Path(cf.data_dir) / "cache" / "cutouts" / _cache_name(object_id, fov, size, ".png")
    return str(_cached(cf, path, lambda: make_cutout_png(cf.data_dir, object_id, fov, size),
                       lambda: cf.remote_catalog.cutout_png(object_id, fov, size)))


def shutters_for_client(cf, object_id: str, fov: float = 5.0) -> dict[str, Any]:
    """``cf.get_shutters``: the cached shutter geometry, computed or fetched on the first call.

    Local archives call :func:`shutter_geometry`; otherwise it comes from
    ``GET /api/v1/objects/{id}/shutters?fov=`` (``cf.remote_catalog.shutters``).
    Cached as JSON under ``<data_dir>/cache/shutters/``.

    Parameters
    ----------
    cf : Campfire
    object_id : str
    fov : float
        Side of the square [arcsec].

    Returns
    -------
    dict
        See :func:`campfire.imaging.shutters.shutter_geometry`.

    Raises
    ------
    ValidationError
        Bad ``object_id`` or ``fov``.
    NotFoundError
        Unknown object.
    CampfireError
        No imaging here and no server to ask.

    Examples
    --------
    >>> geo = shutters_for_client(cf, 'ember_uds_p4_123456', fov=3.2)  # what cf.get_shutters does  # doctest: +SKIP
    """
    object_id = check_object_id(object_id)
    fov = check_fov(fov)
    path = pathlib.Path(cf.data_dir) / "cache" / "shutters" / _cache_name(object_id, fov, None, ".json")

    def encoded(data: dict[str, Any]) -> bytes:
        return json.dumps(data, sort_keys=True).encode()

    path = _cached(cf, path, lambda: encoded(shutter_geometry(cf.data_dir, object_id, fov)),
                   lambda: encoded(cf.remote_catalog.shutters(object_id, fov)), valid=_json_readable)
    return json.loads(path.read_text())
