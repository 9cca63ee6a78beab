"""Imaging on an object store (moto's S3 server on loopback): push, serve cutouts and shutters, region reads, errors.

A copy of the demo root has its imaging pushed with ``campfire archive push-imaging``, its
local ``imaging/`` folder removed, and is served by the real server: every cutout and
shutter answer must be byte-identical to the one the same server gave from the local
imaging before the push.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import pathlib
import shutil
import sqlite3
import sys
import types
import uuid

import fsspec
import numpy as np
import pytest
import requests
from shared_fixtures import link_copy

from campfire.errors import CampfireError, ValidationError
from campfire.server.testing import ServerThread

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "portal"))  # portal_kit

FOVS = [(5.0, None), (3.2, 128)]


def _s3():
    return fsspec.filesystem("s3", skip_instance_cache=True)


def _public_objects(root: pathlib.Path) -> list[str]:
    """One object per field whose spectra are all public (anonymous callers see them), plus the portal's one."""
    conn = sqlite3.connect(f"file:{root / 'meta' / 'campfire.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT o.field, MIN(o.object_id) FROM objects o WHERE NOT EXISTS (SELECT 1 FROM spectra s "
            "JOIN programs p USING (program_id) WHERE s.object_id = o.object_id AND p.is_public = 0) "
            "GROUP BY o.field ORDER BY o.field").fetchall()
    finally:
        conn.close()
    return sorted({oid for _, oid in rows} | {"ember_uds_p4_123456"})


def _answers(base: str, objects: list[str]) -> dict:
    """The server's cutout PNGs and shutter geometries of the objects (all must be there)."""
    out = {}
    for oid in objects:
        for fov, size in FOVS:
            params = {"fov": fov, **({"size": size} if size else {})}
            r = requests.get(f"{base}/api/v1/objects/{oid}/cutout.png", params=params, timeout=120)
            assert r.status_code == 200, (oid, r.text)
            out["cutout", oid, fov, size] = r.content
        r = requests.get(f"{base}/api/v1/objects/{oid}/shutters", params={"fov": 5.0}, timeout=60)
        assert r.status_code == 200, (oid, r.text)
        out["shutters", oid] = r.json()
    return out


def _tree(folder: pathlib.Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def pushed(s3_endpoint, demo_root, tmp_path_factory):
    """A demo copy whose imaging went to s3://<bucket>/imaging (local folder removed), served; the local answers."""
    from campfire import cli

    root = link_copy(pathlib.Path(demo_root), tmp_path_factory.mktemp("s3img") / "root")  # links: demo untouched
    objects = _public_objects(root)
    thread = ServerThread(root).start()
    try:
        local = _answers(thread.url, objects)
    finally:
        thread.stop()
    bucket = f"campfire-{uuid.uuid4().hex[:10]}"
    _s3().mkdir(bucket)
    url = f"s3://{bucket}/imaging"
    files = _tree(root / "imaging")
    assert cli.main(["archive", "push-imaging", str(root), url + "/"]) == 0
    shutil.rmtree(root / "imaging")  # from now on only the store has the imaging
    thread = ServerThread(root).start()
    try:
        yield types.SimpleNamespace(root=root, url=url, bucket=bucket, base=thread.url, objects=objects,
                                    local=local, files=files, thread=thread)
    finally:
        thread.stop()


def test_push_uploads_the_layout_and_records_the_url(pushed):
    conn = sqlite3.connect(pushed.root / "meta" / "campfire.db")
    try:
        meta = dict(conn.execute("SELECT key, value FROM archive_meta").fetchall())
    finally:
        conn.close()
    assert meta["imaging_url"] == pushed.url and "products_url" not in meta
    fs = _s3()
    prefix = f"{pushed.bucket}/imaging/"
    stored = {p.removeprefix(prefix): hashlib.sha256(fs.cat_file(p)).hexdigest() for p in fs.find(prefix)}
    assert stored == pushed.files  # every file, same path below the URL, same bytes
    assert {"uds/index.json", "cosmos/index.json"} <= set(stored)
    assert any(p.startswith("uds/shutters/") for p in stored) and any(p.startswith("uds/stamps/") for p in stored)
    assert not (pushed.root / "imaging").exists()


def test_cutouts_and_shutters_from_the_store_equal_the_local_ones(pushed):
    remote = _answers(pushed.base, pushed.objects)
    assert remote.keys() == pushed.local.keys()
    for key, value in pushed.local.items():
        assert remote[key] == value, key  # identical PNG bytes, identical geometry
    # the overlay's data: this object's own slitlet is there
    geo = remote["shutters", "ember_uds_p4_123456"]
    assert "target" in {s["category"] for s in geo["shutters"]} and geo["observations"]


def test_a_client_on_the_root_and_one_on_the_server_get_the_same_cutout(pushed, tmp_path):
    from campfire import Campfire
    from campfire.imaging import read_cutout_png

    oid = "ember_uds_p4_123456"
    want = pushed.local["cutout", oid, 5.0, None]
    on_root = Campfire(data_dir=pushed.root)  # the archive root itself: renders from the store
    path = on_root.get_cutout(oid, fov=5.0)
    assert pathlib.Path(path).read_bytes() == want
    assert on_root.get_shutters(oid, fov=5.0) == pushed.local["shutters", oid]
    remote = Campfire(base_url=pushed.base, data_dir=tmp_path / "client")
    pixels, meta = read_cutout_png(remote.get_cutout(oid, fov=5.0))
    assert np.array_equal(pixels, read_cutout_png(want)[0]) and meta["object_id"] == oid


@contextlib.contextmanager
def _browser_page(browser):
    """A page of the session's headless Chromium (tests/conftest.py); a script error on it fails the test."""
    context = browser.new_context(viewport={"width": 1480, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        yield page
        assert not errors, errors
    finally:
        context.close()


def test_the_portal_draws_the_cutout_with_its_shutters(pushed, browser):
    from portal_kit import login

    with _browser_page(browser) as page:
        login(page, types.SimpleNamespace(url=pushed.base), "alice")
        page.goto(f"{pushed.base}/objects/ember_uds_p4_123456")
        page.wait_for_selector("body[data-plots-ready='1']")
        assert page.get_attribute("#cutout-plot", "data-image") == "yes"
        categories = page.evaluate("""() => document.getElementById('cutout-plot').data
            .map(t => t.meta && t.meta.category).filter(c => c)""")
        assert "target" in categories


def _restore(fs, key: str, data: bytes) -> None:
    fs.pipe_file(key, data)


def test_a_missing_or_corrupt_file_on_the_store_is_a_clear_error(pushed):
    fs = _s3()
    oid = next(o for o in pushed.objects if "_egs_" in o)
    index_key = f"{pushed.bucket}/imaging/egs/index.json"
    original = fs.cat_file(index_key)
    cutout = f"{pushed.base}/api/v1/objects/{oid}/cutout.png"
    try:
        for bad, why in [(b"{not json", "not valid JSON"), (b'{"stamps": "none"}', "'stamps' must be a list"),
                         (b"[1, 2]", "expected a JSON object")]:
            fs.pipe_file(index_key, bad)
            r = requests.get(cutout, params={"fov": 5.0}, timeout=60)
            assert r.status_code == 502, r.text
            body = r.json()
            assert body["error"] == "imaging_unavailable"
            assert f"{pushed.url}/egs/index.json" in body["message"] and why in body["message"]
        fs.rm_file(index_key)
        r = requests.get(cutout, params={"fov": 5.0}, timeout=60)
        assert r.status_code == 404 and "no imaging covers object" in r.json()["message"]
        assert pushed.url in r.json()["message"]
    finally:
        _restore(fs, index_key, original)
    # restored: the same cutout as before (the caches key on the index's state, nothing stale was kept)
    assert requests.get(cutout, params={"fov": 5.0}, timeout=60).content == pushed.local["cutout", oid, 5.0, None]

    # a corrupt shutters document: the shutters request says which file
    geo = pushed.local["shutters", oid]
    obs = geo["observations"][0]["observation"]
    key = f"{pushed.bucket}/imaging/egs/shutters/{obs}.json"
    original = fs.cat_file(key)
    try:
        fs.pipe_file(key, b'{"targets": [{"object_id": "x", "shutters": [{"corners": 7}]}]}')
        r = requests.get(f"{pushed.base}/api/v1/objects/{oid}/shutters", params={"fov": 5.0}, timeout=60)
        assert r.status_code == 502 and r.json()["error"] == "imaging_unavailable"
        assert f"{obs}.json" in r.json()["message"] and "not an MSA shutters document" in r.json()["message"]
    finally:
        _restore(fs, key, original)
    r = requests.get(f"{pushed.base}/api/v1/objects/{oid}/shutters", params={"fov": 5.0}, timeout=60)
    assert r.json() == geo


def test_a_mosaic_on_the_store_is_read_by_region(pushed, monkeypatch):
    """A cutout of a large image reads its header and the region it covers, never the whole file."""
    from astropy.io import fits
    from astropy.wcs import WCS
    from s3fs.core import S3File

    from campfire.imaging.archive import load_images
    from campfire.imaging.render import render_cutout

    n = 2048
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.1, 2.2]
    wcs.wcs.crpix = [n / 2 + 0.5, n / 2 + 0.5]
    wcs.wcs.cdelt = [-0.04 / 3600, 0.04 / 3600]
    data = np.random.default_rng(1).normal(size=(n, n)).astype(np.float32)
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, header=wcs.to_header(), name="SCI")]).writeto(buf)
    fs = _s3()
    fs.pipe_file(f"{pushed.bucket}/imaging/zz_mosaic/mosaic.fits", buf.getvalue())
    index = {"band": "f444w", "pixscale": 0.04,
             "stamps": [{"object_id": "m", "file": "mosaic.fits", "ra": 150.1, "dec": 2.2}]}
    fs.pipe_file(f"{pushed.bucket}/imaging/zz_mosaic/index.json", json.dumps(index).encode())

    fetched = []
    fetch = S3File._fetch_range

    def counting(self, start, end):
        fetched.append(end - start)
        return fetch(self, start, end)

    monkeypatch.setattr(S3File, "_fetch_range", counting)
    ra, dec, fov = 150.1 + 10 / 3600, 2.2 - 5 / 3600, 4.0
    images = load_images(pushed.root, "zz_mosaic", ra, dec, fov)
    assert len(images) == 1 and images[0].data.shape == (n, n) and images[0].band == "f444w"
    cube, scale = render_cutout([(images[0].data, images[0].wcs)], ra, dec, fov, 0.04)
    assert 0 < sum(fetched) < len(buf.getvalue()) / 4, (sum(fetched), len(buf.getvalue()))
    want, _ = render_cutout([(data, images[0].wcs)], ra, dec, fov, 0.04)  # the same pixels from memory
    assert np.isfinite(cube).all() and np.array_equal(cube, want)


def test_push_imaging_refuses_bad_arguments(s3_endpoint, bucket, tmp_path, demo_root, capsys):
    from campfire import cli
    from campfire.archive.imaging import push_imaging

    root = link_copy(pathlib.Path(demo_root), tmp_path / "root")
    with pytest.raises(ValidationError, match="imaging_url: expected an fsspec URL"):
        push_imaging(root, "bucket/prefix")
    with pytest.raises(ValidationError, match=r"imaging_url: https:// is read-only"):
        push_imaging(root, "https://example.org/imaging")
    with pytest.raises(ValidationError, match="imaging_url: cannot use nosuchfs://"):
        push_imaging(root, "nosuchfs://x/y")
    with pytest.raises(CampfireError, match="is not an archive root"):
        push_imaging(tmp_path / "nothing", f"s3://{bucket}/i")
    with pytest.raises(CampfireError, match="imaging_url: cannot reach s3://no-such-bucket-here/i"):
        push_imaging(root, "s3://no-such-bucket-here/i")
    shutil.rmtree(root / "imaging")
    with pytest.raises(ValidationError, match="root: .* has no imaging folder"):
        push_imaging(root, f"s3://{bucket}/i")
    assert cli.main(["archive", "push-imaging", str(root), "bucket/prefix"]) == 2
    assert "imaging_url: expected an fsspec URL" in capsys.readouterr().err
    assert not _s3().find(bucket)  # nothing was written anywhere
