"""Portal sessions (campfire.server.sessions): who stays logged in, and when a session ends."""
from __future__ import annotations

import dask
import pytest

from campfire.server import sessions as sessions_module
from campfire.server.auth import AuthStore
from campfire.server.sessions import SessionStore, tokens_match


@pytest.fixture
def stores(tmp_path):
    with dask.config.set({"campfire.server.bcrypt-rounds": 4}):
        auth = AuthStore(tmp_path)
        auth.add_user("alice", "alice-password")
        store = SessionStore(auth.path)
        yield auth, store
        store.close()
        auth.close()


class Clock:
    def __init__(self, monkeypatch):
        self.now = 1_000_000.0
        monkeypatch.setattr(sessions_module.time, "time", lambda: self.now)


def test_a_session_is_found_by_its_cookie_only(stores):
    auth, store = stores
    token, session = store.create("alice")
    found = store.get(token)
    assert found.username == "alice" and found.csrf_token == session.csrf_token and len(session.csrf_token) >= 32
    assert store.get(token + "x") is None and store.get(None) is None and store.get("") is None
    # only a digest is stored: the database does not hold the cookie value
    rows = store._conn.execute("SELECT session_hash, csrf_token FROM sessions").fetchall()
    assert rows and all(token not in r[0] for r in rows)
    other, _ = store.create("alice")
    assert store.get(other).csrf_token != session.csrf_token  # each session its own CSRF token


def test_logout_idle_and_lifetime_end_a_session(stores, monkeypatch):
    auth, store = stores
    clock = Clock(monkeypatch)
    with dask.config.set({"campfire.server.session-idle": 600, "campfire.server.session-ttl": 3600}):
        token, _ = store.create("alice")
        store.end(token)
        assert store.get(token) is None
        token, _ = store.create("alice")
        clock.now += 500
        assert store.get(token) is not None  # used: idle time starts again
        clock.now += 500
        assert store.get(token) is not None
        clock.now += 601
        assert store.get(token) is None  # idle too long
        token, _ = store.create("alice")
        alive = []
        for _ in range(8):
            clock.now += 500
            alive.append(store.get(token) is not None)
        assert alive == [True] * 7 + [False]  # in use every 500 s, yet over after its 3600 s lifetime


def test_a_new_password_or_a_disabled_account_ends_sessions(stores):
    auth, store = stores
    token, _ = store.create("alice")
    auth.add_user("alice", "a-new-password")  # reset
    assert store.get(token) is None
    token, _ = store.create("alice")
    with auth._conn:
        auth._conn.execute("UPDATE users SET disabled = 1 WHERE username = 'alice'")
    assert store.get(token) is None


def test_tokens_match_is_strict():
    assert tokens_match("abc", "abc")
    assert not tokens_match("abc", "abd") and not tokens_match("abc", None) and not tokens_match("", "")
