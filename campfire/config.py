"""Configuration: data_dir / base_url resolution and the packaged Dask defaults.

The package's defaults live in ``campfire/campfire.yaml`` under the ``campfire:``
key (the way ``distributed/distributed.yaml`` does it) and are registered with
``dask.config.update_defaults`` on import, so ``dask.config.set`` and
``DASK_CAMPFIRE__*`` environment variables override them. Values are read when a
function runs, never in a signature default.
"""
from __future__ import annotations

import os
import pathlib
from typing import Any

import dask.config
import yaml

_DEFAULTS_FILE = pathlib.Path(__file__).with_name("campfire.yaml")

with _DEFAULTS_FILE.open() as _f:
    defaults: dict[str, Any] = yaml.safe_load(_f)

dask.config.update_defaults(defaults)

API_PREFIX = "/api/v1"


def get(key: str, override_with: Any = None) -> Any:
    """Read ``campfire.<key>`` from the Dask config unless ``override_with`` is given."""
    return dask.config.get(f"campfire.{key}", override_with=override_with)


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
