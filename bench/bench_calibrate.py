"""calibrate_to_photometry per spectrum: median time for a PRISM spectrum and 8 bands.

Inputs: PRISM-like spectra (1024 px, R-sampled, 0.6–5.3 μm) of a smooth SED with a
slit loss, photometry in the 8 bands of the demo's UVCANDELS catalog (f606w f814w
f125w f160w f150w f277w f356w f444w). Two cases: every spectrum on its own grid (the
band-weight matrix is computed afresh: the realistic case) and repeated calls on one
grid (the cached matrix). Target: < 5 ms median.

    python bench/bench_calibrate.py [N]      # default 500 spectra
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_resample import prism_grid  # noqa: E402

BANDS = ["f606w", "f814w", "f125w", "f160w", "f150w", "f277w", "f356w", "f444w"]


def main(n=500):
    from campfire.bands import get_band
    from campfire.models import Photometry, SpectrumData
    from campfire.tasks.calibrate import calibrate_to_photometry
    from campfire.tasks.synphot import synthetic_photometry

    def sed(w):
        return 0.3 * w**0.5 * (1 + 1.5 / (1 + np.exp(-(w - 1.6) / 0.05)))

    fine = np.exp(np.linspace(np.log(0.3), np.log(5.6), 20000))
    flux = np.array([synthetic_photometry(fine, sed(fine), np.full(fine.size, 1e-6), b)[0] for b in BANDS])
    phot = Photometry(BANDS, flux, 0.03 * flux, [get_band(b).pivot for b in BANDS])
    rng = np.random.default_rng(0)
    base = prism_grid(1024)
    specs = []
    for i in range(n):
        w = base * (1 + rng.uniform(-3e-3, 3e-3))
        f = sed(w) * (0.5 - 0.05 * np.log(w))
        e = np.full(w.size, 0.02)
        specs.append(SpectrumData(w, f + rng.normal(0, 0.02, w.size), e, spectrum_id=str(i)))
    calibrate_to_photometry(specs[0], phot)  # imports, first compile of anything lazy

    own = []
    for s in specs:
        t0 = time.process_time()
        r = calibrate_to_photometry(s, phot)
        own.append(time.process_time() - t0)
    same = []
    for _ in range(n):
        t0 = time.process_time()
        calibrate_to_photometry(specs[0], phot)
        same.append(time.process_time() - t0)
    print(f"# calibrate bench: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; CPU time; PRISM 1024 px, "
          f"{len(r.bands_used)} of 8 bands used (f606w reaches below 0.6 μm), degree {r.degree}\n")
    print("| case | median ms | p90 ms | spectra/s |")
    print("|---|---:|---:|---:|")
    for name, t in (("each spectrum on its own grid (band matrix computed)", own),
                    ("repeated grid (band matrix cached)", same)):
        t = np.array(t)
        print(f"| {name} | {np.median(t) * 1e3:.2f} | {np.percentile(t, 90) * 1e3:.2f} | {1 / t.mean():,.0f} |")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
