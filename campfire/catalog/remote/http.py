"""The one place the client touches HTTP: sessions, retries, token refresh, errors.

The second of the client's stages (astroquery's ``_request``). Each thread gets its own
``requests.Session`` whose ``HTTPAdapter`` retries with urllib3's :class:`~urllib3.util.Retry`:
connection errors, timeouts, 5xx and 429 on requests that are safe to repeat
(``campfire.api.retries`` / ``campfire.api.backoff``, exponential backoff, ``Retry-After``
honoured up to two minutes). What is ours is the OAuth2 side: the access token is
refreshed shortly before it expires, and a ``401`` is answered once by refreshing it
(:meth:`APIClient.refresh`: once across threads and processes, under the credentials
file's lock) and sending again. Error responses become :mod:`campfire.errors`. File
bodies (:meth:`APIClient.stream_get`) come first from a kept-alive connection per thread,
the request written and the answer read on its socket; an answer other than a sized
200/206 or a redirect is asked again on urllib3.

Examples
--------
>>> api = APIClient('http://127.0.0.1:8000')                          # doctest: +SKIP
>>> api.login('alice', 'alice-demo')                                   # doctest: +SKIP
>>> api.request('GET', '/fields').json()                               # doctest: +SKIP
['cosmos', 'egs', 'gds', 'uds']
"""
from __future__ import annotations

import contextlib
import http.client
import os
import re
import ssl
import threading
import time
import urllib.parse

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from campfire import config
from campfire.catalog.remote.credentials import CredentialStore, refresh_margin, token_entry
from campfire.catalog.remote.payloads import password_grant, refresh_grant
from campfire.errors import APIError, AuthenticationError, CampfireError, NotFoundError, ValidationError

__all__ = ["APIClient", "LOGIN_HINT", "error_for", "error_message", "retry_policy"]

LOGIN_HINT = "Run: campfire login"
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# statuses a request is sent again after: any, when repeating it is harmless; else only those that say
# the server did not process it
RETRY_STATUSES = (429, 500, 502, 503, 504)
UNPROCESSED_STATUSES = (429, 503)
MAX_RETRY_AFTER = 120.0
USER_AGENT = "campfire-client/0.1"
POOL_SIZE = 64


class _Retry(Retry):
    """urllib3's Retry, with two limits of ours.

    * only the statuses of ``status_forcelist`` are retried (urllib3 also repeats any
      413/429/503 that carries ``Retry-After``: a login's 429 means too many failed
      logins, which waiting does not fix);
    * a ``Retry-After`` longer than :data:`MAX_RETRY_AFTER` is cut to it.
    """

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        return bool(self.status_forcelist) and status_code in self.status_forcelist

    def get_retry_after(self, response) -> float | None:
        after = super().get_retry_after(response)
        return None if after is None else min(after, MAX_RETRY_AFTER)


def retry_policy(retries: int, backoff: float, statuses: tuple[int, ...], *, repeatable: bool) -> Retry:
    """The urllib3 Retry of one request.

    Parameters
    ----------
    retries : int
        At most this many retries in all.
    backoff : float
        Backoff factor: urllib3 sleeps ``backoff * 2 ** (n - 1)`` seconds before the n-th
        retry after the first (or what ``Retry-After`` says).
    statuses : tuple of int
        Statuses answered by a retry.
    repeatable : bool
        The request may be sent again after it may have reached the server (a timeout
        or a dropped connection while waiting for the answer). A connection that was
        never made is retried either way.

    Examples
    --------
    >>> retry_policy(3, 0.5, (503,), repeatable=False).read
    0
    """
    return _Retry(
        total=retries, connect=retries, read=retries if repeatable else 0, other=retries if repeatable else 0,
        status=retries, status_forcelist=statuses, allowed_methods=None, backoff_factor=backoff,
        respect_retry_after_header=True, raise_on_status=False, raise_on_redirect=False,
    )


_REDIRECTS = (301, 302, 303, 307, 308)


def _as_stream(resp: requests.Response) -> requests.Response:
    """A requests response with the urllib3 names :meth:`APIClient.stream_get` promises."""
    resp.status, resp.stream = resp.status_code, resp.iter_content
    resp.release_conn = resp.close
    return resp


class _Headers(dict):
    """An answer's headers by lower-case name; ``get`` takes a name in any case (as http.client's)."""

    def get(self, name: str, default=None):
        return dict.get(self, name.lower(), default)


# an answer's status line and headers must fit in this many bytes (http.client: 100 lines of 64 kB)
_HEAD_MAX = 65536
# a thread's receive buffer: the head and the body are read into it, block by block
_BUFFER = 1 << 20
# what a request line or header value may not hold (http.client refuses the same)
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


class _FileResponse:
    """A file's answer read straight from this thread's kept-alive socket (:meth:`APIClient.stream_get`'s fast path).

    http.client's answer — a buffered file object per answer, the status line and every
    header read line by line and parsed by the ``email`` package, a new bytes object per
    read — cost ~0.3 ms of CPU per file, more than hashing it. Here the head is parsed from
    the first ``recv_into`` of the thread's buffer (with whatever body came with it), and
    the body is received into the same buffer (:meth:`readview`). Only a head with a
    ``Content-Length`` is kept (:meth:`APIClient._file_get` checks); a body that ends
    before it raises urllib3's ``ProtocolError``, as urllib3 does: what arrived is kept
    and the rest resumed with Range. Has the names of urllib3's response that
    :mod:`campfire.transfer` uses: ``status``, ``headers`` (``.get`` in any case),
    ``read1``, ``release_conn``, ``close``.
    """

    def __init__(self, held: "_ThreadConnection"):
        self._held = held
        sock, buf = held.conn.sock, held.buf
        view = memoryview(buf)
        n = 0
        # the first receive takes whatever has arrived, usually the head with the whole body
        while (end := buf.find(b"\r\n\r\n", 0, min(n, _HEAD_MAX))) < 0:
            if n >= _HEAD_MAX:
                raise http.client.LineTooLong("answer head")
            got = sock.recv_into(view[n:])
            if not got:  # http.client's error for a kept-alive connection the server had closed
                raise (http.client.RemoteDisconnected("closed without an answer") if not n
                       else http.client.IncompleteRead(bytes(view[:n])))
            n += got
        status_line, *lines = bytes(view[:end]).decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        if version not in ("HTTP/1.1", "HTTP/1.0") or not rest[:3].isdigit():
            raise http.client.BadStatusLine(status_line)
        self.status = int(rest[:3])
        self.headers = headers = _Headers()
        for line in lines:
            name, sep, value = line.partition(":")
            if not sep or name != name.strip():
                raise http.client.HTTPException(f"bad header line {line[:100]!r}")
            key, value = name.lower(), value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        length = headers.get("content-length")
        self.length = int(length) if length and length.isdigit() else None  # what is still to come
        # body bytes that came with the head: buf[start:stop]
        self._start, self._stop = end + 4, n
        if self.length is not None and n - self._start > self.length:
            raise http.client.HTTPException("more bytes than the answer's Content-Length")
        connection = headers.get("connection", "").lower()
        self._reuse = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)

    def readview(self, n: int) -> memoryview:
        """The body's next bytes (at most ``n``) as a view of the thread's buffer, valid until the next read; empty at the end."""
        buf = self._held.buf
        if self._start < self._stop:  # what came with the head first
            start, stop = self._start, min(self._stop, self._start + n)
            self._start = stop
            self.length -= stop - start
            return memoryview(buf)[start:stop]
        if not self.length:
            return memoryview(b"")
        try:
            got = self._held.conn.sock.recv_into(buf, min(n, len(buf), self.length))
        except OSError:
            self.close()
            raise  # a timeout or a reset: what arrived is kept, the rest resumed
        if not got:  # the connection ended before the body did
            missing = self.length
            self.close()
            raise urllib3.exceptions.ProtocolError(f"connection broken: {missing} bytes missing")
        self.length -= got
        return memoryview(buf)[:got]

    def read1(self, n: int) -> bytes:
        """The body's next bytes (at most ``n``), copied; ``b""`` at the end."""
        return bytes(self.readview(n))

    def drain(self) -> None:
        """Read a short body (an error's, a redirect's) to its end so that the connection serves again; else close it."""
        try:
            if self.status in (204, 304):
                self.length = 0
            if self.length is not None and self.length <= _HEAD_MAX:
                while self.readview(_HEAD_MAX):
                    pass
        except (OSError, urllib3.exceptions.HTTPError):
            pass
        self.release_conn()

    def release_conn(self) -> None:
        """Keep the connection for the next request when the body was read to its end, else drop it."""
        if self.length != 0 or not self._reuse:
            self._held.conn.close()  # the next request opens a new one
        self.length = self._stop = 0

    close = release_conn  # a body left unread drops the connection either way


class _ThreadConnection:
    """A thread's kept-alive connection and its receive buffer, closed with the thread's other locals.

    ``pid``: a process forked from this one must not talk on the parent's socket.
    """

    def __init__(self, conn: http.client.HTTPConnection):
        self.conn, self.pid = conn, os.getpid()
        self.buf = bytearray(_BUFFER)

    def __del__(self):
        self.conn.close()


def _ca_bundle() -> str | None:
    """The CA bundle the environment names for requests (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``), if any."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")


def error_message(resp) -> str:
    """The message of an error response (the server's JSON ``message``, or its text)."""
    try:
        payload = resp.json()
    except ValueError:
        text = (resp.text or "").strip()
        return text[:300] or resp.reason or f"HTTP {resp.status_code}"
    if isinstance(payload, dict):
        return str(payload.get("message") or payload.get("error_description") or payload.get("detail")
                   or payload.get("error") or payload)
    return str(payload)


def error_for(resp, what: str = "") -> CampfireError:
    """The campfire exception for an error response."""
    status = resp.status_code
    message = error_message(resp)
    if status == 401:
        return AuthenticationError(f"{message}. {LOGIN_HINT}")
    if status == 404:
        return NotFoundError(message if not what else f"{what}: {message}")
    if 400 <= status < 500 and status != 429:
        return ValidationError(message)
    return APIError(f"HTTP {status} from {resp.request.method if resp.request else ''} {resp.url}: {message}",
                    status=status)


class APIClient:
    """HTTP access to one campfire server's API, with its stored tokens.

    Parameters
    ----------
    base_url : str
        Server root; ``/api/v1`` is appended.
    auto_refresh : bool
        Refresh an expired access token with the stored refresh token.
    credentials : CredentialStore, optional
        Where tokens are kept (default: :func:`campfire.config.credentials_path`).
    """

    def __init__(self, base_url: str, auto_refresh: bool = True, credentials: CredentialStore | None = None):
        self.base_url = base_url.rstrip("/")
        self.api_url = self.base_url + config.API_PREFIX
        # the file fast path's server and path prefix, split once (not per downloaded file)
        self._file_server = urllib.parse.urlsplit(self.base_url)
        self._file_prefix = urllib.parse.urlsplit(self.api_url).path
        self._file_host = self._file_server.netloc.rpartition("@")[2]  # the Host header
        self.auto_refresh = auto_refresh
        self._credentials = credentials or CredentialStore()
        self._local = threading.local()
        self._creds_lock = threading.RLock()
        self._creds_cache: tuple[float, dict | None] | None = None
        self._pool: urllib3.PoolManager | bool | None = None
        self._ssl_context: ssl.SSLContext | None = None  # the file fast path's, made on first https use

    # -- sessions ---------------------------------------------------------------------------
    @property
    def session(self) -> requests.Session:
        """One ``requests.Session`` per thread (connection pooling, no shared state)."""
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.headers["User-Agent"] = USER_AGENT
            # read the proxy and CA-bundle environment once per session: with trust_env,
            # requests scans os.environ on every request (≈1 ms of CPU per downloaded file)
            s.proxies.update(requests.utils.get_environ_proxies(self.base_url))
            bundle = _ca_bundle()
            if bundle:
                s.verify = bundle
            s.trust_env = False
            # one adapter per thread: send() sets its retry policy for each request
            adapter = HTTPAdapter(max_retries=retry_policy(0, 0.0, (), repeatable=False))
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            self._local.session, self._local.adapter = s, adapter
        return s

    @property
    def pool(self) -> urllib3.PoolManager | None:
        """The urllib3 pool of streamed file downloads (None when a proxy is configured: :meth:`send`).

        Shared by the threads (urllib3's pools are thread-safe); it keeps up to
        :data:`POOL_SIZE` idle connections per host, more than any download's workers, so
        no connection is dropped and opened again between files.
        """
        pool = self._pool
        if pool is None:
            with self._creds_lock:
                if self._pool is None:
                    if requests.utils.get_environ_proxies(self.base_url):
                        self._pool = False  # proxies: requests knows how to go through them
                    else:
                        self._pool = urllib3.PoolManager(
                            num_pools=4, maxsize=POOL_SIZE, ca_certs=_ca_bundle() or requests.certs.where(),
                            headers={"User-Agent": USER_AGENT})
                pool = self._pool
        return pool or None

    @staticmethod
    def _timeout(key: str) -> tuple[float, float]:
        total = float(config.get(key))
        return (min(total, 10.0), total)

    # -- credentials ------------------------------------------------------------------------
    @property
    def credentials(self) -> CredentialStore:
        """The token store (assign another one to use a different file)."""
        return self._credentials

    @credentials.setter
    def credentials(self, store: CredentialStore) -> None:
        with self._creds_lock:
            self._credentials = store
            self._creds_cache = None

    def _entry(self) -> dict | None:
        with self._creds_lock:
            stamp = self._credentials.mtime()
            if self._creds_cache is None or self._creds_cache[0] != stamp:
                self._creds_cache = (stamp, self._credentials.get(self.base_url))
            return self._creds_cache[1]

    def _store(self, entry: dict | None) -> None:
        self._credentials.put(self.base_url, entry)
        with self._creds_lock:
            self._creds_cache = None

    @property
    def username(self) -> str | None:
        """The user whose tokens are stored for this server (None: anonymous)."""
        entry = self._entry()
        return entry.get("username") if entry else None

    def access_token(self) -> str | None:
        """The stored access token, refreshed first when it is about to expire (None: anonymous)."""
        entry = self._entry()
        if not entry or not entry.get("access_token"):
            return None
        if (self.auto_refresh and entry.get("refresh_token")
                and entry.get("expires_at", 0) - refresh_margin(entry) < time.time()):
            self.refresh(entry["access_token"])
            entry = self._entry()
        return entry.get("access_token") if entry else None

    def refresh(self, stale_access: str | None) -> None:
        """Exchange the refresh token for a new pair, once across threads and processes.

        Raises
        ------
        AuthenticationError
            Nothing to refresh with, or the server refused (log in again).
        """
        with self._creds_lock, self._credentials.locked():
            self._creds_cache = None
            entry = self._credentials.get(self.base_url)
            if not entry:
                raise AuthenticationError(f"not logged in to {self.base_url}. {LOGIN_HINT}")
            if (entry.get("access_token") != stale_access
                    and entry.get("expires_at", 0) - refresh_margin(entry) > time.time()):
                return  # another thread or process refreshed it meanwhile
            if not entry.get("refresh_token"):
                raise AuthenticationError(f"session expired and no refresh token is stored. {LOGIN_HINT}")
            resp = self.send("POST", "/auth/token", data=refresh_grant(entry["refresh_token"]), auth=False,
                             retry_statuses=(500, 502, 503, 504))
            if resp.status_code != 200:
                message = error_message(resp)
                if resp.status_code in (400, 401):
                    raise AuthenticationError(f"session expired ({message}). {LOGIN_HINT}")
                raise error_for(resp)
            self._credentials.put(self.base_url, token_entry(resp.json()))
            self._creds_cache = None

    def login(self, username: str, password: str) -> None:
        """Log in with the OAuth2 password grant; tokens go to the 0600 credentials file.

        Raises
        ------
        ValidationError
            Empty user name or password.
        AuthenticationError
            Wrong user name or password, or too many failed logins.
        """
        data = password_grant(username, password)
        resp = self.send("POST", "/auth/token", data=data, auth=False, retry_statuses=(500, 502, 503, 504))
        if resp.status_code == 429:
            raise AuthenticationError(f"{error_message(resp)} (too many failed logins)")
        if resp.status_code in (400, 401):
            raise AuthenticationError(f"login failed: {error_message(resp)}")
        if resp.status_code != 200:
            raise error_for(resp)
        with self._credentials.locked():
            self._store(token_entry(resp.json()))

    def logout(self) -> None:
        """Revoke the stored refresh token on the server and forget the tokens."""
        entry = self._entry()
        if entry and entry.get("refresh_token"):
            with contextlib.suppress(CampfireError):
                self.send("POST", "/auth/revoke", data={"token": entry["refresh_token"]}, auth=False)
        with self._credentials.locked():
            self._store(None)

    # -- requests ---------------------------------------------------------------------------
    def send(self, method: str, path: str, *, params=None, json_body=None, data=None, headers=None,
             stream: bool = False, auth: bool = True, timeout_key: str = "api.timeout",
             retry_statuses: tuple[int, ...] | None = None, follow_redirects: bool = True) -> requests.Response:
        """Send one request (retried as the module docstring says); the final response, whatever its status.

        Parameters
        ----------
        method, path : str
            E.g. ``'GET'``, ``'/objects'`` (relative to ``/api/v1``).
        params, json_body, data, headers
            Query string, JSON body, form body, extra headers.
        stream : bool
            Do not read the body yet (files, the export).
        auth : bool
            Send the access token, and refresh it once on a 401.
        timeout_key : str
            The ``campfire.*`` config key of the timeout in seconds.
        retry_statuses : tuple of int, optional
            Statuses to retry; default: 429 and 5xx for idempotent methods, 429 and 503 otherwise.
        follow_redirects : bool
            False: return a redirect as it is (:meth:`follow_redirect` takes it from there).

        Raises
        ------
        APIError
            The server cannot be reached (after the retries).
        """
        repeatable = method in IDEMPOTENT or path == "/auth/token"  # a token request is harmless to repeat
        if retry_statuses is None:
            retry_statuses = RETRY_STATUSES if method in IDEMPOTENT else UNPROCESSED_STATUSES
        retries = int(config.get("api.retries"))
        policy = retry_policy(retries, float(config.get("api.backoff")), retry_statuses, repeatable=repeatable)
        session = self.session
        url = self.api_url + path
        refreshed = False
        while True:
            hdrs = dict(headers or {})
            token = self.access_token() if auth else None
            if token:
                hdrs["Authorization"] = f"Bearer {token}"
            self._local.adapter.max_retries = policy  # this thread's adapter: no other request sees it
            try:
                resp = session.request(method, url, params=params, json=json_body, data=data, headers=hdrs,
                                       stream=stream, timeout=self._timeout(timeout_key),
                                       allow_redirects=follow_redirects)
            except (requests.ConnectionError, requests.Timeout) as err:
                raise APIError(f"cannot reach {self.base_url} ({type(err).__name__}: {err}); "
                               f"retried up to {retries} times") from err
            if (resp.status_code == 401 and token and not refreshed and self.auto_refresh
                    and (self._entry() or {}).get("refresh_token")):
                resp.close()
                self.refresh(token)
                refreshed = True
                continue
            return resp

    def stream_get(self, path: str, *, headers: dict | None = None, timeout_key: str = "download.timeout",
                   what: str = "") -> requests.Response | urllib3.BaseHTTPResponse:
        """``GET path``, its body not read yet: a file download.

        The same retries, token refresh and errors as :meth:`request`, on urllib3
        directly: requests' per-request machinery costs about 1 ms of CPU, as much as
        hashing and writing a 1 MB file. A 200/206 answer comes first from this thread's
        kept-alive ``http.client`` connection (:meth:`_file_get`: cheaper still); anything
        else is asked again through urllib3. With a proxy configured it is :meth:`request`
        (a ``requests.Response``). Read the body with ``read1(n)`` (the fast path and
        urllib3) or ``iter_content(n)`` (requests); ``status``, ``headers`` and
        ``release_conn()`` / ``close()`` are on all.

        Raises
        ------
        NotFoundError, AuthenticationError, ValidationError, APIError
            As :meth:`request`.
        """
        pool = self.pool
        if pool is None:
            resp = self.request("GET", path, headers=headers, stream=True, timeout_key=timeout_key, what=what,
                                follow_redirects=False)
            if resp.is_redirect:
                resp = self.follow_redirect(resp, headers, timeout_key=timeout_key, what=what)
            return _as_stream(resp)
        fast = self._file_get(path, headers, timeout_key, what)
        if fast is not None:
            return fast
        retries = int(config.get("api.retries"))
        policy = retry_policy(retries, float(config.get("api.backoff")), RETRY_STATUSES, repeatable=True)
        connect, read = self._timeout(timeout_key)
        url = self.api_url + path
        refreshed = False
        while True:
            hdrs = dict(headers or {})
            token = self.access_token()
            if token:
                hdrs["Authorization"] = f"Bearer {token}"
            try:
                resp = pool.urlopen("GET", url, headers=hdrs, retries=policy, preload_content=False, redirect=False,
                                    timeout=urllib3.Timeout(connect=connect, read=read))
            except urllib3.exceptions.HTTPError as err:
                raise APIError(f"cannot reach {self.base_url} ({type(err).__name__}: {err}); "
                               f"retried up to {retries} times") from err
            if resp.status in _REDIRECTS:  # products on an object store: a pre-signed URL
                return _as_stream(self.follow_redirect(resp, headers, timeout_key=timeout_key, what=what))
            if resp.status < 400:
                return resp
            reply = _Reply(resp, url)
            resp.release_conn()
            if (reply.status_code == 401 and token and not refreshed and self.auto_refresh
                    and (self._entry() or {}).get("refresh_token")):
                self.refresh(token)
                refreshed = True
                continue
            err = error_for(reply, what)
            if isinstance(err, AuthenticationError) and not self._entry():
                err = AuthenticationError(f"{error_message(reply)}. {LOGIN_HINT}")
            raise err

    def _file_conn(self) -> http.client.HTTPConnection:
        """This thread's kept-alive connection to the server for file bodies (created on first use)."""
        held = getattr(self._local, "file_conn", None)
        if held is None or held.pid != os.getpid():
            url = self._file_server
            if url.scheme == "https":
                with self._creds_lock:
                    if self._ssl_context is None:
                        # the CA bundle of the urllib3 pool (and of requests): certificate and host name checked
                        self._ssl_context = ssl.create_default_context(cafile=_ca_bundle() or requests.certs.where())
                conn = http.client.HTTPSConnection(url.hostname, url.port, context=self._ssl_context)
            else:
                conn = http.client.HTTPConnection(url.hostname, url.port)
            held = self._local.file_conn = _ThreadConnection(conn)
        return held.conn

    def _file_get(self, path: str, headers: dict | None, timeout_key: str, what: str):
        """:meth:`stream_get`'s fast path: ``GET path`` on this thread's kept-alive connection.

        urllib3's per-request machinery (URL parsing, pool lookup, retry and timeout
        objects, header dictionaries) costs ~0.15-0.25 ms of CPU per file, as much as
        hashing 300 kB, and http.client's answer ~0.3 ms more. Here: one connection per
        thread (``http.client`` opens it, TLS included), the request written and the answer
        read on its socket (:class:`_FileResponse`). Only a 200/206 answer with a
        ``Content-Length`` and no content coding is returned (or a redirect, followed as
        the urllib3 path does); anything else — an error status, a chunked body, a
        connection that fails before its answer — returns None, and the caller asks again
        on the urllib3 path, whose retries, token refresh and error messages apply. A
        kept-alive connection the server closed meanwhile is opened again once first (a
        timeout is not retried here: the urllib3 path's retries apply to it too).
        """
        if self._file_server.scheme not in ("http", "https"):
            return None
        hdrs = {"User-Agent": USER_AGENT, **(headers or {})}
        token = self.access_token()
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        target = self._file_prefix + path
        lines = [f"GET {target} HTTP/1.1", f"Host: {self._file_host}", "Accept-Encoding: identity",
                 *(f"{name}: {value}" for name, value in hdrs.items())]
        if " " in target or any(_UNSAFE.search(line) for line in lines):
            return None  # urllib3 refuses it with its own error
        try:
            request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        except UnicodeEncodeError:
            return None
        connect, read = self._timeout(timeout_key)
        for _ in range(2):
            conn = self._file_conn()
            held = self._local.file_conn
            reused = conn.sock is not None
            try:
                if not reused:
                    conn.timeout = connect
                    conn.connect()
                if conn.sock.gettimeout() != read:
                    conn.sock.settimeout(read)  # the answer and the body: the read timeout
                conn.sock.sendall(request)
                resp = _FileResponse(held)
            except (OSError, http.client.HTTPException, ValueError) as err:
                conn.close()
                if reused and isinstance(err, ConnectionError):  # RemoteDisconnected, reset, broken pipe
                    continue  # the server had closed the idle connection: once more on a new one
                return None
            break
        else:
            return None
        if (resp.status in (200, 206) and resp.length is not None
                and resp.headers.get("Content-Encoding", "identity") == "identity"
                and "transfer-encoding" not in resp.headers):
            return resp
        resp.drain()
        if resp.status in _REDIRECTS:  # products on an object store: a pre-signed URL
            return _as_stream(self.follow_redirect(resp, headers, timeout_key=timeout_key, what=what))
        return None

    def request(self, method: str, path: str, *, what: str = "", **kwargs) -> requests.Response:
        """:meth:`send`, with an error response raised as a campfire exception.

        ``what`` names the record in a 404's message. Raises NotFoundError (404),
        AuthenticationError (401), ValidationError (other 4xx), APIError (5xx, 429).
        """
        resp = self.send(method, path, **kwargs)
        if resp.status_code >= 400:
            err = error_for(resp, what)
            resp.close()
            if isinstance(err, AuthenticationError) and not self._entry():
                err = AuthenticationError(f"{error_message(resp)}. {LOGIN_HINT}")
            raise err
        return resp

    def follow_redirect(self, redirect, headers: dict | None = None, *,
                        timeout_key: str = "download.timeout", what: str = "") -> requests.Response:
        """GET the ``Location`` of a campfire redirect (an object store's pre-signed URL), streamed.

        No ``Authorization`` header goes there (the signature in the URL is the
        permission), only ``Range``: the campfire server already compared the version
        (its ``ETag``, the sha256 of the content, which the response keeps; the store's
        own ETag is an MD5 of its upload and is kept as ``X-Store-ETag``).

        Raises
        ------
        APIError
            The store cannot be reached, or answers with an error (an expired URL: 403).
        """
        location = redirect.headers.get("Location") or ""
        etag = redirect.headers.get("ETag")
        redirect.close()
        if not location.startswith(("http://", "https://")):
            raise APIError(f"{what or 'file'}: the server redirected to {location[:100]!r}, not an http(s) URL")
        hdrs = {k: v for k, v in (headers or {}).items() if k.lower() == "range"}
        retries = int(config.get("api.retries"))
        self.session  # noqa: B018 - this thread's session and adapter exist from here on
        self._local.adapter.max_retries = retry_policy(retries, float(config.get("api.backoff")), RETRY_STATUSES,
                                                       repeatable=True)
        try:
            resp = self.session.get(location, headers=hdrs, stream=True, timeout=self._timeout(timeout_key),
                                    allow_redirects=False)
        except (requests.ConnectionError, requests.Timeout) as err:
            raise APIError(f"{what or 'file'}: cannot reach the object store {location.split('?')[0]} "
                           f"({type(err).__name__}); retried up to {retries} times") from err
        if resp.status_code >= 400:
            message = error_message(resp)
            resp.close()
            if resp.status_code == 416:
                raise ValidationError(f"{what}: Range outside the file ({message[:200]})")
            raise APIError(f"{what or 'file'}: the object store answered HTTP {resp.status_code} for "
                           f"{location.split('?')[0]} ({message[:200]})", status=resp.status_code)
        if etag:
            resp.headers["X-Store-ETag"] = resp.headers.get("ETag", "")
            resp.headers["ETag"] = etag
        return resp

    def get_json(self, path: str, params=None, what: str = ""):
        """``GET path`` → its JSON."""
        return self.request("GET", path, params=params, what=what).json()


class _Reply:
    """An error response of urllib3 read whole, with the attributes :func:`error_for` asks of a requests one."""

    def __init__(self, resp: urllib3.BaseHTTPResponse, url: str):
        self.status_code, self.reason, self.url = resp.status, resp.reason, url
        self.request = None
        self.content = resp.data or b""
        self.text = self.content.decode("utf-8", "replace")

    def json(self):
        import json

        return json.loads(self.text)
