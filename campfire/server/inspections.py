"""Reviewers' inspections on the server: who may inspect what, the queue, the bounded refit.

The records themselves and what a caller may see of them live in
:mod:`campfire.catalog.inspections`; this module adds the server's rules:

* **Who may inspect.** A logged-in member of a program may inspect an object that has
  a spectrum in it; an archive admin (role ``admin``) may inspect any object and is
  the only one who may resolve a conflict (``resolves_conflict``). Anonymous callers
  inspect nothing (401); others get 403 naming what they lack; an object the caller
  may not see is 404, as everywhere.
* **What an inspection rests on.** The server fills ``spectra_seen`` with the
  object's spectra visible to the reviewer and their current sha256 — so a member's
  grade of a mixed object is hidden from non-members, and a grade on public spectra
  only is public.
* **Blind mode** (``campfire serve --blind-inspections``): a reviewer sees other
  reviewers' records of an object, and their consensus, only after giving their own
  (admins always). The objects' catalog fields keep their usual, per-visibility values.
* **Refit**: ``fit_redshift`` of one visible spectrum in a window of at most ±0.5 in z
  around a chosen redshift (with the fit's 68% interval), at most
  :data:`MAX_CONCURRENT_REFITS` at once.

Examples
--------
>>> MAX_REFIT_HALF_WIDTH
0.5
"""
from __future__ import annotations

from typing import Any

from campfire.catalog.consensus import consensus
from campfire.catalog.filters import Query
from campfire.catalog.inspections import add_inspection, check_inspection, inspections_for
from campfire.errors import ValidationError
from campfire.server.archive import MAX_CONCURRENT_REFITS, Archive, Caller
from campfire.server.errors import APIProblem
from campfire.server.params import only

__all__ = ["MAX_CONCURRENT_REFITS", "MAX_REFIT_HALF_WIDTH", "QUEUE_MODES", "may_inspect", "inspect",
           "visible_inspections", "queue", "refit"]

MAX_REFIT_HALF_WIDTH = 0.5  # dz: the refit searches [z_center - dz, z_center + dz]
QUEUE_MODES = ("ungraded", "conflicts")
HIDDEN = {"state": "hidden", "redshift": None, "quality": 0, "n_reviewers": 0}


def _member_programs(archive: Archive, c: Caller) -> frozenset[int]:
    return archive.auth.programs_of(c.user) if c.user else frozenset()


def may_inspect(archive: Archive, c: Caller, object_id: str) -> bool:
    """True when ``c`` may inspect ``object_id``: an admin, or a member of a program with a spectrum of it."""
    if c.user is None:
        return False
    if c.is_admin:
        return True
    member = sorted(_member_programs(archive, c))
    if not member:
        return False
    row = c.catalog.conn.execute(
        f"SELECT 1 FROM spectra WHERE object_id = ? AND program_id IN ({','.join('?' * len(member))}) LIMIT 1",
        [object_id] + member).fetchone()
    return row is not None


def _require_inspector(archive: Archive, c: Caller, object_id: str) -> None:
    if not may_inspect(archive, c, object_id):
        raise APIProblem(403, "forbidden", f"you may not inspect {object_id!r}: inspections are by members of a "
                                           "program with a spectrum of the object, or by archive admins")


def visible_inspections(archive: Archive, c: Caller, object_id: str) -> dict[str, Any]:
    """``{"inspections": [...], "consensus": {...}, "may_inspect": bool, "may_resolve": bool}`` as ``c`` may see them."""
    conn = c.catalog.conn
    records = inspections_for(conn, object_id, c.visibility)
    allowed = may_inspect(archive, c, object_id)
    blind = archive.blind_inspections and not c.is_admin and not any(r["reviewer"] == c.user for r in records)
    if blind:
        return {"inspections": [], "consensus": dict(HIDDEN), "may_inspect": allowed, "may_resolve": c.is_admin}
    return {"inspections": records, "consensus": consensus(records), "may_inspect": allowed,
            "may_resolve": c.is_admin}


def inspect(archive: Archive, c: Caller, object_id: str, body: Any) -> dict[str, Any]:
    """Store one inspection by ``c`` (checked first); ``{"inspection": record, "consensus": {...}}``.

    Raises
    ------
    APIProblem
        403: the caller may not inspect the object, or (not an admin) asked to resolve a conflict.
    ValidationError
        A bad body (400), naming the field.
    """
    _require_inspector(archive, c, object_id)
    only(body, ("redshift", "quality", "comment", "issues", "resolves_conflict"))
    if "quality" not in body:
        raise ValidationError("quality: required (0-4 or not_inspected, impossible, tentative, probable, secure)")
    issues = body.get("issues")
    if issues is not None and not isinstance(issues, list):
        raise ValidationError(f"issues: expected a list of issue names, got {issues!r}")
    values = check_inspection(reviewer=c.user, quality=body["quality"], redshift=body.get("redshift"),
                              comment=body.get("comment", ""), issues=issues,
                              resolves_conflict=body.get("resolves_conflict", False))
    if values["resolves_conflict"] and not c.is_admin:
        raise APIProblem(403, "forbidden", "resolves_conflict: only an archive admin may resolve a conflict")
    seen = [(s["spectrum_id"], s["file_hash"]) for s in c.catalog.object_spectra(object_id)]
    if not seen:
        raise ValidationError(f"object {object_id!r} has no spectrum you may see to rest an inspection on")
    values.pop("reviewer")
    def write(conn):
        record = add_inspection(conn, object_id, c.user, spectra_seen=seen, **values)
        archive.record_own_inspection(conn, record["inspection_id"])
        return record

    record = archive.write(write)
    return {"inspection": record, "consensus": consensus(inspections_for(c.catalog.conn, object_id, c.visibility))}


def queue(archive: Archive, c: Caller, q: Query, mode: str) -> dict[str, Any]:
    """The objects of ``q`` this reviewer has not graded (``ungraded``) or that are in conflict (``conflicts``).

    Only objects the caller may inspect are listed; ``q``'s sort, limit and offset page
    through them. Returns ``{"mode", "total", "limit", "offset", "object_ids"}``.
    """
    if mode not in QUEUE_MODES:
        raise ValidationError(f"mode: expected one of {', '.join(QUEUE_MODES)}, got {mode!r}")
    terms: list[str] = []
    params: list = []
    if not c.is_admin:
        member = sorted(_member_programs(archive, c))
        if not member:
            return {"mode": mode, "total": 0, "limit": q.limit, "offset": q.offset, "object_ids": []}
        terms.append("EXISTS (SELECT 1 FROM spectra sm WHERE sm.object_id = o.object_id AND "
                     f"sm.program_id IN ({','.join('?' * len(member))}))")
        params += member
    if mode == "ungraded":
        terms.append("NOT EXISTS (SELECT 1 FROM inspections i WHERE i.object_id = o.object_id AND i.reviewer = ?)")
        params.append(c.user)
    else:
        terms.append("a.inspection_state = 'conflict'")
    extra = (" AND ".join(terms), params)
    q = q.resolve(c.catalog.vocabulary())
    conn = c.catalog.conn
    sql, sql_params = c.catalog.compile(q, extra=extra)
    ids = [row[0] for row in conn.execute(sql, sql_params)]
    count_sql, count_params = c.catalog.compile(q, count=True, extra=extra)
    total = conn.execute(count_sql, count_params).fetchone()[0]
    return {"mode": mode, "total": total, "limit": q.limit, "offset": q.offset, "object_ids": ids}


def _float(body: dict, name: str, lo: float, hi: float, default: float | None = None) -> float:
    value = body.get(name, default)
    if value is None:
        raise ValidationError(f"{name}: required, a number in [{lo:g}, {hi:g}]")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        shown = value if not isinstance(value, int) or abs(value) < 10**20 else "a huge integer"
        raise ValidationError(f"{name}: expected a number in [{lo:g}, {hi:g}], got {shown!r}")
    return float(value)


def refit(archive: Archive, c: Caller, object_id: str, body: Any) -> dict[str, Any]:
    """``fit_redshift`` of one visible spectrum in ``[z_center - dz, z_center + dz]`` (dz ≤ 0.5).

    The spectrum is ``spectrum_id`` (one of the object's visible spectra) or the object's
    visible spectrum of highest S/N. At most :data:`MAX_CONCURRENT_REFITS` run at once;
    a caller who finds them busy for ``archive.refit_wait`` seconds (10) gets 429 with
    Retry-After.
    """
    from campfire.io.fits import read_spectrum_record
    from campfire.models import SpectrumData
    from campfire.tasks.redshift import fit_redshift

    _require_inspector(archive, c, object_id)
    only(body, ("z_center", "dz", "spectrum_id"))
    z_center = _float(body, "z_center", 0.0, 30.0)
    dz = _float(body, "dz", 1e-4, MAX_REFIT_HALF_WIDTH, default=0.05)
    spectra = c.catalog.object_spectra(object_id)
    wanted = body.get("spectrum_id")
    if wanted is not None:
        chosen = [s for s in spectra if s["spectrum_id"] == wanted]
        if not chosen:
            raise ValidationError(f"spectrum_id: {wanted!r} is not a spectrum of {object_id!r} you may see")
        spec_row = chosen[0]
    elif spectra:
        spec_row = max(spectra, key=lambda s: (s["signal_to_noise"] if s["signal_to_noise"] == s["signal_to_noise"]
                                               else -1.0))
    else:
        raise ValidationError(f"object {object_id!r} has no spectrum you may see")
    z_range = (max(0.0, z_center - dz), min(30.0, z_center + dz))
    if not archive.refits.acquire(timeout=archive.refit_wait):
        raise APIProblem(429, "too_many_requests", f"{MAX_CONCURRENT_REFITS} refits are running; retry shortly",
                         {"Retry-After": "2"})
    try:
        spec = SpectrumData.from_record(read_spectrum_record(archive.file_path(spec_row["fits_path"])))
        fit = fit_redshift(spec, z_range)
    finally:
        archive.refits.release()
    return {"object_id": object_id, "spectrum_id": spec_row["spectrum_id"], "z_range": list(z_range),
            "redshift": fit["redshift"], "redshift_lo": fit["redshift_lo"], "redshift_hi": fit["redshift_hi"], "chi2_min": fit["chi2_min"],
            "confidence": fit["confidence"], "z_grid": fit["z_grid"], "chi2_grid": fit["chi2_grid"]}
