"""Catalog answers shared by several routes: a page of rows, one object or spectrum (or 404)."""
from __future__ import annotations

from starlette.responses import Response

from campfire import config
from campfire.catalog.columns import columns_of
from campfire.catalog.filters import query_from_params
from campfire.errors import NotFoundError, ValidationError
from campfire.server.archive import Caller
from campfire.server.encoding import json_response
from campfire.server.params import check_id, query_params

__all__ = ["list_rows", "object_or_404", "spectrum_or_404"]


def list_rows(kind: str, request, c: Caller) -> Response:
    """One page of ``/objects`` or ``/spectra``: the filter vocabulary, paging and an optional total."""
    params = query_params(request)
    want_count = params.pop("count", "true").lower()
    if want_count not in ("true", "false", "1", "0"):
        raise ValidationError(f"count: expected true or false, got {want_count!r}")
    params.setdefault("limit", str(config.get("api.page-size")))
    q = query_from_params(kind, params)
    if q.staleness is not None:
        raise ValidationError("staleness: not supported by the server (it cannot know your local files); "
                              "use it on a synced local catalog")
    max_limit = int(config.get("api.max-limit"))
    if q.limit is None or q.limit > max_limit:
        raise ValidationError(f"limit: at most {max_limit} rows per request; page with offset "
                              "(or use iter_objects / iter_spectra)")
    q = q.resolve(c.catalog.vocabulary())
    rows = c.catalog.query_rows(q)
    total = c.catalog.count(q) if want_count in ("true", "1") else None
    return json_response({"kind": kind, "total": total, "limit": q.limit, "offset": q.offset,
                          "columns": [col[0] for col in columns_of(kind)], "rows": rows})


def object_or_404(c: Caller, object_id: str) -> dict:
    """The object's row as ``c`` sees it; NotFoundError (404) when it does not exist for them."""
    check_id("object_id", object_id)
    row = c.catalog.object_row(object_id)
    if row is None:
        raise NotFoundError(f"object {object_id!r} not found")
    return row


def spectrum_or_404(c: Caller, spectrum_id: str) -> dict:
    """The spectrum's row as ``c`` sees it; NotFoundError (404) when it does not exist for them."""
    check_id("spectrum_id", spectrum_id)
    row = c.catalog.spectrum_row(spectrum_id)
    if row is None:
        raise NotFoundError(f"spectrum {spectrum_id!r} not found")
    return row
