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

import os
import pathlib
import sys
from typing import Any

_DEFAULTS_FILE = pathlib.Path(__file__).with_name("campfire.yaml")
_registered = False

API_PREFIX = "/api/v1"


def register() -> None:
    """Register the packaged defaults with Dask's config (once; a user's values win)."""
    global _registered
    if _registered:
        return
    import dask.config
    import yaml

    with _DEFAULTS_FILE.open() as f:
        dask.config.update_defaults(yaml.safe_load(f))
    _registered = True


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
