"""Streaming a LazySpectra to zarr: batch outputs go straight to chunks.

The collection's partitions have known lengths, so the row of every element is
known when the graph is built. Rows are grouped by zarr chunk
(``campfire.graph.batch-size`` rows) and one task per chunk writes it from the one
to three batches that cover it: every chunk has exactly one writer (no races, no
locks), a task holds at most a few batches, and nothing is gathered in the client —
10,000 spectra stream to disk batch by batch. A writer's inputs are each batch's rows
*in that chunk* (a small task per batch and chunk, run where the batch is), not whole
batches' rows: batches never split an object, so their ends rarely fall on a chunk's,
and on a cluster the rows that cross between workers are a chunk's at most (the
scheduler puts the writer beside its larger input; a quarter of a chunk cross on
average), never a batch's spectra (~15-20 MB for 200 with their calibrations). The same writer fills only some rows
of an existing store (a re-run that recomputes a few objects): a partly covered
chunk is read, patched and written back.

Identifiers (``spectrum_id``, ``object_id``) and the wavelength grid are known when
the graph is built, so they are written immediately; ``attrs`` (provenance, steps,
the grid) go into the group's attributes.

Examples
--------
>>> lazy.resample(grid).to_zarr('out.zarr', group='spectra')   # doctest: +SKIP
>>> import zarr
>>> zarr.open_group('out.zarr')['spectra/fnu'].shape            # doctest: +SKIP
(7200, 800)
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from campfire import config
from campfire.errors import ValidationError
from campfire.graphs.builders import bind
from campfire.lines import fnu_unit_of, norm_window_of

__all__ = ["to_zarr", "open_store_group", "create_group", "write_layer", "write_chunk", "write_spectrum_group",
           "jsonable"]

FIELDS = {"fnu": ("f8", np.nan), "fnu_err": ("f8", np.nan), "count": ("i4", 0), "ok": ("bool", False)}


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, tuples and paths made JSON-friendly (for zarr attrs)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def _field_rows(items, field: str, n_wave: int) -> np.ndarray:
    dtype, fill = FIELDS[field]
    if field == "ok":
        return np.array([it.failure is None for it in items], dtype=bool)
    out = np.full((len(items), n_wave), fill, dtype=dtype)
    for i, it in enumerate(items):
        if it.failure is not None:
            continue
        v = getattr(it.value, field, None)
        if v is not None and np.shape(v) == (n_wave,):
            out[i] = v
    return out


def batch_rows(items, fields: Sequence[str], n_wave: int, positions: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """The zarr rows of one batch, or of its elements at ``positions``: ``{field: array}``
    (runs where the batch is, so only these arrays — not the spectra with their
    calibrations — travel to the chunk writer)."""
    if positions is not None:
        items = [items[p] for p in positions]
    return {f: _field_rows(items, f, n_wave) for f in fields}


def write_chunk(arrays: dict, lo: int, hi: int, placements: Sequence[tuple[int, int, int]], *parts) -> int:
    """Write rows ``lo:hi`` of every array in ``arrays`` (one zarr chunk) from batch rows.

    ``parts`` are :func:`batch_rows` results; ``placements`` are ``(k, position, row)``:
    element ``position`` of ``parts[k]`` goes to ``row``. A chunk only partly covered (a
    re-run that recomputes some objects) is read first, so rows of earlier runs stay.
    Exactly one task writes each chunk. Returns the number of rows written.
    """
    full = len(placements) == hi - lo
    for field, arr in arrays.items():
        slab = None if full else np.asarray(arr[lo:hi])
        if slab is None:
            dtype, fill = FIELDS[field]
            slab = np.full((hi - lo,) + tuple(arr.shape[1:]), fill, dtype=dtype)
        for k, pos, row in placements:
            slab[row - lo] = parts[k][field][pos]
        arr[lo:hi] = slab
    return len(placements)


def _finish(*_) -> None:
    return None


def write_layer(coll, arrays: dict, rows: Sequence[int], chunk_rows: int, n_rows: int):
    """A Delayed that writes ``coll``'s elements into ``arrays`` at ``rows`` (chunk-aligned tasks).

    ``rows[e]`` is the row of the e-th element (collection order); ``chunk_rows`` must
    be the arrays' row chunking.
    """
    from dask.delayed import Delayed

    if len(rows) != len(coll):
        raise ValidationError(f"rows: expected {len(coll)} row numbers, got {len(rows)}")
    name = f"zarr-write-{tokenize(coll.name, list(rows), sorted(arrays), chunk_rows, n_rows)}"
    by_chunk: dict[int, list[tuple[int, int, int]]] = {}
    e = 0
    for i, length in enumerate(coll.lengths):
        for pos in range(length):
            row = int(rows[e])
            by_chunk.setdefault(row // chunk_rows, []).append((i, pos, row))
            e += 1
    dsk: dict = {}
    keys = []
    n_wave = int(coll.grid.size) if coll.grid is not None else 0
    extract = bind(batch_rows, fields=tuple(arrays), n_wave=n_wave)
    for c, placements in sorted(by_chunk.items()):
        parts = sorted({i for i, _, _ in placements})
        index = {i: k for k, i in enumerate(parts)}
        at: dict[int, int] = {}  # an element's position in its batch's rows of this chunk
        placed = []
        for i, pos, row in placements:
            placed.append((index[i], at.setdefault(i, 0), row))
            at[i] += 1
        for i in parts:
            dsk[(f"{name}-rows", i, c)] = (bind(extract, positions=tuple(pos for j, pos, _ in placements if j == i)),
                                           (coll.name, i))
        lo, hi = c * chunk_rows, min((c + 1) * chunk_rows, n_rows)
        key = (f"{name}-chunk", c)
        dsk[key] = (write_chunk, arrays, lo, hi, placed, *[(f"{name}-rows", i, c) for i in parts])
        keys.append(key)
    dsk[name] = (_finish, *keys)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[coll])
    return Delayed(name, graph, layer=name)


def open_store_group(store, group: str | None = None, *, mode: str = "a"):
    """``zarr.open_group`` of a path, fsspec URL or store (and a sub-group)."""
    import zarr

    if isinstance(store, os.PathLike):
        store = os.fspath(store)
    root = zarr.open_group(store, mode=mode)
    if group:
        root = root.require_group(group)
    return root


def _strings(g, name: str, values) -> None:
    arr = g.create_array(name, shape=(len(values),), dtype=str, overwrite=True)
    if len(values):
        arr[:] = np.array(list(values), dtype=object)


def create_group(store, group: str | None, *, ids: Sequence[str], object_ids: Sequence[str], grid, fields,
                 chunk_rows: int, attrs: dict | None = None):
    """Create (replace) a results group: ids and grid written now, empty field arrays."""
    n, n_wave = len(ids), int(np.size(grid))
    g = open_store_group(store, group, mode="a")
    for key in list(g.array_keys()):
        del g[key]
    g.create_array("wavelength", data=np.asarray(grid, float), overwrite=True)
    _strings(g, "spectrum_id", ids)
    _strings(g, "object_id", object_ids)
    arrays = {}
    rows = max(1, min(chunk_rows, n)) if n else 1
    for f in fields:
        dtype, fill = FIELDS[f]
        shape = (n,) if f == "ok" else (n, n_wave)
        chunks = (rows,) if f == "ok" else (rows, n_wave)
        arrays[f] = g.create_array(f, shape=shape, chunks=chunks, dtype=dtype, fill_value=fill, overwrite=True)
    g.attrs.update(jsonable(dict(attrs or {}, wave_unit="um", flux_unit="uJy", n=n)))
    return g, arrays, rows


def to_zarr(coll, store, *, group: str | None = None, compute: bool = True, attrs: dict | None = None,
            overwrite: bool = True, chunk_rows: int | None = None):
    """Write a gridded LazySpectra to ``store`` (see the module docstring).

    Returns
    -------
    The zarr group when ``compute=True``; otherwise a Delayed that writes the arrays.
    """
    if coll.grid is None:
        raise ValidationError("to_zarr: the spectra are not on a common grid; call .resample(grid) first")
    rows = int(config.get("graph.batch-size", override_with=chunk_rows))
    fields = ["fnu", "fnu_err", "ok"] + (["count"] if coll.stage == "stacked" else [])
    meta = {"kind": coll.kind, "stage": coll.stage, "steps": [s for s, _ in coll.steps]}
    meta.update(attrs or {})
    refs = coll.refs
    g, arrays, rows = create_group(store, group, ids=[r.spectrum_id for r in refs],
                                   object_ids=[r.object_id for r in refs], grid=coll.grid, fields=fields,
                                   chunk_rows=rows, attrs=meta)
    if not len(coll):
        return g if compute else _noop_delayed()
    done = write_layer(coll, arrays, range(len(coll)), rows, len(coll))
    if compute:
        done.compute()
        return g
    return done


def _noop_delayed():
    from dask import delayed

    return delayed(_finish)()


def write_spectrum_group(store, group: str, spec, *, attrs: dict | None = None) -> None:
    """Write one SpectrumData (a population stack) as a group: wavelength, fnu, fnu_err, count + attrs."""
    g = open_store_group(store, group, mode="a")
    for key in list(g.array_keys()):
        del g[key]
    g.create_array("wavelength", data=np.asarray(spec.wavelength, float), overwrite=True)
    g.create_array("fnu", data=np.asarray(spec.fnu, float), overwrite=True)
    g.create_array("fnu_err", data=np.asarray(spec.fnu_err, float), overwrite=True)
    if spec.count is not None:
        g.create_array("count", data=np.asarray(spec.count, np.int32), overwrite=True)
    meta = {"spectrum_id": spec.spectrum_id, "meta": spec.meta, "wave_unit": "um", "flux_unit": fnu_unit_of(spec)}
    window = norm_window_of(spec)
    if window:  # a normalised stack is dimensionless: say so, and relative to what
        meta.update(norm_window=list(window),
                    flux_normalization=f"f_nu / median f_nu in {window[0]}-{window[1]} um"
                                       + (" (rest frame)" if spec.rest_frame else ""))
    meta.update(attrs or {})
    g.attrs.update(jsonable(meta))
