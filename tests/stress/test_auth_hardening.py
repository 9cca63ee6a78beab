"""Tokens, injection strings, the credentials file and login rate limits, across every endpoint.

tests/server/test_server_auth.py proves the basics on one endpoint each (expired → 401,
forged HS256/alg=none/edited payload → 401, a replayed refresh token revokes its family,
per-user login limit, 0600 file after login). Here:

* every endpoint that reads a token rejects every bad token with a 401 JSON error —
  none of them falls back to anonymous (forged with another key, alg=none, tampered,
  expired, wrong issuer, HS512 with the right key, no ``exp``, a refresh token or a
  ``typ=refresh`` JWT where an access token belongs, an unknown user);
* a refresh token presented by several clients at once: exactly one rotation wins, and
  the replay revokes the whole family (the winner's new token too); an expired refresh
  token is refused;
* path traversal and SQL injection strings in every string parameter of the OpenAPI
  document (path, query, header, JSON and form body fields) → 4xx or a harmless 2xx,
  never a 5xx and never data from outside the catalog (no file outside ``products/``,
  no ``auth.db`` row, no extra catalog row), and the catalog is intact afterwards;
* the credentials file stays 0600 (its directory 0700) under a permissive umask, after
  a refresh rewrites it, and when it was left world-readable before; no token in any
  stray file;
* failed logins are limited per address too (a password spray over many user names).
"""
from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import json
import os
import sqlite3
import stat
import time

import dask
import jwt
import pytest
import requests

from campfire.server.openapi import OPERATIONS
from stresskit import API, DEMO_PASSWORDS, copy_archive, password_token, start_server

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def srv(demo_root, tmp_path_factory):
    import pathlib

    root = copy_archive(pathlib.Path(demo_root), tmp_path_factory.mktemp("auth") / "root")
    s = start_server(root)
    s.faults._record = lambda scope: None
    yield s
    s.thread.stop()


@pytest.fixture(autouse=True)
def _fresh_login_limits(srv):
    """Failed logins of one test (the injection strings try hundreds) never lock out the next."""
    yield
    srv.thread.app.state.archive.limiter.clear()


@pytest.fixture(scope="module")
def jwt_secret(srv) -> str:
    conn = sqlite3.connect(srv.root / "meta" / "auth.db")
    try:
        return conn.execute("SELECT value FROM settings WHERE key = 'jwt_secret'").fetchone()[0]
    finally:
        conn.close()


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _path(template: str, ids: dict) -> str:
    return (template.replace("{object_id}", ids["example_object"]).replace("{spectrum_id}", ids["example_spectrum"])
            .replace("{slug}", "lrd"))


# -------------------------------------------------------------------------------- tokens
@pytest.fixture(scope="module")
def bad_tokens(srv, jwt_secret) -> dict[str, str]:
    now = int(time.time())
    good = {"sub": "alice", "iat": now, "exp": now + 600, "iss": "campfire", "typ": "access", "jti": "x"}
    bob_access = password_token(srv.url, "bob")["access_token"]
    head, _, sig = bob_access.split(".")
    return {
        "wrong key": jwt.encode(good, "not-the-server-secret-" * 3, algorithm="HS256"),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(good)}.",
        "tampered payload": f"{head}.{_b64(dict(jwt.decode(bob_access, options={'verify_signature': False}), sub='alice'))}.{sig}",
        "expired": jwt.encode(dict(good, iat=now - 7200, exp=now - 3600), jwt_secret, algorithm="HS256"),
        "wrong issuer": jwt.encode(dict(good, iss="someone-else"), jwt_secret, algorithm="HS256"),
        "HS512 with the right key": jwt.encode(good, jwt_secret, algorithm="HS512"),
        "no exp": jwt.encode({k: v for k, v in good.items() if k != "exp"}, jwt_secret, algorithm="HS256"),
        "typ refresh": jwt.encode(dict(good, typ="refresh"), jwt_secret, algorithm="HS256"),
        "unknown user": jwt.encode(dict(good, sub="mallory"), jwt_secret, algorithm="HS256"),
        "refresh token as access": password_token(srv.url, "alice")["refresh_token"],
        "garbage": "a.b.c",
    }


TOKEN_ROUTES = sorted(key for key, spec in OPERATIONS.items() if spec["auth"] != "none")


@pytest.mark.parametrize("route", TOKEN_ROUTES, ids=lambda r: f"{r[0].upper()} {r[1]}")
def test_every_bad_token_is_a_401_on_every_endpoint(srv, ids, bad_tokens, jwt_secret, route):
    # guards: Archive.authenticate / AuthStore.decode_access (algorithms pinned to HS256, issuer,
    # required claims, typ=access, the account must exist) and that no endpoint reads the
    # caller without them (a fallback to anonymous would answer 200 here)
    method, template = route
    url = f"{srv.url}{API}{_path(template, ids)}"
    body = {"slug": "t", "name": "t"} if template == "/tags" else {"object_ids": [ids["example_object"]]}
    for name, token in bad_tokens.items():
        r = requests.request(method.upper(), url, headers={"Authorization": f"Bearer {token}"},
                             json=body if method != "get" else None)
        assert r.status_code == 401, (name, r.status_code, r.text[:200])
        assert r.json()["message"] and r.headers["www-authenticate"].startswith("Bearer"), name
    # the control: the same request with a valid token of the same (signing) kind is not a 401
    ok = jwt.encode({"sub": "alice", "iat": int(time.time()), "exp": int(time.time()) + 600, "iss": "campfire",
                     "typ": "access"}, jwt_secret, algorithm="HS256")
    r = requests.request(method.upper(), url, headers={"Authorization": f"Bearer {ok}"},
                         json=body if method != "get" else None)
    assert r.status_code != 401, r.text


def test_concurrent_refresh_with_one_token_rotates_once_and_revokes_the_family(srv):
    # guards: AuthStore.rotate's check-and-mark under one lock + transaction (two threads must
    # never both rotate the same token) and replay detection revoking the family
    pair = password_token(srv.url, "bob")
    url = f"{srv.url}{API}/auth/token"

    def refresh(_):
        return requests.post(url, data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]})

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(refresh, range(8)))
    winners = [r for r in answers if r.status_code == 200]
    assert len(winners) == 1, [r.status_code for r in answers]
    assert all(r.status_code == 400 and r.json()["error"] == "invalid_grant" for r in answers if r not in winners)
    # the replays revoked the family: the winner's rotated token is dead too
    again = requests.post(url, data={"grant_type": "refresh_token", "refresh_token": winners[0].json()["refresh_token"]})
    assert again.status_code == 400


def test_expired_refresh_token_is_refused(srv):
    # guards: the expires_at check of AuthStore.rotate
    pair = password_token(srv.url, "bob")
    digest = hashlib.sha256(pair["refresh_token"].encode()).hexdigest()
    conn = sqlite3.connect(srv.root / "meta" / "auth.db")
    with conn:
        conn.execute("UPDATE refresh_tokens SET expires_at = ? WHERE token_hash = ?", (time.time() - 1, digest))
    conn.close()
    r = requests.post(f"{srv.url}{API}/auth/token",
                      data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]})
    assert r.status_code == 400 and "expired" in r.json()["error_description"]


# ---------------------------------------------------------------------- injection strings
ATTACKS = [
    "../../../../etc/passwd", "..%2F..%2Fmeta%2Fauth.db", "/etc/passwd", "....//....//meta/auth.db",
    "products/../meta/campfire.db", "..\\..\\meta\\auth.db", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "file:///etc/passwd",
    "x\x00y", "' OR '1'='1", "1; DROP TABLE spectra; --", "\" OR 1=1 --", "%' OR 1=1 --",
    "object_id) UNION SELECT password_hash, 1 FROM users --", "1 UNION SELECT token_hash FROM refresh_tokens",
    "*", "%", "_", "$(id)", "{{7*7}}", "A" * 5000,
]
# what must never appear in an answer: file contents from outside products/, secrets of auth.db
FORBIDDEN = [b"root:x:0:0", b"SQLite format 3", b"bcrypt$", b"pbkdf2_sha256$", b"jwt_secret", b"password_hash",
             b"token_hash"]


def _string_params(doc: dict) -> list[tuple[str, str, str, str]]:
    """(method, path, location, name) of every parameter and string body field in the document.

    Numeric query parameters (fov, size) are included: over HTTP they are strings too.
    """
    out = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for p in op.get("parameters", []):
                out.append((method, path, p["in"], p["name"]))
            for ctype, media in op.get("requestBody", {}).get("content", {}).items():
                for name, schema in media["schema"].get("properties", {}).items():
                    if schema.get("type") in ("string", "array"):
                        out.append((method, path, "form" if "form" in ctype else "json", name))
    return sorted(set(out))


def _catalog_fingerprint(srv) -> tuple:
    return tuple(srv.sql(f"SELECT count(*) FROM {t}")[0][0] for t in ("spectra", "objects", "programs",
                                                                       "observations", "photometry"))


def test_injection_strings_in_every_string_parameter(srv, ids):
    # guards: bound SQL parameters everywhere (local.py / tags.py / export.py), whitelisted sort
    # columns, _check_id on path IDs, Archive.file_path confining reads to <root>/products,
    # check_slug/_check_text of tag edits and the error handlers (nothing reaches a 500)
    doc = requests.get(f"{srv.url}{API}/openapi.json").json()
    params = _string_params(doc)
    assert len(params) >= 40, params  # path IDs, the filter vocabulary, fov/since/Range, body fields
    headers = {"Authorization": f"Bearer {password_token(srv.url, 'alice')['access_token']}"}
    before = _catalog_fingerprint(srv)
    answered: dict[int, int] = {}
    for method, path, where, name in params:
        for attack in ATTACKS:
            url_path = path
            query, hdrs, body, form = {}, dict(headers), None, None
            for tmpl, real in (("{object_id}", ids["example_object"]), ("{spectrum_id}", ids["example_spectrum"]),
                               ("{slug}", "lrd")):
                if f"{{{name}}}" == tmpl and where == "path":
                    url_path = url_path.replace(tmpl, requests.utils.quote(attack, safe=""))
                url_path = url_path.replace(tmpl, real)
            if where == "query":
                query[name] = attack
            elif where == "header":
                hdrs[name] = attack.encode("latin-1", "replace").decode("latin-1").replace("\x00", "")
            elif where == "json":
                body = {name: [attack] if name == "object_ids" else attack}
                if path.endswith("/tags") and name != "slug":
                    body["slug"] = "inj-tag"
            elif where == "form":
                form = {"grant_type": "password", "username": "bob", "password": "wrong-pass", name: attack}
            r = requests.request(method.upper(), f"{srv.url}{url_path}", params=query, headers=hdrs, json=body,
                                 data=form, timeout=30)
            answered[r.status_code] = answered.get(r.status_code, 0) + 1
            assert r.status_code < 500, (method, path, where, name, attack[:40], r.text[:300])
            content = r.content if "image/png" not in r.headers.get("content-type", "") else b""
            if r.headers.get("content-type") == "application/fits":
                content = b""  # a public FITS file (a valid ID, an ignored header) is binary data
            for needle in FORBIDDEN:
                if needle not in attack.encode():  # an error message may quote the bad value back
                    assert needle not in content, (method, path, name, attack[:40], needle)
            if r.status_code == 200 and where == "query" and path.endswith(("/objects", "/spectra")) and \
                    name == "search" and any(c in attack for c in "'\";*% "):
                # LIKE wildcards are escaped and no ID holds quotes or spaces: nothing matches
                assert r.json()["total"] == 0, attack
            # clean up tags the attack strings created as names/descriptions
            if r.status_code == 201:
                requests.delete(f"{srv.url}{API}/tags/inj-tag", headers=headers)
    assert _catalog_fingerprint(srv) == before
    assert set(answered) <= {200, 201, 206, 304, 400, 401, 403, 404, 405, 409, 416, 429}, answered
    conn = sqlite3.connect(srv.root / "meta" / "auth.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert {"users", "refresh_tokens", "memberships"} <= {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


# ------------------------------------------------------------------------ credentials file
def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_credentials_file_stays_user_only(srv, tmp_path, monkeypatch):
    # guards: CredentialStore.put (0600 temporary file, chmod, atomic rename; 0700 directory)
    from campfire.catalog.remote import CredentialStore
    from campfire.client import Campfire

    config_dir = tmp_path / "cfg"
    monkeypatch.setenv("CAMPFIRE_CONFIG_DIR", str(config_dir))
    old = os.umask(0)  # the most permissive umask: modes must come from the code, not the umask
    try:
        cf = Campfire(base_url=srv.url, data_dir=tmp_path / "data")
        cf.login("alice", DEMO_PASSWORDS["alice"])
        creds = config_dir / "credentials.json"
        assert _mode(creds) == 0o600 and _mode(config_dir) == 0o700
        # a refresh rewrites the file: still 0600
        with dask.config.set({"campfire.server.access-token-ttl": 1}):
            cf.login("alice", DEMO_PASSWORDS["alice"])
        store = CredentialStore()
        entry = store.get(srv.url)
        with store.locked():
            store.put(srv.url, dict(entry, expires_at=time.time() - 10))
        assert cf.remote_catalog.whoami()["username"] == "alice"  # refreshed transparently
        assert store.get(srv.url)["refresh_token"] != entry["refresh_token"]
        assert _mode(creds) == 0o600
        # a file someone made world-readable is tightened by the next write
        os.chmod(creds, 0o644)
        cf.login("bob", DEMO_PASSWORDS["bob"])
        assert _mode(creds) == 0o600
    finally:
        os.umask(old)
    # no token lingers in a temporary or backup file
    tokens = {v for e in json.loads(creds.read_text())["servers"].values()
              for k, v in e.items() if k.endswith("token")}
    for f in config_dir.iterdir():
        if f != creds:
            assert not any(t.encode() in f.read_bytes() for t in tokens), f.name


# ------------------------------------------------------------------------------ rate limit
def test_failed_logins_are_limited_per_address(demo_root, tmp_path):
    # guards: LoginLimiter's addr:<client> key (a spray over many user names from one address)
    import pathlib

    srv = start_server(copy_archive(pathlib.Path(demo_root), tmp_path / "root"))
    try:
        with dask.config.set({"campfire.server.login-rate": 2}):  # 2 per user, 20 per address
            url = f"{srv.url}{API}/auth/token"
            codes = []
            t0 = time.monotonic()
            for i in range(25):
                r = requests.post(url, data={"grant_type": "password", "username": f"spray{i}", "password": "guess-1"})
                codes.append(r.status_code)
            assert codes[:20] == [400] * 20 and set(codes[20:]) == {429}, codes
            r = requests.post(url, data={"grant_type": "password", "username": "alice",
                                         "password": DEMO_PASSWORDS["alice"]})
            # the address is locked out now, for the right password too, until the window passes
            assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
            # refused before the slow hash: a locked-out guess costs no bcrypt time
            t1 = time.monotonic()
            for _ in range(20):
                requests.post(url, data={"grant_type": "password", "username": "bob", "password": "guess-2"})
            assert time.monotonic() - t1 < max(2.0, (t1 - t0))
    finally:
        srv.thread.stop()
