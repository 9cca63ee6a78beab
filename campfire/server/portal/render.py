"""Rendering the portal's pages: the Jinja2 environment and who is looking.

Templates are autoescaped (every ``{{ value }}`` is HTML-escaped, so a tag name or a
comment is always text, never markup) and never contain inline script: data a page's
script needs travel in ``<script type="application/json">`` blocks (``|tojson``
escapes ``<``, ``>`` and ``&`` there) or ``data-`` attributes.

A page's viewer comes from the session cookie only (browsers send no bearer token);
anonymous viewers see public data only, exactly like anonymous API callers.
"""
from __future__ import annotations

import math
import pathlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Depends, Request
from starlette.responses import HTMLResponse

from campfire.catalog.filters import QUALITY_NAMES
from campfire.catalog.local import LocalCatalog
from campfire.server.archive import Archive, Caller
from campfire.server.deps import get_archive, session_of
from campfire.server.portal.assets import static_url
from campfire.server.sessions import Session

__all__ = ["Viewer", "viewer", "render", "error_page", "local_path", "QUALITY_LABELS"]

HERE = pathlib.Path(__file__).parent

# quality 0-4 with the reference's names, for badges and the inspection form
QUALITY_LABELS = {value: name for name, value in QUALITY_NAMES.items()}


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a page: the caller (visibility, catalog) and their session, if any."""

    caller: Caller
    session: Session | None

    @property
    def user(self) -> str | None:
        return self.caller.user

    @property
    def catalog(self) -> LocalCatalog:
        return self.caller.catalog

    @property
    def csrf(self) -> str:
        return self.session.csrf_token if self.session is not None else ""


def viewer(request: Request, archive: Archive = Depends(get_archive)) -> Viewer:
    """The viewer of a page request (anonymous without a live session cookie)."""
    session = session_of(request, archive)
    return Viewer(archive.caller_for(session.username if session else None), session)


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site (for ``?next=``), else ``default`` (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(ch) < 32 for ch in target):
        return default
    return target


def _fmt(value, digits: int = 3) -> str:
    """A number for a table cell: fixed decimals, '' for missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _quality_name(value) -> str:
    return QUALITY_LABELS.get(int(value or 0), str(value))


ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.globals.update(static=static_url, quality_labels=QUALITY_LABELS)
ENV.filters.update(fmt=_fmt, quality_name=_quality_name, urlpart=lambda s: quote(str(s), safe=""))


def render(request: Request, v: Viewer, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page: ``template`` rendered with the viewer (user, CSRF token) and ``context``."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    html = ENV.get_template(template).render(user=v.user, csrf=v.csrf, here=here, **context)
    # pages show what this viewer may see: never cached by anyone else, never stale after logout
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """An HTML error page (for a browser's navigation; API callers get JSON)."""
    archive: Archive = request.app.state.archive
    session = session_of(request, archive)
    v = Viewer(archive.caller_for(session.username if session else None), session)
    titles = {400: "Bad request", 401: "Log in first", 403: "Not allowed", 404: "Not found", 429: "Slow down"}
    return render(request, v, "error.html", status=status, status_code=status,
                  title=titles.get(status, "Something went wrong"), message=message)
