"""Products on an object store (moto's S3 server on loopback): ingest, serve, download, resume, staleness."""
from __future__ import annotations

import hashlib
import io
import shutil
import sqlite3
import uuid

import fsspec
import pytest
import requests
from real_inputs import DJA

from campfire import Campfire
from campfire.archive import ingest
from campfire.errors import ValidationError
from campfire.server.testing import ServerThread


def _s3():
    return fsspec.filesystem("s3", skip_instance_cache=True)


def _catalog(root, sql, params=()):
    conn = sqlite3.connect(root / "meta" / "campfire.db")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_ingest_writes_products_to_the_store_and_records_the_url(s3_archive):
    root, url, _ = s3_archive
    assert dict(_catalog(root, "SELECT key, value FROM archive_meta"))["products_url"] == url
    # nothing but the (emptied) staging area under the local products folder
    assert not [p for p in (root / "products").rglob("*.fits")]
    rows = _catalog(root, "SELECT fits_path, file_hash, file_size FROM spectra")
    assert len(rows) == 6
    fs = _s3()
    for fits_path, file_hash, file_size in rows:
        assert fits_path.startswith("products/")  # the catalog keeps the layout's relative path
        key = url.removeprefix("s3://") + "/" + fits_path.removeprefix("products/")
        data = fs.cat_file(key)
        assert len(data) == file_size and hashlib.sha256(data).hexdigest() == file_hash


def test_ingest_again_is_incremental_and_the_url_is_remembered(s3_archive):
    root, url, inputs = s3_archive
    summary = ingest(root, [str(inputs)], fit=False, scheduler="threads", progress=False)  # no URL: the recorded one
    assert summary.meta["counts"]["unchanged"] == 6 and summary.meta["counts"]["new"] == 0


def test_products_url_refuses_other_modes_and_a_second_url(s3_archive, tmp_path):
    root, url, inputs = s3_archive
    with pytest.raises(ValidationError, match="products_url: the products of .* are under"):
        ingest(root, [str(inputs)], products_url=url + "-elsewhere", fit=False, scheduler="threads", progress=False)
    with pytest.raises(ValidationError, match="copies only"):
        ingest(tmp_path / "new", [str(inputs)], products_url=url + "-b", mode="link", fit=False, progress=False)
    with pytest.raises(ValidationError, match="products_url: expected an fsspec URL"):
        ingest(tmp_path / "new2", [str(inputs)], products_url="bucket/prefix", fit=False, progress=False)


@pytest.fixture(params=["redirect", "stream"])
def s3_server(request, s3_archive):
    root, url, _ = s3_archive
    thread = ServerThread(root, products_delivery=request.param).start()
    try:
        yield thread.url, request.param, root
    finally:
        thread.stop()


def _spectrum(root):
    return _catalog(root, "SELECT spectrum_id, file_hash, file_size FROM spectra ORDER BY spectrum_id LIMIT 1")[0]


def test_file_request_redirects_or_streams_with_the_content_etag(s3_server):
    base, delivery, root = s3_server
    sid, file_hash, size = _spectrum(root)
    file_url = f"{base}/api/v1/spectra/{sid}/file"
    raw = requests.get(file_url, allow_redirects=False)
    assert raw.headers["ETag"] == f'"{file_hash}"'
    if delivery == "redirect":
        assert raw.status_code == 307
        location = raw.headers["Location"]
        assert location.startswith("http://127.0.0.1:") and "Signature=" in location and "Expires=" in location
        assert "/api/v1/" not in location  # the bytes do not pass through the API server
    else:
        assert raw.status_code == 200 and int(raw.headers["Content-Length"]) == size
        assert hashlib.sha256(raw.content).hexdigest() == file_hash
    # a Range request, followed wherever it leads, gives exactly those bytes
    part = requests.get(file_url, headers={"Range": "bytes=1000-"})
    assert part.status_code == 206
    whole = requests.get(file_url).content
    assert hashlib.sha256(whole).hexdigest() == file_hash and part.content == whole[1000:]
    # beyond the end: 416 from the server itself (it knows the size from the catalog)
    assert requests.get(file_url, headers={"Range": f"bytes={size + 10}-"}, allow_redirects=False).status_code == 416
    if delivery == "stream":
        # an If-Range of another version: the whole file, not a mix of versions
        mixed = requests.get(file_url, headers={"Range": "bytes=1000-", "If-Range": '"0000"'})
        assert mixed.status_code == 200 and mixed.content == whole
        head = requests.head(file_url)
        assert head.status_code == 200 and int(head.headers["Content-Length"]) == size and not head.content


def test_arrays_and_portal_read_from_the_store(s3_server):
    base, _, root = s3_server
    sid, _, _ = _spectrum(root)
    data = requests.get(f"{base}/api/v1/spectra/{sid}/data")
    assert data.status_code == 200 and len(data.json()["wave"]) > 100


def test_client_downloads_verify_and_resume(s3_server, tmp_path, monkeypatch):
    base, _, root = s3_server
    cf = Campfire(base_url=base, data_dir=tmp_path / "client")
    cf.sync()
    result = cf.download()
    assert result["downloaded"] == 6 and not result["failed"]
    rows = _catalog(root, "SELECT spectrum_id, fits_path, file_hash FROM spectra")
    for sid, fits_path, file_hash in rows:
        assert hashlib.sha256((tmp_path / "client" / fits_path).read_bytes()).hexdigest() == file_hash
    # resume: cut one file back to a partial .part, download again: only the rest comes, verified
    sid, fits_path, file_hash = rows[0]
    final = tmp_path / "client" / fits_path
    data = final.read_bytes()
    final.unlink()
    part = final.with_name(final.name + ".part")
    part.write_bytes(data[:len(data) // 3])
    from campfire.catalog.remote import RemoteCatalog

    seen = []
    open_file = RemoteCatalog.open_file

    def recording(self, spectrum_id, headers=None):
        resp = open_file(self, spectrum_id, headers=headers)
        seen.append((spectrum_id, dict(headers or {}), resp.status, resp.headers.get("ETag")))  # stream_get: .status
        return resp

    monkeypatch.setattr(RemoteCatalog, "open_file", recording)
    result = cf.download()
    assert result["downloaded"] == 1 and result["skipped"] == 5
    assert seen == [(sid, {"Range": f"bytes={len(data) // 3}-", "If-Range": f'"{file_hash}"'}, 206,
                     f'"{file_hash}"')]
    assert final.read_bytes() == data and not part.exists()


def test_staleness_after_reingest_of_a_changed_file(s3_archive, tmp_path):
    root, url, inputs = s3_archive
    thread = ServerThread(root).start()
    try:
        cf = Campfire(base_url=thread.url, data_dir=tmp_path / "client")
        cf.sync()
        assert cf.download()["downloaded"] == 6
        # the pipeline reprocesses one input (a header card changes the bytes), and ingests again
        from astropy.io import fits

        victim = sorted(inputs.glob("*.spec.fits"))[0]
        with fits.open(victim, mode="update") as hdul:
            hdul[0].header["REPROC"] = (1, "reprocessed for the staleness test")
        summary = ingest(root, [str(inputs)], fit=False, scheduler="threads", progress=False)
        assert summary.meta["counts"]["updated"] == 1
        cf.sync()
        stale = cf.download(stale_only=True)
        assert stale["downloaded"] == 1
        sid, fits_path, file_hash = _catalog(
            root, "SELECT s.spectrum_id, s.fits_path, s.file_hash FROM spectra s JOIN ingest_files f "
                  "USING (spectrum_id) WHERE f.source LIKE ?", (f"%{victim.name}",))[0]
        assert hashlib.sha256((tmp_path / "client" / fits_path).read_bytes()).hexdigest() == file_hash
    finally:
        thread.stop()


def test_cli_ingest_with_products_url(s3_endpoint, bucket, tmp_path, capsys):
    from campfire import cli

    one = sorted(DJA.glob("*.spec.fits"))[0]
    root = tmp_path / "cli-archive"
    assert cli.main(["archive", "ingest", str(root), str(one), "--products-url", f"s3://{bucket}/p/",
                     "--no-fit", "--scheduler", "threads", "--quiet"]) == 0
    assert "1 new" in capsys.readouterr().out
    assert dict(_catalog(root, "SELECT key, value FROM archive_meta"))["products_url"] == f"s3://{bucket}/p"
    assert len(_s3().find(f"{bucket}/p")) == 1


def test_the_redirect_is_followed_without_the_access_token(s3_archive, tmp_path):
    """The pre-signed URL is the permission: the client's bearer token never goes to the store."""
    import http.server
    import threading

    from campfire.catalog.remote.http import APIClient

    seen = []

    class Store(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            seen.append(dict(self.headers))
            self.send_response(206)
            self.send_header("ETag", '"md5-of-the-upload"')
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"abc")

        def log_message(self, *args):
            pass

    store = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Store)
    threading.Thread(target=store.serve_forever, daemon=True).start()
    try:
        api = APIClient("http://127.0.0.1:1")
        redirect = requests.Response()
        redirect.status_code = 307
        redirect.raw = io.BytesIO(b"")
        redirect.headers.update({"Location": f"http://127.0.0.1:{store.server_port}/b/k?Signature=x",
                                 "ETag": '"sha256-of-the-content"'})
        resp = api.follow_redirect(redirect, {"Range": "bytes=5-", "If-Range": '"sha"',
                                              "Authorization": "Bearer secret-token"}, what="s1")
        assert resp.content == b"abc"
        assert resp.headers["ETag"] == '"sha256-of-the-content"'  # the server's content hash, not the store's MD5
        assert resp.headers["X-Store-ETag"] == '"md5-of-the-upload"'
        sent = {k.lower(): v for k, v in seen[0].items()}
        assert sent["range"] == "bytes=5-" and "authorization" not in sent and "if-range" not in sent
    finally:
        store.shutdown()


def test_object_store_reads_are_cached_per_worker_and_verified(s3_endpoint, bucket, tmp_path, monkeypatch):
    from campfire.graphs.fetch import resolve_items
    from campfire.tasks.batch import Item, SpectrumRef
    from campfire.transfer.workers import WORKER_CACHE_ENV, cached_object

    monkeypatch.setenv(WORKER_CACHE_ENV, str(tmp_path / "cache"))
    data = sorted(DJA.glob("*.spec.fits"))[0].read_bytes()
    fs = _s3()
    fs.pipe_file(f"{bucket}/x/good.spec.fits", data)
    fs.pipe_file(f"{bucket}/x/changed.spec.fits", data[:-2880])  # another version than the catalog's
    good = SpectrumRef("good", url=f"s3://{bucket}/x/good.spec.fits", file_hash=hashlib.sha256(data).hexdigest())
    bad = SpectrumRef("bad", url=f"s3://{bucket}/x/changed.spec.fits", file_hash=good.file_hash[::-1])
    items = resolve_items([Item(good), Item(bad)], errors="record", cache=cached_object)
    cached = tmp_path / "cache" / "objects" / f"{good.file_hash}.fits"
    assert items[0].value == str(cached) and cached.read_bytes() == data
    assert items[1].failure.step == "download" and "sha256" in items[1].failure.reason
    assert [p.name for p in (tmp_path / "cache" / "objects").iterdir()] == [cached.name]  # nothing half-kept
    fs.rm_file(f"{bucket}/x/good.spec.fits")
    assert resolve_items([Item(good)], cache=cached_object)[0].value == str(cached)  # the cache answers


def test_withdrawn_spectra_leave_the_store(s3_endpoint, bucket, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for f in sorted(DJA.glob("*.spec.fits"))[:3]:
        shutil.copy(f, inputs / f.name)
    root = tmp_path / "archive"
    url = f"s3://{bucket}/w"
    assert ingest(root, [str(inputs)], products_url=url, fit=False, scheduler="threads",
                  progress=False).meta["counts"]["new"] == 3
    fs = _s3()
    assert len(fs.find(f"{bucket}/w")) == 3
    gone = sorted(inputs.iterdir())[0]
    gone.unlink()
    summary = ingest(root, [str(inputs)], withdraw_missing=True, fit=False, scheduler="threads", progress=False)
    assert summary.meta["counts"]["withdrawn"] == 1
    left = {p.rsplit("/", 1)[-1] for p in fs.find(f"{bucket}/w")}
    assert left == {p.rsplit("/", 1)[-1] for (p,) in _catalog(root, "SELECT fits_path FROM spectra")}
    assert len(left) == 2
