"""Where an archive root's products and imaging live: in the root or under an fsspec URL (``s3://bucket/prefix``).

The catalog always names a product by its ``fits_path`` relative to the archive root
(``products/<observation>/<spectrum_id>.spec.fits``), wherever the bytes are: the
catalog, its export and every client's synced copy stay the same when the products
move to an object store. An archive whose products live elsewhere records the URL in
its catalog (``archive_meta.products_url``, written by ``campfire archive ingest
--products-url``); :class:`ProductStore` maps a ``fits_path`` to the local file or to
``<products_url>/<observation>/<spectrum_id>.spec.fits``.

The imaging (cutouts' stamps and mosaics, the MSA shutters; layout in
:mod:`campfire.imaging.archive`) is the same: ``<root>/imaging`` or the URL recorded as
``archive_meta.imaging_url`` (written by ``campfire archive push-imaging``), with the same
layout below it; :class:`ImagingStore` reads it.

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

from campfire.errors import CampfireError, ImagingError, NotFoundError, ValidationError

__all__ = ["ProductStore", "ImagingStore", "PRODUCTS_URL_KEY", "PRODUCTS_DIR", "IMAGING_URL_KEY", "IMAGING_DIR",
           "is_url", "is_object_url", "check_store_url", "check_products_url", "check_reachable", "store_from_meta",
           "imaging_store_from_meta"]

PRODUCTS_URL_KEY = "products_url"  # the archive_meta key of an archive's object-store products
PRODUCTS_DIR = "products"
IMAGING_URL_KEY = "imaging_url"  # the archive_meta key of an archive's object-store imaging
IMAGING_DIR = "imaging"


def is_url(path: str | os.PathLike) -> bool:
    """True for an fsspec URL (``s3://``, ``memory://``, ``file://``), False for a plain path."""
    return "://" in str(path)


_LOCAL_PROTOCOLS = ("file", "local", "memory")


def is_object_url(url: str) -> bool:
    """True for a file on remote storage that fsspec reads (``s3://``, ``gs://``...), not a local or in-memory one.

    Examples
    --------
    >>> is_object_url('s3://bucket/dja/a.spec.fits'), is_object_url('memory://a.fits'), is_object_url('/data/a.fits')
    (True, False, False)
    """
    protocol, sep, _ = url.partition("://")
    return bool(sep) and protocol.split("::")[-1] not in _LOCAL_PROTOCOLS and protocol not in ("http", "https")


def check_store_url(url: str | None, name: str = PRODUCTS_URL_KEY) -> str | None:
    """An object-store URL (``products_url``, ``imaging_url``), checked: an fsspec URL of a file system fsspec knows.

    Parameters
    ----------
    url : str or None
        None passes (no URL: the root's own folder).
    name : str
        The parameter's name, for the error message.

    Raises
    ------
    ValidationError
        Not a URL, an unknown protocol, or a server URL (``http://`` is read-only to fsspec).

    Examples
    --------
    >>> check_store_url('s3://bucket/imaging/', 'imaging_url')
    's3://bucket/imaging'
    """
    if url is None:
        return None
    text = str(url).strip().rstrip("/")
    protocol, sep, rest = text.partition("://")
    if not sep or not rest:
        raise ValidationError(f"{name}: expected an fsspec URL such as s3://bucket/prefix, got {url!r}")
    import fsspec

    if protocol in ("http", "https"):
        raise ValidationError(f"{name}: {protocol}:// is read-only; use the object store's own URL "
                              "(s3://bucket/prefix, gs://..., abfs://...)")
    try:
        fsspec.get_filesystem_class(protocol)
    except (ValueError, ImportError) as err:
        raise ValidationError(f"{name}: cannot use {protocol}:// ({err}); for s3:// install s3fs") from None
    return text


def check_products_url(url: str | None) -> str | None:
    """A ``--products-url`` value, checked (:func:`check_store_url`); None passes.

    Examples
    --------
    >>> check_products_url('s3://bucket/prefix/')
    's3://bucket/prefix'
    """
    return check_store_url(url, PRODUCTS_URL_KEY)


def check_reachable(fs, url: str, name: str) -> None:
    """Fail early, naming ``name``, when the object store at ``url`` cannot be listed (endpoint, credentials, bucket).

    An empty prefix is fine: the first upload creates it; a missing bucket is not.

    Raises
    ------
    CampfireError
        The store refused or could not be reached; the message says which configuration to check.
    """
    path = fs._strip_protocol(url)
    try:
        try:
            fs.ls(path, detail=False)
        except FileNotFoundError:
            # an empty prefix is fine (the first upload creates it), a missing bucket is not
            bucket = path.strip("/").split("/")[0]
            if bucket and bucket != path.strip("/") and not fs.exists(bucket):
                raise FileNotFoundError(f"no bucket {bucket!r}; create it first") from None
    except Exception as err:  # noqa: BLE001 - credentials, endpoint, bucket: say which before any work
        raise CampfireError(f"{name}: cannot reach {url} ({type(err).__name__}: {err}); check the "
                            "endpoint and credentials (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, FSSPEC_S3_*)") from err


class _Tree:
    """A folder of an archive root (``<root>/<DIR>``) or an fsspec URL holding the same layout."""

    DIR = ""
    KEY = ""

    def __init__(self, root: str | os.PathLike, url: str | None = None, storage_options: dict | None = None):
        self.root = os.fspath(root)
        self.url = check_store_url(url, self.KEY) if url else None
        self.storage_options = dict(storage_options or {})
        self._fs = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url or os.path.join(self.root, self.DIR)!r})"

    @property
    def is_remote(self) -> bool:
        """True when the tree lives under a URL, not in the archive root."""
        return self.url is not None

    @property
    def fs(self):
        """The fsspec file system of the URL (made once)."""
        if self._fs is None:
            import fsspec.core

            self._fs = fsspec.core.url_to_fs(self.url or self.root, **self.storage_options)[0]
        return self._fs

    def _path(self, location: str) -> str:
        return self.fs._strip_protocol(location) if self.url else location

    def put(self, local: str | os.PathLike, location: str) -> None:
        """Upload a local file to a URL this store names (one PUT / multipart upload: whole or nothing)."""
        self.fs.put_file(os.fspath(local), self._path(location))


class ProductStore(_Tree):
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

    DIR = PRODUCTS_DIR
    KEY = PRODUCTS_URL_KEY

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
    def delete(self, location: str) -> None:
        """Remove a product by its URL; a missing one is not an error."""
        try:
            self.fs.rm_file(self._path(location))
        except FileNotFoundError:
            pass


class ImagingStore(_Tree):
    """The imaging of one archive root: ``<root>/imaging`` or an fsspec URL with the same layout.

    Files are named by their path below the imaging folder (``uds/index.json``,
    ``uds/stamps/o1.fits``), given as parts; only ever a path inside it.

    Parameters
    ----------
    root : path
        The archive root.
    url : str, optional
        The imaging's fsspec URL (``archive_meta.imaging_url``); None: ``<root>/imaging``.
    storage_options : dict, optional
        Passed to the fsspec file system (default: fsspec's configuration and the environment).

    Examples
    --------
    >>> ImagingStore('/data/archive', 's3://bucket/imaging').location('uds', 'stamps/o1.fits')
    's3://bucket/imaging/uds/stamps/o1.fits'
    """

    DIR = IMAGING_DIR
    KEY = IMAGING_URL_KEY
    BLOCK_SIZE = 1 << 20  # bytes per remote read: a stamp in one request, a mosaic region in a few

    def put_many(self, files: list[tuple[str | os.PathLike, str]]) -> None:
        """Upload ``(local file, path below the imaging folder)`` pairs (concurrently where the store can)."""
        if files:
            self.fs.put([os.fspath(local) for local, _ in files],
                        [self._path(self.location(rel)) for _, rel in files])

    @property
    def available(self) -> bool:
        """True when the archive has imaging: a URL is recorded, or ``<root>/imaging`` exists."""
        return self.url is not None or os.path.isdir(os.path.join(self.root, IMAGING_DIR))

    @property
    def where(self) -> str:
        """The imaging folder's URL or path (for messages)."""
        return self.url or os.path.join(self.root, IMAGING_DIR)

    @staticmethod
    def relative(*parts: str) -> str:
        """The parts joined below the imaging folder.

        Raises
        ------
        NotFoundError
            An absolute path, a URL, a NUL byte or one that leaves the folder (``..``):
            an index can never name a file elsewhere.
        """
        text = "/".join(str(p) for p in parts).replace(os.sep, "/")
        norm = posixpath.normpath(text) if text else ""
        if (not norm or norm in (".", "..") or norm.startswith(("/", "../")) or "\0" in text or is_url(text)):
            raise NotFoundError(f"{text!r} is not a file of the imaging folder")
        return norm

    def location(self, *parts: str) -> str:
        """The local path or URL of a file below the imaging folder."""
        rest = self.relative(*parts)
        if self.url is None:
            return os.path.join(self.root, IMAGING_DIR, *rest.split("/"))
        return f"{self.url}/{rest}"

    def read_bytes(self, *parts: str) -> bytes:
        """A whole (small) file: an index or a shutters document.

        Raises
        ------
        NotFoundError
            No such file.
        ImagingError
            The store could not be read (endpoint, credentials).
        """
        loc = self.location(*parts)
        try:
            if self.url is None:
                with open(loc, "rb") as f:
                    return f.read()
            return self.fs.cat_file(self._path(loc))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(f"no such file: {loc}") from None
        except OSError as err:
            raise ImagingError(f"{self.KEY}: cannot read {loc} ({type(err).__name__}: {err})") from err

    def open(self, *parts: str) -> BinaryIO:
        """A file opened for reading (seekable; remote reads go in :attr:`BLOCK_SIZE` requests).

        Raises
        ------
        NotFoundError
            No such file.
        ImagingError
            The store could not be read.
        """
        loc = self.location(*parts)
        try:
            if self.url is None:
                return open(loc, "rb")
            return self.fs.open(self._path(loc), "rb", block_size=self.BLOCK_SIZE)
        except (FileNotFoundError, IsADirectoryError):
            raise NotFoundError(f"no such file: {loc}") from None
        except OSError as err:
            raise ImagingError(f"{self.KEY}: cannot read {loc} ({type(err).__name__}: {err})") from err

    def state(self, *parts: str) -> tuple:
        """What a file looks like now (local: mtime, size, inode; remote: ETag, size), () if missing.

        Caches key on it: a file rewritten in place gets a new state.
        """
        loc = self.location(*parts)
        if self.url is None:
            try:
                st = os.stat(loc)
            except OSError:
                return ()
            return st.st_mtime_ns, st.st_size, st.st_ino
        path = self._path(loc)
        self.fs.invalidate_cache(path)  # the store's own listing cache would hide a rewrite
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return ()
        except OSError as err:
            raise ImagingError(f"{self.KEY}: cannot read {loc} ({type(err).__name__}: {err})") from err
        if info.get("type") != "file":
            return ()
        return str(info.get("ETag") or info.get("etag") or info.get("mtime") or ""), int(info.get("size") or 0)


def store_from_meta(root: str | os.PathLike, meta: dict[str, Any]) -> ProductStore:
    """The product store of an archive root whose ``archive_meta`` is ``meta``."""
    return ProductStore(root, meta.get(PRODUCTS_URL_KEY) or None)


def imaging_store_from_meta(root: str | os.PathLike, meta: dict[str, Any]) -> ImagingStore:
    """The imaging of an archive root whose ``archive_meta`` is ``meta``."""
    return ImagingStore(root, meta.get(IMAGING_URL_KEY) or None)

