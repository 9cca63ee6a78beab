"""download() of 1,000 demo FITS files over loopback: MB/s, files/s, and 8 connections vs 1 (issue 4).

Serves a copy of the ``full`` demo archive (catalog copied, FITS files hard-linked)
with ``campfire serve`` in its own process, syncs a fresh client, and downloads the
same 1,000 spectra twice into empty data_dirs: with ``max_workers=8`` and with
``max_workers=1``. Every file is streamed to a temporary name, sha256-verified and
renamed, exactly as ``cf.download()`` does.

    python bench/bench_download.py [FULL_DEMO_ROOT]   # default: campfire.demo.ensure('full')
"""
from __future__ import annotations

import os
import pathlib
import shutil
import sys
import tempfile
import time

from bench_sync import cpu_of, cpu_self, start_server  # the same harness (this folder is on sys.path)

N_FILES = 1000


def copy_archive(src: pathlib.Path, dest: pathlib.Path) -> None:
    """Catalog copied (the server may write aggregates and tags), files hard-linked (cheap)."""
    (dest / "meta").mkdir(parents=True)
    shutil.copy2(src / "meta" / "campfire.db", dest / "meta" / "campfire.db")
    shutil.copytree(src / "products", dest / "products", copy_function=os.link)


def run(url: str, work: pathlib.Path, name: str, workers: int, server_pid: int) -> tuple[float, int, int, str]:
    from campfire.catalog.filters import build_query
    from campfire.client import Campfire
    from campfire.graphs.download import download_files

    cf = Campfire(base_url=url, data_dir=work / name)
    cf.sync()
    query = build_query("spectra", limit=N_FILES, sort="spectrum_id")  # the same 1,000 files both times
    t0, c0, s0 = time.perf_counter(), cpu_self(), cpu_of(server_pid)
    result = download_files(cf.remote_catalog, cf.data_dir, query, max_workers=workers)
    seconds = time.perf_counter() - t0
    cpu = f"CPU: client {cpu_self() - c0:.1f} s, server {cpu_of(server_pid) - s0:.1f} s"
    assert result["downloaded"] == N_FILES and not result["failed"], result
    return seconds, result["bytes"], result["downloaded"], cpu


def main(root: str | None = None) -> None:
    import campfire.demo

    src = pathlib.Path(root) if root else campfire.demo.ensure("full")
    work = pathlib.Path(tempfile.mkdtemp(prefix="campfire-download-bench-"))
    os.environ["CAMPFIRE_CONFIG_DIR"] = str(work / "config")
    try:
        archive = work / "archive"
        copy_archive(src, archive)
        proc, url = start_server(archive)
        try:
            print(f"load average before the runs: {os.getloadavg()[0]:.1f} (2 cores)")
            t8, nbytes, n, cpu8 = run(url, work, "parallel", workers=8, server_pid=proc.pid)
            t1, nbytes1, _, cpu1 = run(url, work, "single", workers=1, server_pid=proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        assert nbytes == nbytes1
        mb = nbytes / 1e6
        print(f"{n} files, {mb:.0f} MB (mean {mb / n * 1000:.0f} kB), loopback, streamed to .part, sha256-verified")
        print(f"max_workers=8: {t8:.1f} s = {mb / t8:.0f} MB/s, {n / t8:.0f} files/s ({cpu8})")
        print(f"max_workers=1: {t1:.1f} s = {mb / t1:.0f} MB/s, {n / t1:.0f} files/s ({cpu1})")
        print(f"8 connections / 1 connection: {t1 / t8:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
