"""Put an archive root's imaging on an object store: ``campfire archive push-imaging ROOT URL``.

The imaging (``<root>/imaging/<field>/index.json``, ``stamps/``, ``shutters/``) is
uploaded with its layout unchanged under the URL, every object is read back and
compared (sha256) with its local file, and only then does the catalog record the URL
(``archive_meta.imaging_url``): from then on cutouts and shutters — ``campfire serve``,
the portal, a client on the root — read the imaging from there
(:class:`campfire.io.store.ImagingStore`), and ``<root>/imaging`` may be removed.
Endpoint and credentials are the usual fsspec / s3fs configuration, as for the products.

Examples
--------
>>> push_imaging('/data/archive', 's3://dja-imaging/v4')  # doctest: +SKIP
{'imaging_url': 's3://dja-imaging/v4', 'fields': 4, 'files': 252, 'bytes': 14230400}
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
from typing import Any

from campfire.archive.run import writer_lock  # one writer of the archive root at a time
from campfire.catalog.db import catalog_path, connect, read_meta, write_meta
from campfire.catalog.local import LocalCatalog
from campfire.errors import CampfireError, ValidationError
from campfire.io.store import IMAGING_DIR, IMAGING_URL_KEY, ImagingStore, check_reachable, check_store_url

__all__ = ["push_imaging"]

_CHUNK = 4 * 1024 * 1024


def _sha256(f) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: f.read(_CHUNK), b""):
        digest.update(block)
    return digest.hexdigest()


def push_imaging(root: str | os.PathLike, imaging_url: str, *, storage_options: dict | None = None) -> dict[str, Any]:
    """Upload the archive root's imaging folder to ``imaging_url``, verify it, and record the URL.

    Parameters
    ----------
    root : path
        An archive root with an ``imaging/`` folder (``<field>/index.json``, stamps, shutters).
    imaging_url : str
        An fsspec URL (``s3://bucket/prefix``) the same layout is written under. Pushing
        again to the same URL overwrites the objects with the local files.
    storage_options : dict, optional
        Passed to the fsspec file system (default: fsspec's configuration and the
        environment: ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``FSSPEC_S3_*``).

    Returns
    -------
    dict
        ``imaging_url`` (normalised), ``fields``, ``files`` and ``bytes`` uploaded.

    Raises
    ------
    ValidationError
        ``imaging_url`` is not a writable fsspec URL, or ``root`` has no imaging folder with
        a ``<field>/index.json``.
    CampfireError
        ``root`` is not an archive root (or is a client's synced copy), the store cannot be
        reached, or an object read back differs from its file (nothing is recorded then).

    Examples
    --------
    >>> push_imaging('/data/archive', 's3://dja-imaging/v4')['files']  # doctest: +SKIP
    252
    """
    if not imaging_url:
        raise ValidationError("imaging_url: expected an fsspec URL such as s3://bucket/imaging, got nothing")
    url = check_store_url(imaging_url, IMAGING_URL_KEY)
    root = pathlib.Path(root).expanduser().absolute()
    if not LocalCatalog.is_valid(root):
        raise CampfireError(f"{root} is not an archive root (no valid meta/campfire.db)")
    meta = read_meta(catalog_path(root))
    if meta.get("owner") == "client":
        raise CampfireError(f"{root} is a client's synced copy (owner=client); push the imaging of an archive root")
    local = root / IMAGING_DIR
    recorded = meta.get(IMAGING_URL_KEY)
    if not local.is_dir():
        where = f"; its imaging is already under {recorded}" if recorded else ""
        raise ValidationError(f"root: {root} has no imaging folder ({local}) to push{where}")
    files = sorted(p for p in local.rglob("*") if p.is_file())
    indexes = [p for p in files if p.name == "index.json" and p.parent.parent == local]
    if not indexes:
        raise ValidationError(f"root: {local} holds no <field>/index.json; nothing to push")
    store = ImagingStore(root, url, storage_options)
    check_reachable(store.fs, url, IMAGING_URL_KEY)
    # the indexes last: a field shows on the store only once its stamps and shutters are there
    ordered = [p for p in files if p not in indexes] + indexes
    for group in ([p for p in files if p not in indexes], indexes):
        store.put_many([(path, path.relative_to(local).as_posix()) for path in group])
    total = 0
    for path in ordered:
        rel = path.relative_to(local).as_posix()
        with open(path, "rb") as f:
            want = _sha256(f)
        with store.open(rel) as f:
            got = _sha256(f)
        if got != want:
            raise CampfireError(f"imaging_url: {store.location(rel)} differs from {path} after the upload "
                                f"(sha256 {got[:12]}… != {want[:12]}…); the catalog was not changed")
        total += path.stat().st_size
    with writer_lock(root), contextlib.closing(connect(catalog_path(root), readonly=False)) as conn:
        write_meta(conn, {IMAGING_URL_KEY: url})
        conn.commit()
    return {"imaging_url": url, "fields": len(indexes), "files": len(ordered), "bytes": total}
