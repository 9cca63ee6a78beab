"""Choosing where a graph runs: threads, processes, synchronous, a LocalCluster or a cluster.

One spelling for every entry point (``campfire run --scheduler``, the workflow's
``cluster:`` section, the ``campfire.graph.scheduler`` config key):

========================  ====================================================
``threads``               the threaded scheduler (``num_workers`` = workers)
``processes``             the multiprocessing scheduler
``synchronous``           one thread, no parallelism (debugging, tiny graphs)
``local:N``               start a ``distributed.LocalCluster`` of N worker processes
``tcp://HOST:PORT``       connect a ``distributed.Client`` to an existing scheduler
========================  ====================================================

(also ``tls://``, ``ws://``, ``inproc://`` addresses). :func:`run_context` opens
whatever the spelling names and closes what it opened; ``distributed`` is imported
only for the last two, so ``import campfire`` stays light.

The deployment file (``dask-config.yaml`` at the top of a checkout, or any file
``DASK_CONFIG`` points at) is merged by :func:`deployment_config` with the rule of
``dask.config.update_defaults``: it replaces package defaults but never a value the
user set with ``dask.config.set``, ``DASK_CAMPFIRE__*`` or their own dask config.

Examples
--------
>>> parse_scheduler('local:4')
('local', 4)
>>> parse_scheduler('tcp://10.0.0.5:8786')
('address', 'tcp://10.0.0.5:8786')
>>> with run_context('synchronous') as ctx:
...     ctx.kind
'synchronous'
"""
from __future__ import annotations

import contextlib
import os
import pathlib
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import dask
import dask.config
import yaml

from campfire import config
from campfire.errors import ValidationError

__all__ = ["parse_scheduler", "run_context", "RunContext", "local_get", "local_cluster", "local_cluster_config",
           "deployment_config", "find_deployment_file", "SCHEDULERS"]

SCHEDULERS = ("threads", "processes", "synchronous")
_ADDRESS_PREFIXES = ("tcp://", "tls://", "ws://", "wss://", "inproc://", "ucx://")
_HELP = "threads | processes | synchronous | local:N | tcp://HOST:PORT"


def parse_scheduler(spec: str | None, workers: int | None = None) -> tuple[str, Any]:
    """Parse a scheduler spelling into ``(kind, argument)``.

    Parameters
    ----------
    spec : str or None
        ``threads``, ``processes``, ``synchronous``, ``local:N``, ``local`` or a scheduler
        address. None reads ``campfire.graph.scheduler``.
    workers : int, optional
        Worker count. With ``spec=None`` it means "start a LocalCluster of N workers"
        (``campfire run --workers N``); with ``threads``/``processes`` the pool size.

    Returns
    -------
    (kind, arg)
        ``('threads'|'processes'|'synchronous', n_workers or None)``,
        ``('local', n_workers)`` or ``('address', address)``.

    Examples
    --------
    >>> parse_scheduler('threads', workers=2)
    ('threads', 2)
    >>> parse_scheduler(None, workers=3)
    ('local', 3)
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValidationError(f"workers: expected a positive int, got {workers!r}")
    if spec is None:
        if workers is not None:
            return "local", workers
        spec = config.get("graph.scheduler")
        if workers is None:
            workers = config.get("graph.workers")
    if not isinstance(spec, str) or not spec.strip():
        raise ValidationError(f"scheduler: expected {_HELP}, got {spec!r}")
    spec = spec.strip()
    low = spec.lower()
    if low in SCHEDULERS:
        return low, workers
    if low in ("sync", "single-threaded"):
        return "synchronous", None
    if low == "local" or low.startswith("local:"):
        n = low.partition(":")[2]
        if not n:
            return "local", workers or os.cpu_count() or 1
        if not n.isdigit() or int(n) < 1:
            raise ValidationError(f"scheduler: local:N needs a positive worker count, got {spec!r}")
        return "local", int(n)
    if low.startswith(_ADDRESS_PREFIXES):
        return "address", spec
    raise ValidationError(f"scheduler: unknown scheduler {spec!r}; expected {_HELP}")


@dataclass
class RunContext:
    """Where a graph runs, as opened by :func:`run_context`.

    Attributes
    ----------
    kind : str
        ``threads``, ``processes``, ``synchronous`` or ``distributed``.
    n_workers : int
        Workers (threads, processes or distributed workers).
    client : distributed.Client or None
        The client when distributed.
    dashboard_link : str or None
        The Dask dashboard URL when distributed.
    started : float
        ``time.perf_counter()`` when the context opened.
    """

    kind: str
    n_workers: int
    client: Any = None
    dashboard_link: str | None = None
    started: float = field(default_factory=time.perf_counter)
    description: str = ""

    @property
    def distributed(self) -> bool:
        """True when a distributed Client runs the graphs."""
        return self.client is not None

    def compute(self, *collections, **kwargs):
        """``dask.compute`` on this context's scheduler."""
        if self.client is not None:
            return self.client.compute(list(collections), sync=True, **kwargs)
        return dask.compute(*collections, scheduler=local_get(self.kind), **kwargs)


def local_get(kind: str):
    """The get function of dask's local scheduler ``kind`` (``threads``, ``processes``, ``synchronous``).

    Given the function rather than its name, ``dask.compute`` does not import distributed to
    look for a default Client first (~0.7 s of a threads run's start, before its first task).

    Examples
    --------
    >>> local_get('synchronous').__name__
    'get_sync'
    """
    if kind == "threads":
        from dask.threaded import get
    elif kind == "processes":
        from dask.multiprocessing import get
    elif kind == "synchronous":
        from dask.local import get_sync as get
    else:
        raise ValueError(f"kind: expected one of {', '.join(SCHEDULERS)}, got {kind!r}")
    return get


@contextlib.contextmanager
def run_context(scheduler: str | None = None, workers: int | None = None) -> Iterator[RunContext]:
    """Open the scheduler named by ``scheduler`` / ``workers`` for the duration of a block.

    Within the block ``dask.compute`` / ``.compute()`` use it (a distributed Client
    becomes the default; local schedulers are set with ``dask.config.set``).

    Parameters
    ----------
    scheduler : str, optional
        See :func:`parse_scheduler`; None reads ``campfire.graph.scheduler``.
    workers : int, optional
        Worker count (``local:N`` / ``--workers N``, or the thread/process pool size).

    Examples
    --------
    >>> with run_context('threads', workers=2) as ctx:  # doctest: +SKIP
    ...     lazy.compute()
    """
    kind, arg = parse_scheduler(scheduler, workers)
    if kind in SCHEDULERS:
        n = 1 if kind == "synchronous" else int(arg or os.cpu_count() or 1)
        settings: dict[str, Any] = {"scheduler": local_get(kind)}
        if kind != "synchronous":
            settings["num_workers"] = n
        with dask.config.set(settings):
            yield RunContext(kind, n, description=f"{kind} ({n} worker{'s' if n > 1 else ''})")
        return

    from distributed import Client  # heavy: only when asked for

    if kind == "local":
        threads = int(config.get("graph.threads-per-worker") or 1)
        cluster = local_cluster(arg, threads_per_worker=threads)
        try:
            with Client(cluster) as client:
                yield RunContext(
                    "distributed", arg, client, _dashboard(client),
                    description=f"LocalCluster ({arg} worker processes × {threads} thread)",
                )
        finally:
            cluster.close()
        return

    with Client(arg, timeout=config.get("graph.connect-timeout")) as client:
        n = len(client.scheduler_info().get("workers", {}))
        yield RunContext("distributed", n, client, _dashboard(client), description=f"scheduler at {arg} ({n} workers)")


# campfire's settings of the LocalCluster it starts → the distributed keys they set
_LOCAL_CLUSTER_KEYS = {
    "worker-profile": "distributed.worker.profile.enabled",
    "tick-interval": "distributed.admin.tick.interval",
    "memory-monitor-interval": "distributed.worker.memory.monitor-interval",
    "worker-saturation": "distributed.scheduler.worker-saturation",
}


def local_cluster_config() -> dict[str, Any]:
    """The distributed settings of a LocalCluster campfire starts, as flat ``dask.config.set`` keys.

    ``campfire.graph.worker-profile``, ``campfire.graph.tick-interval``,
    ``campfire.graph.memory-monitor-interval`` and ``campfire.graph.worker-saturation`` (read now), except
    where your config already gives the distributed key a value other than distributed's
    default (``dask.config.set``, ``DASK_DISTRIBUTED__*``, your own dask YAML, the deployment
    file): that value wins, by the rule of :func:`deployment_config`. To keep the profiler (the
    dashboard's Profile page), set ``campfire.graph.worker-profile: true``.

    Examples
    --------
    >>> local_cluster_config()['distributed.worker.profile.enabled']
    False
    """
    import distributed  # noqa: F401  (registers distributed's defaults, which the rule compares with)

    free = _still_default(_LOCAL_CLUSTER_KEYS.values())
    return {key: config.get(f"graph.{ours}") for ours, key in _LOCAL_CLUSTER_KEYS.items() if key in free}


def local_cluster(n_workers: int, **kwargs):
    """A ``distributed.LocalCluster`` of ``n_workers`` processes as ``local:N`` / ``--workers N`` start it.

    Threads per worker, dashboard and memory limit from ``campfire.graph.*``; the workers'
    and scheduler's distributed settings from :func:`local_cluster_config` (no statistical
    profiler, a 200 ms event-loop check, memory read every 500 ms; a new batch for a worker only when a
    thread is free), which every worker it ever (re)starts gets.

    Parameters
    ----------
    n_workers : int
        Worker processes.
    **kwargs
        Passed to ``LocalCluster`` over campfire's choices (``dashboard_address=None``, say).

    Examples
    --------
    >>> with local_cluster(2, dashboard_address=None) as cluster:  # doctest: +SKIP
    ...     len(cluster.workers)
    2
    """
    from distributed import LocalCluster  # heavy: only when asked for

    options = dict(n_workers=n_workers, threads_per_worker=int(config.get("graph.threads-per-worker") or 1),
                   processes=True, dashboard_address=config.get("graph.dashboard-address"),
                   memory_limit=config.get("graph.memory-limit"))
    options.update(kwargs)
    # the nannies copy the config when they are made (in the constructor) and hand it to each worker they start
    with dask.config.set(local_cluster_config()):
        return LocalCluster(**options)


def _dashboard(client) -> str | None:
    try:
        return client.dashboard_link
    except Exception:  # no dashboard (bokeh missing or dashboard disabled): not an error
        return None


# ----------------------------------------------------------------------------- deployment file
DEPLOYMENT_FILE = "dask-config.yaml"


def find_deployment_file(*near: str | os.PathLike | None) -> pathlib.Path | None:
    """The deployment's ``dask-config.yaml``: in the working directory, else beside/above ``near``.

    ``campfire run workflows/NAME.yaml`` from anywhere finds the checkout's file
    (``workflows/..``).
    """
    candidates = [pathlib.Path.cwd()]
    for p in near:
        if p is None:
            continue
        p = pathlib.Path(p).resolve()
        base = p if p.is_dir() else p.parent
        candidates += [base, base.parent]
    for c in candidates:
        f = c / DEPLOYMENT_FILE
        if f.is_file():
            return f
    return None


def _leaves(d: dict, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            yield from _leaves(v, key + ".")
        else:
            yield key, v


def deployment_config(path: str | os.PathLike | None) -> dict[str, Any]:
    """The settings of a deployment file that should apply now, as flat ``dask.config.set`` keys.

    A value applies when the current config still holds the package default for it
    (or nothing): user settings (``dask.config.set``, ``DASK_*`` env vars, their own
    dask YAML) win over the deployment file, which wins over package defaults.

    Examples
    --------
    >>> with dask.config.set(deployment_config('dask-config.yaml')):  # doctest: +SKIP
    ...     run()
    """
    if path is None:
        return {}
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as err:
        raise ValidationError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise ValidationError(f"{path}: expected a mapping of Dask config keys, got {type(data).__name__}")
    if any(str(k).startswith("distributed") for k in data):
        # distributed registers its defaults on import; setting distributed.* keys before
        # that would shadow them (and leaving the set() context would delete them)
        import distributed  # noqa: F401
    config.register()  # campfire's packaged defaults count as defaults here
    leaves = dict(_leaves(data))
    free = _still_default(leaves)
    return {key: value for key, value in leaves.items() if key in free}


def _still_default(keys) -> set[str]:
    """The keys among ``keys`` whose current value is absent or still the packages' default
    (the ones nobody set: a deployment file or campfire's own choice may set them)."""
    defaults = dask.config.merge(*dask.config.defaults)
    missing = object()
    return {key for key in keys
            if (current := dask.config.get(key, default=missing)) is missing or current == _get(defaults, key, missing)}


def _get(d: dict, key: str, default):
    for part in key.split("."):
        if not isinstance(d, dict):
            return default
        cand = {k.replace("_", "-"): v for k, v in d.items()}
        part = part.replace("_", "-")
        if part not in cand:
            return default
        d = cand[part]
    return d
