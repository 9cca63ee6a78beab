"""Server files for Dask workers that share no disk with the client.

The *download* step of a graph gets a :class:`ServerFiles`: the server and the client's
data_dir. In the client's own process (threads, synchronous) it is exactly
:func:`~campfire.transfer.download.fetch_ref` — files land in the data_dir and are
recorded in its ``local_files``. Pickled for a worker process it carries:

* the server URL and the client's data_dir (a worker that can write there uses it, as
  on a shared file system);
* where the client keeps its tokens: a process that shares the client's disk (its data_dir
  and that file are there: a process pool on the client's machine) uses the file and
  refreshes under its lock as the client does;
* else a :class:`WorkerToken`: the client's current **access** token only (never the refresh
  token: the server rotates refresh tokens and revokes a family on reuse, so a worker
  refreshing it would log the client out). The token is read when the task is
  pickled, is not part of any task key (:meth:`WorkerToken.__dask_tokenize__`) and
  never shows in a repr, so it does not reach the scheduler's keys, the dashboard or
  logs. It expires after ``campfire.server.access-token-ttl`` (15 min by default):
  longer runs on proprietary data read from an object store the workers have
  credentials for (their own environment) or use a longer TTL.

A worker that cannot write the client's data_dir (another machine, another mount,
another user) fetches into its **own cache** (:func:`worker_cache_dir`): streamed,
resumed with Range, verified against the catalog's sha256 exactly like a client
download, and reused by every later task on that worker.

Examples
--------
>>> files = ServerFiles(cf.remote_catalog, cf.data_dir)          # doctest: +SKIP
>>> files(ref)                                                    # doctest: +SKIP
'/tmp/dask-scratch-space/worker-x/campfire-files/products/obs/obs_prism_clear_1.spec.fits'
"""
from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile
import threading

from campfire.catalog.remote import RemoteCatalog
from campfire.catalog.remote.credentials import CredentialStore
from campfire.errors import DownloadError, NotFoundError
from campfire.io.store import is_object_url
from campfire.transfer.datadir import discard, file_sha256
from campfire.transfer.download import fetch_ref
from campfire.transfer.locks import file_lock

__all__ = ["ServerFiles", "WorkerToken", "worker_cache_dir", "cached_object", "is_object_url", "WORKER_CACHE_ENV"]

WORKER_CACHE_ENV = "CAMPFIRE_WORKER_CACHE"


class WorkerToken:
    """A credentials store held in memory: one server's access token, no refresh token.

    Behaves like :class:`~campfire.catalog.remote.credentials.CredentialStore` for the
    HTTP layer (``get``, ``put``, ``locked``, ``mtime``) without touching any file.
    Its repr and its Dask token never contain the token.
    """

    def __init__(self, server: str, access_token: str | None, expires_at: float = 0.0, username: str | None = None):
        self._server = server
        self._entry = ({"access_token": access_token, "expires_at": expires_at, "username": username}
                       if access_token else None)
        self._lock = threading.RLock()
        self._version = 0

    def __repr__(self) -> str:
        return f"WorkerToken({self._server!r}, <{'access token' if self._entry else 'anonymous'}>)"

    def __dask_tokenize__(self):
        return ("WorkerToken", self._server)  # never the secret itself

    def __reduce__(self):
        e = self._entry or {}
        return (WorkerToken, (self._server, e.get("access_token"), e.get("expires_at", 0.0), e.get("username")))

    def get(self, server: str) -> dict | None:
        return dict(self._entry) if server == self._server and self._entry else None

    def put(self, server: str, entry: dict | None) -> None:
        if server == self._server:
            self._entry = {k: v for k, v in (entry or {}).items() if k != "refresh_token"} or None
            self._version += 1

    @contextlib.contextmanager
    def locked(self):
        with self._lock:
            yield

    def mtime(self) -> float:
        return self._version


def worker_cache_dir() -> pathlib.Path:
    """This process's file cache: ``$CAMPFIRE_WORKER_CACHE``, else the Dask worker's local
    directory, else the system temporary directory (``campfire-files`` under it)."""
    explicit = os.environ.get(WORKER_CACHE_ENV)
    if explicit:
        return pathlib.Path(explicit)
    base = None
    with contextlib.suppress(ImportError, ValueError, AttributeError):
        from distributed import get_worker

        base = get_worker().local_directory
    return pathlib.Path(base or tempfile.gettempdir()) / "campfire-files"


def _writable_dir(path: str) -> bool:
    try:
        return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)
    except OSError:
        return False


class ServerFiles:
    """The downloader of a graph's server files (see the module docstring); picklable for workers.

    Parameters
    ----------
    remote : RemoteCatalog
        The client's server.
    data_dir : path
        The client's data_dir.
    """

    def __init__(self, remote: RemoteCatalog, data_dir: str | os.PathLike, *, in_client: bool = True):
        self.remote = remote
        self.data_dir = os.fspath(data_dir)
        self.in_client = in_client  # False once unpickled in another process

    def __repr__(self) -> str:
        return f"ServerFiles({self.remote.base_url!r}, {self.data_dir!r})"

    def __dask_tokenize__(self):
        return ("ServerFiles", self.remote.base_url, self.data_dir)

    def __reduce__(self):
        # for another process: the access token now (refreshed first if it is about to expire), nothing else;
        # and where the client keeps its tokens, which a process on the same disk (a process pool) uses instead
        http = self.remote.http
        token = http.access_token()
        entry = http._entry() or {}
        store = WorkerToken(self.remote.base_url, token, entry.get("expires_at", 0.0), entry.get("username"))
        path = getattr(self.remote.credentials, "path", None)
        return (_worker_files, (self.remote.base_url, self.data_dir, store, None if path is None else str(path)))

    def __call__(self, ref) -> str:
        """The local path of ``ref``'s file: fetched into the data_dir, or this worker's cache.

        The client's own process always uses its data_dir (created if need be); another
        process uses it only when it is there and writable (a shared file system).
        """
        if self.in_client or _writable_dir(self.data_dir):
            return fetch_ref(self.remote, self.data_dir, ref)
        return fetch_ref(self.remote, worker_cache_dir(), ref)


def _worker_files(base_url: str, data_dir: str, store: WorkerToken, credentials_path: str | None = None
                  ) -> ServerFiles:
    """A ServerFiles in another process: the client's token file when this process shares the client's disk
    (its data_dir and token file are here: it may refresh under the file's lock, as the client would), else
    the access token it was given."""
    if credentials_path and _writable_dir(data_dir) and os.access(credentials_path, os.R_OK):
        remote = RemoteCatalog(base_url, credentials=CredentialStore(credentials_path))
    else:
        remote = RemoteCatalog(base_url, auto_refresh=False, credentials=store)
    return ServerFiles(remote, data_dir, in_client=False)


def cached_object(ref) -> str:
    """The local path of an object-store product in this worker's cache, fetched and verified once.

    Kept as ``<cache>/objects/<sha256>.fits`` (the content hash is the catalog's, so a
    reprocessed product is a new entry and a stale one is never used); the object is
    copied to a ``.part`` file, its sha256 checked, then renamed — as a download from the
    server is. One fetch per file and worker, also across processes of one machine.

    Raises
    ------
    NotFoundError
        No such object.
    DownloadError
        The object's bytes do not match the catalog's sha256 (nothing is kept).
    """
    import fsspec.core

    folder = worker_cache_dir() / "objects"
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{ref.file_hash}.fits"
    if dest.is_file():
        return str(dest)
    with file_lock(dest.with_name(dest.name + ".lock")):
        if dest.is_file():
            return str(dest)
        part = dest.with_name(dest.name + f".{os.getpid()}.part")
        fs, path = fsspec.core.url_to_fs(ref.url)
        try:
            fs.get_file(path, str(part))
        except FileNotFoundError:
            discard(part)
            raise NotFoundError(f"no such file: {ref.url}") from None
        digest = file_sha256(part)
        if digest != ref.file_hash:
            discard(part)
            raise DownloadError(f"{ref.spectrum_id}: sha256 of {ref.url} is {digest[:12]}…, the catalog says "
                                f"{ref.file_hash[:12]}…; nothing was kept (re-sync, or the store holds another version)")
        os.replace(part, dest)
    return str(dest)
