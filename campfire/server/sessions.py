"""Browser sessions of the portal: an HttpOnly cookie, a CSRF token, and who may log in.

A browser logs in with the same accounts as the API (``POST /login``). The server
keeps the session in ``<root>/meta/auth.db`` next to the accounts; the cookie holds
only a random session id (its SHA-256 is stored, like refresh tokens), so a copy of
the database does not let anyone in.

Design
------
* Cookie ``campfire_session``: HttpOnly (no script reads it), SameSite=Strict (no
  other site's page sends it), ``Secure`` when served over https, ``Path=/``.
* CSRF: each session has its own random token (the synchronizer-token pattern). Pages
  render it into ``<meta name="csrf-token">``; the portal's scripts send it as
  ``X-CSRF-Token``. Every state-changing request authenticated by the cookie
  (POST, PUT, PATCH, DELETE) without the right token is refused with 403 — bearer-token
  clients never carry the cookie and are unaffected. The login form, which has no
  session yet, uses a double-submit token (a short-lived cookie and a form field
  that must match).
* Lifetime: a session ends at logout, after ``server.session-idle`` seconds without a
  request, after ``server.session-ttl`` seconds in any case, when the account is
  disabled, and when its password changes (the session remembers a digest of the
  password hash it was opened under).

Examples
--------
>>> store = SessionStore(auth_store)            # doctest: +SKIP
>>> token, session = store.create('alice')      # doctest: +SKIP
>>> store.get(token).username                   # doctest: +SKIP
'alice'
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from dataclasses import dataclass

from campfire import config
from campfire.catalog.db import connect

__all__ = ["COOKIE", "LOGIN_COOKIE", "CSRF_HEADER", "UNSAFE_METHODS", "Session", "SessionStore",
           "tokens_match", "cookie_options"]

COOKIE = "campfire_session"
LOGIN_COOKIE = "campfire_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TOUCH_EVERY = 60.0  # seconds between writes of a session's last_seen

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    session_hash TEXT PRIMARY KEY,        -- sha256 of the cookie value (the value is never stored)
    username     TEXT NOT NULL,
    csrf_token   TEXT NOT NULL,
    password_tag TEXT NOT NULL,           -- digest of the password hash the session was opened under
    created_at   REAL NOT NULL,
    last_seen    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_username ON sessions (username);
"""


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of two tokens; False when either is missing."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def cookie_options(secure: bool, max_age: int | None = None) -> dict:
    """Keyword arguments of ``Response.set_cookie`` for the portal's cookies."""
    return {"httponly": True, "samesite": "strict", "secure": secure, "path": "/", "max_age": max_age}


@dataclass(frozen=True)
class Session:
    """One logged-in browser: who, and the CSRF token its pages carry."""

    username: str
    csrf_token: str
    created_at: float


class SessionStore:
    """Portal sessions in the archive's ``auth.db`` (next to the accounts they belong to).

    Parameters
    ----------
    path : path
        The accounts database (``AuthStore.path``); its ``users`` table says who exists,
        whether the account is disabled and its current password hash.
    """

    def __init__(self, path: str | os.PathLike):
        self._lock = threading.Lock()
        self._conn = connect(path, readonly=False)
        self._conn.executescript(_SCHEMA)
        self._conn.commit()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @staticmethod
    def _limits() -> tuple[float, float]:
        return float(config.get("server.session-ttl")), float(config.get("server.session-idle"))

    def create(self, username: str) -> tuple[str, Session]:
        """Open a session for ``username`` (already authenticated); returns (cookie value, session)."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = time.time()
        with self._lock, self._conn:
            row = self._conn.execute("SELECT password_hash FROM users WHERE username = ?", (username,)).fetchone()
            if row is None:
                raise KeyError(username)
            self._conn.execute(
                "INSERT INTO sessions (session_hash, username, csrf_token, password_tag, created_at, last_seen)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (_digest(token), username, csrf, _digest(row[0]), now, now),
            )
            ttl, _ = self._limits()
            # forget sessions that can no longer be valid, so the table stays small
            self._conn.execute("DELETE FROM sessions WHERE created_at < ?", (now - ttl,))
        return token, Session(username, csrf, now)

    def get(self, token: str | None) -> Session | None:
        """The live session of a cookie value, or None (unknown, expired, logged out, password changed)."""
        if not token or len(token) > 200:
            return None
        digest = _digest(token)
        now = time.time()
        ttl, idle = self._limits()
        with self._lock:
            row = self._conn.execute(
                "SELECT s.username, s.csrf_token, s.password_tag, s.created_at, s.last_seen,"
                " u.password_hash, u.disabled FROM sessions s LEFT JOIN users u USING (username)"
                " WHERE s.session_hash = ?", (digest,),
            ).fetchone()
            if row is None:
                return None
            username, csrf, tag, created, seen, pw_hash, disabled = row
            alive = (pw_hash is not None and not disabled and hmac.compare_digest(tag, _digest(pw_hash))
                     and now - created < ttl and now - seen < idle)
            if not alive:
                with self._conn:
                    self._conn.execute("DELETE FROM sessions WHERE session_hash = ?", (digest,))
                return None
            if now - seen > TOUCH_EVERY:
                with self._conn:
                    self._conn.execute("UPDATE sessions SET last_seen = ? WHERE session_hash = ?", (now, digest))
        return Session(username, csrf, created)

    def end(self, token: str | None) -> None:
        """Log out: forget the session of this cookie value (unknown values are ignored)."""
        if not token or len(token) > 200:
            return
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM sessions WHERE session_hash = ?", (_digest(token),))
