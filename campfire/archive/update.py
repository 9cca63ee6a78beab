"""The catalog side of an ingest: one transaction that brings the catalog up to date.

:class:`CatalogUpdate` works inside the caller's transaction on a catalog connection
that has the run's record store attached as ``stage`` (:mod:`campfire.archive.staging`),
streaming through the files ready to enter the catalog a chunk at a time:

1. duplicates: two inputs claiming one spectrum ID are settled (the archive's current
   owner keeps it; otherwise neither enters);
2. programs (programs.yaml, else public with the proposal ID as slug) and observations
   (with their field, :func:`campfire.archive.names.field_for`);
3. spectra — new ones get an object (:mod:`campfire.archive.grouping`), changed ones
   keep their IDs and object — their ``local_files`` rows, the ingest state and the
   journalled file moves (:mod:`campfire.archive.state`);
4. the automatic redshift of every touched object (its best public spectrum by S/N);
5. the withdrawal of vanished files when asked, and the object aggregates of every
   touched object. (Grades and photometry: :mod:`campfire.archive.attach`.)

Nothing is written for what did not change: ``updated_at`` moves only on rows whose
values do. Every outcome is written back to the run store (status, IDs, reason),
where the summary is read from.
"""
from __future__ import annotations

import os
import pathlib
import sqlite3
from dataclasses import replace
from typing import Any

from campfire.archive.grouping import ObjectGrouper, existing_objects_near
from campfire.archive.names import field_for
from campfire.archive.programs import ProgramSpec, ProgramsFile, default_program
from campfire.archive.sources import file_exists
from campfire.archive.staging import STAGE, iter_ready
from campfire.archive.state import IngestedFile, add_pending, forget_files, record_files
from campfire.catalog.aggregates import refresh_aggregates, visible_program_ids
from campfire.catalog.consensus import best_redshift
from campfire.catalog.writer import SPECTRUM_FIELDS, CatalogWriter, unit_vector
from campfire.io.fits import redshift_fit_side_path
from campfire.io.store import ProductStore

__all__ = ["CatalogUpdate"]

_SPECTRUM_DATA = ("target_id", "observation", "program_id", "grating", "filter", "signal_to_noise", "exposure_time",
                  "reduction_version", "redshift_auto", "dq_flags", "file_hash", "file_size", "n_pix", "wave_min",
                  "wave_max", "redshift_auto_lo", "redshift_auto_hi", "redshift_auto_confidence")
_NEW = "AND r.spectrum_id NOT IN (SELECT spectrum_id FROM main.spectra)"


class CatalogUpdate:
    """One ingest's changes to a catalog open in a transaction (see the module docstring).

    Parameters
    ----------
    conn : sqlite3.Connection
        Writable, inside ``BEGIN IMMEDIATE``, with the run store attached as ``stage``;
        the caller commits or rolls back.
    root : pathlib.Path
        The archive root.
    stamp : str
        ``updated_at`` of every row written.
    programs : ProgramsFile
        What programs.yaml says (may be empty).
    match_radius : float
        Object grouping radius [arcsec].
    mode : {'copy', 'link', 'in-place'}
        How products are held.
    store : ProductStore, optional
        Where products go (default ``<root>/products``; an object store takes copies only).
    """

    def __init__(self, conn: sqlite3.Connection, root: pathlib.Path, stamp: str, programs: ProgramsFile,
                 match_radius: float, mode: str, store: ProductStore | None = None):
        self.conn, self.root, self.stamp = conn, root, stamp
        self.store = store or ProductStore(root)
        self.programs_file, self.radius, self.mode = programs, match_radius, mode
        self.writer = CatalogWriter(conn)
        self.visibility_changed = False
        self.grants: dict[int, tuple[str, ...]] = {}
        self.obs_field: dict[str, str] = {}

    # -- outcomes ------------------------------------------------------------------------------
    def _set(self, idx: int, status: str, object_id: str = "", reason: str | None = None) -> None:
        if reason is None:
            self.conn.execute(f"UPDATE {STAGE}.records SET status = ?, object_id = ? WHERE idx = ?",
                              (status, object_id, idx))
        else:
            self.conn.execute(f"UPDATE {STAGE}.records SET status = ?, object_id = ?, reason = ? WHERE idx = ?",
                              (status, object_id, reason, idx))

    def _fail(self, idx: int, reason: str) -> None:
        self._set(idx, "failed", "", reason)

    def _touch(self, object_ids) -> None:
        self.conn.executemany(f"INSERT OR IGNORE INTO {STAGE}.touched (object_id) VALUES (?)",
                              [(o,) for o in object_ids])

    def touched(self, chunk: int = 5000):
        """The touched object IDs, ``chunk`` at a time."""
        ids = [r[0] for r in self.conn.execute(f"SELECT object_id FROM {STAGE}.touched ORDER BY object_id")]
        for k in range(0, len(ids), chunk):
            yield ids[k:k + chunk]

    # -- 1. duplicates -------------------------------------------------------------------------
    def settle_duplicates(self, found: set[str]) -> set[str]:
        """Keep one input per spectrum ID; the sources taken over from inputs that are gone."""
        conn = self.conn
        for (sid,) in conn.execute(f"SELECT spectrum_id FROM {STAGE}.records WHERE status = 'ready' "
                                   "GROUP BY spectrum_id HAVING count(*) > 1").fetchall():
            owner = conn.execute("SELECT source FROM ingest_files WHERE spectrum_id = ?", (sid,)).fetchone()
            owner = owner[0] if owner else None
            claims = conn.execute(f"SELECT idx, source FROM {STAGE}.records WHERE status = 'ready' AND spectrum_id = ? "
                                  "ORDER BY source", (sid,)).fetchall()
            names = ", ".join(s for _, s in claims)
            for idx, source in claims:
                if source == owner:
                    continue
                if owner in {s for _, s in claims}:
                    self._fail(idx, f"duplicate spectrum id {sid}: {owner} already holds it in the archive")
                else:
                    self._fail(idx, f"duplicate spectrum id {sid}: claimed by several files ({names}); "
                                    "remove or rename all but one")
        taken_over = set()
        for idx, sid, current in conn.execute(
                f"SELECT r.idx, r.spectrum_id, f.source FROM {STAGE}.records r JOIN ingest_files f "
                "ON f.spectrum_id = r.spectrum_id WHERE r.status = 'ready' AND f.source != r.source").fetchall():
            if current in found or file_exists(current):
                self._fail(idx, f"duplicate spectrum id {sid}: {current} already holds it in the archive")
                continue
            forget_files(conn, [current])  # the old input is gone: this one takes over the spectrum
            conn.execute(f"UPDATE {STAGE}.records SET reason = trim(reason || '; replaces ' || ? || ' (gone)', '; ') "
                         "WHERE idx = ?", (current, idx))
            taken_over.add(current)
        return taken_over

    # -- 2. programs and observations ----------------------------------------------------------
    def ensure_programs(self) -> None:
        """Create the programs the new files and programs.yaml name; update the ones programs.yaml changes."""
        found: dict[int, tuple[Any, Any]] = {}  # one file of each program: its TITLE and PI_NAME
        for chunk in iter_ready(self.conn, f"AND r.idx IN (SELECT min(idx) FROM {STAGE}.records WHERE status = 'ready' "
                                           "GROUP BY program_id)"):
            for rec in chunk:
                found.setdefault(rec["program_id"], (rec.get("program_title"), rec.get("pi_name")))
        existing = {r[0]: r for r in self.conn.execute(
            "SELECT program_id, slug, program_name, pi_name, is_public FROM programs")}
        listed = self.programs_file.programs
        for pid in sorted(set(found) | set(listed)):
            title, pi = found.get(pid, (None, None))
            old = existing.get(pid)
            spec = self._spec(pid, listed.get(pid), old, title, pi)
            if old is None:
                self.writer.add_programs([spec.row()])
            elif pid in listed and tuple(old) != spec.row():
                self.conn.execute("UPDATE programs SET slug = ?, program_name = ?, pi_name = ?, is_public = ? "
                                  "WHERE program_id = ?", spec.row()[1:] + (pid,))
                if bool(old[4]) != spec.is_public:
                    # every row of the program changes visibility: sync and the server's aggregates must see it
                    self.conn.execute("UPDATE spectra SET updated_at = ? WHERE program_id = ?", (self.stamp, pid))
                    self.visibility_changed = True
            if spec.members:
                self.grants[pid] = spec.members

    @staticmethod
    def _spec(pid: int, listed: ProgramSpec | None, old, title, pi) -> ProgramSpec:
        base = default_program(pid, title, pi) if old is None else ProgramSpec(pid, old[1], old[2], old[3], bool(old[4]))
        if listed is None:
            return base
        return replace(listed, program_name=listed.program_name or base.program_name,
                       pi_name=listed.pi_name or base.pi_name)

    def ensure_observations(self) -> None:
        """Create the observations of new spectra; a file whose observation belongs to another program fails."""
        known = {r[0]: r[1:] for r in self.conn.execute("SELECT observation, program_id, field, ra, dec FROM observations")}
        fields = [(f, ra, dec) for _, f, ra, dec in known.values()]
        new_rows = []
        for chunk in iter_ready(self.conn, _NEW):
            for rec in chunk:
                obs = rec["observation"]
                if obs in known:
                    if known[obs][0] != rec["program_id"]:
                        self._fail(rec["idx"], f"observation {obs!r} belongs to program {known[obs][0]} in the archive, "
                                               f"but this file says program {rec['program_id']} (from its "
                                               f"{rec['program_from']})")
                    continue
                ra = rec["pointing_ra"] if rec.get("pointing_ra") is not None else rec["ra"]
                dec = rec["pointing_dec"] if rec.get("pointing_dec") is not None else rec["dec"]
                fld = self.programs_file.fields.get(obs) or field_for(ra, dec, fields)
                known[obs] = (rec["program_id"], fld, ra, dec)
                fields.append((fld, ra, dec))
                new_rows.append((obs, rec["program_id"], fld, ra, dec, rec.get("pa_v3"), rec.get("observed_at")))
        self.writer.add_observations(new_rows)
        self.obs_field = {obs: v[1] for obs, v in known.items()}

    # -- 3. spectra and objects ----------------------------------------------------------------
    def write_spectra(self) -> None:
        """Insert new spectra (and their objects), update changed ones, journal their files; chunk by chunk."""
        conn = self.conn
        for chunk in iter_ready(conn):
            existing = {}
            for sid, *rest in conn.execute(
                    "SELECT s.spectrum_id, s.object_id, s.fits_path, s.observation, s.target_id, s.program_id, f.mode "
                    "FROM spectra s LEFT JOIN ingest_files f ON f.spectrum_id = s.spectrum_id "
                    f"WHERE s.spectrum_id IN ({_marks(chunk)})", [r["spectrum_id"] for r in chunk]):
                existing[sid] = rest
            # per chunk: what earlier chunks wrote is in the catalog (and the R*Tree) by now
            grouper = ObjectGrouper(
                self.radius, lambda ra, dec, r: existing_objects_near(conn, ra, dec, r),
                lambda oid: conn.execute("SELECT 1 FROM objects WHERE object_id = ?", (oid,)).fetchone() is not None,
                lambda target, obs: _target_object(conn, target, obs),
            )
            new_objects, inserts, local, state_rows, pending, outcomes = [], [], [], [], [], []
            for rec in chunk:
                sid = rec["spectrum_id"]
                old = existing.get(sid)
                if old is not None:  # a spectrum keeps the identity it was given (IDs never change)
                    rec["observation"], rec["target_id"], rec["program_id"] = old[2], old[3], old[4]
                fits_path = self._place_files(rec, old[1] if old else None, old[5] if old else None, pending)
                values = [rec[c] for c in _SPECTRUM_DATA]
                if old is not None:
                    oid = old[0]
                    sets = ", ".join(f"{c} = ?" for c in _SPECTRUM_DATA)
                    conn.execute(f"UPDATE spectra SET {sets}, fits_path = ?, updated_at = ? WHERE spectrum_id = ?",
                                 values + [fits_path, self.stamp, sid])
                    outcomes.append(("updated", oid, rec["idx"]))
                else:
                    oid, is_new = grouper.assign(rec["target_id"], rec["observation"], rec["ra"], rec["dec"])
                    if is_new:
                        new_objects.append((oid, self.obs_field[rec["observation"]], rec["ra"], rec["dec"],
                                            *unit_vector(rec["ra"], rec["dec"]), None, None, None, 0, 0, None, None,
                                            None, None, self.stamp))
                    row = {**rec, "object_id": oid, "fits_path": fits_path, "updated_at": self.stamp}
                    inserts.append(tuple(row[f] for f in SPECTRUM_FIELDS))
                    outcomes.append(("new", oid, rec["idx"]))
                local.append((sid, rec["file_hash"], rec["file_size"], self.stamp))
                state_rows.append((rec["source"], sid, rec["stamp"], rec["source_sha256"], self.mode,
                                   int(rec["fitted"]), self.stamp))
            self.writer.add_objects(new_objects)
            self.writer.index_objects([o[0] for o in new_objects])
            self.writer.add_spectra(inserts)
            self.writer.add_local_files(local, replace=True)
            record_files(conn, state_rows)
            add_pending(conn, pending)
            conn.executemany(f"UPDATE {STAGE}.records SET status = ?, object_id = ? WHERE idx = ?", outcomes)
            self._touch({oid for _, oid, _ in outcomes})

    def _place_files(self, rec: dict[str, Any], old_path: str | None, old_mode: str | None, pending: list) -> str:
        """The catalog ``fits_path`` of a record, journalling the file operations that put it there."""
        root, store = self.root, self.store
        if self.mode == "in-place":
            rel = os.path.relpath(rec["source"], root)
            side = redshift_fit_side_path(rec["source"])
        else:
            rel = f"products/{rec['observation']}/{rec['spectrum_id']}.spec.fits"
            side = redshift_fit_side_path(store.location(rel))
            if self.mode == "copy":
                pending.append(("move", rec["staged"], store.location(rel)))
            else:
                pending.append(("link", rec["source"], store.location(rel)))
        if rec.get("staged_fit"):
            pending.append(("move", rec["staged_fit"], side))
        elif not store.is_remote:  # the fit is in the file (copy), or there is none: no stale side file may stay
            pending.append(("delete", None, side))  # (an object store only ever holds copies: no side files)
        if old_path and old_path != rel and old_mode in ("copy", "link"):  # our old copy or link, never an input
            pending.append(("delete", None, store.location(old_path)))
            if not store.is_remote:
                pending.append(("delete", None, redshift_fit_side_path(store.location(old_path))))
        return rel

    # -- 4. automatic redshifts ----------------------------------------------------------------
    def refresh_redshift_auto(self) -> None:
        """Each touched object's automatic redshift: that of its best (S/N) spectrum of a public program, else of any."""
        for ids in self.touched(500):
            rows = self.conn.execute(
                "SELECT o.object_id, o.redshift_auto, o.redshift, o.redshift_inspected, o.redshift_quality, "
                "(SELECT s.redshift_auto FROM spectra s JOIN programs p USING (program_id) "
                " WHERE s.object_id = o.object_id AND s.redshift_auto IS NOT NULL "
                " ORDER BY p.is_public DESC, s.signal_to_noise IS NULL, s.signal_to_noise DESC, s.spectrum_id LIMIT 1) "
                f"FROM objects o WHERE o.object_id IN ({_marks(ids)})", ids).fetchall()
            for oid, z_old, best_old, z_insp, quality, z_auto in rows:
                best = best_redshift(z_insp, quality, z_auto)
                if z_auto != z_old or best != best_old:
                    self.conn.execute("UPDATE objects SET redshift_auto = ?, redshift = ?, updated_at = ? "
                                      "WHERE object_id = ?", (z_auto, best, self.stamp, oid))

    # -- 5. withdrawals and aggregates ---------------------------------------------------------
    def withdraw(self, gone: list[IngestedFile]) -> list[tuple[str, str, str]]:
        """Remove the spectra of vanished inputs (and objects left without spectra); (source, spectrum, object) each."""
        done, pending = [], []
        for f in gone:
            row = self.conn.execute("SELECT object_id, fits_path FROM spectra WHERE spectrum_id = ?",
                                    (f.spectrum_id,)).fetchone()
            forget_files(self.conn, [f.source])
            if row is None:
                continue
            oid, fits_path = row
            self.conn.execute("DELETE FROM local_files WHERE spectrum_id = ?", (f.spectrum_id,))
            self.conn.execute("DELETE FROM spectra WHERE spectrum_id = ?", (f.spectrum_id,))
            if f.mode != "in-place":
                pending.append(("delete", None, self.store.location(fits_path)))
            if not self.store.is_remote:
                pending.append(("delete", None, redshift_fit_side_path(self.store.location(fits_path))))
            done.append((f.source, f.spectrum_id, oid))
            self._touch([oid])
            if self.conn.execute("SELECT 1 FROM spectra WHERE object_id = ? LIMIT 1", (oid,)).fetchone() is None:
                for table in ("photometry", "object_tags", "object_aggregates"):
                    self.conn.execute(f"DELETE FROM {table} WHERE object_id = ?", (oid,))
                self.conn.execute("DELETE FROM objects_rtree WHERE id = (SELECT rowid FROM objects WHERE object_id = ?)",
                                  (oid,))
                self.conn.execute("DELETE FROM objects WHERE object_id = ?", (oid,))
        add_pending(self.conn, pending)
        return done

    def refresh_aggregates(self) -> None:
        """Object aggregates of the touched objects, for everyone ('*') and the public ('')."""
        public = visible_program_ids(self.conn, "")
        for ids in self.touched():
            refresh_aggregates(self.conn, "*", None, object_ids=ids)
            if not self.visibility_changed:
                refresh_aggregates(self.conn, "", public, object_ids=ids)
        if self.visibility_changed:
            refresh_aggregates(self.conn, "", public)


def _target_object(conn: sqlite3.Connection, target_id: str, observation: str) -> str | None:
    """The object of a target already in the archive (through the observation index)."""
    row = conn.execute("SELECT object_id FROM spectra WHERE observation = ? AND target_id = ? LIMIT 1",
                       (observation, target_id)).fetchone()
    return row[0] if row else None


def _marks(items) -> str:
    return ",".join("?" * len(list(items)))
