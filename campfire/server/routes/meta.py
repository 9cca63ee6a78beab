"""Health and the archive's metadata: programs, fields, gratings, observations, counts."""
from __future__ import annotations

from fastapi import APIRouter, Depends

from campfire.server.archive import Archive, Caller
from campfire.server.deps import caller, get_archive
from campfire.server.encoding import json_response, table_json

__all__ = ["router", "API_VERSION"]

API_VERSION = "1"

router = APIRouter()


@router.get("/health", tags=["meta"], summary="Liveness and catalog identity")
def health(archive: Archive = Depends(get_archive)):
    return json_response({"status": "ok", "api_version": API_VERSION, "catalog_id": archive.catalog_id()})


@router.get("/metadata", tags=["metadata"], summary="programs, fields, gratings, observations")
def metadata(c: Caller = Depends(caller)):
    return json_response(c.catalog.metadata())


@router.get("/programs", tags=["metadata"], summary="Programs: program_id, slug, program_name, pi_name, is_public")
def programs(c: Caller = Depends(caller)):
    return json_response(table_json(c.catalog.programs()))


@router.get("/fields", tags=["metadata"])
def fields(c: Caller = Depends(caller)):
    return json_response(c.catalog.fields())


@router.get("/gratings", tags=["metadata"])
def gratings(c: Caller = Depends(caller)):
    return json_response(c.catalog.gratings())


@router.get("/observations", tags=["metadata"])
def observations(c: Caller = Depends(caller)):
    return json_response(c.catalog.observations())


@router.get("/counts", tags=["metadata"], summary="Visible observations, objects and spectra")
def counts(c: Caller = Depends(caller)):
    return json_response(c.catalog.counts())
