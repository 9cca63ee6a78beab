"""Login limits and password hashing that cannot be raced or starve the API.

:class:`LoginLimiter` counts failed logins per user name and per client address in a
sliding one-minute window (``campfire.server.login-rate`` per user, ten times that per
address). A login *reserves* its place in both windows before the password is
checked, so however many requests arrive at once, at most the limit is ever
evaluated: an attempt in flight counts as a failure until it is known to have
succeeded. A success releases its place and forgets the user's earlier failures.
Logins that find the window full of attempts still in flight wait for them (briefly);
a window full of failures is a 429 at once.

:func:`password_checks` is the small executor the slow hash (bcrypt) runs on
(``campfire.server.login-workers`` threads, at most ``login-queue`` logins waiting,
then 503 with Retry-After), so forty logins at once queue there instead of taking
the threads that answer every other request.

Examples
--------
>>> limiter = LoginLimiter(per_minute=3)
>>> with limiter.attempt('user:carol', 'addr:10.0.0.1') as attempt:  # or: await limiter.wait_attempt(...)
...     attempt.failed = True
>>> limiter.retry_after('user:carol')
0.0
"""
from __future__ import annotations

import asyncio
import collections
import math
import threading
import time

from campfire import config
from campfire.server.limits import BoundedExecutor

__all__ = ["LoginLimiter", "LoginLimited", "Attempt", "password_checks"]


class LoginLimited(Exception):
    """Too many failed logins for a key: retry after ``wait`` seconds.

    ``in_flight``: the window is full of attempts still being judged, not of failures.
    """

    def __init__(self, wait: float, in_flight: bool = False):
        what = "too many logins at once" if in_flight else "too many failed logins"
        super().__init__(f"{what}; retry in {math.ceil(wait)} s")
        self.wait = wait
        self.in_flight = in_flight


class _Window:
    """Failures (times) of one key in the window, and its attempts in flight."""

    __slots__ = ("failures", "in_flight")

    def __init__(self):
        self.failures: collections.deque[float] = collections.deque()
        self.in_flight = 0


class Attempt:
    """One reserved login attempt; set ``failed`` before leaving the ``with`` block.

    Leaving with ``failed = True`` records a failure under every key; ``False`` (a
    success) forgets the user's failures; leaving on an exception only releases
    the reservation (the password was not judged).
    """

    def __init__(self, limiter: "LoginLimiter", keys: tuple[str, ...]):
        self._limiter = limiter
        self._keys = keys
        self.failed: bool | None = None

    def __enter__(self) -> "Attempt":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._limiter._finish(self._keys, None if exc_type is not None else self.failed)


class LoginLimiter:
    """Sliding one-minute window of failed logins per key, with attempts reserved up front.

    Keys are ``user:<name>`` (limit ``server.login-rate`` per minute) and
    ``addr:<client address>`` (ten times that, so one busy address — a NAT, a test
    suite — is not locked out by a few typos, while a password spray still is).
    """

    ADDRESS_FACTOR = 10
    MAX_KEYS = 100_000  # beyond this many keys, expired ones are dropped

    def __init__(self, per_minute: int | None = None, window: float = 60.0):
        self.per_minute = per_minute
        self.window = window
        self._keys: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def _limit(self, key: str) -> int:
        base = int(config.get("server.login-rate", override_with=self.per_minute))
        return base * self.ADDRESS_FACTOR if key.startswith("addr:") else base

    def _expire(self, w: _Window, now: float) -> None:
        while w.failures and w.failures[0] <= now - self.window:
            w.failures.popleft()

    def _refusal(self, keys: tuple[str, ...], now: float) -> LoginLimited | None:
        # callers hold the lock: why one more attempt under ``keys`` must wait (None: it may go now)
        refusal = None
        for key in keys:
            w = self._keys.get(key)
            if w is None:
                continue
            self._expire(w, now)
            if len(w.failures) + w.in_flight < self._limit(key):
                continue
            if len(w.failures) >= self._limit(key) or not w.in_flight:
                return LoginLimited(w.failures[0] + self.window - now)
            refusal = LoginLimited(1.0, in_flight=True)  # judged within seconds: a success frees its place
        return refusal

    def retry_after(self, *keys: str) -> float:
        """Seconds until another attempt under all ``keys`` is allowed (0 when allowed now)."""
        with self._lock:
            refusal = self._refusal(keys, time.monotonic())
        return 0.0 if refusal is None else refusal.wait

    def attempt(self, *keys: str) -> Attempt:
        """Reserve one attempt under every key, or raise :class:`LoginLimited` (nothing reserved)."""
        now = time.monotonic()
        with self._lock:
            refusal = self._refusal(keys, now)
            if refusal is not None:
                raise refusal
            if len(self._keys) > self.MAX_KEYS:
                self._prune(now)
            for key in keys:
                self._keys.setdefault(key, _Window()).in_flight += 1
        return Attempt(self, keys)

    async def wait_attempt(self, *keys: str, patience: float = 30.0) -> Attempt:
        """:meth:`attempt`, waiting up to ``patience`` s while the window is full of attempts in flight.

        Forty logins of one account at once then take turns instead of being refused (the
        right password frees its place); a window full of *failures* is refused at once.
        """
        deadline = time.monotonic() + patience
        while True:
            try:
                return self.attempt(*keys)
            except LoginLimited as refusal:
                if not refusal.in_flight or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.05)

    def _finish(self, keys: tuple[str, ...], failed: bool | None) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                w = self._keys.setdefault(key, _Window())
                w.in_flight = max(w.in_flight - 1, 0)
                if failed:
                    w.failures.append(now)
                elif failed is False and key.startswith("user:"):
                    w.failures.clear()  # the right password: the typos before it are forgiven

    def _prune(self, now: float) -> None:
        for key in list(self._keys):
            w = self._keys[key]
            self._expire(w, now)
            if not w.failures and not w.in_flight:
                del self._keys[key]

    def clear(self) -> None:
        """Forget every failure (attempts in flight stay reserved)."""
        with self._lock:
            for w in self._keys.values():
                w.failures.clear()


def password_checks() -> BoundedExecutor:
    """The executor of password checks (``server.login-workers`` threads, ``server.login-queue`` waiting).

    bcrypt releases the GIL, so each thread keeps at most one core busy; the rest answer the API.
    """
    return BoundedExecutor("password checks", workers=int(config.get("server.login-workers")),
                           queue=int(config.get("server.login-queue")), cost=0.3)
