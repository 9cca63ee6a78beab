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
import sqlite3
from typing import Any

from campfire.catalog.db import catalog_path, read_meta, write_meta
from campfire.catalog.writer import CatalogWriter
from campfire.demo.sed import TAGGED_TYPES
from campfire.errors import CampfireError

__all__ = ["DEMO_VERSION", "DEMO_REVIEWER", "SIZE_NAMES", "MARKER_KEY", "TAG_NAMES", "demo_meta", "write_system_tags",
           "write_build_marker", "read_build_marker"]

DEMO_REVIEWER = "demo-team"  # who made the demo's inspection records (campfire.catalog.inspections)
DEMO_VERSION = "11"  # 2: catalog schema 2, redshift_auto from the break-aware fitter; 3: grades are inspection records (schema 3); 4: [O III]/[N II] doublet ratios fixed, ZAUTOLO/ZAUTOHI/ZCONF; 5: redshift_auto from the paired-break fitter (issue 17.1); 6: redshift_auto with the pedestal marginalised and the cheaper second break component (issue 17.1); 7: ZCONF of BAD_BACKGROUND spectra tempered more (issue 17.2); 8: the fit's line profiles by reciprocals (issue 16.6: the stored χ² grids and fits differ in their last bits); 9: the fit's coarse pass without the broad components (issue 16.6); 10: a fit that emission lines hardly shape takes the median of p(z) in its well without emission lines (issue 17.1); 11: that median integrates p(z) over ln(1+z) as the fit's interval does (its last bits). Bump when the generator changes: ensure() rebuilds older demos
SIZE_NAMES = ("small", "full", "catalog")
MARKER_KEY = "demo_build"

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
    tag_ids = {slug: i + 1 for i, slug in enumerate(TAGGED_TYPES)}
    writer.add_tags([(tag_ids[s], s, TAG_NAMES[s][0], TAG_NAMES[s][1], "system", None, stamp) for s in TAGGED_TYPES])
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
