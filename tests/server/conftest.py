"""Fixtures that start the REAL archive server (uvicorn on a free loopback port, in a thread).

Each server serves its own copy of the session's demo archive (``demo_root``), so tests
may reprocess spectra, add users or edit tags. FITS files and imaging are hard-linked
into the copy (cheap); a test that changes a file writes a new one and renames it, so
the session's archive is never touched. A :class:`~campfire.server.faults.FaultInjector`
is attached to every test server.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import sqlite3
from dataclasses import dataclass

import dask
import pytest

DEMO_PASSWORDS = {"alice": "alice-demo", "bob": "bob-demo"}


@pytest.fixture(scope="session", autouse=True)
def _fast_server_config():
    # cheap bcrypt and short backoffs keep the suite fast; everything else is the default
    with dask.config.set({"campfire.server.bcrypt-rounds": 4, "campfire.api.backoff": 0.01}):
        yield


@pytest.fixture(autouse=True)
def credentials_dir(tmp_path, monkeypatch):
    """Every test gets its own credentials file (never the user's)."""
    path = tmp_path / "campfire-config"
    monkeypatch.setenv("CAMPFIRE_CONFIG_DIR", str(path))
    monkeypatch.delenv("CAMPFIRE_API_URL", raising=False)
    monkeypatch.delenv("CAMPFIRE_ROOT", raising=False)
    return path


def copy_archive(src: pathlib.Path, dest: pathlib.Path) -> pathlib.Path:
    """A writable copy of an archive root: meta copied, everything else hard-linked."""
    dest.mkdir(parents=True)
    for item in src.iterdir():
        if item.name == "meta":
            (dest / "meta").mkdir()
            for f in item.iterdir():
                if f.name.startswith("campfire.db") and not f.name.endswith((".lock",)):
                    shutil.copy2(f, dest / "meta" / f.name)
        elif item.is_dir():
            shutil.copytree(item, dest / item.name, copy_function=os.link)
        else:
            shutil.copy2(item, dest / item.name)
    return dest


@pytest.fixture(scope="session")
def ids(demo_root):
    """IDs that exercise visibility: proprietary-only objects, mixed objects, their spectra."""
    conn = sqlite3.connect(f"file:{pathlib.Path(demo_root) / 'meta' / 'campfire.db'}?mode=ro", uri=True)
    try:
        prop = {r[0] for r in conn.execute("SELECT program_id FROM programs WHERE is_public = 0")}
        marks = ",".join("?" * len(prop))
        prop_only = [r[0] for r in conn.execute(
            f"SELECT object_id FROM spectra GROUP BY object_id HAVING sum(program_id NOT IN ({marks})) = 0 "
            "ORDER BY object_id", sorted(prop))]
        mixed = [r[0] for r in conn.execute(
            f"SELECT object_id FROM spectra GROUP BY object_id HAVING sum(program_id IN ({marks})) > 0 "
            f"AND sum(program_id NOT IN ({marks})) > 0 ORDER BY object_id", sorted(prop) * 2)]
        prop_spectra = [r[0] for r in conn.execute(
            f"SELECT spectrum_id FROM spectra WHERE program_id IN ({marks}) ORDER BY spectrum_id", sorted(prop))]
        public_spectrum = conn.execute(
            f"SELECT spectrum_id FROM spectra WHERE program_id NOT IN ({marks}) ORDER BY spectrum_id LIMIT 1",
            sorted(prop)).fetchone()[0]
        prop_obs = [r[0] for r in conn.execute(
            f"SELECT observation FROM observations WHERE program_id IN ({marks})", sorted(prop))]
        prop_slugs = [r[0] for r in conn.execute(
            f"SELECT slug FROM programs WHERE program_id IN ({marks})", sorted(prop))]
    finally:
        conn.close()
    assert prop_only and mixed and prop_spectra, "the demo must have proprietary-only and mixed objects"
    return {"prop_ids": sorted(prop), "prop_only": prop_only, "mixed": mixed, "prop_spectra": prop_spectra,
            "public_spectrum": public_spectrum, "prop_obs": prop_obs, "prop_slugs": prop_slugs,
            "example_object": "ember_uds_p4_123456", "example_spectrum": "ember_uds_p4_prism_clear_123456"}


@pytest.fixture
def archive_copy(demo_root, tmp_path):
    """A private writable copy of the demo archive (no server)."""
    return copy_archive(pathlib.Path(demo_root), tmp_path / "archive-copy")


@dataclass
class Server:
    url: str
    root: pathlib.Path
    faults: object
    thread: object

    @property
    def db(self) -> pathlib.Path:
        return self.root / "meta" / "campfire.db"

    def sql(self, statement: str, params=()) -> list:
        conn = sqlite3.connect(self.db, timeout=30)
        try:
            with conn:
                return conn.execute(statement, params).fetchall()
        finally:
            conn.close()


def start_server(root: pathlib.Path) -> Server:
    from campfire.server.faults import FaultInjector
    from campfire.server.testing import ServerThread

    faults = FaultInjector()
    thread = ServerThread(root, faults=faults).start()
    return Server(thread.url, root, faults, thread)


@pytest.fixture(scope="module")
def server(demo_root, tmp_path_factory):
    """A server over a private copy of the demo archive, shared by one test module."""
    root = copy_archive(pathlib.Path(demo_root), tmp_path_factory.mktemp("archive") / "root")
    srv = start_server(root)
    yield srv
    srv.thread.stop()


@pytest.fixture
def fresh_server(demo_root, tmp_path):
    """A server over a copy of the demo archive that only this test uses (may mutate it)."""
    root = copy_archive(pathlib.Path(demo_root), tmp_path / "root")
    srv = start_server(root)
    yield srv
    srv.thread.stop()


@pytest.fixture(autouse=True)
def _clear_faults(request):
    """No fault rule leaks from one test into the next on a shared server."""
    yield
    if "server" in request.fixturenames:
        request.getfixturevalue("server").faults.clear()


@pytest.fixture
def make_client(tmp_path):
    """Factory: a Campfire client of a server URL, logged in as ``user`` when given."""
    from campfire.client import Campfire

    counter = iter(range(1000))

    def make(url: str, user: str | None = None, data_dir=None, own_credentials: bool = True, **kwargs):
        from campfire.catalog.remote import CredentialStore

        n = next(counter)
        data_dir = data_dir if data_dir is not None else tmp_path / f"client{n}"
        cf = Campfire(base_url=url, data_dir=data_dir, **kwargs)
        if own_credentials:
            # tokens are stored per server URL: two users of one server in one test need two files
            cf.remote_catalog.credentials = CredentialStore(tmp_path / f"credentials{n}" / "credentials.json")
        if user is not None:
            cf.login(user, DEMO_PASSWORDS[user])
        return cf

    return make


@pytest.fixture
def get_token():
    """Factory: an access token of a demo user, straight from the token endpoint."""
    import requests

    def get(url: str, user: str) -> str:
        r = requests.post(f"{url}/api/v1/auth/token",
                          data={"grant_type": "password", "username": user, "password": DEMO_PASSWORDS[user]})
        r.raise_for_status()
        return r.json()["access_token"]

    return get
