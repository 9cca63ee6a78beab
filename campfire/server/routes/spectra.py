"""Spectra: the query (``/spectra``) and one spectrum's catalog row."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from campfire.server.archive import Caller
from campfire.server.deps import caller
from campfire.server.encoding import clean_row, json_response
from campfire.server.params import filter_doc, no_extra, query_params
from campfire.server.records import list_rows, spectrum_or_404

__all__ = ["router"]

router = APIRouter(tags=["catalog"])


@router.get("/spectra", summary="Query spectra (one row per spectrum)", openapi_extra={"parameters": filter_doc()})
def list_spectra(request: Request, c: Caller = Depends(caller)):
    return list_rows("spectra", request, c)


@router.get("/spectra/{spectrum_id}", summary="One spectrum's catalog row")
def get_spectrum(spectrum_id: str, request: Request, c: Caller = Depends(caller)):
    no_extra(query_params(request))
    return json_response(clean_row(spectrum_or_404(c, spectrum_id)))
