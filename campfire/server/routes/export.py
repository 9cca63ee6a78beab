"""The bulk export behind ``sync()``: the visible catalog in one gzip stream (see :mod:`campfire.server.export`)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from campfire.server.archive import Archive, Caller
from campfire.server.deps import caller, get_archive
from campfire.server.export import plan_export
from campfire.server.params import no_extra, query_params
from campfire.server.streaming import ClosingStreamingResponse

__all__ = ["router"]

router = APIRouter(tags=["sync"])


@router.get("/export", response_class=Response,
            summary="The visible catalog in one gzip stream: a SQLite snapshot, or an NDJSON delta with since=cursor")
def export(request: Request, c: Caller = Depends(caller), archive: Archive = Depends(get_archive)):
    params = query_params(request)
    since = params.pop("since", None) or None
    no_extra(params)
    # blind mode: the records a reviewer has not earned by grading stay on the server
    own_only = archive.blind_inspections and not c.is_admin
    plan = plan_export(archive.db_path, c.visibility, since=since, catalog_id=archive.catalog_id(),
                       workdir=archive.root / "cache" / "exports", own_inspections_only=own_only)
    # closed when the response ends: a cut or abandoned sync releases its temporary snapshot now
    return ClosingStreamingResponse(
        plan.chunks, media_type="application/gzip",
        headers={"X-Campfire-Export": plan.kind, "X-Campfire-Cursor": plan.cursor, "Cache-Control": "no-store"},
    )
