"""Sky geometry of cutouts: tangent-plane offsets about an object, and the checked inputs.

Coordinates: offsets are gnomonic (tangent-plane) coordinates about the object in
arcsec, ``east`` positive towards the east and ``north`` positive towards the north;
a cutout spans ``[-fov/2, fov/2]`` in both and is drawn east-left like the sky.
"""
from __future__ import annotations

import math

import numpy as np

from campfire.errors import ValidationError

__all__ = ["sky_to_offsets", "offsets_to_sky", "check_fov", "check_size", "check_object_id", "FOV_MAX", "SIZE_RANGE"]

FOV_MAX = 60.0  # arcsec: a cutout, not a mosaic
SIZE_RANGE = (16, 2048)  # output pixels per side


def check_fov(fov) -> float:
    """``fov`` [arcsec] as a float in (0, :data:`FOV_MAX`].

    Parameters
    ----------
    fov : float

    Returns
    -------
    float

    Raises
    ------
    ValidationError
        Not a number in range (the message gives the range).

    Examples
    --------
    >>> check_fov(3)
    3.0
    """
    if isinstance(fov, bool) or not isinstance(fov, (int, float, np.integer, np.floating)):
        raise ValidationError(f"fov: expected a number of arcsec in (0, {FOV_MAX:g}], got {fov!r}")
    value = float(fov)
    if not math.isfinite(value) or value <= 0 or value > FOV_MAX:
        raise ValidationError(f"fov: expected a number of arcsec in (0, {FOV_MAX:g}], got {fov!r}")
    return value


def check_size(size) -> int | None:
    """``size`` [pixels] as an int in :data:`SIZE_RANGE`, or None (native resolution).

    Parameters
    ----------
    size : int or None

    Returns
    -------
    int or None

    Raises
    ------
    ValidationError
        Not None and not an int in range.

    Examples
    --------
    >>> check_size(None), check_size(64)
    (None, 64)
    """
    if size is None:
        return None
    lo, hi = SIZE_RANGE
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not lo <= int(size) <= hi:
        raise ValidationError(f"size: expected None (native resolution) or an integer {lo}-{hi} (pixels), got {size!r}")
    return int(size)


def check_object_id(object_id) -> str:
    """``object_id`` if it is a plain ID string (no path separators).

    Parameters
    ----------
    object_id : str

    Returns
    -------
    str

    Raises
    ------
    ValidationError
        Not a non-empty string, or one with ``/``, ``\\`` or NUL.

    Examples
    --------
    >>> check_object_id('ember_uds_p4_123456')
    'ember_uds_p4_123456'
    """
    if not isinstance(object_id, str) or not object_id or any(c in object_id for c in "/\\\0"):
        raise ValidationError(f"object_id: expected an ID string like 'ember_uds_p4_123456', got {object_id!r}")
    return object_id


def sky_to_offsets(ra, dec, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic offsets [arcsec] (east, north) of (ra, dec) [deg] about (ra0, dec0).

    The cutout grid is a TAN projection about the object, so these are exactly its
    pixel coordinates times the pixel scale.

    Parameters
    ----------
    ra, dec : float or array_like
        Positions [deg].
    ra0, dec0 : float
        The tangent point (the object) [deg].

    Returns
    -------
    (east, north) : numpy.ndarray
        Offsets [arcsec].

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
    """Inverse of :func:`sky_to_offsets`: (ra, dec) [deg] of gnomonic offsets [arcsec].

    Parameters
    ----------
    east, north : float or array_like
        Offsets [arcsec].
    ra0, dec0 : float
        The tangent point [deg].

    Returns
    -------
    (ra, dec) : numpy.ndarray
        [deg], ra in [0, 360).

    Examples
    --------
    >>> ra, dec = offsets_to_sky(0.0, 36.0, 150.0, 2.0)
    >>> round(float(ra), 6), round(float(dec), 6)
    (150.0, 2.01)
    """
    as2rad = math.pi / 180.0 / 3600.0
    xi, eta = np.asarray(east, float) * as2rad, np.asarray(north, float) * as2rad
    a0, d0 = math.radians(ra0), math.radians(dec0)
    denom = math.cos(d0) - eta * math.sin(d0)
    a = a0 + np.arctan2(xi, denom)
    d = np.arctan2(math.sin(d0) + eta * math.cos(d0), np.hypot(xi, denom))
    return np.degrees(a) % 360.0, np.degrees(d)
