"""Lazy access to the compiled kernels: C (built at install) and numba (compiled on first use).

Two families of kernels, the resampling (:mod:`campfire.tasks.resample`) and the redshift
fit's χ² grid (:mod:`campfire.tasks.redshift`), each exist three times, tried in this order by
``engine="auto"``:

1. ``'c'``: :mod:`campfire.tasks._cresample` and :mod:`campfire.tasks._czfit`, C extensions
   built by ``pip install`` when a C compiler is there (optional: the install succeeds without
   one). Loading one costs ~1 ms, so a fresh process's (or Dask worker's) first call never
   starts numba, and a new machine never waits for numba to compile the fit (11–14 s).
2. ``'numba'``: :mod:`campfire.tasks._numba_resample` and :mod:`campfire.tasks._numba_kernels`;
   the same numbers bit for bit. numba is a dependency, imported only when first needed
   (~0.25 s, its first compiled call ~0.35 s more: numba's registries, SciPy's BLAS probe; the
   fit's kernels compile once per machine, then load from numba's cache).
3. ``'numpy'``: the fallbacks in the task modules (the same numbers to a few ulps).

Each loader returns ``None`` when its kernels cannot be loaded, so callers fall back.
"""
from __future__ import annotations

import functools
import importlib
import os
import threading
from types import ModuleType

from campfire.errors import ValidationError

__all__ = ["c_available", "c_kernels", "fit_c_kernels", "kernels", "numba_available", "numba_cache_dir",
           "resample_kernels", "resolve_engine", "ENGINES", "FAMILIES"]

ENGINES = ("auto", "c", "numba", "numpy")  # of every family
# the C extension of each family of kernels
FAMILIES = {"fit": "_czfit", "resample": "_cresample"}
# set (≠ 0) in the environment: campfire does not load its C extension (engine "auto" uses numba,
# then numpy), and the test suite accepts that the extension is not built (tests/tasks/test_resample_c.py)
DISABLE_C_ENV = "CAMPFIRE_DISABLE_C"
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

    ``CAMPFIRE_DISABLE_NUMBA=1`` in the environment forces the numpy paths of the fit (and
    of resampling, with ``CAMPFIRE_DISABLE_C=1``): used by tests and benchmarks to exercise
    the fallback in a process that has numba.
    """
    if _disabled("CAMPFIRE_DISABLE_NUMBA"):
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


def _disabled(variable: str) -> bool:
    return os.environ.get(variable, "").strip() not in ("", "0")


@functools.lru_cache(maxsize=None)
def _c_module(name: str) -> ModuleType | None:
    """The C extension ``campfire.tasks.<name>``, or None when it was not built (no C compiler at
    install) or ``CAMPFIRE_DISABLE_C=1`` is set."""
    if _disabled(DISABLE_C_ENV):
        return None
    try:
        return importlib.import_module(f"campfire.tasks.{name}")
    except ImportError:
        return None


def c_kernels() -> ModuleType | None:
    """The resampling kernels in C (:mod:`campfire.tasks._cresample`), or None (see :func:`_c_module`)."""
    return _c_module(FAMILIES["resample"])


def fit_c_kernels() -> ModuleType | None:
    """The redshift fit's χ² kernel in C (:mod:`campfire.tasks._czfit`), or None (see :func:`_c_module`)."""
    return _c_module(FAMILIES["fit"])


def c_available(family: str = "resample") -> bool:
    """True when the C kernels of ``family`` (``'resample'`` or ``'fit'``) load (built at install)."""
    return _c_module(FAMILIES[family]) is not None


def kernels() -> ModuleType | None:
    """The redshift fit's compiled kernels (:mod:`campfire.tasks._numba_kernels`), or None without numba."""
    return _load("_numba_kernels")


def resample_kernels() -> ModuleType | None:
    """The resampling kernels (:mod:`campfire.tasks._numba_resample`), or None without numba.

    A module of their own: a process that only resamples does not define the fit's kernels.
    """
    return _load("_numba_resample")


def numba_available() -> bool:
    """True when the numba kernels can be used (numba imports; the kernel modules load on first use)."""
    return _load("_numba_resample") is not None


def resolve_engine(engine: str | None, *, family: str = "fit") -> str:
    """The implementation ``engine`` names for the kernels of ``family`` (``'fit'``, the redshift
    fit's, or ``'resample'``): 'auto' is the first of 'c', 'numba', 'numpy' that loads.

    Raises
    ------
    ValidationError
        An engine not in :data:`ENGINES`, or one asked for by name that cannot be loaded.

    Examples
    --------
    >>> resolve_engine("numpy")
    'numpy'
    """
    key = "auto" if engine is None else str(engine).lower()
    if key not in ENGINES:
        raise ValidationError(f"engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
    if key == "auto":
        if c_available(family):
            return "c"
        return "numba" if numba_available() else "numpy"
    if key == "c" and not c_available(family):
        why = (f"{DISABLE_C_ENV} is set" if _disabled(DISABLE_C_ENV) else
               "campfire's C extension was not built (reinstall campfire where a C compiler is installed)")
        raise ValidationError(f"engine: 'c' was asked for but {why}")
    if key == "numba" and not numba_available():
        raise ValidationError("engine: 'numba' was asked for but numba is not installed (pip install numba)")
    return key
