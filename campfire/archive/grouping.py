"""Objects: spectra grouped by sky position, with IDs that never change.

A new spectrum joins, in order of preference:

1. the object of its own MSA target (``target_id``: the same source in the same
   observation, another grating);
2. the nearest object within the match radius (default 0.2″) — an object already in
   the archive or one founded earlier in this ingest — whatever its program or grating;
3. else it founds a new object, at its own position, named after its target
   (``<observation>_<source_id>``; ``-2``, ``-3`` ... if that name is taken).

New spectra are taken in order of observation date, then observation and source ID,
so the founder — whose name the object carries — is the first observation. Existing
spectra never move and existing objects keep their ID and position: re-ingesting, or
adding files, never renames an object.

Examples
--------
>>> g = ObjectGrouper(match_radius_arcsec=0.2, lookup_existing=lambda ra, dec, r: [], taken=lambda oid: False)
>>> g.assign('a_1', 'a', 150.0, 2.0), g.assign('b_7', 'b', 150.0 + 0.1 / 3600, 2.0), g.assign('c_9', 'c', 150.01, 2.0)
(('a_1', True), ('a_1', False), ('c_9', True))
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

from campfire.archive.names import separation_deg
from campfire.catalog.writer import unit_vector

__all__ = ["ObjectGrouper", "existing_objects_near"]


def _chord(arcsec: float) -> float:
    return 2.0 * math.sin(math.radians(arcsec / 3600.0) / 2.0)


class ObjectGrouper:
    """Assigns new spectra to objects (see the module docstring).

    Parameters
    ----------
    match_radius_arcsec : float
        Spectra closer than this to an object belong to it.
    lookup_existing : callable
        ``(ra, dec, radius_arcsec) -> [(object_id, ra, dec), ...]``: archive objects near a position.
    taken : callable
        ``object_id -> bool``: whether an ID is already used in the archive.
    target_object : callable, optional
        ``(target_id, observation) -> object_id or None``: the object of a target whose
        spectra are already in the archive.
    """

    def __init__(self, match_radius_arcsec: float, lookup_existing: Callable, taken: Callable[[str], bool],
                 target_object: Callable[[str, str], str | None] | None = None):
        self.radius = float(match_radius_arcsec)
        self.cell = _chord(self.radius)
        self.lookup_existing = lookup_existing
        self.taken = taken
        self.target_object = target_object or (lambda target, observation: None)
        self.by_target: dict[str, str] = {}
        self.new: dict[str, tuple[float, float]] = {}              # object_id -> (ra, dec) founded now
        self._grid: dict[tuple[int, int, int], list[str]] = {}     # unit-vector cells of the new objects

    def _key(self, v) -> tuple[int, int, int]:
        return tuple(int(math.floor(c / self.cell)) for c in v)

    def _near_new(self, ra: float, dec: float) -> list[tuple[str, float, float]]:
        kx, ky, kz = self._key(unit_vector(ra, dec))
        out = []
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for dz in (-1, 0, 1):
                    for oid in self._grid.get((kx + dx, ky + dy, kz + dz), ()):
                        out.append((oid, *self.new[oid]))
        return out

    def assign(self, target_id: str, observation: str, ra: float, dec: float) -> tuple[str, bool]:
        """The object of a new spectrum, and whether it is a new object."""
        known = self.by_target.get(target_id) or self.target_object(target_id, observation)
        if known is not None:
            self.by_target[target_id] = known
            return known, False
        candidates = list(self.lookup_existing(ra, dec, self.radius)) + self._near_new(ra, dec)
        best = None
        for oid, ora, odec in candidates:
            sep = separation_deg(ra, dec, ora, odec) * 3600.0
            if sep <= self.radius and (best is None or sep < best[0]):
                best = (sep, oid)
        if best is not None:
            self.by_target[target_id] = best[1]
            return best[1], False
        oid, n = target_id, 1
        while self.taken(oid) or oid in self.new:
            n += 1
            oid = f"{target_id}-{n}"
        self.new[oid] = (ra, dec)
        self._grid.setdefault(self._key(unit_vector(ra, dec)), []).append(oid)
        self.by_target[target_id] = oid
        return oid, True


def existing_objects_near(conn, ra: float, dec: float, radius_arcsec: float) -> Iterable[tuple[str, float, float]]:
    """Archive objects whose position lies within a box around (ra, dec) (the cone-search R*Tree)."""
    r = radius_arcsec / 3600.0
    cosd = max(math.cos(math.radians(dec)), 1e-6)
    dra = min(r / cosd, 180.0)
    boxes = [(ra - dra, ra + dra)]
    if ra - dra < 0:
        boxes.append((ra - dra + 360.0, 360.0))
    if ra + dra >= 360:
        boxes.append((0.0, ra + dra - 360.0))
    for lo, hi in boxes:
        yield from conn.execute(
            "SELECT o.object_id, o.ra, o.dec FROM objects_rtree t JOIN objects o ON o.rowid = t.id "
            "WHERE t.ra_max >= ? AND t.ra_min <= ? AND t.dec_max >= ? AND t.dec_min <= ?",
            (lo, hi, dec - r, dec + r),
        )
