"""Accounts and OAuth2: login, the 0600 credentials file, expiry and refresh, rotation, forgery, rate limits."""
from __future__ import annotations

import base64
import io
import json
import os
import sqlite3
import time

import dask
import jwt
import pytest
import requests

from campfire import cli
from campfire.catalog.remote import CredentialStore
from campfire.errors import AuthenticationError, ValidationError
from campfire.server.auth import add_user

pytestmark = pytest.mark.server


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _password_grant(url, user, password):
    return requests.post(f"{url}/api/v1/auth/token",
                         data={"grant_type": "password", "username": user, "password": password})


def test_login_stores_tokens_user_only(server, make_client, credentials_dir):
    cf = make_client(server.url, "alice", own_credentials=False)
    path = credentials_dir / "credentials.json"
    assert path.exists() and (os.stat(path).st_mode & 0o777) == 0o600
    entry = json.loads(path.read_text())["servers"][server.url]
    assert entry["username"] == "alice" and entry["access_token"] and entry["refresh_token"]
    assert cf.remote_catalog.whoami()["username"] == "alice"
    # no stray temporary files next to it
    assert sorted(p.name for p in credentials_dir.iterdir()) == ["credentials.json", "credentials.json.lock"]


def test_cli_login_with_password_stdin(server, monkeypatch, credentials_dir, capsys, tmp_path):
    monkeypatch.setattr("sys.stdin", io.StringIO("bob-demo\n"))
    code = cli.main(["login", "--server", server.url, "--username", "bob", "--password-stdin"])
    assert code == 0 and "logged in" in capsys.readouterr().out
    assert CredentialStore().get(server.url)["username"] == "bob"
    assert (os.stat(credentials_dir / "credentials.json").st_mode & 0o777) == 0o600
    monkeypatch.setattr("sys.stdin", io.StringIO("wrong-password\n"))
    code = cli.main(["login", "--server", server.url, "--username", "bob", "--password-stdin"])
    assert code == 2 and "login failed" in capsys.readouterr().err


def test_wrong_or_unknown_credentials(server, make_client):
    cf = make_client(server.url)
    with pytest.raises(AuthenticationError, match="invalid username or password"):
        cf.login("alice", "not-her-password")
    with pytest.raises(AuthenticationError, match="invalid username or password"):
        cf.login("nobody", "whatever-password")
    with pytest.raises(ValidationError):
        cf.login("alice", "")


def test_expired_access_token_is_refreshed_transparently(server, make_client):
    with dask.config.set({"campfire.server.access-token-ttl": 1}):
        cf = make_client(server.url, "alice", own_credentials=False)
    store = CredentialStore()
    first = store.get(server.url)
    time.sleep(1.5)
    # the server rejects the old token now
    r = requests.get(f"{server.url}/api/v1/counts", headers={"Authorization": f"Bearer {first['access_token']}"})
    assert r.status_code == 401 and "expired" in r.json()["message"]
    # pretend the client's clock thinks it is still valid: the 401 → refresh → retry path
    with store.locked():
        store.put(server.url, dict(first, expires_at=time.time() + 3600))
    server.faults.clear()
    assert cf.get_object("ember_uds_p4_123456", remote=True) is not None
    second = store.get(server.url)
    assert second["access_token"] != first["access_token"] and second["refresh_token"] != first["refresh_token"]
    grants = [r for r in server.faults.matching("/auth/token") if r["method"] == "POST"]
    assert len(grants) == 1
    # the proactive path: an expiry in the past is refreshed before the request is sent
    with store.locked():
        store.put(server.url, dict(second, expires_at=time.time() - 5))
    server.faults.clear()
    assert cf.remote_catalog.whoami()["username"] == "alice"
    assert [r["path"] for r in server.faults.requests][:2] == ["/api/v1/auth/token", "/api/v1/me"]


def test_without_auto_refresh_an_expired_token_says_run_campfire_login(server, make_client, tmp_path):
    with dask.config.set({"campfire.server.access-token-ttl": 1}):
        cf = make_client(server.url, "alice", auto_refresh=False, data_dir=tmp_path / "c")
    time.sleep(1.5)
    with pytest.raises(AuthenticationError, match="Run: campfire login"):
        cf.query_objects(remote=True, limit=1)


def test_refresh_impossible_says_run_campfire_login(server, make_client):
    with dask.config.set({"campfire.server.access-token-ttl": 1}):
        cf = make_client(server.url, "bob", own_credentials=False)
    store = CredentialStore()
    entry = store.get(server.url)
    requests.post(f"{server.url}/api/v1/auth/revoke", data={"token": entry["refresh_token"]})
    time.sleep(1.5)
    with pytest.raises(AuthenticationError, match="Run: campfire login"):
        cf.get_tags(remote=True)


def test_reused_refresh_token_revokes_the_family(server):
    pair = _password_grant(server.url, "bob", "bob-demo").json()
    url = f"{server.url}/api/v1/auth/token"
    second = requests.post(url, data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]})
    assert second.status_code == 200
    # the first token again: a replay (stolen token) → rejected, and the rotated one dies too
    replay = requests.post(url, data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]})
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert "revoked" in replay.json()["error_description"]
    third = requests.post(url, data={"grant_type": "refresh_token", "refresh_token": second.json()["refresh_token"]})
    assert third.status_code == 400
    # unknown grant types and junk
    assert requests.post(url, data={"grant_type": "client_credentials"}).json()["error"] == "unsupported_grant_type"
    assert requests.post(url, data={"grant_type": "refresh_token", "refresh_token": "x" * 40}).status_code == 400
    assert requests.post(url, data=b"\xff\xfe", headers={"Content-Type": "application/x-www-form-urlencoded"}
                         ).status_code == 400


def test_forged_tokens_are_rejected(server, get_token):
    bob = get_token(server.url, "bob")
    now = int(time.time())
    claims = {"sub": "alice", "iat": now, "exp": now + 600, "iss": "campfire", "typ": "access"}
    forged = [
        jwt.encode(claims, "not-the-server-secret-" * 3, algorithm="HS256"),                     # wrong key
        f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",                                # alg=none
        ".".join([bob.split(".")[0], _b64(dict(jwt.decode(bob, options={"verify_signature": False}), sub="alice")),
                  bob.split(".")[2]]),                                                            # edited payload
    ]
    for tok in forged:
        r = requests.get(f"{server.url}/api/v1/me", headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 401, tok
    assert requests.get(f"{server.url}/api/v1/me", headers={"Authorization": f"Bearer {bob}"}).json()["username"] == "bob"


def test_login_rate_limit(fresh_server):
    add_user(fresh_server.root, "carol", "carol-password-1")
    with dask.config.set({"campfire.server.login-rate": 3}):
        for _ in range(3):
            assert _password_grant(fresh_server.url, "carol", "wrong-guess").status_code == 400
        r = _password_grant(fresh_server.url, "carol", "carol-password-1")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        assert "too many failed logins" in r.json()["message"]
        # another account from the same address is not locked out by carol's typos
        assert _password_grant(fresh_server.url, "bob", "bob-demo").status_code == 200
        from campfire.catalog.remote import RemoteCatalog

        with pytest.raises(AuthenticationError, match="too many failed logins"):
            RemoteCatalog(fresh_server.url).login("carol", "carol-password-1")


def test_users_add_cli_grants_programs(fresh_server, monkeypatch, capsys, make_client, ids):
    monkeypatch.setattr("sys.stdin", io.StringIO("dave-password\n"))
    slug = ids["prop_slugs"][0]
    assert cli.main(["users", "add", "dave", "--root", str(fresh_server.root), "--programs", slug,
                     "--password-stdin"]) == 0
    cf = make_client(fresh_server.url)
    cf.login("dave", "dave-password")
    assert cf.remote_catalog.whoami()["programs"] == ids["prop_ids"]
    monkeypatch.setattr("sys.stdin", io.StringIO("erin-password\n"))
    assert cli.main(["users", "add", "erin", "--root", str(fresh_server.root), "--programs", "NOPE",
                     "--password-stdin"]) == 2
    assert "unknown program" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.main(["users", "add", "erin", "--root", str(fresh_server.root), "--password-stdin"]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("long-enough-password\n"))
    assert cli.main(["users", "add", "Bad Name", "--root", str(fresh_server.root), "--password-stdin"]) == 2


def test_new_password_ends_old_sessions(fresh_server):
    add_user(fresh_server.root, "frank", "frank-password-1")
    pair = _password_grant(fresh_server.url, "frank", "frank-password-1").json()
    add_user(fresh_server.root, "frank", "frank-password-2")
    r = requests.post(f"{fresh_server.url}/api/v1/auth/token",
                      data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]})
    assert r.status_code == 400
    assert _password_grant(fresh_server.url, "frank", "frank-password-1").status_code == 400
    assert _password_grant(fresh_server.url, "frank", "frank-password-2").status_code == 200


def test_logout_revokes_and_forgets(server, make_client):
    cf = make_client(server.url, "bob", own_credentials=False)
    refresh = CredentialStore().get(server.url)["refresh_token"]
    cf.remote_catalog.logout()
    assert CredentialStore().get(server.url) is None
    r = requests.post(f"{server.url}/api/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh})
    assert r.status_code == 400
    # anonymous again: public data only, no error
    assert cf.get_programs(remote=True)


def test_refresh_tokens_are_stored_hashed(server):
    pair = _password_grant(server.url, "bob", "bob-demo").json()
    conn = sqlite3.connect(server.root / "meta" / "auth.db")
    try:
        stored = [r[0] for r in conn.execute("SELECT token_hash FROM refresh_tokens")]
    finally:
        conn.close()
    assert pair["refresh_token"] not in stored and len(stored[0]) == 64


def test_parallel_requests_share_one_refresh(fresh_server, make_client):
    """Eight download threads hitting an expired token at once: rotation must not look like a replay."""
    from campfire.catalog.filters import build_query
    from campfire.graphs.download import download_files

    cf = make_client(fresh_server.url)
    cf.sync()  # first: a sync slower than the token's second would refresh it into a 15-minute one
    with dask.config.set({"campfire.server.access-token-ttl": 1}):
        cf.login("alice", "alice-demo")
    store = cf.remote_catalog.credentials
    time.sleep(1.5)
    # the client believes its token is fresh: every thread gets a 401 and asks for a refresh
    with store.locked():
        store.put(fresh_server.url, dict(store.get(fresh_server.url), expires_at=time.time() + 3600))
    fresh_server.faults.clear()
    got = download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", observations=["ember_uds_p4"]), max_workers=8)
    assert got["downloaded"] > 8 and not got["failed"]
    grants = [r for r in fresh_server.faults.requests if r["path"] == "/api/v1/auth/token"]
    assert 1 <= len(grants) < 8
    assert cf.remote_catalog.whoami()["username"] == "alice"  # the session survived
