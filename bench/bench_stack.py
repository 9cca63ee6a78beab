"""Weighted-mean stack of many spectra by streaming partial sums: memory and throughput.

Each spectrum (PRISM-like, 600 px, its own grid) is generated on the fly, resampled in
batches of 200 onto a common 500-px grid (``resample_batch``), folded into one
``Partial`` (``stack_partials`` + ``combine_partials``) and dropped; ``finalize_stack``
makes the result. Peak Python memory (tracemalloc) is measured for N = 1,000 … 10,000:
flat in N means the stack streams. For contrast, the same stack with every resampled
spectrum held in memory first. Also checks that the streamed stack equals the
one-shot ``stack_spectra`` on the same inputs.

    python bench/bench_stack.py [N ...]     # default: 1000 3000 10000
"""
from __future__ import annotations

import os
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_resample import N_OUT, make_inputs, prism_grid  # noqa: E402

BATCH = 200


def batches(n, seed=0):
    """Yield (grids, flux, err) batches of freshly generated spectra (never all at once)."""
    for i, lo in enumerate(range(0, n, BATCH)):
        _, g, f, e = make_inputs(min(BATCH, n - lo), seed=seed * 100003 + i)
        yield g, f, e


def streamed(n, grid):
    from campfire.tasks.resample import resample_batch
    from campfire.tasks.stack import combine_partials, finalize_stack, stack_partials

    total = None
    for g, f, e in batches(n):
        rf, re = resample_batch(grid, g, f, e)
        part = stack_partials((rf, re))
        total = part if total is None else combine_partials(total, part)
    return finalize_stack(total, grid)


def in_memory(n, grid):
    from campfire.tasks.resample import resample_batch
    from campfire.tasks.stack import finalize_stack, stack_partials

    fs, es = [], []
    for g, f, e in batches(n):
        rf, re = resample_batch(grid, g, f, e)
        fs.append(rf)
        es.append(re)
    return finalize_stack(stack_partials((np.concatenate(fs), np.concatenate(es))), grid)


def measure(fn, *args):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn(*args)
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, dt, peak


def main(sizes):
    from campfire.models import SpectrumData
    from campfire.tasks.stack import stack_spectra

    grid = prism_grid(N_OUT, 0.7, 5.1)
    streamed(BATCH, grid)  # compile / warm
    t0 = time.perf_counter()
    for _ in batches(max(sizes)):
        pass
    gen_rate = max(sizes) / (time.perf_counter() - t0)
    print(f"# stack bench: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; batches of {BATCH}, "
          f"600 px → {N_OUT} px; generating inputs alone: {gen_rate:,.0f} spectra/s\n")
    print("| N | streamed: peak MB | in-memory: peak MB | streamed: s | spectra/s (incl. generation) | "
          "spectra/s (stacking alone) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        _, _, peak = measure(streamed, n, grid)
        _, _, peak_mem = measure(in_memory, n, grid)
        t0 = time.perf_counter()  # timing without tracemalloc (it slows every allocation)
        streamed(n, grid)
        dt = time.perf_counter() - t0
        alone = n / max(dt - n / gen_rate, 1e-9)
        print(f"| {n:,} | {peak / 1e6:.1f} | {peak_mem / 1e6:.1f} | {dt:.2f} | {n / dt:,.0f} | {alone:,.0f} |")
    # the streamed stack equals the one-shot stack_spectra on the same inputs
    n = 1000
    specs = [SpectrumData(g[i], f[i], e[i]) for g, f, e in batches(n) for i in range(len(g))]
    one = stack_spectra(specs, wavelength_grid=grid)
    st = streamed(n, grid)
    ok = np.isfinite(one.fnu)
    print(f"\nstreamed vs one-shot stack_spectra (N = {n:,}): max rel. diff "
          f"{np.max(np.abs(st.fnu[ok] - one.fnu[ok]) / np.abs(one.fnu[ok])):.1e}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 3000, 10000])
