"""Reviewers' inspections of objects: records that are never changed, and what a caller may see of them.

An inspection is one reviewer's judgement of one object — redshift, quality (0-4, the
reference's names), comment, issue flags, and the spectra it rests on with the sha256
each file had then (``spectra_seen``). Rows are only ever added (the schema refuses
updates and deletes); the object's ``redshift_inspected`` / ``redshift_quality`` /
``redshift`` are derived from them per visibility set
(:func:`campfire.catalog.aggregates.refresh_inspected`, by the rule of
:func:`campfire.catalog.consensus.consensus`).

Who sees what
    An inspection is visible to a caller who may see *every* spectrum in its
    ``spectra_seen`` (:func:`inspections_for`), so a grade resting on a proprietary
    spectrum reveals nothing to a non-member — not its record, not the derived fields.
Outdated
    An inspection is ``outdated`` when a spectrum it rests on now has another sha256
    (the file was reprocessed) or is gone from the catalog: it was made on an older
    version of the data. It still counts; the portal shows it.

Writers
    The server (``POST /objects/{id}/inspections``), the client on an archive root it
    owns (``Campfire.inspect``) and producers building an archive root (the demo
    builder; the ingest of graded tables, with reviewers such as ``dja:<initials>``)
    call :func:`add_inspection` / :func:`add_inspections` on a writable connection and
    commit. A producer that writes many records passes ``refresh=False`` and finishes
    with :func:`campfire.catalog.aggregates.refresh_standard_aggregates`, which
    derives the fields of every object once.

Examples
--------
>>> from campfire.catalog.db import catalog_path, connect
>>> conn = connect(catalog_path(root), readonly=False)                     # doctest: +SKIP
>>> with conn:                                                              # doctest: +SKIP
...     add_inspection(conn, 'ember_uds_p4_123456', 'ann', redshift=3.421, quality='secure')
>>> inspections_for(conn, 'ember_uds_p4_123456', Visibility.everything())  # doctest: +SKIP
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
import re
import sqlite3
from typing import Any, Iterable, Mapping, Sequence

from campfire.catalog.aggregates import refresh_inspected_everywhere
from campfire.catalog.consensus import consensus
from campfire.catalog.filters import QUALITY_NAMES, parse_quality
from campfire.catalog.visibility import Visibility
from campfire.catalog.writer import CatalogWriter
from campfire.errors import NotFoundError, ValidationError

__all__ = [
    "ISSUE_FLAGS",
    "MAX_COMMENT",
    "QUALITY_LABELS",
    "REVIEWER_RE",
    "add_inspection",
    "add_inspections",
    "consensus",
    "inspections_for",
    "parse_issues",
    "issue_names",
    "quality_name",
    "check_inspection",
]

ISSUE_FLAGS = {"BAD_SPECTRUM": 1, "WRONG_EXTRACTION": 2, "CONTAMINATED": 4}
QUALITY_LABELS = {v: k for k, v in QUALITY_NAMES.items()}
MAX_COMMENT = 2000
MAX_REDSHIFT = 30.0
# an account name, or a prefixed name for imported grades (dja:GB)
REVIEWER_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}(:[A-Za-z0-9_.\-]{1,64})?$")
_ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[0-9.:+\-Z]{0,20}$")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def quality_name(quality: int) -> str:
    """The reference's name of a quality (``4`` → ``'secure'``).

    Examples
    --------
    >>> quality_name(3)
    'probable'
    """
    return QUALITY_LABELS[int(quality)]


def parse_issues(value, name: str = "issues") -> int:
    """Issue flags as their bitmask: None, a list of names (case-insensitive) or an int 0-7.

    Examples
    --------
    >>> parse_issues(['bad_spectrum', 'CONTAMINATED']), parse_issues(None), parse_issues(2)
    (5, 0, 2)
    """
    allowed = ", ".join(ISSUE_FLAGS)
    if value is None:
        return 0
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if not 0 <= value <= sum(ISSUE_FLAGS.values()):
            raise ValidationError(f"{name}: expected a list of issue names ({allowed}) or a bitmask 0-7, got {value!r}")
        return int(value)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise ValidationError(f"{name}: expected a list of issue names ({allowed}), got {value!r}")
    mask = 0
    for item in value:
        key = item.strip().upper() if isinstance(item, str) else None
        if key not in ISSUE_FLAGS:
            raise ValidationError(f"{name}: unknown issue flag {item!r}; allowed: {allowed}")
        mask |= ISSUE_FLAGS[key]
    return mask


def issue_names(mask: int) -> list[str]:
    """The names of the flags set in ``mask``.

    Examples
    --------
    >>> issue_names(5)
    ['BAD_SPECTRUM', 'CONTAMINATED']
    """
    return [n for n, bit in ISSUE_FLAGS.items() if int(mask) & bit]


def check_inspection(*, reviewer: str, quality, redshift=None, comment: str | None = "", issues=None,
                     resolves_conflict: bool = False) -> dict[str, Any]:
    """Validate one inspection's values; the normalised values (quality as int, issues as a bitmask).

    Raises
    ------
    ValidationError
        A bad value, naming the parameter and what is allowed: ``quality`` 0-4 or a
        name; ``redshift`` a number in [0, 30] (required from quality 2 on);
        ``comment`` text of at most 2000 characters; ``issues`` known flag names.

    Examples
    --------
    >>> check_inspection(reviewer='ann', quality='probable', redshift=2.5)['quality']
    3
    """
    if not isinstance(reviewer, str) or not REVIEWER_RE.match(reviewer):
        raise ValidationError(f"reviewer: expected an account name (or prefix:name for imported grades), got {reviewer!r}")
    q = parse_quality(quality, "quality")
    if redshift is not None:
        if isinstance(redshift, bool) or not isinstance(redshift, numbers.Real):
            raise ValidationError(f"redshift: expected a number or None, got {redshift!r}")
        try:
            redshift = float(redshift)
        except OverflowError:  # a JSON integer of 400 digits
            redshift = math.inf
        if not (math.isfinite(redshift) and 0.0 <= redshift <= MAX_REDSHIFT):
            raise ValidationError(f"redshift: expected a number in [0, {MAX_REDSHIFT:g}], got {redshift!r}")
    if redshift is None and q >= 2:
        raise ValidationError(f"redshift: a grade of {q} ({quality_name(q)}) needs a redshift; "
                              "grades 0 (not_inspected) and 1 (impossible) may go without")
    comment = "" if comment is None else comment
    if not isinstance(comment, str):
        raise ValidationError(f"comment: expected text, got {type(comment).__name__}")
    if len(comment) > MAX_COMMENT:
        raise ValidationError(f"comment: at most {MAX_COMMENT} characters, got {len(comment)}")
    if "\0" in comment:
        raise ValidationError("comment: NUL characters are not allowed")
    if not isinstance(resolves_conflict, bool):
        raise ValidationError(f"resolves_conflict: expected true or false, got {resolves_conflict!r}")
    return {"reviewer": reviewer, "quality": q, "redshift": redshift, "comment": comment,
            "issues": parse_issues(issues), "resolves_conflict": resolves_conflict}


def _seen(conn: sqlite3.Connection, object_id: str, spectra_seen) -> str:
    """The ``spectra_seen`` JSON: the object's spectra (all, or those named) with their sha256."""
    current = {sid: h for sid, h in conn.execute(
        "SELECT spectrum_id, file_hash FROM spectra WHERE object_id = ? ORDER BY spectrum_id", (object_id,))}
    if spectra_seen is None:
        items = [(sid, h) for sid, h in current.items()]
    else:
        if isinstance(spectra_seen, (str, bytes)) or not isinstance(spectra_seen, Iterable):
            raise ValidationError(f"spectra_seen: expected a list of spectrum IDs, got {spectra_seen!r}")
        items = []
        for item in spectra_seen:
            if isinstance(item, str):
                sid, sha = item, None
            elif isinstance(item, Mapping):
                sid, sha = item.get("spectrum_id"), item.get("sha256")
            elif isinstance(item, Sequence) and len(item) == 2:
                sid, sha = item
            else:
                raise ValidationError(f"spectra_seen: expected spectrum IDs or (spectrum_id, sha256), got {item!r}")
            if sid not in current:
                raise ValidationError(f"spectra_seen: {sid!r} is not a spectrum of object {object_id!r}")
            items.append((sid, sha if sha is not None else current[sid]))
    if not items:
        raise ValidationError(f"spectra_seen: object {object_id!r} has no spectra to rest an inspection on")
    return json.dumps([{"spectrum_id": sid, "sha256": sha} for sid, sha in sorted(set(items))],
                      separators=(",", ":"))


def add_inspections(conn: sqlite3.Connection, records: Iterable[Mapping[str, Any]], *,
                    refresh: bool = True) -> list[int]:
    """Add inspection records (checked first; all or none are added); their ``inspection_id`` values.

    Parameters
    ----------
    conn : sqlite3.Connection
        A writable catalog connection; the caller commits (``with conn:``).
    records : iterable of mapping
        Each with ``object_id``, ``reviewer``, ``quality`` and optionally ``redshift``,
        ``comment``, ``issues`` (names or bitmask), ``resolves_conflict``,
        ``spectra_seen`` (spectrum IDs of the object, or ``{spectrum_id, sha256}``;
        default: all the object's spectra with their current sha256) and
        ``created_at`` (ISO text, when the judgement was made; default now — an
        imported grade keeps its own) and ``recorded_at`` (when the row enters this
        catalog: leave it to default to now, except in a reproducible build of a new
        archive).
    refresh : bool
        Re-derive the objects' inspection fields in every visibility set now. A
        producer writing a whole catalog passes False and refreshes the aggregates once
        at the end.

    Returns
    -------
    list of int

    Raises
    ------
    ValidationError
        A bad value in any record (nothing is added).
    NotFoundError
        An unknown object.

    Examples
    --------
    >>> with conn:                                                        # doctest: +SKIP
    ...     add_inspections(conn, [{'object_id': 'uds_1', 'reviewer': 'dja:GB', 'quality': 4,
    ...                             'redshift': 2.31, 'comment': 'Ha, [OIII]'}], refresh=False)
    """
    rows = []
    for rec in records:
        extra = set(rec) - {"object_id", "reviewer", "quality", "redshift", "comment", "issues",
                            "resolves_conflict", "spectra_seen", "created_at", "recorded_at"}
        if extra:
            raise ValidationError(f"unknown inspection field{'s' if len(extra) > 1 else ''} {', '.join(sorted(extra))}")
        object_id = rec.get("object_id")
        if not isinstance(object_id, str) or conn.execute(
                "SELECT 1 FROM objects WHERE object_id = ?", (object_id,)).fetchone() is None:
            raise NotFoundError(f"object {object_id!r} not found")
        v = check_inspection(reviewer=rec.get("reviewer"), quality=rec.get("quality"), redshift=rec.get("redshift"),
                             comment=rec.get("comment", ""), issues=rec.get("issues"),
                             resolves_conflict=rec.get("resolves_conflict", False))
        now = _now()
        times = {}
        for key in ("created_at", "recorded_at"):
            value = times[key] = rec.get(key) or now
            if not isinstance(value, str) or not _ISO_RE.match(value):
                raise ValidationError(f"{key}: expected ISO time text (YYYY-MM-DDTHH:MM:SS...), got {value!r}")
        rows.append((object_id, v["reviewer"], v["redshift"], v["quality"], v["comment"], v["issues"],
                     _seen(conn, object_id, rec.get("spectra_seen")), int(v["resolves_conflict"]),
                     times["created_at"], times["recorded_at"]))
    ids = CatalogWriter(conn).add_inspections(rows)
    if refresh and rows:
        refresh_inspected_everywhere(conn, {r[0] for r in rows})
    return ids


def add_inspection(conn: sqlite3.Connection, object_id: str, reviewer: str, *, quality, redshift=None,
                   comment: str = "", issues=None, spectra_seen=None, resolves_conflict: bool = False,
                   created_at: str | None = None, refresh: bool = True) -> dict[str, Any]:
    """Add one inspection and re-derive the object's fields; the stored record.

    Parameters are those of one record of :func:`add_inspections`; the caller commits.

    Returns
    -------
    dict
        The record as :func:`inspections_for` gives it (``inspection_id``, ``reviewer``,
        ``redshift``, ``quality``, ``quality_name``, ``comment``, ``issues``,
        ``spectra_seen``, ``resolves_conflict``, ``created_at``, ``outdated``).

    Examples
    --------
    >>> add_inspection(conn, 'ember_uds_p4_123456', 'ann', redshift=3.4211, quality='secure')  # doctest: +SKIP
    """
    (iid,) = add_inspections(conn, [{
        "object_id": object_id, "reviewer": reviewer, "quality": quality, "redshift": redshift,
        "comment": comment, "issues": issues, "spectra_seen": spectra_seen,
        "resolves_conflict": resolves_conflict, "created_at": created_at}], refresh=refresh)
    record = _records(conn, "i.inspection_id = ?", [iid])[0]
    del record["_programs"]
    return record


_SELECT = ("SELECT i.inspection_id, i.object_id, i.reviewer, i.redshift, i.quality, i.comment, i.issues, "
           "i.spectra_seen, i.resolves_conflict, i.created_at FROM inspections i")


def _records(conn: sqlite3.Connection, where: str, params: list) -> list[dict[str, Any]]:
    rows = conn.execute(f"{_SELECT} WHERE {where} ORDER BY i.created_at, i.inspection_id", params).fetchall()
    seen = {iid: json.loads(s) for iid, *_, s, _r, _c in rows}
    ids = sorted({item["spectrum_id"] for items in seen.values() for item in items})
    current: dict[str, tuple] = {}
    for k in range(0, len(ids), 500):
        chunk = ids[k:k + 500]
        current.update((sid, (h, p)) for sid, h, p in conn.execute(
            f"SELECT spectrum_id, file_hash, program_id FROM spectra WHERE spectrum_id IN ({','.join('?' * len(chunk))})",
            chunk))
    out = []
    for iid, oid, reviewer, z, q, comment, issues, _s, resolves, created in rows:
        items = seen[iid]
        out.append({
            "inspection_id": iid, "object_id": oid, "reviewer": reviewer, "redshift": z, "quality": q,
            "quality_name": quality_name(q), "comment": comment, "issues": issue_names(issues),
            "spectra_seen": items, "resolves_conflict": bool(resolves), "created_at": created,
            "outdated": any(current.get(it["spectrum_id"], (None,))[0] != it["sha256"] for it in items),
            "_programs": frozenset(current.get(it["spectrum_id"], (None, -1))[1] for it in items),
        })
    return out


def inspections_for(conn: sqlite3.Connection, object_id: str, visibility: Visibility) -> list[dict[str, Any]]:
    """The inspections of one object that ``visibility`` may see, oldest first.

    Parameters
    ----------
    conn : sqlite3.Connection
    object_id : str
    visibility : Visibility
        The caller's; a record is visible when every spectrum it rests on is.

    Returns
    -------
    list of dict
        Records as :func:`add_inspection` returns them; ``outdated`` is true when a
        spectrum they rest on has another sha256 now (or is gone).

    Examples
    --------
    >>> [r['reviewer'] for r in inspections_for(conn, 'ember_uds_p4_123456', Visibility.everything())]  # doctest: +SKIP
    ['demo-team']
    """
    records = _records(conn, "i.object_id = ?", [object_id])
    allowed = visibility.program_ids
    visible = [r for r in records if allowed is None or r["_programs"] <= allowed]
    for r in visible:
        del r["_programs"]
    return visible

