"""Cutouts around objects with the NIRSpec MSA shutters drawn on top.

* :mod:`campfire.imaging.geometry` — tangent-plane offsets about an object; checked fov/size/ID
* :mod:`campfire.imaging.archive` — where an archive root keeps imaging; the object's catalog row
* :mod:`campfire.imaging.render` — mosaics → a north-up, east-left cutout PNG (``make_cutout_png``, the server's)
* :mod:`campfire.imaging.shutters` — the MSA shutters around an object (``shutter_geometry``, the server's)
* :mod:`campfire.imaging.cache` — the client's caches behind ``cf.get_cutout`` / ``cf.get_shutters``
* :mod:`campfire.imaging.plot` — ``plot_cutout``: the PNG with the shutters as vector patches

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
from campfire.imaging.cache import cutout_for_client, shutters_for_client
from campfire.imaging.geometry import FOV_MAX, SIZE_RANGE, offsets_to_sky, sky_to_offsets
from campfire.imaging.plot import DEFAULT_SHUTTER_STYLES, MARKERS, plot_cutout
from campfire.imaging.render import make_cutout_png, read_cutout_png, render_cutout
from campfire.imaging.shutters import CATEGORIES, shutter_geometry

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
