"""Attach what the tables say to the archive's objects: DJA grades and photometry.

Both run inside the ingest's transaction after the spectra are written, on every
ingest (a new table version with new grades updates an unchanged archive), and both
leave objects whose values are unchanged alone.

* **Grades**: each graded row of the DJA table becomes a
  :class:`~campfire.archive.grades.Judgement` on the object of its spectrum, stored as
  an inspection record by :func:`~campfire.archive.grades.store_judgements`.
* **Photometry**: a row of the photometric catalogue attaches to an object by ID or
  position (:mod:`campfire.archive.photometry`); the DJA table's ``phot_*`` columns
  attach to the object of the row's spectrum where the catalogue gave nothing. An
  object's photometry is replaced as a whole when it differs.
"""
from __future__ import annotations

import sqlite3
from campfire.archive.grades import judgement_from_row, store_judgements
from campfire.archive.grouping import existing_objects_near
from campfire.archive.names import separation_deg
from campfire.archive.photometry import PhotometryCatalog
from campfire.archive.table import DJATable
from campfire.bands import band_pivot
from campfire.catalog.writer import CatalogWriter
from campfire.errors import ValidationError

__all__ = ["table_spectra", "apply_grades", "apply_photometry"]


def _spectrum(conn: sqlite3.Connection, spectrum_id: str) -> tuple[str, str] | None:
    return conn.execute("SELECT object_id, file_hash FROM spectra WHERE spectrum_id = ?", (spectrum_id,)).fetchone()


def table_spectra(conn: sqlite3.Connection, table: DJATable, by_name: dict[str, str], input_names: set[str]
                  ) -> tuple[dict[str, tuple[str, str, str]], list[tuple[str, str]]]:
    """The spectrum of each table row: file name → (spectrum_id, object_id, file_hash); rows naming no file are problems."""
    found, problems = {}, []
    for name in table.rows:
        sid = by_name.get(name)
        spec = _spectrum(conn, sid) if sid else None
        if spec is not None:
            found[name] = (sid, spec[0], spec[1])
        elif name not in input_names:
            problems.append((table.where(name), f"names the file {name}, which is neither among the inputs nor in "
                                                "the archive"))
    return found, problems


def apply_grades(conn: sqlite3.Connection, table: DJATable, spectra: dict[str, tuple[str, str, str]]
                 ) -> tuple[set[str], list[tuple[str, str]]]:
    """Store the graded rows of a DJA table as inspections; (objects that got new records, problems).

    The objects' rows are not touched: what a caller sees moves with the inspections
    they may see (``object_aggregates.inspected_at``, the export's cursor), so a grade
    of a proprietary spectrum moves nothing a non-member syncs.
    """
    judgements, problems = [], []
    for name, (sid, oid, sha) in spectra.items():
        try:
            j = judgement_from_row(table.rows[name], oid, [(sid, sha)], table.where(name))
        except ValidationError as err:
            problems.append((table.where(name), str(err)))
            continue
        if j is not None:
            judgements.append(j)
    return store_judgements(conn, judgements), problems


def _match_row(conn: sqlite3.Connection, ids: tuple[str, ...], ra, dec, radius: float) -> tuple[str, float] | None:
    """The object of a catalogue row: (object_id, separation arcsec; 0 for an ID match), or None."""
    for text in ids:
        if conn.execute("SELECT 1 FROM objects WHERE object_id = ?", (text,)).fetchone():
            return text, 0.0
        row = conn.execute("SELECT object_id FROM spectra WHERE target_id = ? LIMIT 1", (text,)).fetchone()
        if row:
            return row[0], 0.0
    if ra is None or dec is None:
        return None
    best = None
    for oid, ora, odec in existing_objects_near(conn, ra, dec, radius):
        d = separation_deg(ra, dec, ora, odec) * 3600.0
        if d <= radius and (best is None or d < best[1]):
            best = (oid, d)
    return best


def apply_photometry(conn: sqlite3.Connection, catalog: PhotometryCatalog | None, table: DJATable | None,
                     spectra: dict[str, tuple[str, str, str]], radius: float, stamp: str
                     ) -> tuple[set[str], list[tuple[str, str]], int]:
    """Attach photometry; (changed object IDs, problems, catalogue rows that matched no object)."""
    wanted: dict[str, tuple[str, dict, tuple]] = {}
    problems: list[tuple[str, str]] = []
    unmatched = 0
    if catalog is not None:
        matched: dict[str, tuple[float, int]] = {}
        for row in catalog.rows:
            hit = _match_row(conn, row.ids, row.ra, row.dec, radius)
            if hit is None:
                unmatched += 1
                continue
            oid, sep = hit
            if oid in matched:
                keep = matched[oid]
                if sep >= keep[0]:
                    problems.append((f"{catalog.path} row {row.number}", f"also matches object {oid}, which row "
                                                                         f"{keep[1]} matches more closely; not used"))
                    continue
                problems.append((f"{catalog.path} row {keep[1]}", f"also matches object {oid}, which row {row.number} "
                                                                  "matches more closely; not used"))
            matched[oid] = (sep, row.number)
            wanted[oid] = (catalog.name, row.bands, row.photo_z)
    if table is not None:
        name = table.path.rsplit("/", 1)[-1].split(".")[0]
        for fname, (_, oid, _) in spectra.items():
            row = table.rows[fname]
            if row["phot"] and oid not in wanted:
                z = row.get("z_phot")
                wanted[oid] = (name, row["phot"], (z if z is not None and z >= 0 else None, None, None))
    changed = set()
    writer = CatalogWriter(conn)
    for oid, (cat_name, bands, (z, lo, hi)) in sorted(wanted.items()):
        have = {b: (f, e) for b, f, e in conn.execute("SELECT band, flux, flux_err FROM photometry WHERE object_id = ?",
                                                      (oid,))}
        obj = conn.execute("SELECT has_photometry, phot_catalog, photo_z, photo_z_err_lo, photo_z_err_hi FROM objects "
                           "WHERE object_id = ?", (oid,)).fetchone()
        new_bands = {b: (float(f), float(e)) for b, f, e in ((b, *v) for b, v in bands.items())}
        if have == new_bands and tuple(obj) == (1, cat_name, z, lo, hi):
            continue
        conn.execute("DELETE FROM photometry WHERE object_id = ?", (oid,))
        writer.add_photometry([(oid, b, f, e, band_pivot(b)) for b, (f, e) in sorted(new_bands.items())])
        conn.execute("UPDATE objects SET has_photometry = 1, phot_catalog = ?, photo_z = ?, photo_z_err_lo = ?, "
                     "photo_z_err_hi = ?, updated_at = ? WHERE object_id = ?", (cat_name, z, lo, hi, stamp, oid))
        changed.add(oid)
    return changed, problems, unmatched
