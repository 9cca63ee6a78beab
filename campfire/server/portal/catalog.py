"""The catalog page (``/``), its total (``/objects.count``) and its downloads (``/objects.ecsv``, ``.csv``).

The page is rendered on the server from one page of ``query_objects`` (the same
compiled SQL as ``GET /api/v1/objects``; the planner stops after the page), so it
arrives in tens of milliseconds whatever the catalog's size. Its total can cost more
(every matching object is counted: up to a few hundred ms of CPU on 1,000,000 spectra
when a spectrum-level filter must be checked object by object), so the page shows a
total it already knows — counts are kept per selection and catalog state — and
otherwise its script fetches ``/objects.count`` after the page is shown. Downloads
stream the whole selection from a cursor in constant memory; the ECSV header comes
from astropy, so ``Table.read`` gives back the columns, dtypes and units of
``query_objects``.
"""
from __future__ import annotations

import collections
import csv
import dataclasses
import io
import math
import threading
from typing import Iterator

from fastapi import APIRouter, Depends, Request

from campfire.catalog.columns import OBJECT_COLUMNS, objects_table, row_dict
from campfire.catalog.db import change_stamp
from campfire.catalog.filters import QUALITY_NAMES, SORT_COLUMNS
from campfire.errors import ValidationError
from campfire.flags import FLAG_DESCRIPTIONS
from campfire.server.encoding import json_response
from campfire.server.portal.render import Viewer, render, viewer
from campfire.server.portal.selection import PAGE_SIZES, Selection, selection_from_items
from campfire.server.streaming import ClosingStreamingResponse

__all__ = ["router", "visible_tags", "ecsv_header"]

router = APIRouter()

# the table's columns: (query column, heading, unit or '') — sortable when in SORT_COLUMNS
TABLE_COLUMNS = (
    ("object_id", "Object", ""),
    ("field", "Field", ""),
    ("ra", "RA", "deg"),
    ("dec", "Dec", "deg"),
    ("redshift", "z", ""),
    ("redshift_auto", "z auto", ""),
    ("redshift_inspected", "z insp.", ""),
    ("redshift_quality", "Quality", ""),
    ("n_spectra", "Spectra", ""),
    ("gratings", "Gratings", ""),
    ("max_snr", "Best S/N", ""),
    ("programs", "Programs", ""),
    ("tags", "Tags", ""),
    ("photo_z", "photo-z", ""),
)


def visible_tags(v: Viewer) -> list[dict]:
    """The tags ``v`` may see (slug, name, kind, owner), system tags first; no member counts (cheap)."""
    pred, params = v.caller.visibility.tag_predicate("t")
    rows = v.catalog.conn.execute(
        f"SELECT slug, name, kind, coalesce(owner, '') FROM tags t WHERE {pred} "
        "ORDER BY kind != 'system', owner, slug", params).fetchall()
    return [{"slug": s, "name": n, "kind": k, "owner": o} for s, n, k, o in rows]


def _selection(request: Request) -> Selection:
    return selection_from_items(request.query_params.multi_items())


class _Counts:
    """Totals of recent selections, per viewer's visibility and catalog state (paging never recounts)."""

    def __init__(self, size: int = 512):
        self.size = size
        self._items: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(v: Viewer, sel: Selection) -> tuple:
        return (v.caller.visibility, change_stamp(v.catalog.db_path), tuple(sorted(sel.filter_params().items())))

    def get(self, key: tuple) -> int | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: tuple, total: int) -> None:
        with self._lock:
            self._items[key] = total
            if len(self._items) > self.size:
                self._items.popitem(last=False)


COUNTS = _Counts()


def _form_options(v: Viewer) -> dict:
    vocab = v.catalog.vocabulary()
    programs = [dict(zip(("program_id", "slug", "program_name", "is_public"), (p["program_id"], p["slug"],
                p["program_name"], bool(p["is_public"])))) for p in v.catalog.programs()]
    return {
        "fields": sorted(vocab.fields),
        "programs": programs,
        "gratings": v.catalog.gratings(),
        "observations": sorted(vocab.observations),
        "tags": visible_tags(v),
        "flags": FLAG_DESCRIPTIONS,
        "qualities": sorted((value, name) for name, value in QUALITY_NAMES.items()),
        "page_sizes": PAGE_SIZES,
        "sort_columns": SORT_COLUMNS["objects"],
    }


@router.get("/")
def catalog_page(request: Request, v: Viewer = Depends(viewer)):
    options = _form_options(v)
    status, error, rows, total, program_ids, has_next = 200, "", [], 0, set(), False
    try:
        sel = _selection(request)
        page = sel.paged()
        # one row more than the page says whether a next page exists without counting
        q = dataclasses.replace(page, limit=page.limit + 1).resolve(v.catalog.vocabulary())
        program_ids = set(q.programs or ())
        rows = [row_dict(OBJECT_COLUMNS, r) for r in v.catalog.query_rows(q)]
        has_next = len(rows) > sel.per_page
        rows = rows[:sel.per_page]
        total = COUNTS.get(COUNTS.key(v, sel))
        if total is None and sel.page == 1 and not has_next:
            total = len(rows)  # everything is on this page
    except ValidationError as err:
        sel, status, error = Selection(selection_from_items([]).query), 400, str(err)
    pages = None if total is None else max(1, math.ceil(total / sel.per_page))
    own_tags = [t for t in options["tags"] if v.user and t["owner"] == v.user and t["kind"] != "system"]
    return render(
        request, v, "catalog.html", status=status, error=error, sel=sel, form=sel.form(), options=options,
        program_ids=program_ids, rows=rows, total=total, pages=pages, has_next=has_next, columns=TABLE_COLUMNS,
        sortable=set(SORT_COLUMNS["objects"]), own_tags=own_tags,
        snippet=sel.snippet(str(request.base_url), v.user, total) if not error else "",
        page_data={"selection": sel.query_string(page=None, per_page=None), "user": v.user,
                   "own_tags": [t["slug"] for t in own_tags], "per_page": sel.per_page, "page": sel.page},
    )


@router.get("/objects.count")
def catalog_count(request: Request, v: Viewer = Depends(viewer)):
    """``{"total": n}`` of a catalog selection (the page's script asks when the page did not know it)."""
    sel = _selection(request)
    key = COUNTS.key(v, sel)
    total = COUNTS.get(key)
    if total is None:
        total = v.catalog.count(sel.query.resolve(v.catalog.vocabulary()))
        COUNTS.put(key, total)
    return json_response({"total": total}, headers={"Cache-Control": "no-store"})


# ------------------------------------------------------------------------------ downloads
def _cell(value) -> str:
    """One value as ECSV/CSV text: strings quoted when needed ('' always, so it is not 'missing')."""
    if value is None:
        return ""
    if isinstance(value, str):
        if value == "" or any(ch in value for ch in ',"\n\r ') or value != value.strip():
            return '"' + value.replace('"', '""') + '"'
        return value
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else repr(value))
    return str(value)


def _row_text(row: dict) -> str:
    values = []
    for name, _, dtype in OBJECT_COLUMNS:
        value = row[name]
        if dtype == "bool":
            value = "True" if value else "False"
        elif dtype == "float" and value is None:
            value = float("nan")
        elif dtype == "int" and value is None:
            value = 0
        elif dtype == "str" and value is None:
            value = ""
        values.append(_cell(value))
    return ",".join(values) + "\n"


def ecsv_header() -> str:
    """The ECSV header of ``query_objects``' columns (astropy's own, comma-delimited)."""
    buf = io.StringIO()
    objects_table([]).write(buf, format="ascii.ecsv", delimiter=",")
    return buf.getvalue()


def _header(kind: str) -> str:
    if kind == "ecsv":
        return ecsv_header()
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([c[0] for c in OBJECT_COLUMNS])
    return buf.getvalue()


def _download(request: Request, v: Viewer, kind: str) -> ClosingStreamingResponse:
    sel = _selection(request)
    q = sel.query.resolve(v.catalog.vocabulary())
    rows = v.catalog.iter_rows(q)

    def body() -> Iterator[bytes]:
        try:
            yield _header(kind).encode("utf-8")
            chunk: list[str] = []
            for row in rows:
                chunk.append(_row_text(row))
                if len(chunk) >= 2000:
                    yield "".join(chunk).encode("utf-8")
                    chunk = []
            if chunk:
                yield "".join(chunk).encode("utf-8")
        finally:
            rows.close()  # the catalog cursor (a read transaction) ends with the download, cut or not

    media = "text/csv; charset=utf-8" if kind == "csv" else "text/plain; charset=utf-8"
    return ClosingStreamingResponse(body(), media_type=media, headers={
        "Content-Disposition": f'attachment; filename="campfire-objects.{kind}"', "Cache-Control": "no-store"})


@router.get("/objects.ecsv")
def download_ecsv(request: Request, v: Viewer = Depends(viewer)):
    return _download(request, v, "ecsv")


@router.get("/objects.csv")
def download_csv(request: Request, v: Viewer = Depends(viewer)):
    return _download(request, v, "csv")
