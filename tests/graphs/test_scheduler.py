"""Scheduler spellings, run contexts, configuration precedence (package defaults < deployment
file < user settings / DASK_CAMPFIRE__* env vars), and config resolved at build time."""
from __future__ import annotations

import time

import dask
import numpy as np
import pytest

from campfire import config
from campfire.errors import ValidationError
from campfire.graphs.scheduler import deployment_config, find_deployment_file, parse_scheduler, run_context


@pytest.mark.parametrize(
    "spec, workers, expected",
    [
        ("threads", None, ("threads", None)),
        ("threads", 3, ("threads", 3)),
        ("processes", 2, ("processes", 2)),
        ("synchronous", None, ("synchronous", None)),
        ("sync", None, ("synchronous", None)),
        ("local:4", None, ("local", 4)),
        ("LOCAL:2", None, ("local", 2)),
        ("tcp://10.0.0.5:8786", None, ("address", "tcp://10.0.0.5:8786")),
        ("tls://sched.example.org:8786", None, ("address", "tls://sched.example.org:8786")),
        (None, 3, ("local", 3)),
    ],
)
def test_parse_scheduler(spec, workers, expected):
    assert parse_scheduler(spec, workers) == expected


@pytest.mark.parametrize("spec", ["gpu", "local:0", "local:x", "", 5])
def test_bad_scheduler_spellings_are_named(spec):
    with pytest.raises(ValidationError, match="scheduler"):
        parse_scheduler(spec)


def test_default_scheduler_comes_from_config():
    assert parse_scheduler(None) == ("threads", None)
    with dask.config.set({"campfire.graph.scheduler": "processes", "campfire.graph.workers": 2}):
        assert parse_scheduler(None) == ("processes", 2)


def test_local_run_contexts_set_the_dask_scheduler():
    import dask.local
    import dask.multiprocessing
    import dask.threaded

    gets = {"threads": dask.threaded.get, "synchronous": dask.local.get_sync, "processes": dask.multiprocessing.get}
    for kind, get in gets.items():
        with run_context(kind, workers=2) as ctx:
            assert ctx.kind == kind and ctx.client is None
            # the function, not its name: dask then does not import distributed to look for a Client
            assert dask.config.get("scheduler") is get
            assert ctx.compute(dask.delayed(sum)([1, 2, 3])) == (6,)
            # what .compute() on a collection inside the block uses
            assert dask.base.get_scheduler() is get


def test_a_threads_run_context_never_imports_distributed():
    import subprocess
    import sys

    code = ("import sys, dask; from campfire.graphs.scheduler import run_context\n"
            "with run_context('threads', workers=2) as ctx:\n"
            "    assert ctx.compute(dask.delayed(sum)([1, 2])) == (3,) and dask.delayed(sum)([3]).compute() == 3\n"
            "print('distributed' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"


def test_deployment_file_sits_between_package_defaults_and_user_settings(tmp_path, monkeypatch):
    f = tmp_path / "dask-config.yaml"
    f.write_text("campfire:\n  graph:\n    scheduler: local:2\n    batch-size: 50\n    split-every: 4\n")
    monkeypatch.chdir(tmp_path)
    assert find_deployment_file() == f
    assert deployment_config(f) == {"campfire.graph.scheduler": "local:2", "campfire.graph.batch-size": 50,
                                    "campfire.graph.split-every": 4}
    # what the user set (dask.config.set, env vars, their own YAML) wins over the deployment file
    with dask.config.set({"campfire.graph.batch-size": 7}):
        settings = deployment_config(f)
        assert "campfire.graph.batch-size" not in settings and settings["campfire.graph.split-every"] == 4
    # DASK_CAMPFIRE__* variables land on the same keys
    env = dask.config.collect_env({"DASK_CAMPFIRE__GRAPH__BATCH_SIZE": "13"})
    with dask.config.set(env):
        assert config.get("graph.batch-size") == 13
        assert "campfire.graph.batch-size" not in deployment_config(f)


def test_the_shipped_deployment_file_is_valid(monkeypatch):
    import pathlib

    import campfire

    root = pathlib.Path(campfire.__file__).parents[1]
    f = root / "dask-config.yaml"
    assert f.exists(), f  # the deployment's file ships at the top of the checkout
    settings = deployment_config(f)
    kind, _ = parse_scheduler(settings.get("campfire.graph.scheduler", "threads"))
    assert kind in ("threads", "processes", "synchronous", "local", "address")


def test_config_is_resolved_when_the_graph_is_built(cf):
    """Workers never read dask.config: values are bound into the tasks at build time."""
    with dask.config.set({"campfire.graph.batch-size": 3, "campfire.stack.rest-window": [0.5, 0.6]}):
        lazy = cf.lazy_spectra(tags=["lrd"], has_photometry=True)
        pop = lazy.stack(by="all", rest_frame=True, grid=np.geomspace(0.1, 1.0, 300))
    assert max(len(p) for p in lazy.parts) <= 3 or len({r.object_id for r in lazy.parts[0]}) == 1
    got = pop.compute()  # computed outside the config block: still the window of build time
    assert got.meta["norm_window"] == [0.5, 0.6]


def test_a_setting_made_before_the_defaults_are_registered_leaves_them_in_place():
    # import campfire (no Dask yet), then a dask.config.set block of one campfire key: on exit
    # Dask restores the "campfire" key it found absent — by removing it, defaults and all
    import subprocess
    import sys

    script = (
        "import campfire\n"
        "import dask.config\n"
        "from campfire import config\n"
        "assert not config._registered\n"
        "with dask.config.set({'campfire.download.max-workers': 3}):\n"
        "    assert config.get('download.max-workers') == 3\n"
        "print(config.get('download.max-workers'), config.get('download.chunk-size'))\n"
        "dask.config.refresh()\n"
        "print(config.get('download.max-workers'))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.split("\n")[:2]
    workers, chunk = first.split()
    assert int(workers) == config.get("download.max-workers") != 3 and int(chunk) > 0
    assert int(second) == int(workers)


def test_a_local_cluster_config_turns_off_the_profiler_unless_the_user_changed_it():
    from campfire.graphs.scheduler import local_cluster_config

    assert local_cluster_config() == {"distributed.worker.profile.enabled": False,
                                      "distributed.admin.tick.interval": "200ms",
                                      "distributed.worker.memory.monitor-interval": "500ms",
                                      "distributed.scheduler.worker-saturation": 1.0}
    with dask.config.set({"campfire.graph.worker-profile": True, "campfire.graph.tick-interval": "1s",
                          "campfire.graph.memory-monitor-interval": "100ms", "campfire.graph.worker-saturation": 1.5}):
        assert local_cluster_config() == {"distributed.worker.profile.enabled": True,
                                          "distributed.admin.tick.interval": "1s",
                                          "distributed.worker.memory.monitor-interval": "100ms",
                                          "distributed.scheduler.worker-saturation": 1.5}
    # a distributed key the user gave a value of their own wins over campfire's choice
    with dask.config.set({"distributed.admin.tick.interval": "50ms",
                          "distributed.worker.memory.monitor-interval": "250ms",
                          "distributed.scheduler.worker-saturation": 2.0}):
        assert local_cluster_config() == {"distributed.worker.profile.enabled": False}


@pytest.mark.cluster
def test_the_local_cluster_campfire_starts_has_no_statistical_profiler_on_its_workers():
    """``local:N``'s workers get campfire's settings (the nannies pass them to the worker processes):
    distributed's profiler, a stack sample every 10 ms, costs each worker ~5 % of its CPU in a run."""
    from campfire.graphs.scheduler import local_cluster

    def worker_settings(dask_worker):
        monitor = dask_worker.periodic_callbacks.get("memory_monitor")
        return ("profile" in dask_worker.periodic_callbacks, dask.config.get("distributed.admin.tick.interval"),
                monitor.callback_time if monitor is not None else None)

    with dask.config.set({"campfire.graph.dashboard-address": None}), run_context("local:1") as ctx:
        assert set(ctx.client.run(worker_settings).values()) == {(False, "200ms", 500)}
        nannies = ctx.client.cluster.workers.values()
        assert [n.periodic_callbacks["memory_monitor"].callback_time for n in nannies] == [500]
        # worker saturation 1.0: the one-thread worker holds the batch it runs, the others wait on
        # the scheduler for whichever worker frees first (distributed's 1.1 would send it two)
        scheduler = ctx.client.cluster.scheduler
        futures = ctx.client.map(time.sleep, [0.4, 0.4, 0.4], pure=False)
        deadline = time.monotonic() + 10
        while len(scheduler.queued) + sum(len(ws.processing) for ws in scheduler.workers.values()) < 3:
            assert time.monotonic() < deadline, "the scheduler never received the three tasks"
            time.sleep(0.01)
        assert [len(ws.processing) for ws in scheduler.workers.values()] == [1] and len(scheduler.queued) == 2
        ctx.client.gather(futures)
    with dask.config.set({"campfire.graph.worker-profile": True}), \
            local_cluster(1, dashboard_address=None) as cluster, __import__("distributed").Client(cluster) as client:
        assert set(client.run(worker_settings).values()) == {(True, "200ms", 500)}
