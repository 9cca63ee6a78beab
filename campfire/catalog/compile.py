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

import functools
import math
import sqlite3
from dataclasses import dataclass
from typing import Sequence

from campfire.catalog.columns import OBJECT_COLUMNS, SPECTRUM_COLUMNS, VIEW_FIELDS
from campfire.catalog.filters import Query
from campfire.catalog.planner import OBJECT_ONLY_TERMS, Layout, ObjectPath, access_path, count_up_to, object_path
from campfire.catalog.schema import FIT_COLUMNS
from campfire.catalog.tagnames import display_expr, match_predicate
from campfire.catalog.visibility import Visibility

__all__ = ["Compiled", "compile_query", "plan_query"]

Terms = dict[str, tuple[str, list]]
# a cone's R*Tree boxes are counted up to this many objects (a bound on its rows, see plan_query)
_CONE_CAP = 1000

_OBJECT_SORT = {name: expr for name, expr, _ in OBJECT_COLUMNS if not expr.startswith("{")}
_SPECTRUM_SORT = {name: expr for name, expr, _ in SPECTRUM_COLUMNS if not expr.startswith("{")}


_LEGACY_VIEW = {f"a.{name}": f"o.{name}" for name in VIEW_FIELDS}


def _legacy(expr: str, legacy: bool) -> str:
    """A column of objects on a catalog older than schema 3: its inspection fields from ``objects o``."""
    return _LEGACY_VIEW.get(expr, expr) if legacy else expr


@functools.lru_cache(maxsize=64)
def _object_select(tags_expr: str, legacy: bool) -> str:
    """The SELECT of an objects query: the same for every query of a caller (~6 µs to build)."""
    return "SELECT " + ", ".join(_legacy(expr, legacy).format(tags=tags_expr) for _, expr, _ in OBJECT_COLUMNS)


_MISSING_FIT = {f"s.{name}": "NULL" for name in FIT_COLUMNS}


def _fit_columns(expr: str, present: bool) -> str:
    """A spectra column of schema 4 on an older catalog: NULL (its fits predate the interval)."""
    return expr if present else _MISSING_FIT.get(expr, expr)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def _in(expr: str, values: Sequence) -> tuple[str, list]:
    return f"{expr} IN ({','.join('?' * len(values))})", list(values)


def _tags_expr(visibility: Visibility) -> tuple[str, list]:
    """The comma-joined names of the visible tags of object ``o`` (``slug`` or ``owner/slug``, see tagnames).

    Each name once, in code-point order (SQLite's BINARY order of UTF-8). One visible tag
    (most tagged objects) or none is its own answer: the ordered, distinct list, whose
    co-routine and two ephemeral tables per object cost 0.36 ms of a 30″ cone's 1.1 ms of SQL,
    runs only for an object that shows two or more (bench/RESULTS.md, stop 28).
    """
    pred, params = visibility.tag_predicate("t")
    name, name_params = display_expr("t", visibility.user)
    visible = f"FROM object_tags ot JOIN tags t ON t.tag_id = ot.tag_id WHERE ot.object_id = o.object_id AND {pred}"
    # the aggregate's DISTINCT (an ephemeral index) in place of a GROUP BY (a sorter per object; -0.05 ms of
    # the cone, stop 27). group_concat's separator is ','
    ordered = f"(SELECT group_concat(DISTINCT shown) FROM (SELECT {name} AS shown {visible} ORDER BY shown))"
    expr = f"(SELECT CASE WHEN count(*) > 1 THEN {ordered} ELSE group_concat({name}) END {visible})"
    # the parameters in the order of their placeholders: the ordered list's, then the outer aggregate's
    return expr, name_params + params + name_params + params


def _local_path_expr(local_root: str | None) -> tuple[str, list]:
    """``<local_root>/<fits_path>`` of a file the client holds (``local_files``), else ''."""
    if local_root is None:
        return "''", []
    return "CASE WHEN lf.spectrum_id IS NULL THEN '' ELSE ? || s.fits_path END", [local_root]


def _cone_boxes(cone: tuple[float, float, float]) -> tuple[str, list]:
    """The ``objects_rtree`` boxes that hold the cone (RA wrap-around included): a WHERE term and its parameters."""
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
    return box_sql, [v for b in boxes for v in (b[0], b[1], dlo, dhi)]


def _cone_terms(cone: tuple[float, float, float]) -> tuple[str, list]:
    """Objects ``o`` within the cone: R*Tree boxes (:func:`_cone_boxes`), then the exact distance."""
    ra, dec, radius = cone
    r = radius / 3600.0
    box_sql, box_params = _cone_boxes(cone)
    cra, cdec = math.radians(ra), math.radians(dec)
    vx, vy, vz = math.cos(cdec) * math.cos(cra), math.cos(cdec) * math.sin(cra), math.sin(cdec)
    cone_sql = (f"o.rowid IN (SELECT id FROM objects_rtree WHERE {box_sql}) "
                f"AND (o.cx * ? + o.cy * ? + o.cz * ?) >= ?")
    return cone_sql, box_params + [vx, vy, vz, math.cos(math.radians(r))]


def _object_terms(q: Query, visibility: Visibility, terms: Terms, mode: str = "objects") -> None:
    """Object-level filters shared by both kinds, as named terms.

    ``mode`` says where the object's columns are read:

    ``'objects'``  an objects query: ``objects o``, the inspection fields from the
                   caller's ``object_aggregates a`` (``'legacy'``: a catalog older than
                   schema 3, all from ``o``);
    ``'copies'``   spectra, through their copies of the object's columns (``s.object_*``)
                   — the ``'*'`` visibility set, whose inspection fields the copies hold;
    ``'view'``     spectra of a caller with another visibility set: the copies for the
                   field, the caller's ``object_aggregates`` rows (one ``s.object_id IN``
                   term, ``object_view``) for the inspection fields;
    ``'join'``     spectra joined to ``objects o`` (schema version 1).
    """
    copies = mode in ("copies", "view")
    col = {name: f"s.object_{name}" if copies else f"o.{name}" for name in ("field", "has_photometry")}
    view = "a" if mode in ("objects", "view") else ("s.object_" if mode == "copies" else "o.")
    derived = {name: f"a.{name}" if view == "a" else f"{view}{name}" for name in ("redshift", "redshift_quality")}
    if q.fields:
        terms["fields"] = _in(col["field"], q.fields)
    inspection: Terms = {}
    if q.redshift_range:
        inspection["redshift_range"] = (f"{derived['redshift']} BETWEEN ? AND ?", list(q.redshift_range))
    if q.redshift_quality:
        inspection["redshift_quality"] = _in(derived["redshift_quality"], q.redshift_quality)
    if q.inspected_only is not None:
        inspection["inspected_only"] = (f"{derived['redshift_quality']} {'>' if q.inspected_only else '='} 0", [])
    if mode == "view" and inspection:
        terms["object_view"] = (
            "s.object_id IN (SELECT a.object_id FROM object_aggregates a WHERE a.visibility = ? AND "
            + " AND ".join(sql for sql, _ in inspection.values()) + ")",
            [visibility.key] + [v for _, p in inspection.values() for v in p])
    else:
        terms.update(inspection)
    if q.has_photometry is not None:
        terms["has_photometry"] = (f"{col['has_photometry']} = {1 if q.has_photometry else 0}", [])
    if q.tags:
        pred, tp = visibility.tag_predicate("t")
        sql, p = match_predicate(q.tags, "t", visibility.user)
        if copies:
            terms["tags"] = (f"s.object_id IN (SELECT ot.object_id FROM object_tags ot JOIN tags t "
                             f"ON t.tag_id = ot.tag_id WHERE {sql} AND {pred})", p + tp)
        else:
            # the tag's members (object_tags is keyed by tag): one lookup per member, not a probe per object
            ident = "a.object_id" if mode == "objects" else "o.object_id"
            terms["tags"] = (f"{ident} IN (SELECT ot.object_id FROM object_tags ot JOIN tags t "
                             f"ON t.tag_id = ot.tag_id WHERE {sql} AND {pred})", p + tp)
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


@dataclass(frozen=True)
class Compiled:
    """A query's statement, its parameters, and at most how many rows it returns (None: not known)."""

    sql: str
    params: list
    max_rows: int | None = None


def compile_query(q: Query, visibility: Visibility, *, layout: Layout | None = None,
                  conn: sqlite3.Connection | None = None, local_root: str | None = None, count: bool = False,
                  extra: tuple[str, list] | None = None) -> tuple[str, list]:
    """SQL and parameters for ``q`` (its rows, or their count): :func:`plan_query`'s statement.

    Examples
    --------
    >>> sql, params = compile_query(build_query('objects', fields=['uds'], limit=5), Visibility.everything())  # doctest: +SKIP
    """
    plan = plan_query(q, visibility, layout=layout, conn=conn, local_root=local_root, count=count, extra=extra)
    return plan.sql, plan.params


def plan_query(q: Query, visibility: Visibility, *, layout: Layout | None = None,
               conn: sqlite3.Connection | None = None, local_root: str | None = None, count: bool = False,
               extra: tuple[str, list] | None = None, bound: bool = False) -> Compiled:
    """SQL and parameters for ``q`` (its rows, or their count), and a bound on its rows.

    Parameters
    ----------
    q : Query
        A query resolved against the catalog's vocabulary (:meth:`Query.resolve`).
    visibility : Visibility
        What the caller may see.
    layout : Layout, optional
        The catalog's layout (:func:`campfire.catalog.planner.read_layout`); needed for
        spectra (for objects it says whether the catalog holds the inspection fields per
        visibility set; assumed when None).
    conn : sqlite3.Connection, optional
        The catalog, for the planner's probes (spectra on a version-2 catalog).
    local_root : str, optional
        ``local_path`` is ``local_root + fits_path`` for the files in ``local_files``
        (the client); None leaves it empty (the server).
    count : bool
        Count the rows instead (limit, offset and sort ignored).
    extra : (sql, params), optional
        One more WHERE term (single records: ``s.spectrum_id = ?``); the planner is skipped.
    bound : bool
        Count a cone's R*Tree boxes for ``max_rows`` too (one more capped probe: ~30 µs
        for a 30″ cone alone, ~0.1 ms among other queries).

    Returns
    -------
    Compiled
        The statement, its bound parameters and ``max_rows``: the query returns at
        most so many rows (its limit, or the count of the planner's probe of the index
        that drives it, or with ``bound`` of a cone's R*Tree boxes, up to :data:`_CONE_CAP`); None when
        nothing says (no limit, no probe under its cap). A bound, not an estimate: the
        other filters may keep fewer.

    Raises
    ------
    ValueError
        A spectra query without ``layout``.

    Examples
    --------
    A 30″ cone on the 1,000,000-spectrum demo: 283 objects in its R*Tree boxes (233 in the cone).

    >>> plan = plan_query(q, Visibility.everything(), layout=layout, conn=conn, bound=True)  # doctest: +SKIP
    >>> plan.max_rows  # doctest: +SKIP
    283
    """
    terms: Terms = {}
    vis_sql, vis_params = visibility.program_predicate("s")
    if q.kind == "objects":
        legacy = layout is not None and not layout.views
        _object_terms(q, visibility, terms, "legacy" if legacy else "objects")
        ident = "o.object_id" if legacy else "a.object_id"  # the same value: read where the driver has it
        spec_terms: Terms = {}
        _spectrum_terms(q, spec_terms)
        if spec_terms:
            terms["spectra"] = (
                f"EXISTS (SELECT 1 FROM spectra s WHERE s.object_id = {ident} AND {vis_sql} AND "
                + " AND ".join(sql for sql, _ in spec_terms.values()) + ")",
                vis_params + [v for _, p in spec_terms.values() for v in p],
            )
        if q.max_snr_range:
            terms["max_snr_range"] = ("a.max_snr BETWEEN ? AND ?", list(q.max_snr_range))
        if q.search:
            terms["search"] = (f"lower({ident}) LIKE ? ESCAPE '\\'", [_like(q.search)])
        path = ObjectPath() if (legacy or conn is None or extra) else object_path(conn, q, terms, visibility.key, count)
        max_rows = path.max_rows
        if bound and q.cone_search and conn is not None and not (count or extra):
            # every object of the cone is in its R*Tree boxes: their count (a few µs a box) bounds the rows
            box_sql, box_params = _cone_boxes(q.cone_search)
            n = count_up_to(conn, f"objects_rtree WHERE {box_sql}", box_params, _CONE_CAP)
            if n < _CONE_CAP and (max_rows is None or n < max_rows):
                max_rows = n
        for name in path.unindexed:  # broad filters: their index must not drive (a unary + hides it)
            terms[name] = ("+" + terms[name][0], terms[name][1])
        hint = f" INDEXED BY {path.index}" if path.index else ""
        sort_expr = _legacy(_OBJECT_SORT[q.sort], legacy)
        tiebreak = "o.object_id"
        if path.driver == "a":
            # the caller's rows first (CROSS JOIN keeps that order); objects only when a column of it is needed
            needs_objects = not count or any(k in terms for k in OBJECT_ONLY_TERMS)
            from_sql = f"FROM object_aggregates a{hint}" + (
                " CROSS JOIN objects o ON o.object_id = a.object_id" if needs_objects else "")
            from_params = []
            terms = {"visibility": ("a.visibility = ?", [visibility.key]), **terms}
            sort_expr = "a.object_id" if sort_expr == "o.object_id" else sort_expr
            tiebreak = "a.object_id"
        elif path.driver == "o":
            from_sql = (f"FROM objects o{hint} CROSS JOIN object_aggregates a "
                        "ON a.object_id = o.object_id AND a.visibility = ?")
            from_params = [visibility.key]
        else:
            from_sql = "FROM objects o JOIN object_aggregates a ON a.object_id = o.object_id AND a.visibility = ?"
            from_params = [visibility.key]
        if count:
            select, select_params = "SELECT count(*)", []
        else:
            tags_expr, tags_params = _tags_expr(visibility)
            select = _object_select(tags_expr, legacy)
            select_params = tags_params
    else:
        if layout is None:
            raise ValueError("compile_query: a spectra query needs the catalog's layout")
        terms["visibility"] = (vis_sql, vis_params)
        if not layout.copies:
            mode = "join"
        elif visibility.key == "*" or not layout.views:
            mode = "copies"
        else:
            mode = "view"
        _object_terms(q, visibility, terms, mode)
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
        max_rows = None
        if layout.copies:
            hint, max_rows = ("", None) if (extra or conn is None) else access_path(conn, q, terms, layout, count)
            # a count needs neither join (every spectrum has its program: a foreign key),
            # so an index holding the filters answers it alone
            from_sql = f"FROM spectra s{hint}" + ("" if count else " " + joins)
        else:  # schema version 1: the object columns live in objects only
            from_sql = "FROM spectra s JOIN objects o ON o.object_id = s.object_id " + joins
        from_params = []
        sort_expr = _fit_columns(_SPECTRUM_SORT[q.sort], layout.fit_columns)
        tiebreak = "s.spectrum_id"
        if count:
            select, select_params = "SELECT count(*)", []
        else:
            lp_expr, lp_params = _local_path_expr(local_root)
            select = "SELECT " + ", ".join(_fit_columns(expr, layout.fit_columns).format(local_path=lp_expr)
                                           for _, expr, _ in SPECTRUM_COLUMNS)
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
        return Compiled(sql, all_params)
    direction = "DESC" if q.sort_dir == "desc" else "ASC"
    sql += f" ORDER BY {sort_expr} {direction}"
    if sort_expr != tiebreak:  # a repeated term would cost a (no-op) sorter after an index walk
        sql += f", {tiebreak} {direction}"
    if q.limit is not None or q.offset:
        sql += " LIMIT ? OFFSET ?"
        all_params += [q.limit if q.limit is not None else -1, q.offset]
    if q.limit is not None:
        max_rows = q.limit if max_rows is None else min(max_rows, q.limit)
    return Compiled(sql, all_params, max_rows)
