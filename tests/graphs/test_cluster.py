"""The same graphs on a real distributed.LocalCluster (2 worker processes): results equal the
threaded/eager ones bit for bit, persisted keys are reused, an existing scheduler address works."""
from __future__ import annotations

import dask
import numpy as np
import pytest

from campfire.errors import PartialFailureWarning
from campfire.graphs.collection import LazySpectra
from campfire.graphs.scheduler import run_context
from pure_steps import calibrate_then_stack

pytestmark = pytest.mark.cluster

SEL = dict(tags=["lrd"], has_photometry=True)
GRID = np.geomspace(0.6, 5.3, 500)
REST = np.geomspace(0.1, 1.0, 400)


def same(a, b) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


def pipeline(cf):
    lazy = cf.lazy_spectra(**SEL, batch_size=6, errors="record").calibrate(degree=2).resample(GRID)
    per_object = lazy.stack("weighted_mean", by="object")
    population = per_object.stack("median", by="all", rest_frame=True, grid=REST, split_every=2)
    tree = lazy.stack("weighted_mean", by="all", split_every=2)
    return lazy, per_object, population, tree


def _items(c):
    return c.items() if isinstance(c, LazySpectra) else c


def test_cluster_results_equal_threaded_and_eager(cf, cluster_client):
    threaded = dask.compute(*[_items(c) for c in pipeline(cf)], scheduler="threads")
    on_cluster = cluster_client.compute([_items(c) for c in pipeline(cf)], sync=True)
    assert len(cluster_client.scheduler_info()["workers"]) == 2
    for t_items, c_items in zip(threaded[:2], on_cluster[:2]):
        assert len(t_items) == len(c_items)
        for a, b in zip(t_items, c_items):
            assert (a.failure is None) == (b.failure is None)
            if a.failure is None:
                assert same(a.value.fnu, b.value.fnu) and same(a.value.fnu_err, b.value.fnu_err)
    for a, b in zip(threaded[2:], on_cluster[2:]):
        assert same(a.fnu, b.fnu) and same(a.fnu_err, b.fnu_err) and same(a.count, b.count)
    # per-object stacks on the cluster equal each object's inputs calibrated and stacked by the pure functions
    for it in on_cluster[1][:6]:
        if it.failure is not None:
            continue
        obj = cf.get_object(it.ref.object_id)
        good = [s for s in obj.spectra if s.spectrum_id in it.inputs]
        want = calibrate_then_stack(good, obj.photometry, degree=2, wavelength_grid=GRID, object_id=obj.object_id)
        assert same(it.value.fnu, want.spectrum.fnu) and same(it.value.fnu_err, want.spectrum.fnu_err)


def test_persisted_keys_are_reused(cf, cluster_client):
    from distributed import wait

    lazy = pipeline(cf)[0]
    persisted = cluster_client.persist(lazy)
    wait(persisted)
    in_memory = set(cluster_client.who_has())
    rebuilt = pipeline(cf)[0]  # built again from scratch: same selection + steps -> same keys
    assert {str(k) for k in rebuilt.__dask_keys__()} <= {str(k) for k in in_memory}
    with pytest.warns(PartialFailureWarning, match="spectra failed") as caught:  # said on the client, not lost on a worker
        got = rebuilt.compute()
    assert len(got) == len(lazy) and len(caught) == 1
    assert {f.spectrum_id for f in got.failures} == {f.spectrum_id for f in dask.compute(lazy)[0].failures}


def test_run_context_connects_to_an_existing_scheduler(cf, cluster_client):
    address = cluster_client.scheduler.address
    with run_context(address) as ctx:
        assert ctx.kind == "distributed" and ctx.n_workers == 2
        stack = cf.lazy_spectra(**SEL).open().stack("mean", by="all", grid=GRID)
        got = ctx.compute(stack)[0]
    assert same(got.fnu, stack.compute(scheduler="threads").fnu)


WARM_RUN = """\
name: warm
archive: {root}
selection:
  tags: [lrd]
  has_photometry: true
steps:
  - download
  - stack: {{by: object}}
outputs:
  plots: 2
"""


def test_a_run_on_a_running_cluster_warms_each_worker_before_its_first_task(demo_root, cluster_client, tmp_path):
    """Each worker's first use (imports, the first figure) is a task submitted when the run connects,
    so it overlaps the client's selection and planning instead of delaying the graph's first tasks."""
    from distributed import get_task_stream

    from campfire.workflows.runner import run_workflow

    wf = tmp_path / "warm.yaml"
    wf.write_text(WARM_RUN.format(root=demo_root))
    with get_task_stream(cluster_client) as ts:
        summary = run_workflow(wf, scheduler=cluster_client.scheduler.address, output=tmp_path / "out",
                               progress=False, echo=lambda _: None)
    assert summary["ok"] and len(list((tmp_path / "out" / "plots").glob("*.png"))) == 2
    workers = set(cluster_client.scheduler_info()["workers"])
    start = {}
    for rec in ts.data:
        began = min(s["start"] for s in rec["startstops"] if s["action"] == "compute")
        warm = str(rec["key"]).startswith("campfire-warm-up-")
        start.setdefault((rec["worker"], warm), []).append(began)
    assert {w for w, warm in start if warm} == workers  # one warm-up on every worker ...
    for w in workers:  # ... that ran before any task of the run's graph there
        assert len(start[w, True]) == 1 and start[w, True][0] < min(start.get((w, False), [float("inf")]))
