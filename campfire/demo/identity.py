"""What every demo catalog carries, whatever its size: version, build marker, meta rows, system tags.

Both builders — :mod:`campfire.demo.builder` (archives with FITS products) and
:mod:`campfire.demo.catalog_only` (the 1,000,000-spectrum catalog) — write these the
same way, and :func:`read_build_marker` tells a complete demo from anything else.

Examples
--------
>>> sorted(demo_meta('small', 0, '2024-01-01T00:00:00'))
['built_with', 'catalog_version', 'created_at', 'generator', 'owner']
"""
from __future__ import annotations

import json
import os
import pathlib
import sqlite3
from typing import Any

from campfire.catalog.db import catalog_path, read_meta, write_meta
from campfire.catalog.writer import CatalogWriter
from campfire.errors import CampfireError, ValidationError

__all__ = ["DEMO_VERSION", "DEMO_REVIEWER", "SIZE_NAMES", "MARKER_KEY", "TAG_NAMES", "demo_meta", "write_system_tags",
           "write_build_marker", "read_build_marker", "validate_size_seed", "is_complete"]

DEMO_REVIEWER = "demo-team"  # who made the demo's inspection records (campfire.catalog.inspections)
DEMO_VERSION = "12"  # 2: catalog schema 2, redshift_auto from the break-aware fitter; 3: grades are inspection records (schema 3); 4: [O III]/[N II] doublet ratios fixed, ZAUTOLO/ZAUTOHI/ZCONF; 5: redshift_auto from the paired-break fitter (issue 17.1); 6: redshift_auto with the pedestal marginalised and the cheaper second break component (issue 17.1); 7: ZCONF of BAD_BACKGROUND spectra tempered more (issue 17.2); 8: the fit's line profiles by reciprocals (issue 16.6: the stored χ² grids and fits differ in their last bits); 9: the fit's coarse pass without the broad components (issue 16.6); 10: a fit that emission lines hardly shape takes the median of p(z) in its well without emission lines (issue 17.1); 11: that median integrates p(z) over ln(1+z) as the fit's interval does (its last bits). 12: the imaging's sources placed by campfire's TAN projection, not astropy.wcs's (~3e-9 pixel apart: 7 of 240 small-demo stamps differ, in ≤ 200 pixels by ≤ 2e-9 μJy, the noise 6e-4). Bump when the generator changes: ensure() rebuilds older demos
SIZE_NAMES = ("small", "full", "catalog")
MARKER_KEY = "demo_build"

# the system tags, in tag-id order: campfire.demo.sed.TAGGED_TYPES (not imported: it needs scipy)
TAG_NAMES = {
    "lrd": ("Little red dot", "Compact red source with a V-shaped SED and broad Balmer lines"),
    "blagn": ("Broad-line AGN", "Broad Hα/Hβ on a galaxy continuum"),
    "lae": ("Lyman-α emitter", "Strong Lyα emission, blue UV continuum"),
    "hae": ("Hα emitter", "Strong Hα (+[N II]) star-forming galaxy"),
    "qg": ("Quiescent galaxy", "Strong Balmer/4000 Å break, weak or no emission lines"),
}


def demo_meta(size: str, seed: int, stamp: str) -> dict[str, str]:
    """The ``archive_meta`` rows of a demo catalog (the server reads them to seed the demo accounts)."""
    return {
        "owner": "pipeline",
        "catalog_version": f"demo-v{DEMO_VERSION}-{size}-seed{seed}",
        "built_with": "campfire.demo",
        "generator": f"campfire.demo v{DEMO_VERSION}",
        "created_at": stamp,
    }


def write_system_tags(writer: CatalogWriter, stamp: str) -> dict[str, int]:
    """The system tags (lrd, blagn, ...) of the demo; returns slug → tag_id."""
    tag_ids = {slug: i + 1 for i, slug in enumerate(TAG_NAMES)}
    writer.add_tags([(tag_ids[s], s, name, about, "system", None, stamp) for s, (name, about) in TAG_NAMES.items()])
    return tag_ids


def write_build_marker(conn: sqlite3.Connection, size: str, seed: int) -> None:
    """Mark the catalog as a complete demo build (written last, inside the load's transaction)."""
    write_meta(conn, {MARKER_KEY: json.dumps({"size": size, "seed": seed, "version": DEMO_VERSION}, sort_keys=True)})


def read_build_marker(root: str | os.PathLike) -> dict[str, Any] | None:
    """The ``demo_build`` marker of an archive root ({size, seed, version}), or None.

    Examples
    --------
    >>> read_build_marker('/nonexistent') is None
    True
    """
    db = catalog_path(root)
    if not db.is_file():
        return None
    try:
        value = read_meta(db).get(MARKER_KEY)
    except (sqlite3.Error, CampfireError):
        return None
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def validate_size_seed(size: str, seed) -> tuple[str, int]:
    """``(size, seed)`` of a demo build, checked: a size of :data:`SIZE_NAMES` and a non-negative integer seed.

    Examples
    --------
    >>> validate_size_seed('Small', 3)
    ('small', 3)
    """
    if not isinstance(size, str) or size.lower() not in SIZE_NAMES:
        raise ValidationError(f"size: expected one of {', '.join(SIZE_NAMES)}, got {size!r}")
    try:
        seed_i = int(seed)
    except (TypeError, ValueError) as err:
        raise ValidationError(f"seed: expected a non-negative integer, got {seed!r}") from err
    if seed_i < 0 or seed_i != seed:
        raise ValidationError(f"seed: expected a non-negative integer, got {seed!r}")
    return size.lower(), seed_i


def is_complete(root: pathlib.Path, size: str | None, seed: int | None) -> bool:
    """Whether ``root`` holds a complete demo of this generator version (and of ``size`` / ``seed`` when given).

    ``size=None`` accepts a ``'small'`` or ``'full'`` demo (one with FITS products), ``seed=None`` any seed.
    """
    marker = read_build_marker(root)
    if marker is None or str(marker.get("version")) != DEMO_VERSION:
        return False
    if size is not None and marker.get("size") != size:
        return False
    if size is None and marker.get("size") not in ("small", "full"):
        return False  # "any demo" means one with FITS products: not the catalog-only size
    if seed is not None and marker.get("seed") != seed:
        return False
    if marker.get("size") != "catalog" and not (root / "products").is_dir():
        return False
    return True
