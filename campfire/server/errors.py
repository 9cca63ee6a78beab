"""Every failure of the API is JSON ``{"error": code, "message": text}``: the exception → response map.

Routes raise campfire's own exceptions (:class:`~campfire.errors.ValidationError` → 400,
:class:`~campfire.errors.NotFoundError` → 404, ...) or an :class:`APIProblem` for a
status of their own; :func:`install_error_handlers` turns each into its response. A
bug is logged with its traceback and answered with a 500 that says nothing internal.
"""
from __future__ import annotations

import json
import logging
from typing import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from campfire.errors import (AuthenticationError, CampfireError, FileFormatError, ImagingError, NotFoundError,
                             ValidationError)
from campfire.server.tags import TagError

__all__ = ["APIProblem", "problem_response", "install_error_handlers"]

log = logging.getLogger("campfire.server")


class APIProblem(Exception):
    """An HTTP error with a JSON body ``{"error": code, "message": message}``."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def problem_response(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    """The JSON error response."""
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI, prefix: str,
                           page_error: Callable[[Request, int, str], Response] | None = None) -> None:
    """Answer every exception a route may raise with a JSON error (``prefix``: where the API lives).

    With ``page_error``, a browser's page navigation outside ``prefix`` (``Accept: text/html``)
    gets ``page_error(request, status, message)`` instead: an HTML page saying the same.
    """

    def problem(request: Request, status: int, code: str, message: str, headers: dict | None = None) -> Response:
        wants_page = (page_error is not None and not request.url.path.startswith(prefix)
                      and "text/html" in request.headers.get("accept", ""))
        if wants_page:
            try:
                response = page_error(request, status, message)
                response.headers.update(headers or {})
                return response
            except Exception:  # the error page itself failed: the JSON answer still says what happened
                log.exception("error page failed on %s %s", request.method, request.url.path)
        return problem_response(status, code, message, headers)

    @app.exception_handler(APIProblem)
    async def _problem(request, exc: APIProblem):
        return problem(request, exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(ValidationError)
    async def _validation(request, exc):
        return problem(request, 400, "invalid_request", str(exc))

    @app.exception_handler(NotFoundError)
    async def _not_found(request, exc):
        return problem(request, 404, "not_found", str(exc))

    @app.exception_handler(AuthenticationError)
    async def _unauthorized(request, exc):
        return problem(request, 401, "unauthorized", str(exc), {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(TagError)
    async def _tag_error(request, exc):
        return problem(request, exc.status, "forbidden" if exc.status == 403 else "conflict", str(exc))

    @app.exception_handler(FileFormatError)
    async def _bad_file(request, exc):
        return problem(request, 404, "not_found", f"no such data in this spectrum's file: {exc}")

    @app.exception_handler(ImagingError)
    async def _imaging(request, exc):
        # the archive's imaging (its files or its object store) failed us: say which, not "internal error"
        log.warning("imaging unavailable on %s %s: %s", request.method, request.url.path, exc)
        return problem(request, 502, "imaging_unavailable", f"the archive's imaging cannot be read: {exc}")

    @app.exception_handler(RequestValidationError)
    async def _request_validation(request, exc):
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
            parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
        return problem(request, 400, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, exc):
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = (f"no such endpoint: {request.method} {request.url.path} (see {prefix}/openapi.json)"
                       if request.url.path.startswith(prefix) else f"no page at {request.url.path}")
        return problem(request, exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(CampfireError)
    async def _campfire(request, exc):
        log.exception("campfire error on %s %s", request.method, request.url.path)
        return problem(request, 500, "internal_error", f"internal error: {type(exc).__name__}")

    @app.exception_handler(Exception)
    async def _bug(request, exc):
        # a real bug: log it with its traceback, tell the client nothing internal
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(request, 500, "internal_error", "internal server error (logged)")
