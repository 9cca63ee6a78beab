"""Lazy access to the compiled (numba) kernels.

numba is a dependency, imported only when first needed (it costs ~0.25 s, and its first
compiled call ~0.3 s more: numba's registries, SciPy's BLAS probe):
:func:`resample_kernels` / :func:`kernels` import :mod:`campfire.tasks._numba_resample` /
:mod:`campfire.tasks._numba_kernels` (which do ``import numba``) the first time a compiled
path is asked for, and return ``None`` when numba is absent so callers fall back to their
numpy implementation.
"""
from __future__ import annotations

import functools
import importlib
import os
import threading
from types import ModuleType

from campfire.errors import ValidationError

__all__ = ["kernels", "numba_available", "numba_cache_dir", "resample_kernels", "resolve_engine"]

ENGINES = ("auto", "numba", "numpy")
_CACHE_DIR_LOCK = threading.Lock()


def numba_cache_dir() -> str:
    """Where numba keeps campfire's compiled kernels: a user cache directory, never the package.

    ``$NUMBA_CACHE_DIR`` when set (numba's own setting, for every library), else
    ``$CAMPFIRE_CACHE_DIR/numba``, else ``$XDG_CACHE_HOME/campfire/numba`` (default
    ``~/.cache/campfire/numba``). Cache files inside an installed package would outlive
    it: ``pip install -e`` after ``pip install .`` removes the package's files but not
    numba's, and the leftover ``campfire/tasks/__pycache__`` folder then shadows the
    editable install as an empty namespace package.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    base = os.environ.get("CAMPFIRE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "campfire")
    path = os.path.join(base, "numba")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:  # no writable home (a locked-down container): a per-user temporary directory
        import tempfile

        path = os.path.join(tempfile.gettempdir(), f"campfire-numba-{os.getuid() if hasattr(os, 'getuid') else 0}")
        os.makedirs(path, exist_ok=True)
    return path


@functools.lru_cache(maxsize=None)
def _load(module: str) -> ModuleType | None:
    """The compiled-kernel module ``campfire.tasks.<module>``, or None when numba cannot be imported.

    The kernels' on-disk cache goes to :func:`numba_cache_dir`: numba picks a
    function's cache location when the function is decorated, so ``numba.config.CACHE_DIR``
    is set while the kernel module is imported and restored afterwards (other libraries'
    caches stay where they were).

    ``CAMPFIRE_DISABLE_NUMBA=1`` in the environment forces the numpy paths (used by
    tests and benchmarks to exercise the fallback in a process that has numba).
    """
    if os.environ.get("CAMPFIRE_DISABLE_NUMBA", "").strip() not in ("", "0"):
        return None
    try:
        import numba
    except ImportError:
        return None
    with _CACHE_DIR_LOCK:  # threads asking at once must not leave numba's setting changed
        previous = numba.config.CACHE_DIR
        numba.config.CACHE_DIR = numba_cache_dir()
        try:
            return importlib.import_module(f"campfire.tasks.{module}")
        except ImportError:
            return None
        finally:
            numba.config.CACHE_DIR = previous


def kernels() -> ModuleType | None:
    """The redshift fit's compiled kernels (:mod:`campfire.tasks._numba_kernels`), or None without numba."""
    return _load("_numba_kernels")


def resample_kernels() -> ModuleType | None:
    """The resampling kernels (:mod:`campfire.tasks._numba_resample`), or None without numba.

    A module of their own: a process that only resamples does not define the fit's kernels.
    """
    return _load("_numba_resample")


def numba_available() -> bool:
    """True when the compiled kernels can be used (numba imports; the kernel modules load on first use)."""
    return _load("_numba_resample") is not None


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
