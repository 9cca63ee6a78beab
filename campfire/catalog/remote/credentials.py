"""Where OAuth tokens are kept: one entry per server in a user-only (0600) JSON file.

The file is :func:`campfire.config.credentials_path` (``~/.config/campfire/credentials.json``);
an entry holds the user name, the access and refresh tokens and when the access token
expires. :class:`CredentialStore` writes it atomically under an advisory lock, so the
CLI, notebooks and Dask workers can share it.

Examples
--------
>>> store = CredentialStore('/tmp/creds/credentials.json')             # doctest: +SKIP
>>> store.get('http://127.0.0.1:8000')['username']                      # doctest: +SKIP
'alice'
"""
from __future__ import annotations

import contextlib
import json
import os
import pathlib
import threading
import time

from campfire import config

__all__ = ["CredentialStore", "token_entry", "refresh_margin"]


class CredentialStore:
    """Tokens per server in a JSON file readable by its owner only (mode 0600).

    Writes go to a temporary file created 0600 and renamed over the old one, under an
    advisory lock, so concurrent processes (CLI, notebooks, Dask workers) never see
    a half-written file and never refresh the same token twice.

    Parameters
    ----------
    path : path, optional
        The file; default :func:`campfire.config.credentials_path`.
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = pathlib.Path(path) if path is not None else config.credentials_path()

    def _make_dir(self) -> None:
        """The file's directory and every missing parent (``~/.config`` too), user-only.

        ``mkdir(parents=True)`` would create the parents with the umask's mode:
        ``~/.config`` world-writable under ``umask 000``.
        """
        missing = []
        folder = self.path.parent
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for folder in reversed(missing):
            with contextlib.suppress(FileExistsError):  # another process made it meanwhile
                os.mkdir(folder, 0o700)
                os.chmod(folder, 0o700)  # the umask may have taken bits from mkdir's mode

    @contextlib.contextmanager
    def locked(self):
        """An exclusive advisory lock over read-modify-write cycles (refresh, login)."""
        self._make_dir()
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            try:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX)
            except ImportError:  # pragma: no cover - non-POSIX
                pass
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _read_all(self) -> dict:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return {"servers": {}}
        except (OSError, ValueError):
            return {"servers": {}}
        if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
            return {"servers": {}}
        return data

    def get(self, server: str) -> dict | None:
        """The entry of ``server`` (its base URL), or None."""
        entry = self._read_all()["servers"].get(server)
        return entry if isinstance(entry, dict) else None

    def put(self, server: str, entry: dict | None) -> None:
        """Store (or with None, remove) the entry of ``server``; call under :meth:`locked`."""
        data = self._read_all()
        if entry is None:
            data["servers"].pop(server, None)
        else:
            data["servers"][server] = entry
        self._make_dir()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def mtime(self) -> float:
        """When the file last changed (0 when there is none): a cache key for readers."""
        try:
            return self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return 0


def token_entry(payload: dict) -> dict:
    """The stored entry of a token response (``/auth/token``)."""
    return {
        "username": payload.get("username"),
        "access_token": payload["access_token"],
        "refresh_token": payload.get("refresh_token"),
        "expires_at": time.time() + float(payload.get("expires_in", 0)),
        "expires_in": float(payload.get("expires_in", 0)),
        "saved_at": time.time(),
    }


def refresh_margin(entry: dict) -> float:
    """Refresh this long before expiry: 30 s, or a quarter of a short token lifetime."""
    return min(30.0, 0.25 * float(entry.get("expires_in") or 120.0))
