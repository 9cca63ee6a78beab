"""sync() of the 1,000,000-spectrum demo catalog over loopback (issue 4).

Starts ``campfire serve`` in its own process over the ``catalog`` demo (building it
first if needed), logs in as a user who is a member of every program (so all 1M
spectra are visible), then times:

* a full ``cf.sync()`` into an empty data_dir — one streamed gzip NDJSON response;
* an unchanged re-sync (incremental, ``since`` cursor);
* a re-sync after the server changed 1,000 spectra (a small delta);
* the raw export transfer alone (bytes on the wire), to split the server's part from
  the client's;
* a full sync of an anonymous client (public programs only: the filtered path).

Each phase prints wall clock and the CPU seconds of the client and of the server
process (the machine is shared; CPU time does not swing with the neighbours' load).
The server writes into CATALOG_ROOT (WAL mode, aggregates of the bench user's
visibility set, 1,000 touched spectra, a ``bench`` account): use a scratch copy.

    python bench/bench_sync.py [CATALOG_ROOT]   # default: a temp dir, built with --size catalog
"""
from __future__ import annotations

import datetime as dt
import os
import pathlib
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time


def cpu_self() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) of another process, from /proc."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Phase:
    """Wall clock plus the CPU seconds of this process (client) and of the server process."""

    def __init__(self, server_pid: int):
        self.pid = server_pid

    def __enter__(self):
        self.t, self.c, self.s = time.perf_counter(), cpu_self(), cpu_of(self.pid)
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t
        self.client = cpu_self() - self.c
        self.server = cpu_of(self.pid) - self.s

    def __str__(self) -> str:
        return f"{self.wall:.2f} s wall (CPU: client {self.client:.1f} s, server {self.server:.1f} s)"


def start_server(root: pathlib.Path, cwd: str | os.PathLike | None = None) -> tuple[subprocess.Popen, str]:
    """``campfire serve root`` in a process of its own; ``cwd``: the campfire tree it runs (``-m`` imports from there)."""
    proc = subprocess.Popen([sys.executable, "-m", "campfire", "serve", str(root), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise RuntimeError("server exited")
        m = re.search(r"running on (http://127\.0\.0\.1:\d+)", line)
        if m:
            # keep draining the server's log: a full pipe would block the server mid-request
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, m.group(1)
    raise RuntimeError("server did not start")


def main(root: str | None = None) -> None:
    import requests

    import campfire.demo
    from campfire.catalog.remote import CredentialStore
    from campfire.client import Campfire
    from campfire.server.auth import add_user

    root = pathlib.Path(root or tempfile.mkdtemp(prefix="campfire-catalog-"))
    if not (root / "meta" / "campfire.db").exists():
        t0 = time.perf_counter()
        campfire.demo.build(root, size="catalog")
        print(f"built catalog demo in {time.perf_counter() - t0:.1f} s at {root}")
    conn = sqlite3.connect(root / "meta" / "campfire.db")
    n_spec = conn.execute("SELECT count(*) FROM spectra").fetchone()[0]
    n_obj = conn.execute("SELECT count(*) FROM objects").fetchone()[0]
    n_phot = conn.execute("SELECT count(*) FROM photometry").fetchone()[0]
    programs = [r[0] for r in conn.execute("SELECT program_id FROM programs")]
    conn.close()
    print(f"catalog: {n_spec:,} spectra, {n_obj:,} objects, {n_phot:,} photometry rows, {len(programs)} programs")
    add_user(root, "bench", "bench-password", programs=programs)  # member of everything: all rows visible

    work = pathlib.Path(tempfile.mkdtemp(prefix="campfire-sync-bench-"))
    os.environ["CAMPFIRE_CONFIG_DIR"] = str(work / "config")
    proc, url = start_server(root)
    try:
        cf = Campfire(base_url=url, data_dir=work / "client")
        cf.login("bench", "bench-password")
        t0 = time.perf_counter()
        counts = cf.remote_catalog.counts()  # first request of this visibility set computes its aggregates
        print(f"server: first request for this visibility set (aggregates) {time.perf_counter() - t0:.1f} s; "
              f"visible {counts}")

        print(f"load average before the runs: {os.getloadavg()[0]:.1f} (2 cores)")
        # raw transfer: what the wire carries, without loading
        token = cf.remote_catalog.http.access_token()
        with Phase(proc.pid) as ph:
            r = requests.get(f"{url}/api/v1/export", headers={"Authorization": f"Bearer {token}"}, stream=True)
            nbytes = sum(len(c) for c in r.iter_content(1 << 20))
        print(f"export alone (server builds the snapshot, streams it; client only reads): "
              f"{nbytes / 1e6:.1f} MB gzip, {ph}")

        with Phase(proc.pid) as ph:
            result = cf.sync()
        size = (work / "client" / "meta" / "campfire.db").stat().st_size
        print(f"full sync: {ph} -> {result} ({size / 1e6:.0f} MB catalog)")

        phases = []
        for _ in range(3):
            with Phase(proc.pid) as ph:
                cf.sync()
            phases.append(ph)
        best = min(phases, key=lambda p: p.wall)
        print(f"unchanged re-sync: best {best}, worst {max(p.wall for p in phases):.2f} s wall (3 runs)")

        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        conn = sqlite3.connect(root / "meta" / "campfire.db", timeout=60)
        with conn:
            conn.execute("UPDATE spectra SET reduction_version = 'v9', updated_at = ? WHERE spectrum_id IN "
                         "(SELECT spectrum_id FROM spectra ORDER BY spectrum_id LIMIT 1000)", (stamp,))
        conn.close()
        with Phase(proc.pid) as ph:
            result = cf.sync()
        print(f"re-sync after 1,000 spectra changed on the server (incl. the server's aggregate refresh): {ph}")

        # an anonymous client: the filtered path (public programs only, per-row visibility predicates)
        anon = Campfire(base_url=url, data_dir=work / "anonymous")
        anon.remote_catalog.credentials = CredentialStore(work / "anonymous-config" / "credentials.json")
        anon.remote_catalog.counts()
        with Phase(proc.pid) as ph:
            result = anon.sync()
        print(f"full sync, anonymous (public programs only): {ph} -> {result}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
