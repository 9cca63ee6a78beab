"""Stack errors against the scatter of the stacks: χ²/dof of (stack − truth)/σ_stack (issue 17.3).

Each stack combines N inputs of one smooth spectrum (400 px) with Gaussian noise; every
input has one σ over its spectrum, equal (0.2) or spread 10× (uniform in 0.05–0.5),
drawn anew for each of ``R`` stacks. χ²/dof ≈ 1 means the reported error is the real
one; < 1 an overestimate (0.47 ↔ 1.46× too large). The median's error is shown as it
was before issue 17.3 (c(N)·√Σσ²/N: the mean's error times σ(median)/σ(mean) of equal
noise, computed here from the same stacks) and now (``median_error``).

    python bench/bench_stack_errors.py [R]      # default 60 stacks per cell
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np


def main(repeats: int = 60) -> None:
    from campfire.models import SpectrumData
    from campfire.tasks.combine import median_error_factor
    from campfire.tasks.stack import stack_spectra

    w = np.exp(np.linspace(np.log(0.7), np.log(5.0), 400))
    truth = 1.0 + 0.5 * np.sin(3 * w)
    print(f"# stack errors: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; {repeats} stacks × 400 px per cell\n")
    print("| N | input σ | weighted_mean | mean | median, before (c(N)·√Σσ²/N) | median, now |")
    print("|---:|---|---:|---:|---:|---:|")
    t0 = time.perf_counter()
    for n in (3, 4, 9, 30):
        for spread in ("equal 0.2", "0.05–0.5 (10×)"):
            chi2 = {k: 0.0 for k in ("weighted_mean", "mean", "before", "median")}
            dof = 0
            for k in range(repeats):
                rng = np.random.default_rng(1000 * n + k)
                sig = np.full(n, 0.2) if spread.startswith("equal") else rng.uniform(0.05, 0.5, n)
                specs = [SpectrumData(w, truth + rng.normal(0, s, w.size), np.full(w.size, s)) for s in sig]
                for method in ("weighted_mean", "mean", "median"):
                    st = stack_spectra(specs, method=method, wavelength_grid=w)
                    chi2[method] += float(np.sum(((st.fnu - truth) / st.fnu_err) ** 2))
                    if method == "median":
                        old = float(median_error_factor(n)) * np.sqrt(np.sum(sig**2)) / n
                        chi2["before"] += float(np.sum(((st.fnu - truth) / old) ** 2))
                dof += w.size
            r = {k: v / dof for k, v in chi2.items()}
            print(f"| {n} | {spread} | {r['weighted_mean']:.3f} | {r['mean']:.3f} | {r['before']:.3f} | "
                  f"{r['median']:.3f} |")
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
