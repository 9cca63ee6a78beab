"""Load: concurrent clients issuing mixed queries and downloads against one server process.

The CI variant runs 4 clients for a few seconds; ``--runslow`` runs 8 clients × 20 s on
threads and on processes (bench/bench_load.py prints the same figures for
bench/RESULTS.md). Both assert zero errors — every answer as expected, every file's
sha256 right — and a bound on the server's memory growth; the summary is printed
(``pytest -s``). The server runs in its own process (tests/stress/serve_process.py) so
its resident memory is its own.

Guards: the server's per-thread SQLite connections and shared state under concurrency
(a race shows up as an error or a corrupt file), and the absence of a per-request leak
(the RSS bound). Plus the keep-alive latency of both ways of serving (``ServerThread``
and ``campfire serve``): a listening socket without TCP_NODELAY cost ~44 ms per request.
"""
from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time

import pytest
import requests

from loadgen import run_load
from stresskit import API, copy_archive

pytestmark = pytest.mark.server

MB = 2 ** 20


@pytest.fixture
def load_server(server_process_factory):
    srv = server_process_factory()
    db = srv.root / "meta" / "campfire.db"
    # warm-up: imports (imaging, FITS), per-visibility aggregates, connection caches; one cutout for
    # sure (its first render imports astropy and scipy, seconds on a busy machine, while later
    # cutouts wait for the one render slot)
    assert requests.get(f"{srv.url}{API}/objects/ember_uds_p4_123456/cutout.png", timeout=120).status_code == 200
    warm = run_load(srv.url, db, clients=3, seconds=2)
    assert warm.errors == [], warm.errors[:5]
    return srv, db


def test_short_load_has_no_errors_and_bounded_memory(load_server):
    srv, db = load_server
    report = run_load(srv.url, db, clients=4, seconds=4, rss=srv.rss_bytes)
    print("\n" + report.summary())
    assert report.errors == [], report.errors[:5]
    assert report.requests >= 100
    assert {"objects", "object", "file", "data"} <= set(report.latencies)
    assert report.rss_end - report.rss_start < 64 * MB, report.summary()


@pytest.mark.slow
@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_full_load(load_server, processes):
    srv, db = load_server
    report = run_load(srv.url, db, clients=8, seconds=20, processes=processes, rss=srv.rss_bytes)
    print("\n" + report.summary())
    assert report.errors == [], report.errors[:5]
    assert report.rss_end - report.rss_start < 128 * MB, report.summary()


def _keepalive_median_ms(url: str, n: int = 15) -> float:
    with requests.Session() as s:
        s.get(f"{url}{API}/health")
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            s.get(f"{url}{API}/counts")
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def test_keep_alive_requests_do_not_wait_for_delayed_acks(demo_root, tmp_path, server_process_factory):
    # guards: TCP_NODELAY on the server's connections (ServerThread's socket is created with
    # proto=IPPROTO_TCP so asyncio sets it; uvicorn's own bind sets it too). Without it each
    # response on a reused connection waits ~40 ms for the client's delayed ACK. The bound sits
    # below that 40 ms floor but well above a busy machine's ~20 ms for /counts.
    bound = 35.0
    import pathlib

    from campfire.server.testing import running_server

    with running_server(copy_archive(pathlib.Path(demo_root), tmp_path / "a")) as url:
        assert _keepalive_median_ms(url) < bound
    srv = server_process_factory()
    assert _keepalive_median_ms(srv.url) < bound
    root = copy_archive(pathlib.Path(demo_root), tmp_path / "b")
    proc = subprocess.Popen([sys.executable, "-m", "campfire", "serve", str(root), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            m = re.search(r"running on http://127\.0\.0\.1:(\d+)", proc.stdout.readline())
            port = m and int(m.group(1))
        assert port
        assert _keepalive_median_ms(f"http://127.0.0.1:{port}") < bound
    finally:
        proc.terminate()
        proc.wait(30)
