"""The consensus of several reviewers' inspections of one object: a pure function.

An object's ``redshift_inspected`` and ``redshift_quality`` are not typed in by anyone:
they are derived from the inspection records (:mod:`campfire.catalog.inspections`) that
the caller may see, by :func:`consensus`. The rule, in order:

1. **Who counts.** Each reviewer's *latest* record counts (by ``created_at``, then
   ``inspection_id``); earlier ones are history. A latest record of quality 0
   (``not_inspected``) withdraws that reviewer's grade.
2. **Resolution.** The latest record marked ``resolves_conflict`` (only an archive
   admin may write one) wins over everything else: state ``'resolved'``, its redshift
   and quality.
3. **Confident grades** (quality ≥ 3: ``probable``, ``secure``) decide when there are
   any. If all their redshifts agree — ``(z_max − z_min) / (1 + z_min) < 0.005``, i.e.
   every pair within |Δz|/(1+z) < 0.005 — the redshift is their median and the quality
   the *lowest* of them (two reviewers saying 4 and 3 make a 3; a single reviewer's
   grade stands as given). If they disagree, the state is ``'conflict'``: no
   inspected redshift, quality 0, until more reviewers agree or an admin resolves it.
   Lower grades never block or overrule confident ones.
4. **Only low grades** (1 ``impossible``, 2 ``tentative``): the highest grade wins,
   with the redshift of the latest record of that grade.
5. The state is ``'none'`` with no counting reviewer, ``'single'`` with one,
   ``'consensus'`` with several (``'conflict'`` and ``'resolved'`` as above).

Examples
--------
>>> r = [{'reviewer': 'ann', 'redshift': 3.421, 'quality': 4},
...      {'reviewer': 'ben', 'redshift': 3.4225, 'quality': 3}]
>>> consensus(r)
{'state': 'consensus', 'redshift': 3.42175, 'quality': 3, 'n_reviewers': 2}
>>> consensus(r + [{'reviewer': 'cy', 'redshift': 5.1, 'quality': 4}])['state']
'conflict'
"""
from __future__ import annotations

import statistics
from typing import Any, Iterable, Mapping

__all__ = ["AGREEMENT", "CONFIDENT", "STATES", "consensus", "redshifts_agree", "best_redshift"]

AGREEMENT = 0.005  # |Δz| / (1 + z) below which two redshifts are the same
CONFIDENT = 3      # quality from which a grade decides (probable, secure)
STATES = ("none", "single", "consensus", "conflict", "resolved")


def redshifts_agree(redshifts: Iterable[float], tolerance: float = AGREEMENT) -> bool:
    """True when every pair of ``redshifts`` is within |Δz|/(1+z) < ``tolerance``.

    Examples
    --------
    >>> redshifts_agree([2.0, 2.01]), redshifts_agree([2.0, 2.02])
    (True, False)
    """
    zs = [float(z) for z in redshifts]
    if not zs:
        return True
    lo, hi = min(zs), max(zs)
    return (hi - lo) / (1.0 + lo) < tolerance


def best_redshift(redshift_inspected: float | None, quality: int, redshift_auto: float | None) -> float | None:
    """The object's ``redshift``: the inspected one when graded ``tentative`` or better, else the automatic one.

    Examples
    --------
    >>> best_redshift(3.42, 3, 3.1), best_redshift(3.42, 1, 3.1), best_redshift(None, 0, 3.1)
    (3.42, 3.1, 3.1)
    """
    if redshift_inspected is not None and quality >= 2:
        return redshift_inspected
    return redshift_auto


def _order(record: Mapping[str, Any]) -> tuple:
    return (str(record.get("created_at") or ""), int(record.get("inspection_id") or 0))


def consensus(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The consensus of inspection records of one object (the rule in the module docstring).

    Parameters
    ----------
    records : iterable of mapping
        The records the caller may see, each with ``reviewer``, ``redshift`` (float or
        None), ``quality`` (0-4) and optionally ``resolves_conflict``, ``created_at``
        (ISO text) and ``inspection_id`` (they order a reviewer's records; without them
        the iteration order does).

    Returns
    -------
    dict
        ``{'state': 'none'|'single'|'consensus'|'conflict'|'resolved', 'redshift':
        float or None, 'quality': int 0-4, 'n_reviewers': int}`` (``n_reviewers``: the
        reviewers whose latest record grades the object).

    Examples
    --------
    >>> consensus([])
    {'state': 'none', 'redshift': None, 'quality': 0, 'n_reviewers': 0}
    >>> consensus([{'reviewer': 'ann', 'redshift': 2.0, 'quality': 2},
    ...            {'reviewer': 'ben', 'redshift': None, 'quality': 1}])
    {'state': 'consensus', 'redshift': 2.0, 'quality': 2, 'n_reviewers': 2}
    """
    ordered = [rec for _, rec in sorted(enumerate(records), key=lambda ir: (_order(ir[1]), ir[0]))]
    rank = {id(rec): k for k, rec in enumerate(ordered)}
    latest: dict[str, Mapping[str, Any]] = {}
    resolution = None
    for rec in ordered:
        latest[rec["reviewer"]] = rec
        if rec.get("resolves_conflict"):
            resolution = rec
    graded = [r for r in latest.values() if int(r["quality"]) > 0]
    n = len(graded)
    if resolution is not None:
        return {"state": "resolved", "redshift": _z(resolution), "quality": int(resolution["quality"]),
                "n_reviewers": max(n, 1)}
    if n == 0:
        return {"state": "none", "redshift": None, "quality": 0, "n_reviewers": 0}
    state = "single" if n == 1 else "consensus"
    confident = [r for r in graded if int(r["quality"]) >= CONFIDENT and r.get("redshift") is not None]
    if confident:
        zs = [float(r["redshift"]) for r in confident]
        if not redshifts_agree(zs):
            return {"state": "conflict", "redshift": None, "quality": 0, "n_reviewers": n}
        return {"state": state, "redshift": statistics.median(zs),
                "quality": min(int(r["quality"]) for r in confident), "n_reviewers": n}
    top = max(int(r["quality"]) for r in graded)
    pick = [r for r in graded if int(r["quality"]) == top]
    chosen = max(pick, key=lambda r: rank[id(r)])  # the latest record of the highest grade
    return {"state": state, "redshift": _z(chosen), "quality": top, "n_reviewers": n}


def _z(record: Mapping[str, Any]) -> float | None:
    z = record.get("redshift")
    return None if z is None else float(z)
