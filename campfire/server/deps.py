"""FastAPI dependencies of the routes: the archive, and who is calling.

Routes declare ``archive: Archive = Depends(get_archive)`` and
``c: Caller = Depends(caller)`` (or :func:`user_caller` where an account is needed);
the archive is the one :func:`campfire.server.app.create_app` put on ``app.state``.
New route modules (pages, inspections) take the same dependencies.

A caller is identified by an ``Authorization: Bearer`` header (API clients) or, without
one, by the portal's session cookie (browsers, see :mod:`campfire.server.sessions`). A
state-changing request authenticated by the cookie must carry the session's CSRF token
in ``X-CSRF-Token``; without it, or with a wrong one, it is refused with 403.
"""
from __future__ import annotations

from fastapi import Depends, Request, Security
from fastapi.security import OAuth2PasswordBearer

from campfire import config
from campfire.server.archive import Archive, Caller
from campfire.server.errors import APIProblem
from campfire.server.sessions import COOKIE, CSRF_HEADER, UNSAFE_METHODS, Session, tokens_match

__all__ = ["oauth2", "get_archive", "caller", "caller_of", "user_caller", "session_of", "check_csrf"]

# declares the bearer scheme in the OpenAPI document; the header itself is read by Archive.caller
oauth2 = OAuth2PasswordBearer(tokenUrl=f"{config.API_PREFIX}/auth/token", auto_error=False)


async def get_archive(request: Request) -> Archive:
    """The archive this app serves (async: FastAPI runs a sync dependency on a worker thread, a hop per request)."""
    return request.app.state.archive


def session_of(request: Request, archive: Archive) -> Session | None:
    """The portal session of the request's cookie, or None (no cookie, or a dead session)."""
    return archive.sessions.get(request.cookies.get(COOKIE))


def check_csrf(request: Request, session: Session, given: str | None = None) -> None:
    """403 unless the request carries ``session``'s CSRF token (header, or ``given`` from a form)."""
    token = given if given is not None else request.headers.get(CSRF_HEADER)
    if not tokens_match(session.csrf_token, token):
        raise APIProblem(403, "csrf_failed",
                         f"missing or wrong {CSRF_HEADER}: a browser session's changes need its page's CSRF token "
                         "(reload the page)")


def caller(request: Request, _token: str | None = Security(oauth2),
           archive: Archive = Depends(get_archive)) -> Caller:
    """The caller of this request: bearer token, else portal session, else anonymous; 401 for a bad token."""
    return caller_of(request, archive)


def caller_of(request: Request, archive: Archive) -> Caller:
    """:func:`caller` as a plain function, for a route that runs it on its own worker thread (blocking: SQLite)."""
    authorization = request.headers.get("authorization")
    if authorization is not None:
        return archive.caller(authorization)
    session = session_of(request, archive)
    if session is None:
        return archive.caller_for(None)
    if request.method in UNSAFE_METHODS:
        check_csrf(request, session)
    return archive.caller_for(session.username)


def user_caller(c: Caller = Depends(caller)) -> Caller:
    """The caller, who must be logged in (401 otherwise)."""
    if c.user is None:
        raise APIProblem(401, "unauthorized", "log in first: this needs an account (campfire login)",
                         {"WWW-Authenticate": "Bearer"})
    return c
