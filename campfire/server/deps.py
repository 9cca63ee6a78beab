"""FastAPI dependencies of the routes: the archive, and who is calling.

Routes declare ``archive: Archive = Depends(get_archive)`` and
``c: Caller = Depends(caller)`` (or :func:`user_caller` where an account is needed);
the archive is the one :func:`campfire.server.app.create_app` put on ``app.state``.
New route modules (pages, inspections) take the same dependencies.
"""
from __future__ import annotations

from fastapi import Depends, Request, Security
from fastapi.security import OAuth2PasswordBearer

from campfire import config
from campfire.server.archive import Archive, Caller
from campfire.server.errors import APIProblem

__all__ = ["oauth2", "get_archive", "caller", "user_caller"]

# declares the bearer scheme in the OpenAPI document; the header itself is read by Archive.caller
oauth2 = OAuth2PasswordBearer(tokenUrl=f"{config.API_PREFIX}/auth/token", auto_error=False)


def get_archive(request: Request) -> Archive:
    """The archive this app serves."""
    return request.app.state.archive


def caller(request: Request, _token: str | None = Security(oauth2),
           archive: Archive = Depends(get_archive)) -> Caller:
    """The caller of this request (anonymous without an Authorization header); 401 for a bad token."""
    return archive.caller(request.headers.get("authorization"))


def user_caller(c: Caller = Depends(caller)) -> Caller:
    """The caller, who must be logged in (401 otherwise)."""
    if c.user is None:
        raise APIProblem(401, "unauthorized", "log in first: this needs an account (campfire login)",
                         {"WWW-Authenticate": "Bearer"})
    return c
