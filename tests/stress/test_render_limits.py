"""Cutouts within limits (issue 15, point 1): renders at once, requests waiting, a cache, the size range.

The server here renders at most one cutout at a time with one request waiting at most
half a second; concurrency is observed by wrapping the render function the server calls.
"""
from __future__ import annotations

import pathlib
import threading
import time

import dask
import pytest
import requests

import campfire.server.cutouts as cutouts
from campfire.imaging import SIZE_RANGE
from stresskit import PeakRSS, Poller, at_once, copy_archive, start_server

pytestmark = pytest.mark.server

OBJ = "ember_uds_p4_123456"


@pytest.fixture
def limited(demo_root, tmp_path, monkeypatch):
    """A server rendering one cutout at a time (one more may wait 0.5 s), and its render log."""
    log = {"running": 0, "peak": 0, "calls": []}
    lock = threading.Lock()
    real = cutouts.make_cutout_png

    def watched(root, object_id, fov, size=None):
        with lock:
            log["running"] += 1
            log["peak"] = max(log["peak"], log["running"])
            log["calls"].append((object_id, fov, size))
        try:
            return real(root, object_id, fov, size)
        finally:
            with lock:
                log["running"] -= 1

    monkeypatch.setattr(cutouts, "make_cutout_png", watched)
    with dask.config.set({"campfire.server.render-concurrency": 1, "campfire.server.render-queue": 1,
                          "campfire.server.render-wait": 0.5}):
        srv = start_server(copy_archive(pathlib.Path(demo_root), tmp_path / "root"))
    yield srv, log
    srv.thread.stop()


def _get(url: str, **params) -> requests.Response:
    return requests.get(f"{url}/api/v1/objects/{OBJ}/cutout.png", params=params, timeout=300)


def test_renders_beyond_the_limit_wait_then_get_503_with_retry_after(limited):
    srv, log = limited
    # distinct fields of view: no two requests share a cached answer
    answers = at_once(6, lambda i: _get(srv.url, fov=20 + i / 10))
    codes = [r.status_code for r in answers]
    assert set(codes) <= {200, 503} and 1 <= codes.count(200) < 6, codes
    assert log["peak"] == 1  # never two renders at once
    busy = [r for r in answers if r.status_code == 503]
    assert all(int(r.headers["Retry-After"]) >= 1 and r.json()["error"] == "busy" for r in busy)
    assert all(r.content[:8] == b"\x89PNG\r\n\x1a\n" for r in answers if r.status_code == 200)
    # the refused ones succeed when asked again
    again = _get(srv.url, fov=20 + codes.index(503) / 10)
    assert again.status_code == 200


def test_identical_cutouts_render_once(limited):
    srv, log = limited
    # twelve at once, with room for one render and one waiting request: they share the one render
    answers = at_once(12, lambda i: _get(srv.url, fov=7.5, size=300))
    assert [r.status_code for r in answers] == [200] * 12
    assert len({r.content for r in answers}) == 1 and len(log["calls"]) == 1
    # and later ones come from the cache
    assert _get(srv.url, fov=7.5, size=300).content == answers[0].content and len(log["calls"]) == 1
    assert _get(srv.url, fov=7.5, size=200).status_code == 200 and len(log["calls"]) == 2


def test_other_endpoints_answer_while_renders_queue(limited):
    srv, log = limited
    # warm: the first render imports astropy and scipy (a one-off that holds the import lock)
    assert _get(srv.url, fov=2).status_code == 200 and requests.get(f"{srv.url}/api/v1/counts").ok
    t0 = time.monotonic()
    with Poller(f"{srv.url}/api/v1/counts") as poller:
        at_once(6, lambda i: _get(srv.url, fov=30 + i / 10))
    burst = time.monotonic() - t0
    latencies = poller.latencies
    assert poller.failures == 0
    # blocked behind the queue, every poll during the burst would wait for renders; one poll may meet
    # a render holding the GIL in a C call (Agg, ~0.35 s once in a CI run), never the queue's length
    slowest = sorted(latencies)
    assert len(slowest) >= 3 and slowest[-2] < 0.25 * burst and slowest[-1] < 0.6 * burst, (burst, slowest[-3:])


def test_size_range_is_imaging_s_and_documented(limited):
    server, _ = limited
    lo, hi = SIZE_RANGE
    for bad in (lo - 1, 8, hi + 1, 4096):
        r = _get(server.url, size=bad)
        assert r.status_code == 400 and f"{lo:g}, {hi:g}" in r.json()["message"], r.text
    assert _get(server.url, size=lo, fov=2).status_code == 200
    doc = requests.get(f"{server.url}/api/v1/openapi.json").json()
    (size,) = [p for p in doc["paths"]["/api/v1/objects/{object_id}/cutout.png"]["get"]["parameters"]
               if p["name"] == "size"]
    assert (size["schema"]["minimum"], size["schema"]["maximum"]) == SIZE_RANGE


def test_wide_cutouts_at_once_stay_within_bounded_memory(server_process_factory):
    # a server in its own process (its RSS is its own) with the default limits
    srv = server_process_factory()
    url = f"{srv.url}/api/v1/objects/{OBJ}/cutout.png"
    assert requests.get(url, params={"fov": 2}, timeout=120).status_code == 200  # warm (imports)
    with PeakRSS(srv) as rss:
        # five distinct wide fields (no cache hits), each ~450 MB when rendered unbounded, all at once
        answers = at_once(5, lambda i: requests.get(url, params={"fov": 50 + i / 10, "size": 2048}, timeout=600))
    assert {r.status_code for r in answers} <= {200, 503} and any(r.status_code == 200 for r in answers)
    grew = (rss.peak - rss.start) / 2**20
    assert grew < 500, f"server RSS grew by {grew:.0f} MB rendering five 50-arcsec cutouts"
