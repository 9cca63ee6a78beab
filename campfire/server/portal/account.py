"""Logging in and out of the portal (``/login``, ``/logout``), with the API's accounts.

The login form is protected against login CSRF by a double-submit token: ``GET /login``
sets a short-lived HttpOnly cookie and puts the same random value in the form; ``POST
/login`` refuses a form whose value does not match the cookie. Logging out is a form
POST carrying the session's CSRF token. Failed logins count against the same rate limit
as the API's token endpoint.
"""
from __future__ import annotations

import math
import secrets

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from campfire import config
from campfire.server.archive import Archive
from campfire.server.deps import check_csrf, get_archive, session_of
from campfire.server.limits import Busy
from campfire.server.logins import LoginLimited
from campfire.server.params import read_form
from campfire.server.portal.render import Viewer, local_path, render, viewer
from campfire.server.sessions import COOKIE, LOGIN_COOKIE, cookie_options, tokens_match

__all__ = ["router"]

router = APIRouter()

LOGIN_FORM_TTL = 3600  # seconds a login form stays valid


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _login_form(request: Request, v: Viewer, next_url: str, status: int = 200, message: str = "",
                username: str = "") -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, v, "login.html", status=status, next_url=next_url, login_token=token,
                      message=message, username=username)
    response.set_cookie(LOGIN_COOKIE, token, **cookie_options(_secure(request), LOGIN_FORM_TTL))
    return response


@router.get("/login")
def login_page(request: Request, next: str = "/", v: Viewer = Depends(viewer)):
    return _login_form(request, v, local_path(next))


@router.post("/login")
async def login(request: Request, archive: Archive = Depends(get_archive), v: Viewer = Depends(viewer)):
    form = await read_form(request)
    next_url = local_path(form.get("next"))
    username = (form.get("username") or "").strip().lower()
    password = form.get("password") or ""
    if not tokens_match(request.cookies.get(LOGIN_COOKIE), form.get("login_token")):
        return _login_form(request, v, next_url, 403, "This login form has expired; please try again.", username)
    if not username or not password:
        return _login_form(request, v, next_url, 400, "Enter your user name and password.", username)
    client = request.client.host if request.client else "?"
    try:
        ok = await archive.check_login(username, password, client)
    except LoginLimited as err:
        response = _login_form(request, v, next_url, 429, f"Too many failed logins; try again in "
                               f"{math.ceil(err.wait)} s.", username)
        response.headers["Retry-After"] = str(math.ceil(err.wait))
        return response
    except Busy as err:
        response = _login_form(request, v, next_url, 503, f"The server is busy; try again in {err.retry_after} s.",
                               username)
        response.headers["Retry-After"] = str(err.retry_after)
        return response
    if not ok:
        return _login_form(request, v, next_url, 400, "Invalid user name or password.", username)
    # a new session id at every login (no session fixation); the old one, if any, ends
    archive.sessions.end(request.cookies.get(COOKIE))
    token, _ = await run_in_threadpool(archive.sessions.create, username)
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(COOKIE, token, **cookie_options(_secure(request), int(config.get("server.session-ttl"))))
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request, archive: Archive = Depends(get_archive)):
    form = await read_form(request)
    session = session_of(request, archive)
    if session is not None:
        check_csrf(request, session, form.get("csrf_token", ""))
        archive.sessions.end(request.cookies.get(COOKIE))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request))
    return response
