"""Two processes downloading into one data_dir at once (issue 15, point 9): each reports what IT fetched.

The file locks already make them take turns per file (one writer per ``.part``); the
report of each must say which files that process transferred, so the two reports add
up to the files there were — not twice that.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from campfire.client import Campfire

pytestmark = pytest.mark.server

OBSERVATION = "ember_uds_p4"


def test_two_processes_downloading_into_one_data_dir_each_report_their_own_files(server_process_factory, tmp_path):
    srv = server_process_factory(throttle=600_000)  # slow enough that the two overlap
    data_dir = tmp_path / "data"
    cf = Campfire(base_url=srv.url, data_dir=data_dir)
    cf.sync()
    total = len(cf.query_spectra(observations=[OBSERVATION], gratings=["PRISM"]))
    assert total >= 6
    command = [sys.executable, "-m", "campfire", "download", "--json", "--server", srv.url, "--data-dir", str(data_dir),
               "--observations", OBSERVATION, "--gratings", "PRISM", "--max-workers", "2"]
    env = dict(os.environ, CAMPFIRE_CONFIG_DIR=str(tmp_path / "cfg"))
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(0.5)
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    reports = []
    for proc in (first, second):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    a, b = reports
    assert a["downloaded"] + b["downloaded"] == total, reports
    assert a["downloaded"] + a["skipped"] == total and b["downloaded"] + b["skipped"] == total, reports
    assert not a["failed"] and not b["failed"]
    sizes = {r["spectrum_id"]: r["file_size"] for r in cf.query_spectra(observations=[OBSERVATION], gratings=["PRISM"])}
    assert a["bytes"] + b["bytes"] == sum(sizes.values())
    assert cf.download(observations=[OBSERVATION], gratings=["PRISM"])["downloaded"] == 0
