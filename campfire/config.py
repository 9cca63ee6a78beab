"""Configuration: data_dir / base_url resolution and the packaged Dask defaults.

The package's defaults live in ``campfire/campfire.yaml`` under the ``campfire:``
key (the way ``distributed/distributed.yaml`` does it) and are registered with
``dask.config.update_defaults`` (:func:`register`), so ``dask.config.set`` and
``DASK_CAMPFIRE__*`` environment variables override them. Values are read when a
function runs, never in a signature default.

Registration waits until Dask is in use — ``import dask`` costs ~0.1 s, which
``import campfire`` does not pay: it happens on the first :func:`get`, on
``import campfire.graphs``, or at ``import campfire`` when Dask was imported before.
"""
from __future__ import annotations

import copy
import os
import pathlib
import sys
import threading
from typing import Any

_DEFAULTS_FILE = pathlib.Path(__file__).with_name("campfire.yaml")
_registered = False
_defaults: dict = {}
_register_lock = threading.Lock()

API_PREFIX = "/api/v1"


def register() -> None:
    """Make the packaged defaults part of Dask's config (a user's values win).

    They are registered once with ``dask.config.update_defaults`` (so
    ``dask.config.refresh`` keeps them), and merged back whenever the ``campfire`` key
    has gone since: a ``dask.config.set({"campfire.…": …})`` block entered before they
    were registered removes the whole key when it exits (it restores a key that was absent).
    """
    global _registered, _defaults
    import dask.config

    if _registered and "campfire" in dask.config.config:
        return
    with _register_lock:
        if not _registered:
            import yaml

            with _DEFAULTS_FILE.open() as f:
                _defaults = yaml.safe_load(f)
            dask.config.update_defaults(_defaults)
            _registered = True
        elif "campfire" not in dask.config.config:
            dask.config.update(dask.config.config, copy.deepcopy(_defaults), priority="old")


def package_version() -> str:
    """campfire's version: pyproject's, read from the installed metadata (``'unknown'`` in a bare source tree)."""
    from importlib import metadata

    try:
        return metadata.version("campfire")
    except metadata.PackageNotFoundError:
        return "unknown"


def get(key: str, override_with: Any = None) -> Any:
    """Read ``campfire.<key>`` from the Dask config unless ``override_with`` is given."""
    register()
    import dask.config

    return dask.config.get(f"campfire.{key}", override_with=override_with)


if "dask" in sys.modules:  # a session that already uses Dask sees campfire's keys at once
    register()


def demo_root() -> pathlib.Path:
    """Where the embedded demo archive lives (built on first use)."""
    configured = get("demo-root")
    if configured:
        return pathlib.Path(configured).expanduser()
    return pathlib.Path("~/.cache/campfire/demo").expanduser()


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """``data_dir`` argument, then ``$CAMPFIRE_ROOT``, then config, then ``~/campfire``."""
    if data_dir is None:
        data_dir = os.environ.get("CAMPFIRE_ROOT") or get("data-dir") or "~/campfire"
    return pathlib.Path(data_dir).expanduser().resolve()


def resolve_base_url(base_url: str | None = None) -> str | None:
    """``base_url`` argument, then ``$CAMPFIRE_API_URL``. There is no production default."""
    url = base_url or os.environ.get("CAMPFIRE_API_URL") or None
    return url.rstrip("/") if url else None


def credentials_path() -> pathlib.Path:
    """The user-only (0600) file that holds OAuth tokens per server."""
    base = os.environ.get("CAMPFIRE_CONFIG_DIR") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or "~/.config", "campfire"
    )
    return pathlib.Path(base).expanduser() / "credentials.json"
