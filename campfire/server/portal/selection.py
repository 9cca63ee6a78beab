"""The catalog page's selection: its form ↔ the filter vocabulary, its URLs, its Python snippet.

A selection is a :class:`~campfire.catalog.filters.Query` (the filters and the sort)
plus the page being looked at. It is read from the page's query string, which accepts
the API's own parameters (``fields=cosmos,uds``, ``redshift_range=4,8``, ...) and the
form's split inputs (``z_min``/``z_max``, ``snr_min``/``snr_max``, ``cone_ra``/``cone_dec``/
``cone_radius``, ``dq_exclude`` checkboxes next to a ``dq_flags`` expression); links always
carry the canonical API form, so the same string drives the table, the downloads, the
inspection queue and the object pages' ``n``/``p``. As everywhere in campfire, nothing
is silently ignored: an unknown or repeated parameter is a ValidationError naming it.

Examples
--------
>>> sel = selection_from_items([('fields', 'cosmos'), ('z_min', '4'), ('sort', 'redshift')])
>>> sel.filter_params()
{'fields': 'cosmos', 'redshift_range': '4.0,inf', 'sort': 'redshift'}
>>> print(sel.snippet('http://127.0.0.1:8000/', user=None, total=12))
from campfire import Campfire
<BLANKLINE>
cf = Campfire(base_url='http://127.0.0.1:8000')
objects = cf.query_objects(
    fields=['cosmos'],
    redshift_range=(4.0, float('inf')),
    sort='redshift',
)
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import urlencode

from campfire import config
from campfire.catalog.filters import DEFAULT_SORT, FILTER_NAMES, Query, query_from_params
from campfire.errors import ValidationError
from campfire.flags import DQFlags, FlagExpr, as_flag_expr

__all__ = ["Selection", "selection_from_items", "PAGE_SIZES", "DEFAULT_PAGE_SIZE"]

PAGE_SIZES = (25, 50, 100, 250, 500)
DEFAULT_PAGE_SIZE = 100
LIST_FILTERS = ("fields", "programs", "gratings", "observations", "tags", "redshift_quality")
SPLIT_RANGES = {"redshift_range": ("z_min", "z_max"), "max_snr_range": ("snr_min", "snr_max")}
CONE_INPUTS = ("cone_ra", "cone_dec", "cone_radius")
_ALL_DQ = sum(int(f) for f in DQFlags)


@dataclass(frozen=True)
class Selection:
    """What the catalog page shows: the filtered, sorted query and which page of it."""

    query: Query
    page: int = 1
    per_page: int = DEFAULT_PAGE_SIZE

    # -- URLs ------------------------------------------------------------------------
    def filter_params(self) -> dict[str, str]:
        """The selection in the API's vocabulary (filters and sort; no paging)."""
        params = self.query.to_params()
        for key in ("limit", "offset"):
            params.pop(key, None)
        if params.get("sort") == DEFAULT_SORT["objects"]:
            params.pop("sort")
        if params.get("sort_dir") == "asc":
            params.pop("sort_dir")
        return params

    def query_string(self, **changes) -> str:
        """The canonical query string of this selection, with ``changes`` (page, sort, ...)."""
        params = self.filter_params()
        if self.page != 1:
            params["page"] = str(self.page)
        if self.per_page != DEFAULT_PAGE_SIZE:
            params["per_page"] = str(self.per_page)
        for key, value in changes.items():
            if value is None:
                params.pop(key, None)
            else:
                params[key] = str(value)
        if params.get("page") == "1":
            params.pop("page")
        return urlencode(params)

    def sort_link(self, column: str) -> str:
        """The catalog URL sorted by ``column`` (reversing the direction when it is already the sort)."""
        same = self.query.sort == column
        direction = ("desc" if self.query.sort_dir == "asc" else "asc") if same else "asc"
        return "/?" + self.query_string(sort=column, sort_dir=None if direction == "asc" else "desc", page=None)

    def paged(self) -> Query:
        """The query of the page being shown."""
        return dataclasses.replace(self.query, limit=self.per_page, offset=(self.page - 1) * self.per_page)

    # -- the form --------------------------------------------------------------------
    def form(self) -> dict:
        """The values that refill the catalog form."""
        q = self.query

        def bound(rng, i):
            return "" if rng is None or math.isinf(rng[i]) else f"{rng[i]:g}"

        dq_exclude, dq_text = [], ""
        if q.dq_flags is not None:
            if not q.dq_flags.any_of and not q.dq_flags.all_of and q.dq_flags.none_of & ~_ALL_DQ == 0:
                dq_exclude = [f.name for f in DQFlags if q.dq_flags.none_of & int(f)]
            else:
                dq_text = str(q.dq_flags)
        return {
            "fields": set(q.fields or ()),
            "gratings": set(q.gratings or ()),
            "observations": set(q.observations or ()),
            "tags": set(q.tags or ()),
            "redshift_quality": set(q.redshift_quality or ()),
            "z_min": bound(q.redshift_range, 0), "z_max": bound(q.redshift_range, 1),
            "snr_min": bound(q.max_snr_range, 0), "snr_max": bound(q.max_snr_range, 1),
            "cone_ra": f"{q.cone_search[0]:g}" if q.cone_search else "",
            "cone_dec": f"{q.cone_search[1]:g}" if q.cone_search else "",
            "cone_radius": f"{q.cone_search[2]:g}" if q.cone_search else "",
            "dq_exclude": set(dq_exclude), "dq_flags": dq_text,
            "inspected_only": bool(q.inspected_only),
            "has_photometry": "" if q.has_photometry is None else ("true" if q.has_photometry else "false"),
            "search": q.search or "",
            "sort": q.sort, "sort_dir": q.sort_dir, "per_page": self.per_page,
        }

    # -- Python ----------------------------------------------------------------------
    def snippet(self, base_url: str, user: str | None, total: int | None) -> str:
        """The same selection as Python: ``cf.query_objects(...)`` against this server."""
        q = self.query
        args = []
        for name in FILTER_NAMES:
            value = getattr(q, name)
            if value is not None:
                args.append(f"{name}={_py(name, value)}")
        if q.sort != DEFAULT_SORT["objects"]:
            args.append(f"sort={q.sort!r}")
        if q.sort_dir != "asc":
            args.append(f"sort_dir={q.sort_dir!r}")
        lines = ["from campfire import Campfire", "", f"cf = Campfire(base_url={base_url.rstrip('/')!r})"]
        if user:
            lines.append(f"cf.login({user!r}, password)  # to see your proprietary programs too")
        call = "cf.query_objects"
        page_size = int(config.get("api.page-size"))
        if total is not None and total > page_size:
            lines.append(f"# {total} objects: iter_objects pages through all of them "
                         f"(query_objects returns {page_size} per call from a server)")
            call = "cf.iter_objects"
        if args:
            lines.append(f"objects = {call}(")
            lines += [f"    {a}," for a in args]
            lines.append(")")
        else:
            lines.append(f"objects = {call}()")
        return "\n".join(lines)


def _py(name: str, value) -> str:
    """A filter value as Python source."""
    if isinstance(value, FlagExpr):
        return repr(str(value))
    if name in ("redshift_range", "max_snr_range", "cone_search"):
        return "(" + ", ".join(_number(v) for v in value) + ")"
    if isinstance(value, tuple):
        return "[" + ", ".join(repr(v) for v in value) + "]"
    return repr(value)


def _number(v: float) -> str:
    if math.isinf(v):
        return "float('inf')" if v > 0 else "float('-inf')"
    return repr(float(v))


def selection_from_items(items: Iterable[tuple[str, str]]) -> Selection:
    """A :class:`Selection` from a catalog page's query string (its ``(key, value)`` pairs).

    Raises
    ------
    ValidationError
        A parameter that is unknown, repeated where one value belongs, or invalid;
        the message names it and what is allowed.
    """
    values: dict[str, list[str]] = {}
    for key, value in items:
        value = value.strip()
        if value:
            values.setdefault(key, []).append(value)

    def many(name: str) -> list[str]:
        return values.pop(name, [])

    def one(name: str) -> str | None:
        got = values.pop(name, [])
        if len(got) > 1:
            raise ValidationError(f"{name}: given {len(got)} times; expected one value")
        return got[0] if got else None

    params: dict[str, str] = {}
    for name in LIST_FILTERS:
        got = many(name)
        if got:
            params[name] = ",".join(got)
    for name, (lo_key, hi_key) in SPLIT_RANGES.items():
        whole, lo, hi = one(name), one(lo_key), one(hi_key)
        if whole is not None and (lo is not None or hi is not None):
            raise ValidationError(f"{name}: give either {name} or {lo_key}/{hi_key}, not both")
        if whole is not None:
            params[name] = whole
        elif lo is not None or hi is not None:
            params[name] = f"{lo if lo is not None else '-inf'},{hi if hi is not None else 'inf'}"
    cone = one("cone_search")
    parts = [one(k) for k in CONE_INPUTS]
    if cone is not None and any(p is not None for p in parts):
        raise ValidationError("cone_search: give either cone_search or cone_ra/cone_dec/cone_radius, not both")
    if any(p is not None for p in parts):
        if not all(p is not None for p in parts):
            raise ValidationError("cone_search: give all three of RA [deg], Dec [deg] and radius [arcsec]")
        cone = ",".join(parts)  # type: ignore[arg-type]
    if cone is not None:
        params["cone_search"] = cone
    dq = _dq_expression(one("dq_flags"), many("dq_exclude"))
    if dq is not None:
        params["dq_flags"] = dq
    for name in ("inspected_only", "has_photometry", "search", "sort", "sort_dir"):
        got = one(name)
        if got is not None:
            params[name] = got
    page = _positive_int("page", one("page"), 1)
    per_page = _positive_int("per_page", one("per_page"), DEFAULT_PAGE_SIZE)
    if per_page not in PAGE_SIZES:
        raise ValidationError(f"per_page: expected one of {', '.join(map(str, PAGE_SIZES))}, got {per_page}")
    if values:
        known = sorted(set(FILTER_NAMES) - {"staleness"}) + ["page", "per_page", "sort", "sort_dir"]
        raise ValidationError(f"unknown parameter{'s' if len(values) > 1 else ''} {', '.join(sorted(values))}; "
                              f"allowed: {', '.join(known)}")
    if "staleness" in params:
        raise ValidationError("staleness: not supported by the server (it cannot know your local files)")
    return Selection(query_from_params("objects", params), page, per_page)


def _positive_int(name: str, raw: str | None, default: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"{name}: expected a positive integer, got {raw!r}") from None
    if not 1 <= value < 2**31:
        raise ValidationError(f"{name}: expected a positive integer, got {raw!r}")
    return value


def _dq_expression(text: str | None, exclude: list[str]) -> str | None:
    """The ``dq_flags`` expression of the form: the typed expression and the excluded flags, ANDed."""
    expr = as_flag_expr(text) if text is not None else None
    if exclude:
        mask = 0
        for name in exclude:
            try:
                mask |= int(DQFlags[name.upper()])
            except KeyError:
                raise ValidationError(f"dq_exclude: unknown flag {name!r}; allowed: "
                                      f"{', '.join(f.name for f in DQFlags)}") from None
        excluded = FlagExpr(none_of=mask)
        expr = excluded if expr is None else expr & excluded
    return None if expr is None else str(expr)
