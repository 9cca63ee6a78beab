"""How the server answers a local product file: from memory on one worker thread, the same answer as streamed."""
from __future__ import annotations

import hashlib
import os
import stat

import anyio.to_thread
import pytest
import requests

from campfire.server.routes import files

pytestmark = pytest.mark.server

# the headers a file answer is made of (Date and Server differ from one answer to the next)
COMPARED = ("content-length", "content-range", "content-type", "etag", "last-modified", "content-disposition",
            "accept-ranges", "cache-control")


def file_url(server, sid: str) -> str:
    return f"{server.url}/api/v1/spectra/{sid}/file"


def test_a_small_file_takes_one_worker_thread_hop(server, ids, monkeypatch):
    hops = []
    run_sync = anyio.to_thread.run_sync

    async def counting(func, *args, **kwargs):
        hops.append(getattr(func, "func", func).__name__)  # starlette passes a functools.partial
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    r = requests.get(file_url(server, ids["example_spectrum"]))
    assert r.status_code == 200 and r.headers["etag"] == f'"{hashlib.sha256(r.content).hexdigest()}"'
    # caller, catalog row, open, read: one hop (Starlette's FileResponse took 5 more: stat, open, read, close
    # and a sync dependency's)
    assert hops == ["_spectrum_file"]


def requests_of(digest: str, last_modified: str) -> list[tuple[str, dict]]:
    return [("GET", {}), ("GET", {"Range": "bytes=1000-"}), ("GET", {"Range": "bytes=0-9"}),
            ("GET", {"Range": "bytes=-100"}), ("GET", {"Range": "bytes=1000-", "If-Range": f'"{digest}"'}),
            ("GET", {"Range": "bytes=1000-", "If-Range": last_modified}),
            ("GET", {"Range": "bytes=1000-", "If-Range": '"old"'}), ("HEAD", {}),
            ("HEAD", {"Range": "bytes=1000-"})]


def test_answers_from_memory_equal_starlettes_file_response(server, ids, monkeypatch):
    url = file_url(server, ids["example_spectrum"])
    first = requests.get(url)
    digest, last_modified = first.headers["etag"].strip('"'), first.headers["last-modified"]
    answers = {}
    for inline_max in (files._INLINE_MAX, 0):  # 0: every file goes to _FileResponse
        monkeypatch.setattr(files, "_INLINE_MAX", inline_max)
        answers[inline_max] = [requests.request(method, url, headers=headers)
                               for method, headers in requests_of(digest, last_modified)]
    for (method, headers), mine, theirs in zip(requests_of(digest, last_modified), *answers.values()):
        assert (mine.status_code, mine.content) == (theirs.status_code, theirs.content), (method, headers)
        assert {h: mine.headers.get(h) for h in COMPARED} == {h: theirs.headers.get(h) for h in COMPARED}, \
            (method, headers)
    plain, tail, head10, suffix, by_etag, by_date, stale, head, head_range = answers[files._INLINE_MAX]
    assert plain.content == first.content and int(plain.headers["content-length"]) == len(first.content)
    assert (tail.status_code, tail.content) == (206, first.content[1000:])
    assert (head10.status_code, head10.content) == (206, first.content[:10])
    assert (suffix.status_code, suffix.content) == (206, first.content[-100:])
    assert by_etag.content == by_date.content == first.content[1000:]
    assert (stale.status_code, stale.content) == (200, first.content)
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == str(len(first.content))
    assert head_range.status_code == 206 and head_range.headers["content-length"] == str(len(first.content) - 1000)


def test_a_file_shorter_than_its_fstat_is_a_503_never_a_short_answer(server, ids, monkeypatch):
    url = file_url(server, ids["example_spectrum"])
    size = len(requests.get(url).content)
    real_fstat = os.fstat

    def fstat(fd):  # the file loses its tail between the fstat and the read (rewritten in place)
        st = real_fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_size == size:
            return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid,
                                   size + 10, int(st.st_atime), int(st.st_mtime), int(st.st_ctime)))
        return st

    monkeypatch.setattr(files.os, "fstat", fstat)
    r = requests.get(url)
    assert r.status_code == 503 and r.json()["error"] == "file_changed" and r.headers["retry-after"] == "1"


def test_a_file_removed_after_the_lookup_is_a_404(server, ids, monkeypatch):
    archive = server.thread.app.state.archive
    monkeypatch.setattr(archive, "file_path", lambda fits_path: archive.root / "products" / "gone.fits")
    r = requests.get(file_url(server, ids["example_spectrum"]))
    assert r.status_code == 404 and r.json()["error"] == "not_found"
