"""Grading an object and loading an object page, on the full demo, over loopback (issue 14).

Serves a scratch copy of a ``--size full`` demo (2,450 objects, 7,200 spectra) with the
real server in this process (``campfire.server.testing.ServerThread``), logs in as an
archive admin (who may grade any object) and a program member, and times, per object of
a fixed random sample:

* **grading**: ``POST /objects/{id}/inspections`` — the stored record and the object's
  new consensus in every visibility set (target < 100 ms) — side by side with the bare
  catalog write (:func:`campfire.catalog.inspections.add_inspection` on a SQLite
  connection, no HTTP, no checks of who may grade) and with an HTTP round trip that
  does nothing (``GET /health``);
* **the object page's data**: ``GET /objects/{id}``, ``GET /spectra/{id}/data`` of each
  of its spectra and ``GET /objects/{id}/inspections``, one after the other as one
  client would (target < 300 ms), side by side with reading the same spectra's arrays
  straight from their FITS files (:func:`campfire.io.fits.read_spectrum_2d`).

Latencies are measured by the client on loopback with a keep-alive session (so they
include the HTTP round trip: an upper bound of the server's time); median and 95th
percentile of wall time, and the median CPU time of the process (server threads and
client together; on a shared machine CPU time does not swing with the neighbours'
load the way wall time does). The server writes into the copy (WAL, inspections, an
admin account).

    python bench/bench_inspections.py [FULL_DEMO_ROOT] [--objects N]
    # default root: /work/scratch/portal-full (built with `python -m campfire demo build ROOT --size full`)
"""
from __future__ import annotations

import argparse
import os
import pathlib
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time

import requests

from campfire.catalog.db import catalog_path, connect
from campfire.catalog.inspections import add_inspection
from campfire.demo import read_build_marker
from campfire.io.fits import read_spectrum_2d
from campfire.server.auth import add_user
from campfire.server.testing import ServerThread

ADMIN = ("bench-admin", "bench-admin-password")


def copy_root(src: pathlib.Path, dest: pathlib.Path) -> pathlib.Path:
    """The catalog copied, products and imaging hard-linked (cheap)."""
    dest.mkdir(parents=True)
    (dest / "meta").mkdir()
    shutil.copy2(catalog_path(src), catalog_path(dest))
    for item in src.iterdir():
        if item.is_dir() and item.name != "meta":
            shutil.copytree(item, dest / item.name, copy_function=os.link)
    return dest


def stats(samples: list[tuple[float, float]]) -> str:
    """(wall ms, CPU ms) samples → median and p95 of the wall time, median CPU time."""
    wall = sorted(w for w, _ in samples)
    p95 = wall[min(len(wall) - 1, int(round(0.95 * (len(wall) - 1))))]
    cpu = statistics.median(c for _, c in samples)
    return f"wall median {statistics.median(wall):7.1f} ms  p95 {p95:7.1f} ms   CPU median {cpu:6.1f} ms  (n={len(wall)})"


class Clock:
    """Wall and process CPU time of a block, in ms."""

    def __enter__(self):
        self.t, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.sample = ((time.perf_counter() - self.t) * 1000.0, (time.process_time() - self.c) * 1000.0)


def timed(fn) -> tuple[float, float]:
    with Clock() as clock:
        fn()
    return clock.sample


def login(url: str, user: str, password: str) -> requests.Session:
    s = requests.Session()
    r = s.post(f"{url}/api/v1/auth/token", data={"grant_type": "password", "username": user, "password": password})
    r.raise_for_status()
    s.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    return s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", nargs="?", default="/work/scratch/portal-full")
    parser.add_argument("--objects", type=int, default=60)
    args = parser.parse_args(argv)
    src = pathlib.Path(args.root)
    marker = read_build_marker(src)
    if not marker:
        print(f"{src}: not a demo archive; build one: python -m campfire demo build {src} --size full", file=sys.stderr)
        return 2
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-inspections-"))
    try:
        root = copy_root(src, tmp / "root")
        add_user(root, *ADMIN, role="admin")
        srv = ServerThread(root).start()
        try:
            return run(srv.url, root, marker, args.objects)
        finally:
            srv.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(url: str, root: pathlib.Path, marker: dict, n_objects: int) -> int:
    conn = sqlite3.connect(catalog_path(root))
    n_obj, n_spec = (conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("objects", "spectra"))
    objects = [r[0] for r in conn.execute("SELECT DISTINCT object_id FROM spectra ORDER BY object_id")]
    conn.close()
    rng = random.Random(0)
    sample = rng.sample(objects, min(n_objects, len(objects)))
    print(f"campfire inspections bench: demo {marker.get('size')} seed {marker.get('seed')} "
          f"({n_obj} objects, {n_spec} spectra); {len(sample)} objects; server in-process on loopback; "
          f"machine: {os.cpu_count()} CPUs (shared)")
    admin = login(url, *ADMIN)
    alice = login(url, "alice", "alice-demo")
    for s in (admin, alice):  # first requests of a visibility set compute its aggregates
        s.get(f"{url}/api/v1/objects", params={"limit": 1}).raise_for_status()

    # -- grading --------------------------------------------------------------------------
    post, noop, bare = [], [], []
    for i, oid in enumerate(sample):
        body = {"redshift": round(1.0 + i * 0.01, 4), "quality": 3 + i % 2, "comment": "bench"}
        r = None

        def grade():
            nonlocal r
            r = admin.post(f"{url}/api/v1/objects/{oid}/inspections", json=body)

        post.append(timed(grade))
        assert r.status_code == 201, r.text
        noop.append(timed(lambda: admin.get(f"{url}/api/v1/health").raise_for_status()))
    wconn = connect(catalog_path(root), readonly=False)
    try:
        for i, oid in enumerate(sample):
            def write():
                with wconn:
                    add_inspection(wconn, oid, "bench-bare", redshift=2.0 + i * 0.01, quality=3)
            bare.append(timed(write))
    finally:
        wconn.close()
    print("\ngrading an object (stored record + consensus in every visibility set), target < 100 ms")
    print(f"  POST /objects/{{id}}/inspections      {stats(post)}")
    print(f"  bare add_inspection (SQLite)        {stats(bare)}")
    print(f"  GET /health (HTTP round trip)       {stats(noop)}")

    # -- the object page's data -------------------------------------------------------------
    page, parts, files = [], {"object": [], "spectra data": [], "inspections": []}, []
    for oid in sample:
        with Clock() as whole:
            with Clock() as c:
                detail = alice.get(f"{url}/api/v1/objects/{oid}")
                detail.raise_for_status()
            parts["object"].append(c.sample)
            spectra = detail.json()["spectra"]
            with Clock() as c:
                for s in spectra:
                    alice.get(f"{url}/api/v1/spectra/{s['spectrum_id']}/data").raise_for_status()
            parts["spectra data"].append(c.sample)
            with Clock() as c:
                alice.get(f"{url}/api/v1/objects/{oid}/inspections").raise_for_status()
            parts["inspections"].append(c.sample)
        page.append(whole.sample)
        files.append(timed(lambda: [read_spectrum_2d(root / s["fits_path"]) for s in spectra]))
    n_spectra = statistics.median(len(alice.get(f"{url}/api/v1/objects/{oid}").json()["spectra"]) for oid in sample)
    print(f"\nthe object page's data, one client, sequential (median {n_spectra:g} spectra per object), target < 300 ms")
    print(f"  object + spectra data + inspections {stats(page)}")
    for name, values in parts.items():
        print(f"    {name:<32}  {stats(values)}")
    print(f"  bare: the spectra's FITS arrays    {stats(files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
