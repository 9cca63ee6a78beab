"""The archive server's HTTP API (FastAPI), versioned under ``/api/v1``.

``create_app(root)`` builds the ASGI app over an archive root; ``serve(root, host=,
port=)`` runs it with uvicorn (``campfire serve ROOT``). The OpenAPI document is at
``/api/v1/openapi.json`` (interactive docs at ``/api/v1/docs``).

Every request is answered through :class:`~campfire.catalog.local.LocalCatalog` with
the caller's :class:`~campfire.catalog.local.Visibility`: anonymous callers see public
programs and system tags; a logged-in user also sees the proprietary programs they are
a member of and the shared tags plus their own private tags. What a caller may not see
does not exist for them: 404, never 403, on direct IDs, and every aggregate is computed
over visible spectra only. Query strings are parsed by
:func:`campfire.catalog.filters.query_from_params` (the client sends
:meth:`Query.to_params`), so both ends share one vocabulary; user values only ever
travel as bound SQL parameters. Errors are JSON ``{"error": code, "message": text}``.

Examples
--------
>>> from campfire.server.app import create_app
>>> app = create_app(campfire.demo.ensure())  # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import pathlib
import re
import sqlite3
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any

# the server package is the one place fastapi/starlette are imported (never by `import campfire`);
# FastAPI resolves the string annotations of endpoints against these module globals
from fastapi import APIRouter, Body, Depends, FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import OAuth2PasswordBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import (
    FileResponse,
    JSONResponse,
    MalformedRangeHeader,
    RangeNotSatisfiable,
    Response,
    StreamingResponse,
)

from campfire import config
from campfire.catalog.filters import FILTER_NAMES, PAGING_NAMES, query_from_params
from campfire.catalog.columns import columns_of
from campfire.catalog.db import catalog_path, change_stamp, connect, opened, read_meta, write_meta
from campfire.catalog.local import LocalCatalog
from campfire.catalog.visibility import Visibility
from campfire.errors import (
    AuthenticationError,
    CampfireError,
    FileFormatError,
    NotFoundError,
    ValidationError,
)
from campfire.server import tags as tagops
from campfire.server.auth import AuthStore, RateLimiter, seed_demo_accounts
from campfire.server.export import plan_export

__all__ = ["create_app", "serve", "Archive", "API_VERSION"]

log = logging.getLogger("campfire.server")

API_VERSION = "1"
PREFIX = config.API_PREFIX
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")
TAGS_TABLE_COLUMNS = ("slug", "name", "member_count", "kind", "owner", "description")


# --------------------------------------------------------------------------- errors
class APIProblem(Exception):
    """An HTTP error with a JSON body ``{"error": code, "message": message}``."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def _problem_response(status: int, code: str, message: str, headers: dict | None = None):
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


class _FileResponse(FileResponse):
    """Starlette's file response (Range, If-Range, HEAD) in 512 KiB reads instead of 64 KiB."""

    chunk_size = 512 * 1024


# ---------------------------------------------------------------------- archive state
@dataclass(frozen=True)
class Caller:
    """Who is asking, and what they may see."""

    user: str | None
    visibility: Visibility
    catalog: LocalCatalog


class Archive:
    """Server-side state of one archive root: catalogs per visibility, accounts, writers."""

    def __init__(self, root: str | os.PathLike):
        self.root = pathlib.Path(root).expanduser().resolve()
        self.db_path = catalog_path(self.root)
        if not LocalCatalog.is_valid(self.root):
            raise CampfireError(f"{self.root} is not an archive root (no valid meta/campfire.db)")
        self._write_lock = threading.RLock()
        self._write_conn: sqlite3.Connection | None = None
        with self._write_lock:
            conn = self.write_conn()
            owner = self.meta("owner")
            if owner == "client":
                raise CampfireError(
                    f"{self.root} is a client's synced copy (owner=client), not an archive root a server may serve"
                )
            # WAL: an export's long read snapshot never blocks a tag edit, and vice versa
            conn.execute("PRAGMA journal_mode = WAL")
        self.auth = AuthStore(self.root)
        self.limiter = RateLimiter()
        for leftover in (self.root / "cache" / "exports").glob("export-*.db"):  # from a killed server
            leftover.unlink(missing_ok=True)
        self._catalogs: dict[Visibility, LocalCatalog] = {}
        self._aggregate_keys: dict[str, tuple] = {}  # key -> catalog stamp last checked
        self._programs: tuple[tuple, frozenset[int], frozenset[int]] | None = None
        if self.is_demo():
            seed_demo_accounts(self.root, store=self.auth)

    # -- catalog -----------------------------------------------------------------------
    def write_conn(self) -> sqlite3.Connection:
        """The one writing connection (aggregates, tags); use under ``self._write_lock``."""
        if self._write_conn is None:
            self._write_conn = connect(self.db_path, readonly=False)
        return self._write_conn

    def meta(self, key: str) -> str | None:
        return read_meta(self.db_path).get(key)

    def is_demo(self) -> bool:
        meta = read_meta(self.db_path)
        markers = (meta.get("demo"), meta.get("built_with"), meta.get("generator"))
        return any(m and ("demo" in str(m).lower() or str(m).lower() in ("1", "true")) for m in markers)

    def catalog_id(self) -> str:
        return self.meta("catalog_id") or self.meta("catalog_version") or self.meta("built_at") or ""

    def _stamp(self) -> tuple:
        return change_stamp(self.db_path)

    def program_sets(self) -> tuple[frozenset[int], frozenset[int]]:
        """(public program ids, proprietary program ids), re-read when the catalog changes."""
        stamp = self._stamp()
        if self._programs is None or self._programs[0] != stamp:
            with opened(self.db_path) as conn:
                rows = conn.execute("SELECT program_id, is_public FROM programs").fetchall()
            self._programs = (
                stamp,
                frozenset(p for p, pub in rows if pub),
                frozenset(p for p, pub in rows if not pub),
            )
        return self._programs[1], self._programs[2]

    def visibility(self, user: str | None) -> Visibility:
        public, proprietary = self.program_sets()
        if user is None:
            return Visibility(program_ids=public, key="", user=None, all_tags=False)
        member = self.auth.programs_of(user) & proprietary
        key = ",".join(str(p) for p in sorted(member))
        return Visibility(program_ids=public | member, key=key, user=user, all_tags=False)

    def ensure_aggregates(self, vis: Visibility) -> None:
        """Keep object_aggregates of ``vis.key`` in step with the spectra table.

        A key seen for the first time is computed in full. Each key records the
        spectra state it was computed for (``max(updated_at)`` and the row count) in
        ``archive_meta``; when the pipeline has changed spectra since, the objects
        of the changed spectra are recomputed (all of them if rows were added or
        deleted). Rows a pipeline wrote without a record are trusted as current.
        The check runs once per change of the catalog file, not per request.
        """
        stamp = self._stamp()
        if self._aggregate_keys.get(vis.key) == stamp:
            return
        with self._write_lock:
            stamp = self._stamp()
            if self._aggregate_keys.get(vis.key) == stamp:
                return
            from campfire.catalog.aggregates import refresh_aggregates

            conn = self.write_conn()
            programs = None if vis.program_ids is None else sorted(vis.program_ids)
            high, count = conn.execute("SELECT max(updated_at), count(*) FROM spectra").fetchone()
            state = json.dumps([high or "", count])
            meta_key = f"aggregates:{vis.key}"
            value = read_meta(conn).get(meta_key)
            recorded = json.loads(value) if value else None
            have = conn.execute("SELECT 1 FROM object_aggregates WHERE visibility = ? LIMIT 1", (vis.key,)).fetchone()
            if recorded is None and have is None:
                log.info("computing object aggregates for visibility %r", vis.key)
                refresh_aggregates(conn, vis.key, programs)
            elif recorded is not None and recorded != [high or "", count]:
                if recorded[1] == count:
                    changed = [r[0] for r in conn.execute(
                        "SELECT DISTINCT object_id FROM spectra WHERE updated_at > ?", (recorded[0],))]
                    log.info("refreshing aggregates of %d objects for visibility %r", len(changed), vis.key)
                    refresh_aggregates(conn, vis.key, programs, object_ids=changed)
                else:
                    log.info("spectra added or removed: recomputing aggregates for visibility %r", vis.key)
                    refresh_aggregates(conn, vis.key, programs)
            if recorded != [high or "", count]:  # write only on change: a write moves every key's stamp
                write_meta(conn, {meta_key: state})
                conn.commit()
            self._aggregate_keys[vis.key] = self._stamp()

    def catalog(self, vis: Visibility) -> LocalCatalog:
        cat = self._catalogs.get(vis)
        if cat is None:
            if len(self._catalogs) > 512:
                self._catalogs.clear()
            cat = self._catalogs[vis] = LocalCatalog(self.root, visibility=vis, expose_paths=False)
        return cat

    def file_path(self, fits_path: str) -> pathlib.Path:
        """The absolute file of a catalog ``fits_path``: only ever a file under ``<root>/products``."""
        if not fits_path or os.path.isabs(fits_path) or "\0" in fits_path:
            raise NotFoundError("file not available on this server")
        products = self.root / "products"
        path = (self.root / fits_path).resolve()
        if not path.is_relative_to(products):
            # a poisoned catalog row: never read outside the products tree (auth.db, /etc, ...)
            log.error("catalog fits_path %r is outside %s; refused", fits_path, products)
            raise NotFoundError("file not available on this server")
        if not path.is_file():
            raise NotFoundError("file not available on this server")
        return path

    # -- callers -------------------------------------------------------------------------
    def authenticate(self, authorization: str | None) -> str | None:
        """The user of an ``Authorization: Bearer`` header, None when absent."""
        if authorization is None:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 4096:
            raise APIProblem(401, "invalid_token", "malformed Authorization header; expected 'Bearer <access token>'",
                             {"WWW-Authenticate": 'Bearer error="invalid_request"'})
        try:
            return self.auth.decode_access(token)
        except AuthenticationError as err:
            raise APIProblem(401, "invalid_token", f"{err}; refresh the token or log in again (campfire login)",
                             {"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None

    def caller(self, authorization: str | None) -> Caller:
        user = self.authenticate(authorization)
        vis = self.visibility(user)
        self.ensure_aggregates(vis)
        return Caller(user, vis, self.catalog(vis))

    def close(self) -> None:
        with self._write_lock:
            if self._write_conn is not None:
                self._write_conn.close()
                self._write_conn = None
        self.auth.close()
        for cat in self._catalogs.values():
            cat.close()


# ------------------------------------------------------------------------ encoding
def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _clean_row(row: dict) -> dict:
    return {k: _finite(v) for k, v in row.items()}


def _array(values) -> list:
    """A numpy array as nested JSON lists, NaN/inf → null."""
    import numpy as np

    arr = np.asarray(values, dtype=float)
    obj = arr.astype(object)
    obj[~np.isfinite(arr)] = None
    return obj.tolist()


def _json(payload: Any, status: int = 200, headers: dict | None = None):
    body = json.dumps(payload, separators=(",", ":"), default=_json_default)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return _finite(value.item())
    if isinstance(value, np.ndarray):
        return _array(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _query_params(request) -> dict[str, str]:
    """Query parameters with repeated keys comma-joined (``?fields=a&fields=b``)."""
    out: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        out[key] = f"{out[key]},{value}" if key in out else value
    return out


def _check_id(name: str, value: str) -> str:
    if not ID_RE.match(value or ""):
        raise ValidationError(f"{name}: expected an ID of letters, digits, '_', '.' or '-', got {value!r}")
    return value


def _float_param(params: dict, name: str, default: float | None, lo: float, hi: float) -> float | None:
    raw = params.pop(name, None)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError(f"{name}: expected a number, got {raw!r}") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ValidationError(f"{name}: expected a number in [{lo:g}, {hi:g}], got {raw!r}")
    return value


def _no_extra(params: dict) -> None:
    if params:
        raise ValidationError(f"unknown parameter{'s' if len(params) > 1 else ''} {', '.join(sorted(params))}")


def _filter_doc() -> list[dict]:
    """OpenAPI parameter docs of the filter vocabulary (parsed by query_from_params, not FastAPI)."""
    docs = {
        "fields": "comma-separated fields, e.g. cosmos,uds",
        "programs": "comma-separated program slugs or JWST proposal ids",
        "gratings": "comma-separated gratings, e.g. PRISM,G395M",
        "observations": "comma-separated observation names",
        "redshift_range": "min,max",
        "redshift_quality": "comma-separated 0-4 or names (not_inspected, impossible, tentative, probable, secure)",
        "max_snr_range": "min,max (objects: best S/N; spectra: the spectrum's S/N)",
        "dq_flags": "flag expression, e.g. ~CONTAMINATION&~LOW_SNR, or an int",
        "tags": "comma-separated tag slugs",
        "inspected_only": "true|false",
        "staleness": "not supported by the server (it cannot know your local files)",
        "has_photometry": "true|false",
        "search": "text search on IDs",
        "cone_search": "ra,dec,radius_arcsec",
        "limit": f"rows per page (default {config.get('api.page-size')}, at most {config.get('api.max-limit')})",
        "offset": "rows to skip",
        "sort": "sort column (whitelisted)",
        "sort_dir": "asc|desc",
        "count": "true|false: include the total row count (default true)",
    }
    return [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": docs[name]}
        for name in FILTER_NAMES + PAGING_NAMES + ("count",)
    ]


# --------------------------------------------------------------------------- the app
def create_app(root: str | os.PathLike, *, faults=None):
    """Build the FastAPI application serving the archive at ``root``.

    Parameters
    ----------
    root : path
        Archive root with ``meta/campfire.db`` and ``products/``.
    faults : campfire.server.faults.FaultInjector, optional
        Test hook: an ASGI middleware that injects errors, throttling or cut
        connections. Never set in production.

    Examples
    --------
    >>> app = create_app('/data/archive')  # doctest: +SKIP
    >>> import uvicorn; uvicorn.run(app, port=8000)  # doctest: +SKIP
    """
    archive = Archive(root)

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
    oauth2 = OAuth2PasswordBearer(tokenUrl=f"{PREFIX}/auth/token", auto_error=False)

    # -- errors: every failure is JSON with a message --------------------------------
    @app.exception_handler(APIProblem)
    async def _problem(request, exc: APIProblem):
        return _problem_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(ValidationError)
    async def _validation(request, exc):
        return _problem_response(400, "invalid_request", str(exc))

    @app.exception_handler(NotFoundError)
    async def _not_found(request, exc):
        return _problem_response(404, "not_found", str(exc))

    @app.exception_handler(AuthenticationError)
    async def _unauthorized(request, exc):
        return _problem_response(401, "unauthorized", str(exc), {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(tagops.TagError)
    async def _tag_error(request, exc):
        return _problem_response(exc.status, "forbidden" if exc.status == 403 else "conflict", str(exc))

    @app.exception_handler(FileFormatError)
    async def _bad_file(request, exc):
        return _problem_response(404, "not_found", f"no such data in this spectrum's file: {exc}")

    @app.exception_handler(RequestValidationError)
    async def _request_validation(request, exc):
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
            parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
        return _problem_response(400, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, exc):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path} (see {PREFIX}/openapi.json)"
        return _problem_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(CampfireError)
    async def _campfire(request, exc):
        log.exception("campfire error on %s %s", request.method, request.url.path)
        return _problem_response(500, "internal_error", f"internal error: {type(exc).__name__}")

    @app.exception_handler(Exception)
    async def _bug(request, exc):
        # a real bug: log it with its traceback, tell the client nothing internal
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _problem_response(500, "internal_error", "internal server error (logged)")

    # -- dependencies -------------------------------------------------------------------
    def caller(request: Request, _token: str | None = Security(oauth2)) -> Caller:
        return archive.caller(request.headers.get("authorization"))

    def user_caller(c: Caller = Depends(caller)) -> Caller:
        if c.user is None:
            raise APIProblem(401, "unauthorized", "log in first: this needs an account (campfire login)",
                             {"WWW-Authenticate": "Bearer"})
        return c

    api = APIRouter(prefix=PREFIX)

    # -- health and identity ---------------------------------------------------------------
    @api.get("/health", tags=["meta"], summary="Liveness and catalog identity")
    def health():
        return _json({"status": "ok", "api_version": API_VERSION, "catalog_id": archive.catalog_id()})

    @api.get("/me", tags=["auth"], summary="The caller: user name and member programs")
    def me(c: Caller = Depends(caller)):
        public, proprietary = archive.program_sets()
        programs = sorted(c.visibility.program_ids - public) if c.visibility.program_ids is not None else []
        return _json({"username": c.user, "programs": programs, "visibility": c.visibility.key})

    # -- OAuth2 token endpoint -------------------------------------------------------------
    @api.post(
        "/auth/token", tags=["auth"], summary="OAuth2 token endpoint (password and refresh_token grants)",
        openapi_extra={"requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {
            "type": "object", "required": ["grant_type"],
            "properties": {"grant_type": {"type": "string", "enum": ["password", "refresh_token"]},
                           "username": {"type": "string"}, "password": {"type": "string", "format": "password"},
                           "refresh_token": {"type": "string"}}}}}}},
    )
    async def token(request: Request):
        form = await _read_form(request)
        grant = form.get("grant_type")

        def oauth_error(status: int, error: str, message: str, headers: dict | None = None):
            return JSONResponse({"error": error, "error_description": message, "message": message},
                                status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})

        if grant == "password":
            username, password = form.get("username"), form.get("password")
            if not username or password is None:
                return oauth_error(400, "invalid_request", "the password grant needs username and password")
            client = request.client.host if request.client else "?"
            keys = (f"user:{username.lower()}", f"addr:{client}")
            wait = archive.limiter.retry_after(*keys)
            if wait > 0:
                return oauth_error(429, "rate_limited", f"too many failed logins; retry in {math.ceil(wait)} s",
                                   {"Retry-After": str(math.ceil(wait))})
            from starlette.concurrency import run_in_threadpool

            ok = await run_in_threadpool(archive.auth.check_password, username, password)  # bcrypt is slow
            if not ok:
                archive.limiter.failed(*keys)
                return oauth_error(400, "invalid_grant", "invalid username or password")
            archive.limiter.reset(keys[0])
            pair = await run_in_threadpool(archive.auth.issue, username)
        elif grant == "refresh_token":
            refresh = form.get("refresh_token")
            if not refresh:
                return oauth_error(400, "invalid_request", "the refresh_token grant needs refresh_token")
            try:
                from starlette.concurrency import run_in_threadpool

                pair = await run_in_threadpool(archive.auth.rotate, refresh)
            except AuthenticationError as err:
                return oauth_error(400, "invalid_grant", str(err))
        else:
            return oauth_error(400, "unsupported_grant_type",
                               f"grant_type must be 'password' or 'refresh_token', got {grant!r}")
        return _json(pair.as_response(), headers={"Cache-Control": "no-store"})

    @api.post("/auth/revoke", tags=["auth"], summary="Log out: revoke a refresh token and its rotations")
    async def revoke(request: Request):
        form = await _read_form(request)
        token_value = form.get("token") or form.get("refresh_token")
        if not token_value:
            raise ValidationError("token: the refresh token to revoke is required")
        archive.auth.revoke(token_value)
        return _json({"revoked": True})

    # -- queries ----------------------------------------------------------------------------
    def _list(kind: str, request: Request, c: Caller):
        params = _query_params(request)
        want_count = params.pop("count", "true").lower()
        if want_count not in ("true", "false", "1", "0"):
            raise ValidationError(f"count: expected true or false, got {want_count!r}")
        params.setdefault("limit", str(config.get("api.page-size")))
        q = query_from_params(kind, params)
        if q.staleness is not None:
            raise ValidationError("staleness: not supported by the server (it cannot know your local files); "
                                  "use it on a synced local catalog")
        max_limit = int(config.get("api.max-limit"))
        if q.limit is None or q.limit > max_limit:
            raise ValidationError(f"limit: at most {max_limit} rows per request; page with offset "
                                  "(or use iter_objects / iter_spectra)")
        q = q.resolve(c.catalog.vocabulary())
        rows = c.catalog.query_rows(q)
        columns = columns_of(kind)
        total = c.catalog.count(q) if want_count in ("true", "1") else None
        return _json({"kind": kind, "total": total, "limit": q.limit, "offset": q.offset,
                      "columns": [col[0] for col in columns], "rows": rows})

    filter_doc = {"parameters": _filter_doc()}

    @api.get("/objects", tags=["catalog"], summary="Query objects (one row per sky position)",
             openapi_extra=filter_doc)
    def list_objects(request: Request, c: Caller = Depends(caller)):
        return _list("objects", request, c)

    @api.get("/spectra", tags=["catalog"], summary="Query spectra (one row per spectrum)", openapi_extra=filter_doc)
    def list_spectra(request: Request, c: Caller = Depends(caller)):
        return _list("spectra", request, c)

    def _object_or_404(c: Caller, object_id: str) -> dict:
        _check_id("object_id", object_id)
        row = c.catalog.object_row(object_id)
        if row is None:
            raise NotFoundError(f"object {object_id!r} not found")
        return row

    def _spectrum_or_404(c: Caller, spectrum_id: str) -> dict:
        _check_id("spectrum_id", spectrum_id)
        row = c.catalog.spectrum_row(spectrum_id)
        if row is None:
            raise NotFoundError(f"spectrum {spectrum_id!r} not found")
        return row

    @api.get("/objects/{object_id}", tags=["catalog"], summary="One object with its spectra and photometry")
    def get_object(object_id: str, request: Request, c: Caller = Depends(caller)):
        _no_extra(_query_params(request))
        row = _object_or_404(c, object_id)
        spectra = [_clean_row(s) for s in c.catalog.object_spectra(object_id)]
        phot = c.catalog.object_photometry(object_id)
        if phot is not None:
            phot = {k: (_finite(v) if not isinstance(v, list) else v) for k, v in phot.items()}
        return _json({"object": _clean_row(row), "spectra": spectra, "photometry": phot})

    @api.get("/spectra/{spectrum_id}", tags=["catalog"], summary="One spectrum's catalog row")
    def get_spectrum(spectrum_id: str, request: Request, c: Caller = Depends(caller)):
        _no_extra(_query_params(request))
        return _json(_clean_row(_spectrum_or_404(c, spectrum_id)))

    @api.head("/spectra/{spectrum_id}/file", include_in_schema=False)
    @api.get("/spectra/{spectrum_id}/file", tags=["files"],
             summary="The spectrum's FITS file (ETag = sha256 of the content; Range supported)",
             response_class=Response)
    def spectrum_file(spectrum_id: str, request: Request, c: Caller = Depends(caller)):
        _no_extra(_query_params(request))
        row = _spectrum_or_404(c, spectrum_id)
        path = archive.file_path(row["fits_path"])
        etag = f'"{row["file_hash"]}"'
        headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Accept-Ranges": "bytes"}
        inm = request.headers.get("if-none-match")
        if inm and etag in [t.strip() for t in inm.split(",")]:
            return Response(status_code=304, headers=headers)
        http_range = request.headers.get("range")
        if http_range is not None:
            size = path.stat().st_size
            try:
                FileResponse._parse_range_header(http_range, size)
            except MalformedRangeHeader as err:
                raise ValidationError(f"Range: {err.content or 'malformed'}; expected 'bytes=START-[END]'") from None
            except RangeNotSatisfiable:
                raise APIProblem(416, "range_not_satisfiable", f"Range: outside the file (size {size} bytes)",
                                 {"Content-Range": f"bytes */{size}"}) from None
        return _FileResponse(path, media_type="application/fits", headers=headers, filename=path.name)

    @api.get("/spectra/{spectrum_id}/data", tags=["files"],
             summary="Arrays of get_spectrum_data (1D, 2D S/N, profile)")
    def spectrum_data(spectrum_id: str, request: Request, c: Caller = Depends(caller)):
        _no_extra(_query_params(request))
        from campfire.io.fits import read_spectrum_2d

        row = _spectrum_or_404(c, spectrum_id)
        data = read_spectrum_2d(archive.file_path(row["fits_path"]))
        return _json({k: (_array(v) if hasattr(v, "shape") else _finite(v)) for k, v in data.items()})

    @api.get("/spectra/{spectrum_id}/redshift-fit", tags=["files"], summary="Arrays of get_redshift_fit_data")
    def redshift_fit(spectrum_id: str, request: Request, c: Caller = Depends(caller)):
        _no_extra(_query_params(request))
        from campfire.io.fits import read_redshift_fit

        row = _spectrum_or_404(c, spectrum_id)
        data = read_redshift_fit(archive.file_path(row["fits_path"]))
        return _json({k: (_array(v) if hasattr(v, "shape") else _finite(v)) for k, v in data.items()})

    # -- imaging -----------------------------------------------------------------------------
    @api.get("/objects/{object_id}/cutout.png", tags=["imaging"], summary="Cutout image around an object",
             response_class=Response)
    def cutout(object_id: str, request: Request, c: Caller = Depends(caller)):
        params = _query_params(request)
        fov = _float_param(params, "fov", 5.0, 0.01, 60.0)
        size = _float_param(params, "size", None, 8, 4096)
        _no_extra(params)
        if size is not None and size != int(size):
            raise ValidationError("size: expected an integer number of pixels")
        _object_or_404(c, object_id)
        try:
            from campfire.imaging import make_cutout_png
        except ImportError as err:
            raise APIProblem(501, "not_implemented", f"imaging is not available on this server ({err})") from None
        png = make_cutout_png(archive.root, object_id, fov, None if size is None else int(size))
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    @api.get("/objects/{object_id}/shutters", tags=["imaging"], summary="MSA shutter geometry around an object")
    def shutters(object_id: str, request: Request, c: Caller = Depends(caller)):
        params = _query_params(request)
        fov = _float_param(params, "fov", 5.0, 0.01, 60.0)
        _no_extra(params)
        _object_or_404(c, object_id)
        try:
            from campfire.imaging import shutter_geometry
        except ImportError as err:
            raise APIProblem(501, "not_implemented", f"imaging is not available on this server ({err})") from None
        # only the MSA designs of observations the caller may see
        data = shutter_geometry(archive.root, object_id, fov, observations=c.catalog.observations())
        return _json(data)

    # -- metadata --------------------------------------------------------------------------------
    def _table_json(table) -> dict:
        cols = list(table.colnames)
        rows = [[_finite(v.item() if hasattr(v, "item") else v) for v in row] for row in table.iterrows()]
        return {"columns": cols, "rows": rows}

    @api.get("/metadata", tags=["metadata"], summary="programs, fields, gratings, observations")
    def metadata(c: Caller = Depends(caller)):
        return _json(c.catalog.metadata())

    @api.get("/programs", tags=["metadata"], summary="Programs: program_id, slug, program_name, pi_name, is_public")
    def programs(c: Caller = Depends(caller)):
        return _json(_table_json(c.catalog.programs()))

    @api.get("/fields", tags=["metadata"])
    def fields(c: Caller = Depends(caller)):
        return _json(c.catalog.fields())

    @api.get("/gratings", tags=["metadata"])
    def gratings(c: Caller = Depends(caller)):
        return _json(c.catalog.gratings())

    @api.get("/observations", tags=["metadata"])
    def observations(c: Caller = Depends(caller)):
        return _json(c.catalog.observations())

    @api.get("/counts", tags=["metadata"], summary="Visible observations, objects and spectra")
    def counts(c: Caller = Depends(caller)):
        return _json(c.catalog.counts())

    # -- tags ------------------------------------------------------------------------------------
    @api.get("/tags", tags=["tags"], summary="Visible tags: slug, name, member_count, kind, owner, description")
    def list_tags(c: Caller = Depends(caller)):
        return _json(_table_json(c.catalog.tags()))

    def _tag_json(c: Caller, slug: str, owner: str | None) -> dict:
        for row in _table_json(c.catalog.tags())["rows"]:
            item = dict(zip(TAGS_TABLE_COLUMNS, row))
            if item["slug"] == slug and (item["owner"] or None) == owner:
                return item
        raise NotFoundError(f"no tag {slug!r}")

    def _write(fn):
        with archive._write_lock:
            conn = archive.write_conn()
            try:
                result = fn(conn)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        return result

    @api.post("/tags", tags=["tags"], status_code=201, summary="Create a private or shared tag")
    def create_tag(c: Caller = Depends(user_caller), body: dict = Body(..., examples=[
            {"slug": "my-lrds", "name": "My LRDs", "description": "", "shared": False}])):
        _only(body, ("slug", "name", "description", "shared"))
        _write(lambda conn: tagops.create(conn, c.user, body.get("slug"), body.get("name"), body.get("description"),
                                          body.get("shared", False)))
        return _json(_tag_json(c, body["slug"], c.user), status=201)

    @api.patch("/tags/{slug}", tags=["tags"], summary="Rename, describe, share or unshare your tag")
    def update_tag(slug: str, c: Caller = Depends(user_caller), body: dict = Body(...)):
        _only(body, ("name", "description", "shared"))

        def op(conn):
            row = tagops.find_own(conn, c.user, slug, c.visibility.tag_predicate("t"))
            tagops.update(conn, row[0], name=body.get("name"), description=body.get("description"),
                          shared=body.get("shared"))
        _write(op)
        return _json(_tag_json(c, slug, c.user))

    @api.delete("/tags/{slug}", tags=["tags"], summary="Delete your tag")
    def delete_tag(slug: str, c: Caller = Depends(user_caller)):
        def op(conn):
            row = tagops.find_own(conn, c.user, slug, c.visibility.tag_predicate("t"))
            tagops.delete(conn, row[0])
        _write(op)
        return _json({"deleted": slug})

    def _members(slug: str, c: Caller, body: dict, add: bool):
        _only(body, ("object_ids",))
        ids = tagops.check_object_ids(body.get("object_ids"))
        for oid in ids:
            _check_id("object_ids", oid)
        # every object must be visible to the caller; otherwise nothing changes
        missing = [oid for oid in ids if not _visible_object(c, oid)]
        if missing:
            shown = ", ".join(map(repr, missing[:10])) + (" ..." if len(missing) > 10 else "")
            raise ValidationError(f"object_ids: unknown object{'s' if len(missing) > 1 else ''} {shown}; nothing changed")

        def op(conn):
            row = tagops.find_own(conn, c.user, slug, c.visibility.tag_predicate("t"))
            fn = tagops.add_members if add else tagops.remove_members
            return fn(conn, row[0], ids)
        changed = _write(op)
        item = _tag_json(c, slug, c.user)
        return _json({"slug": slug, "added" if add else "removed": changed, "member_count": item["member_count"]})

    @api.post("/tags/{slug}/objects", tags=["tags"], summary="Add objects to your tag")
    def tag_objects(slug: str, c: Caller = Depends(user_caller), body: dict = Body(...)):
        return _members(slug, c, body, add=True)

    @api.delete("/tags/{slug}/objects", tags=["tags"], summary="Remove objects from your tag")
    def untag_objects(slug: str, c: Caller = Depends(user_caller), body: dict = Body(...)):
        return _members(slug, c, body, add=False)

    def _visible_object(c: Caller, object_id: str) -> bool:
        row = c.catalog.conn.execute(
            "SELECT 1 FROM object_aggregates WHERE visibility = ? AND object_id = ?", (c.visibility.key, object_id)
        ).fetchone()
        return row is not None

    # -- bulk export -------------------------------------------------------------------------------
    @api.get("/export", tags=["sync"], response_class=Response,
             summary="The visible catalog in one gzip stream: a SQLite snapshot, or an NDJSON delta with since=cursor")
    def export(request: Request, c: Caller = Depends(caller)):
        params = _query_params(request)
        since = params.pop("since", None) or None
        _no_extra(params)
        plan = plan_export(archive.db_path, c.visibility, since=since, catalog_id=archive.catalog_id(),
                           workdir=archive.root / "cache" / "exports")
        return StreamingResponse(
            plan.chunks, media_type="application/gzip",
            headers={"X-Campfire-Export": plan.kind, "X-Campfire-Cursor": plan.cursor, "Cache-Control": "no-store"},
        )

    app.include_router(api)
    # the document says what each endpoint really answers (bodies, 400/401/404 errors, auth)
    from campfire.server.openapi import install as install_openapi

    install_openapi(app, PREFIX)

    if faults is not None:
        from campfire.server.faults import FaultMiddleware

        app.add_middleware(FaultMiddleware, injector=faults)

    return app


def _only(body, allowed: tuple[str, ...]) -> None:
    if not isinstance(body, dict):
        raise ValidationError("expected a JSON object body")
    extra = sorted(set(body) - set(allowed))
    if extra:
        raise ValidationError(f"unknown field{'s' if len(extra) > 1 else ''} {', '.join(extra)}; "
                              f"allowed: {', '.join(allowed)}")


async def _read_form(request) -> dict[str, str]:
    """An OAuth2 form body (x-www-form-urlencoded, or JSON) without python-multipart."""
    body = await request.body()
    if len(body) > 16384:
        raise ValidationError("request body too large")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise ValidationError("body: malformed JSON") from None
        if not isinstance(data, dict):
            raise ValidationError("body: expected a JSON object")
        # form fields are strings: a number or a list where a token belongs is a bad request,
        # not something to stringify and look up
        bad = sorted(str(k) for k, v in data.items() if v is not None and not isinstance(v, str))
        if bad:
            raise ValidationError(f"body: {', '.join(bad)}: expected a string")
        return {str(k): v for k, v in data.items() if v is not None}
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise ValidationError("body: expected UTF-8 form data") from None
    return dict(pairs)


def serve(root: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000, **uvicorn_options) -> None:
    """Serve the archive at ``root`` over HTTP until interrupted (``campfire serve``).

    Examples
    --------
    >>> serve(campfire.demo.ensure(), port=8000)  # doctest: +SKIP
    """
    import uvicorn

    app = create_app(root)
    log_level = uvicorn_options.pop("log_level", "info")
    # uvicorn prints the URL it bound (the real port, also with --port 0)
    print(f"campfire: serving {app.state.archive.root}; API under {PREFIX}, OpenAPI at {PREFIX}/openapi.json, "
          f"docs at {PREFIX}/docs", flush=True)
    if app.state.archive.is_demo():
        print("campfire: demo archive — accounts alice/alice-demo (proprietary program member) and bob/bob-demo",
              flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, **uvicorn_options)
