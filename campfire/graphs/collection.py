"""``LazySpectra``: a Dask collection of spectra, processed in batches.

Design
------
``LazySpectra`` implements the Dask collection protocol itself, the way
``dask.bag.Bag`` does: it holds a :class:`~dask.highlevelgraph.HighLevelGraph`, a
layer name and one key ``(name, i)`` per *partition*. A partition is a **batch** of
spectra (``campfire.graph.batch-size``, default 200) — a Python list of
:class:`~campfire.tasks.batch.Item` — so one task does hundreds of spectra and the
scheduler's per-task overhead stays small next to the work. Batches are made from
the selection at build time and never split an object, so a per-object stack is a
per-partition map and the number of spectra/objects in every partition is known
before anything runs (``to_zarr`` uses it for row offsets).

Every method adds one layer with a batch function — the pure ones of
:mod:`campfire.tasks.batch` / :mod:`campfire.tasks.population` (which compose
``calibrate_to_photometry``, ``resample_spectra``, ``stack_spectra``...), or the I/O
steps of :mod:`campfire.graphs.fetch` (download, open): the graph layer holds no
science. Each layer is named ``f"{step}-{token}"`` with
``token = tokenize(parent name, step, params)`` and the source layer
``f"select-{tokenize(selection)}"``, so keys are a deterministic function of the
selection (ids, file locations and content hashes, photometry) and the steps with
their parameters: building the same pipeline twice gives the same keys, and a
``persist()``-ed collection is reused by ``compute`` on a distributed cluster.

Configuration is resolved when a method is called (client side) and bound into the
tasks as arguments; workers never read ``dask.config``. So is the downloader of server
files: the client the selection came from is bound into the download step.

Dask machinery: the collection protocol is implemented here (a Bag of batches whose
``compute()`` returns values, not Items), the optimisation culls and fuses linear chains
like ``dask.bag``'s, in an order that does not depend on the process (:func:`optimize`),
and the tree reductions
are :mod:`campfire.graphs.reduction` (see there for why not ``Bag.reduction``).

Collections:

* ``cf.lazy_spectra(**filters)`` / :meth:`LazySpectra.from_query` — a catalog selection;
* ``obj.spectra.lazy()`` / :meth:`LazySpectra.from_spectra` — Spectrum rows;
* :meth:`LazySpectra.from_data` — SpectrumData already in memory;
* :meth:`LazySpectra.from_refs` — explicit references (fsspec URLs, e.g. ``memory://``).

``.compute()`` returns a list (one value per spectrum — or per object after
``stack(by='object')``); ``stack(by='all')`` returns a :class:`dask.delayed.Delayed`
whose value is the stacked :class:`~campfire.models.SpectrumData` (a tree reduction
of partial sums with fan-in ``campfire.graph.split-every``; a median is reduced per
wavelength chunk).

Failures: by default (``errors='record'``) a spectrum that fails a step — a corrupt
file, no usable band to calibrate against — is returned as a
:class:`~campfire.tasks.batch.Failure` (step + reason) in its place, left out of the
stacks (a population stack lists it in ``meta['excluded']``) and counted, with the
first few named, in the result's :meth:`~campfire.graphs.failures.Results.summary`
(``.compute()`` issues it as a :class:`~campfire.errors.PartialFailureWarning`): one
unusable spectrum never costs the whole population.
``.with_errors('raise')`` makes the first failure stop the computation instead.

Examples
--------
>>> import campfire.demo
>>> from campfire import Campfire
>>> cf = Campfire(data_dir=campfire.demo.ensure())                      # doctest: +SKIP
>>> lazy = cf.lazy_spectra(tags=['lrd'], gratings=['PRISM'])            # doctest: +SKIP
>>> cal = lazy.calibrate(method='chebyshev')                            # doctest: +SKIP
>>> grid = np.geomspace(0.6, 5.3, 800)
>>> stacks = cal.resample(grid).stack('weighted_mean', by='object')     # doctest: +SKIP
>>> population = cal.stack('median', by='all', rest_frame=True)         # doctest: +SKIP
>>> per_object, pop = dask.compute(stacks, population)                  # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np
from dask import threaded
from dask.bag.core import optimize as bag_optimize
from dask.base import DaskMethodsMixin, tokenize
from dask.highlevelgraph import HighLevelGraph

from campfire import config
from campfire.errors import ValidationError
from campfire.graphs import builders
from campfire.graphs.failures import Results
from campfire.graphs.builders import bind, layer_name
from campfire.graphs.fetch import is_server_url, open_items, resolve_items
from campfire.graphs.selection import partition_refs, refs_from_rows, refs_from_spectra
from campfire.io.store import is_object_url
from campfire.models import Photometry, SpectrumData
from campfire.tasks import batch as B
from campfire.tasks.resample import check_grid

__all__ = ["LazySpectra", "optimize"]

STAGES = ("refs", "path", "data", "calibrated", "resampled", "stacked", "mapped")
_DATA_STAGES = ("data", "calibrated", "resampled", "stacked", "mapped")
_METHODS = ("weighted_mean", "mean", "median")


def optimize(dsk, keys, **kwargs):
    """Cull to the requested keys and fuse linear chains (select → download → open → calibrate → resample).

    The fused chain of one batch runs as one task: nothing is shipped between workers
    mid-chain. A task is folded into its only dependent when it is that dependent's only
    dependency (and not a requested key): a property of the graph alone, so every process
    fuses the same chains whole. (``dask.bag``'s fusion visits the tasks in a set's order,
    which follows the hash seed, and ends a chain at the first task it has seen: in
    ``calibrate_all`` most chains stopped before ``resample``, a task of its own free to
    run on the other worker, and the task count changed from process to process.) The
    chain keeps its last key, so no alias tasks are left behind. A graph with tasks that
    are not tuples (built by other Dask collections) gets ``dask.bag``'s optimisation.
    """
    from dask.core import flatten

    graph = dict(dsk)
    keys = list(flatten(keys))
    if not all(type(v) is tuple and v and callable(v[0]) for v in graph.values()):
        return bag_optimize(graph, keys, **kwargs)
    return builders.fuse_chains(graph, keys)


def _make_items(batch) -> list:
    return [B.Item(ref) for ref in batch.items]


def _finalize(results, raw: bool, kind: str = "spectra"):
    items = [it for part in results for it in part]
    return Results.from_items(items, items if raw else B.values_of(items), kind=kind)


class LazySpectra(DaskMethodsMixin):
    """A lazy, batched Dask collection of spectra (see the module docstring).

    Parameters
    ----------
    dsk : HighLevelGraph
        The graph.
    name : str
        The output layer; keys are ``(name, i)`` for each partition.
    parts : tuple of tuple of SpectrumRef
        The references in each partition (per object after ``stack(by='object')``).
    stage : str
        What the items hold: refs, path, data, calibrated, resampled, stacked, mapped.
    grid : numpy.ndarray, optional
        The common wavelength grid, once resampled.
    errors : {'record', 'raise'}
        Whether a failing spectrum is recorded as a Failure (default) or raises.
    raw : bool
        ``compute()`` returns :class:`~campfire.tasks.batch.Item` objects instead of values.
    steps : tuple
        ``(step, params)`` history, for provenance and ``repr``.
    kind : {'spectra', 'objects'}
        One element per spectrum, or per object (after ``stack(by='object')``).
    """

    def __init__(self, dsk: HighLevelGraph, name: str, parts, *, stage: str, grid=None, errors: str = "record",
                 raw: bool = False, steps: tuple = (), kind: str = "spectra", selection: Any = None, client=None):
        if not isinstance(dsk, HighLevelGraph):
            dsk = HighLevelGraph.from_collections(name, dsk, dependencies=[])
        self.dask = dsk
        self.name = name
        self.parts = tuple(tuple(p) for p in parts)
        self.stage = stage
        self.grid = grid
        self.errors = B.check_errors(errors)
        self.raw = raw
        self.steps = tuple(steps)
        self.kind = kind
        self.selection = selection
        # the Campfire client the selection came from: fetches server files in ``download``
        self.client = client

    # -------------------------------------------------------------- dask collection protocol
    def __dask_graph__(self) -> HighLevelGraph:
        return self.dask

    def __dask_keys__(self) -> list:
        return [(self.name, i) for i in range(self.npartitions)]

    def __dask_layers__(self) -> tuple[str, ...]:
        return (self.name,)

    def __dask_tokenize__(self):
        return (self.name, self.raw)

    __dask_optimize__ = staticmethod(optimize)
    __dask_scheduler__ = staticmethod(threaded.get)

    def compute(self, **kwargs) -> Results:
        """Compute the collection: a :class:`~campfire.graphs.failures.Results` list.

        One value per element (a :class:`~campfire.tasks.batch.Failure` in place of each
        failed one); when anything failed, one
        :class:`~campfire.errors.PartialFailureWarning` summarises it (``dask.compute``
        returns the same list, its summary in ``.summary()``, without the warning).

        Parameters
        ----------
        **kwargs
            As in :func:`dask.compute` (``scheduler=`` ...).

        Returns
        -------
        Results
        """
        result = super().compute(**kwargs)
        if not self.raw:
            result.warn(stacklevel=2)
        return result

    def __dask_postcompute__(self):
        return _finalize, (self.raw, self.kind)

    def __dask_postpersist__(self):
        return self._rebuild, ()

    def _rebuild(self, dsk, *, rename=None):
        name = rename.get(self.name, self.name) if rename else self.name
        return self._like(dsk, name)

    def _like(self, dsk, name, **changes) -> "LazySpectra":
        kw = dict(stage=self.stage, grid=self.grid, errors=self.errors, raw=self.raw, steps=self.steps,
                  kind=self.kind, selection=self.selection, client=self.client)
        parts = changes.pop("parts", self.parts)
        kw.update(changes)
        return LazySpectra(dsk, name, parts, **kw)

    # ---------------------------------------------------------------------------- info
    @property
    def npartitions(self) -> int:
        """Number of batches (one task per step each)."""
        return len(self.parts)

    @property
    def lengths(self) -> tuple[int, ...]:
        """Number of elements (spectra, or objects) in each partition — known before running."""
        return tuple(len(p) for p in self.parts)

    def __len__(self) -> int:
        return sum(self.lengths)

    @property
    def refs(self) -> list[B.SpectrumRef]:
        """The references of every element, in collection order (known before running)."""
        return [r for p in self.parts for r in p]

    @property
    def spectrum_ids(self) -> list[str]:
        """Element ids in collection order (object ids after ``stack(by='object')``)."""
        return [r.spectrum_id for r in self.refs]

    @property
    def object_ids(self) -> list[str]:
        """Distinct object ids, in order of first appearance."""
        return list(dict.fromkeys(r.object_id for r in self.refs))

    def __repr__(self) -> str:
        n, parts = len(self), self.npartitions
        if self.kind == "objects":
            what = "object" if n == 1 else "objects"
        else:
            what = "spectrum" if n == 1 else "spectra"
        steps = " → ".join(s for s, _ in self.steps) or "select"
        return f"LazySpectra<{steps}, {n} {what}, {parts} partition{'' if parts == 1 else 's'}>"

    # ---------------------------------------------------------------------------- constructors
    @classmethod
    def from_refs(cls, refs: Iterable[B.SpectrumRef], *, batch_size: int | None = None, errors: str = "record",
                  selection: Any = None, client=None) -> "LazySpectra":
        """A collection over explicit references (local paths or fsspec URLs, in-memory data).

        Examples
        --------
        >>> from campfire.tasks.batch import SpectrumRef
        >>> lazy = LazySpectra.from_refs([SpectrumRef('a', object_id='o', url='memory://arch/a.spec.fits')])
        >>> lazy
        LazySpectra<select, 1 spectrum, 1 partition>
        """
        refs = list(refs)
        size = config.get("graph.batch-size", override_with=batch_size)
        batches = partition_refs(refs, int(size)) if refs else []
        token = builders.token_of([[r.token_parts() for r in b] for b in batches])
        name = f"select-{token}"
        dsk = builders.source_layer(name, batches, _make_items)
        graph = HighLevelGraph.from_collections(name, dsk, dependencies=[])
        return cls(graph, name, batches, stage="refs", errors=errors, selection=selection, client=client)

    @classmethod
    def from_spectra(cls, spectra, *, client=None, batch_size: int | None = None, errors: str = "record",
                     storage_root: str | None = None) -> "LazySpectra":
        """A collection over :class:`~campfire.models.Spectrum` rows (``obj.spectra.lazy()``).

        Parameters
        ----------
        spectra : iterable of Spectrum
        client : Campfire, optional
            The client the rows came from: it resolves file locations (local copy, else
            the server) and each object's redshift and photometry, and fetches server
            files in the download step. Without one, a row is read from its
            ``local_path`` (or ``storage_root``), else opened here through its opener
            and carried in the graph.
        batch_size, errors, storage_root
            As in :meth:`from_query`.

        Returns
        -------
        LazySpectra

        Raises
        ------
        ValidationError
            An item that is not a Spectrum.

        Examples
        --------
        >>> lazy = LazySpectra.from_spectra(obj.spectra, client=cf)  # what obj.spectra.lazy() does  # doctest: +SKIP
        """
        spectra = list(spectra)
        return cls.from_refs(refs_from_spectra(spectra, cf=client, storage_root=storage_root), batch_size=batch_size,
                             errors=errors, selection={"spectrum_ids": [s.spectrum_id for s in spectra]},
                             client=client)

    @classmethod
    def from_data(cls, spectra: Iterable[SpectrumData], *, photometry: Photometry | None = None,
                  redshift: float | None = None, batch_size: int | None = None, errors: str = "record") -> "LazySpectra":
        """A collection over spectra already in memory (they travel inside the graph)."""
        refs = []
        for i, s in enumerate(spectra):
            if not isinstance(s, SpectrumData):
                raise ValidationError(f"spectra[{i}]: expected SpectrumData, got {type(s).__name__}")
            refs.append(B.SpectrumRef(
                spectrum_id=s.spectrum_id or f"spectrum-{i}", object_id=s.object_id or "", grating=s.grating,
                data=s, photometry=photometry, redshift=float("nan") if redshift is None else float(redshift),
            ))
        return cls.from_refs(refs, batch_size=batch_size, errors=errors)

    @classmethod
    def from_query(cls, cf, *, batch_size: int | None = None, errors: str = "record", storage_root: str | None = None,
                   remote: bool = False, **filters) -> "LazySpectra":
        """A collection over the spectra of ``cf.query_spectra(**filters)``.

        Parameters
        ----------
        cf : Campfire
            The client (local catalog or server).
        batch_size : int, optional
            Spectra per task; default ``campfire.graph.batch-size``.
        errors : {'record', 'raise'}
            What a failing spectrum does: ``'record'`` (default) keeps a
            :class:`~campfire.tasks.batch.Failure` in its place, leaves it out of stacks and
            warns once per compute (:class:`~campfire.errors.PartialFailureWarning`);
            ``'raise'`` stops at the first failure.
        storage_root : str, optional
            Read files from ``storage_root/<fits_path>`` (e.g. ``s3://bucket/archive``) instead
            of the client's data directory.
        **filters
            The filters of ``query_spectra``.
        """
        from campfire.catalog.filters import build_query

        build_query("spectra", **filters)  # validate once, with the reference's messages
        rows = list(cf.iter_spectra(remote=remote, **filters))
        refs = refs_from_rows(cf, rows, storage_root=storage_root)
        return cls.from_refs(refs, batch_size=batch_size, errors=errors, selection=dict(filters), client=cf)

    @classmethod
    def concat(cls, collections: Sequence["LazySpectra"]) -> "LazySpectra":
        """One collection of the partitions of several (their graphs merged, keys aliased).

        The grid is kept when every input has the same one; steps and stage come from
        the first collection.
        """
        colls = [c for c in collections if c is not None]
        if not colls:
            raise ValidationError("collections: nothing to concatenate")
        if len(colls) == 1:
            return colls[0]
        name = f"concat-{tokenize([c.name for c in colls])}"
        dsk: dict = {}
        parts: list = []
        for c in colls:
            for i in range(c.npartitions):
                dsk[(name, len(parts))] = (c.name, i)  # an alias: no copy, no task
                parts.append(c.parts[i])
        graph = HighLevelGraph.from_collections(name, dsk, dependencies=colls)
        grids = [c.grid for c in colls]
        same = all(g is not None and g.shape == grids[0].shape and np.array_equal(g, grids[0]) for g in grids)
        first = colls[0]
        return first._like(graph, name, parts=parts, grid=grids[0] if same else None,
                           errors=first.errors)

    # ---------------------------------------------------------------------------- building blocks
    def map_partitions(self, func: Callable, *, step: str, token: Any, stage: str, **changes) -> "LazySpectra":
        """A collection with one more layer: ``func(batch)`` on every partition.

        The building block of every step (``dask.bag``'s ``map_partitions`` with
        explicit names): ``func`` takes a partition (a list of
        :class:`~campfire.tasks.batch.Item`) and returns one, with its parameters bound
        (:func:`~campfire.graphs.builders.bind`).

        Parameters
        ----------
        func : callable
            ``func(list_of_items) -> list_of_items``; picklable for process schedulers.
        step : str
            The layer's name prefix (``f"{step}-{tokenize(parent, step, token)}"``) and its
            entry in :attr:`steps`.
        token : object
            What identifies ``func``'s parameters (plain values; it makes the keys).
        stage : str
            What the items hold afterwards (:data:`STAGES`).
        **changes
            Other attributes of the result (``kind``, ``grid``, ``parts``).

        Returns
        -------
        LazySpectra
        """
        name = layer_name(step, self.name, token)
        dsk = builders.map_layer(name, self.name, self.npartitions, func)
        graph = HighLevelGraph.from_collections(name, dsk, dependencies=[self])
        return self._like(graph, name, stage=stage, steps=self.steps + ((step, token),), **changes)

    def as_stacks(self, grid=None) -> "LazySpectra":
        """The same graph, its elements described as per-object stacks (on ``grid``).

        For stacks read back from files (a workflow's earlier per-object outputs): a
        population stack over them then treats them like ``stack(by='object')`` results.

        Parameters
        ----------
        grid : array_like, optional
            Their common wavelength grid [μm].

        Returns
        -------
        LazySpectra
        """
        g = None if grid is None else check_grid("grid", grid)
        return self._like(self.dask, self.name, stage="stacked", kind="objects", grid=g)

    def with_errors(self, errors: str) -> "LazySpectra":
        """The same collection with another error mode for the steps added next.

        Parameters
        ----------
        errors : {'record', 'raise'}
            ``'record'`` (the default): a spectrum that fails a step is kept as a failure
            record (step, reason), left out of stacks and counted in a
            :class:`~campfire.errors.PartialFailureWarning` when computed; ``'raise'``: the
            first failure stops the computation.

        Returns
        -------
        LazySpectra

        Examples
        --------
        >>> from campfire.models import SpectrumData
        >>> lazy = LazySpectra.from_data([SpectrumData(np.linspace(1, 2, 5), np.ones(5), np.ones(5))])
        >>> lazy.with_errors('raise').errors
        'raise'
        """
        return self._like(self.dask, self.name, errors=B.check_errors(errors))

    def items(self) -> "LazySpectra":
        """The same graph; ``compute()`` returns :class:`~campfire.tasks.batch.Item` objects
        (reference, value, calibration, failure) instead of bare values."""
        return self._like(self.dask, self.name, raw=True)

    # ---------------------------------------------------------------------------- steps
    def download(self) -> "LazySpectra":
        """Make every file readable by the workers: check local/fsspec paths, fetch server files.

        Files on a server are streamed to a ``.part`` file (resumed with HTTP Range),
        verified against the catalog's sha256, renamed into ``<data_dir>/<fits_path>`` and
        recorded in the client's ``local_files`` (:func:`campfire.transfer.fetch_spectrum`);
        a Dask worker that cannot write the client's data_dir fetches into its own cache
        instead, and a local copy it cannot see is fetched from the server too
        (:class:`campfire.transfer.workers.ServerFiles`). Products on an object store are
        copied once into each worker's cache and verified against the catalog's sha256
        (:func:`campfire.transfer.workers.cached_object`); local paths are only checked.
        """
        if self.stage != "refs":
            return self
        download = cache = None
        if any(is_server_url(r.url) for r in self.refs):
            if self.client is None:
                raise ValidationError("download: server files need the Campfire client they came from "
                                      "(build the collection with cf.lazy_spectra(...))")
        # the transfer layer (HTTP, credentials: 0.15 s of imports) only when a file needs it, and here,
        # not where a worker unpickles a task of this module
        if self.client is not None and getattr(self.client, "base_url", None) and any(
                is_server_url(r.url) or r.dest for r in self.refs):
            from campfire.transfer.workers import ServerFiles

            # picklable: a worker without the client's disk fetches into its own cache (campfire.transfer.workers)
            download = ServerFiles(self.client.remote_catalog, self.client.data_dir)
        if any(r.file_hash and is_object_url(r.url) for r in self.refs):
            from campfire.transfer.workers import cached_object

            cache = cached_object
        token = (self.errors, None if self.client is None else (self.client.base_url, str(self.client.data_dir)))
        return self.map_partitions(bind(resolve_items, errors=self.errors, download=download, cache=cache),
                                   step="download",
                                   token=token, stage="path")

    def open(self) -> "LazySpectra":
        """Read each file into a :class:`~campfire.models.SpectrumData` (through fsspec)."""
        if self.stage in _DATA_STAGES:
            return self
        src = self.download() if self.stage == "refs" else self
        return src.map_partitions(bind(open_items, errors=self.errors), step="open", token=(self.errors,),
                                  stage="data")

    def _data(self) -> "LazySpectra":
        return self if self.stage in _DATA_STAGES else self.open()

    def calibrate(self, photometry: Photometry | None = None, *, method: str = "chebyshev", **options) -> "LazySpectra":
        """Flux-calibrate each spectrum against photometry (``calibrate_to_photometry``).

        Parameters
        ----------
        photometry : Photometry, optional
            Use this for every spectrum; default: each spectrum's object photometry
            from the catalog.
        method : {'chebyshev', 'flat'}
        **options
            ``degree``, ``min_snr``, ``bands`` ... passed to ``calibrate_to_photometry``.

        Examples
        --------
        >>> cal = cf.lazy_spectra(has_photometry=True).calibrate(degree=2)  # doctest: +SKIP
        """
        if photometry is not None and not isinstance(photometry, Photometry):
            raise ValidationError(f"photometry: expected a Photometry, got {type(photometry).__name__}")
        opts = dict(options, method=method)
        phot_token = None if photometry is None else B.SpectrumRef("", photometry=photometry).token_parts()
        src = self._data()
        func = bind(B.calibrate_items, errors=self.errors, photometry=photometry, options=opts)
        return src.map_partitions(func, step="calibrate", token=(self.errors, phot_token, sorted(opts.items(), key=str)),
                                  stage="calibrated")

    def resample(self, grid) -> "LazySpectra":
        """Resample every spectrum onto ``grid`` [μm] (flux-conserving, batched per task)."""
        g = check_grid("grid", grid)
        src = self._data()
        return src.map_partitions(bind(B.resample_items, errors=self.errors, grid=g), step="resample",
                                  token=(self.errors, g), stage="resampled", grid=g)

    def map(self, func: Callable[[Any], Any], *, name: str | None = None) -> "LazySpectra":
        """Apply ``func`` to every element's value (a SpectrumData once opened).

        ``func`` must be picklable for process-based schedulers (a module-level function).
        """
        if not callable(func):
            raise ValidationError(f"func: expected a callable, got {func!r}")
        step = name or getattr(func, "__name__", "map")
        return self.map_partitions(bind(B.map_items, errors=self.errors, func=func, step=step), step=step,
                                   token=(self.errors, func), stage="mapped")

    def stack(self, method: str = "weighted_mean", by: str = "object", rest_frame: bool = False, *,
              grid=None, window=None, split_every: int | None = None, normalize: bool | None = None,
              object_id: str | None = None):
        """Stack spectra per object or over the whole collection.

        Parameters
        ----------
        method : {'weighted_mean', 'mean', 'median'}
        by : {'object', 'all'}
            ``'object'`` → a LazySpectra of one stack per object (each object in one task);
            ``'all'`` → a Delayed population stack (tree reduction of partial sums with
            fan-in ``split_every``; the median per wavelength chunk).
        rest_frame : bool
            Shift each spectrum to its object's rest frame first; a population stack
            then divides each spectrum by its median f_ν in ``window`` (rest μm, default
            ``campfire.stack.rest-window``) and records the window.
        grid : array_like or 'union', optional
            Output grid [μm]: default the collection's grid once resampled, else (observed
            frame) the input with the most pixels — with a
            :class:`~campfire.errors.StackRangeWarning` (issued where the final task
            runs) and ``meta['outside_grid']`` naming what other inputs cover outside
            it —, else (rest frame) ``campfire.stack.rest-grid``. ``'union'``: a grid
            covering every input at the finest native sampling in each region (per
            object, or over the collection).
        window : (float, float), optional
            Rest-frame normalisation window [μm].
        split_every : int, optional
            Fan-in of the tree reduction; default ``campfire.graph.split-every``.
        normalize : bool, optional
            Divide each input by its median f_ν in ``window`` (default: True for a
            rest-frame population stack, else False).
        object_id : str, optional
            Stored on a ``by='all'`` stack (its id becomes ``<object_id>_stack``).

        A collection of one batch is stacked by ``stack_spectra`` itself in one task
        (what the eager API computes); more batches go through the tree reduction,
        equal to the one-shot stack to rounding.

        Examples
        --------
        >>> per_object = lazy.resample(grid).stack(by='object')         # doctest: +SKIP
        >>> population = per_object.stack('median', by='all', rest_frame=True)  # doctest: +SKIP
        """
        from campfire.graphs import stacking

        if method not in _METHODS:
            raise ValidationError(f"method: expected one of {', '.join(map(repr, _METHODS))}, got {method!r}")
        if by not in ("object", "all"):
            raise ValidationError(f"by: expected 'object' or 'all', got {by!r}")
        if not isinstance(rest_frame, bool):
            raise ValidationError(f"rest_frame: expected True or False, got {rest_frame!r}")
        src = self._data()
        if by == "object":
            return stacking.stack_by_object(src, method, rest_frame=rest_frame, grid=grid)
        return stacking.stack_all(src, method, rest_frame=rest_frame, grid=grid, window=window,
                                  split_every=split_every, normalize=normalize, object_id=object_id)

    # ---------------------------------------------------------------------------- outputs
    def to_zarr(self, store, *, group: str | None = None, compute: bool = True, attrs: dict | None = None,
                overwrite: bool = True):
        """Write the spectra (on a common grid) to a zarr store.

        Layout (under ``group``): ``wavelength`` (n_wave), ``fnu`` / ``fnu_err`` (n, n_wave,
        chunked by ``campfire.graph.batch-size`` rows), ``count`` for stacks, ``ok`` (bool),
        ``spectrum_id`` / ``object_id`` (strings); ``attrs`` hold the steps and anything
        passed in ``attrs`` (provenance). Rows follow the collection order.

        Parameters
        ----------
        store : str, os.PathLike or zarr store
            A path, an fsspec URL (``memory://``, ``s3://``) or a zarr store.
        compute : bool
            Write now (True) or return a Delayed that writes when computed.

        Examples
        --------
        >>> lazy.resample(grid).to_zarr('results.zarr', group='spectra')  # doctest: +SKIP
        """
        from campfire.graphs.zarr_out import to_zarr

        return to_zarr(self, store, group=group, compute=compute, attrs=attrs, overwrite=overwrite)

    def visualize(self, filename: str = "campfire-graph", format: str | None = None, optimize_graph: bool = False,
                  **kwargs):
        """Draw the task graph with graphviz; without graphviz, write the layer graph as DOT text.

        Returns what ``dask.visualize`` returns, or (fallback) the path of the ``.dot`` file.
        """
        try:
            import graphviz  # noqa: F401
        except ImportError:
            from campfire.graphs.dot import write_layer_dot

            return write_layer_dot(self.dask, filename)
        return super().visualize(filename=filename, format=format, optimize_graph=optimize_graph, **kwargs)
