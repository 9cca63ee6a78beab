"""A real S3-compatible server on loopback for the object-store tests: moto in server mode.

One ``ThreadedMotoServer`` per session on a free 127.0.0.1 port; s3fs and botocore find
it through ``AWS_ENDPOINT_URL`` (the usual configuration, nothing campfire-specific), with
dummy credentials. Each test gets a bucket of its own (:func:`bucket`).
"""
from __future__ import annotations

import os
import pathlib
import sys
import shutil
import uuid

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "archive"))  # real_inputs

S3_ENV = {"AWS_ACCESS_KEY_ID": "campfire-test", "AWS_SECRET_ACCESS_KEY": "campfire-test-secret",
          "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def s3_endpoint():
    """``http://127.0.0.1:PORT`` of a moto server started for this session (env set while it runs)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in [*S3_ENV, "AWS_ENDPOINT_URL"]}
    os.environ.update(S3_ENV, AWS_ENDPOINT_URL=endpoint)
    try:
        yield endpoint
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


@pytest.fixture
def bucket(s3_endpoint) -> str:
    """A fresh bucket's name."""
    import fsspec

    name = f"campfire-{uuid.uuid4().hex[:10]}"
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir(name)
    return name


@pytest.fixture(autouse=True)
def _own_credentials(tmp_path, monkeypatch):
    """Never the user's campfire credentials or archive."""
    monkeypatch.setenv("CAMPFIRE_CONFIG_DIR", str(tmp_path / "campfire-config"))
    monkeypatch.delenv("CAMPFIRE_API_URL", raising=False)
    monkeypatch.delenv("CAMPFIRE_ROOT", raising=False)


@pytest.fixture(scope="session")
def s3_archive(s3_endpoint, tmp_path_factory):
    """The DJA v4 spectra ingested with their products on s3://<bucket>/dja (catalog local)."""
    import fsspec
    from real_inputs import DJA

    from campfire.archive import ingest

    name = f"campfire-{uuid.uuid4().hex[:10]}"
    fsspec.filesystem("s3", skip_instance_cache=True).mkdir(name)
    inputs = tmp_path_factory.mktemp("inputs")
    for f in DJA.glob("*.spec.fits"):
        shutil.copy(f, inputs / f.name)
    root = tmp_path_factory.mktemp("s3arch") / "archive"
    url = f"s3://{name}/dja"
    summary = ingest(root, [str(inputs)], products_url=url, fit=False, scheduler="threads", progress=False)
    assert summary.meta["counts"]["new"] == 6, summary
    return root, url, inputs
