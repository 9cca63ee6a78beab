"""Writing catalog rows: the one place that knows each table's columns for an INSERT.

Every producer of an archive root — the demo builders today, the ingest of real
products (``campfire/archive/``) next — writes programs, observations, objects,
spectra, photometry and tags through :class:`CatalogWriter`, so the column lists
and statements exist once. Rows are tuples in the order of the ``*_FIELDS``
constants (fast for a million rows); the writer never commits: the caller wraps a
load in one transaction (``with conn:``) and finishes it with
:func:`campfire.catalog.schema.finalize_catalog`.

Examples
--------
>>> from campfire.catalog.db import catalog_path
>>> from campfire.catalog.schema import create_catalog, finalize_catalog
>>> conn = create_catalog(catalog_path('/tmp/archive'), owner='pipeline')     # doctest: +SKIP
>>> w = CatalogWriter(conn)                                                    # doctest: +SKIP
>>> with conn:                                                                 # doctest: +SKIP
...     w.add_programs([(1180, 'JADES', 'JADES', 'Eisenstein', 1)])
...     w.add_objects([('jades_p1_1', 'gds', 53.1, -27.8, *unit_vector(53.1, -27.8), 2.3, 2.3, None, 0,
...                     0, None, None, None, None, '2024-01-01T00:00:00')])
...     w.index_objects()
>>> finalize_catalog(conn)                                                     # doctest: +SKIP
"""
from __future__ import annotations

import math
import sqlite3
from typing import Iterable, Sequence

__all__ = [
    "CatalogWriter",
    "PROGRAM_FIELDS",
    "OBSERVATION_FIELDS",
    "OBJECT_FIELDS",
    "SPECTRUM_FIELDS",
    "PHOTOMETRY_FIELDS",
    "TAG_FIELDS",
    "OBJECT_TAG_FIELDS",
    "LOCAL_FILE_FIELDS",
    "INSPECTION_FIELDS",
    "insert_sql",
    "unit_vector",
]

PROGRAM_FIELDS = ("program_id", "slug", "program_name", "pi_name", "is_public")
OBSERVATION_FIELDS = ("observation", "program_id", "field", "ra", "dec", "pa_v3", "observed_at")
OBJECT_FIELDS = (
    "object_id", "field", "ra", "dec", "cx", "cy", "cz", "redshift", "redshift_auto", "redshift_inspected",
    "redshift_quality", "has_photometry", "phot_catalog", "photo_z", "photo_z_err_lo", "photo_z_err_hi",
    "updated_at",
)
SPECTRUM_FIELDS = (
    "spectrum_id", "object_id", "target_id", "observation", "program_id", "grating", "filter", "fits_path",
    "signal_to_noise", "exposure_time", "reduction_version", "redshift_auto", "dq_flags", "file_hash",
    "file_size", "n_pix", "wave_min", "wave_max", "updated_at", "redshift_auto_lo", "redshift_auto_hi",
    "redshift_auto_confidence",
)
PHOTOMETRY_FIELDS = ("object_id", "band", "flux", "flux_err", "wavelength")
TAG_FIELDS = ("tag_id", "slug", "name", "description", "kind", "owner", "updated_at")
OBJECT_TAG_FIELDS = ("tag_id", "object_id")
LOCAL_FILE_FIELDS = ("spectrum_id", "sha256", "size", "downloaded_at")
INSPECTION_FIELDS = ("object_id", "reviewer", "redshift", "quality", "comment", "issues", "spectra_seen",
                     "resolves_conflict", "created_at", "recorded_at")


def insert_sql(table: str, fields: Sequence[str], verb: str = "INSERT") -> str:
    """``INSERT INTO table (fields) VALUES (?, ...)`` (``verb`` e.g. ``'INSERT OR REPLACE'``).

    Examples
    --------
    >>> insert_sql('object_tags', OBJECT_TAG_FIELDS)
    'INSERT INTO object_tags (tag_id, object_id) VALUES (?, ?)'
    """
    return f"{verb} INTO {table} ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})"


def unit_vector(ra: float, dec: float) -> tuple[float, float, float]:
    """The (cx, cy, cz) columns of an object at (ra, dec) in degrees: cone distances without trig in SQL.

    Examples
    --------
    >>> [round(v, 6) for v in unit_vector(90.0, 0.0)]
    [0.0, 1.0, 0.0]
    """
    a, d = math.radians(ra), math.radians(dec)
    return math.cos(d) * math.cos(a), math.cos(d) * math.sin(a), math.sin(d)


class CatalogWriter:
    """Rows into a catalog open for writing (see the module docstring).

    Parameters
    ----------
    conn : sqlite3.Connection
        A writable catalog connection (:func:`campfire.catalog.schema.create_catalog`).
        The caller commits.
    """

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def _add(self, table: str, fields: Sequence[str], rows: Iterable[Sequence]) -> None:
        self.conn.executemany(insert_sql(table, fields), rows)

    def add_programs(self, rows: Iterable[Sequence]) -> None:
        """Programs, as :data:`PROGRAM_FIELDS` tuples (``is_public`` 0 or 1)."""
        self._add("programs", PROGRAM_FIELDS, rows)

    def add_observations(self, rows: Iterable[Sequence]) -> None:
        """MSA observations, as :data:`OBSERVATION_FIELDS` tuples."""
        self._add("observations", OBSERVATION_FIELDS, rows)

    def add_objects(self, rows: Iterable[Sequence]) -> None:
        """Objects, as :data:`OBJECT_FIELDS` tuples (``cx, cy, cz``: :func:`unit_vector`).

        Call :meth:`index_objects` afterwards: cone searches go through the R*Tree.
        """
        self._add("objects", OBJECT_FIELDS, rows)

    def add_spectra(self, rows: Iterable[Sequence]) -> None:
        """Spectra, as :data:`SPECTRUM_FIELDS` tuples (``fits_path`` relative to the root).

        The spectra's copies of their object's columns are set by the schema's
        triggers, or by :func:`~campfire.catalog.schema.finalize_catalog` after a bulk load.
        """
        self._add("spectra", SPECTRUM_FIELDS, rows)

    def add_photometry(self, rows: Iterable[Sequence]) -> None:
        """Broadband photometry, as :data:`PHOTOMETRY_FIELDS` tuples (flux in μJy, pivot wavelength in μm)."""
        self._add("photometry", PHOTOMETRY_FIELDS, rows)

    def add_tags(self, rows: Iterable[Sequence]) -> None:
        """Tags, as :data:`TAG_FIELDS` tuples (``kind``: system, shared or private)."""
        self._add("tags", TAG_FIELDS, rows)

    def add_object_tags(self, rows: Iterable[Sequence]) -> None:
        """Tag memberships, as (tag_id, object_id)."""
        self._add("object_tags", OBJECT_TAG_FIELDS, rows)

    def add_inspections(self, rows: Iterable[Sequence]) -> list[int]:
        """Inspection records, as :data:`INSPECTION_FIELDS` tuples; their new ``inspection_id`` values.

        Rows go in as given: producers call
        :func:`campfire.catalog.inspections.add_inspections`, which checks them first
        and re-derives the objects' inspection fields.
        """
        sql = insert_sql("inspections", INSPECTION_FIELDS)
        return [self.conn.execute(sql, tuple(row)).lastrowid for row in rows]

    def add_local_files(self, rows: Iterable[Sequence], *, replace: bool = False) -> None:
        """Files present under the root, as :data:`LOCAL_FILE_FIELDS` tuples (``replace`` an existing record)."""
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        self.conn.executemany(insert_sql("local_files", LOCAL_FILE_FIELDS, verb), rows)

    def index_objects(self, object_ids: Sequence[str] | None = None) -> None:
        """Put objects in the cone-search R*Tree (``id`` = the objects rowid): all, or ``object_ids``."""
        conn = self.conn
        if object_ids is None:
            conn.execute("DELETE FROM objects_rtree")
            conn.execute("INSERT INTO objects_rtree (id, ra_min, ra_max, dec_min, dec_max) "
                         "SELECT rowid, ra, ra, dec, dec FROM objects")
            return
        for i in range(0, len(object_ids), 500):
            chunk = object_ids[i:i + 500]
            conn.execute("INSERT OR REPLACE INTO objects_rtree (id, ra_min, ra_max, dec_min, dec_max) "
                         f"SELECT rowid, ra, ra, dec, dec FROM objects WHERE object_id IN ({','.join('?' * len(chunk))})",
                         chunk)
