"""Limits on what one connection or request may make the server hold: body size, header time, slow work.

:class:`BodyLimit` (ASGI middleware) answers a request whose body is larger than
``campfire.server.max-body-bytes`` with ``413`` — at once when ``Content-Length`` says
so (the body is never read), and as soon as a streamed (chunked) body passes the limit
otherwise. The OAuth2 endpoints take at most :data:`~campfire.server.params.MAX_FORM_BYTES`.

:class:`HeaderTimeoutProtocol` is uvicorn's h11 protocol with a deadline for the
request headers (``campfire.server.header-timeout`` seconds from the connection's
first byte, or from a kept-alive connection's first byte of the next request): uvicorn
itself holds a connection that never finishes its headers for ever (any byte cancels
its keep-alive timer). :func:`uvicorn_config` sets both up for ``campfire serve``, the
test servers and the benchmarks alike.

:class:`BoundedExecutor` runs slow work (password hashes, cutout renders) on a few
threads of its own, apart from the threads that answer every other request, with a
bounded number of callers waiting (on the event loop, holding no thread) for at most a
given time; beyond that a :class:`Busy` error becomes a ``503`` with ``Retry-After``.

Examples
--------
>>> limit = BodyLimit(app, default=1 << 20)  # doctest: +SKIP
"""
from __future__ import annotations

import asyncio
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

import h11
from starlette.exceptions import HTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol

from campfire import config
from campfire.server.errors import problem_response
from campfire.server.params import MAX_FORM_BYTES, too_large_message

__all__ = ["BodyLimit", "HeaderTimeoutProtocol", "uvicorn_config", "body_limits", "BoundedExecutor", "Busy"]

T = TypeVar("T")

_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})


class BodyLimit:
    """ASGI middleware: 413 for a request body over its limit, before the app reads it.

    Parameters
    ----------
    app : ASGI app
    default : int, optional
        Largest body in bytes (``campfire.server.max-body-bytes`` when None).
    per_path : dict, optional
        Smaller limits of some paths (the token endpoints).
    """

    def __init__(self, app, default: int | None = None, per_path: dict[str, int] | None = None):
        self.app = app
        self.default = int(config.get("server.max-body-bytes", override_with=default))
        self.per_path = dict(per_path or {})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in _NO_BODY:
            return await self.app(scope, receive, send)
        limit = self.per_path.get(scope["path"], self.default)
        length = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                length = value
                break
        if length is not None:
            try:
                declared = int(length) if len(length) <= 18 else limit + 1
            except ValueError:
                declared = None
            if declared is None:
                response = problem_response(400, "invalid_request", "malformed Content-Length header")
                return await response(scope, receive, send)
            if declared > limit:
                # the body is never read: the server closes the connection after answering
                response = problem_response(413, "payload_too_large", too_large_message(limit),
                                            {"Connection": "close"})
                return await response(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # a streamed body: stop reading here; the handler turns this into the 413
                    raise HTTPException(413, too_large_message(limit), headers={"Connection": "close"})
            return message

        await self.app(scope, limited_receive, send)


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections that do not finish a request's headers in time."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.header_timeout = float(config.get("server.header-timeout"))
        self._header_deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self._header_deadline is None and self.header_timeout > 0:
            self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()  # a connection that sends nothing at all is closed too

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._arm()  # the first byte of the next request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()  # the headers are complete: the app runs without a deadline

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info("closing a connection that did not send its request headers in %.0f s",
                             self.header_timeout)
            self.transport.close()


def uvicorn_config(app, *, host: str = "127.0.0.1", port: int = 8000,
                   forwarded_allow_ips: str | list[str] | None = None, **options):
    """The ``uvicorn.Config`` of every campfire server (``campfire serve``, test servers, benchmarks).

    Parameters
    ----------
    app : ASGI app
    host, port :
        Where to listen (ignored when the caller passes its own sockets to ``Server.run``).
    forwarded_allow_ips : str or list of str, optional
        The proxies whose ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are trusted
        (addresses or networks, ``'*'`` for any). None (the default): proxy headers are
        ignored and the client address is the socket's peer — uvicorn's own default
        trusts them from 127.0.0.1, which lets anyone on a machine with a local proxy
        choose the address the login limits count.
    **options
        Further ``uvicorn.Config`` options (``log_level``, ``timeout_keep_alive``, ...).
    """
    import uvicorn

    if isinstance(forwarded_allow_ips, (list, tuple)):
        forwarded_allow_ips = ",".join(forwarded_allow_ips)
    if forwarded_allow_ips is None:
        forwarded_allow_ips = config.get("server.forwarded-allow-ips")
    trusted = bool(forwarded_allow_ips)
    options.setdefault("timeout_keep_alive", 5)
    return uvicorn.Config(app, host=host, port=port, http=HeaderTimeoutProtocol, proxy_headers=trusted,
                          forwarded_allow_ips=forwarded_allow_ips if trusted else "", **options)


def body_limits(prefix: str) -> dict[str, int]:
    """The per-path limits smaller than the default: the OAuth2 form endpoints."""
    return {f"{prefix}/auth/token": MAX_FORM_BYTES, f"{prefix}/auth/revoke": MAX_FORM_BYTES}


class Busy(Exception):
    """A :class:`BoundedExecutor` has no room: retry after ``retry_after`` seconds (a 503)."""

    def __init__(self, what: str, retry_after: float):
        super().__init__(f"the server is busy ({what}); retry in {math.ceil(retry_after)} s")
        self.retry_after = max(1, math.ceil(retry_after))


class BoundedExecutor:
    """Slow work on ``workers`` threads of its own, at most ``queue`` callers waiting at most ``wait`` s.

    Waiting happens on the event loop (an ``asyncio.Semaphore``), so waiting callers hold
    no thread of the server's pool: the endpoints that do not use this executor keep all
    of theirs.

    Parameters
    ----------
    what : str
        What it runs, for the 503 message (``'password checks'``, ``'cutout renders'``).
    workers : int
        Threads, i.e. jobs at once.
    queue : int
        Callers allowed to wait for a thread; one more is refused at once.
    wait : float, optional
        Seconds a caller waits for a thread before it is refused (None: as long as it takes).
    cost : float
        Rough seconds per job, for the Retry-After estimate.

    Examples
    --------
    >>> pool = BoundedExecutor('cutout renders', workers=2, queue=16, wait=20.0)
    >>> png = await pool.run(render, object_id)  # doctest: +SKIP
    """

    def __init__(self, what: str, workers: int, queue: int, wait: float | None = None, cost: float = 1.0):
        self.what = what
        self.workers = max(1, int(workers))
        self.queue = max(0, int(queue))
        self.wait = wait
        self.cost = cost
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix=f"campfire-{what.replace(' ', '-')}")
        self._slots: asyncio.Semaphore | None = None  # made on the event loop that uses it
        self.pending = 0  # running + waiting; only touched on the event loop's thread

    async def run(self, fn: Callable[..., T], *args) -> T:
        """``fn(*args)`` on one of the executor's threads; :class:`Busy` when there is no room in time."""
        if self.pending >= self.workers + self.queue:
            raise Busy(self.what, self.pending / self.workers * self.cost)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        self.pending += 1
        try:
            try:
                async with asyncio.timeout(self.wait):  # (wait_for may lose a permit acquired as it times out)
                    await self._slots.acquire()
            except TimeoutError:
                raise Busy(self.what, self.pending / self.workers * self.cost) from None
            try:
                return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
            finally:
                self._slots.release()
        finally:
            self.pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
