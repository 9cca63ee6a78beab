"""Quick-look PNGs of a run on the threads scheduler drawn in worker processes (plots_in_processes)."""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import dask
import numpy as np
import pytest

from campfire.errors import ValidationError
from campfire.graphs.scheduler import RunContext
from campfire.models import SpectrumData
from campfire.workflows.outputs import plot_batch, plots_in_processes, write_plot
from campfire.workflows.runner import MAX_PLOT_PROCESSES, PLOTS_FOR_PROCESSES, plot_processes

CALIBRATE_ALL = pathlib.Path(__file__).parents[2] / "workflows" / "calibrate_all.yaml"

# a run in a fresh process: which process drew its PNGs shows in whether matplotlib was ever imported here
RUN = ("import sys, json; from campfire.workflows.runner import run_workflow; "
       "s = run_workflow(sys.argv[1], output=sys.argv[2], scheduler='threads', workers=2, progress=False, "
       "echo=lambda _: None); "
       "print(json.dumps({'done': s['objects']['done'], 'matplotlib': 'matplotlib' in sys.modules}))")


def _spec(n=400, sid="s"):
    w = np.geomspace(0.6, 5.3, n)
    return SpectrumData(w, 1 + 0.1 * np.sin(40 * w), np.full(n, 0.1), spectrum_id=sid, count=np.full(n, 2.0))


def _pngs(outdir: pathlib.Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((outdir / "plots").glob("*.png"))}


def test_a_threads_run_draws_its_pngs_in_processes_and_they_are_the_same_bytes(demo_root, tmp_path):
    wf = tmp_path / "calibrate_all.yaml"
    wf.write_text(CALIBRATE_ALL.read_text().replace("archive: demo", f"archive: {demo_root}")
                  .replace("  has_photometry: true", "  has_photometry: true\n  limit: 12")
                  .replace("plots: 24", "plots: 6"))
    runs = {}
    for setting in ("auto", "0"):
        env = dict(os.environ, DASK_CAMPFIRE__GRAPH__PLOT_PROCESSES=setting)
        out = subprocess.run([sys.executable, "-c", RUN, str(wf), str(tmp_path / setting)], capture_output=True,
                             text=True, env=env, check=True, timeout=300).stdout
        runs[setting] = json.loads(out.strip().splitlines()[-1])
    assert runs["auto"]["done"] == runs["0"]["done"] > 0
    # the run's own process never drew: its threads handed every PNG to the worker processes
    assert runs["auto"]["matplotlib"] is False and runs["0"]["matplotlib"] is True
    drawn = _pngs(tmp_path / "auto")
    assert len(drawn) == 6 and drawn == _pngs(tmp_path / "0")


def test_a_png_whose_worker_process_died_is_drawn_in_the_thread(tmp_path):
    spec = _spec()
    expected = write_plot(str(tmp_path / "here.png"), spec, redshift=2.0)
    with plots_in_processes(1):
        from loky import get_reusable_executor

        pid = get_reusable_executor(max_workers=1).submit(os.getpid).result(timeout=60)
        assert pid != os.getpid()
        os.kill(pid, signal.SIGKILL)
        for _ in range(200):  # bounded: the kill lands within a few ms
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.01)
        path = write_plot(str(tmp_path / "after.png"), spec, redshift=2.0)
    assert pathlib.Path(path).read_bytes() == pathlib.Path(expected).read_bytes()
    assert not list(tmp_path.glob(".*.tmp*"))  # no staging file left behind


def test_a_png_that_cannot_be_written_fails_its_row_with_the_workers_error(tmp_path):
    """An error inside a worker process reaches the summary row as it would from a thread."""
    from campfire.tasks.batch import Item, SpectrumRef

    blocked = tmp_path / "out"
    blocked.mkdir()
    (blocked / "plots").write_text("a file where the plots folder should be")
    good, bad = tmp_path / "good", blocked
    items = [Item(SpectrumRef(spectrum_id=f"o{i}", object_id=f"o{i}", url="x", redshift=2.0), _spec(sid=f"o{i}"))
             for i in range(3)]
    with plots_in_processes(2):
        ok = plot_batch(items, {"o0", "o1", "o2"}, outdir=str(good), kind="objects")
        failed = plot_batch(items, {"o0", "o1"}, outdir=str(bad), kind="objects")
    assert sorted(ok) == ["o0", "o1", "o2"] and all(pathlib.Path(r["png"]).is_file() for r in ok.values())
    assert sorted(failed) == ["o0", "o1"]
    for row in failed.values():
        assert row["status"] == "failed" and row["step"] == "output"
        assert row["reason"].startswith(("FileExistsError", "NotADirectoryError")), row["reason"]


@pytest.mark.parametrize("kind, workers, plots, setting, expected", [
    ("threads", 2, 29, "auto", 2),
    ("threads", 2, PLOTS_FOR_PROCESSES - 1, "auto", 0),   # too few to pay for the processes
    ("threads", 2, PLOTS_FOR_PROCESSES, "auto", 1),       # a process gets at least PLOTS_FOR_PROCESSES
    ("threads", 64, 1000, "auto", MAX_PLOT_PROCESSES),    # ~80 MB each: a bound however many CPUs
    ("threads", 64, 12, "auto", 3),
    ("threads", 2, 29, 0, 0),
    ("threads", 2, 1, 3, 3),                              # a count applies to any threads run with PNGs
    ("threads", 2, 0, 3, 0),                              # no PNGs
    ("synchronous", 1, 29, "auto", 0),                    # one thing at a time, as asked
    ("processes", 2, 29, 3, 0),                           # the workers are processes already
    ("distributed", 2, 29, 3, 0),
])
def test_which_runs_draw_in_processes(kind, workers, plots, setting, expected, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    with dask.config.set({"campfire.graph.plot-processes": setting}):
        assert plot_processes(RunContext(kind, workers), plots) == expected


def test_one_cpu_draws_in_the_threads(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert plot_processes(RunContext("threads", 4), 29) == 0


@pytest.mark.parametrize("setting", [-1, "two", 1.5, True])
def test_a_bad_plot_processes_setting_is_refused_by_name(setting):
    with dask.config.set({"campfire.graph.plot-processes": setting}):
        with pytest.raises(ValidationError, match=r"campfire\.graph\.plot-processes: expected 'auto' or a count"):
            plot_processes(RunContext("threads", 2), 29)


@pytest.mark.parametrize("kind, workers, wall, cpu, tip", [
    ("threads", 2, 24.3, 27.0, True),        # the full demo's calibrate_all on threads: 1.1 of 2 cores
    ("threads", 2, 24.3, 40.0, False),       # the cores were busy
    ("threads", 2, 5.0, 5.5, False),         # too short to be worth a cluster's start
    ("threads", 1, 60.0, 60.0, False),       # one thread asked for
    ("synchronous", 1, 60.0, 60.0, False),
    ("distributed", 2, 60.0, 1.0, False),
])
def test_a_long_gil_bound_threads_run_says_how_to_go_faster(kind, workers, wall, cpu, tip, monkeypatch):
    from campfire.workflows.runner import threads_tip

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    text = threads_tip(RunContext(kind, workers), wall, cpu)
    assert (text is not None) == tip
    if tip:
        assert text.startswith("tip: this run kept 1.1 of 2 cores busy") and "--workers 2" in text


def test_the_tip_reaches_the_summary_of_a_run(demo_root, tmp_path, monkeypatch):
    import campfire.workflows.runner as runner

    monkeypatch.setattr(runner, "SLOW_THREADS_SECONDS", 0.0)
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 64)  # 64 threads: far more than this run keeps busy
    wf = tmp_path / "calibrate_all.yaml"
    wf.write_text(CALIBRATE_ALL.read_text().replace("archive: demo", f"archive: {demo_root}")
                  .replace("  has_photometry: true", "  has_photometry: true\n  limit: 4").replace("plots: 24", "plots: false"))
    lines = []
    threads = runner.run_workflow(wf, output=tmp_path / "t", scheduler="threads", workers=64, progress=False,
                                  echo=lines.append)
    assert threads["tip"].startswith("tip: this run kept") and "--workers 64" in threads["tip"]
    assert lines[-1].endswith(threads["tip"])
    sync = runner.run_workflow(wf, output=tmp_path / "s", scheduler="synchronous", progress=False,
                               echo=lines.append)
    assert sync["tip"] is None and "tip:" not in lines[-1]
