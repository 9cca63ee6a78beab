"""A :class:`~campfire.catalog.filters.Query` compiled to SQL for the catalog schema.

:func:`compile_query` turns a resolved Query, the caller's
:class:`~campfire.catalog.visibility.Visibility` and the catalog's
:class:`~campfire.catalog.planner.Layout` into one SELECT (or count) and its
parameters. All user values travel as bound parameters; column names come from
whitelists only (:mod:`campfire.catalog.columns`, the Query's validated sort).

``query_spectra`` filters on the object-level columns through the spectra's own
copies of them (schema version 2, see :mod:`campfire.catalog.schema`), so no join to
``objects`` is needed, and the access path is chosen by
:func:`campfire.catalog.planner.access_path`. A version-1 catalog is still answered,
through the join.
"""
from __future__ import annotations

import math
import sqlite3
from typing import Sequence

from campfire.catalog.columns import OBJECT_COLUMNS, SPECTRUM_COLUMNS
from campfire.catalog.filters import Query
from campfire.catalog.planner import Layout, access_path
from campfire.catalog.visibility import Visibility

__all__ = ["compile_query"]

Terms = dict[str, tuple[str, list]]

_OBJECT_SORT = {name: expr for name, expr, _ in OBJECT_COLUMNS if not expr.startswith("{")}
_SPECTRUM_SORT = {name: expr for name, expr, _ in SPECTRUM_COLUMNS if not expr.startswith("{")}


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def _in(expr: str, values: Sequence) -> tuple[str, list]:
    return f"{expr} IN ({','.join('?' * len(values))})", list(values)


def _tags_expr(visibility: Visibility) -> tuple[str, list]:
    """The comma-joined visible tag slugs of object ``o``."""
    pred, params = visibility.tag_predicate("t")
    expr = (
        "(SELECT group_concat(slug, ',') FROM (SELECT DISTINCT t.slug AS slug FROM object_tags ot "
        f"JOIN tags t ON t.tag_id = ot.tag_id WHERE ot.object_id = o.object_id AND {pred} ORDER BY t.slug))"
    )
    return expr, params


def _local_path_expr(local_root: str | None) -> tuple[str, list]:
    """``<local_root>/<fits_path>`` of a file the client holds (``local_files``), else ''."""
    if local_root is None:
        return "''", []
    return "CASE WHEN lf.spectrum_id IS NULL THEN '' ELSE ? || s.fits_path END", [local_root]


def _cone_terms(cone: tuple[float, float, float]) -> tuple[str, list]:
    """Objects ``o`` within the cone: R*Tree boxes (RA wrap-around included), then the exact distance."""
    ra, dec, radius = cone
    r = radius / 3600.0
    cosd = max(math.cos(math.radians(min(90.0, abs(dec) + r))), 1e-9)
    dra = min(180.0, r / cosd)
    dlo, dhi = dec - r, dec + r
    boxes = []
    lo, hi = ra - dra, ra + dra
    if dra >= 180:
        boxes.append((0.0, 360.0))
    else:
        boxes.append((max(lo, 0.0), min(hi, 360.0)))
        if lo < 0:
            boxes.append((lo + 360.0, 360.0))
        if hi > 360:
            boxes.append((0.0, hi - 360.0))
    box_sql = " OR ".join("(ra_max >= ? AND ra_min <= ? AND dec_max >= ? AND dec_min <= ?)" for _ in boxes)
    box_params = [v for b in boxes for v in (b[0], b[1], dlo, dhi)]
    cra, cdec = math.radians(ra), math.radians(dec)
    vx, vy, vz = math.cos(cdec) * math.cos(cra), math.cos(cdec) * math.sin(cra), math.sin(cdec)
    cone_sql = (f"o.rowid IN (SELECT id FROM objects_rtree WHERE {box_sql}) "
                f"AND (o.cx * ? + o.cy * ? + o.cz * ?) >= ?")
    return cone_sql, box_params + [vx, vy, vz, math.cos(math.radians(r))]


def _object_terms(q: Query, visibility: Visibility, terms: Terms, copies: bool = False) -> None:
    """Object-level filters shared by both kinds, as named terms.

    ``copies``: on spectra, through the spectra's copies of the object columns
    (``s.object_*``) and ``s.object_id IN (…)`` subqueries instead of ``objects o``.
    """
    col = {name: f"s.object_{name}" if copies else f"o.{name}"
           for name in ("field", "redshift", "redshift_quality", "has_photometry")}
    if q.fields:
        terms["fields"] = _in(col["field"], q.fields)
    if q.redshift_range:
        terms["redshift_range"] = (f"{col['redshift']} BETWEEN ? AND ?", list(q.redshift_range))
    if q.redshift_quality:
        terms["redshift_quality"] = _in(col["redshift_quality"], q.redshift_quality)
    if q.inspected_only is not None:
        terms["inspected_only"] = (f"{col['redshift_quality']} {'>' if q.inspected_only else '='} 0", [])
    if q.has_photometry is not None:
        terms["has_photometry"] = (f"{col['has_photometry']} = {1 if q.has_photometry else 0}", [])
    if q.tags:
        pred, tp = visibility.tag_predicate("t")
        sql, p = _in("t.slug", q.tags)
        if copies:
            terms["tags"] = (f"s.object_id IN (SELECT ot.object_id FROM object_tags ot JOIN tags t "
                             f"ON t.tag_id = ot.tag_id WHERE {sql} AND {pred})", p + tp)
        else:
            terms["tags"] = (f"EXISTS (SELECT 1 FROM object_tags ot JOIN tags t ON t.tag_id = ot.tag_id "
                             f"WHERE ot.object_id = o.object_id AND {sql} AND {pred})", p + tp)
    if q.cone_search:
        cone, cone_params = _cone_terms(q.cone_search)
        if copies:
            terms["cone_search"] = (f"s.object_id IN (SELECT o.object_id FROM objects o WHERE {cone})", cone_params)
        else:
            terms["cone_search"] = (cone, cone_params)


def _spectrum_terms(q: Query, terms: Terms) -> None:
    """Spectrum-level filters as named terms (used directly for spectra, inside EXISTS for objects)."""
    if q.programs:
        terms["programs"] = _in("s.program_id", q.programs)
    if q.gratings:
        terms["gratings"] = _in("s.grating", q.gratings)
    if q.observations:
        terms["observations"] = _in("s.observation", q.observations)
    if q.dq_flags is not None:
        terms["dq_flags"] = q.dq_flags.to_sql("s.dq_flags")
    if q.staleness is not None:
        stale = (
            "EXISTS (SELECT 1 FROM local_files lf2 WHERE lf2.spectrum_id = s.spectrum_id "
            "AND lf2.sha256 != s.file_hash)"
        )
        terms["staleness"] = (stale if q.staleness else f"NOT {stale}", [])


def compile_query(q: Query, visibility: Visibility, *, layout: Layout | None = None,
                  conn: sqlite3.Connection | None = None, local_root: str | None = None, count: bool = False,
                  extra: tuple[str, list] | None = None) -> tuple[str, list]:
    """SQL and parameters for ``q`` (its rows, or their count).

    Parameters
    ----------
    q : Query
        A query resolved against the catalog's vocabulary (:meth:`Query.resolve`).
    visibility : Visibility
        What the caller may see.
    layout : Layout, optional
        The catalog's layout (:func:`campfire.catalog.planner.read_layout`); needed for spectra.
    conn : sqlite3.Connection, optional
        The catalog, for the planner's probes (spectra on a version-2 catalog).
    local_root : str, optional
        ``local_path`` is ``local_root + fits_path`` for the files in ``local_files``
        (the client); None leaves it empty (the server).
    count : bool
        Count the rows instead (limit, offset and sort ignored).
    extra : (sql, params), optional
        One more WHERE term (single records: ``s.spectrum_id = ?``); the planner is skipped.

    Returns
    -------
    (str, list)
        The statement and its bound parameters.

    Raises
    ------
    ValueError
        A spectra query without ``layout``.
    """
    terms: Terms = {}
    vis_sql, vis_params = visibility.program_predicate("s")
    if q.kind == "objects":
        _object_terms(q, visibility, terms)
        spec_terms: Terms = {}
        _spectrum_terms(q, spec_terms)
        if spec_terms:
            terms["spectra"] = (
                f"EXISTS (SELECT 1 FROM spectra s WHERE s.object_id = o.object_id AND {vis_sql} AND "
                + " AND ".join(sql for sql, _ in spec_terms.values()) + ")",
                vis_params + [v for _, p in spec_terms.values() for v in p],
            )
        if q.max_snr_range:
            terms["max_snr_range"] = ("a.max_snr BETWEEN ? AND ?", list(q.max_snr_range))
        if q.search:
            terms["search"] = ("lower(o.object_id) LIKE ? ESCAPE '\\'", [_like(q.search)])
        from_sql = "FROM objects o JOIN object_aggregates a ON a.object_id = o.object_id AND a.visibility = ?"
        from_params = [visibility.key]
        sort_expr = _OBJECT_SORT[q.sort]
        tiebreak = "o.object_id"
        if count:
            select, select_params = "SELECT count(*)", []
        else:
            tags_expr, tags_params = _tags_expr(visibility)
            select = "SELECT " + ", ".join(expr.format(tags=tags_expr) for _, expr, _ in OBJECT_COLUMNS)
            select_params = tags_params
    else:
        if layout is None:
            raise ValueError("compile_query: a spectra query needs the catalog's layout")
        terms["visibility"] = (vis_sql, vis_params)
        _object_terms(q, visibility, terms, copies=layout.copies)
        _spectrum_terms(q, terms)
        if q.max_snr_range:
            terms["max_snr_range"] = ("s.signal_to_noise BETWEEN ? AND ?", list(q.max_snr_range))
        if q.search:
            terms["search"] = (
                "(lower(s.spectrum_id) LIKE ? ESCAPE '\\' OR lower(s.object_id) LIKE ? ESCAPE '\\')",
                [_like(q.search)] * 2,
            )
        joins = ("JOIN programs p ON p.program_id = s.program_id "
                 "LEFT JOIN local_files lf ON lf.spectrum_id = s.spectrum_id")
        if layout.copies:
            hint = "" if (extra or conn is None) else access_path(conn, q, terms, layout, count)
            # a count needs neither join (every spectrum has its program: a foreign key),
            # so an index holding the filters answers it alone
            from_sql = f"FROM spectra s{hint}" + ("" if count else " " + joins)
        else:  # schema version 1: the object columns live in objects only
            from_sql = "FROM spectra s JOIN objects o ON o.object_id = s.object_id " + joins
        from_params = []
        sort_expr = _SPECTRUM_SORT[q.sort]
        tiebreak = "s.spectrum_id"
        if count:
            select, select_params = "SELECT count(*)", []
        else:
            lp_expr, lp_params = _local_path_expr(local_root)
            select = "SELECT " + ", ".join(expr.format(local_path=lp_expr) for _, expr, _ in SPECTRUM_COLUMNS)
            select_params = lp_params
    if extra:
        terms["extra"] = (extra[0], list(extra[1]))
    where = [sql for sql, _ in terms.values() if sql != "1"]
    params = [v for sql, p in terms.values() if sql != "1" for v in p]
    sql = f"{select} {from_sql}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    all_params = select_params + from_params + params
    if count:
        return sql, all_params
    direction = "DESC" if q.sort_dir == "desc" else "ASC"
    sql += f" ORDER BY {sort_expr} {direction}"
    if sort_expr != tiebreak:  # a repeated term would cost a (no-op) sorter after an index walk
        sql += f", {tiebreak} {direction}"
    if q.limit is not None or q.offset:
        sql += " LIMIT ? OFFSET ?"
        all_params += [q.limit if q.limit is not None else -1, q.offset]
    return sql, all_params
