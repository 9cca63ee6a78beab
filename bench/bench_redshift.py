"""fit_redshift per spectrum: time on the real test spectra and on demo PRISM spectra.

Blind fits over z = 0–15 (coarse ln(1+z) grid + fine zooms), compiled kernel vs the
numpy reference. The demo part needs a built demo root (``campfire.demo.ensure()`` or
the path given).

    python bench/bench_redshift.py [DEMO_ROOT]
"""
from __future__ import annotations

import glob
import os
import pathlib
import sqlite3
import sys
import time

import numpy as np

REAL = "/work/shared/data/real/spectra"


def timed(fn, repeat=3):
    """Best CPU time of this process (fair on a shared machine: single-threaded work)."""
    best = np.inf
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


def main(demo_root=None):
    from campfire.models import SpectrumData
    from campfire.tasks.redshift import fit_redshift

    print(f"# redshift bench: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; CPU time per fit\n")
    print("| spectrum | pixels | z | numba ms | numpy ms |")
    print("|---|---:|---:|---:|---:|")
    files = sorted(glob.glob(f"{REAL}/*/*.spec.fits"))
    fit_redshift(SpectrumData.from_fits(files[0]))  # compile / load the cache
    for path in files:
        spec = SpectrumData.from_fits(path)
        t_nb, fit = timed(lambda: fit_redshift(spec))
        t_np, _ = timed(lambda: fit_redshift(spec, engine="numpy"), repeat=1)
        print(f"| {pathlib.Path(path).name} | {spec.n_pixels} | {fit['redshift']:.4f} | {t_nb * 1e3:.0f} | "
              f"{t_np * 1e3:.0f} |")
    if demo_root is None:
        return
    db = sqlite3.connect(f"file:{pathlib.Path(demo_root) / 'meta' / 'campfire.db'}?mode=ro", uri=True)
    paths = [r[0] for r in db.execute("select fits_path from spectra where grating = 'PRISM' order by spectrum_id")]
    specs = [SpectrumData.from_fits(pathlib.Path(demo_root) / p) for p in paths]
    times = []
    for s in specs:
        t0 = time.process_time()
        fit_redshift(s)
        times.append(time.process_time() - t0)
    t = np.array(times) * 1e3
    print(f"\ndemo PRISM spectra (1024 px): {len(t)} fits, CPU time median {np.median(t):.0f} ms, p90 "
          f"{np.percentile(t, 90):.0f} ms, {len(t) / t.sum() * 1e3:.1f} spectra/s per core")


if __name__ == "__main__":
    main(*sys.argv[1:])
