"""Compiled resampling kernels (numba): bin-overlap integration, the SpectRes algorithm.

Imported only through :func:`campfire.tasks._jit.resample_kernels`; the numpy twins and the
algorithm's notes are in :mod:`campfire.tasks.resample`. ``_cresample.c`` is their port to C
(built at install; ``engine='auto'`` prefers it): change both together, operation for
operation — ``tests/tasks/test_resample_c.py`` compares them bit for bit. A module of their own (not
:mod:`campfire.tasks._numba_kernels`): a process that only resamples then neither defines
nor loads the redshift fit's ~40 kernels. ``cache=True`` as there (machine code on disk, in
:func:`campfire.tasks._jit.numba_cache_dir`).
"""
from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True)
def _edges(w, edges):
    """SpectRes's make_bins edges (half-way between centres, end bins mirrored) of ``w``
    (≥ 2 values) into ``edges``; True when ``w`` is finite and strictly increasing.

    The check is one comparison per value, without an early exit, so the loop vectorises:
    strictly increasing values between two finite ends are all finite (NaN fails ``>``).
    """
    n = w.shape[0]
    ok = math.isfinite(w[0]) and math.isfinite(w[n - 1])
    for k in range(1, n):
        ok &= w[k] > w[k - 1]
    for k in range(1, n):
        edges[k] = (w[k] + w[k - 1]) / 2
    edges[0] = w[0] - (w[1] - w[0]) / 2
    edges[n] = w[n - 1] + (w[n - 1] - w[n - 2]) / 2
    return ok


@numba.njit(cache=True, inline="always")
def _good(f, e, k, has_err):
    fk = f[k]
    if not math.isfinite(fk):
        return False
    if has_err:
        ek = e[k]
        return math.isfinite(ek) and ek > 0.0
    return True


@numba.njit(cache=True)
def _resample_one(ne, oe, f, e, has_err, fill, min_cov, out_f, out_e):
    """One spectrum: new edges ``ne`` (m+1), old edges ``oe`` (n+1), flux, error → out rows.

    A pixel is bad when its flux is not finite, or (with errors) its error is not
    finite or ≤ 0; bad pixels are left out of both sums. An output bin is the
    overlap-weighted mean of its good pixels when they cover ≥ ``min_cov`` of the
    bin, else ``fill``; bins reaching outside the input edges are ``fill`` (SpectRes).
    The sums run in SpectRes's order (start pixel, full pixels, stop pixel).
    """
    m = ne.shape[0] - 1
    n = oe.shape[0] - 1
    start = 0
    stop = 0
    lo_edge = oe[0]
    hi_edge = oe[n]
    for j in range(m):
        a = ne[j]
        b = ne[j + 1]
        if a < lo_edge or b > hi_edge:
            out_f[j] = fill
            if has_err:
                out_e[j] = fill
            continue
        while start < n - 1 and oe[start + 1] <= a:
            start += 1
        if stop < start:
            stop = start
        while stop < n - 1 and oe[stop + 1] < b:
            stop += 1
        if stop == start:
            if _good(f, e, start, has_err):
                out_f[j] = f[start]
                if has_err:
                    out_e[j] = e[start]
            else:
                out_f[j] = fill
                if has_err:
                    out_e[j] = fill
            continue
        # overlap of the partial pixels: SpectRes scales the width by a fraction; the
        # direct difference is the same number to an ulp and saves two divisions per bin
        o = oe[start + 1] - a
        den_all = o
        num = 0.0
        den = 0.0
        var = 0.0
        if _good(f, e, start, has_err):
            num = o * f[start]
            den = o
            if has_err:
                var = (o * e[start]) ** 2
        for k in range(start + 1, stop):
            o = oe[k + 1] - oe[k]  # make_bins' width of pixel k, bit for bit (k < n - 1 here)
            den_all += o
            if _good(f, e, k, has_err):
                num += o * f[k]
                den += o
                if has_err:
                    var += (o * e[k]) ** 2
        o = b - oe[stop]
        den_all += o
        if _good(f, e, stop, has_err):
            num += o * f[stop]
            den += o
            if has_err:
                var += (o * e[stop]) ** 2
        if den > 0.0 and den >= min_cov * den_all:
            inv = 1.0 / den
            out_f[j] = num * inv
            if has_err:
                out_e[j] = math.sqrt(var) * inv
        else:
            out_f[j] = fill
            if has_err:
                out_e[j] = fill


def _ragged(new_w, wflat, offsets, fflat, eflat, has_err, fill, min_cov, check, out_f, out_e):
    """Many spectra, each on its own grid (concatenated, ``offsets`` CSR-style).

    Returns -1, or (with ``check``) the index of the first spectrum whose grid is not
    finite and strictly increasing (its row is left as ``fill``).
    """
    m = new_w.shape[0]
    ne = np.empty(m + 1)
    _edges(new_w, ne)
    nspec = offsets.shape[0] - 1
    nmax = 0
    for s in range(nspec):
        nmax = max(nmax, offsets[s + 1] - offsets[s])
    bad = nspec
    for s in numba.prange(nspec):
        oe = np.empty(nmax + 1)
        i0 = offsets[s]
        i1 = offsets[s + 1]
        n = i1 - i0
        usable = n >= 2 and (_edges(wflat[i0:i1], oe[: n + 1]) or not check)  # the edges, and the check
        if not usable:
            if n >= 2 or check:
                bad = min(bad, s)
            for j in range(m):
                out_f[s, j] = fill
                if has_err:
                    out_e[s, j] = fill
            continue
        _resample_one(
            ne, oe[: n + 1], fflat[i0:i1], eflat[i0:i1] if has_err else eflat,
            has_err, fill, min_cov, out_f[s], out_e[s] if has_err else out_e[0],
        )
    return -1 if bad == nspec else bad


resample_ragged = numba.njit(cache=True)(_ragged)
resample_ragged_parallel = numba.njit(cache=True, parallel=True)(_ragged)


@numba.njit(cache=True)
def resample_shared(new_w, old_w, f2d, e2d, has_err, fill, min_cov, out_f, out_e):
    """Many spectra (rows of ``f2d``) on one input grid ``old_w`` (both grids checked already)."""
    ne = np.empty(new_w.shape[0] + 1)
    oe = np.empty(old_w.shape[0] + 1)
    _edges(new_w, ne)
    _edges(old_w, oe)
    for s in range(f2d.shape[0]):
        _resample_one(
            ne, oe, f2d[s], e2d[s] if has_err else e2d[0], has_err, fill, min_cov,
            out_f[s], out_e[s] if has_err else out_e[0],
        )


@numba.njit(cache=True)
def resample_one_checked(new_w, old_w, f, e, has_err, fill, min_cov, out_f, out_e):
    """One spectrum into ``out_f`` (``out_e``), inputs checked in the same call: True when done.

    False when either grid is not ≥ 2 finite, strictly increasing values or ``f`` (``e``)
    does not match ``old_w`` (the caller then names the problem). The per-call path of
    ``resample_flux``, where the checks and allocations cost more than the resampling when
    done in numpy; the caller allocates the outputs (cheaper than returning numba's arrays)
    and the edges share one buffer.
    """
    m = new_w.shape[0]
    n = old_w.shape[0]
    if m < 2 or n < 2 or f.shape[0] != n or e.shape[0] != n or out_f.shape[0] != m or out_e.shape[0] != m:
        return False
    edges = np.empty(m + n + 2)
    ne = edges[: m + 1]
    oe = edges[m + 1:]
    if not (_edges(new_w, ne) and _edges(old_w, oe)):
        return False
    _resample_one(ne, oe, f, e, has_err, fill, min_cov, out_f, out_e)
    return True
