"""Pictures around an object: a cutout PNG and the MSA shutters (only of observations the caller may see).

Cutouts are rendered within the server's limits and cached (:mod:`campfire.server.cutouts`).
The imaging is read from ``<root>/imaging`` or the object store of ``archive_meta.imaging_url``;
imaging that cannot be read (a corrupt index, an unreachable store) is a ``502``
``imaging_unavailable`` naming the file, not an internal error.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from campfire.errors import ValidationError
from campfire.imaging.geometry import FOV_MAX, SIZE_RANGE  # the server allows what imaging renders
from campfire.imaging.shutters import shutter_geometry
from campfire.server.archive import Archive, Caller
from campfire.server.cutouts import cutout_png
from campfire.server.deps import caller, get_archive
from campfire.server.encoding import json_response
from campfire.server.errors import APIProblem
from campfire.server.limits import Busy
from campfire.server.params import float_param, no_extra, query_params
from campfire.server.records import object_or_404

__all__ = ["router"]

router = APIRouter(tags=["imaging"])


@router.get("/objects/{object_id}/cutout.png", summary="Cutout image around an object", response_class=Response)
async def cutout(object_id: str, request: Request, c: Caller = Depends(caller),
                 archive: Archive = Depends(get_archive)):
    params = query_params(request)
    fov = float_param(params, "fov", 5.0, 0.01, FOV_MAX)
    size = float_param(params, "size", None, *SIZE_RANGE)
    no_extra(params)
    if size is not None and size != int(size):
        raise ValidationError("size: expected an integer number of pixels")
    row = await run_in_threadpool(object_or_404, c, object_id)
    try:
        png = await cutout_png(archive, row, fov, None if size is None else int(size))
    except Busy as err:
        raise APIProblem(503, "busy", str(err), {"Retry-After": str(err.retry_after)}) from None
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/objects/{object_id}/shutters", summary="MSA shutter geometry around an object")
def shutters(object_id: str, request: Request, c: Caller = Depends(caller), archive: Archive = Depends(get_archive)):
    params = query_params(request)
    fov = float_param(params, "fov", 5.0, 0.01, FOV_MAX)
    no_extra(params)
    object_or_404(c, object_id)
    # only the MSA designs of observations the caller may see
    data = shutter_geometry(archive.root, object_id, fov, observations=c.catalog.observations())
    return json_response(data)
