"""DJA visual grades → campfire redshift quality: the one place the mapping is defined.

DJA's visual-inspection ``grade`` (dawn-cph/dja, NIRSpec merged table v4) and
campfire's ``redshift_quality`` (SCIENCE.md) map as follows:

=========  ==========================================================  ==================
DJA grade  DJA meaning                                                 campfire quality
=========  ==========================================================  ==================
 3         robust redshift from one or more emission/absorption features  4 secure
 2         ambiguous: continuum features, one line or low-confidence lines 2 tentative
 1         no clear features to constrain the redshift                 1 impossible
 0         the spectrum suffers a data-quality problem                 1 impossible
−1         not fit / not graded (or no grade at all)                   0 not_inspected
=========  ==========================================================  ==================

Why: DJA's 3 is what campfire calls secure; its 2 names an *ambiguous* solution,
which is campfire's tentative (nothing in DJA's scale says "probable", so campfire's 3
is not used); 1 and 0 both mean no redshift can be read from the spectrum
(impossible), for a physical or a data reason; −1 is no judgement at all.

A graded row becomes a :class:`Judgement` and is stored as an inspection record
(:mod:`campfire.catalog.inspections`): reviewer ``dja:<initials>``, the campfire quality,
the row's comment, and ``spectra_seen`` = the row's spectrum with its sha256 — so a
grade of a proprietary spectrum stays invisible to non-members. The redshift of a
judgement is the row's ``z_best`` (DJA's best redshift of the source; ``zgrade``, the
redshift of the visual inspection, only when ``z_best`` is missing), and only for
quality ≥ 2: a grade of 1 or 0 says there is no redshift to trust. What an object
shows is the consensus of its records (:mod:`campfire.catalog.consensus`).

DJA grades each *spectrum*; the consensus counts each reviewer's *latest* record of an
object. So the rows of one reviewer on one object are stored together, in increasing
quality (the best-graded spectrum is that reviewer's latest word: a robust redshift
from any grating makes the object's redshift robust), and only when that group of rows
changed since the last ingest (its signature is kept in ``ingest_grades``): an
unchanged table adds nothing, a changed grade adds the group again — records are
history, never edited.

Examples
--------
>>> [quality_from_dja_grade(g) for g in (3, 2, 1, 0, -1, None)]
[4, 2, 1, 1, 0, 0]
"""
from __future__ import annotations

import json
import math
import re
import sqlite3
from dataclasses import dataclass
from typing import Any, Iterable

from campfire.errors import ValidationError

__all__ = ["DJA_GRADE_QUALITY", "quality_from_dja_grade", "Judgement", "judgement_from_row", "store_judgements",
           "reviewer_name"]

DJA_GRADE_QUALITY: dict[int, int] = {3: 4, 2: 2, 1: 1, 0: 1, -1: 0}


def quality_from_dja_grade(grade: Any) -> int:
    """campfire's redshift quality (0–4) of a DJA grade (3, 2, 1, 0, −1; None/NaN = not graded).

    Raises
    ------
    ValidationError
        A grade outside DJA's scale.
    """
    if grade is None or (isinstance(grade, float) and math.isnan(grade)):
        return 0
    try:
        value = int(grade)
    except (TypeError, ValueError):
        raise ValidationError(f"grade: expected a DJA grade (3, 2, 1, 0 or -1), got {grade!r}") from None
    if value != grade or value not in DJA_GRADE_QUALITY:
        raise ValidationError(f"grade: expected a DJA grade (3, 2, 1, 0 or -1), got {grade!r}")
    return DJA_GRADE_QUALITY[value]


@dataclass(frozen=True)
class Judgement:
    """One reviewer's verdict on one object (a graded DJA table row)."""

    object_id: str
    reviewer: str                               # dja:<initials>
    redshift: float | None                      # None unless quality >= 2
    quality: int                                # campfire 1-4 (0 is never stored)
    comment: str
    spectra: tuple[tuple[str, str], ...]        # (spectrum_id, sha256) the grade rests on
    dja_grade: int
    source: str                                 # where it came from, e.g. "dja.csv row 12"


def reviewer_name(initials: Any) -> str:
    """``dja:<initials>`` (characters outside letters, digits, '.', '_', '-' dropped; ``dja:unknown`` if none).

    Examples
    --------
    >>> reviewer_name(' GB '), reviewer_name('a b'), reviewer_name(None)
    ('dja:GB', 'dja:ab', 'dja:unknown')
    """
    text = re.sub(r"[^A-Za-z0-9_.-]", "", str(initials or ""))[:64]
    return f"dja:{text or 'unknown'}"


def judgement_from_row(row: dict[str, Any], object_id: str, spectra: Iterable[tuple[str, str]],
                       source: str) -> Judgement | None:
    """The judgement of a DJA table row (``grade``, ``z_best``, ``zgrade``, ``reviewer``, ``comment``); None if ungraded.

    Raises
    ------
    ValidationError
        A grade of 2 or 3 with neither ``z_best`` nor ``zgrade``: a redshift grade without a redshift.
    """
    quality = quality_from_dja_grade(row.get("grade"))
    if quality == 0:
        return None
    z = row.get("z_best")
    if z is None or not math.isfinite(z) or z < 0:
        z = row.get("zgrade")
    if z is not None and (not math.isfinite(z) or z < 0):
        z = None
    if z is None and quality >= 2:
        raise ValidationError(f"grade {row['grade']} without a redshift (no z_best or zgrade); the grade is not stored")
    return Judgement(
        object_id=object_id,
        reviewer=reviewer_name(row.get("reviewer")),
        redshift=float(z) if (z is not None and quality >= 2) else None,
        quality=quality,
        comment=str(row.get("comment") or "").strip(),
        spectra=tuple(sorted(spectra)),
        dja_grade=int(row["grade"]),
        source=source,
    )


def _signature(group: list[Judgement]) -> str:
    return json.dumps(sorted([j.quality, j.redshift, j.comment, [s for s, _ in j.spectra]] for j in group))


def store_judgements(conn: sqlite3.Connection, judgements: Iterable[Judgement]) -> set[str]:
    """Store judgements as inspection records; the IDs of the objects that got new records.

    Groups of one reviewer on one object are added (in increasing quality) only when
    they differ from what the previous ingest stored (``ingest_grades``, see
    :mod:`campfire.archive.state`); the objects' derived inspection fields are refreshed
    in every visibility set. The caller's transaction commits.
    """
    from campfire.catalog.aggregates import refresh_inspected_everywhere
    from campfire.catalog.inspections import add_inspections

    groups: dict[tuple[str, str], list[Judgement]] = {}
    for j in judgements:
        groups.setdefault((j.object_id, j.reviewer), []).append(j)
    records, changed = [], set()
    for (oid, reviewer), group in sorted(groups.items()):
        sig = _signature(group)
        row = conn.execute("SELECT signature FROM ingest_grades WHERE object_id = ? AND reviewer = ?",
                           (oid, reviewer)).fetchone()
        if row is not None and row[0] == sig:
            continue
        for j in sorted(group, key=lambda j: (j.quality, j.source)):
            records.append({"object_id": oid, "reviewer": reviewer, "quality": j.quality, "redshift": j.redshift,
                            "comment": j.comment, "spectra_seen": [list(s) for s in j.spectra]})
        conn.execute("INSERT OR REPLACE INTO ingest_grades (object_id, reviewer, signature) VALUES (?, ?, ?)",
                     (oid, reviewer, sig))
        changed.add(oid)
    if records:
        add_inspections(conn, records, refresh=False)
        refresh_inspected_everywhere(conn, changed)
    return changed
