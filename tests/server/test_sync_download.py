"""sync() and download() against the real server: atomicity, staleness, resume, retries, caching.

Includes the issue's "real parts": a reprocessed spectrum → stale_count 1 →
download(stale_only=True) fetches exactly that file; a download killed mid-file (a
SIGKILLed process) then resumed with a Range request; a server answering 500 twice
then 200. And the reference's "Sync and download" section, run as written.
"""
from __future__ import annotations

import datetime as dt
import errno
import gc
import gzip
import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import urllib.parse

import dask
import pytest
import requests

from campfire import cli
from campfire.catalog.db import connect
from campfire.catalog.filters import build_query
from campfire.catalog.inspections import add_inspection
from campfire.client import Campfire
from campfire.demo.identity import DEMO_REVIEWER
from campfire.errors import APIError, CampfireError, DownloadError
from campfire.graphs.download import download_files
from campfire.transfer import SyncInterrupted, file_sha256

pytestmark = pytest.mark.server


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def later_stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def reprocess(server, spectrum_id: str) -> str:
    """Rewrite a spectrum's FITS file on the server (new inode), update its hash; return the new hash."""
    from astropy.io import fits

    (fits_path,) = server.sql("SELECT fits_path FROM spectra WHERE spectrum_id = ?", (spectrum_id,))[0]
    path = server.root / fits_path
    new = path.with_name(path.name + ".new")
    with fits.open(path) as hdul:
        hdul[0].header["REDVER"] = "v9.9"
        hdul.writeto(new)
    os.replace(new, path)
    digest = sha(path)
    server.sql("UPDATE spectra SET file_hash = ?, file_size = ?, reduction_version = 'v9.9', updated_at = ? "
               "WHERE spectrum_id = ?", (digest, path.stat().st_size, later_stamp(), spectrum_id))
    return digest


def client_meta(cf) -> dict:
    conn = sqlite3.connect(cf.data_dir / "meta" / "campfire.db")
    try:
        return dict(conn.execute("SELECT key, value FROM archive_meta").fetchall())
    finally:
        conn.close()


def local_files(cf) -> dict:
    conn = sqlite3.connect(cf.data_dir / "meta" / "campfire.db")
    try:
        return dict(conn.execute("SELECT spectrum_id, sha256 FROM local_files").fetchall())
    finally:
        conn.close()


def file_requests(server) -> list[dict]:
    return [r for r in server.faults.requests if r["path"].endswith("/file")]


REFERENCE_SECTION = '''
result = cf.sync()
# {'observations': 8, 'objects': 2450, 'spectra': 7200, 'stale_count': 0}
cf.download(observations=['ember_uds_p4']) # By observation
cf.download(programs=['EMBER-UDS'], gratings=['PRISM']) # By program + grating
cf.download(fields=['COSMOS']) # By field
cf.download(stale_only=True) # Re-download updated files
result = cf.sync()
if result['stale_count'] > 0:
    print(f"{result['stale_count']} files updated on server")
    cf.download(stale_only=True)
'''


def test_reference_sync_and_download_section_runs_as_written(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CAMPFIRE_API_URL", server.url)
    monkeypatch.setenv("CAMPFIRE_ROOT", str(tmp_path / "campfire"))
    import campfire

    # the reference's `from campfire import Campfire` (the package re-exports the client)
    public = getattr(campfire, "Campfire", Campfire)
    ns = {"cf": public()}
    exec(compile(REFERENCE_SECTION, "<reference: Sync and download>", "exec"), ns)
    cf = ns["cf"]
    assert set(ns["result"]) == {"observations", "objects", "spectra", "stale_count"}
    assert ns["result"]["stale_count"] == 0 and cf.is_local and cf.last_synced
    got = local_files(cf)
    expected = set(cf.query_spectra(observations=["ember_uds_p4"])["spectrum_id"]) \
        | set(cf.query_spectra(programs=["EMBER-UDS"], gratings=["PRISM"])["spectrum_id"]) \
        | set(cf.query_spectra(fields=["cosmos"])["spectrum_id"])
    assert set(got) == expected
    for row in cf.query_spectra(fields=["cosmos"]):
        assert row["local_path"] and sha(row["local_path"]) == row["file_hash"] == got[row["spectrum_id"]]
    obj = cf.get_object("ember_uds_p4_123456")
    assert all(s.downloaded for s in obj.spectra)


def test_sync_result_and_bookkeeping(server, make_client):
    cf = make_client(server.url)
    assert not cf.is_local and cf.last_synced is None
    result = cf.sync()
    counts = cf.remote_catalog.counts()
    assert result == dict(counts, stale_count=0)
    meta = client_meta(cf)
    assert meta["owner"] == "client" and meta["server_url"] == server.url and meta["sync_cursor"]
    assert cf.is_local and cf.last_synced == meta["last_synced"]
    dt.datetime.fromisoformat(cf.last_synced)  # ISO timestamp
    # the synced copy never carries secrets or the pipeline's truth tables
    conn = sqlite3.connect(cf.data_dir / "meta" / "campfire.db")
    try:
        assert conn.execute("SELECT count(*) FROM truth_objects").fetchone()[0] == 0
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert not {"users", "refresh_tokens"} & names
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    assert not (cf.data_dir / "meta" / "auth.db").exists()
    # cone search works offline: the R*Tree was rebuilt for the copy
    assert len(cf.query_objects(cone_search=(34.4051456, -5.2101074, 5.0))) >= 1


def test_a_delta_sync_builds_an_index_the_copy_lacks(server, make_client):
    """A copy synced by an older campfire lacks an index this one adds (spectra_grating_id): the next
    sync, a delta applied in place, builds it (with its statistics) and the copy still answers as the server."""
    cf = make_client(server.url)
    cf.sync()
    db = cf.data_dir / "meta" / "campfire.db"
    conn = sqlite3.connect(db)
    conn.execute("DROP INDEX spectra_grating_id")
    conn.commit()
    conn.close()
    inode = db.stat().st_ino
    server.faults.clear()
    cf.sync()
    (export,) = [r for r in server.faults.requests if r["path"].endswith("/export")]
    assert "since=" in export["query"] and db.stat().st_ino == inode  # a delta, not a new snapshot
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert conn.execute("SELECT stat FROM sqlite_stat1 WHERE idx = 'spectra_grating_id'").fetchone()
    finally:
        conn.close()
    want = cf.query_spectra(gratings=["PRISM"], limit=50, remote=True)
    got = cf.query_spectra(gratings=["PRISM"], limit=50)
    assert list(got["spectrum_id"]) == list(want["spectrum_id"]) and len(got) == 50


def test_sync_refuses_an_archive_root(server):
    before = sha(server.db)
    cf = Campfire(base_url=server.url, data_dir=server.root)
    with pytest.raises(CampfireError, match="refusing to sync"):
        cf.sync()
    assert sha(server.db) == before


def test_unchanged_resync_is_incremental_and_changes_arrive(fresh_server, make_client, ids):
    cf = make_client(fresh_server.url)
    first = cf.sync()
    db = cf.data_dir / "meta" / "campfire.db"
    inode = db.stat().st_ino
    fresh_server.faults.clear()
    assert cf.sync() == first
    (export,) = [r for r in fresh_server.faults.requests if r["path"].endswith("/export")]
    assert "since=" in export["query"]
    assert db.stat().st_ino == inode  # applied in place (a delta), not a new snapshot
    r = requests.get(f"{fresh_server.url}/api/v1/export", params={"since": client_meta(cf)["sync_cursor"]})
    assert r.headers["x-campfire-export"] == "ndjson-delta"
    lines = [json.loads(line) for line in gzip.decompress(r.content).splitlines()]
    assert lines[0]["full"] is False and lines[-1]["type"] == "end"
    assert not [x for x in lines if x["type"] == "rows" and x["table"] in ("spectra", "objects", "object_tags")]
    # a change on the server arrives at the next (incremental) sync: an object's row, and a new
    # inspection by another writer (the pipeline) while the server runs
    oid = ids["example_object"]
    fresh_server.sql("UPDATE objects SET photo_z = 3.55, updated_at = ? WHERE object_id = ?", (later_stamp(), oid))
    conn = connect(fresh_server.db, readonly=False)
    with conn:
        add_inspection(conn, oid, DEMO_REVIEWER, redshift=3.5, quality=4, comment="refitted")
    conn.close()
    assert cf.sync() == first
    got = cf.get_object(oid)
    assert got.redshift == 3.5 and got.redshift_inspected == 3.5 and got.photometry.photo_z == 3.55
    assert db.stat().st_ino == inode
    assert "since=" in [r for r in fresh_server.faults.requests if r["path"].endswith("/export")][-1]["query"]
    # a deletion on the server cannot be a delta: the counts differ and a full sync follows
    (victim,) = fresh_server.sql("SELECT spectrum_id FROM spectra s JOIN programs p USING (program_id) "
                                 "WHERE p.is_public = 1 ORDER BY spectrum_id LIMIT 1")[0]
    fresh_server.sql("DELETE FROM spectra WHERE spectrum_id = ?", (victim,))
    result = cf.sync()
    assert result["spectra"] == first["spectra"] - 1 and cf.get_spectrum(victim) is None


def test_interrupted_sync_leaves_the_previous_catalog_intact(server, make_client):
    cf = make_client(server.url)
    # an interrupted first sync leaves no catalog at all
    server.faults.cut("/export", after_bytes=20_000)
    with pytest.raises(SyncInterrupted, match="previous catalog is intact"):
        cf.sync()
    assert not cf.is_local and not list((cf.data_dir / "meta").glob("*.tmp"))
    cf.sync()
    before = sha(cf.data_dir / "meta" / "campfire.db")
    n_before = len(cf.query_spectra())
    # log in as alice: another visibility → a full export, cut mid-stream
    cf.login("alice", "alice-demo")
    server.faults.cut("/export", after_bytes=30_000)
    with pytest.raises(SyncInterrupted):
        cf.sync()
    assert sha(cf.data_dir / "meta" / "campfire.db") == before
    assert len(cf.query_spectra()) == n_before and not list((cf.data_dir / "meta").glob("*.tmp"))
    # a cut incremental export rolls back too
    cf.sync()
    full = sha(cf.data_dir / "meta" / "campfire.db")
    server.faults.cut("/export", after_bytes=200)
    with pytest.raises(SyncInterrupted):
        cf.sync()
    assert sha(cf.data_dir / "meta" / "campfire.db") == full
    assert len(cf.query_spectra()) == cf.remote_catalog.counts()["spectra"] > n_before


def test_an_export_cut_or_abandoned_releases_its_snapshot_when_the_response_ends(fresh_server, make_client):
    """The server's temporary snapshot (a copy of the catalog) goes when the response ends, however it
    ends — not at some later garbage collection, which the collector being off here stands for."""
    exports = fresh_server.root / "cache" / "exports"

    def released(after: str) -> None:
        deadline = time.monotonic() + 30  # the server's cleanup runs right after the client sees the end
        while list(exports.glob("export-*.db")):
            assert time.monotonic() < deadline, (after, sorted(p.name for p in exports.iterdir()))
            time.sleep(0.02)

    cf = make_client(fresh_server.url)
    gc.disable()
    try:
        fresh_server.faults.cut("/export", after_bytes=20_000)  # the server's send fails mid-stream
        with pytest.raises(SyncInterrupted):
            cf.sync()
        released("a cut export")
        # the client reads a little and hangs up (a bare socket: closed now, by us); slow enough that it
        # leaves mid-stream (the demo's snapshot would fit in the socket buffers)
        fresh_server.faults.throttle("/export", bytes_per_second=50_000)
        url = urllib.parse.urlsplit(fresh_server.url)
        host = url.hostname
        with socket.create_connection((host, url.port), timeout=30) as sock:
            sock.sendall(f"GET /api/v1/export HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            got = b""
            while len(got) < 8192:
                block = sock.recv(4096)
                assert block, got[:300]
                got += block
            assert b"x-campfire-export: sqlite-snapshot" in got.lower()
            assert list(exports.glob("export-*.db"))  # (the snapshot it was reading)
        released("an abandoned export")
        fresh_server.faults.clear()
        cf.sync()  # a whole one
        released("a whole export")
    finally:
        gc.enable()


def test_reprocessed_spectrum_is_stale_and_stale_only_fetches_exactly_it(fresh_server, make_client):
    cf = make_client(fresh_server.url)
    cf.sync()
    got = cf.download(observations=["ember_uds_p4"], max_workers=4)
    assert got["downloaded"] > 10 and not got["failed"]
    assert cf.download(observations=["ember_uds_p4"])["downloaded"] == 0  # nothing to do the second time
    target = "ember_uds_p4_prism_clear_123456"
    new_hash = reprocess(fresh_server, target)
    result = cf.sync()
    assert result["stale_count"] == 1
    assert list(cf.query_spectra(staleness=True)["spectrum_id"]) == [target]
    fresh_server.faults.clear()
    got = cf.download(stale_only=True)
    assert got["downloaded"] == 1
    assert [r["path"] for r in file_requests(fresh_server)] == [f"/api/v1/spectra/{target}/file"]
    path = cf.get_spectrum(target)["local_path"]
    assert sha(path) == new_hash == local_files(cf)[target]
    assert cf.open_spectrum(target).header["REDVER"] == "v9.9"
    assert cf.sync()["stale_count"] == 0


DOWNLOAD_SCRIPT = textwrap.dedent("""
    import sys
    from campfire.catalog.filters import build_query
    from campfire.client import Campfire
    from campfire.graphs.download import download_files
    cf = Campfire(base_url=sys.argv[1], data_dir=sys.argv[2])
    download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", search=sys.argv[3]), max_workers=1)
""")


def test_download_killed_mid_file_then_resumed(fresh_server, make_client):
    cf = make_client(fresh_server.url)
    cf.sync()
    target = "ember_uds_p4_prism_clear_123456"
    row = cf.get_spectrum(target)
    final = cf.data_dir / row["fits_path"]
    part = final.with_name(final.name + ".part")
    fresh_server.faults.throttle(f"/spectra/{target}/file", bytes_per_second=row["file_size"] / 8)
    proc = subprocess.Popen([sys.executable, "-c", DOWNLOAD_SCRIPT, fresh_server.url, str(cf.data_dir), target],
                            env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (part.exists() and part.stat().st_size > row["file_size"] // 4):
            assert proc.poll() is None, "the download finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    partial = part.stat().st_size
    assert 0 < partial < row["file_size"]
    assert not final.exists() and target not in local_files(cf)  # a partial file never counts as downloaded
    assert cf.get_spectrum(target)["local_path"] == ""
    fresh_server.faults.clear()
    got = download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", search=target), max_workers=1)
    assert got["downloaded"] == 1
    (req,) = file_requests(fresh_server)
    assert req["headers"]["range"] == f"bytes={partial}-"
    assert req["headers"]["if-range"] == f'"{row["file_hash"]}"'
    assert got["bytes"] == row["file_size"] and sha(final) == row["file_hash"] and not part.exists()
    assert local_files(cf)[target] == row["file_hash"]


def _events_of_a_download(monkeypatch) -> list[tuple]:
    """Spy on the steps that put a batch of downloads in place: syncs (of which files), renames, records."""
    import campfire.transfer.download as download
    from campfire.transfer.datadir import LocalFilesWriter

    events: list[tuple] = []
    sync_files, publish, add = download.sync_files, download._Part.publish, LocalFilesWriter.add

    def spy_sync(fds):
        events.append(("sync", {os.readlink(f"/proc/self/fd/{fd}") for fd in fds}))
        return sync_files(fds)

    def spy_publish(part, dest):
        events.append(("rename", str(part.path), str(dest)))
        return publish(part, dest)

    def spy_record(writer, rows):  # every record goes through a LocalFilesWriter (record_files' too)
        events.append(("record", {r[0] for r in rows}))
        return add(writer, rows)

    monkeypatch.setattr(download, "sync_files", spy_sync)
    monkeypatch.setattr(download._Part, "publish", spy_publish)
    monkeypatch.setattr(LocalFilesWriter, "add", spy_record)
    return events


def test_a_batch_of_downloads_is_synced_before_its_renames_and_recorded_after(server, make_client, monkeypatch):
    # guards: the group durability of download_files — a file gets its name only once its data
    # is on disk (one sync for several files), and is recorded only after the rename is synced
    cf = make_client(server.url)
    cf.sync()
    rows = {r["spectrum_id"]: dict(r) for r in cf.query_spectra(observations=["ember_uds_p4"])}
    events = _events_of_a_download(monkeypatch)
    got = download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", observations=["ember_uds_p4"]),
                         max_workers=2)
    assert got["downloaded"] == len(rows) >= 6 and not got["failed"]
    renames = [i for i, e in enumerate(events) if e[0] == "rename"]
    assert len(renames) == len(rows)
    for i in renames:
        _, part, dest = events[i]
        synced = [j for j, e in enumerate(events[:i]) if e[0] == "sync" and part in e[1]]
        assert synced, f"{dest} renamed before its data was synced"
        # after the rename, its directory is synced, then the file recorded
        sid = next(sid for sid, r in rows.items() if dest.endswith(r["fits_path"]))
        dir_sync = next(j for j, e in enumerate(events) if j > i and e[0] == "sync" and os.path.dirname(dest) in e[1])
        recorded = next(j for j, e in enumerate(events) if e[0] == "record" and sid in e[1])
        assert i < dir_sync < recorded
    assert max(len(e[1]) for e in events if e[0] == "sync") > 1  # one sync for several files
    for sid, r in rows.items():
        assert sha(cf.data_dir / r["fits_path"]) == r["file_hash"] == local_files(cf)[sid]
    assert not list(cf.data_dir.rglob("*.part"))


def test_each_download_thread_gets_one_batch_and_hands_each_file_over_when_verified(server, make_client,
                                                                                    monkeypatch):
    # guards: the tail of download_files — one batch per thread, sizes differing by one file at most
    # (several unequal batches a thread let dask give one thread the larger ones: 24-27 files a
    # thread for 200 on 8), and every verified file handed to the recorder at once, not at its batch's end
    import campfire.graphs.download as graph_download

    cf = make_client(server.url)
    cf.sync()
    n = len(cf.query_spectra(observations=["ember_uds_p4"]))
    sizes, handed = [], []
    batch, call = graph_download._download_batch, graph_download._Recorder.__call__
    monkeypatch.setattr(graph_download, "_download_batch", lambda refs, **kw: sizes.append(len(refs)) or batch(refs, **kw))
    monkeypatch.setattr(graph_download._Recorder, "__call__",
                        lambda self, records: handed.append(len(records)) or call(self, records))
    got = download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", observations=["ember_uds_p4"]),
                         max_workers=3)
    assert got["downloaded"] == n >= 7 and not got["failed"]
    assert sorted(sizes) == sorted([n // 3 + (i < n % 3) for i in range(3)])
    assert handed == [1] * n
    assert set(local_files(cf)) == {r["spectrum_id"] for r in cf.query_spectra(observations=["ember_uds_p4"])}


KILLED_AT_THE_SYNC_SCRIPT = textwrap.dedent("""
    import os, sys
    import campfire.transfer.download as download
    from campfire.catalog.filters import build_query
    from campfire.client import Campfire
    from campfire.graphs.download import download_files
    download.sync_files = lambda fds: os._exit(9)  # the process dies as its first batch is to be made durable
    cf = Campfire(base_url=sys.argv[1], data_dir=sys.argv[2])
    download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", observations=[sys.argv[3]]), max_workers=2)
""")


def test_a_download_killed_before_its_renames_leaves_parts_that_complete_without_a_transfer(fresh_server, make_client):
    # guards: the order of _publish — killed between writing verified files and making them
    # durable, nothing has its final name or a local_files record; a .part that holds the
    # whole verified file is renamed by the next download without a request
    cf = make_client(fresh_server.url)
    cf.sync()
    rows = [dict(r) for r in cf.query_spectra(observations=["ember_uds_p4"])]
    proc = subprocess.run([sys.executable, "-c", KILLED_AT_THE_SYNC_SCRIPT, fresh_server.url, str(cf.data_dir),
                           "ember_uds_p4"], env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr[-2000:]
    assert local_files(cf) == {}
    complete = set()
    for r in rows:
        final = cf.data_dir / r["fits_path"]
        part = final.with_name(final.name + ".part")
        assert not final.exists(), r["spectrum_id"]
        if part.exists() and part.stat().st_size == r["file_size"]:
            assert sha(part) == r["file_hash"]
            complete.add(str(r["spectrum_id"]))
    assert complete  # the batch that was being made durable
    fresh_server.faults.clear()
    got = download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", observations=["ember_uds_p4"]))
    assert got["downloaded"] == len(rows) and not got["failed"]
    fetched = {q["path"].split("/")[-2] for q in file_requests(fresh_server)}
    assert not fetched & complete
    assert {r["spectrum_id"]: r["file_hash"] for r in rows} == local_files(cf)
    assert all(sha(cf.data_dir / r["fits_path"]) == r["file_hash"] for r in rows)
    assert not list(cf.data_dir.rglob("*.part"))


def test_downloads_whose_sync_fails_are_neither_renamed_nor_recorded(server, make_client, monkeypatch):
    # guards: _publish when the disk cannot make the data durable (EIO): the file is not put
    # in place, not recorded, its .part removed, and download_files reports it failed
    import campfire.transfer.download as download

    cf = make_client(server.url)
    cf.sync()
    rows = [dict(r) for r in cf.query_spectra(observations=["ember_uds_p4"])]
    monkeypatch.setattr(download, "sync_files", lambda fds: [OSError(errno.EIO, os.strerror(errno.EIO))] * len(fds))
    with pytest.raises(DownloadError, match="Input/output error|nothing was kept") as err:
        download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", observations=["ember_uds_p4"]),
                       max_workers=2)
    assert f"{len(rows)} of {len(rows)} downloads failed" in str(err.value)
    assert local_files(cf) == {}
    assert not [p for p in (cf.data_dir / "products").rglob("*") if p.is_file()]
    monkeypatch.undo()
    assert download_files(cf.remote_catalog, cf.data_dir,
                          build_query("spectra", observations=["ember_uds_p4"]))["downloaded"] == len(rows)


def test_dropped_connection_resumes_within_one_call(server, make_client):
    cf = make_client(server.url)
    cf.sync()
    target = "ember_uds_p4_g395m_f290lp_123456"
    server.faults.cut(f"/spectra/{target}/file", after_bytes=100_000)
    got = download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", search=target), max_workers=1)
    assert got["downloaded"] == 1
    reqs = file_requests(server)
    assert len(reqs) == 2 and "range" not in reqs[0]["headers"]
    start = int(reqs[1]["headers"]["range"][len("bytes="):-1])
    assert 0 < start <= 100_000  # what reached the .part file before the cut is kept
    row = cf.get_spectrum(target)
    assert sha(row["local_path"]) == row["file_hash"]


def test_server_answering_500_twice_then_200(server, make_client):
    cf = make_client(server.url)
    server.faults.fail("/api/v1/objects", status=500, times=2)
    table = cf.query_objects(remote=True, limit=5)
    assert len(table) == 5
    assert [r["path"] for r in server.faults.requests].count("/api/v1/objects") == 3
    # a server that keeps failing: APIError after the configured retries
    server.faults.clear()
    server.faults.fail("/api/v1/objects", status=503, times=50)
    with dask.config.set({"campfire.api.retries": 2}):
        with pytest.raises(APIError, match="503") as err:
            cf.query_objects(remote=True, limit=5)
    assert err.value.status == 503
    assert [r["path"] for r in server.faults.requests].count("/api/v1/objects") == 3


def test_429_retry_after_is_honoured(server, make_client):
    cf = make_client(server.url)
    server.faults.fail("/api/v1/fields", status=429, times=1, headers={"Retry-After": "1"})
    t0 = time.monotonic()
    assert cf.get_fields(remote=True)
    assert time.monotonic() - t0 >= 0.95


def test_downloads_retry_5xx(server, make_client):
    cf = make_client(server.url)
    cf.sync()
    target = "ember_uds_p4_g140m_f100lp_123456"
    server.faults.fail(f"/spectra/{target}/file", status=502, times=2)
    assert download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", search=target))["downloaded"] == 1


def test_timeouts_are_bounded(server, make_client):
    cf = make_client(server.url)
    server.faults.throttle("/api/v1/observations", bytes_per_second=2)
    with dask.config.set({"campfire.api.timeout": 0.3, "campfire.api.retries": 1}):
        t0 = time.monotonic()
        with pytest.raises(APIError, match="cannot reach|Timeout|timed out"):
            cf.get_observations(remote=True)
        assert time.monotonic() - t0 < 10


def test_download_verifies_the_hash(fresh_server, make_client):
    cf = make_client(fresh_server.url)
    cf.sync()
    target = "ember_uds_p4_prism_clear_123456"
    (fits_path,) = fresh_server.sql("SELECT fits_path FROM spectra WHERE spectrum_id = ?", (target,))[0]
    path = fresh_server.root / fits_path
    corrupt = path.with_name("x.tmp")
    corrupt.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    os.replace(corrupt, path)  # content changed, catalog hash did not
    with dask.config.set({"campfire.download.retries": 1}):
        with pytest.raises(DownloadError, match="sha256 mismatch"):
            download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", search=target))
    row = cf.get_spectrum(target)
    dest = cf.data_dir / row["fits_path"]
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()
    assert target not in local_files(cf)


def test_etag_change_since_sync_says_sync_first(fresh_server, make_client):
    cf = make_client(fresh_server.url)
    cf.sync()
    target = "ember_uds_p4_prism_clear_123456"
    reprocess(fresh_server, target)  # not synced yet
    with pytest.raises(DownloadError, match="run cf.sync"):
        download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", search=target))


def test_download_needs_a_prior_sync(server, make_client):
    cf = make_client(server.url)
    with pytest.raises(CampfireError, match="sync"):
        cf.download(observations=["ember_uds_p4"])
    # and never writes into an archive root
    with pytest.raises(CampfireError, match="owned by the pipeline"):
        archive = Campfire(base_url=server.url, data_dir=server.root)
        download_files(archive.remote_catalog, archive.data_dir, build_query("spectra", search="x"))


def test_open_spectrum_fallback_caches_under_products(server, make_client, ids):
    sid = ids["example_spectrum"]
    # no local catalog at all: fetched into products/, then Spectrum.downloaded is true
    cf = make_client(server.url)
    spec = cf.open_spectrum(sid)
    row = cf.get_spectrum(sid)
    assert spec.spectrum_id == sid and row["local_path"].startswith(str(cf.data_dir / "products"))
    assert {s.spectrum_id: s.downloaded for s in cf.get_object(ids["example_object"]).spectra}[sid]
    server.faults.clear()
    cf.open_spectrum(sid)
    assert not file_requests(server)  # present with the catalog's hash: not fetched again
    # with a synced catalog: the first call fetches, the next makes no request at all
    cf2 = make_client(server.url)
    cf2.sync()
    assert not cf2.get_spectrum(sid)["local_path"]
    server.faults.clear()
    cf2.open_spectrum(sid)
    assert len(file_requests(server)) == 1 and cf2.get_spectrum(sid)["local_path"]
    assert local_files(cf2)[sid] == cf2.get_spectrum(sid)["file_hash"]
    server.faults.clear()
    for s in cf2.get_object(ids["example_object"]).spectra:
        if s.spectrum_id == sid:
            assert s.downloaded and s.open().spectrum_id == sid
    assert cf2.get_spectrum_data(sid)["n_wave"] > 0
    assert server.faults.requests == []


def test_local_work_never_waits_for_a_slow_or_dead_server(server, make_client, ids):
    sid = ids["example_spectrum"]
    cf = make_client(server.url)
    cf.sync()
    cf.open_spectrum(sid)
    # a server that answers at 1 byte per second...
    server.faults.clear()
    server.faults.throttle("/api/v1/", bytes_per_second=1)
    t0 = time.monotonic()
    assert cf.open_spectrum(sid).spectrum_id == sid
    assert len(cf.query_objects(fields=["uds"])) > 0 and cf.get_object(ids["example_object"]) is not None
    assert time.monotonic() - t0 < 2 and server.faults.requests == []
    # ...and one that is not there at all
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    offline = Campfire(base_url=dead, data_dir=cf.data_dir)
    t0 = time.monotonic()
    assert offline.open_spectrum(sid).spectrum_id == sid and offline.get_spectrum(sid)["local_path"]
    assert time.monotonic() - t0 < 2


def test_sync_from_a_server_still_on_catalog_schema_1(server, make_client, monkeypatch):
    """An older server's snapshot has no object copies on spectra: the client upgrades its copy."""
    import re

    from campfire.catalog.schema import OBJECT_COPIES, SCHEMA_VERSION, schema_statements
    from campfire.server import export

    def v1_tables():
        tables, _ = schema_statements()
        copies = "|".join(OBJECT_COPIES)
        return [re.sub(rf",\s*({copies})\s+\w+[^,\n]*(?=[,\n])", "", t) if "TABLE IF NOT EXISTS spectra" in t else t
                for t in tables]

    assert not any(c in " ".join(v1_tables()) for c in OBJECT_COPIES)
    monkeypatch.setattr(export, "schema_statements", lambda: (v1_tables(), schema_statements()[1]))
    cf = make_client(server.url)
    result = cf.sync()
    assert result == dict(cf.remote_catalog.counts(), stale_count=0)
    conn = sqlite3.connect(cf.data_dir / "meta" / "campfire.db")
    try:
        cols = {r[1] for r in conn.execute("PRAGMA table_info(spectra)")}
        assert set(OBJECT_COPIES) <= cols
        assert conn.execute("SELECT count(*) FROM spectra WHERE object_field IS NULL").fetchone()[0] == 0
        assert conn.execute("SELECT value FROM archive_meta WHERE key = 'schema_version'").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()
    # the copy answers like the server
    want = cf.query_spectra(redshift_range=(3, 6), remote=True, limit=10_000)
    got = cf.query_spectra(redshift_range=(3, 6), limit=10_000)
    assert sorted(got["spectrum_id"]) == sorted(want["spectrum_id"]) and len(got) > 0


def test_local_files_survive_a_full_resync(server, make_client):
    cf = make_client(server.url)
    cf.sync()
    cf.download(observations=["ember_uds_p4"])
    before = local_files(cf)
    cf.login("alice", "alice-demo")  # another visibility: a full export replaces the catalog
    result = cf.sync()
    assert local_files(cf) == before and result["stale_count"] == 0
    assert cf.download(observations=["ember_uds_p4"])["downloaded"] == 0


def test_cli_sync_and_download(server, tmp_path, capsys):
    data_dir = tmp_path / "cli"
    assert cli.main(["sync", "--server", server.url, "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"synced the catalog of {server.url} (anonymous: public programs only): ")
    assert f"catalog: {data_dir / 'meta' / 'campfire.db'}" in out and "{" not in out
    n_objects = Campfire(data_dir=data_dir).catalog().counts()["objects"]
    assert f"{n_objects:,} objects" in out
    assert cli.main(["sync", "--json", "--server", server.url, "--data-dir", str(data_dir)]) == 0
    result = json.loads(capsys.readouterr().out)  # scripts keep their JSON
    assert set(result) == {"observations", "objects", "spectra", "stale_count"} and result["objects"] == n_objects
    want = Campfire(data_dir=data_dir).query_spectra(observations=["ember_uds_p4"], gratings=["PRISM"])
    assert cli.main(["download", "--server", server.url, "--data-dir", str(data_dir), "--observations",
                     "ember_uds_p4", "--gratings", "PRISM", "--max-workers", "2"]) == 0
    out = capsys.readouterr().out
    size = sum(int(x) for x in want["file_size"]) / 1024 ** 2
    assert out.startswith(f"downloaded {len(want)} files ({size:,.1f} MiB) in ") and str(data_dir / "products") in out
    assert cli.main(["download", "--json", "--server", server.url, "--data-dir", str(data_dir), "--observations",
                     "ember_uds_p4", "--gratings", "PRISM"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["downloaded"] == 0 and got["skipped"] == len(want) and got["failed"] == []
    assert cli.main(["download", "--server", server.url, "--data-dir", str(data_dir), "--observations",
                     "ember_uds_p4", "--gratings", "PRISM"]) == 0
    assert capsys.readouterr().out.startswith(f"nothing to download: {len(want)} files already in ")
    assert cli.main(["download", "--server", server.url, "--data-dir", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "run `campfire sync` first" in err and "cf." not in err


def test_download_progress_counts_files_and_bytes(server, make_client, capsys):
    cf = make_client(server.url)
    cf.sync()
    want = cf.query_spectra(observations=["ember_uds_p4"], gratings=["PRISM"])
    download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", observations=["ember_uds_p4"],
                                                                gratings=["PRISM"]), max_workers=2, progress=True)
    bar = capsys.readouterr().err.replace("\r", "\n").splitlines()
    last = [line for line in bar if "files" in line][-1]
    assert f"{len(want)}/{len(want)} files" in last and "B/s" in last and " it" not in last


def test_file_sha256_helper(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc" * 1000)
    assert file_sha256(p) == hashlib.sha256(b"abc" * 1000).hexdigest()


def test_downloads_through_requests_when_a_proxy_is_configured(server, make_client, monkeypatch):
    # with a proxy in the environment files go through requests (which knows proxies), not the
    # urllib3 pool: the same resume after a cut, the same verification
    from campfire.catalog.remote.http import APIClient

    monkeypatch.setattr(APIClient, "pool", property(lambda self: None))
    cf = make_client(server.url)
    cf.sync()
    target = "ember_uds_p4_g395m_f290lp_123456"
    server.faults.cut(f"/spectra/{target}/file", after_bytes=100_000)
    got = download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", search=target), max_workers=1)
    assert got["downloaded"] == 1 and not got["failed"]
    reqs = file_requests(server)
    assert len(reqs) == 2 and "range" in reqs[1]["headers"]
    row = cf.get_spectrum(target)
    assert sha(row["local_path"]) == row["file_hash"]


def test_download_in_a_new_process_leaves_distributed_unimported(server, make_client):
    """``download()`` runs on this process's threads: naming dask's scheduler by a string
    would import distributed to look for a Client (~0.3 s of a fresh process's CPU)."""
    cf = make_client(server.url)
    cf.sync()
    script = DOWNLOAD_SCRIPT + "print('distributed' in sys.modules, sum(1 for p in cf.query_spectra(search=sys.argv[3])['local_path'] if p))\n"
    out = subprocess.run([sys.executable, "-c", script, server.url, str(cf.data_dir), "ember_uds_p4"],
                         capture_output=True, text=True, timeout=120, check=True).stdout.split()
    assert out == ["False", str(len(cf.query_spectra(search="ember_uds_p4")))]


def test_spectrum_refs_tokenize_by_their_identifying_values():
    from dask.base import tokenize

    from campfire.graphs import builders  # noqa: F401 - registers the tokenizer
    from campfire.tasks.batch import SpectrumRef

    ref = SpectrumRef("s1", url="http://x/s1/file", file_hash="ab" * 32, dest="products/s1.fits")
    assert tokenize(ref) == tokenize(SpectrumRef("s1", url="http://x/s1/file", file_hash="ab" * 32,
                                                 dest="products/s1.fits"))
    assert tokenize(ref) != tokenize(SpectrumRef("s1", url="http://x/s1/file", file_hash="cd" * 32,
                                                 dest="products/s1.fits"))
    assert tokenize(ref) != tokenize(SpectrumRef("s1", url="http://x/s1/file", file_hash="ab" * 32,
                                                 dest="products/other.fits"))


# -- stream_get's fast path: the file GETs on the thread's kept-alive http.client connection ---------

def _count_connects(monkeypatch) -> list:
    """The connections the fast path opens (urllib3's own connections do not go through this method)."""
    import http.client

    opened = []
    real = http.client.HTTPConnection.connect

    def connect(self):
        opened.append(self)
        return real(self)

    monkeypatch.setattr(http.client.HTTPConnection, "connect", connect)
    return opened


def test_file_downloads_share_one_kept_alive_connection_per_thread(server, make_client, monkeypatch):
    cf = make_client(server.url)
    cf.sync()
    server.faults.clear()
    opened = _count_connects(monkeypatch)
    got = download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", limit=6, sort="spectrum_id"),
                         max_workers=1)
    assert got["downloaded"] == 6
    assert len(opened) == 1  # six files, one connection, kept alive between them
    reqs = file_requests(server)
    assert len(reqs) == 6 and all(r["headers"]["user-agent"].startswith("campfire-client/") for r in reqs)
    assert all(r["headers"].get("accept-encoding") == "identity" for r in reqs)  # the bytes the catalog hashed


def _read_file(cf, spectrum_id: str) -> str:
    """The sha256 of a file read through ``open_file`` on this thread."""
    resp = cf.remote_catalog.open_file(spectrum_id)
    body = b"".join(iter(lambda: resp.read1(1 << 20), b""))
    resp.release_conn()
    return hashlib.sha256(body).hexdigest()


def test_a_kept_alive_connection_the_server_closed_is_opened_again(server, make_client, monkeypatch):
    cf = make_client(server.url)
    cf.sync()
    first, second = "ember_uds_p4_g140m_f100lp_123456", "ember_uds_p4_g395m_f290lp_123456"
    assert _read_file(cf, first) == cf.get_spectrum(first)["file_hash"]
    conn = cf.remote_catalog.http._local.file_conn.conn  # this thread's, kept alive
    assert conn.sock is not None
    # the server closes the idle connection: the next request on it fails before any answer
    mine, peer = socket.socketpair()
    peer.close()
    conn.sock.close()
    conn.sock = mine
    server.faults.clear()
    opened = _count_connects(monkeypatch)
    import urllib3

    pooled = []
    real_urlopen = urllib3.PoolManager.urlopen
    monkeypatch.setattr(urllib3.PoolManager, "urlopen",
                        lambda self, *a, **k: pooled.append(a) or real_urlopen(self, *a, **k))
    assert _read_file(cf, second) == cf.get_spectrum(second)["file_hash"]
    # reopened once and asked again there (not handed to the urllib3 path); the server saw one request
    assert len(opened) == 1 and not pooled and len(file_requests(server)) == 1


def test_an_error_answer_on_the_fast_path_is_asked_again_on_the_urllib3_path(server, make_client, monkeypatch):
    cf = make_client(server.url)
    cf.sync()
    target = "ember_uds_p4_g140m_f100lp_123456"
    server.faults.clear()
    server.faults.fail(f"/spectra/{target}/file", status=503, times=1)
    opened = _count_connects(monkeypatch)
    got = download_files(cf.remote_catalog, cf.data_dir, build_query("spectra", search=target), max_workers=1)
    assert got["downloaded"] == 1
    assert len(file_requests(server)) == 2 and len(opened) == 1  # the 503, then urllib3's answered request
    # a 404 gets urllib3's error, with the spectrum named (on this thread: its own connection)
    from campfire.errors import NotFoundError

    with pytest.raises(NotFoundError, match="no_such_spectrum"):
        cf.remote_catalog.open_file("no_such_spectrum")
    # the short error answers were read to their end: the kept-alive connection still serves
    server.faults.clear()
    assert _read_file(cf, target) == cf.get_spectrum(target)["file_hash"] and len(opened) == 2


def test_the_fast_path_sends_the_access_token(server, make_client):
    cf = make_client(server.url)
    cf.login("alice", "alice-demo")
    cf.sync()
    server.faults.clear()
    target = "ember_uds_p4_g140m_f100lp_123456"
    resp = cf.remote_catalog.open_file(target)
    assert type(resp).__name__ == "_FileResponse"
    resp.close()
    (req,) = file_requests(server)
    assert req["headers"]["authorization"].startswith("Bearer ")


def test_the_fast_path_checks_https_certificates(monkeypatch, tmp_path):
    import http.client
    import ssl

    from campfire.catalog.remote import RemoteCatalog

    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    conn = RemoteCatalog("https://archive.example:8443", data_dir=tmp_path).http._file_conn()
    assert isinstance(conn, http.client.HTTPSConnection) and (conn.host, conn.port) == ("archive.example", 8443)
    assert conn._context.verify_mode == ssl.CERT_REQUIRED and conn._context.check_hostname


def test_a_forked_process_opens_its_own_file_connection(tmp_path):
    from campfire.catalog.remote import RemoteCatalog

    api = RemoteCatalog("http://127.0.0.1:9", data_dir=tmp_path).http
    conn = api._file_conn()
    assert api._file_conn() is conn  # kept for this thread
    api._local.file_conn.pid = -1  # as the parent's connection looks in a forked child
    assert api._file_conn() is not conn


# -- the fast path's answer, read from the socket (_FileResponse) -------------------------------------

class _CannedServer:
    """A loopback HTTP server that answers each request with the next canned answer (bytes, sent in pieces).

    ``requests`` gets each request's head; a piece that is None closes the connection there.
    """

    def __init__(self, answers: list[list[bytes | None]]):
        import threading

        self.answers, self.requests, self.connections = list(answers), [], 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while self.answers:
            conn, _ = self.sock.accept()
            self.connections += 1
            with conn:
                data = b""
                while self.answers:
                    while b"\r\n\r\n" not in data:
                        got = conn.recv(65536)
                        if not got:
                            break
                        data += got
                    if b"\r\n\r\n" not in data:
                        break  # the client closed this connection
                    head, _, data = data.partition(b"\r\n\r\n")
                    self.requests.append(head.decode("latin-1"))
                    pieces = self.answers.pop(0)
                    for piece in pieces:
                        if piece is None:
                            break
                        conn.sendall(piece)
                        time.sleep(0.01)  # separate receives on the client's side
                    if None in pieces:
                        break


def _answer(body: bytes, *head: str) -> bytes:
    return ("HTTP/1.1 200 OK\r\n" + "".join(h + "\r\n" for h in head) + "\r\n").encode() + body


def _fast_get(url: str):
    from campfire.catalog.remote.http import APIClient

    api = APIClient(url, credentials=_NoTokens())
    return api, api.stream_get("/spectra/s1/file")


class _NoTokens:
    """A credentials store with nothing in it (anonymous; no file touched)."""

    def get(self, server):
        return None

    def mtime(self):
        return 0.0


def _body(resp) -> bytes:
    out = b"".join(bytes(b) for b in iter(lambda: resp.read1(1 << 20), b""))
    resp.release_conn()
    return out


def test_the_fast_path_reads_a_head_and_body_that_arrive_in_pieces():
    body = os.urandom(200_000)
    whole = _answer(body, f"Content-Length: {len(body)}", 'ETag: "abc"', "X-Twice: 1", "x-twice: 2")
    cut = [whole[:20], whole[20:90], whole[90:5000], whole[5000:150_000], whole[150_000:]]
    srv = _CannedServer([cut, [_answer(b"hello", "Content-Length: 5")]])
    api, resp = _fast_get(srv.url)
    assert type(resp).__name__ == "_FileResponse" and resp.status == 200
    assert resp.headers.get("etag") == '"abc"' and resp.headers.get("X-TWICE") == "1, 2"
    assert _body(resp) == body
    # read to its end: the same connection serves the next file
    _, again = api, api.stream_get("/spectra/s2/file")
    assert _body(again) == b"hello" and srv.connections == 1
    first = srv.requests[0].split("\r\n")
    assert first[0] == "GET /api/v1/spectra/s1/file HTTP/1.1"
    assert f"Host: {srv.url.removeprefix('http://')}" in first and "Accept-Encoding: identity" in first


def test_the_fast_path_closes_a_connection_the_server_will_close_and_one_left_unread():
    srv = _CannedServer([[_answer(b"abc", "Content-Length: 3", "Connection: close")],
                         [_answer(b"x" * 1000, "Content-Length: 1000")],
                         [_answer(b"ok", "Content-Length: 2")]])
    api, resp = _fast_get(srv.url)
    assert _body(resp) == b"abc"
    assert api._file_conn().sock is None  # "Connection: close": not used again
    resp = api.stream_get("/spectra/s2/file")
    assert bytes(resp.readview(10)) == b"x" * 10
    resp.release_conn()  # the rest of the body is unread: the connection is dropped, never reused mid-body
    assert api._file_conn().sock is None
    assert _body(api.stream_get("/spectra/s3/file")) == b"ok" and srv.connections == 3


def test_a_chunked_or_unsized_answer_is_asked_again_on_the_urllib3_path():
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    srv = _CannedServer([[chunked], [chunked]])
    api, resp = _fast_get(srv.url)
    assert type(resp).__name__ != "_FileResponse"  # urllib3's response, which decodes chunks
    assert resp.read() == b"hello"
    assert len(srv.requests) == 2 and srv.connections == 2  # the fast path's connection was dropped


def test_a_body_cut_short_raises_protocol_error_and_drops_the_connection():
    import urllib3

    srv = _CannedServer([[_answer(b"abc", "Content-Length: 10"), None]])
    api, resp = _fast_get(srv.url)
    assert bytes(resp.readview(100)) == b"abc"
    with pytest.raises(urllib3.exceptions.ProtocolError, match="7 bytes missing"):
        resp.readview(100)
    assert api._file_conn().sock is None


def test_the_fast_path_never_sends_a_header_with_a_line_break(monkeypatch):
    from campfire.catalog.remote.http import APIClient

    opened = _count_connects(monkeypatch)
    api = APIClient("http://127.0.0.1:9", credentials=_NoTokens())
    assert api._file_get("/spectra/s1/file", {"If-Range": '"x"\r\nX-Evil: 1'}, "download.timeout", "s1") is None
    assert api._file_get("/spectra/s 1/file", None, "download.timeout", "s1") is None
    assert not opened  # refused before any connection (urllib3 refuses it with its own error)
