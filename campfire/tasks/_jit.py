"""Lazy access to the compiled (numba) kernels.

numba is optional (the ``fast`` extra). Nothing here imports it at module import time:
:func:`kernels` imports :mod:`campfire.tasks._numba_kernels` (which does ``import numba``)
the first time a compiled path is asked for, and returns ``None`` when numba is absent
so callers fall back to their numpy implementation.
"""
from __future__ import annotations

import functools
import os
from types import ModuleType

from campfire.errors import ValidationError

__all__ = ["kernels", "numba_available", "resolve_engine"]

ENGINES = ("auto", "numba", "numpy")


@functools.lru_cache(maxsize=1)
def kernels() -> ModuleType | None:
    """The compiled-kernel module, or None when numba cannot be imported.

    ``CAMPFIRE_DISABLE_NUMBA=1`` in the environment forces the numpy paths (used by
    tests and benchmarks to exercise the fallback in a process that has numba).
    """
    if os.environ.get("CAMPFIRE_DISABLE_NUMBA", "").strip() not in ("", "0"):
        return None
    try:
        from campfire.tasks import _numba_kernels
    except ImportError:
        return None
    return _numba_kernels


def numba_available() -> bool:
    """True when the compiled kernels can be used."""
    return kernels() is not None


def resolve_engine(engine: str | None) -> str:
    """'numba' or 'numpy' for ``engine`` in ('auto', 'numba', 'numpy')."""
    key = "auto" if engine is None else str(engine).lower()
    if key not in ENGINES:
        raise ValidationError(f"engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
    if key == "auto":
        return "numba" if numba_available() else "numpy"
    if key == "numba" and not numba_available():
        raise ValidationError("engine: 'numba' was asked for but numba is not installed (pip install numba)")
    return key
