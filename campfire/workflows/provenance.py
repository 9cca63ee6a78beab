"""Provenance: enough to re-run a workflow and get the same result.

Every output carries the workflow (path, sha256 of the file, its text in the zarr
store), the selection, the catalog state (``last_synced``, catalog version and the
sha256 of the catalog file), the content hash of every input file, and the
campfire / dask / numpy (astropy, zarr, python) versions. FITS outputs get short
header cards (``WFNAME``, ``WFSHA``, ``CATSYNC``, ``CATSHA``, ``CFVER``, ``DASKVER``,
``NPVER``, ``CFKEY``, ``INSPECn``/``INHASHn``) and a ``PROVENANCE`` table extension
holding the whole record as JSON; the zarr store keeps it in its attributes.

``CFKEY`` is the object's *input key*: a token of the steps with their options and
the object's inputs (ids, file hashes, photometry, redshift). A re-run skips an
object whose output carries the same key; change an option or a file and the key —
hence the output — changes.

Examples
--------
>>> v = versions()
>>> sorted(v)[:3]
['astropy', 'campfire', 'dask']
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import math
import os
import pathlib
import platform
from typing import Any, Iterable, Sequence

from dask.base import tokenize

from campfire.graphs.builders import token_of

#: decimals of the redshifts written to output headers and summary tables: Δz = 1e-4, as the
#: reference prints them (z=3.4210) and about what the gratings' line centroids determine
#: at z ~ 3; the catalog keeps full precision
REDSHIFT_DECIMALS = 4

__all__ = ["versions", "catalog_state", "steps_token", "object_key", "fits_cards", "build_provenance", "file_sha256"]


def versions() -> dict[str, str]:
    """Versions of campfire and the libraries that shape results."""
    from importlib import metadata

    import astropy
    import dask
    import numpy

    out = {"campfire": "unknown", "dask": dask.__version__, "numpy": numpy.__version__,
           "astropy": astropy.__version__, "python": platform.python_version()}

    # installed versions from the package metadata (campfire's is pyproject's, as campfire.__version__);
    # no need to import (distributed is heavy)
    for dist in ("campfire", "distributed", "zarr", "scipy", "numba", "fsspec"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:  # optional: recorded only when present
            pass
    return out


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def catalog_state(cf, refs: Sequence = ()) -> dict[str, Any]:
    """``last_synced``, catalog metadata, and ``catalog_sha256``: the hash of the catalog rows
    this run read (every selected spectrum's id, object, content hash, and its object's
    redshift and photometry).

    Hashing the selected rows rather than the database file costs nothing on a
    1,000,000-spectrum catalog and changes exactly when this run's inputs change; the
    file's size and modification time are recorded beside it.
    """
    state: dict[str, Any] = {"data_dir": str(cf.data_dir), "base_url": cf.base_url, "last_synced": None}
    if cf.is_local:
        cat = cf.local_catalog
        state["last_synced"] = cf.last_synced
        for key in ("catalog_version", "owner", "built_with", "schema_version", "sync_cursor"):
            value = cat.meta(key)
            if value is not None:
                state[key] = value
        db = pathlib.Path(cf.data_dir) / "meta" / "campfire.db"
        if db.exists():
            st = db.stat()
            state["catalog_file"] = {"bytes": st.st_size, "mtime": _dt.datetime.fromtimestamp(
                st.st_mtime, _dt.timezone.utc).isoformat(timespec="seconds")}
    h = hashlib.sha256()
    for parts in sorted((r.identity() for r in refs), key=lambda t: t[0]):
        h.update(repr(parts).encode())
    state["catalog_sha256"] = h.hexdigest()
    return state


def steps_token(workflow) -> str:
    """A token of the steps and their options (what every output depends on besides its inputs)."""
    return tokenize([(s.name, sorted(s.options.items(), key=str)) for s in workflow.steps])


def object_key(steps: str, refs: Sequence) -> str:
    """The input key of one object's outputs: steps + its inputs' identities and hashes."""
    return token_of((steps, sorted((r.identity() for r in refs), key=lambda t: t[0])))


def population_key(steps: str, name: str, object_keys: Iterable[str]) -> str:
    """The input key of a population stack: the steps, its name and every object's key."""
    return tokenize(steps, name, sorted(object_keys))


def build_provenance(workflow, cf, archive: str, refs: Sequence, *, started: str | None = None) -> dict[str, Any]:
    """The run's provenance record (JSON-friendly)."""
    return {
        "workflow": {"name": workflow.name, "path": os.path.abspath(workflow.path) if workflow.path else None,
                     "sha256": workflow.sha256, "text": workflow.text},
        "archive": archive,
        "selection": workflow.selection,
        "steps": [{"name": s.name, "options": s.options} for s in workflow.steps],
        "catalog": catalog_state(cf, refs),
        "inputs": {r.spectrum_id: r.file_hash for r in refs},
        "versions": versions(),
        "created": started or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def fits_cards(prov: dict[str, Any], key: str, inputs: Sequence[tuple[str, str]], *, object_name: str = "",
               redshift: float | None = None) -> dict[str, Any]:
    """Primary-header cards (≤ 8-character keys, ≤ 68-character strings) of an output file.

    The standard identification cards first — TELESCOP, INSTRUME, OBJECT and (when
    known) REDSHIFT, what a FITS viewer or another pipeline looks for — then the
    provenance cards.
    """
    cat = prov.get("catalog", {})
    ver = prov.get("versions", {})
    cards: dict[str, Any] = {"TELESCOP": "JWST", "INSTRUME": "NIRSPEC"}
    if object_name:
        cards["OBJECT"] = str(object_name)[:68]
    if redshift is not None and math.isfinite(redshift):
        cards["REDSHIFT"] = round(float(redshift), REDSHIFT_DECIMALS)  # the object's catalog redshift
    cards |= {
        "WFNAME": str(prov["workflow"]["name"])[:68],
        "WFSHA": prov["workflow"]["sha256"],
        "CATSYNC": str(cat.get("last_synced") or "")[:68],
        "CATVER": str(cat.get("catalog_version") or "")[:68],
        "CATSHA": str(cat.get("catalog_sha256") or ""),
        "CFVER": ver.get("campfire", ""),
        "DASKVER": ver.get("dask", ""),
        "NPVER": ver.get("numpy", ""),
        "CFKEY": key,
        "NINPUT": len(inputs),
    }
    for i, (sid, sha) in enumerate(inputs[:99], start=1):
        cards[f"INSPEC{i}"] = str(sid)[:68]
        cards[f"INHASH{i}"] = str(sha or "")
    return cards
