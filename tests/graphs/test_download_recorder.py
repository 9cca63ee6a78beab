"""download_files' recorder: the batches' files committed together, and a bound on the files waiting."""
from __future__ import annotations

import threading
import time

import campfire.graphs.download as download


def test_the_recorder_commits_several_files_at_once_and_everything_at_the_end(monkeypatch, tmp_path):
    # guards: _Recorder's gathering — a commit (sync, renames, transaction) costs the same for
    # one file or a hundred, so files arriving within GATHER share one; leaving commits the rest
    commits: list[list] = []
    monkeypatch.setattr(download, "record_downloads", lambda data_dir, records, **kw: commits.append(records) or {})
    with download._Recorder(tmp_path) as record:
        for i in range(20):
            record([(f"s{i}", "h", 1, "t")])
            time.sleep(0.01)
        deadline = time.monotonic() + 5
        while not commits and time.monotonic() < deadline:
            time.sleep(0.01)
        assert commits  # committed while the download goes on, not only when it ends
    assert sorted(r[0] for c in commits for r in c) == sorted(f"s{i}" for i in range(20))
    assert 1 <= len(commits) <= 3


def test_the_recorder_makes_download_threads_wait_past_max_waiting(monkeypatch, tmp_path):
    # guards: the bound on staged files (each holds an open .part) when commits are slower than downloads
    release = threading.Event()
    waiting_at_commit: list[int] = []

    def slow_record(data_dir, records, **kw):
        waiting_at_commit.append(len(records))
        release.wait(5)
        return {}

    monkeypatch.setattr(download, "record_downloads", slow_record)
    monkeypatch.setattr(download._Recorder, "MAX_WAITING", 4)
    monkeypatch.setattr(download._Recorder, "GATHER", 0.0)
    with download._Recorder(tmp_path) as record:
        record([("a", "h", 1, "t")])  # taken at once; its commit hangs until released
        deadline = time.monotonic() + 5
        while not waiting_at_commit and time.monotonic() < deadline:
            time.sleep(0.005)
        assert waiting_at_commit
        done = threading.Event()

        def feed():
            for i in range(6):
                record([(f"b{i}", "h", 1, "t")])
            done.set()

        t = threading.Thread(target=feed)
        t.start()
        assert not done.wait(0.3)  # 4 queued while the commit hangs: the feeder waits for room
        release.set()
        t.join(5)
        assert done.is_set()
    assert sum(waiting_at_commit) == 7 and max(waiting_at_commit) <= 4 + 1


def test_the_recorder_commits_every_commit_files_without_waiting_for_gather(monkeypatch, tmp_path):
    # guards: a commit per COMMIT_FILES files (not one per file, nor one per GATHER at a slow pace)
    commits: list[list] = []
    monkeypatch.setattr(download, "record_downloads", lambda data_dir, records, **kw: commits.append(records) or {})
    monkeypatch.setattr(download._Recorder, "COMMIT_FILES", 5)
    monkeypatch.setattr(download._Recorder, "GATHER", 60.0)
    with download._Recorder(tmp_path) as record:
        for i in range(5):
            record([(f"s{i}", "h", 1, "t")])
        deadline = time.monotonic() + 5
        while not commits and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [len(c) for c in commits] == [5]  # a full commit, long before GATHER
        for i in range(5, 9):
            record([(f"s{i}", "h", 1, "t")])
        time.sleep(0.3)
        assert len(commits) == 1  # four wait for more (or for GATHER)
    assert [len(c) for c in commits] == [5, 4]  # the rest when the download ends


def test_the_recorder_keeps_one_catalog_connection_and_reopens_a_catalog_replaced_meanwhile(monkeypatch, tmp_path):
    # guards: LocalFilesWriter — one connection for every commit of a download, checked against the
    # file in place before each (a sync replaces the catalog file under the data_dir's lock)
    import os
    import shutil
    import sqlite3

    from campfire.catalog import db as catalog_db
    from campfire.catalog.schema import create_catalog
    from campfire.transfer import datadir

    db = catalog_db.catalog_path(tmp_path)
    create_catalog(db, "client").close()
    pristine = tmp_path / "pristine.db"
    shutil.copy(db, pristine)
    opened = []
    real_connect = datadir.connect
    monkeypatch.setattr(datadir, "connect", lambda *a, **k: opened.append(a) or real_connect(*a, **k))
    writer = datadir.LocalFilesWriter(db)
    writer.add([("s1", "h1", 1, "t")])
    writer.add([("s2", "h2", 2, "t")])
    assert len(opened) == 1  # kept between commits
    shutil.copy(pristine, tmp_path / "new.db")
    os.replace(tmp_path / "new.db", db)  # as a sync replaces the catalog
    writer.add([("s3", "h3", 3, "t")])
    writer.close()
    assert len(opened) == 2
    with sqlite3.connect(db) as conn:  # the record went to the catalog in place, not the replaced one
        assert [r[0] for r in conn.execute("SELECT spectrum_id FROM local_files")] == ["s3"]
