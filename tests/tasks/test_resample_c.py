"""The C resampling kernels (campfire/tasks/_cresample.c, built at install) against numba's.

The same numbers bit for bit on thousands of random cases, through every public path (one
spectrum, many on one grid, a ragged batch, in parallel), and the same error messages. The
numpy engine agrees to rounding.

CI builds the extension (``pip install -e .`` with a C compiler; ``.ci/run`` installs one), so
these tests FAIL when it is missing. ``CAMPFIRE_DISABLE_C=1`` in the environment says a run is
without it on purpose (campfire then does not load it, and ``engine='auto'`` is numba, then
numpy): the comparisons are then skipped and the first test checks that fallback instead.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from campfire.errors import ValidationError
from campfire.tasks import _jit
from campfire.tasks._jit import DISABLE_C_ENV, c_kernels, numba_available, resolve_engine
from campfire.tasks.resample import resample_batch, resample_flux

C_DISABLED = os.environ.get(DISABLE_C_ENV, "").strip() not in ("", "0")
needs_c = pytest.mark.skipif(C_DISABLED, reason=f"{DISABLE_C_ENV} is set: the C extension is absent on purpose")
CASES = 2500


def test_the_extension_is_built_and_auto_takes_it():
    if C_DISABLED:
        assert c_kernels() is None
        assert resolve_engine("auto", family="resample") == ("numba" if numba_available() else "numpy")
        with pytest.raises(ValidationError, match=f"^engine: 'c' was asked for but {DISABLE_C_ENV} is set"):
            resample_flux(np.arange(3.0), np.arange(3.0), np.ones(3), engine="c")
        return
    assert c_kernels() is not None, (
        "campfire.tasks._cresample is not built: `pip install -e .` where a C compiler is installed "
        f"(or set {DISABLE_C_ENV}=1 to run the tests without it on purpose)")
    assert resolve_engine("auto", family="resample") == "c"
    assert numba_available(), "numba, the reference of the bit-for-bit tests, is a dependency"


@needs_c
def test_a_fresh_process_resamples_without_numba_or_scipy():
    """The point of the extension (issue 16.4): the first call of a process loads no numba (nor the
    SciPy numba's start-up imports), for one spectrum and for a batch."""
    code = ("import sys, numpy as np; from campfire import resample_flux; "
            "from campfire.tasks.resample import resample_batch; w = np.linspace(1, 2, 50); "
            "resample_flux(w[5:-5], w, np.ones(50), np.ones(50)); resample_batch(w[5:-5], [w], [np.ones(50)]); "
            "print(sorted(m for m in ('numba', 'scipy', 'campfire.tasks._cresample') if m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if k != DISABLE_C_ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split("\n")[0] == "['campfire.tasks._cresample']"


def _grid(rng, lo, hi, size):
    kind = rng.integers(4)
    if kind == 0:
        return np.linspace(lo, hi, size)
    if kind == 1:
        return np.geomspace(lo, hi, size)
    w = np.unique(rng.uniform(lo, hi, size))
    return w if w.size >= 2 else np.array([lo, hi])


def _case(rng):
    """A random spectrum and output grid: bad pixels of every kind, grids that start and end inside,
    outside or exactly at the input's, bins far finer or coarser than the pixels."""
    n = int(rng.integers(2, 300))
    old = _grid(rng, 1.0, 5.0, n)
    shape = rng.integers(5)
    if shape == 0:
        new = old.copy()  # the same grid
    elif shape == 1:
        new = _grid(rng, old[0], old[-1], int(rng.integers(2, 40)))  # coarser, edges at the input's
    elif shape == 2:
        i = int(rng.integers(0, old.size - 1))
        new = np.linspace(old[i], old[i + 1], int(rng.integers(2, 30)))  # inside one or two pixels
    else:
        new = _grid(rng, rng.uniform(0.5, 2.0), rng.uniform(4.0, 5.5), int(rng.integers(2, 400)))
    size = old.size
    scale = 10.0 ** rng.integers(-20, 13)
    flux = (rng.normal(0, 1, size) + rng.choice([0.0, 1.0])) * scale
    err = np.abs(rng.normal(1, 0.3, size)) * scale
    for values, bad in ((flux, (np.nan, np.inf, -np.inf)), (err, (np.nan, np.inf, 0.0, -1.0))):
        hit = rng.random(size) < rng.choice([0.0, 0.05, 0.3, 1.0])
        values[hit] = rng.choice(bad, hit.sum())
    fill = float(rng.choice([np.nan, 0.0, -99.0, np.inf]))
    min_cov = float(rng.choice([0.0, 0.5, 1.0, rng.uniform()]))
    return new, old, flux, (err if rng.random() < 0.7 else None), fill, min_cov


def _same(a, b):
    """Bit for bit (NaNs in the same places; +0.0 and -0.0 told apart)."""
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _unaligned(a, readonly=False):
    """``a``'s values in an array at an odd byte offset (as Dask unpickles arrays from a network frame)."""
    buf = bytearray(a.nbytes + 1)
    out = np.frombuffer(buf, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    out.flags.writeable = not readonly
    return out


def _both(fn):
    """``fn(engine)`` for 'c' and 'numba', each result a tuple (flux, err-or-None)."""
    out = []
    for engine in ("c", "numba"):
        r = fn(engine)
        out.append(r if isinstance(r, tuple) else (r, None))
    return out


@needs_c
def test_one_spectrum_bit_for_bit_with_numba_and_numpy_to_rounding():
    rng = np.random.default_rng(29)
    numpy_checked = 0
    for i in range(CASES):
        new, old, flux, err, fill, min_cov = _case(rng)
        (cf, ce), (nf, ne) = _both(lambda engine: resample_flux(new, old, flux, err, fill, min_coverage=min_cov,
                                                                engine=engine))
        assert _same(cf, nf) and _same(ce, ne), (i, "c vs numba")
        # engine='auto' takes the C kernel's one-call path (grids and lengths checked inside it)
        auto = resample_flux(new, old, flux, err, fill, min_coverage=min_cov)
        assert _same(auto if err is None else auto[0], cf) and (err is None or _same(auto[1], ce)), (i, "auto")
        if i % 10 == 0:  # numpy: the same bins defined (away from exact coverage ties), values to rounding
            pf = resample_flux(new, old, flux, err, fill, min_coverage=min_cov, engine="numpy")
            pf = pf if err is None else pf[0]
            both = np.isfinite(pf) & np.isfinite(cf) & (pf != fill)
            np.testing.assert_allclose(pf[both], cf[both], rtol=1e-9, atol=1e-9 * np.nanmax(np.abs(cf[both]), initial=0))
            numpy_checked += int(both.sum())
    assert numpy_checked > 1000


@needs_c
def test_general_path_inputs_bit_for_bit():
    """What the one-call path hands on: float32, big-endian (FITS columns), lists, non-contiguous
    views, unaligned read-only arrays (unpickled by Dask), N-D fluxes (many spectra on one grid)
    — converted once, then the same kernels."""
    rng = np.random.default_rng(30)
    for i in range(600):
        new, old, flux, err, fill, min_cov = _case(rng)
        rows = int(rng.integers(1, 4))
        kind = i % 6
        f2 = np.stack([flux] + [rng.permutation(flux) for _ in range(rows - 1)])
        e2 = None if err is None else np.stack([err] * rows)
        if kind == 0:
            args = (new.astype(np.float32), old.astype(np.float32), f2.astype(np.float32),
                    None if e2 is None else e2.astype(np.float32))
        elif kind == 1:
            args = (new.astype(">f8"), old.astype(">f8"), f2.astype(">f8"), None if e2 is None else e2.astype(">f8"))
        elif kind == 2:
            args = (list(new), list(old), f2[0].tolist(), None if e2 is None else e2[0].tolist())
        elif kind == 3:  # every other value of interleaved arrays: strided 1D views
            def strided(a):
                out = np.empty(2 * a.shape[-1])
                out[::2] = a.ravel()[: a.shape[-1]]
                return out[::2]
            args = (strided(new), strided(old), strided(flux), None if err is None else strided(err))
        elif kind == 4:
            args = (_unaligned(new, True), _unaligned(old, True), _unaligned(f2, True),
                    None if e2 is None else _unaligned(e2, True))
        else:
            args = (new, old, f2.reshape(rows, 1, -1), None if e2 is None else e2.reshape(rows, 1, -1))
        (cf, ce), (nf, ne) = _both(lambda engine: resample_flux(*args, fill, min_coverage=min_cov, engine=engine))
        assert _same(cf, nf) and _same(ce, ne), (i, kind)
        auto = resample_flux(*args, fill, min_coverage=min_cov)
        assert _same(auto if err is None else auto[0], cf), (i, kind, "auto")


@needs_c
@pytest.mark.parametrize("parallel", [False, True])
def test_batches_bit_for_bit(parallel):
    """resample_batch: lists of own grids (the chunked ragged kernel), 2D arrays of grids, with and
    without the grid check, bad grids included when unchecked (both kernels then compute the same
    meaningless numbers), in parallel (threads for C, prange for numba)."""
    rng = np.random.default_rng(31 + parallel)
    for i in range(60):
        n_spec = int(rng.integers(1, 300 if i % 10 == 0 else 12))
        cases = [_case(rng) for _ in range(n_spec)]
        new = cases[0][0] if cases[0][0].size >= 2 else np.linspace(1.5, 4.5, 20)
        ws, fs = [c[1] for c in cases], [c[2] for c in cases]
        if i % 3 == 0:  # as a Dask worker receives them
            new, ws, fs = _unaligned(new, True), [_unaligned(w, True) for w in ws], [_unaligned(f, True) for f in fs]
        with_err = rng.random() < 0.7
        es = [c[3] if c[3] is not None else np.ones(c[1].size) for c in cases] if with_err else None
        check = bool(rng.integers(2))
        if not check and rng.random() < 0.5:
            ws[0] = ws[0][::-1].copy()  # decreasing: unchecked, computed anyway
        fill, min_cov = cases[0][4], cases[0][5]
        (cf, ce), (nf, ne) = _both(lambda engine: resample_batch(new, ws, fs, es, fill, min_coverage=min_cov,
                                                                 engine=engine, check=check, parallel=parallel))
        assert _same(cf, nf) and _same(ce, ne), (i, "lists")
        length = int(rng.integers(2, 200))
        W = np.stack([np.sort(rng.uniform(1.0, 5.0, length)) for _ in range(n_spec)])
        F = rng.normal(1, 1, W.shape)
        F[rng.random(W.shape) < 0.1] = np.nan
        (cf, ce), (nf, ne) = _both(lambda engine: resample_batch(new, W, F, None if not with_err else np.abs(F),
                                                                 fill, min_coverage=min_cov, engine=engine,
                                                                 check=check, parallel=parallel))
        assert _same(cf, nf) and _same(ce, ne), (i, "2D")


@needs_c
def test_the_same_errors_as_numba():
    w = np.linspace(1, 2, 10)
    bad_calls = [
        lambda engine: resample_flux(w[::-1], w, np.ones(10), engine=engine),
        lambda engine: resample_flux(w, np.r_[w[:5], np.nan, w[6:]], np.ones(10), engine=engine),
        lambda engine: resample_flux(w, w, np.ones(9), engine=engine),
        lambda engine: resample_flux(w, w, np.ones(10), np.ones(9), engine=engine),
        lambda engine: resample_flux(w[:1], w, np.ones(10), engine=engine),
        lambda engine: resample_flux(w, w, np.ones(10), min_coverage=1.5, engine=engine),
        lambda engine: resample_batch(w, [w, w[::-1]], [np.ones(10)] * 2, engine=engine),
        lambda engine: resample_batch(w, [w] * 200 + [w[:1]], [np.ones(10)] * 200 + [np.ones(1)], engine=engine),
        lambda engine: resample_batch(w, [w] * 3, [np.ones(10), np.ones(10), np.ones(9)], engine=engine),
        lambda engine: resample_batch(w, [w[:5], w, w[::-1], w[::-1]], [np.ones(5)] + [np.ones(10)] * 3,
                                      engine=engine, parallel=True),
    ]
    for i, call in enumerate(bad_calls):
        messages = []
        for engine in ("c", "numba", "numpy"):
            with pytest.raises(ValidationError) as info:
                call(engine)
            messages.append(str(info.value))
        assert messages[0] == messages[1] == messages[2], (i, messages)
    # in parallel the C kernels split a list into whole chunks, one share per thread: the first error of
    # the serial order still wins (a bad grid in chunk 2 before a bad length in chunk 3; numpy checks
    # every length first)
    ws, fs = [w] * 300, [np.ones(10)] * 300
    ws[250], fs[260] = w[::-1], np.ones(9)
    for engine in ("c", "numba"):
        for parallel in (False, True):
            with pytest.raises(ValidationError, match=r"^wavelengths\[250\]: expected ≥ 2 finite"):
                resample_batch(w, ws, fs, engine=engine, parallel=parallel)
    with pytest.raises(ValidationError, match=r"^engine: expected one of auto, c, numba, numpy, got 'fortran'"):
        resample_flux(w, w, np.ones(10), engine="fortran")


@needs_c
def test_kernels_refuse_arguments_that_would_read_out_of_bounds():
    """The kernels are private, but no argument may make C read or write past an array."""
    k = c_kernels()
    w = np.linspace(1, 2, 10)
    out = np.empty(10)
    # the one-call kernel declines (the caller then takes the general path)
    assert k.resample_one_checked(w, w, np.ones(10), np.ones(10), True, np.nan, 0.5, out, out) is True
    assert k.resample_one_checked(w, w, np.ones(9), np.ones(10), True, np.nan, 0.5, out, out) is False
    assert k.resample_one_checked(w, w, np.ones(10), np.ones(10), True, np.nan, 0.5, out[:9], out) is False
    assert k.resample_one_checked(w, w, np.ones(10, np.float32), np.ones(10), True, np.nan, 0.5, out, out) is False
    assert k.resample_one_checked(w, w, np.ones(10), np.ones(10), True, np.nan, 0.5, out[::-1], out) is False
    readonly = np.empty(10)
    readonly.flags.writeable = False
    assert k.resample_one_checked(w, w, np.ones(10), np.ones(10), True, np.nan, 0.5, readonly, out) is False
    # the batch kernels raise
    with pytest.raises(ValueError, match="shapes do not match"):
        k.resample_shared(w, w, np.ones((2, 9)), np.ones((2, 9)), True, np.nan, 0.5, np.empty((2, 10)), np.empty((2, 10)))
    with pytest.raises(ValueError, match="shapes do not match"):
        k.resample_shared(w, w, np.ones((2, 10)), np.ones((1, 10)), True, np.nan, 0.5, np.empty((2, 10)),
                          np.empty((2, 10)))
    with pytest.raises(TypeError, match="f2d must be a float64 array of 2"):
        k.resample_shared(w, w, np.ones(10), np.ones((1, 10)), False, np.nan, 0.5, np.empty((1, 10)), np.empty((1, 1)))
    for offsets in ([0, 5, 11], [0, 6, 5], [-1, 5, 10]):
        with pytest.raises(ValueError, match="shapes do not match"):
            k.resample_ragged(w, np.r_[w[:5], w[:5]], np.array(offsets, np.int64), np.ones(10), np.zeros(1), False,
                              np.nan, 0.5, True, np.empty((2, 10)), np.empty((1, 1)))
    with pytest.raises(TypeError, match="offsets must be an int64 array of 1"):
        k.resample_ragged(w, w, np.array([0, 10], np.int32), np.ones(10), np.zeros(1), False, np.nan, 0.5, True,
                          np.empty((1, 10)), np.empty((1, 1)))
    with pytest.raises(TypeError, match="out_f must be a C-contiguous, aligned, native, writeable float64"):
        k.resample_shared(w, w, np.ones((1, 10)), np.ones((1, 10)), False, np.nan, 0.5, _unaligned(np.empty((1, 10))),
                          np.empty((1, 1)))
    with pytest.raises(TypeError, match="expected 9 arguments, got 2"):
        k.resample_shared(w, w)
    assert _jit.c_available()
