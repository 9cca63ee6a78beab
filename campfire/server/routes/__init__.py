"""The API's routes, one ``APIRouter`` per resource; :func:`include_api` mounts them all.

===============  ============================================================
``meta``         health, metadata, programs, fields, gratings, observations, counts
``auth``         the OAuth2 token endpoint, revoke, ``/me``
``objects``      object queries and one object with spectra and photometry
``spectra``      spectrum queries and one spectrum's row
``files``        a spectrum's FITS file, its arrays, its redshift fit
``imaging``      cutouts and MSA shutters
``tags``         listing and editing tags
``inspections``  grading objects, their history and consensus, the queue, the refit
``export``       the bulk export behind ``sync()``
===============  ============================================================
"""
from __future__ import annotations

from fastapi import FastAPI

from campfire.server.routes import auth, export, files, imaging, inspections, meta, objects, spectra, tags

__all__ = ["API_ROUTERS", "include_api"]

API_ROUTERS = (meta.router, auth.router, objects.router, spectra.router, files.router, imaging.router,
               tags.router, inspections.router, export.router)


def include_api(app: FastAPI, prefix: str) -> None:
    """Mount every API router under ``prefix`` (``/api/v1``)."""
    for router in API_ROUTERS:
        app.include_router(router, prefix=prefix)
