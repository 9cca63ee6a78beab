"""The browser portal of ``campfire serve``: catalog, object pages, inspection, tags.

Pages are rendered on the server with Jinja2 templates (autoescaped: user text — tag
names, comments — can never become markup) and enhanced by a few plain JavaScript
modules (no build step, no framework) that draw the plots with Plotly.js and send the
writes to the same ``/api/v1`` endpoints every client uses. Every asset is served by
campfire itself — Plotly.js from the installed ``plotly`` package — so the portal works
offline. Why this stack: nothing to build or bundle at install time, the server's
catalog code renders the tables directly (a catalog page costs one SQL query, no
client-side framework booting), pages work and stay readable without JavaScript, and
the plots use the Plotly.js that campfire's Python plotting already depends on.

==============  ====================================================================
``render``      the Jinja2 environment, the viewer of a page (session, CSRF token)
``account``     ``/login``, ``/logout``
``selection``   the catalog form ↔ the filter vocabulary, the Python snippet
``catalog``     ``/`` (the catalog page), ``/objects.ecsv`` and ``/objects.csv``
``view``        the data of an object page (spectra, fits, photometry) as JSON
``objects``     ``/objects/{object_id}`` and its data
``tags``        ``/tags``
``queue``       ``/queue``: the selection's objects to grade, and its conflicts
``assets``      ``/static/...`` (our scripts and styles, Plotly.js)
==============  ====================================================================
"""
from __future__ import annotations

from fastapi import FastAPI

__all__ = ["include_portal"]


def include_portal(app: FastAPI) -> None:
    """Mount the portal's pages and static assets on ``app``."""
    from campfire.server.portal import account, assets, catalog, objects, queue, tags

    for module in (account, catalog, objects, queue, tags, assets):
        app.include_router(module.router, include_in_schema=False)
