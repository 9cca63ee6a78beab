"""Security headers on every response: Content-Security-Policy, no framing, no sniffing.

The portal's pages load scripts, styles, images and data only from this server
(Plotly.js included: it is served from the installed ``plotly`` package), never run
inline script (page data travel in ``<script type="application/json">`` blocks and
``data-`` attributes read by the portal's modules), and may not be framed.

``style-src`` allows ``'unsafe-inline'`` only because Plotly.js injects its stylesheet
as a ``<style>`` element at load time and styles its mode bar inline: under
``style-src 'self'`` it warns "Cannot addRelatedStyleRule, probably due to strict CSP"
and the mode bar breaks (plotly.js issues #2355 and #7543; v3 ships no separate CSS).
Styles cannot run code; scripts stay ``'self'`` only. ``img-src data: blob:`` lets Plotly draw
heatmaps (a canvas turned into a ``data:`` image) and export PNGs.

The interactive API docs (Swagger UI at ``/api/v1/docs``) come from a CDN with an inline
bootstrap script; they keep FastAPI's page and get no CSP (they are not part of the
portal, and hold no session state).
"""
from __future__ import annotations

from starlette.datastructures import MutableHeaders

__all__ = ["CONTENT_SECURITY_POLICY", "SecurityHeaders"]

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
])

_ALWAYS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class SecurityHeaders:
    """ASGI middleware adding the security headers to every HTTP response.

    Parameters
    ----------
    app : ASGI app
    exempt : tuple of str
        Paths served without the Content-Security-Policy (the Swagger UI page).
    """

    def __init__(self, app, exempt: tuple[str, ...] = ()):
        self.app = app
        self.exempt = frozenset(exempt)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with_csp = scope.get("path") not in self.exempt

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in _ALWAYS.items():
                    headers.setdefault(key, value)
                if with_csp:
                    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            await send(message)

        await self.app(scope, receive, send_with_headers)
