"""One BLAS thread while a task's small matrix products run (:func:`one_blas_thread`).

The redshift fit multiplies matrices of a few hundred by a few dozen elements. OpenBLAS
runs such products on one thread per core and keeps the threads spinning between calls:
on 2 cores, 80 fits one after another took 62.6 ms of CPU a fit for 35.4 ms of wall clock
on the library's default threads, and 35.8 ms of both with one (bench/bench_fit_blas.py).
The thread count also changes how the products round (one ulp in a model flux), so with
one thread a fit gives the same bits on every machine: the archive's (the demo build pins
its workers to one thread too) and a notebook's.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

__all__ = ["one_blas_thread", "one_blas_thread_from_now_on"]

_controller = None


def _libraries():
    """The process's BLAS libraries (numpy's and SciPy's OpenBLAS), looked up once (3 ms)."""
    global _controller
    if _controller is None:
        import scipy.linalg  # noqa: F401  SciPy's own OpenBLAS loaded, so that it is limited too
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit BLAS to one thread inside the block when it runs in the main thread.

    The main thread is where a notebook or a script fits. From another thread the block does
    nothing: OpenBLAS (0.3.31, numpy's wheels) ignores a thread count set outside the main
    thread once the main thread has set one, and a limit lifted by one thread would hold
    for all (a process whose threads fit: :func:`one_blas_thread_from_now_on`). ~17 µs a block.

    Examples
    --------
    >>> import numpy as np
    >>> with one_blas_thread():
    ...     float((np.ones((3, 3)) @ np.ones(3))[0])
    3.0
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    limit = _libraries().limit(limits=1, user_api="blas")
    try:
        yield
    finally:
        limit.restore_original_limits()


def one_blas_thread_from_now_on() -> None:
    """Limit BLAS to one thread for the rest of this process; call it from its main thread.

    For a process whose threads fit at once (``campfire serve``: the portal's refits) or
    one of several worker processes (the demo build's): fits on two threads took 37.2 ms a
    fit with the library's threads and 24.8 ms with this, as with ``OPENBLAS_NUM_THREADS=1``
    at start (25.8 ms; 2 cores, bench/bench_fit_blas.py).
    """
    _libraries().limit(limits=1, user_api="blas")
