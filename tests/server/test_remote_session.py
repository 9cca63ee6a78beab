"""The HTTP session of the remote client: the proxy and CA environment is read once per session."""
from __future__ import annotations

import threading

import pytest
import requests

from campfire.catalog.remote import RemoteCatalog


def test_session_takes_proxies_and_ca_bundle_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))
    s = RemoteCatalog("https://archive.example", data_dir=tmp_path).session
    assert s.proxies.get("https") == "http://proxy.example:3128"
    assert s.verify == str(tmp_path / "ca.pem")
    # requests no longer re-reads os.environ on every request (it cost ~1 ms of CPU per file)
    assert s.trust_env is False


def test_no_proxy_host_gets_no_proxy(monkeypatch, tmp_path):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    s = RemoteCatalog("http://127.0.0.1:8000", data_dir=tmp_path).session
    assert "http" not in s.proxies
    assert s.verify is True


def test_one_session_per_thread(tmp_path):
    rc = RemoteCatalog("http://127.0.0.1:8000", data_dir=tmp_path)
    other = []
    t = threading.Thread(target=lambda: other.append(rc.session))
    t.start()
    t.join()
    assert rc.session is rc.session and other[0] is not rc.session
    assert isinstance(other[0], requests.Session)


@pytest.fixture(autouse=True)
def _no_ambient_proxies(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
                 "all_proxy", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
