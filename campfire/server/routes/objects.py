"""Objects: the query (``/objects``) and one object with its spectra and photometry."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from campfire.server.archive import Caller
from campfire.server.deps import caller
from campfire.server.encoding import clean_row, finite, json_response
from campfire.server.params import filter_doc, no_extra, query_params
from campfire.server.records import list_rows, object_or_404

__all__ = ["router"]

router = APIRouter(tags=["catalog"])


@router.get("/objects", summary="Query objects (one row per sky position)",
            openapi_extra={"parameters": filter_doc()})
def list_objects(request: Request, c: Caller = Depends(caller)):
    return list_rows("objects", request, c)


@router.get("/objects/{object_id}", summary="One object with its spectra and photometry")
def get_object(object_id: str, request: Request, c: Caller = Depends(caller)):
    no_extra(query_params(request))
    row = object_or_404(c, object_id)
    spectra = [clean_row(s) for s in c.catalog.object_spectra(object_id)]
    phot = c.catalog.object_photometry(object_id)
    if phot is not None:
        phot = {k: (finite(v) if not isinstance(v, list) else v) for k, v in phot.items()}
    return json_response({"object": clean_row(row), "spectra": spectra, "photometry": phot})
