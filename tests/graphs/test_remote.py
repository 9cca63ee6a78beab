"""Graphs over a remote archive (the real server on a loopback port): the download step fetches
files through campfire.transfer, and a workflow with ``archive: http://...`` runs end to end."""
from __future__ import annotations

import os
import pathlib
import shutil

import numpy as np
import pytest

pytestmark = pytest.mark.server

SEL = dict(tags=["lrd"], has_photometry=True)
GRID = np.geomspace(0.6, 5.3, 400)


@pytest.fixture(scope="module")
def server_url(demo_root, tmp_path_factory):
    """A server over a private copy of the demo (catalog copied, files hard-linked)."""
    from campfire.server.testing import ServerThread

    root = tmp_path_factory.mktemp("served") / "root"
    (root / "meta").mkdir(parents=True)
    shutil.copy2(pathlib.Path(demo_root) / "meta" / "campfire.db", root / "meta" / "campfire.db")
    for name in ("products", "imaging"):
        if (pathlib.Path(demo_root) / name).exists():
            shutil.copytree(pathlib.Path(demo_root) / name, root / name, copy_function=os.link)
    srv = ServerThread(root).start()
    yield srv.url
    srv.stop()


@pytest.fixture(autouse=True)
def own_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("CAMPFIRE_CONFIG_DIR", str(tmp_path / "cfg"))


def test_lazy_collection_downloads_from_the_server(server_url, tmp_path, cf):
    from campfire import Campfire
    from campfire.models import SpectrumData
    from campfire.tasks.stack import stack_spectra

    remote = Campfire(base_url=server_url, data_dir=tmp_path / "client")
    lazy = remote.lazy_spectra(**SEL, batch_size=5)
    assert all(r.url.startswith(server_url) for r in lazy.refs) and len(lazy) > 10
    opened = lazy.open().compute(scheduler="threads")
    local = {r["spectrum_id"]: r["local_path"] for r in cf.query_spectra(**SEL)}
    for spec in opened:
        want = SpectrumData.from_fits(local[spec.spectrum_id])
        assert np.array_equal(spec.fnu, want.fnu, equal_nan=True)
    # files landed under the client's data_dir, at the catalog's relative paths
    assert all((tmp_path / "client" / r.dest).is_file() for r in lazy.refs)
    pop = remote.lazy_spectra(**SEL, batch_size=5).stack(by="all", grid=GRID, split_every=2).compute()
    want = stack_spectra([SpectrumData.from_fits(local[s.spectrum_id]) for s in opened], wavelength_grid=GRID)
    np.testing.assert_allclose(pop.fnu, want.fnu, rtol=1e-12, equal_nan=True)


def test_workflow_on_a_server_archive(server_url, tmp_path, monkeypatch):
    import zarr

    from campfire.workflows.runner import run_workflow

    monkeypatch.setenv("CAMPFIRE_ROOT", str(tmp_path / "client"))  # where the remote client keeps files
    wf = tmp_path / "remote.yaml"
    wf.write_text(f"""name: remote
archive: {server_url}
selection: {{tags: [lrd], has_photometry: true}}
steps:
  - download
  - calibrate: {{degree: 2}}
  - resample: {{grid: {{start: 0.6, stop: 5.3, num: 400}}}}
  - stack: {{by: object}}
outputs: {{plots: false}}
""")
    dry = run_workflow(wf, output=tmp_path / "out", dry_run=True, echo=lambda _: None)
    assert dry["plan"]["fetch"]["files"] == dry["plan"]["spectra"]["total"] > 10
    assert dry["plan"]["fetch"]["bytes"] > 1_000_000
    summary = run_workflow(wf, output=tmp_path / "out", progress=False, echo=lambda _: None)
    assert summary["ok"] and summary["objects"]["done"] >= summary["objects"]["total"] - 2
    z = zarr.open_group(str(tmp_path / "out" / "remote.zarr"), mode="r")
    assert z["objects/ok"][:].sum() == summary["objects"]["done"]
    again = run_workflow(wf, output=tmp_path / "out", dry_run=True, echo=lambda _: None)
    assert again.get("nothing_to_do")
