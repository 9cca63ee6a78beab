"""From catalog rows to :class:`~campfire.tasks.batch.SpectrumRef` batches (build time, client side).

A selection is resolved once, in the client process, into small picklable
references: where each file is (local path, fsspec URL under an archive root on
shared/object storage, or the server's file URL with a local destination), its
content hash, and the parent object's redshift and photometry. Batches never split
an object, so per-object stacks are a per-partition map.

Examples
--------
>>> from campfire.tasks.batch import SpectrumRef
>>> refs = [SpectrumRef(f's{i}', object_id=f'o{i // 2}') for i in range(6)]
>>> [[r.spectrum_id for r in b] for b in partition_refs(refs, 3)]
[['s0', 's1'], ['s2', 's3'], ['s4', 's5']]
"""
from __future__ import annotations

import math
import os
from dataclasses import replace
from typing import Any, Iterable, Sequence

from campfire.catalog.db import catalog_path, read_meta
from campfire.errors import CampfireError, ValidationError
from campfire.io.store import PRODUCTS_URL_KEY, ProductStore
from campfire.models import Photometry, Spectrum
from campfire.tasks.batch import SpectrumRef

__all__ = ["partition_refs", "refs_from_rows", "refs_from_spectra", "object_info", "join_url"]


def partition_refs(refs: Sequence[SpectrumRef], batch_size: int) -> list[list[SpectrumRef]]:
    """Pack refs into batches of at most ``batch_size``, never splitting an object.

    Objects keep the order of their first spectrum; an object with more spectra than
    ``batch_size`` gets a batch of its own.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(f"batch_size: expected a positive int, got {batch_size!r}")
    groups: dict[str, list[SpectrumRef]] = {}
    for r in refs:
        # spectra without an object each form their own group
        groups.setdefault(r.object_id or f"\0{r.spectrum_id}", []).append(r)
    batches: list[list[SpectrumRef]] = []
    current: list[SpectrumRef] = []
    for group in groups.values():
        if current and len(current) + len(group) > batch_size:
            batches.append(current)
            current = []
        current.extend(group)
    if current:
        batches.append(current)
    return batches


def join_url(root: str, relative: str) -> str:
    """``root`` + ``/`` + ``relative`` for paths and fsspec URLs alike."""
    return root.rstrip("/") + "/" + relative.lstrip("/")


def _local_object_info(cat, ids: list[str]) -> dict[str, tuple[float, Photometry | None]]:
    """Bulk lookup in the local SQLite catalog (schema.sql): two indexed queries per 900 ids."""
    out: dict[str, tuple[float, Photometry | None]] = {}
    conn = cat.conn
    for lo in range(0, len(ids), 900):  # SQLite's default limit of bound parameters is 999
        chunk = ids[lo:lo + 900]
        marks = ",".join("?" * len(chunk))
        heads = {r[0]: r[1:] for r in conn.execute(
            "SELECT object_id, redshift, has_photometry, phot_catalog, photo_z, photo_z_err_lo, photo_z_err_hi "
            f"FROM objects WHERE object_id IN ({marks})", chunk)}
        bands: dict[str, list] = {}
        for r in conn.execute(f"SELECT object_id, band, flux, flux_err, wavelength FROM photometry "
                              f"WHERE object_id IN ({marks}) ORDER BY object_id, wavelength", chunk):
            bands.setdefault(r[0], []).append(list(r[1:]))
        for oid in chunk:
            head = heads.get(oid)
            if head is None:
                continue
            z = float(head[0]) if head[0] is not None else math.nan
            phot = None
            if head[1] and bands.get(oid):
                phot = Photometry.from_record({"bands": bands[oid], "catalog": head[2], "photo_z": head[3],
                                               "photo_z_err_lo": head[4], "photo_z_err_hi": head[5]}, oid)
            out[oid] = (z, phot)
    return out


def object_info(cf, object_ids: Iterable[str]) -> dict[str, tuple[float, Photometry | None]]:
    """``object_id → (redshift, Photometry or None)`` for each object.

    A local catalog answers in bulk (a few indexed queries for 10,000 objects); a
    server, object by object.
    """
    ids = [oid for oid in dict.fromkeys(object_ids) if oid]
    if getattr(cf, "is_local", False):
        return _local_object_info(cf.local_catalog, ids)
    backend = cf.catalog(False)
    out: dict[str, tuple[float, Photometry | None]] = {}
    for oid in ids:
        row = backend.object_row(oid) or {}
        z = row.get("redshift")
        z = float(z) if z is not None else math.nan
        out[oid] = (z, Photometry.from_record(backend.object_photometry(oid), oid))
    return out


def _products(cf) -> ProductStore | None:
    """The object store of a local archive root's products (``archive_meta.products_url``), or None."""
    meta = read_meta(catalog_path(cf.data_dir))
    return ProductStore(cf.data_dir, meta[PRODUCTS_URL_KEY]) if meta.get(PRODUCTS_URL_KEY) else None


def _location(cf, row: dict, storage_root: str | None, prefer_server: bool = False,
              is_local: bool = False, products: ProductStore | None = None) -> tuple[str, str]:
    """(url, dest) of a catalog row's file; ``dest`` (server files) is relative to ``cf.data_dir``."""
    rel = row.get("fits_path") or ""
    base = getattr(cf, "base_url", None)
    if prefer_server and base:
        return cf.remote_catalog.file_url(row["spectrum_id"]), rel
    if storage_root:
        return join_url(storage_root, rel), ""
    local = row.get("local_path") or ""
    # without a server or an object store there is nowhere else to read it from: unchecked, as below
    if local and (not (base or products) or os.path.exists(local)):
        return local, rel if base else ""  # with a server, a worker that cannot see the copy fetches it
    if products is not None and rel:  # an archive root whose products live on an object store
        return products.location(rel), ""
    if base and is_local and rel and os.path.exists(os.path.join(cf.data_dir, rel)):
        return os.path.join(cf.data_dir, rel), rel  # a worker that cannot see the copy fetches it
    if base:
        return cf.remote_catalog.file_url(row["spectrum_id"]), rel
    if rel and cf is not None:
        # no server: the archive root's file, unchecked (6,000 stats are 0.15 s of a run's
        # start); a missing one fails in the open step, per spectrum
        return str(cf.data_dir / rel), ""
    raise CampfireError(f"spectrum {row.get('spectrum_id')!r}: no local file and no server to fetch it from")


def refs_from_rows(
    cf,
    rows: Iterable[dict[str, Any]],
    *,
    storage_root: str | None = None,
    with_objects: bool = True,
    prefer_server: bool = False,
) -> list[SpectrumRef]:
    """SpectrumRefs of catalog rows (dicts with the ``query_spectra`` columns).

    ``prefer_server`` points every file at the server (``cf.download``); otherwise a
    local copy wins and the server is the fallback.
    """
    rows = list(rows)
    info = object_info(cf, (r.get("object_id") or "" for r in rows)) if (with_objects and cf is not None) else {}
    refs = []
    is_local = bool(cf is not None and cf.is_local)  # once: it opens the catalog to check it
    products = _products(cf) if is_local and storage_root is None else None
    for r in rows:
        url, dest = _location(cf, r, storage_root, prefer_server, is_local, products)
        z, phot = info.get(r.get("object_id") or "", (math.nan, None))
        refs.append(
            SpectrumRef(
                spectrum_id=str(r["spectrum_id"]),
                object_id=str(r.get("object_id") or ""),
                grating=str(r.get("grating") or ""),
                url=url,
                file_hash=str(r.get("file_hash") or ""),
                file_size=int(r.get("file_size") or 0),
                redshift=z,
                photometry=phot,
                dest=dest,
            )
        )
    return refs


def refs_from_spectra(spectra: Iterable[Spectrum], *, cf=None, storage_root: str | None = None) -> list[SpectrumRef]:
    """SpectrumRefs of :class:`~campfire.models.Spectrum` rows (``obj.spectra.lazy()``).

    Parameters
    ----------
    spectra : iterable of Spectrum
    cf : Campfire, optional
        The client the rows came from: it resolves file locations (local copy first,
        else the server) and each object's redshift and photometry.
    storage_root : str, optional
        Read files from ``storage_root/<fits_path>``.

    Returns
    -------
    list of SpectrumRef
        Without a client, a row with no file to point at is opened here (through the
        opener the client attached, in this process) and travels in the graph as data.

    Raises
    ------
    ValidationError
        An item that is not a Spectrum.
    """
    spectra = list(spectra)
    for s in spectra:
        if not isinstance(s, Spectrum):
            raise ValidationError(f"spectra: expected Spectrum items, got {type(s).__name__}")
    refs = []
    for s in spectra:
        try:
            refs.extend(refs_from_rows(cf, [s.as_dict()], storage_root=storage_root, with_objects=False))
        except CampfireError:
            # a row with no file and no client (an in-memory opener): opened here, travels as data
            data = s.open()
            refs.append(SpectrumRef(spectrum_id=s.spectrum_id, object_id=s.object_id or (data.object_id or ""),
                                    grating=s.grating, data=data))
    if cf is not None:
        info = object_info(cf, (r.object_id for r in refs))
        refs = [replace(r, redshift=info[r.object_id][0], photometry=info[r.object_id][1]) if r.object_id in info else r
                for r in refs]
    return refs
