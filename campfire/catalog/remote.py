"""The HTTP backend: the same methods as :class:`~campfire.catalog.local.LocalCatalog`, over the API.

Three stages, as astroquery's template module does it:

1. payload building — pure functions (``_query_payload``, ``_password_grant``, ...)
   that turn a :class:`~campfire.catalog.filters.Query` or arguments into request
   parameters, testable without a network;
2. :meth:`RemoteCatalog._request` — the only place that touches HTTP: bounded
   timeouts (``campfire.api.timeout``), retries with exponential backoff on connection
   errors, 5xx and 429 (honouring ``Retry-After``; ``campfire.api.retries`` /
   ``campfire.api.backoff``), transparent refresh of an expired access token, and the
   mapping of HTTP errors to :mod:`campfire.errors`;
3. parsing — pure functions (``_parse_table``, ``_parse_row``, ``_parse_arrays``) that
   turn JSON into the same astropy Tables / dicts the local backend returns, so
   ``remote=True`` gives the same rows, columns and dtypes.

Tokens live in the user-only (0600) credentials file
(:func:`campfire.config.credentials_path`), one entry per server.

Examples
--------
>>> from campfire.catalog.filters import build_query
>>> rc = RemoteCatalog('http://127.0.0.1:8000')                     # doctest: +SKIP
>>> rc.login('alice', 'alice-demo')                                  # doctest: +SKIP
>>> rc.query(build_query('objects', fields=['uds'], limit=10))       # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import email.utils
import json
import os
import pathlib
import threading
import time
from typing import Any, Iterator

import numpy as np
from astropy.table import Table

from campfire import config
from campfire.catalog.filters import Query
from campfire.catalog.columns import (
    OBJECT_COLUMNS,
    PROGRAM_COLUMNS,
    SPECTRUM_COLUMNS,
    TAG_COLUMNS,
    columns_of,
    make_table,
    objects_table,
    row_dict,
    spectra_table,
)
from campfire.errors import APIError, AuthenticationError, CampfireError, NotFoundError, ValidationError

__all__ = ["RemoteCatalog", "CredentialStore"]

LOGIN_HINT = "Run: campfire login"
_IDEMPOTENT = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}
_MAX_RETRY_AFTER = 120.0


# ============================================================================ credentials
class CredentialStore:
    """Tokens per server in a JSON file readable by its owner only (mode 0600).

    Writes go to a temporary file created 0600 and renamed over the old one, under an
    advisory lock, so concurrent processes (CLI, notebooks, Dask workers) never see
    a half-written file and never refresh the same token twice.
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = pathlib.Path(path) if path is not None else config.credentials_path()

    @contextlib.contextmanager
    def locked(self):
        """An exclusive advisory lock over read-modify-write cycles (refresh, login)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            try:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX)
            except ImportError:  # pragma: no cover - non-POSIX
                pass
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _read_all(self) -> dict:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return {"servers": {}}
        except (OSError, ValueError):
            return {"servers": {}}
        if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
            return {"servers": {}}
        return data

    def get(self, server: str) -> dict | None:
        entry = self._read_all()["servers"].get(server)
        return entry if isinstance(entry, dict) else None

    def put(self, server: str, entry: dict | None) -> None:
        """Store (or with None, remove) the entry of ``server``; call under :meth:`locked`."""
        data = self._read_all()
        if entry is None:
            data["servers"].pop(server, None)
        else:
            data["servers"][server] = entry
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def mtime(self) -> float:
        try:
            return self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return 0


# ========================================================================= 1. payloads
def _query_payload(q: Query, *, limit: int | None = None, offset: int | None = None, count: bool = True) -> dict:
    """Query-string parameters of ``/objects`` or ``/spectra`` for one page of ``q``."""
    params = q.to_params()
    if limit is not None:
        params["limit"] = str(limit)
    if offset is not None:
        if offset:
            params["offset"] = str(offset)
        else:
            params.pop("offset", None)
    if not count:
        params["count"] = "false"
    return params


def _password_grant(username: str, password: str) -> dict:
    if not isinstance(username, str) or not username.strip():
        raise ValidationError("username: expected a non-empty string")
    if not isinstance(password, str) or not password:
        raise ValidationError("password: expected a non-empty string")
    return {"grant_type": "password", "username": username.strip(), "password": password}


def _refresh_grant(refresh_token: str) -> dict:
    return {"grant_type": "refresh_token", "refresh_token": refresh_token}


def _tag_payload(slug: str, name: str | None = None, *, shared: bool | None = None,
                 description: str | None = None) -> dict:
    if not isinstance(slug, str):
        raise ValidationError(f"slug: expected a string, got {slug!r}")
    body: dict[str, Any] = {"slug": slug}
    if name is not None:
        body["name"] = name
    if shared is not None:
        if not isinstance(shared, bool):
            raise ValidationError(f"shared: expected True or False, got {shared!r}")
        body["shared"] = shared
    if description is not None:
        body["description"] = description
    return body


def _object_ids_payload(object_ids) -> list[str]:
    if isinstance(object_ids, str):
        object_ids = [object_ids]
    try:
        ids = [str(o) if isinstance(o, np.str_) else o for o in object_ids]
    except TypeError:
        raise ValidationError(f"object_ids: expected a list of object IDs, got {object_ids!r}") from None
    for oid in ids:
        if not isinstance(oid, str) or not oid:
            raise ValidationError(f"object_ids: expected ID strings, got {oid!r}")
    if not ids:
        raise ValidationError("object_ids: empty list")
    return ids


def _path_id(name: str, value: str) -> str:
    from urllib.parse import quote

    if not isinstance(value, str) or not value:
        raise ValidationError(f"{name}: expected an ID string, got {value!r}")
    return quote(value, safe="")


# =========================================================================== 3. parsing
def _parse_table(kind: str, payload: dict) -> Table:
    """A page of ``/objects`` or ``/spectra`` → the Table the local backend returns."""
    _check_columns(payload, columns_of(kind))
    rows = [tuple(r) for r in payload["rows"]]
    return objects_table(rows) if kind == "objects" else spectra_table(rows)


def _check_columns(payload: dict, columns) -> None:
    names = [c[0] for c in columns]
    if payload.get("columns") != names:
        raise APIError(f"server sent columns {payload.get('columns')}, expected {names} (incompatible server version)")


def _parse_row(columns, row: dict) -> dict:
    """A JSON row (nulls) → the dict LocalCatalog returns (NaN, 0, '' for missing values)."""
    return row_dict(columns, tuple(row.get(c[0]) for c in columns))


def _parse_generic_table(columns, payload: dict) -> Table:
    names = [c[0] for c in columns]
    got = payload.get("columns", [])
    index = [got.index(n) if n in got else None for n in names]
    rows = [tuple(r[i] if i is not None else None for i in index) for r in payload.get("rows", [])]
    return make_table(columns, rows)


def _parse_arrays(payload: dict) -> dict:
    """JSON of the data / redshift-fit endpoints → numpy arrays (null → NaN)."""
    out = {}
    for key, value in payload.items():
        if isinstance(value, list):
            out[key] = np.array(value, dtype=float) if value else np.array([], dtype=float)
        elif value is None:
            out[key] = float("nan")
        else:
            out[key] = value
    return out


def _error_message(resp) -> str:
    try:
        payload = resp.json()
    except ValueError:
        text = (resp.text or "").strip()
        return text[:300] or resp.reason or f"HTTP {resp.status_code}"
    if isinstance(payload, dict):
        return str(payload.get("message") or payload.get("error_description") or payload.get("detail")
                   or payload.get("error") or payload)
    return str(payload)


def _error_for(resp, what: str = "") -> CampfireError:
    """The campfire exception for an error response."""
    status = resp.status_code
    message = _error_message(resp)
    if status == 401:
        return AuthenticationError(f"{message}. {LOGIN_HINT}")
    if status == 404:
        return NotFoundError(message if not what else f"{what}: {message}")
    if 400 <= status < 500 and status != 429:
        return ValidationError(message)
    return APIError(f"HTTP {status} from {resp.request.method if resp.request else ''} {resp.url}: {message}",
                    status=status)


def _margin(entry: dict) -> float:
    """Refresh this long before expiry: 30 s, or a quarter of a short token lifetime."""
    return min(30.0, 0.25 * float(entry.get("expires_in") or 120.0))


def _retry_after(resp) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
        except (TypeError, ValueError):
            return None


# ====================================================================== the backend
class RemoteCatalog:
    """The HTTP API backend of :class:`campfire.Campfire`.

    Parameters
    ----------
    base_url : str
        Server root; ``/api/v1`` is appended.
    auto_refresh : bool
        Refresh an expired access token with the stored refresh token.
    data_dir : path, optional
        The client's data directory: spectrum rows get ``local_path`` when the file
        is already there (so ``Spectrum.downloaded`` is true after a fetch).
    credentials : CredentialStore, optional
        Where tokens are kept (default: :func:`campfire.config.credentials_path`).
    """

    def __init__(self, base_url: str, auto_refresh: bool = True, data_dir: str | os.PathLike | None = None,
                 credentials: CredentialStore | None = None):
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValidationError(f"base_url: expected an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.api_url = self.base_url + config.API_PREFIX
        self.auto_refresh = auto_refresh
        self.data_dir = pathlib.Path(data_dir) if data_dir is not None else None
        self.credentials = credentials or CredentialStore()
        self._local = threading.local()
        self._creds_lock = threading.RLock()
        self._creds_cache: tuple[float, dict | None] | None = None
        self._detail_cache: dict[str, tuple[float, dict]] = {}

    def __repr__(self) -> str:
        return f"RemoteCatalog({self.base_url!r})"

    # -- sessions and credentials --------------------------------------------------------
    @property
    def session(self):
        """One ``requests.Session`` per thread (connection pooling, no shared state)."""
        s = getattr(self._local, "session", None)
        if s is None:
            import requests

            s = requests.Session()
            s.headers["User-Agent"] = "campfire-client/0.1"
            # read the proxy and CA-bundle environment once per session: with trust_env,
            # requests scans os.environ on every request (≈1 ms of CPU per downloaded file)
            s.proxies.update(requests.utils.get_environ_proxies(self.base_url))
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if bundle:
                s.verify = bundle
            s.trust_env = False
            self._local.session = s
        return s

    def _entry(self) -> dict | None:
        with self._creds_lock:
            stamp = self.credentials.mtime()
            if self._creds_cache is None or self._creds_cache[0] != stamp:
                self._creds_cache = (stamp, self.credentials.get(self.base_url))
            return self._creds_cache[1]

    def _store(self, entry: dict | None) -> None:
        self.credentials.put(self.base_url, entry)
        with self._creds_lock:
            self._creds_cache = None

    @property
    def username(self) -> str | None:
        """The user whose tokens are stored for this server (None: anonymous)."""
        entry = self._entry()
        return entry.get("username") if entry else None

    def _access_token(self) -> str | None:
        entry = self._entry()
        if not entry or not entry.get("access_token"):
            return None
        if self.auto_refresh and entry.get("refresh_token") and entry.get("expires_at", 0) - _margin(entry) < time.time():
            self._refresh(entry["access_token"])
            entry = self._entry()
        return entry.get("access_token") if entry else None

    def _refresh(self, stale_access: str | None) -> None:
        """Exchange the refresh token for a new pair, once across threads and processes."""
        with self._creds_lock, self.credentials.locked():
            self._creds_cache = None
            entry = self.credentials.get(self.base_url)
            if not entry:
                raise AuthenticationError(f"not logged in to {self.base_url}. {LOGIN_HINT}")
            if entry.get("access_token") != stale_access and entry.get("expires_at", 0) - _margin(entry) > time.time():
                return  # another thread or process refreshed it meanwhile
            if not entry.get("refresh_token"):
                raise AuthenticationError(f"session expired and no refresh token is stored. {LOGIN_HINT}")
            resp = self._send("POST", "/auth/token", data=_refresh_grant(entry["refresh_token"]), auth=False,
                              retry_statuses=(500, 502, 503, 504))
            if resp.status_code != 200:
                message = _error_message(resp)
                if resp.status_code in (400, 401):
                    raise AuthenticationError(f"session expired ({message}). {LOGIN_HINT}")
                raise _error_for(resp)
            self.credentials.put(self.base_url, self._entry_from(resp.json()))
            self._creds_cache = None

    @staticmethod
    def _entry_from(payload: dict) -> dict:
        return {
            "username": payload.get("username"),
            "access_token": payload["access_token"],
            "refresh_token": payload.get("refresh_token"),
            "expires_at": time.time() + float(payload.get("expires_in", 0)),
            "expires_in": float(payload.get("expires_in", 0)),
            "saved_at": time.time(),
        }

    def login(self, username: str, password: str) -> None:
        """Log in with the OAuth2 password grant; tokens go to the 0600 credentials file."""
        data = _password_grant(username, password)
        resp = self._send("POST", "/auth/token", data=data, auth=False, retry_statuses=(500, 502, 503, 504))
        if resp.status_code == 429:
            raise AuthenticationError(f"{_error_message(resp)} (too many failed logins)")
        if resp.status_code in (400, 401):
            raise AuthenticationError(f"login failed: {_error_message(resp)}")
        if resp.status_code != 200:
            raise _error_for(resp)
        with self.credentials.locked():
            self._store(self._entry_from(resp.json()))

    def logout(self) -> None:
        """Revoke the stored refresh token on the server and forget the tokens."""
        entry = self._entry()
        if entry and entry.get("refresh_token"):
            with contextlib.suppress(CampfireError):
                self._send("POST", "/auth/revoke", data={"token": entry["refresh_token"]}, auth=False)
        with self.credentials.locked():
            self._store(None)

    def whoami(self) -> dict:
        """``{'username', 'programs', 'visibility'}`` as the server sees this client."""
        return self._request("GET", "/me").json()

    # -- 2. the one place that touches HTTP ------------------------------------------------
    def _timeout(self, key: str = "api.timeout") -> tuple[float, float]:
        total = float(config.get(key))
        return (min(total, 10.0), total)

    def _send(self, method: str, path: str, *, params=None, json_body=None, data=None, headers=None,
              stream: bool = False, auth: bool = True, timeout_key: str = "api.timeout",
              retry_statuses: tuple[int, ...] | None = None):
        """Send with retries on connection errors / retryable statuses; return the last response."""
        import requests

        retries = int(config.get("api.retries"))
        backoff = float(config.get("api.backoff"))
        if retry_statuses is None:
            retry_statuses = (429, 500, 502, 503, 504) if method in _IDEMPOTENT else (429, 503)
        url = self.api_url + path
        refreshed = False
        attempt = 0
        while True:
            hdrs = dict(headers or {})
            token = self._access_token() if auth else None
            if token:
                hdrs["Authorization"] = f"Bearer {token}"
            try:
                resp = self.session.request(method, url, params=params, json=json_body, data=data, headers=hdrs,
                                            stream=stream, timeout=self._timeout(timeout_key))
            except (requests.ConnectionError, requests.Timeout) as err:
                # a request that may have reached the server is retried only when repeating it is harmless
                harmless = method in _IDEMPOTENT or isinstance(err, requests.ConnectTimeout) or path == "/auth/token"
                if attempt < retries and harmless:
                    time.sleep(backoff * 2 ** attempt)
                    attempt += 1
                    continue
                raise APIError(f"cannot reach {self.base_url} ({type(err).__name__}: {err}) after "
                               f"{attempt + 1} attempts") from err
            if resp.status_code == 401 and token and not refreshed:
                entry = self._entry() or {}
                if self.auto_refresh and entry.get("refresh_token"):
                    resp.close()
                    self._refresh(token)
                    refreshed = True
                    continue
            if resp.status_code in retry_statuses and attempt < retries:
                delay = _retry_after(resp)
                delay = backoff * 2 ** attempt if delay is None else min(delay, _MAX_RETRY_AFTER)
                resp.close()
                time.sleep(delay)
                attempt += 1
                continue
            return resp

    def _request(self, method: str, path: str, *, what: str = "", **kwargs):
        """Send (see :meth:`_send`) and turn an error response into a campfire exception."""
        resp = self._send(method, path, **kwargs)
        if resp.status_code >= 400:
            err = _error_for(resp, what)
            resp.close()
            if isinstance(err, AuthenticationError) and not self._entry():
                err = AuthenticationError(f"{_error_message(resp)}. {LOGIN_HINT}")
            raise err
        return resp

    def _get_json(self, path: str, params=None, what: str = ""):
        return self._request("GET", path, params=params, what=what).json()

    # -- queries ---------------------------------------------------------------------------
    def query(self, q: Query) -> Table:
        """Rows of ``q`` as the same astropy Table the local backend returns.

        ``limit=None`` gets the server's default page (``campfire.api.page-size``);
        a limit above the server's maximum is fetched in several pages.
        """
        max_limit = int(config.get("api.max-limit"))
        if q.limit is not None and q.limit > max_limit:
            rows = [tuple(r.values()) for r in self._iter_dicts(q, page_size=max_limit)]
            return objects_table(rows) if q.kind == "objects" else spectra_table(rows)
        payload = self._get_json(f"/{q.kind}", _query_payload(q, count=False))
        return self._with_local_paths(_parse_table(q.kind, payload))

    def count(self, q: Query) -> int:
        """Number of rows matching ``q`` (ignores limit and offset)."""
        payload = self._get_json(f"/{q.kind}", _query_payload(q, limit=0, offset=0))
        return int(payload["total"])

    def iter_rows(self, q: Query, page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Stream rows as dicts, paging through the API (``campfire.api.page-size`` per request)."""
        return self._iter_dicts(q, page_size=page_size)

    def _iter_dicts(self, q: Query, page_size: int | None = None) -> Iterator[dict[str, Any]]:
        page_size = int(page_size or config.get("api.page-size"))
        columns = columns_of(q.kind)
        remaining = q.limit
        offset = q.offset
        while remaining is None or remaining > 0:
            n = page_size if remaining is None else min(page_size, remaining)
            payload = self._get_json(f"/{q.kind}", _query_payload(q, limit=n, offset=offset, count=False))
            _check_columns(payload, columns)
            rows = payload["rows"]
            for row in rows:
                d = row_dict(columns, row)
                if q.kind == "spectra":
                    d["local_path"] = self._local_path(d)
                yield d
            if len(rows) < n:
                return
            offset += len(rows)
            if remaining is not None:
                remaining -= len(rows)

    # -- single records ------------------------------------------------------------------------
    def _object_detail(self, object_id: str) -> dict | None:
        now = time.monotonic()
        cached = self._detail_cache.get(object_id)
        if cached and now - cached[0] < 5.0:
            return cached[1]
        try:
            payload = self._get_json(f"/objects/{_path_id('object_id', object_id)}")
        except NotFoundError:
            return None
        if len(self._detail_cache) > 64:
            self._detail_cache.clear()
        # get_object asks for the row, then spectra, then photometry: one request serves all three
        self._detail_cache[object_id] = (now, payload)
        return payload

    def object_row(self, object_id: str) -> dict[str, Any] | None:
        """One object row (as query_objects columns), or None if it does not exist for you."""
        self._detail_cache.pop(object_id, None)
        detail = self._object_detail(object_id)
        return None if detail is None else _parse_row(OBJECT_COLUMNS, detail["object"])

    def object_spectra(self, object_id: str) -> list[dict[str, Any]]:
        detail = self._object_detail(object_id)
        if detail is None:
            return []
        rows = [_parse_row(SPECTRUM_COLUMNS, r) for r in detail["spectra"]]
        for r in rows:
            r["local_path"] = self._local_path(r)
        return rows

    def object_photometry(self, object_id: str) -> dict[str, Any] | None:
        detail = self._object_detail(object_id)
        if detail is None or detail.get("photometry") is None:
            return None
        phot = dict(detail["photometry"])
        phot["bands"] = [[b[0]] + [float("nan") if v is None else v for v in b[1:]] for b in phot.get("bands", [])]
        return phot

    def spectrum_row(self, spectrum_id: str) -> dict[str, Any] | None:
        """One spectrum row, or None if it does not exist for you."""
        try:
            payload = self._get_json(f"/spectra/{_path_id('spectrum_id', spectrum_id)}")
        except NotFoundError:
            return None
        row = _parse_row(SPECTRUM_COLUMNS, payload)
        row["local_path"] = self._local_path(row)
        return row

    def _local_path(self, row: dict) -> str:
        """``<data_dir>/<fits_path>`` when that file is there with the catalog's size, else ''."""
        if self.data_dir is None or not row.get("fits_path"):
            return ""
        path = self.data_dir / row["fits_path"]
        try:
            if path.stat().st_size == row.get("file_size"):
                return str(path)
        except OSError:
            pass
        return ""

    def _with_local_paths(self, table: Table) -> Table:
        if "local_path" in table.colnames and self.data_dir is not None and len(table):
            paths = [self._local_path({"fits_path": fp, "file_size": int(sz)})
                     for fp, sz in zip(table["fits_path"], table["file_size"])]
            if any(paths):
                table["local_path"] = np.array(paths, dtype=str)
        return table

    # -- 2D data, fits, imaging -------------------------------------------------------------------
    def spectrum_data(self, spectrum_id: str) -> dict:
        """``{wave, fnu, fnu_err, snr_2d, n_spatial, n_wave, profile, profile_fit, profile_pix}``."""
        payload = self._get_json(f"/spectra/{_path_id('spectrum_id', spectrum_id)}/data", what=spectrum_id)
        out = _parse_arrays(payload)
        for key in ("n_spatial", "n_wave"):
            if key in out:
                out[key] = int(out[key])
        return out

    def redshift_fit(self, spectrum_id: str) -> dict:
        """``{redshift, chi2_min, confidence, z_grid, chi2_grid, model_wave, model_fnu}``."""
        payload = self._get_json(f"/spectra/{_path_id('spectrum_id', spectrum_id)}/redshift-fit", what=spectrum_id)
        return _parse_arrays(payload)

    def cutout_png(self, object_id: str, fov: float = 5.0, size: int | None = None) -> bytes:
        """The PNG bytes of a cutout around ``object_id``."""
        params = {"fov": repr(float(fov))}
        if size is not None:
            params["size"] = str(int(size))
        return self._request("GET", f"/objects/{_path_id('object_id', object_id)}/cutout.png", params=params,
                             what=object_id).content

    def shutters(self, object_id: str, fov: float = 5.0) -> dict:
        """MSA shutter geometry (dict) around ``object_id``."""
        return self._get_json(f"/objects/{_path_id('object_id', object_id)}/shutters",
                              {"fov": repr(float(fov))}, what=object_id)

    # -- files and export (streamed responses for campfire.transfer) ------------------------------
    def open_file(self, spectrum_id: str, headers: dict | None = None):
        """A streamed response of the spectrum's FITS file (``headers``: Range / If-Range)."""
        return self._request("GET", f"/spectra/{_path_id('spectrum_id', spectrum_id)}/file", headers=headers,
                             stream=True, timeout_key="download.timeout", what=spectrum_id)

    def export(self, since: str | None = None):
        """The streamed gzip NDJSON bulk export (see :mod:`campfire.server.export`)."""
        params = {"since": since} if since else None
        return self._request("GET", "/export", params=params, stream=True, timeout_key="download.timeout")

    # -- metadata -------------------------------------------------------------------------------
    def programs(self) -> Table:
        return _parse_generic_table(PROGRAM_COLUMNS, self._get_json("/programs"))

    def fields(self) -> list[str]:
        return list(self._get_json("/fields"))

    def gratings(self) -> list[str]:
        return list(self._get_json("/gratings"))

    def observations(self) -> list[str]:
        return list(self._get_json("/observations"))

    def metadata(self) -> dict[str, list]:
        return dict(self._get_json("/metadata"))

    def counts(self) -> dict[str, int]:
        return {k: int(v) for k, v in self._get_json("/counts").items()}

    def tags(self) -> Table:
        """slug, name, member_count, kind, owner, description of the tags you may see."""
        return _parse_generic_table(TAG_COLUMNS, self._get_json("/tags"))

    # -- tag editing -----------------------------------------------------------------------------
    def create_tag(self, slug: str, name: str, *, shared: bool = False, description: str = "") -> dict:
        body = _tag_payload(slug, name, shared=shared, description=description)
        return self._request("POST", "/tags", json_body=body).json()

    def update_tag(self, slug: str, *, name: str | None = None, description: str | None = None,
                   shared: bool | None = None) -> dict:
        body = _tag_payload(slug, name, shared=shared, description=description)
        body.pop("slug")
        return self._request("PATCH", f"/tags/{_path_id('slug', slug)}", json_body=body).json()

    def delete_tag(self, slug: str) -> None:
        self._request("DELETE", f"/tags/{_path_id('slug', slug)}")

    def tag_objects(self, slug: str, object_ids) -> int:
        ids = _object_ids_payload(object_ids)
        return int(self._request("POST", f"/tags/{_path_id('slug', slug)}/objects",
                                 json_body={"object_ids": ids}).json()["added"])

    def untag_objects(self, slug: str, object_ids) -> int:
        ids = _object_ids_payload(object_ids)
        return int(self._request("DELETE", f"/tags/{_path_id('slug', slug)}/objects",
                                 json_body={"object_ids": ids}).json()["removed"])
