"""Where an archive root's products live: ``<root>/products`` or an fsspec URL (``s3://bucket/prefix``).

The catalog always names a product by its ``fits_path`` relative to the archive root
(``products/<observation>/<spectrum_id>.spec.fits``), wherever the bytes are: the
catalog, its export and every client's synced copy stay the same when the products
move to an object store. An archive whose products live elsewhere records the URL in
its catalog (``archive_meta.products_url``, written by ``campfire archive ingest
--products-url``); :class:`ProductStore` maps a ``fits_path`` to the local file or to
``<products_url>/<observation>/<spectrum_id>.spec.fits``.

Endpoint and credentials come from the usual fsspec / s3fs configuration, never from
campfire: ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` or an
AWS profile, and fsspec's ``FSSPEC_S3_*`` variables or config files (``storage_options``).

Examples
--------
>>> store = ProductStore('/data/archive')
>>> store.location('products/obs1/obs1_prism_clear_1.spec.fits')
'/data/archive/products/obs1/obs1_prism_clear_1.spec.fits'
>>> ProductStore('/data/archive', 's3://bucket/dja').location('products/obs1/obs1_prism_clear_1.spec.fits')
's3://bucket/dja/obs1/obs1_prism_clear_1.spec.fits'
"""
from __future__ import annotations

import os
import posixpath
from typing import Any, BinaryIO

from campfire.errors import NotFoundError, ValidationError

__all__ = ["ProductStore", "PRODUCTS_URL_KEY", "PRODUCTS_DIR", "is_url", "check_products_url", "store_from_meta"]

PRODUCTS_URL_KEY = "products_url"  # the archive_meta key of an archive's object-store products
PRODUCTS_DIR = "products"


def is_url(path: str | os.PathLike) -> bool:
    """True for an fsspec URL (``s3://``, ``memory://``, ``file://``), False for a plain path."""
    return "://" in str(path)


def check_products_url(url: str | None) -> str | None:
    """A ``--products-url`` value, checked: an fsspec URL of a file system fsspec knows; None passes.

    Raises
    ------
    ValidationError
        Not a URL, an unknown protocol, or a server URL (``http://`` is read-only to fsspec).

    Examples
    --------
    >>> check_products_url('s3://bucket/prefix/')
    's3://bucket/prefix'
    """
    if url is None:
        return None
    text = str(url).strip().rstrip("/")
    protocol, sep, rest = text.partition("://")
    if not sep or not rest:
        raise ValidationError(f"products_url: expected an fsspec URL such as s3://bucket/prefix, got {url!r}")
    import fsspec

    if protocol in ("http", "https"):
        raise ValidationError(f"products_url: {protocol}:// is read-only; use the object store's own URL "
                              "(s3://bucket/prefix, gs://..., abfs://...)")
    try:
        fsspec.get_filesystem_class(protocol)
    except (ValueError, ImportError) as err:
        raise ValidationError(f"products_url: cannot use {protocol}:// ({err}); for s3:// install s3fs") from None
    return text


class ProductStore:
    """The products of one archive root, on its disk or under an fsspec URL.

    Parameters
    ----------
    root : path
        The archive root (its catalog stays there).
    url : str, optional
        The products' fsspec URL (``archive_meta.products_url``); None: ``<root>/products``.
    storage_options : dict, optional
        Passed to the fsspec file system (default: fsspec's configuration and the
        environment, e.g. ``AWS_ENDPOINT_URL``).
    """

    def __init__(self, root: str | os.PathLike, url: str | None = None, storage_options: dict | None = None):
        self.root = os.fspath(root)
        self.url = check_products_url(url) if url else None
        self.storage_options = dict(storage_options or {})
        self._fs = None

    def __repr__(self) -> str:
        return f"ProductStore({self.url or os.path.join(self.root, PRODUCTS_DIR)!r})"

    @property
    def is_remote(self) -> bool:
        """True when the products live under a URL, not under ``<root>/products``."""
        return self.url is not None

    @property
    def fs(self):
        """The fsspec file system of the URL (made once)."""
        if self._fs is None:
            import fsspec.core

            self._fs = fsspec.core.url_to_fs(self.url or self.root, **self.storage_options)[0]
        return self._fs

    def relative(self, fits_path: str) -> str:
        """``fits_path`` below ``products/``; only ever a path inside the products tree.

        Raises
        ------
        NotFoundError
            An absolute path, one that leaves ``products/`` (``..``), or a NUL byte: a
            catalog row can never name a file elsewhere.
        """
        if not fits_path or os.path.isabs(fits_path) or "\0" in fits_path or is_url(fits_path):
            raise NotFoundError("file not available on this server")
        norm = posixpath.normpath(fits_path.replace(os.sep, "/"))
        head, _, rest = norm.partition("/")
        if head != PRODUCTS_DIR or not rest or rest.startswith("../") or rest == "..":
            raise NotFoundError("file not available on this server")
        return rest

    def location(self, fits_path: str) -> str:
        """The local path or URL of a catalog ``fits_path``."""
        rest = self.relative(fits_path)
        if self.url is None:
            return os.path.join(self.root, PRODUCTS_DIR, *rest.split("/"))
        return f"{self.url}/{rest}"

    def _path(self, location: str) -> str:
        return self.fs._strip_protocol(location) if self.url else location

    def exists(self, fits_path: str) -> bool:
        """True when the product is there."""
        loc = self.location(fits_path)
        return self.fs.isfile(self._path(loc)) if self.url else os.path.isfile(loc)

    def size(self, fits_path: str) -> int:
        """The product's size in bytes.

        Raises
        ------
        NotFoundError
            No such product.
        """
        loc = self.location(fits_path)
        try:
            return int(self.fs.size(self._path(loc))) if self.url else os.path.getsize(loc)
        except (FileNotFoundError, OSError):
            raise NotFoundError("file not available on this server") from None

    def open(self, fits_path: str, block_size: int = 4 * 1024 * 1024) -> BinaryIO:
        """The product opened for reading (seekable; remote reads go in ``block_size`` requests)."""
        loc = self.location(fits_path)
        if self.url is None:
            return open(loc, "rb")
        try:
            return self.fs.open(self._path(loc), "rb", block_size=block_size)
        except FileNotFoundError:
            raise NotFoundError("file not available on this server") from None

    def presigned_url(self, fits_path: str, expires: int) -> str | None:
        """A URL anyone may GET for ``expires`` seconds (Range supported), or None if the store cannot sign."""
        if self.url is None:
            return None
        try:
            return self.fs.sign(self._path(self.location(fits_path)), expiration=int(expires))
        except NotImplementedError:
            return None

    # -- writing (the ingest) --------------------------------------------------------------------
    def put(self, local: str | os.PathLike, location: str) -> None:
        """Upload a local file to a URL this store names (one PUT / multipart upload: whole or nothing)."""
        self.fs.put_file(os.fspath(local), self._path(location))

    def delete(self, location: str) -> None:
        """Remove a product by its URL; a missing one is not an error."""
        try:
            self.fs.rm_file(self._path(location))
        except FileNotFoundError:
            pass


def store_from_meta(root: str | os.PathLike, meta: dict[str, Any]) -> ProductStore:
    """The store of an archive root whose ``archive_meta`` is ``meta``."""
    return ProductStore(root, meta.get(PRODUCTS_URL_KEY) or None)

