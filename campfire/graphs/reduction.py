"""Tree reductions: many partitions → one result with bounded fan-in.

:func:`tree_reduce` has the shape of ``dask.bag.Bag.reduction``: a *part* task per
input partition, then levels of *combine* tasks, each reading at most ``split_every``
results of the level below, then one *finalize* task. For a stack the part is
``(Σ w·f, Σ w, n)`` of one batch and combine adds them, so no task ever holds more
than ``split_every`` partial sums — a population stack of 10,000 spectra never has
them all in one process.

Why not ``Bag.reduction`` itself: a part task here also takes keys computed at run
time (``part_extra``: the stack grid, when it is chosen by a reduction over the inputs
instead of being known when the graph is built), which ``Bag.reduction``'s
``perpartition(partition)`` cannot receive; and the levels are keyed
``(f"{name}-combine", depth, i)`` under the layer's deterministic name, which the
tree-shape and key tests check (``Bag.reduction`` names them
``f"{name}-aggregate-{token}{depth}"``). The rest of the machinery is Dask's: the
layers are ``HighLevelGraph`` layers of the ``LazySpectra`` collection, optimised by
``dask.bag.core.optimize``.

:func:`chunked_gather` is the median's shape: a median does not decompose into
partial sums, so each partition splits its values into wavelength chunks and one
task per chunk gathers that chunk from every partition (N spectra × chunk width).

Examples
--------
>>> dsk, key = tree_reduce('s', [('x', i) for i in range(20)], part=sum, combine=sum,
...                        finalize=float, split_every=4)
>>> key
's'
>>> sorted({k[0] for k in dsk if isinstance(k, tuple)})
['s-combine', 's-part']
"""
from __future__ import annotations

from operator import getitem
from typing import Any, Callable, Hashable, Sequence

from toolz import partition_all

__all__ = ["tree_reduce", "chunked_gather", "reduction_depth"]


def reduction_depth(n: int, split_every: int) -> int:
    """Number of combine levels of a tree over ``n`` parts with fan-in ``split_every``.

    Examples
    --------
    >>> reduction_depth(1000, 8)
    3
    """
    depth = 0
    while n > split_every:
        n = -(-n // split_every)
        depth += 1
    return depth


def tree_reduce(
    name: str,
    inputs: Sequence[Hashable],
    *,
    part: Callable,
    combine: Callable[[list], Any],
    finalize: Callable[[Any], Any],
    split_every: int,
    part_extra: Sequence[Hashable] = (),
) -> tuple[dict[Hashable, Any], str]:
    """Graph of a tree reduction over ``inputs``.

    Parameters
    ----------
    name : str
        Layer name of the final key (``f"{step}-{token}"``); the levels below are
        keyed ``(f"{name}-part", i)`` and ``(f"{name}-combine", depth, i)``.
    inputs : sequence of keys
        One key per partition.
    part : callable
        ``part(partition, *part_extra)`` → partial result.
    combine : callable
        ``combine([partial, ...])`` → partial result (associative).
    finalize : callable
        ``finalize(partial)`` → the result.
    split_every : int
        Fan-in of each combine task (≥ 2).
    part_extra : sequence of keys
        Keys every part task also receives (e.g. the chosen grid).

    Returns
    -------
    (dsk, key)
        The tasks, and the key of the result (``name``).
    """
    split_every = max(2, int(split_every))
    part_name = f"{name}-part"
    dsk: dict[Hashable, Any] = {(part_name, i): (part, k, *part_extra) for i, k in enumerate(inputs)}
    level = [(part_name, i) for i in range(len(inputs))]
    depth = 0
    while len(level) > split_every:
        nxt = []
        for i, group in enumerate(partition_all(split_every, level)):
            key = (f"{name}-combine", depth, i)
            dsk[key] = (combine, list(group))
            nxt.append(key)
        level = nxt
        depth += 1
    if len(level) == 1:
        dsk[name] = (finalize, level[0])
    else:
        dsk[name] = (finalize, (combine, list(level)))
    return dsk, name


def chunked_gather(
    name: str,
    inputs: Sequence[Hashable],
    *,
    split: Callable,
    gather: Callable[[list], Any],
    concat: Callable[[list], Any],
    n_chunks: int,
    split_extra: Sequence[Hashable] = (),
) -> tuple[dict[Hashable, Any], str]:
    """Graph of a per-chunk reduction (the median).

    ``split(partition, *split_extra)`` returns a list of ``n_chunks`` pieces; task
    ``(f"{name}-chunk", c)`` calls ``gather([piece c of every partition])``; the final
    key calls ``concat([chunk results in order])``.
    """
    split_name = f"{name}-split"
    dsk: dict[Hashable, Any] = {(split_name, i): (split, k, *split_extra) for i, k in enumerate(inputs)}
    for c in range(n_chunks):
        dsk[(f"{name}-chunk", c)] = (gather, [(getitem, (split_name, i), c) for i in range(len(inputs))])
    dsk[name] = (concat, [(f"{name}-chunk", c) for c in range(n_chunks)])
    return dsk, name
