"""The archive server's HTTP API (FastAPI), versioned under ``/api/v1``.

``create_app(root)`` builds the ASGI app over an archive root; ``serve(root, host=,
port=)`` runs it with uvicorn (``campfire serve ROOT``). The OpenAPI document is at
``/api/v1/openapi.json`` (interactive docs at ``/api/v1/docs``).

Every request is answered through :class:`~campfire.catalog.local.LocalCatalog` with
the caller's :class:`~campfire.catalog.visibility.Visibility`: anonymous callers see public
programs and system tags; a logged-in user also sees the proprietary programs they are
a member of and the shared tags plus their own private tags. What a caller may not see
does not exist for them: 404, never 403, on direct IDs, and every aggregate is computed
over visible spectra only. Query strings are parsed by
:func:`campfire.catalog.filters.query_from_params` (the client sends
:meth:`Query.to_params`), so both ends share one vocabulary; user values only ever
travel as bound SQL parameters. Errors are JSON ``{"error": code, "message": text}``.

Where things are: the archive's state in :mod:`campfire.server.archive`, the routes
in :mod:`campfire.server.routes` (one module per resource), their dependencies in
:mod:`campfire.server.deps`, JSON in :mod:`campfire.server.encoding`, errors in
:mod:`campfire.server.errors`.

Examples
--------
>>> from campfire.server.app import create_app
>>> app = create_app(campfire.demo.ensure())  # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import os

# the server package is the one place fastapi/starlette are imported (never by `import campfire`)
from fastapi import FastAPI

from campfire import config
from campfire.server.archive import Archive
from campfire.server.errors import install_error_handlers
from campfire.server.faults import FaultInjector, FaultMiddleware
from campfire.server.headers import SecurityHeaders
from campfire.server.limits import BodyLimit, body_limits, uvicorn_config
from campfire.server.openapi import install as install_openapi
from campfire.server.portal import include_portal
from campfire.server.portal.render import error_page
from campfire.server.routes import include_api
from campfire.server.routes.meta import API_VERSION

__all__ = ["create_app", "serve", "Archive", "API_VERSION"]

PREFIX = config.API_PREFIX


def create_app(root: str | os.PathLike, *, faults: FaultInjector | None = None,
               blind_inspections: bool = False, products_delivery: str | None = None) -> FastAPI:
    """Build the FastAPI application serving the archive at ``root``.

    Parameters
    ----------
    root : path
        Archive root with ``meta/campfire.db`` and ``products/``.
    faults : campfire.server.faults.FaultInjector, optional
        Test hook: an ASGI middleware that injects errors, throttling or cut
        connections. Never set in production.
    blind_inspections : bool
        A reviewer sees other reviewers' inspections of an object only after giving
        their own (``campfire serve --blind-inspections``).
    products_delivery : {'redirect', 'stream'}, optional
        When the products live on an object store (``campfire archive ingest
        --products-url``): answer a file request with a 307 redirect to a pre-signed URL
        valid ``campfire.server.presign-expires`` seconds (the bytes never pass through
        this server), or stream the bytes through it (clients that cannot reach the
        store). Default ``campfire.server.products-delivery`` (redirect).

    Returns
    -------
    fastapi.FastAPI
        The app; ``app.state.archive`` is its :class:`~campfire.server.archive.Archive`.

    Raises
    ------
    CampfireError
        ``root`` is not an archive root a server may serve.

    Examples
    --------
    >>> app = create_app('/data/archive')  # doctest: +SKIP
    >>> import uvicorn; uvicorn.run(app, port=8000)  # doctest: +SKIP
    """
    archive = Archive(root, blind_inspections=blind_inspections, products_delivery=products_delivery)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        archive.close()

    app = FastAPI(
        lifespan=lifespan,
        title="campfire archive API",
        version=API_VERSION,
        description=(
            "HTTP API of a campfire JWST/NIRSpec MSA spectroscopy archive. Proprietary programs are visible "
            "to their members only; log in with the OAuth2 password grant at /api/v1/auth/token."
        ),
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
    )
    app.state.archive = archive
    install_error_handlers(app, PREFIX, page_error=error_page)
    include_api(app, PREFIX)
    include_portal(app)
    # 413 for an oversized body before the app reads a byte of it
    app.add_middleware(BodyLimit, per_path=body_limits(PREFIX))
    # the document says what each endpoint really answers (bodies, 400/401/404 errors, auth)
    install_openapi(app, PREFIX)
    # CSP, no framing, no sniffing on every response (the Swagger UI page keeps FastAPI's own)
    app.add_middleware(SecurityHeaders, exempt=(f"{PREFIX}/docs",))
    if faults is not None:
        app.add_middleware(FaultMiddleware, injector=faults)
    return app


def serve(root: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000, *, blind_inspections: bool = False,
          forwarded_allow_ips: str | list[str] | None = None, products_delivery: str | None = None,
          **uvicorn_options) -> None:
    """Serve the archive at ``root`` over HTTP until interrupted (``campfire serve``).

    Parameters
    ----------
    root : path
        The archive root.
    host : str
        Interface to listen on.
    port : int
        Port (0: any free port; uvicorn prints the one it bound).
    blind_inspections : bool
        Blind mode for inspections (see :func:`create_app`).
    forwarded_allow_ips : str or list of str, optional
        Proxies whose ``X-Forwarded-For`` is trusted (``campfire serve --forwarded-allow-ips``);
        by default no proxy header is trusted (see :func:`campfire.server.limits.uvicorn_config`).
    products_delivery : {'redirect', 'stream'}, optional
        Object-store products: pre-signed redirects or streamed bytes (see :func:`create_app`).
    **uvicorn_options
        Passed to ``uvicorn.Config`` (``log_level`` defaults to ``'info'``).

    Notes
    -----
    The process's BLAS runs on one thread from then on (the refits' matrix products;
    :func:`campfire.tasks._blas.one_blas_thread_from_now_on`).

    Examples
    --------
    >>> serve(campfire.demo.ensure(), port=8000)  # doctest: +SKIP
    """
    import uvicorn

    from campfire.tasks._blas import one_blas_thread_from_now_on

    app = create_app(root, blind_inspections=blind_inspections, products_delivery=products_delivery)
    uvicorn_options.setdefault("log_level", "info")
    # uvicorn prints the URL it bound (the real port, also with --port 0)
    where = f"http://{host}:{port}/" if port else "the address below"
    print(f"campfire: serving {app.state.archive.root}; the portal at {where} (open it in a browser), "
          f"API under {PREFIX}, OpenAPI at {PREFIX}/openapi.json, docs at {PREFIX}/docs", flush=True)
    if app.state.archive.is_demo():
        print("campfire: demo archive — accounts alice/alice-demo (proprietary program member) and bob/bob-demo",
              flush=True)
    config = uvicorn_config(app, host=host, port=port, forwarded_allow_ips=forwarded_allow_ips, **uvicorn_options)
    # refits run on the server's threads, where fit_redshift cannot limit BLAS itself: one thread for
    # the process (concurrent refits ~30 % quicker on 2 cores, and the archive's numbers)
    one_blas_thread_from_now_on()
    uvicorn.Server(config).run()
