"""Dask workers that share no disk with the client (a real distributed.LocalCluster).

The workers are separate processes with their own HOME, working directory, temporary
directory and campfire config (no credentials file, no CAMPFIRE_ROOT), and the client's
data_dir is moved away after the graph is built, so nothing they do can reach it: they
read the products from the object store or fetch them from the server into their own
caches, and write the outputs to the object store.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import shutil
import sqlite3

import fsspec
import numpy as np
import pytest

from campfire.server.testing import ServerThread


@pytest.fixture(scope="module")
def isolated_cluster(s3_endpoint, tmp_path_factory):
    from distributed import Client, LocalCluster

    home = tmp_path_factory.mktemp("worker-home")
    env = {"HOME": str(home), "TMPDIR": str(home), "CAMPFIRE_CONFIG_DIR": str(home / "config"),
           "CAMPFIRE_ROOT": str(home / "no-archive"), "CAMPFIRE_API_URL": "",
           "AWS_ENDPOINT_URL": s3_endpoint}  # the object store's credentials: the workers' own environment
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           local_directory=str(home / "scratch"), env=env)
    client = Client(cluster, set_as_default=False)
    client.run(os.chdir, str(home))
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@contextlib.contextmanager
def _moved_away(path: pathlib.Path):
    """A context in which ``path`` is gone (renamed), restored afterwards."""
    hidden = path.with_name(path.name + "-hidden")
    os.rename(path, hidden)
    try:
        yield
    finally:
        os.rename(hidden, path)


def _cached_files(dask_worker) -> list[str]:
    """The spectra in a worker's own cache (campfire.transfer.workers.worker_cache_dir in a task)."""
    return sorted(p.name for p in (pathlib.Path(dask_worker.local_directory) / "campfire-files").rglob("*.spec.fits"))


def _cached_objects(dask_worker) -> set[str]:
    return {p.name for p in (pathlib.Path(dask_worker.local_directory) / "campfire-files" / "objects").glob("*.fits")}


def _demo_copy(demo_root, dest: pathlib.Path) -> pathlib.Path:
    dest.mkdir(parents=True)
    (dest / "meta").mkdir()
    shutil.copy2(pathlib.Path(demo_root) / "meta" / "campfire.db", dest / "meta" / "campfire.db")
    shutil.copytree(pathlib.Path(demo_root) / "products", dest / "products", copy_function=os.link)
    return dest


def test_lazy_spectra_of_a_proprietary_program_on_workers_without_the_data_dir(
        demo_root, isolated_cluster, tmp_path):
    from campfire import Campfire

    root = _demo_copy(demo_root, tmp_path / "server-root")
    db = sqlite3.connect(root / "meta" / "campfire.db")
    slug = db.execute("SELECT slug FROM programs WHERE is_public = 0 ORDER BY program_id LIMIT 1").fetchone()[0]
    db.close()
    server = ServerThread(root).start()
    try:
        cf = Campfire(base_url=server.url, data_dir=tmp_path / "client")
        cf.login("alice", "alice-demo")
        cf.sync()
        ids = [r["spectrum_id"] for r in cf.iter_spectra(programs=[slug], gratings=["PRISM"])][:12]
        assert len(ids) >= 4
        # computed here first: the files land in the client's data_dir (local copies the workers cannot see)
        want = {s.spectrum_id: s for s in cf.lazy_spectra(programs=[slug], gratings=["PRISM"]).open().compute(
            scheduler="threads")}
        lazy = cf.lazy_spectra(programs=[slug], gratings=["PRISM"], batch_size=3).open()
        token = cf.remote_catalog.http.access_token()
        assert token and token not in repr(lazy.__dask_keys__())
        assert token not in repr(dict(lazy.__dask_graph__()))  # the graph's repr (dashboard, logs) hides it
        with _moved_away(tmp_path / "client"):
            futures = isolated_cluster.compute(lazy)
            got = isolated_cluster.gather(futures)
            cached = isolated_cluster.run(_cached_files)
        assert {s.spectrum_id for s in got} == set(want)
        for spec in got:
            np.testing.assert_array_equal(spec.fnu, want[spec.spectrum_id].fnu)
        assert sum(len(v) for v in cached.values()) >= len(want)  # fetched into the workers' own caches
        logs = isolated_cluster.get_worker_logs()
        assert token not in repr(logs)
    finally:
        server.stop()


WORKFLOW = """name: s3run
archive: {root}
selection: {{}}
steps:
  - download
  - resample:
      grid: {{start: 0.8, stop: 5.0, resolution: 200}}
  - stack:
      by: object
      method: weighted_mean
  - stack:
      by: all
      method: mean
      grid: {{start: 0.8, stop: 5.0, resolution: 200}}
      name: everything
outputs:
  fits: true
  zarr: run.zarr
  plots: false
  table: summary.ecsv
"""


def _hdu_checksums(data: bytes) -> list[tuple[str, str]]:
    """(EXTNAME, sha256 of the data unit) of each HDU but the provenance record."""
    import io

    from astropy.io import fits

    out = []
    with fits.open(io.BytesIO(data)) as hdul:
        for hdu in hdul:
            if hdu.name != "PROVENANCE" and hdu.data is not None:
                out.append((hdu.name, hashlib.sha256(np.ascontiguousarray(hdu.data).tobytes()).hexdigest()))
    return out


def test_workflow_on_the_cluster_writes_the_same_outputs_to_the_object_store(
        s3_archive, isolated_cluster, bucket, tmp_path, monkeypatch):
    import zarr

    from campfire.workflows import runner
    from campfire.workflows.runner import run_workflow

    root, _, _ = s3_archive
    wf = tmp_path / "s3run.yaml"
    wf.write_text(WORKFLOW.format(root=root))
    local = run_workflow(wf, scheduler="synchronous", output=tmp_path / "local", echo=lambda s: None)
    assert local["ok"] and local["objects"]["done"] >= 4

    compute = runner._compute

    def without_the_archive_root(*args, **kwargs):  # the graph is built: the workers must not need the root
        with _moved_away(root):
            return compute(*args, **kwargs)

    monkeypatch.setattr(runner, "_compute", without_the_archive_root)
    out = f"s3://{bucket}/results/s3run"
    remote = run_workflow(wf, scheduler=isolated_cluster.scheduler.address, output=out, echo=lambda s: None)
    assert remote["ok"] and remote["objects"]["done"] == local["objects"]["done"]
    assert "tcp://" in remote["scheduler"]

    fs = fsspec.filesystem("s3")
    local_fits = sorted((tmp_path / "local" / "fits").glob("*.fits"))
    assert len(local_fits) == local["objects"]["done"] + 1  # + the population stack
    for f in local_fits:
        assert _hdu_checksums(fs.cat_file(f"{bucket}/results/s3run/fits/{f.name}")) == _hdu_checksums(f.read_bytes())
    here = zarr.open_group(str(tmp_path / "local" / "run.zarr"), mode="r")
    there = zarr.open_group(f"{out}/run.zarr", mode="r")
    for name in ("objects/fnu", "objects/fnu_err", "spectra/fnu", "population/everything/fnu"):
        a, b = np.asarray(here[name][...]), np.asarray(there[name][...])
        assert hashlib.sha256(a.tobytes()).hexdigest() == hashlib.sha256(b.tobytes()).hexdigest(), name
    objects = isolated_cluster.run(_cached_objects)
    hashes = {r[0] for r in sqlite3.connect(root / "meta" / "campfire.db").execute("SELECT file_hash FROM spectra")}
    assert set().union(*objects.values()) == {f"{h}.fits" for h in hashes}  # read once per worker, verified
    assert fs.exists(f"{bucket}/results/s3run/summary.ecsv") and fs.exists(f"{bucket}/results/s3run/provenance.json")
    # run again: every object is complete on the object store (resume reads the state there)
    again = run_workflow(wf, scheduler=isolated_cluster.scheduler.address, output=out, echo=lambda s: None)
    assert again.get("nothing_to_do")


def test_what_a_pickled_downloader_carries(tmp_path):
    """Only the access token travels; a process on the client's disk uses the client's token file instead."""
    import pickle
    import time

    from campfire.catalog.remote import RemoteCatalog
    from campfire.catalog.remote.credentials import CredentialStore
    from campfire.transfer.workers import ServerFiles, WorkerToken

    creds = CredentialStore(tmp_path / "cfg" / "credentials.json")
    with creds.locked():
        creds.put("http://127.0.0.1:1", {"username": "alice", "access_token": "ACCESS-abc",
                                         "refresh_token": "REFRESH-xyz", "expires_at": time.time() + 3600})
    data_dir = tmp_path / "client"
    data_dir.mkdir()
    files = ServerFiles(RemoteCatalog("http://127.0.0.1:1", credentials=creds), data_dir)
    blob = pickle.dumps(files)
    assert b"REFRESH-xyz" not in blob and b"ACCESS-abc" in blob
    assert "ACCESS" not in repr(files) and "ACCESS" not in repr(WorkerToken("http://x", "ACCESS-abc"))
    shared = pickle.loads(blob)  # the data_dir is here: the client's own token file, refresh allowed
    assert isinstance(shared.remote.credentials, CredentialStore) and shared.remote.http.auto_refresh
    data_dir.rmdir()
    elsewhere = pickle.loads(blob)  # no data_dir here: the access token only, never refreshed
    assert isinstance(elsewhere.remote.credentials, WorkerToken) and not elsewhere.remote.http.auto_refresh
    assert elsewhere.remote.http.access_token() == "ACCESS-abc"
    assert elsewhere.remote.credentials.get("http://127.0.0.1:1").get("refresh_token") is None
