"""Cross-spectrum aggregates per visibility set (the ``object_aggregates`` table).

One SQL statement computes, for every object with at least one visible spectrum, the
number of visible spectra, their best signal-to-noise and longest exposure, and the
sorted program slugs and gratings. Objects with no visible spectrum get no row, so a
query that joins ``object_aggregates`` on a visibility key never reveals them.

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

import sqlite3
from typing import Iterable

from campfire.errors import ValidationError

__all__ = ["refresh_aggregates", "refresh_standard_aggregates", "visible_program_ids", "visibility_key"]


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
        for i in range(0, len(objects), 500):  # bounded SQL parameter lists
            total += _refresh(conn, visibility_key, program_ids, objects[i:i + 500])
        return total
    return _refresh(conn, visibility_key, program_ids, None)


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
    cur = conn.execute(
        f"""INSERT INTO object_aggregates
                (visibility, object_id, n_spectra, max_snr, max_exposure_time, programs, gratings)
            SELECT ?, s.object_id, count(*), max(s.signal_to_noise), max(s.exposure_time),
                   campfire_sorted_concat(p.slug), campfire_sorted_concat(s.grating)
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
