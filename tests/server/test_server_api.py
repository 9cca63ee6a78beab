"""The HTTP API itself: endpoints, OpenAPI, files (ETag, Range), and bad requests → 4xx JSON, never 500."""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import string

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.server


def api(server, path):
    return f"{server.url}/api/v1{path}"


def test_openapi_document_lists_every_resource(server):
    r = requests.get(api(server, "/openapi.json"))
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in ("/api/v1/objects", "/api/v1/spectra", "/api/v1/objects/{object_id}", "/api/v1/spectra/{spectrum_id}",
                 "/api/v1/spectra/{spectrum_id}/file", "/api/v1/spectra/{spectrum_id}/data",
                 "/api/v1/spectra/{spectrum_id}/redshift-fit", "/api/v1/objects/{object_id}/cutout.png",
                 "/api/v1/objects/{object_id}/shutters", "/api/v1/metadata", "/api/v1/programs", "/api/v1/fields",
                 "/api/v1/gratings", "/api/v1/observations", "/api/v1/tags", "/api/v1/export", "/api/v1/auth/token"):
        assert path in paths, path
    # the filter vocabulary is documented on the list endpoints
    names = {p["name"] for p in paths["/api/v1/objects"]["get"]["parameters"]}
    assert {"fields", "cone_search", "dq_flags", "limit", "offset", "sort", "sort_dir"} <= names
    assert requests.get(api(server, "/docs")).status_code == 200


def test_list_paging_and_total(server):
    r = requests.get(api(server, "/objects"), params={"limit": 7, "offset": 3, "sort": "redshift", "sort_dir": "desc"})
    body = r.json()
    assert r.status_code == 200 and body["limit"] == 7 and body["offset"] == 3 and len(body["rows"]) == 7
    full = requests.get(api(server, "/objects"), params={"limit": 10, "sort": "redshift", "sort_dir": "desc"}).json()
    assert body["rows"] == full["rows"][3:10]
    assert body["total"] == full["total"] > 10
    # default page is campfire.api.page-size (1000)
    assert requests.get(api(server, "/spectra")).json()["limit"] == 1000


def test_spectrum_file_etag_is_the_content_hash_and_range_resumes(server, ids):
    sid = ids["example_spectrum"]
    r = requests.get(api(server, f"/spectra/{sid}/file"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/fits"
    digest = hashlib.sha256(r.content).hexdigest()
    assert r.headers["etag"] == f'"{digest}"'
    row = requests.get(api(server, f"/spectra/{sid}")).json()
    assert row["file_hash"] == digest and row["file_size"] == len(r.content)
    part = requests.get(api(server, f"/spectra/{sid}/file"), headers={"Range": "bytes=1000-", "If-Range": f'"{digest}"'})
    assert part.status_code == 206 and part.content == r.content[1000:]
    assert part.headers["content-range"] == f"bytes 1000-{len(r.content) - 1}/{len(r.content)}"
    # a stale validator gets the whole (new) file, not a spliced one
    whole = requests.get(api(server, f"/spectra/{sid}/file"), headers={"Range": "bytes=1000-", "If-Range": '"old"'})
    assert whole.status_code == 200 and whole.content == r.content
    assert requests.get(api(server, f"/spectra/{sid}/file"), headers={"If-None-Match": f'"{digest}"'}).status_code == 304
    head = requests.head(api(server, f"/spectra/{sid}/file"))
    assert head.status_code == 200 and head.headers["etag"] == f'"{digest}"'
    # several ranges: one multipart/byteranges answer, a media type the OpenAPI document declares
    multi = requests.get(api(server, f"/spectra/{sid}/file"), headers={"Range": "bytes=0-9,100-109"})
    media = multi.headers["content-type"].split(";")[0]
    assert multi.status_code == 206 and media == "multipart/byteranges"
    assert r.content[:10] in multi.content and r.content[100:110] in multi.content
    doc = requests.get(api(server, "/openapi.json")).json()
    assert media in doc["paths"]["/api/v1/spectra/{spectrum_id}/file"]["get"]["responses"]["206"]["content"]


def test_spectrum_data_and_redshift_fit_are_json_with_nulls(server, ids):
    sid = ids["example_spectrum"]
    data = requests.get(api(server, f"/spectra/{sid}/data")).json()
    assert set(data) == {"wave", "fnu", "fnu_err", "snr_2d", "n_spatial", "n_wave", "profile", "profile_fit",
                         "profile_pix"}
    assert len(data["snr_2d"]) == data["n_spatial"] and len(data["snr_2d"][0]) == data["n_wave"]
    text = requests.get(api(server, f"/spectra/{sid}/data")).text
    assert "NaN" not in text and "Infinity" not in text  # strict JSON: non-finite → null
    r = requests.get(api(server, f"/spectra/{sid}/redshift-fit"))
    assert r.status_code in (200, 404)
    if r.status_code == 200:
        assert {"redshift", "chi2_min", "confidence", "z_grid", "chi2_grid", "model_wave", "model_fnu"} <= set(r.json())
    else:
        assert r.json()["error"] == "not_found"


def test_cutout_and_shutters(server, ids):
    oid = ids["example_object"]
    r = requests.get(api(server, f"/objects/{oid}/cutout.png"), params={"fov": 3.2})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    sh = requests.get(api(server, f"/objects/{oid}/shutters"), params={"fov": 3.2})
    assert sh.status_code == 200 and sh.json()["object_id"] == oid and sh.json()["shutters"]


BAD_REQUESTS = [
    ("GET", "/objects?sort=password", 400),
    ("GET", "/objects?sort=object_id;DROP TABLE objects", 400),
    ("GET", "/objects?sort_dir=sideways", 400),
    ("GET", "/objects?fields=atlantis", 400),
    ("GET", "/objects?gratings=G999X", 400),
    ("GET", "/objects?redshift_range=5,1", 400),
    ("GET", "/objects?redshift_range=nan,1", 400),
    ("GET", "/objects?redshift_range=1", 400),
    ("GET", "/objects?redshift_quality=7", 400),
    ("GET", "/objects?cone_search=400,0,1", 400),
    ("GET", "/objects?cone_search=1,2", 400),
    ("GET", "/objects?dq_flags=~(CHIP_GAP|LOW_SNR)", 400),
    ("GET", "/objects?dq_flags=NOT_A_FLAG", 400),
    ("GET", "/objects?limit=100000000", 400),
    ("GET", "/objects?limit=-1", 400),
    ("GET", "/objects?limit=ten", 400),
    ("GET", "/objects?offset=-5", 400),
    ("GET", "/objects?inspected_only=maybe", 400),
    ("GET", "/objects?staleness=true", 400),
    ("GET", "/objects?tags=not-a-tag", 400),
    ("GET", "/objects?programs=999999", 400),
    ("GET", "/objects?unknown=1", 400),
    ("GET", "/objects?count=perhaps", 400),
    ("GET", "/spectra?sort=redshift", 400),
    ("GET", "/objects/nope_000", 404),
    ("GET", "/objects/ember_uds_p4_123456?extra=1", 400),
    ("GET", "/objects/..%2F..%2Fetc%2Fpasswd", 404),
    ("GET", "/spectra/..%2F..%2Fmeta%2Fauth.db/file", 404),
    ("GET", "/spectra/%2E%2E/file", 400),
    ("GET", "/spectra/x%00y/file", 400),
    ("GET", "/spectra/ember_uds_p4_prism_clear_123456/file?path=../../meta/auth.db", 400),
    ("GET", "/objects/ember_uds_p4_123456/cutout.png?fov=-1", 400),
    ("GET", "/objects/ember_uds_p4_123456/cutout.png?fov=abc", 400),
    ("GET", "/objects/ember_uds_p4_123456/cutout.png?size=1.5", 400),
    ("GET", "/objects/ember_uds_p4_123456/shutters?fov=1e9", 400),
    ("GET", "/export?since=garbage", 400),
    ("GET", "/export?other=1", 400),
    ("POST", "/objects", 405),
    ("GET", "/no/such/endpoint", 404),
    ("POST", "/tags", 401),
    ("POST", "/auth/token", 400),
]


@pytest.mark.parametrize("method,path,status", BAD_REQUESTS)
def test_bad_requests_are_4xx_json_with_a_message(server, method, path, status):
    r = requests.request(method, server.url + "/api/v1" + path)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["message"] and isinstance(body["message"], str)


def test_range_errors_are_json(server, ids):
    url = api(server, f"/spectra/{ids['example_spectrum']}/file")
    r = requests.get(url, headers={"Range": "pages=1-2"})
    assert r.status_code == 400 and "Range" in r.json()["message"]
    r = requests.get(url, headers={"Range": "bytes=999999999-"})
    assert r.status_code == 416 and r.headers["content-range"].startswith("bytes */")
    r = requests.get(url, headers={"Range": "bytes=50-10"})
    assert r.status_code == 400


def test_malformed_and_forged_tokens_are_401(server):
    for header in ("Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt", "Bearer " + "x" * 5000,
                   "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9."):
        r = requests.get(api(server, "/objects"), headers={"Authorization": header})
        assert r.status_code == 401, header
        assert r.json()["message"]


def test_fits_path_outside_the_root_is_never_served(fresh_server, ids):
    # a poisoned catalog row must not turn into a file read outside the archive
    sid = ids["public_spectrum"]
    fresh_server.sql("UPDATE spectra SET fits_path = '../../../../etc/passwd' WHERE spectrum_id = ?", (sid,))
    r = requests.get(f"{fresh_server.url}/api/v1/spectra/{sid}/file")
    assert r.status_code == 404 and "root" not in r.text and "passwd" not in r.text
    fresh_server.sql("UPDATE spectra SET fits_path = '/etc/passwd' WHERE spectrum_id = ?", (sid,))
    assert requests.get(f"{fresh_server.url}/api/v1/spectra/{sid}/file").status_code == 404
    fresh_server.sql("UPDATE spectra SET fits_path = 'meta/auth.db' WHERE spectrum_id = ?", (sid,))
    r = requests.get(f"{fresh_server.url}/api/v1/spectra/{sid}/file")
    # inside the root but not under products/: refused too
    assert r.status_code == 404 and not r.content.startswith(b"SQLite format 3")
    fresh_server.sql("UPDATE spectra SET fits_path = 'products/../meta/campfire.db' WHERE spectrum_id = ?", (sid,))
    assert requests.get(f"{fresh_server.url}/api/v1/spectra/{sid}/file").status_code == 404


_param_names = st.sampled_from(["fields", "programs", "gratings", "observations", "redshift_range", "redshift_quality",
                                "max_snr_range", "dq_flags", "tags", "inspected_only", "has_photometry", "search",
                                "cone_search", "limit", "offset", "sort", "sort_dir", "count"])
_values = st.one_of(
    st.text(alphabet=string.printable, max_size=30),
    st.sampled_from(["", ",", "1,2", "2,1", "-1", "1e400", "nan", "inf", "~CHIP_GAP&~LOW_SNR", "CHIP_GAP|LOW_SNR",
                     "~(CHIP_GAP)", "cosmos", "PRISM", "lrd", "0,0,0", "150,2,30", "true", "false", "10001",
                     "object_id", "asc", "DESC", "%", "_", "'; --", "\u00e9", "1" * 40]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["objects", "spectra"]), params=st.dictionaries(_param_names, _values, max_size=4))
def test_fuzzed_query_strings_never_500(server, kind, params):
    r = requests.get(api(server, f"/{kind}"), params=params)
    assert r.status_code in (200, 400), (params, r.status_code, r.text[:300])
    json.loads(r.text)


def test_auth_db_is_separate_and_user_only(server):
    auth_db = server.root / "meta" / "auth.db"
    assert auth_db.exists() and (os.stat(auth_db).st_mode & 0o777) == 0o600
    conn = sqlite3.connect(server.db)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()
    assert not {"users", "memberships", "refresh_tokens"} & tables
    conn = sqlite3.connect(auth_db)
    try:
        hashes = [r[0] for r in conn.execute("SELECT password_hash FROM users")]
    finally:
        conn.close()
    assert hashes and all(h.startswith(("bcrypt$", "pbkdf2_sha256$")) for h in hashes)
    assert not any("alice-demo" in h or "bob-demo" in h for h in hashes)


def test_campfire_serve_cli_starts_a_real_server(archive_copy):
    """``campfire serve ROOT --port 0`` in its own process: it binds, answers, and stops on SIGTERM."""
    import re
    import subprocess
    import sys
    import time

    root = archive_copy
    proc = subprocess.Popen([sys.executable, "-m", "campfire", "serve", str(root), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, DASK_CAMPFIRE__SERVER__BCRYPT_ROUNDS="4"))
    try:
        deadline = time.monotonic() + 60
        lines = []
        port = None
        while port is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "".join(lines)
            lines.append(line)
            m = re.search(r"running on http://127\.0\.0\.1:(\d+)", line)
            port = int(m.group(1)) if m else None
        assert port, "".join(lines)
        assert any("alice/alice-demo" in line for line in lines)
        url = f"http://127.0.0.1:{port}/api/v1"
        assert requests.get(f"{url}/health").json()["status"] == "ok"
        r = requests.post(f"{url}/auth/token", data={"grant_type": "password", "username": "bob", "password": "bob-demo"})
        assert r.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_runs_blas_on_one_thread_for_the_refits(demo_root, monkeypatch):
    # the refits run on the server's threads, where fit_redshift cannot limit BLAS itself
    import uvicorn
    from threadpoolctl import threadpool_info, threadpool_limits

    from campfire.server.app import serve

    def blas_threads():
        return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

    seen = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: seen.append(blas_threads()))
    with threadpool_limits(2, user_api="blas"):  # given back to this process after the test
        assert blas_threads() == 2
        serve(demo_root, port=0)
    assert seen == [1]
