"""Limits of issue 15: request bodies, absurd numbers and JSON, header time, proxy headers, logged-out tokens.

* integers of thousands of digits in any integer parameter and JSON bodies of thousands of
  nested brackets are 400s with a message (Python refuses both: they were 500s), and the
  keep-alive connection they came on keeps serving;
* a body over the documented limit is a 413 before the server reads it (declared by
  Content-Length, or streamed); an anonymous request to a route that needs an account is
  a 401 before its body is read;
* a connection that never finishes its request headers is closed after
  ``server.header-timeout`` seconds;
* ``X-Forwarded-For`` counts only when the operator names the proxy;
* the access token of a login that was logged out is refused at once.
"""
from __future__ import annotations

import http.client
import json
import socket
import time

import dask
import pytest
import requests

from campfire.catalog.remote import CredentialStore
from campfire.server.auth import add_user
from campfire.server.params import MAX_FORM_BYTES

pytestmark = pytest.mark.server

API = "/api/v1"
HUGE = "7" * 5000  # Python's int() refuses strings of more than 4,300 digits


def _address(server) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def _conn(server) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(*_address(server), timeout=30)


def _exchange(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None,
              headers: dict | None = None) -> tuple[int, dict]:
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    return r.status, json.loads(data) if data else {}


@pytest.mark.parametrize("path,param", [
    ("/objects", "programs"), ("/objects", "redshift_quality"), ("/objects", "dq_flags"), ("/objects", "limit"),
    ("/objects", "offset"), ("/spectra", "programs"), ("/spectra", "redshift_quality"), ("/spectra", "dq_flags"),
    ("/spectra", "limit"),
])
def test_integers_of_thousands_of_digits_are_a_400_and_the_connection_survives(server, path, param):
    conn = _conn(server)
    try:
        for _ in range(3):
            status, body = _exchange(conn, "GET", f"{API}{path}?{param}={HUGE}")
            assert status == 400 and body["error"] == "invalid_request", body
            assert body["message"].startswith(param) and "digits" in body["message"] and len(body["message"]) < 400
            # the same keep-alive connection answers the next request
            status, body = _exchange(conn, "GET", f"{API}/counts")
            assert status == 200 and body["objects"] > 0
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/auth/token", "/auth/revoke"])
def test_deeply_nested_json_is_a_400_every_time(server, path):
    conn = _conn(server)
    try:
        for body in (b"[" * 5000, b'{"a":' * 3000, b"[" * 5000 + b"]" * 5000):
            status, answer = _exchange(conn, "POST", API + path, body, {"Content-Type": "application/json"})
            assert status == 400 and "nested too deeply" in answer["message"], answer
            status, answer = _exchange(conn, "GET", f"{API}/health")
            assert status == 200 and answer["status"] == "ok"
    finally:
        conn.close()


def test_deeply_nested_json_in_a_tag_body_is_a_400(server, get_token):
    token = get_token(server.url, "alice")
    r = requests.post(f"{server.url}{API}/tags/x/objects", data=b"[" * 5000,
                      headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert r.status_code == 400 and "nested too deeply" in r.json()["message"]


def test_declared_oversized_body_is_a_413_before_it_is_read(server, get_token):
    token = get_token(server.url, "alice")
    limit = dask.config.get("campfire.server.max-body-bytes")
    for path, size, headers in (
            (f"{API}/tags/x/objects", limit + 1, {"Authorization": f"Bearer {token}"}),
            (f"{API}/tags", 52 * 2**20, {"Authorization": f"Bearer {token}"}),
            (f"{API}/tags/x/objects", 52 * 2**20, {}),  # anonymous
            (f"{API}/auth/token", MAX_FORM_BYTES + 1, {})):
        # headers only: a server that waited for the body would never answer
        with socket.create_connection(_address(server), timeout=20) as s:
            head = [f"POST {path} HTTP/1.1", "Host: test", "Content-Type: application/json",
                    f"Content-Length: {size}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
            s.sendall("\r\n".join(head).encode())
            answer = _read_response(s)
        assert answer.startswith(b"HTTP/1.1 413"), (path, answer[:200])
        assert b'"payload_too_large"' in answer and b"at most" in answer


def test_streamed_oversized_body_is_a_413(server, get_token):
    token = get_token(server.url, "alice")
    sent = []

    def chunks():  # no Content-Length: chunked transfer encoding
        for _ in range(200):
            sent.append(1)
            yield b" " * 65536

    r = requests.post(f"{server.url}{API}/tags/x/objects", data=chunks(),
                      headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"


def test_anonymous_body_route_answers_401_without_reading_the_body(server):
    # a declared body within the limit that never arrives: only a server that authenticates
    # first answers (one that parses first waits for the body until the client gives up)
    with socket.create_connection(_address(server), timeout=20) as s:
        head = [f"POST {API}/tags/x/objects HTTP/1.1", "Host: test", "Content-Type: application/json",
                "Content-Length: 500000", "", ""]
        s.sendall("\r\n".join(head).encode() + b'{"object_ids": [')
        answer = _read_response(s)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


def test_body_limit_is_documented(server):
    doc = requests.get(f"{server.url}{API}/openapi.json").json()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if "requestBody" in op:
                assert "413" in op["responses"], (method, path)


def _read_response(s: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
            if length and len(body) >= length[0]:
                break
    return data


def _closed_by_server(s: socket.socket) -> bool:
    try:
        return s.recv(1024) == b""
    except ConnectionResetError:
        return True


def test_connection_that_never_finishes_its_headers_is_closed(server):
    with dask.config.set({"campfire.server.header-timeout": 1.0}):
        host, port = server.url.removeprefix("http://").split(":")
        silent = socket.create_connection((host, int(port)), timeout=30)
        slow = socket.create_connection((host, int(port)), timeout=30)
        try:
            t0 = time.monotonic()
            slow.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: test\r\n")  # ... and never the blank line
            while time.monotonic() - t0 < 2.5:  # a header line now and then does not keep it open
                time.sleep(0.25)
                try:
                    slow.sendall(b"X-Drip: 1\r\n")
                except OSError:  # closed by the server
                    break
            assert _closed_by_server(slow) and _closed_by_server(silent)
            assert time.monotonic() - t0 < 20
        finally:
            silent.close()
            slow.close()
        # a kept-alive connection that starts a request and stalls is closed too
        conn = _conn(server)
        try:
            assert _exchange(conn, "GET", f"{API}/health")[0] == 200
            conn.sock.sendall(b"GET /api/v1/health HTTP/1.1\r\n")
            conn.sock.settimeout(30)
            assert _closed_by_server(conn.sock)
        finally:
            conn.close()
    # complete requests are unaffected
    assert requests.get(f"{server.url}{API}/health").status_code == 200


def test_logged_out_access_token_is_refused_at_once(fresh_server, make_client):
    cf = make_client(fresh_server.url, "alice", own_credentials=False)
    access = CredentialStore().get(fresh_server.url)["access_token"]
    me = requests.get(f"{fresh_server.url}{API}/me", headers={"Authorization": f"Bearer {access}"})
    assert me.status_code == 200 and me.json()["username"] == "alice"
    other = make_client(fresh_server.url, "alice")  # another login of the same user
    cf.remote_catalog.logout()
    r = requests.get(f"{fresh_server.url}{API}/me", headers={"Authorization": f"Bearer {access}"})
    assert r.status_code == 401 and "revoked" in r.json()["message"]
    # only that login ended
    assert other.remote_catalog.whoami()["username"] == "alice"


def test_new_password_refuses_the_old_access_tokens(fresh_server):
    add_user(fresh_server.root, "grace", "grace-password-1")
    pair = requests.post(f"{fresh_server.url}{API}/auth/token", data={
        "grant_type": "password", "username": "grace", "password": "grace-password-1"}).json()
    auth = {"Authorization": f"Bearer {pair['access_token']}"}
    assert requests.get(f"{fresh_server.url}{API}/me", headers=auth).status_code == 200
    add_user(fresh_server.root, "grace", "grace-password-2")  # e.g. `campfire users add` on the server
    assert requests.get(f"{fresh_server.url}{API}/me", headers=auth).status_code == 401
