"""Faults: a server killed mid-download, intermittent 5xx and timeouts, interrupted syncs, full or
read-only disks, a Dask worker killed during ``campfire run``.

Each test names the protection it guards; removing that protection makes it fail.
tests/server/test_sync_download.py already covers a *client* killed mid-file, one cut
connection, "500 twice then 200", and three cut points of a sync; these go further:
the *server* process dies (SIGKILL) and comes back, faults hit every request of a
whole session, syncs are cut at random byte offsets and the syncing process is killed
at random moments, and the disk fails under downloads and syncs.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import pathlib
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import dask
import numpy as np
import pytest
import requests

from campfire.catalog.filters import build_query
from campfire.client import Campfire
from campfire.errors import APIError, DownloadError
from campfire.graphs.download import download_files
from campfire.transfer import SyncInterrupted
from shared_fixtures import missing_tool
from stresskit import API, DEMO_PASSWORDS, ServerProcess, copy_archive, start_server

pytestmark = pytest.mark.server

OBJECT = "ember_uds_p4_123456"  # three spectra (G140M, G395M, PRISM) of the reference's example object


def sha(path) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def local_files(cf) -> dict:
    conn = sqlite3.connect(cf.data_dir / "meta" / "campfire.db")
    try:
        return dict(conn.execute("SELECT spectrum_id, sha256 FROM local_files").fetchall())
    finally:
        conn.close()


def catalog_state(db: pathlib.Path) -> dict:
    """Open the catalog as a reader would: integrity, schema, row counts."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("spectra", "objects", "object_aggregates", "observations", "local_files")}
    finally:
        conn.close()


def n_runs(request, ci: int, slow: int) -> int:
    return slow if request.config.getoption("--runslow") else ci


# ---------------------------------------------------------------- server killed mid-download
def _start_download(cf, search: str, box: dict) -> threading.Thread:
    def run():
        try:
            box["result"] = download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", search=search), max_workers=3)
        except BaseException as err:  # noqa: BLE001 - handed to the test thread
            box["error"] = err
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _wait_for_parts(rows, data_dir: pathlib.Path, fraction: float, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    parts = [data_dir / (r["fits_path"] + ".part") for r in rows]
    while time.monotonic() < deadline:
        sizes = [p.stat().st_size if p.exists() else 0 for p in parts]
        if all(s > fraction * r["file_size"] for s, r in zip(sizes, rows)):
            return
        time.sleep(0.02)
    raise AssertionError(f"downloads did not start: {sizes}")


def test_server_killed_mid_download_then_restarted_resumes(server_process_factory, tmp_path):
    # guards: transfer._download_one — bytes stream to <file>.part (never the final name), a
    # failed download keeps the .part and is not recorded in local_files, the next attempt
    # resumes it with Range + If-Range, and the sha256 is verified before the rename
    srv = server_process_factory(throttle=120_000)  # ~2-4 s per file: time to kill the server mid-body
    cf = Campfire(base_url=srv.url, data_dir=tmp_path / "client")
    cf.sync()
    rows = [dict(r) for r in cf.query_spectra(search=OBJECT)]
    assert len(rows) == 3
    box: dict = {}
    with dask.config.set({"campfire.download.retries": 1, "campfire.api.retries": 1}):
        thread = _start_download(cf, OBJECT, box)
        _wait_for_parts(rows, cf.data_dir, 0.2)
        srv.kill()
        thread.join(60)
    assert isinstance(box.get("error"), DownloadError), box
    partial = {}
    for r in rows:
        final = cf.data_dir / r["fits_path"]
        part = final.with_name(final.name + ".part")
        assert not final.exists(), "a partial download was renamed into place"
        assert 0 < part.stat().st_size < r["file_size"]
        partial[r["spectrum_id"]] = part.stat().st_size
    assert not set(partial) & set(local_files(cf)), "a partial file counts as downloaded"
    assert all(s["local_path"] == "" for s in cf.query_spectra(search=OBJECT))

    # the server comes back at the same address (no throttle): the next download resumes each file
    back = ServerProcess(srv.root, srv.port).start()
    try:
        got = download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", search=OBJECT), max_workers=3)
        assert got["downloaded"] == 3 and not got["failed"]
        ranges = dict(back.file_requests())
        for r in rows:
            assert ranges[f"{API}/spectra/{r['spectrum_id']}/file"] == f"bytes={partial[r['spectrum_id']]}-"
            final = cf.data_dir / r["fits_path"]
            assert sha(final) == r["file_hash"] == local_files(cf)[r["spectrum_id"]]
            assert not final.with_name(final.name + ".part").exists()
        assert all(s["local_path"] for s in cf.query_spectra(search=OBJECT))
    finally:
        back.stop()


def test_server_restarted_within_the_retry_window_finishes_in_one_call(server_process_factory, tmp_path):
    # guards: the retry loops of RemoteCatalog._send (connection refused while the server is down)
    # and of _download_one (resume after a dropped body) — bounded, yet long enough for a restart
    srv = server_process_factory(throttle=150_000)
    cf = Campfire(base_url=srv.url, data_dir=tmp_path / "client")
    cf.sync()
    rows = [dict(r) for r in cf.query_spectra(search=OBJECT)]
    box: dict = {}
    with dask.config.set({"campfire.download.retries": 3, "campfire.api.retries": 6, "campfire.api.backoff": 0.25}):
        thread = _start_download(cf, OBJECT, box)
        _wait_for_parts(rows, cf.data_dir, 0.2)
        srv.kill()
        time.sleep(0.5)
        back = ServerProcess(srv.root, srv.port).start()
        try:
            thread.join(120)
            assert not thread.is_alive()
        finally:
            back.stop()
    assert "error" not in box, box.get("error")
    assert box["result"]["downloaded"] == 3
    for r in rows:
        assert sha(cf.data_dir / r["fits_path"]) == r["file_hash"]


# --------------------------------------------------------------- intermittent 5xx and timeouts
@pytest.fixture
def flaky_server(demo_root, tmp_path):
    srv = start_server(copy_archive(pathlib.Path(demo_root), tmp_path / "root"))
    yield srv
    srv.thread.stop()


def _session(cf) -> dict:
    """A client session touching every kind of request: sync, queries, pages, details, arrays, files."""
    out = {"sync": cf.sync()}
    out["objects"] = list(cf.query_objects(remote=True, fields=["uds"], sort="redshift", limit=50)["object_id"])
    out["paged"] = [r["spectrum_id"] for r in cf.remote_catalog.iter_rows(build_query("spectra", gratings=["PRISM"]),
                                                                            page_size=40)]
    out["object"] = cf.get_object(OBJECT, remote=True).n_spectra
    sid = f"ember_uds_p4_prism_clear_{OBJECT.rsplit('_', 1)[1]}"
    out["data"] = float(np.nansum(cf.remote_catalog.spectrum_data(sid)["fnu"]))
    out["download"] = cf.download(observations=["ember_uds_p1"], gratings=["G140M"], max_workers=3)["downloaded"]
    return out


def test_intermittent_500s_and_timeouts_are_absorbed_by_bounded_retries(flaky_server, tmp_path):
    # guards: RemoteCatalog._send retrying 5xx and timeouts on idempotent requests
    # (campfire.api.retries, bounded timeouts) and the download path going through it
    srv = flaky_server
    clean = _session(Campfire(base_url=srv.url, data_dir=tmp_path / "clean"))
    srv.faults.clear()
    # every distinct GET answers 500, then 502, and only then; each file request a 503 and then
    # a stall longer than the client's timeout
    srv.faults.flaky("/file", (503, 3.0), first=2)
    srv.faults.flaky(f"{API}/", (500, 502), first=2)
    t0 = time.monotonic()
    with dask.config.set({"campfire.api.retries": 2, "campfire.api.timeout": 1.5,
                          "campfire.download.timeout": 1.5}):
        cf = Campfire(base_url=srv.url, data_dir=tmp_path / "flaky")
        got = _session(cf)
    elapsed = time.monotonic() - t0
    assert got == clean
    for row in cf.query_spectra(observations=["ember_uds_p1"], gratings=["G140M"]):
        assert sha(row["local_path"]) == row["file_hash"]
    # bounded: every distinct request was sent exactly three times (two faults + the answer)
    attempts: dict = {}
    for r in srv.faults.requests:
        if r["method"] == "GET":
            key = (r["path"], r["query"]) if not r["path"].endswith("/file") else r["path"]
            attempts[key] = attempts.get(key, 0) + 1
    assert attempts and set(attempts.values()) == {3}, sorted(set(attempts.values()))
    assert elapsed < 60
    # and with fewer retries than faults the same session fails cleanly (APIError, not a hang)
    srv.faults.clear()
    srv.faults.flaky(f"{API}/", (500, 502), first=2)
    with dask.config.set({"campfire.api.retries": 1}):
        with pytest.raises(APIError, match="502"):
            Campfire(base_url=srv.url, data_dir=tmp_path / "too-few").get_fields(remote=True)


@pytest.mark.slow
def test_random_faults_soak(flaky_server, tmp_path):
    """--runslow: 20% of all GETs fail at random (5xx or a stall) over repeated sessions."""
    srv = flaky_server
    clean = _session(Campfire(base_url=srv.url, data_dir=tmp_path / "clean"))
    srv.faults.clear()
    srv.faults.flaky(f"{API}/", (500, 502, 503, 2.5), rate=0.2, seed=8)
    with dask.config.set({"campfire.api.retries": 8, "campfire.api.timeout": 1.2, "campfire.download.timeout": 1.2,
                          "campfire.download.retries": 8}):
        for i in range(5):
            got = _session(Campfire(base_url=srv.url, data_dir=tmp_path / f"flaky{i}"))
            assert got == clean


# ----------------------------------------------------------------- sync interrupted at random
def _db(cf) -> pathlib.Path:
    return cf.data_dir / "meta" / "campfire.db"


def test_sync_cut_at_random_offsets_keeps_the_previous_catalog(request, flaky_server, tmp_path):
    # guards: transfer._apply_snapshot (temporary file, completeness checks, atomic rename) and
    # _apply_delta (one transaction, "end" line required) — a cut anywhere leaves the old catalog
    srv = flaky_server
    rng = random.Random(1234)
    cf = Campfire(base_url=srv.url, data_dir=tmp_path / "client")
    cf.sync()
    before, digest = catalog_state(_db(cf)), sha(_db(cf))
    cf.login("alice", DEMO_PASSWORDS["alice"])  # another visibility: the next sync is a full snapshot
    token = cf.remote_catalog.http.access_token()
    size = len(requests.get(f"{srv.url}{API}/export", headers={"Authorization": f"Bearer {token}"}).content)
    cuts = sorted(rng.randrange(1, size) for _ in range(n_runs(request, 8, 60)))
    for cut in cuts:
        srv.faults.cut("/export", after_bytes=cut)
        with pytest.raises(SyncInterrupted):
            cf.sync()
        srv.faults.clear()
        assert sha(_db(cf)) == digest and catalog_state(_db(cf)) == before, cut
        assert not list(_db(cf).parent.glob("*.tmp"))
    full = cf.sync()
    assert full["spectra"] > before["spectra"]
    # deltas: touch 15% of the spectra (a delta, not a snapshot), then cut the NDJSON stream
    after_full, digest = catalog_state(_db(cf)), sha(_db(cf))
    srv.sql("UPDATE spectra SET updated_at = '2999-01-01T00:00:00Z', redshift_auto = redshift_auto + 0.001 "
            "WHERE rowid % 7 = 0")
    conn = sqlite3.connect(_db(cf))
    cursor = conn.execute("SELECT value FROM archive_meta WHERE key = 'sync_cursor'").fetchone()[0]
    conn.close()
    delta = requests.get(f"{srv.url}{API}/export", params={"since": cursor},
                         headers={"Authorization": f"Bearer {cf.remote_catalog.http.access_token()}"})
    assert delta.headers["x-campfire-export"] == "ndjson-delta"
    for cut in sorted(rng.randrange(1, len(delta.content)) for _ in range(n_runs(request, 6, 40))):
        srv.faults.cut("/export", after_bytes=cut)
        with pytest.raises(SyncInterrupted):
            cf.sync()
        srv.faults.clear()
        assert sha(_db(cf)) == digest and catalog_state(_db(cf)) == after_full, cut
    assert cf.sync()["spectra"] == full["spectra"]
    assert sha(_db(cf)) != digest  # the delta finally arrived


SYNC_LOOP = textwrap.dedent("""
    import sys
    from campfire.client import Campfire
    cf = Campfire(base_url=sys.argv[1], data_dir=sys.argv[2])
    i = 0
    while True:
        # alternate visibilities: every sync is a full snapshot (temporary file, index build, rename)
        if i % 2:
            cf.login("alice", "alice-demo")
        else:
            cf.remote_catalog.logout()
        cf.sync()
        print("synced", i, flush=True)
        i += 1
""")


def test_sync_process_killed_at_random_moments(request, flaky_server, tmp_path):
    # guards: the same atomic snapshot swap against a process death at any instruction (between
    # the temporary file and the rename, inside SQLite's index build ...), plus the cleanup of a
    # killed sync's leftovers by the next sync, and CredentialStore's atomic rewrite
    srv = flaky_server
    rng = random.Random(99)
    data_dir = tmp_path / "client"
    valid_counts = {}
    for user in (None, "alice"):
        probe = Campfire(base_url=srv.url, data_dir=tmp_path / f"probe-{user}")
        if user:
            probe.remote_catalog.credentials = type(probe.remote_catalog.credentials)(tmp_path / "probe-cred.json")
            probe.login(user, DEMO_PASSWORDS[user])
        probe.sync()
        valid_counts[user] = catalog_state(_db(probe))["spectra"]
    env = dict(os.environ, CAMPFIRE_CONFIG_DIR=str(tmp_path / "loop-config"))
    for i in range(n_runs(request, 3, 20)):
        proc = subprocess.Popen([sys.executable, "-c", SYNC_LOOP, srv.url, str(data_dir)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        try:
            assert proc.stdout.readline().startswith("synced"), proc.stderr.read()
            time.sleep(rng.uniform(0.0, 0.8))  # about one or two syncs long: any point of one
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        state = catalog_state(data_dir / "meta" / "campfire.db")
        assert state["spectra"] in valid_counts.values(), (i, state)
        creds = tmp_path / "loop-config" / "credentials.json"
        if creds.exists():
            json.loads(creds.read_text())  # never half-written
    cf = Campfire(base_url=srv.url, data_dir=data_dir)
    cf.remote_catalog.logout()
    assert cf.sync()["spectra"] == valid_counts[None]
    assert not list((data_dir / "meta").glob("*.tmp"))


# ------------------------------------------------------------------- full and read-only disks
class _FullDisk:
    """``open`` for campfire.transfer.download whose .part files take ``room`` bytes, then fail with ENOSPC."""

    def __init__(self, room: int):
        self.room = room
        self.opened = 0

    def __call__(self, file, mode="r", *args, **kwargs):
        f = open(file, mode, *args, **kwargs)
        if str(file).endswith(".part") and any(c in mode for c in "wa"):
            self.opened += 1
            return _Writer(f, self)
        return f


class _Writer:
    def __init__(self, f, disk: _FullDisk):
        self.f, self.disk = f, disk

    def write(self, data: bytes) -> int:
        if len(data) > self.disk.room:
            self.f.write(data[:self.disk.room])
            self.disk.room = 0
            self.f.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.disk.room -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_disk_full_while_downloading_is_a_download_error_with_nothing_left(flaky_server, tmp_path, monkeypatch):
    # guards: _download_one telling a local write failure from a network one — no retry, the
    # .part removed, a DownloadError that says the disk is full — and download_files recording
    # nothing for it
    srv = flaky_server
    cf = Campfire(base_url=srv.url, data_dir=tmp_path / "client")
    cf.sync()
    rows = [dict(r) for r in cf.query_spectra(search=OBJECT)]
    disk = _FullDisk(room=150_000)
    monkeypatch.setattr("campfire.transfer.download.open", disk, raising=False)
    srv.faults.clear()
    with pytest.raises(DownloadError, match="disk is full") as err:
        download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", search=OBJECT), max_workers=1)
    assert "nothing was kept" in str(err.value)
    assert disk.opened >= 1
    for r in rows:
        final = cf.data_dir / r["fits_path"]
        if r["spectrum_id"] not in local_files(cf):
            assert not final.exists() and not final.with_name(final.name + ".part").exists(), r["spectrum_id"]
        else:  # one that fitted before the disk filled up is complete and verified
            assert sha(final) == r["file_hash"]
    assert len(local_files(cf)) < 3
    # a full disk is not retried: one request per file that hit it
    hits = [q["path"] for q in srv.faults.requests if q["path"].endswith("/file")]
    assert len(hits) == len(set(hits))
    # space again: everything arrives
    monkeypatch.undo()
    assert download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", search=OBJECT))["failed"] == []
    assert all(sha(cf.data_dir / r["fits_path"]) == r["file_hash"] for r in rows)


def _read_only(path: pathlib.Path):
    """Make a directory read-only even for root (chattr +i), or skip; returns the undo function."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        os.chmod(path, 0o555)
        return lambda: os.chmod(path, 0o755)
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
    if done.returncode != 0:
        missing_tool("running as root without chattr: cannot make a directory read-only")
    return lambda: subprocess.run(["chattr", "-i", str(path)], check=True)


def test_read_only_directories_are_a_download_error_and_the_rest_is_recorded(flaky_server, tmp_path):
    # guards: _download_one wrapping mkdir/open failures into a DownloadError (a raw
    # PermissionError used to escape download()), not retrying them, and download_files
    # recording the files of the same call that did arrive
    srv = flaky_server
    cf = Campfire(base_url=srv.url, data_dir=tmp_path / "client")
    cf.sync()
    products = cf.data_dir / "products"
    writable = products / "cinder_egs_p2"
    writable.mkdir(parents=True)
    other = {r["spectrum_id"] for r in cf.query_spectra(observations=["cinder_egs_p2"])}

    def file_requests() -> list[str]:
        return [q["path"] for q in srv.faults.requests if q["path"].endswith("/file")]

    # 1. products/ itself is read-only: the observation's directory cannot be created
    undo = _read_only(products)
    try:
        srv.faults.clear()
        with pytest.raises(DownloadError, match="nothing was kept") as err:
            download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", search=OBJECT), max_workers=2)
        assert any(w in str(err.value) for w in ("permission denied", "not permitted", "read-only")), err.value
        assert sorted(p.name for p in products.iterdir()) == ["cinder_egs_p2"] and not file_requests()
        # in one call: the blocked observation fails, the writable one arrives and is recorded
        with pytest.raises(DownloadError):
            download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", observations=["cinder_egs_p2", "ember_uds_p4"]), max_workers=2)
        recorded = local_files(cf)
        assert set(recorded) == other
    finally:
        undo()
    # 2. the observation's directory exists but is read-only: the .part file cannot be created
    blocked = products / "ember_uds_p4"
    undo = _read_only(blocked)
    try:
        srv.faults.clear()
        with pytest.raises(DownloadError, match="nothing was kept"):
            download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", search=OBJECT), max_workers=1)
        assert list(blocked.iterdir()) == []
        hits = file_requests()
        assert len(hits) == len(set(hits))  # at most one request per file: a local error is not retried
    finally:
        undo()
    assert download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", search=OBJECT))["downloaded"] == 3


# a child process (argv: server URL, data_dir, LIMIT) whose writes beyond LIMIT bytes per file
# fail with EFBIG (SIGXFSZ ignored): a disk that fills up, for Python's writes and SQLite's alike
SMALL_DISK = textwrap.dedent("""
    import resource, signal, sys
    from campfire.client import Campfire
    from campfire.errors import DownloadError
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    cf = Campfire(base_url=sys.argv[1], data_dir=sys.argv[2])
""")

SYNC_WITH_A_SMALL_DISK = SMALL_DISK + textwrap.dedent("""
    if sys.argv[4] == "alice":
        cf.login("alice", "alice-demo")
    try:
        cf.sync()
    except DownloadError as err:
        print("DownloadError", err)
    else:
        print("synced")
""")


def test_disk_full_during_sync_keeps_the_previous_catalog(flaky_server, tmp_path):
    # guards: transfer._apply turning a local write failure (Python's EFBIG/ENOSPC, SQLite's
    # "database or disk is full") into a DownloadError after the temporary file is removed or
    # the delta rolled back
    srv = flaky_server
    cf = Campfire(base_url=srv.url, data_dir=tmp_path / "client")
    cf.sync()
    db = _db(cf)
    before, digest = catalog_state(db), sha(db)
    env = dict(os.environ, CAMPFIRE_CONFIG_DIR=str(tmp_path / "cfg"))

    def run(limit: int, user: str) -> str:
        out = subprocess.run([sys.executable, "-c", SYNC_WITH_A_SMALL_DISK, srv.url, str(cf.data_dir), str(limit), user],
                             capture_output=True, text=True, timeout=120, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.strip()

    # a full snapshot (alice sees more) that does not fit
    text = run(db.stat().st_size // 2, "alice")
    assert text.startswith("DownloadError") and "the previous catalog is intact" in text, text
    assert sha(db) == digest and catalog_state(db) == before and not list(db.parent.glob("*.tmp"))
    # a delta that would grow the catalog beyond what the disk holds: SQLite's write fails, rolled back
    srv.sql("UPDATE spectra SET updated_at = '2999-01-01T00:00:00Z', reduction_version = 'v9.9-' || "
            "hex(randomblob(400)) WHERE rowid % 6 = 0 AND program_id IN (SELECT program_id FROM programs "
            "WHERE is_public = 1)")
    text = run(db.stat().st_size, "anonymous")
    assert text.startswith("DownloadError") and "intact" in text, text
    assert sha(db) == digest and catalog_state(db) == before
    assert run(1 << 40, "anonymous") == "synced"



DOWNLOAD_WITH_A_SMALL_DISK = SMALL_DISK + textwrap.dedent("""
    from campfire.catalog.filters import build_query
    from campfire.graphs.download import download_files
    try:
        download_files(cf.remote_catalog, cf.data_dir, build_query("spectra"), max_workers=4)
    except DownloadError as err:
        print("DownloadError", err)
    else:
        print("downloaded")
""")


def test_downloads_whose_records_cannot_be_written_are_failures_and_are_recorded_later(flaky_server, tmp_path):
    # guards: the recorder thread of download_files (local_files commits off the download
    # threads): a commit that fails marks its files failed, and nothing is lost
    srv = flaky_server
    cf = Campfire(base_url=srv.url, data_dir=tmp_path / "client")
    cf.sync()
    db = _db(cf)
    with sqlite3.connect(db) as conn:
        conn.execute("VACUUM")  # no free pages: recording 460 files must grow the file
    rows = cf.query_spectra()
    limit = max(db.stat().st_size, int(max(rows["file_size"]))) + 4096
    env = dict(os.environ, CAMPFIRE_CONFIG_DIR=str(tmp_path / "cfg"))
    out = subprocess.run([sys.executable, "-c", DOWNLOAD_WITH_A_SMALL_DISK, srv.url, str(cf.data_dir), str(limit)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout.strip()
    assert text.startswith("DownloadError") and "downloads failed" in text and "cannot record" in text, text
    with sqlite3.connect(db) as conn:
        recorded = dict(conn.execute("SELECT spectrum_id, sha256 FROM local_files").fetchall())
    assert len(recorded) < len(rows)
    # every file is in place and verified; the next download records them without fetching any again
    got = download_files(cf.remote_catalog, cf.data_dir, build_query("spectra"), max_workers=4)
    assert got["downloaded"] == 0 and got["skipped"] == len(rows) and not got["failed"]
    with sqlite3.connect(db) as conn:
        recorded = dict(conn.execute("SELECT spectrum_id, sha256 FROM local_files").fetchall())
    assert recorded == dict(zip(rows["spectrum_id"], rows["file_hash"]))


# -------------------------------------------------------------- a Dask worker killed mid-run
def _outputs_digest(outdir: pathlib.Path) -> dict[str, str]:
    """sha256 of every output's numbers (FITS data units, zarr arrays); provenance timestamps left out."""
    from astropy.io import fits
    import zarr

    out = {}
    for path in sorted((outdir / "fits").glob("*.fits")):
        with fits.open(path) as h:
            blob = b"".join(np.ascontiguousarray(hdu.data).tobytes() for hdu in h[1:]
                            if hdu.data is not None and hdu.name != "PROVENANCE")
        out[f"fits/{path.name}"] = hashlib.sha256(blob).hexdigest()
    group = zarr.open_group(str(outdir / "stack_lrds.zarr"), mode="r")

    def visit(g, prefix=""):
        for name, arr in g.arrays():
            out[f"zarr/{prefix}{name}"] = hashlib.sha256(np.asarray(arr[...]).tobytes()).hexdigest()
        for name, sub in g.groups():
            visit(sub, f"{prefix}{name}/")
    visit(group)
    return out


@pytest.mark.cluster
def test_dask_worker_killed_during_campfire_run(demo_root, tmp_path):
    # guards: campfire run's graph being pure, retryable tasks (no side effect that breaks when
    # a task runs twice; outputs written from the gathered results) on distributed, which
    # reschedules the tasks of a dead worker (distributed.scheduler.allowed-failures)
    import distributed

    from campfire.workflows.runner import run_workflow

    # the shipped stack_lrds workflow on two fields (13 objects), in batches of 3 spectra: many
    # short tasks, so one is running when the worker dies
    shipped = pathlib.Path(__file__).parents[2] / "workflows" / "stack_lrds.yaml"
    text = (shipped.read_text().replace("selection:                       # the filters of query_spectra\n",
                                        "selection:\n  fields: [uds, egs]\n")
            .replace("  plots: true ", "  plots: false "))  # quick-look PNGs are not what this tests
    assert "fields: [uds, egs]" in text and "plots: false" in text
    wf = tmp_path / "stack_lrds_small.yaml"
    wf.write_text(text + "\ncluster:\n  batch_size: 3\n")
    quiet = lambda _: None  # noqa: E731
    with dask.config.set({"campfire.demo-root": str(demo_root)}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                     silence_logs=50) as cluster, distributed.Client(cluster) as client:
        calm = run_workflow(wf, scheduler=cluster.scheduler_address, output=tmp_path / "calm", progress=False,
                            echo=quiet, force=True)
        assert calm["ok"]
        box: dict = {}

        def run():
            try:
                box["summary"] = run_workflow(wf, scheduler=cluster.scheduler_address, output=tmp_path / "killed",
                                              progress=False, echo=quiet, force=True)
            except BaseException as err:  # noqa: BLE001
                box["error"] = err
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        # wait until a worker is computing campfire tasks, then SIGKILL that worker's process
        pids = client.run(os.getpid)
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline and thread.is_alive():
            busy = [w for w, tasks in client.processing().items() if tasks]
            if busy:
                victim = busy[0]
                os.kill(pids[victim], signal.SIGKILL)
            time.sleep(0.01)
        thread.join(300)
        assert victim is not None, "the run finished before a worker could be killed"
        assert "error" not in box, box.get("error")
        summary = box["summary"]
        assert summary["ok"] and summary["objects"] == calm["objects"]
        # the nanny restarted the worker; the dead one's tasks ran elsewhere
        assert victim not in client.scheduler_info()["workers"]
    assert _outputs_digest(tmp_path / "killed") == _outputs_digest(tmp_path / "calm")
