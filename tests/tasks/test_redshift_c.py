"""The redshift fit's χ² kernel in C (campfire/tasks/_czfit.c, built at install) against numba's.

The same numbers bit for bit: every χ² of whole fits (coarse passes with their smeared lines and
reduced component tables, fine passes, the local and break points) on the demo's spectra of every
grating, the real ones, and synthetic ones with lines, breaks and stellar absorption; a thread-safe
call without the GIL; and arguments it refuses. As for the resampling kernels
(tests/tasks/test_resample_c.py), CI builds the extension and these tests FAIL when it is
missing, unless ``CAMPFIRE_DISABLE_C=1`` says a run is without it on purpose: ``engine='auto'``
is then numba's kernel, which the first test checks instead.
"""
from __future__ import annotations

import math
import os
import pathlib
import sqlite3
import threading

import numpy as np
import pytest

from campfire.errors import ValidationError
from campfire.models import SpectrumData
from campfire.tasks import redshift as R
from campfire.tasks._jit import DISABLE_C_ENV, fit_c_kernels, kernels, numba_available, resolve_engine
from campfire.tasks.redshift import fit_redshift

from test_redshift import REAL, Z13, _balmer_absorbed, _quiescent, _synthetic

C_DISABLED = os.environ.get(DISABLE_C_ENV, "").strip() not in ("", "0")
needs_c = pytest.mark.skipif(C_DISABLED, reason=f"{DISABLE_C_ENV} is set: the C extension is absent on purpose")


def test_the_fit_extension_is_built_and_auto_takes_it():
    if C_DISABLED:
        assert fit_c_kernels() is None
        assert resolve_engine("auto") == ("numba" if numba_available() else "numpy")
        with pytest.raises(ValidationError, match=f"^engine: 'c' was asked for but {DISABLE_C_ENV} is set"):
            fit_redshift(_synthetic(2.0), engine="c")
        return
    assert fit_c_kernels() is not None, (
        "campfire.tasks._czfit is not built: `pip install -e .` where a C compiler is installed "
        f"(or set {DISABLE_C_ENV}=1 to run the tests without it on purpose)")
    assert resolve_engine("auto") == "c"
    assert numba_available(), "numba, the reference of the bit-for-bit tests, is a dependency"


def _same(a, b) -> bool:
    """Equal to the bit (NaN where the other has NaN)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and np.array_equal(a.view(np.int64), b.view(np.int64))


def _assert_same_fit(spec, **kw):
    """Every χ² the C kernel computes in a whole fit equals numba's on the same inputs, and so do the fits."""
    numba_kernel = kernels().zfit_chi2_grid
    calls = []
    original = R._chi2_grid

    def both(lnz, d, smear, engine, tables=None):
        got = original(lnz, d, smear, engine, tables)
        assert engine == "c"
        ref = original(lnz, d, smear, "numba", tables)
        calls.append((lnz.size, smear > 0, _same(got, ref)))
        return got

    R._chi2_grid = both
    try:
        fit_c = fit_redshift(spec, engine="c", **kw)
    finally:
        R._chi2_grid = original
    assert calls and all(ok for *_, ok in calls), [c for c in calls if not c[-1]]
    assert any(smeared for _, smeared, _ in calls) and any(not smeared for _, smeared, _ in calls)
    fit_numba = fit_redshift(spec, engine="numba", **kw)
    assert fit_c.keys() == fit_numba.keys()
    for key, value in fit_c.items():
        assert _same(value, fit_numba[key]), key
    assert numba_kernel is kernels().zfit_chi2_grid  # the reference was numba's own kernel
    return sum(n for n, _, _ in calls)


@needs_c
@pytest.mark.parametrize("make", [
    lambda: _synthetic(4.1, seed=11),
    lambda: _synthetic(2.3, grating="G395M", seed=4),
    lambda: _synthetic(1.4, grating="G140M", seed=5, snr=5.0),
    lambda: _quiescent(3.3, seed=1),
    lambda: _quiescent(5.5, seed=2, forest=True, offset=0.02),
    lambda: _balmer_absorbed(3.5, 40.0),
    lambda: _synthetic(3.0, seed=3, lines=False),
], ids=["prism-lines", "g395m", "g140m-faint", "quiescent", "quiescent-forest-offset", "balmer-absorbed",
        "no-lines"])
def test_whole_fits_are_numbas_to_the_bit(make):
    assert _assert_same_fit(make()) > 500


@needs_c
def test_real_spectra_are_numbas_to_the_bit():
    paths = sorted(REAL.rglob("*.spec.fits"))
    if not paths:
        pytest.skip("real test spectra not present")
    assert Z13 in paths
    for path in paths:
        _assert_same_fit(SpectrumData.from_fits(path))


@needs_c
def test_demo_spectra_of_every_grating_are_numbas_to_the_bit(demo_root):
    db = sqlite3.connect(f"file:{demo_root / 'meta' / 'campfire.db'}?mode=ro", uri=True)
    rows = db.execute("SELECT grating, fits_path FROM spectra ORDER BY grating, signal_to_noise DESC").fetchall()
    by_grating: dict[str, list[str]] = {}
    for grating, path in rows:
        by_grating.setdefault(grating, []).append(path)
    assert {"PRISM", "G140M", "G235M", "G395M"} <= set(by_grating)
    for paths in by_grating.values():  # the brightest, a middle and the faintest of each grating
        for path in {paths[0], paths[len(paths) // 2], paths[-1]}:
            _assert_same_fit(SpectrumData.from_fits(demo_root / path))


def _kernel_args(spec, lnz, smear=0.0):
    """The positional arguments of ``zfit_chi2_grid`` for ``spec`` at ``lnz`` (as ``R._chi2_grid`` makes them)."""
    captured = {}

    class Spy:
        def zfit_chi2_grid(self, *args):
            captured["args"] = args

    original = R.fit_c_kernels
    R.fit_c_kernels = lambda: Spy()
    try:
        R._chi2_grid(np.asarray(lnz, float), R._prepare(spec), smear, "c")
    finally:
        R.fit_c_kernels = original
    return list(captured["args"])


@needs_c
def test_the_kernel_runs_in_threads_without_the_gil():
    k = fit_c_kernels()
    lnz = np.linspace(0.0, math.log(16.0), 400)
    args = _kernel_args(_synthetic(4.1, seed=11), lnz)
    expected = np.empty(lnz.size)
    k.zfit_chi2_grid(*args[:-1], expected)
    outs = [np.empty(lnz.size) for _ in range(4)]
    threads = [threading.Thread(target=k.zfit_chi2_grid, args=(*args[:-1], out)) for out in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(_same(out, expected) for out in outs)


@needs_c
def test_the_kernel_refuses_arguments_it_would_index_out_of_bounds():
    k = fit_c_kernels()
    lnz = np.linspace(1.0, 1.5, 7)
    args = _kernel_args(_synthetic(4.1, seed=11), lnz)
    out = np.empty(lnz.size)
    k.zfit_chi2_grid(*args[:-1], out)
    assert np.isfinite(out).all()
    with pytest.raises(TypeError, match=f"zfit_chi2_grid: expected {len(args)} arguments, got 5"):
        k.zfit_chi2_grid(*args[:5])
    with pytest.raises(ValueError, match="chi2_out must have lnz's length"):
        k.zfit_chi2_grid(*args[:-1], np.empty(lnz.size - 1))
    plain_out = "zfit_chi2_grid: chi2_out must be a C-contiguous, aligned, native, writeable float64 array of 1"
    with pytest.raises(TypeError, match=plain_out):
        k.zfit_chi2_grid(*args[:-1], np.empty(lnz.size, dtype=np.float32))
    with pytest.raises(TypeError, match=plain_out):
        k.zfit_chi2_grid(*args[:-1], np.empty(2 * lnz.size)[::2])  # not contiguous: it is written in place
    short_y = list(args)
    short_y[4] = args[4][:-1]  # y one pixel short of x
    with pytest.raises(ValueError):
        k.zfit_chi2_grid(*short_y[:-1], out)
    as_int = list(args)
    as_int[4] = args[4].astype(np.int64)  # y: float64, not int64
    with pytest.raises(TypeError, match="zfit_chi2_grid: y must be a float64 array of 1 dimension"):
        k.zfit_chi2_grid(*as_int[:-1], out)
    cidx = list(args)
    cidx[6] = args[6].astype(np.float64)  # cidx: int64
    with pytest.raises(TypeError, match="zfit_chi2_grid: cidx must be an int64 array of 1 dimension"):
        k.zfit_chi2_grid(*cidx[:-1], out)
    readonly = np.empty(lnz.size)
    readonly.flags.writeable = False
    with pytest.raises(TypeError, match=plain_out):
        k.zfit_chi2_grid(*args[:-1], readonly)
