"""Pictures around an object: a cutout PNG and the MSA shutters (only of observations the caller may see)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from campfire.errors import ValidationError
from campfire.server.archive import Archive, Caller
from campfire.server.deps import caller, get_archive
from campfire.server.encoding import json_response
from campfire.server.errors import APIProblem
from campfire.server.params import float_param, no_extra, query_params
from campfire.server.records import object_or_404

__all__ = ["router"]

router = APIRouter(tags=["imaging"])


def _imaging():
    # matplotlib-backed: imported on the first picture, and a server without it answers 501
    try:
        import campfire.imaging
    except ImportError as err:
        raise APIProblem(501, "not_implemented", f"imaging is not available on this server ({err})") from None
    return campfire.imaging


@router.get("/objects/{object_id}/cutout.png", summary="Cutout image around an object", response_class=Response)
def cutout(object_id: str, request: Request, c: Caller = Depends(caller), archive: Archive = Depends(get_archive)):
    params = query_params(request)
    fov = float_param(params, "fov", 5.0, 0.01, 60.0)
    size = float_param(params, "size", None, 8, 4096)
    no_extra(params)
    if size is not None and size != int(size):
        raise ValidationError("size: expected an integer number of pixels")
    object_or_404(c, object_id)
    png = _imaging().make_cutout_png(archive.root, object_id, fov, None if size is None else int(size))
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/objects/{object_id}/shutters", summary="MSA shutter geometry around an object")
def shutters(object_id: str, request: Request, c: Caller = Depends(caller), archive: Archive = Depends(get_archive)):
    params = query_params(request)
    fov = float_param(params, "fov", 5.0, 0.01, 60.0)
    no_extra(params)
    object_or_404(c, object_id)
    # only the MSA designs of observations the caller may see
    data = _imaging().shutter_geometry(archive.root, object_id, fov, observations=c.catalog.observations())
    return json_response(data)
