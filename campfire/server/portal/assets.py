"""The portal's static files: our scripts and styles, and Plotly.js from the ``plotly`` package.

Everything a page loads comes from this server (the portal works without internet).
Plotly.js is the ``plotly.min.js`` bundled with the installed ``plotly`` Python package
(the same library campfire's Python plotting uses); it is sent gzip-compressed when the
browser accepts it (4.8 MB → about 1.4 MB, compressed once per server). URLs carry a
version (``?v=``), so browsers may cache the files; a changed file gets a new URL.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import pathlib

from fastapi import APIRouter, Request
from starlette.responses import Response

from campfire.errors import NotFoundError

__all__ = ["router", "STATIC_DIR", "static_url", "plotly_version", "plotly_path"]

router = APIRouter()

STATIC_DIR = pathlib.Path(__file__).parent / "static"

_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".svg": "image/svg+xml", ".png": "image/png"}
_CACHE = "public, max-age=86400"


def _asset_versions() -> dict[str, str]:
    # content hashes make the URLs change with the files (browsers never run stale scripts)
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:12] for p in STATIC_DIR.iterdir() if p.is_file()}


_VERSIONS = _asset_versions()


def static_url(name: str) -> str:
    """The versioned URL of one of the portal's static files (or ``vendor/plotly.min.js``)."""
    if name == "vendor/plotly.min.js":
        return f"/static/vendor/plotly.min.js?v={plotly_version()}"
    return f"/static/{name}?v={_VERSIONS.get(name, '0')}"


def plotly_path() -> pathlib.Path:
    """The ``plotly.min.js`` shipped with the installed plotly package."""
    try:
        import plotly
    except ImportError:
        raise NotFoundError("plotly.js is not available: install campfire's server extra (it needs plotly)") from None
    path = pathlib.Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise NotFoundError(f"plotly.js is not available: {path} is missing")
    return path


@functools.cache
def plotly_version() -> str:
    """The installed plotly package's version (the cache key of its script)."""
    try:
        import plotly
    except ImportError:
        return "missing"
    return plotly.__version__


@functools.cache
def _plotly_bodies() -> tuple[bytes, bytes, str]:
    raw = plotly_path().read_bytes()
    return raw, gzip.compress(raw, compresslevel=6, mtime=0), hashlib.sha256(raw).hexdigest()[:16]


@functools.cache
def _static_file(name: str) -> tuple[bytes, str, str]:
    path = STATIC_DIR / name
    # only the files of the static folder itself: no sub-paths, no dot-files
    if "/" in name or "\\" in name or name.startswith(".") or not path.is_file() or path.suffix not in _TYPES:
        raise NotFoundError(f"no static file {name!r}")
    body = path.read_bytes()
    return body, _TYPES[path.suffix], hashlib.sha256(body).hexdigest()[:16]


def _send(request: Request, body: bytes, media_type: str, etag: str, headers: dict | None = None) -> Response:
    headers = {"ETag": f'"{etag}"', "Cache-Control": _CACHE, **(headers or {})}
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


@router.get("/static/vendor/plotly.min.js")
def plotly_js(request: Request):
    raw, packed, etag = _plotly_bodies()
    if "gzip" in request.headers.get("accept-encoding", ""):
        return _send(request, packed, _TYPES[".js"], etag + "-gz", {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    return _send(request, raw, _TYPES[".js"], etag, {"Vary": "Accept-Encoding"})


@router.get("/static/{name}")
def static_file(name: str, request: Request):
    body, media_type, etag = _static_file(name)
    return _send(request, body, media_type, etag)
