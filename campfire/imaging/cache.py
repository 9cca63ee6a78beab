"""The client's caches of cutouts and shutter geometry (``cf.get_cutout``, ``cf.get_shutters``).

A local archive (``<data_dir>/imaging``) renders them (:mod:`campfire.imaging.render`,
:mod:`campfire.imaging.shutters`); otherwise they come from the server
(``cf.remote_catalog``). Either way they are stored under ``<data_dir>/cache/cutouts``
and ``<data_dir>/cache/shutters`` and served from there afterwards.
"""
from __future__ import annotations

import json
import os
import pathlib
from typing import Any

from campfire.errors import CampfireError
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
