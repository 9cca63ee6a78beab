"""Two processes syncing and downloading into the same data_dir at once.

A data_dir is shared in practice: a notebook and a ``campfire download`` in a shell,
or the Dask workers of ``campfire run`` fetching spectra on demand. Whatever they do
concurrently, the SQLite catalog must stay a valid catalog and every file in
``products/`` must be the server's file, byte for byte.

Guards: transfer's per-data_dir lock (``meta/.campfire.lock``) that serialises syncs
and ``download()`` calls, the atomic catalog swap, and the per-file lock of
``_download_one`` that keeps two processes from writing the same ``.part`` (without
it both fetch the file, appending to each other's bytes, and a file verified from
one process's stream can be renamed into place while another process's bytes are in
it).
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from campfire.client import Campfire
from stresskit import copy_archive, start_server

pytestmark = pytest.mark.server

OBJECTS = ["ember_uds_p4_123456", "ember_uds_p1_11554"]


def sha(path) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


@pytest.fixture
def srv(demo_root, tmp_path):
    s = start_server(copy_archive(pathlib.Path(demo_root), tmp_path / "root"))
    yield s
    s.thread.stop()


def run_together(scripts: list[tuple[str, list[str], dict]], tmp_path: pathlib.Path, timeout: float = 180) -> None:
    """Start the scripts as processes, release them at the same instant, wait, check they succeeded."""
    go = tmp_path / f"go-{time.monotonic_ns()}"
    procs = []
    for code, args, env in scripts:
        prelude = textwrap.dedent(f"""
            import os, time
            while not os.path.exists({str(go)!r}):
                time.sleep(0.002)
        """)
        procs.append(subprocess.Popen([sys.executable, "-c", prelude + textwrap.dedent(code), *args],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env=dict(os.environ, **env)))
    time.sleep(1.5)  # let both import campfire and reach the barrier
    go.touch()
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err[-3000:]


def check_data_dir(cf: Campfire) -> dict:
    """The catalog is valid and every recorded file is the server's file; nothing half-done is left."""
    db = cf.data_dir / "meta" / "campfire.db"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert dict(conn.execute("SELECT key, value FROM archive_meta"))["owner"] == "client"
        recorded = dict(conn.execute("SELECT spectrum_id, sha256 FROM local_files"))
        paths = dict(conn.execute("SELECT spectrum_id, fits_path FROM spectra"))
        hashes = dict(conn.execute("SELECT spectrum_id, file_hash FROM spectra"))
    finally:
        conn.close()
    for sid, digest in recorded.items():
        if sid in paths:
            assert sha(cf.data_dir / paths[sid]) == digest == hashes[sid], sid
    leftovers = [p for p in cf.data_dir.rglob("*") if p.suffix in (".part", ".tmp") or p.name.endswith(".lock")
                 and p.name != ".campfire.lock"]
    assert not leftovers, leftovers
    return recorded


FETCH = """
import sys
from campfire.client import Campfire
cf = Campfire(base_url=sys.argv[1], data_dir=sys.argv[2])
ids = sys.argv[3].split(",")
for sid in (ids if sys.argv[4] == "forward" else ids[::-1]):
    spec = cf.open_spectrum(sid)
    assert spec.spectrum_id == sid
"""


def test_two_processes_fetching_the_same_spectra(srv, tmp_path):
    # guards: the per-file lock of transfer._download_one (one writer per .part; a waiter finds
    # the finished file and does not fetch it again)
    cf = Campfire(base_url=srv.url, data_dir=tmp_path / "shared")
    cf.sync()
    rows = [dict(r) for oid in OBJECTS for r in cf.query_spectra(search=oid)]
    ids = ",".join(r["spectrum_id"] for r in rows)
    srv.faults.clear()
    srv.faults.throttle("/file", bytes_per_second=1_500_000)  # each file takes a while: the fetches overlap
    run_together([(FETCH, [srv.url, str(cf.data_dir), ids, "forward"], {}),
                  (FETCH, [srv.url, str(cf.data_dir), ids, "forward"], {}),
                  (FETCH, [srv.url, str(cf.data_dir), ids, "backward"], {})], tmp_path)
    recorded = check_data_dir(cf)
    assert set(recorded) == {r["spectrum_id"] for r in rows}
    for r in rows:
        assert sha(cf.data_dir / r["fits_path"]) == r["file_hash"]
        fetched = [q for q in srv.faults.matching(f"/spectra/{r['spectrum_id']}/file") if q["method"] == "GET"]
        assert len(fetched) == 1, (r["spectrum_id"], len(fetched))


SYNC_AND_DOWNLOAD = """
import sys
from campfire.client import Campfire
cf = Campfire(base_url=sys.argv[1], data_dir=sys.argv[2])
for i in range(int(sys.argv[4])):
    if sys.argv[3] == "alternate":
        if i % 2:
            cf.login("alice", "alice-demo")
        else:
            cf.remote_catalog.logout()
    cf.sync()
    got = cf.download(observations=sys.argv[5].split(","), max_workers=2)
    assert not got["failed"], got
"""


def test_two_processes_syncing_and_downloading_into_one_data_dir(srv, tmp_path):
    # guards: the data_dir lock around sync and download(), the atomic snapshot swap (a reader
    # in the other process never sees a half-written catalog), local_files surviving syncs
    data_dir = tmp_path / "shared"
    cf = Campfire(base_url=srv.url, data_dir=data_dir)
    rounds = 3
    run_together([
        (SYNC_AND_DOWNLOAD, [srv.url, str(data_dir), "alternate", str(rounds), "ember_uds_p1"],
         {"CAMPFIRE_CONFIG_DIR": str(tmp_path / "cfg-a")}),
        (SYNC_AND_DOWNLOAD, [srv.url, str(data_dir), "anonymous", str(rounds), "cinder_egs_p2"],
         {"CAMPFIRE_CONFIG_DIR": str(tmp_path / "cfg-b")}),
    ], tmp_path, timeout=300)
    recorded = check_data_dir(cf)
    for obs in ("ember_uds_p1", "cinder_egs_p2"):
        expected = {r["spectrum_id"] for r in cf.query_spectra(observations=[obs])}
        assert expected and expected <= set(recorded), obs
    # and the catalog still works for a third client: a sync and a query
    assert cf.sync()["spectra"] == len(cf.query_spectra())
