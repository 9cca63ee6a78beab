"""Small free functions that build graph layers (the ``dask.bag.core.bag_map`` way).

Every layer is a plain ``{key: task}`` dict named ``f"{step}-{token}"`` where
``token = tokenize(<parent layer name>, step, params)``; the source layer's token is
``tokenize(selection)``. Because a parent's name already encodes its own selection
and steps, the chain gives ``tokenize(selection, steps)`` for every layer: the same
selection and steps always give the same keys (so persisted results are reused),
and any change of input file hash, photometry or option gives new ones.

Tasks are written in dask's tuple form ``(callable, arg, ...)``. Parameters go into a
:func:`functools.partial` (opaque to dask's graph parser, so a list of spectrum
references or a wavelength array is never mistaken for keys), and the partial's
keywords are resolved *here*, at build time, from the client's config — workers
never read ``dask.config`` (they do not see the client's ``dask.config.set``).

Examples
--------
>>> name = layer_name('open', 'select-abc', {})
>>> name.startswith('open-')
True
>>> layer_name('open', 'select-abc', {}) == name      # deterministic
True
>>> dsk = map_layer(name, 'select-abc', 2, len)
>>> [k[1] for k in sorted(dsk)], dsk[(name, 0)] == (len, ('select-abc', 0))
([0, 1], True)
"""
from __future__ import annotations

import functools
import hashlib
import pickle
from typing import Any, Callable, Hashable, Iterable, Sequence

import numpy as np
from dask.base import normalize_token, tokenize
from dask.sizeof import sizeof

from campfire.tasks.batch import Item, SpectrumRef

__all__ = ["layer_name", "source_layer", "map_layer", "bind", "Batch", "token_of", "fuse_chains"]

# a spectrum reference tokenizes as its plain values (ids, location, content hash): dask's
# generic dataclass normalisation would walk every field through its dispatch, ~25 us each
normalize_token.register(SpectrumRef)(SpectrumRef.token_parts)


def _nbytes(obj: Any, seen: set[int], depth: int = 0) -> int:
    """Bytes of ``obj``'s arrays (each counted once), 64 per other value, nested up to 4 levels."""
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if depth > 3 or isinstance(obj, (str, bytes, int, float, bool)) or obj is None:
        return 64
    if isinstance(obj, dict):
        return 64 + sum(_nbytes(v, seen, depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return 64 + sum(_nbytes(v, seen, depth + 1) for v in obj)
    return 64 + sum(_nbytes(v, seen, depth + 1) for v in getattr(obj, "__dict__", {}).values())


@sizeof.register(Item)
def _sizeof_item(item: Item) -> int:
    """A batch element's bytes: its spectrum's arrays, its calibration's, its header's values.

    Dask's default for an object it does not know is ``sys.getsizeof`` (~100 bytes, the arrays
    not counted): a batch of 200 spectra then looked like ~13 kB, and the scheduler moved
    batches between workers (stolen tasks, a chunk writer placed beside a smaller input) as
    if they were free.
    """
    return _nbytes(item, set())


def token_of(value: Any) -> str:
    """A deterministic token of plain nested values (tuples, lists, str, bytes, numbers, None).

    One C-level ``repr`` and one MD5 of it: dask's ``tokenize`` of the same nested value
    walks every element in Python (~1.5 us each; 0.3 s for the 6,000 references of a large
    run), and ``tokenize`` of the ``repr`` would escape the whole string a second time.

    Examples
    --------
    >>> token_of([('a', 1.0, None)]) == token_of([('a', 1.0, None)]) != token_of([('a', 2.0, None)])
    True
    """
    return hashlib.md5(repr(value).encode(), usedforsecurity=False).hexdigest()


class Batch:
    """An opaque, picklable container of a partition's literal inputs.

    Dask's graph parser looks inside tuples, lists and dicts for keys; a batch of
    spectrum references travels through it untouched when wrapped in this. Pickled, the
    items are one blob of bytes, unpickled where they are first read: the distributed
    scheduler, which only passes a task on to a worker, never builds (and pickles again)
    the thousands of references and photometry records of a run's graph.
    """

    __slots__ = ("_items", "_blob")

    def __init__(self, items: Sequence[Any]):
        self._items: tuple | None = tuple(items)
        self._blob: bytes | None = None

    @property
    def items(self) -> tuple:
        """The items (unpickled on first use)."""
        if self._items is None:  # the blob stays: two threads reading at once both get the items
            self._items = pickle.loads(self._blob)
        return self._items

    def __reduce__(self):
        if self._blob is not None:
            return (_batch_of_blob, (self._blob,))
        try:
            blob = pickle.dumps(self._items, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, AttributeError, TypeError):  # a lambda, say: as dask itself sends it
            import cloudpickle

            blob = cloudpickle.dumps(self._items, protocol=pickle.HIGHEST_PROTOCOL)
        return (_batch_of_blob, (blob,))

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"Batch({len(self.items)} items)"

    def __dask_tokenize__(self):
        return tokenize(*self.items)


def _batch_of_blob(blob: bytes) -> Batch:
    batch = Batch(())
    batch._items, batch._blob = None, blob
    return batch


def layer_name(step: str, parent: str | None, params: Any) -> str:
    """``f"{step}-{tokenize(parent, step, params)}"``."""
    return f"{step}-{tokenize(parent, step, params)}"


def bind(func: Callable, /, *args, **params) -> Callable:
    """``func`` with its resolved parameters bound (a picklable partial)."""
    return functools.partial(func, *args, **params) if (args or params) else func


def source_layer(name: str, batches: Iterable[Sequence[Any]], make: Callable) -> dict[Hashable, Any]:
    """One task per batch: ``(make, Batch(items))``."""
    return {(name, i): (make, Batch(b)) for i, b in enumerate(batches)}


def map_layer(name: str, parent: str, npartitions: int, func: Callable, *extra_keys: Hashable) -> dict[Hashable, Any]:
    """One task per partition: ``func(parent_partition_i, *extra)``.

    ``extra_keys`` are keys of single results (a chosen grid, say) every partition
    task depends on.
    """
    return {(name, i): (func, (parent, i), *extra_keys) for i in range(npartitions)}


def fuse_chains(graph: dict[Hashable, Any], keys: Sequence[Hashable]) -> dict[Hashable, Any]:
    """``graph`` (tuple tasks) culled to ``keys``, each linear chain folded into its last task.

    A task ``d`` is folded into ``k`` (``d``'s task nested in place of its key in ``k``'s
    task) when ``d`` is ``k``'s only dependency, ``k`` is ``d``'s only dependent and ``d``
    is not in ``keys``: a property of the graph alone, whatever order its keys come in.

    Examples
    --------
    >>> inc = lambda x: x + 1
    >>> g = fuse_chains({"a": (inc, 1), "b": (inc, "a"), "c": (inc, "b"), "d": (sum, ["b", "c"])}, ["d"])
    >>> sorted(g), g["c"] == (inc, "b")
    (['b', 'c', 'd'], True)
    >>> g = fuse_chains({"a": (inc, 1), "b": (inc, "a"), "c": (inc, "b")}, ["c"])
    >>> list(g), g["c"] == (inc, (inc, (inc, 1)))
    (['c'], True)
    """
    from dask.core import get_dependencies, subs

    needed, todo = set(), list(keys)
    deps: dict[Hashable, set] = {}
    while todo:
        key = todo.pop()
        if key in needed:
            continue
        needed.add(key)
        deps[key] = get_dependencies(graph, key)
        todo.extend(deps[key])
    dependents: dict[Hashable, list] = {k: [] for k in needed}
    for k in needed:
        for d in deps[k]:
            dependents[d].append(k)
    requested = set(keys)

    def folds(d) -> bool:
        """``d`` goes into its one dependent (whose task names it where ``subs`` can replace it)."""
        if d in requested or len(dependents[d]) != 1:
            return False
        k = dependents[d][0]
        return deps[k] == {d} and d not in get_dependencies(graph, task=subs(graph[k], d, None))

    out = {}
    for k in graph:  # the graph's own order, not a set's
        if k not in needed or folds(k):
            continue
        task = graph[k]
        chain = k
        while len(deps[chain]) == 1 and folds(d := next(iter(deps[chain]))):
            task, chain = subs(task, d, graph[d]), d
        out[k] = task
    return out
