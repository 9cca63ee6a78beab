"""Inspections: grade an object, read its history and consensus, walk a reviewer's queue, refit a redshift.

The rules (who may inspect, blind mode, the refit's bounds) are in
:mod:`campfire.server.inspections`; the records and the consensus in
:mod:`campfire.catalog.inspections` and :mod:`campfire.catalog.consensus`.
"""
from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Request

from campfire import config
from campfire.catalog.filters import query_from_params
from campfire.errors import ValidationError
from campfire.server import inspections as review
from campfire.server.archive import Archive, Caller
from campfire.server.deps import caller, get_archive, user_caller
from campfire.server.encoding import json_response
from campfire.server.params import filter_doc, no_extra, query_params
from campfire.server.records import object_or_404

__all__ = ["router"]

router = APIRouter(tags=["inspections"])

QUEUE_PAGE = 100


@router.post("/objects/{object_id}/inspections", status_code=201,
             summary="Grade an object: store an inspection (reviewer, redshift, quality, comment, issues)")
def post_inspection(object_id: str, c: Caller = Depends(user_caller), archive: Archive = Depends(get_archive),
                    body: dict = Body(..., examples=[{"redshift": 3.421, "quality": "secure", "comment": "Ha, [OIII]",
                                                      "issues": []}])):
    object_or_404(c, object_id)
    return json_response(review.inspect(archive, c, object_id, body), status=201)


@router.get("/objects/{object_id}/inspections", summary="An object's inspections you may see, and their consensus")
def get_inspections(object_id: str, request: Request, c: Caller = Depends(caller),
                    archive: Archive = Depends(get_archive)):
    no_extra(query_params(request))
    object_or_404(c, object_id)
    return json_response(review.visible_inspections(archive, c, object_id))


@router.get("/inspections/queue", summary="Objects of a selection you have not graded, or that are in conflict",
            openapi_extra={"parameters": filter_doc()})
def inspection_queue(request: Request, c: Caller = Depends(user_caller), archive: Archive = Depends(get_archive)):
    params = query_params(request)
    mode = params.pop("mode", "ungraded")
    params.setdefault("limit", str(QUEUE_PAGE))
    q = query_from_params("objects", params)
    if q.staleness is not None:
        raise ValidationError("staleness: not supported by the server (it cannot know your local files)")
    max_limit = int(config.get("api.max-limit"))
    if q.limit is None or q.limit > max_limit:
        raise ValidationError(f"limit: at most {max_limit} objects per request; page with offset")
    return json_response(review.queue(archive, c, q, mode))


@router.post("/objects/{object_id}/refit",
             summary="Refit the redshift of one visible spectrum in a narrow window (members and admins)")
def refit(object_id: str, c: Caller = Depends(user_caller), archive: Archive = Depends(get_archive),
          body: dict = Body(..., examples=[{"z_center": 3.42, "dz": 0.05}])):
    object_or_404(c, object_id)
    return json_response(review.refit(archive, c, object_id, body))
