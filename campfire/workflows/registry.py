"""The registry of workflow step names, read-only to the outside (fsspec's ``registry.py`` way).

``registry`` maps a step name to the dotted path of its implementation
(``"module:attribute"``); the object is imported on first use, so listing the steps
imports nothing heavy. :func:`register_step` adds a step (a plugin's, say) — the
mapping itself is a :class:`types.MappingProxyType` and cannot be written to.

A step is an object with ``name``, ``doc``, ``options`` (option name →
:class:`~campfire.workflows.options.Option`) and ``apply(state, **options)``.

Examples
--------
>>> sorted(registry)
['calibrate', 'download', 'open', 'resample', 'stack']
>>> registry['calibrate']
'campfire.workflows.steps:CALIBRATE'
>>> registry['x'] = 'y'
Traceback (most recent call last):
...
TypeError: 'mappingproxy' object does not support item assignment
>>> get_step('calibrate').options['method'].default
'chebyshev'
"""
from __future__ import annotations

import importlib
from types import MappingProxyType
from typing import Any

from campfire.errors import ValidationError

__all__ = ["registry", "register_step", "get_step", "known_steps"]

_registry: dict[str, str] = {
    "download": "campfire.workflows.steps:DOWNLOAD",
    "open": "campfire.workflows.steps:OPEN",
    "calibrate": "campfire.workflows.steps:CALIBRATE",
    "resample": "campfire.workflows.steps:RESAMPLE",
    "stack": "campfire.workflows.steps:STACK",
}
registry = MappingProxyType(_registry)

# steps whose implementation lives in an optional package: name -> install hint
_install_hints: dict[str, str] = {}


def known_steps() -> list[str]:
    """Sorted step names."""
    return sorted(_registry)


def register_step(name: str, target: str | Any, *, clobber: bool = False, install_hint: str | None = None) -> None:
    """Register a step under ``name``.

    Parameters
    ----------
    name : str
        The name used in a workflow's ``steps:`` list.
    target : str or step object
        ``"package.module:ATTRIBUTE"`` (imported on first use) or the step object.
    clobber : bool
        Replace an existing registration (otherwise a ValidationError).
    install_hint : str, optional
        Shown when importing ``target`` fails (``pip install ...``).
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValidationError(f"name: expected an identifier-like step name, got {name!r}")
    if name in _registry and not clobber:
        raise ValidationError(f"step {name!r} is already registered ({_registry[name]}); pass clobber=True to replace it")
    if isinstance(target, str):
        _registry[name] = target
    else:
        _registry[name] = f"{__name__}:_objects.{name}"
        _objects[name] = target
    if install_hint:
        _install_hints[name] = install_hint


_objects: dict[str, Any] = {}


def get_step(name: str):
    """The step object registered under ``name`` (imported now)."""
    if name not in _registry:
        raise ValidationError(f"unknown step {name!r}; known steps: {', '.join(known_steps())}")
    if name in _objects:
        return _objects[name]
    module, _, attr = _registry[name].partition(":")
    try:
        obj = importlib.import_module(module)
    except ImportError as err:
        hint = _install_hints.get(name)
        raise ValidationError(f"step {name!r} needs {module}: {err}" + (f"; {hint}" if hint else "")) from err
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
