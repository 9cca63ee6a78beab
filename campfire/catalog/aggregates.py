"""Cross-spectrum aggregates per visibility set (the ``object_aggregates`` table).

One SQL statement computes, for every object with at least one visible spectrum, the
number of visible spectra, their best signal-to-noise and longest exposure, and the
sorted program slugs and gratings. Objects with no visible spectrum get no row, so a
query that joins ``object_aggregates`` on a visibility key never reveals them.

The inspection fields (``redshift``, ``redshift_inspected``, ``redshift_quality``, the
consensus ``inspection_state`` and ``n_reviewers``, and ``inspected_at``) are derived by
:func:`refresh_inspected` from the inspections the set may see — those whose every
seen spectrum belongs to a visible program — with
:func:`campfire.catalog.consensus.consensus`. Under ``'*'`` they are also written to
the ``objects`` row (and, by the schema's triggers, to the spectra's copies), so the
pipeline's own catalog and a client's synced copy read the same values from both.

The visibility keys (schema.sql): ``'*'`` every program, ``''`` the public programs
only, or the comma-joined sorted ids of the proprietary programs a caller may see
(in addition to the public ones). The pipeline (demo builder), the server and
``sync()`` all call :func:`refresh_aggregates`.

Examples
--------
>>> import sqlite3
>>> from campfire.catalog.aggregates import refresh_aggregates, visible_program_ids
>>> conn = sqlite3.connect(':memory:')  # doctest: +SKIP
>>> refresh_aggregates(conn, '*', None)  # doctest: +SKIP
>>> refresh_aggregates(conn, '', visible_program_ids(conn, ''))  # doctest: +SKIP
"""
from __future__ import annotations

import json
import sqlite3
from typing import Iterable

from campfire.catalog.consensus import best_redshift, consensus
from campfire.errors import ValidationError

__all__ = ["refresh_aggregates", "refresh_standard_aggregates", "refresh_inspected", "refresh_inspected_everywhere",
           "visible_program_ids", "visibility_key", "visibility_keys", "inspection_programs"]

_CHUNK = 500  # bounded SQL parameter lists


class _SortedConcat:
    """Aggregate: the sorted distinct non-null values, comma-joined."""

    def __init__(self):
        self.values: set[str] = set()

    def step(self, value):
        if value is not None:
            self.values.add(str(value))

    def finalize(self):
        return ",".join(sorted(self.values))


def visibility_key(proprietary_ids: Iterable[int] | None) -> str:
    """The key of a visibility set: ``'*'`` for None (everything), else the sorted ids.

    Examples
    --------
    >>> visibility_key(None), visibility_key([]), visibility_key([6032, 17])
    ('*', '', '17,6032')
    """
    if proprietary_ids is None:
        return "*"
    return ",".join(str(int(p)) for p in sorted(set(int(p) for p in proprietary_ids)))


def visible_program_ids(conn: sqlite3.Connection, key: str) -> list[int] | None:
    """Program ids visible under a key: None for ``'*'``, else public ∪ the listed ones."""
    if key == "*":
        return None
    ids = {int(r[0]) for r in conn.execute("SELECT program_id FROM programs WHERE is_public = 1")}
    if key:
        try:
            ids |= {int(p) for p in key.split(",")}
        except ValueError as err:
            raise ValidationError(
                f"visibility_key: expected '*', '' or comma-joined program ids, got {key!r}"
            ) from err
    return sorted(ids)


def refresh_aggregates(conn: sqlite3.Connection, visibility_key: str,
                       program_ids: Iterable[int] | None, object_ids: Iterable[str] | None = None) -> int:
    """(Re)compute the ``object_aggregates`` rows of one visibility set.

    Parameters
    ----------
    conn : sqlite3.Connection
        A writable catalog connection (the caller commits).
    visibility_key : str
        ``'*'``, ``''`` or comma-joined sorted proprietary program ids.
    program_ids : iterable of int or None
        The programs whose spectra count (public ones included); None = every program.
        :func:`visible_program_ids` derives it from the key.
    object_ids : iterable of str, optional
        Only these objects' rows (the server refreshes the objects whose spectra
        changed); None = every object.

    Returns
    -------
    int
        The number of rows written (objects with at least one visible spectrum).

    Examples
    --------
    >>> n = refresh_aggregates(conn, '', visible_program_ids(conn, ''))  # doctest: +SKIP
    """
    if not isinstance(visibility_key, str):
        raise ValidationError(f"visibility_key: expected a string ('*', '' or ids), got {visibility_key!r}")
    program_ids = None if program_ids is None else list(program_ids)  # read once per chunk below
    if object_ids is not None:
        objects = sorted(set(object_ids))
        total = 0
        for i in range(0, len(objects), _CHUNK):
            total += _refresh(conn, visibility_key, program_ids, objects[i:i + _CHUNK])
        refresh_inspected(conn, visibility_key, program_ids, objects)
        return total
    total = _refresh(conn, visibility_key, program_ids, None)
    refresh_inspected(conn, visibility_key, program_ids)
    return total


def _refresh(conn: sqlite3.Connection, visibility_key: str, program_ids, objects: list[str] | None) -> int:
    obj_sql, obj_params = "", []
    if objects is not None:
        obj_sql = f" AND object_id IN ({','.join('?' * len(objects))})"
        obj_params = list(objects)
    conn.execute("DELETE FROM object_aggregates WHERE visibility = ?" + obj_sql, [visibility_key] + obj_params)
    params: list = [visibility_key]
    clauses = []
    if program_ids is not None:
        ids = sorted({int(p) for p in program_ids})
        if not ids:
            return 0
        clauses.append(f"s.program_id IN ({','.join('?' * len(ids))})")
        params += ids
    if objects is not None:
        clauses.append(f"s.object_id IN ({','.join('?' * len(objects))})")
        params += obj_params
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    # SQLite 3.40 has no ORDER BY inside group_concat: a small Python aggregate sorts
    conn.create_aggregate("campfire_sorted_concat", 1, _SortedConcat)
    # the inspection fields start as "not inspected" (refresh_inspected fills them in)
    cur = conn.execute(
        f"""INSERT INTO object_aggregates
                (visibility, object_id, n_spectra, max_snr, max_exposure_time, programs, gratings, redshift)
            SELECT ?, s.object_id, count(*), max(s.signal_to_noise), max(s.exposure_time),
                   campfire_sorted_concat(p.slug), campfire_sorted_concat(s.grating),
                   (SELECT o.redshift_auto FROM objects o WHERE o.object_id = s.object_id)
            FROM spectra s JOIN programs p ON p.program_id = s.program_id
            {where}
            GROUP BY s.object_id""",
        params,
    )
    n = cur.rowcount
    return int(n)


def refresh_standard_aggregates(conn: sqlite3.Connection) -> dict[str, int]:
    """Refresh the two sets every archive has: ``'*'`` (all) and ``''`` (public only)."""
    return {
        "*": refresh_aggregates(conn, "*", None),
        "": refresh_aggregates(conn, "", visible_program_ids(conn, "")),
    }


# ------------------------------------------------------------------ inspection fields
def visibility_keys(conn: sqlite3.Connection) -> list[str]:
    """The visibility keys that have rows in ``object_aggregates`` (``'*'`` and ``''`` at least, once built)."""
    return [r[0] for r in conn.execute("SELECT DISTINCT visibility FROM object_aggregates ORDER BY visibility")]


def inspection_programs(conn: sqlite3.Connection, spectra_seen: str) -> frozenset[int]:
    """The programs of the spectra an inspection rests on (``-1`` for a spectrum no longer in the catalog).

    Parameters
    ----------
    conn : sqlite3.Connection
    spectra_seen : str
        The inspection's ``spectra_seen`` JSON.
    """
    ids = [item["spectrum_id"] for item in json.loads(spectra_seen)]
    found = dict(conn.execute(
        f"SELECT spectrum_id, program_id FROM spectra WHERE spectrum_id IN ({','.join('?' * len(ids))})", ids))
    return frozenset(found.get(sid, -1) for sid in ids)


def _inspection_records(conn: sqlite3.Connection, objects: list[str] | None) -> dict[str, list[dict]]:
    """Every inspection of ``objects`` (None: of all objects) by object, with the programs it rests on."""
    programs = ("(SELECT group_concat(coalesce(s.program_id, -1)) FROM json_each(i.spectra_seen) j "
                "LEFT JOIN spectra s ON s.spectrum_id = json_extract(j.value, '$.spectrum_id'))")
    select = (f"SELECT i.object_id, i.inspection_id, i.reviewer, i.redshift, i.quality, i.resolves_conflict, "
              f"i.created_at, i.recorded_at, {programs} FROM inspections i")
    chunks = [None] if objects is None else [objects[k:k + _CHUNK] for k in range(0, len(objects), _CHUNK)]
    out: dict[str, list[dict]] = {}
    for chunk in chunks:
        sql, params = select, []
        if chunk is not None:
            sql += f" WHERE i.object_id IN ({','.join('?' * len(chunk))})"
            params = chunk
        for oid, iid, reviewer, z, quality, resolves, created, recorded, progs in conn.execute(sql, params):
            out.setdefault(oid, []).append({
                "inspection_id": iid, "reviewer": reviewer, "redshift": z, "quality": quality,
                "resolves_conflict": resolves, "created_at": created, "recorded_at": recorded,
                "programs": frozenset(int(p) for p in progs.split(",")) if progs else frozenset({-1}),
            })
    return out


def _derived(records: list[dict], program_ids: frozenset[int] | None) -> tuple | None:
    """(redshift_inspected, quality, state, n_reviewers, inspected_at) from the visible ``records``; None if none."""
    visible = records if program_ids is None else [r for r in records if r["programs"] <= program_ids]
    if not visible:
        return None
    c = consensus(visible)
    return c["redshift"], c["quality"], c["state"], c["n_reviewers"], max(r["recorded_at"] for r in visible)


def refresh_inspected(conn: sqlite3.Connection, visibility_key: str, program_ids: Iterable[int] | None,
                      object_ids: Iterable[str] | None = None, *,
                      records: dict[str, list[dict]] | None = None) -> int:
    """(Re)derive the inspection fields of one visibility set from the inspections it may see.

    An inspection is visible to the set when every spectrum it rests on belongs to one
    of ``program_ids`` (None: every program — the ``'*'`` set). The consensus of the
    visible ones gives ``redshift_inspected``, ``redshift_quality``,
    ``inspection_state`` and ``n_reviewers``; ``redshift`` is the inspected one when
    the quality is 2 or more, else the object's automatic one; ``inspected_at`` is the
    time the latest visible inspection was recorded (an exported object's ``updated_at``
    is the later of its own and this). Under ``'*'`` the ``objects`` rows get the same values (only
    rows that change are written).

    Parameters
    ----------
    conn : sqlite3.Connection
        A writable catalog connection (the caller commits).
    visibility_key : str
    program_ids : iterable of int or None
        The set's visible programs (:func:`visible_program_ids`).
    object_ids : iterable of str, optional
        Only these objects (None: all).
    records : dict, optional
        The objects' inspections as :func:`_inspection_records` reads them (when the
        caller refreshes several sets at once).

    Returns
    -------
    int
        The number of objects with visible inspections in the set.

    Examples
    --------
    >>> refresh_inspected(conn, '', visible_program_ids(conn, ''), ['ember_uds_p4_123456'])  # doctest: +SKIP
    1
    """
    objects = None if object_ids is None else sorted(set(object_ids))
    progs = None if program_ids is None else frozenset(int(p) for p in program_ids)
    # back to "not inspected", then the consensus of the objects with visible inspections
    auto_sql = "(SELECT o.redshift_auto FROM objects o WHERE o.object_id = object_aggregates.object_id)"
    reset = ("UPDATE object_aggregates SET redshift_inspected = NULL, redshift_quality = 0, inspection_state = 'none', "
             f"n_reviewers = 0, inspected_at = NULL, redshift = {auto_sql} WHERE visibility = ?")
    if objects is None:  # rows just inserted by refresh_aggregates are already reset
        conn.execute(reset + " AND (inspected_at IS NOT NULL OR redshift_quality != 0 OR redshift_inspected IS NOT NULL"
                     f" OR inspection_state != 'none' OR redshift IS NOT {auto_sql})", [visibility_key])
        if visibility_key == "*":
            conn.execute(_UNGRADED + " AND object_id NOT IN (SELECT object_id FROM inspections)")
        # a whole catalog's records, a few thousand objects at a time: bounded memory
        graded = [r[0] for r in conn.execute("SELECT DISTINCT object_id FROM inspections ORDER BY object_id")]
        batches = (_inspection_records(conn, graded[k:k + 5000]) for k in range(0, len(graded), 5000))
    else:
        for k in range(0, len(objects), _CHUNK):
            chunk = objects[k:k + _CHUNK]
            conn.execute(reset + f" AND object_id IN ({','.join('?' * len(chunk))})", [visibility_key] + chunk)
        batches = iter([records if records is not None else _inspection_records(conn, objects)])
    total = 0
    for batch in batches:
        rows = [(oid, *derived) for oid, recs in batch.items() if (derived := _derived(recs, progs)) is not None]
        auto = _redshift_auto(conn, [r[0] for r in rows])
        conn.executemany(
            "UPDATE object_aggregates SET redshift_inspected = ?, redshift_quality = ?, inspection_state = ?, "
            "n_reviewers = ?, inspected_at = ?, redshift = ? WHERE visibility = ? AND object_id = ?",
            [(z, q, state, n, at, best_redshift(z, q, auto.get(oid)), visibility_key, oid)
             for oid, z, q, state, n, at in rows])
        if visibility_key == "*":
            _write_objects(conn, rows, auto)
        total += len(rows)
    if visibility_key == "*" and objects is not None:
        rest = sorted(set(objects) - _has_inspections(conn, objects))
        for k in range(0, len(rest), _CHUNK):
            chunk = rest[k:k + _CHUNK]
            conn.execute(_UNGRADED + f" AND object_id IN ({','.join('?' * len(chunk))})", chunk)
    return total


# the '*' values of an object without inspections (only rows that differ: each write fires the copy triggers)
_UNGRADED = ("UPDATE objects SET redshift = redshift_auto, redshift_inspected = NULL, redshift_quality = 0 "
             "WHERE (redshift IS NOT redshift_auto OR redshift_inspected IS NOT NULL OR redshift_quality != 0)")


def _has_inspections(conn: sqlite3.Connection, objects: list[str]) -> set[str]:
    out = set()
    for k in range(0, len(objects), _CHUNK):
        chunk = objects[k:k + _CHUNK]
        out.update(r[0] for r in conn.execute(
            f"SELECT DISTINCT object_id FROM inspections WHERE object_id IN ({','.join('?' * len(chunk))})", chunk))
    return out


def _redshift_auto(conn: sqlite3.Connection, object_ids: list[str]) -> dict[str, float | None]:
    out = {}
    for k in range(0, len(object_ids), _CHUNK):
        chunk = object_ids[k:k + _CHUNK]
        out.update(conn.execute(
            f"SELECT object_id, redshift_auto FROM objects WHERE object_id IN ({','.join('?' * len(chunk))})", chunk))
    return out


def _write_objects(conn: sqlite3.Connection, rows: list[tuple], auto: dict[str, float | None]) -> None:
    """The ``'*'`` values of graded objects into ``objects`` (only rows that differ)."""
    values = [(best_redshift(z, q, auto.get(oid)), z, q, oid) for oid, z, q, *_ in rows]
    conn.executemany(
        "UPDATE objects SET redshift = ?1, redshift_inspected = ?2, redshift_quality = ?3 WHERE object_id = ?4 "
        "AND (redshift IS NOT ?1 OR redshift_inspected IS NOT ?2 OR redshift_quality IS NOT ?3)", values)


def refresh_inspected_everywhere(conn: sqlite3.Connection, object_ids: Iterable[str]) -> None:
    """Re-derive the inspection fields of ``object_ids`` in every visibility set the catalog holds.

    What a writer calls after adding inspections (:func:`campfire.catalog.inspections.add_inspection`
    does): the objects' inspections are read once and every set gets its own consensus.
    """
    objects = sorted(set(object_ids))
    records = _inspection_records(conn, objects)
    keys = set(visibility_keys(conn)) | {"*"}
    for key in sorted(keys):
        refresh_inspected(conn, key, visible_program_ids(conn, key), objects, records=records)
