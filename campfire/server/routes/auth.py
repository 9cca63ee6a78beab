"""Logging in and out: the OAuth2 token endpoint (password and refresh_token grants), revoke, ``/me``."""
from __future__ import annotations

import math

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from campfire.errors import AuthenticationError, ValidationError
from campfire.server.archive import Archive, Caller
from campfire.server.deps import caller, get_archive
from campfire.server.encoding import json_response
from campfire.server.limits import Busy
from campfire.server.logins import LoginLimited
from campfire.server.params import read_form

__all__ = ["router"]

router = APIRouter(tags=["auth"])

_TOKEN_FORM = {"requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {
    "type": "object", "required": ["grant_type"],
    "properties": {"grant_type": {"type": "string", "enum": ["password", "refresh_token"]},
                   "username": {"type": "string"}, "password": {"type": "string", "format": "password"},
                   "refresh_token": {"type": "string"}}}}}}}


def _oauth_error(status: int, error: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": message, "message": message},
                        status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})


@router.get("/me", summary="The caller: user name and member programs")
def me(c: Caller = Depends(caller), archive: Archive = Depends(get_archive)):
    public, _ = archive.program_sets()
    programs = sorted(c.visibility.program_ids - public) if c.visibility.program_ids is not None else []
    return json_response({"username": c.user, "programs": programs, "visibility": c.visibility.key})


@router.post("/auth/token", summary="OAuth2 token endpoint (password and refresh_token grants)",
             openapi_extra=_TOKEN_FORM)
async def token(request: Request, archive: Archive = Depends(get_archive)):
    form = await read_form(request)
    grant = form.get("grant_type")
    if grant == "password":
        username, password = form.get("username"), form.get("password")
        if not username or password is None:
            return _oauth_error(400, "invalid_request", "the password grant needs username and password")
        client = request.client.host if request.client else "?"
        try:
            ok = await archive.check_login(username, password, client)
        except LoginLimited as err:
            return _oauth_error(429, "rate_limited", str(err), {"Retry-After": str(math.ceil(err.wait))})
        except Busy as err:
            return _oauth_error(503, "busy", str(err), {"Retry-After": str(err.retry_after)})
        if not ok:
            return _oauth_error(400, "invalid_grant", "invalid username or password")
        pair = await run_in_threadpool(archive.auth.issue, username)
    elif grant == "refresh_token":
        refresh = form.get("refresh_token")
        if not refresh:
            return _oauth_error(400, "invalid_request", "the refresh_token grant needs refresh_token")
        try:
            pair = await run_in_threadpool(archive.auth.rotate, refresh)
        except AuthenticationError as err:
            return _oauth_error(400, "invalid_grant", str(err))
    else:
        return _oauth_error(400, "unsupported_grant_type",
                            f"grant_type must be 'password' or 'refresh_token', got {grant!r}")
    return json_response(pair.as_response(), headers={"Cache-Control": "no-store"})


@router.post("/auth/revoke", summary="Log out: revoke a refresh token and its rotations")
async def revoke(request: Request, archive: Archive = Depends(get_archive)):
    form = await read_form(request)
    token_value = form.get("token") or form.get("refresh_token")
    if not token_value:
        raise ValidationError("token: the refresh token to revoke is required")
    archive.auth.revoke(token_value)
    return json_response({"revoked": True})
