"""Fixtures of the graph tests: a client on the small demo and a real 2-process LocalCluster."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def cf(demo_root):
    from campfire import Campfire

    return Campfire(data_dir=demo_root)


@pytest.fixture(scope="module")
def cluster_client():
    """A real ``distributed.LocalCluster`` of 2 worker processes (one thread each)."""
    import distributed

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        yield client
