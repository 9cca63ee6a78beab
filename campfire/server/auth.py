"""Accounts, program memberships and OAuth2 tokens of the archive server.

Everything secret lives in ``<root>/meta/auth.db`` (mode 0600), a database separate
from the catalog, so a copy of ``campfire.db`` (a client's sync, a backup) never
carries a password hash or a token.

Design
------
* Passwords: bcrypt (cost ``campfire.server.bcrypt-rounds``) over a SHA-256 pre-hash,
  so passwords longer than bcrypt's 72 bytes are neither truncated nor rejected;
  PBKDF2-SHA256 (600,000 iterations) when bcrypt is not installed. Both salted, both
  slow; the stored string says which was used.
* Access tokens: JWT (HS256) with ``sub``, ``iat``, ``exp`` (``server.access-token-ttl``)
  and ``fam`` (the login they belong to), signed with a random per-archive secret kept in
  auth.db. Memberships are looked up per request, not baked into the token, so a revoked
  grant takes effect at once; so is the login's state: the access tokens of a login that
  was logged out (``/auth/revoke``), replayed or ended by a new password are refused at
  once, not when they expire (the revoked refresh-token family is the revocation list).
* Refresh tokens: opaque random strings; only their SHA-256 is stored. Each use
  rotates it (the old one is marked used, a new one in the same *family* is issued).
  Presenting a used token again means it leaked: the whole family is revoked.
* Login rate limiting and the executor the hashes run on: :mod:`campfire.server.logins`.
* Roles: ``member`` (default: sees public programs and the ones granted, may inspect
  objects with a spectrum in a granted program) or ``admin`` (sees every program, may
  inspect any object and resolve conflicts between reviewers).

Examples
--------
>>> add_user(root, 'carol', 'a-long-password', programs=['EMBER-UDS'])  # doctest: +SKIP
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import pathlib
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Iterable

from campfire import config
from campfire.catalog.db import catalog_path, connect, opened
from campfire.errors import AuthenticationError, CampfireError, ValidationError

__all__ = [
    "AuthStore",
    "TokenPair",
    "add_user",
    "seed_demo_accounts",
    "hash_password",
    "verify_password",
    "DEMO_ACCOUNTS",
    "ROLES",
]

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}$")
ROLES = ("member", "admin")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024

# the demo accounts documented in the README (password, member of the proprietary programs?)
DEMO_ACCOUNTS = {"alice": ("alice-demo", True), "bob": ("bob-demo", False)}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at    REAL NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    role          TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'admin'))
);
CREATE TABLE IF NOT EXISTS memberships (
    username   TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    program_id INTEGER NOT NULL,
    PRIMARY KEY (username, program_id)
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,          -- sha256 of the opaque token (the token is never stored)
    family     TEXT NOT NULL,             -- all rotations of one login
    username   TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    issued_at  REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at    REAL,
    revoked    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family);
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,               -- jwt_secret
    value TEXT NOT NULL
);
"""

_JWT_ALG = "HS256"
_ISSUER = "campfire"


# ----------------------------------------------------------------------------- passwords
def _prehash(password: str) -> bytes:
    # bcrypt reads at most 72 bytes (bcrypt>=5 raises beyond): hash first, keep all entropy
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def hash_password(password: str, rounds: int | None = None) -> str:
    """A salted, slow hash of ``password`` (bcrypt, else PBKDF2-SHA256).

    Examples
    --------
    >>> h = hash_password('correct horse', rounds=4)
    >>> verify_password('correct horse', h), verify_password('wrong', h)
    (True, False)
    """
    try:
        import bcrypt
    except ImportError:  # pragma: no cover - the server extra installs bcrypt
        salt = secrets.token_bytes(16)
        iterations = 600_000
        digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
        return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"
    rounds = int(config.get("server.bcrypt-rounds", override_with=rounds) or 12)
    return "bcrypt$" + bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode("ascii")


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches the ``stored`` hash (constant-time comparison)."""
    scheme, _, rest = stored.partition("$")
    if scheme == "bcrypt":
        import bcrypt

        try:
            return bcrypt.checkpw(_prehash(password), rest.encode("ascii"))
        except ValueError:
            return False
    if scheme == "pbkdf2_sha256":
        iterations, salt, digest = rest.split("$")
        candidate = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), bytes.fromhex(salt), int(iterations))
        return hmac.compare_digest(candidate.hex(), digest)
    return False


def _check_username(name: str) -> str:
    if not isinstance(name, str) or not USERNAME_RE.match(name):
        raise ValidationError(
            f"username: expected 1-64 lower-case letters, digits, '_', '.' or '-' (starting with a letter or digit), "
            f"got {name!r}"
        )
    return name


def _check_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValidationError(f"password: expected {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TokenPair:
    """What the token endpoint returns (RFC 6749 section 5.1)."""

    access_token: str
    refresh_token: str
    expires_in: int
    username: str

    def as_response(self) -> dict:
        return {
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "username": self.username,
        }


class AuthStore:
    """Users, memberships and refresh tokens in ``<root>/meta/auth.db``.

    One connection guarded by a lock: writes are rare (logins, refreshes) and short.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = pathlib.Path(root)
        self.path = self.root / "meta" / "auth.db"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            # create it user-only before SQLite writes a byte into it
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
            os.close(fd)
        os.chmod(self.path, 0o600)
        self._lock = threading.Lock()
        self._conn = connect(self.path, readonly=False)
        self._conn.executescript(_SCHEMA)
        if "role" not in {r[1] for r in self._conn.execute("PRAGMA table_info(users)")}:  # an older auth.db
            self._conn.execute("ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'member' "
                               "CHECK (role IN ('member', 'admin'))")
        self._conn.commit()
        self._secret = self._load_secret()
        # a fixed dummy hash so an unknown user costs as much as a wrong password
        self._dummy_hash = hash_password(secrets.token_urlsafe(12))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _load_secret(self) -> str:
        with self._lock:
            row = self._conn.execute("SELECT value FROM settings WHERE key = 'jwt_secret'").fetchone()
            if row:
                return row[0]
            secret = secrets.token_urlsafe(48)
            self._conn.execute("INSERT OR IGNORE INTO settings (key, value) VALUES ('jwt_secret', ?)", (secret,))
            self._conn.commit()
            return self._conn.execute("SELECT value FROM settings WHERE key = 'jwt_secret'").fetchone()[0]

    # -- accounts -------------------------------------------------------------------
    def add_user(self, username: str, password: str, program_ids: Iterable[int] = (), *, reset_password: bool = True,
                 role: str | None = None) -> bool:
        """Create an account (or reset its password) and grant ``program_ids``. True if created.

        ``role``: ``'member'`` or ``'admin'``; None keeps an existing account's role (new ones: member).
        """
        _check_username(username)
        _check_password(password)
        if role is not None and role not in ROLES:
            raise ValidationError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
        ids = sorted({int(p) for p in program_ids})
        with self._lock:
            exists = self._conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone() is not None
        if exists and not reset_password:
            pw_hash = None
        else:
            pw_hash = hash_password(password)  # slow: outside the lock
        with self._lock, self._conn:
            if not exists:
                self._conn.execute(
                    "INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)",
                    (username, pw_hash, time.time()),
                )
            elif pw_hash is not None:
                self._conn.execute("UPDATE users SET password_hash = ? WHERE username = ?", (pw_hash, username))
                # a new password ends every session of the account
                self._conn.execute("UPDATE refresh_tokens SET revoked = 1 WHERE username = ?", (username,))
            self._conn.executemany(
                "INSERT OR IGNORE INTO memberships (username, program_id) VALUES (?, ?)", [(username, p) for p in ids]
            )
            if role is not None:
                self._conn.execute("UPDATE users SET role = ? WHERE username = ?", (role, username))
        return not exists

    def grant(self, username: str, program_ids: Iterable[int]) -> bool:
        """Grant an existing account programs (no password change); False when there is no such account."""
        ids = sorted({int(p) for p in program_ids})
        with self._lock, self._conn:
            if self._conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone() is None:
                return False
            self._conn.executemany(
                "INSERT OR IGNORE INTO memberships (username, program_id) VALUES (?, ?)", [(username, p) for p in ids]
            )
        return True

    def users(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT username FROM users ORDER BY username")]

    def user_exists(self, username: str) -> bool:
        with self._lock:
            row = self._conn.execute("SELECT disabled FROM users WHERE username = ?", (username,)).fetchone()
        return row is not None and not row[0]

    def role_of(self, username: str) -> str | None:
        """``'member'`` or ``'admin'``; None for an unknown or disabled account."""
        with self._lock:
            row = self._conn.execute("SELECT role, disabled FROM users WHERE username = ?", (username,)).fetchone()
        return None if row is None or row[1] else row[0]

    def programs_of(self, username: str) -> frozenset[int]:
        """The program ids ``username`` is a member of."""
        with self._lock:
            rows = self._conn.execute("SELECT program_id FROM memberships WHERE username = ?", (username,)).fetchall()
        return frozenset(r[0] for r in rows)

    def check_password(self, username: str, password: str) -> bool:
        """True for a valid login. Unknown users cost as much time as known ones."""
        with self._lock:
            row = self._conn.execute(
                "SELECT password_hash, disabled FROM users WHERE username = ?", (username,)
            ).fetchone()
        if row is None:
            verify_password(password, self._dummy_hash)
            return False
        ok = verify_password(password, row[0])
        return ok and not row[1]

    # -- tokens ---------------------------------------------------------------------
    def _access_token(self, username: str, now: float, ttl: int, family: str) -> str:
        import jwt

        claims = {"sub": username, "iat": int(now), "exp": int(now) + ttl, "iss": _ISSUER, "typ": "access",
                  "jti": uuid.uuid4().hex, "fam": family}
        return jwt.encode(claims, self._secret, algorithm=_JWT_ALG)

    def issue(self, username: str, family: str | None = None) -> TokenPair:
        """A new access token and a new refresh token (in ``family``, or a new family)."""
        with self._lock, self._conn:
            return self._issue_locked(username, family or uuid.uuid4().hex)

    def _issue_locked(self, username: str, family: str) -> TokenPair:
        # callers hold the lock and an open transaction
        now = time.time()
        access_ttl = int(config.get("server.access-token-ttl"))
        refresh_ttl = int(config.get("server.refresh-token-ttl"))
        refresh = secrets.token_urlsafe(32)
        self._conn.execute(
            "INSERT INTO refresh_tokens (token_hash, family, username, issued_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            (_token_digest(refresh), family, username, now, now + refresh_ttl),
        )
        return TokenPair(self._access_token(username, now, access_ttl, family), refresh, access_ttl, username)

    def rotate(self, refresh_token: str) -> TokenPair:
        """Exchange a refresh token for a new pair; a reused token revokes its whole family."""
        if not isinstance(refresh_token, str) or not 10 <= len(refresh_token) <= 200:
            raise AuthenticationError("invalid refresh token")
        digest = _token_digest(refresh_token)
        now = time.time()
        problem = None
        # check, mark used and issue the successor in one locked transaction: a replay racing the
        # rotation must find the successor in the family when it revokes it.
        # The revocation must be committed before the error is raised (a `with conn` block would roll it back).
        with self._lock, self._conn:
            row = self._conn.execute(
                "SELECT t.family, t.username, t.expires_at, t.used_at, t.revoked, u.disabled"
                " FROM refresh_tokens t LEFT JOIN users u USING (username) WHERE t.token_hash = ?",
                (digest,),
            ).fetchone()
            if row is None:
                problem = "invalid refresh token"
            else:
                family, username, expires_at, used_at, revoked, disabled = row
                if used_at is not None or revoked:
                    # replay of a rotated token: someone else holds the family — end it
                    self._conn.execute("UPDATE refresh_tokens SET revoked = 1 WHERE family = ?", (family,))
                    problem = "refresh token was already used or revoked; all sessions of this login are revoked"
                elif expires_at < now:
                    problem = "refresh token expired"
                elif disabled is None or disabled:
                    problem = "account no longer exists"
                else:
                    self._conn.execute("UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ?", (now, digest))
                    # forget long-dead rows now and then so the table stays small
                    self._conn.execute("DELETE FROM refresh_tokens WHERE expires_at < ?", (now - 86400,))
                    return self._issue_locked(username, family)
        raise AuthenticationError(problem)

    def revoke(self, refresh_token: str) -> None:
        """Log out: revoke the family of ``refresh_token`` (unknown tokens are ignored)."""
        digest = _token_digest(refresh_token)
        with self._lock, self._conn:
            row = self._conn.execute("SELECT family FROM refresh_tokens WHERE token_hash = ?", (digest,)).fetchone()
            if row:
                self._conn.execute("UPDATE refresh_tokens SET revoked = 1 WHERE family = ?", (row[0],))

    def decode_access(self, token: str) -> str:
        """The user name of a valid access token; AuthenticationError otherwise."""
        import jwt

        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[_JWT_ALG], issuer=_ISSUER,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("access token expired") from None
        except jwt.PyJWTError as err:
            raise AuthenticationError(f"invalid access token ({err})") from None
        if claims.get("typ") != "access" or not isinstance(claims.get("sub"), str):
            raise AuthenticationError("invalid access token (not an access token)")
        username, family = claims["sub"], claims.get("fam")
        # one indexed lookup per request: the account, and whether the token's login was ended (the
        # family's rows outlive its access tokens: refresh tokens are pruned a day after they expire)
        with self._lock:
            row = self._conn.execute(
                "SELECT disabled, EXISTS (SELECT 1 FROM refresh_tokens WHERE family = ? AND revoked = 1) "
                "FROM users WHERE username = ?", (str(family), username)).fetchone()
        if row is None or row[0]:
            raise AuthenticationError("invalid access token (unknown account)")
        if row[1]:
            raise AuthenticationError("access token revoked (logged out, or its login was ended)")
        return username


# ------------------------------------------------------------------------- module API
def _resolve_programs(root: pathlib.Path, programs: Iterable[int | str]) -> list[int]:
    """Program slugs or ids → ids, checked against the archive's catalog."""
    programs = list(programs)
    if not programs:
        return []
    db = catalog_path(root)
    if not db.exists():
        raise CampfireError(f"no catalog at {db}: cannot grant programs")
    with opened(db) as conn:
        known = conn.execute("SELECT program_id, slug FROM programs").fetchall()
    by_slug = {slug.lower(): pid for pid, slug in known}
    ids = {pid for pid, _ in known}
    out = []
    for p in programs:
        text = str(p).strip()
        if text.isdigit() and int(text) in ids:
            out.append(int(text))
        elif text.lower() in by_slug:
            out.append(by_slug[text.lower()])
        else:
            allowed = ", ".join(f"{slug} ({pid})" for pid, slug in sorted(known))
            raise ValidationError(f"programs: unknown program {p!r}; allowed: {allowed}")
    return out


def add_user(root: str | os.PathLike, name: str, password: str, programs: Iterable[int | str] = (),
             role: str | None = None) -> None:
    """Add an account to the archive served from ``root`` and grant it programs.

    An existing account gets the new password (ending its sessions) and the extra
    grants. ``programs`` are program slugs or JWST proposal ids of the catalog.
    ``role`` ``'admin'`` makes an archive admin (sees every program, inspects any
    object, resolves conflicts); ``'member'`` a plain account; None keeps the role
    of an existing account (new ones: member).

    Examples
    --------
    >>> add_user('/data/archive', 'carol', 'a-long-password', programs=['EMBER-UDS'])  # doctest: +SKIP
    >>> add_user('/data/archive', 'root', 'another-long-password', role='admin')       # doctest: +SKIP
    """
    root = pathlib.Path(root)
    ids = _resolve_programs(root, programs)
    store = AuthStore(root)
    try:
        store.add_user(name, password, ids, role=role)
    finally:
        store.close()


def _proprietary_program_ids(root: pathlib.Path) -> list[int]:
    with opened(catalog_path(root)) as conn:
        return [r[0] for r in conn.execute("SELECT program_id FROM programs WHERE is_public = 0")]


def seed_demo_accounts(root: str | os.PathLike, store: AuthStore | None = None) -> None:
    """Create the documented demo accounts if missing.

    ``alice`` / ``alice-demo`` is a member of every proprietary program of the demo;
    ``bob`` / ``bob-demo`` of none. Existing accounts keep their passwords.
    """
    root = pathlib.Path(root)
    proprietary = _proprietary_program_ids(root)
    own = store is None
    store = store or AuthStore(root)
    try:
        for name, (password, member) in DEMO_ACCOUNTS.items():
            store.add_user(name, password, proprietary if member else [], reset_password=False)
    finally:
        if own:
            store.close()
