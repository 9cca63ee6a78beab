"""The batch pipeline's two costliest per-spectrum stages, alone: open and calibrate, before and after.

    python bench/bench_stage_kernels.py ROOT [--before REF] [--spectra 1200] [--rounds 5]

``bench_pipeline.py stages`` times every stage inside one whole run, so each figure is one
sample taken at whatever load the machine had then; on a shared machine its per-stage
figures move by 20–30 % between runs. This bench times the two stages that cost the most
per spectrum on the same ``--spectra`` real files of ROOT (a random sample of the spectra
with photometry, the same sample for both trees), many times, alternating between this
checkout and a checkout of ``--before`` in fresh processes, and reports the best and the
median of the rounds (CPU µs per spectrum):

* **open**: ``SpectrumData.from_fits`` (headers, HDU extents, the 1D table, units);
* **calibrate**: ``calibrate_to_photometry`` as ``workflows/calibrate_all.yaml`` calls it
  (chebyshev, degree 3, min_snr 0.5; the band-weight cache emptied before each round).

Each child also writes a digest of what it computed (the spectra's arrays and headers, the
calibrated arrays, coefficients, χ² and rejections); the bench fails if before and after
differ.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import pickle
import random
import statistics
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
OPTIONS = {"method": "chebyshev", "degree": 3, "min_snr": 0.5}


def _sample(root: str, n: int, path: str) -> None:
    """The files and photometry of ``n`` spectra with photometry (plain values: any tree can read them)."""
    from campfire import Campfire
    from campfire.graphs.selection import refs_from_rows

    cf = Campfire(data_dir=root)
    refs = refs_from_rows(cf, list(cf.iter_spectra(has_photometry=True)))
    refs = random.Random(2).sample(refs, min(n, len(refs)))
    plain = [(r.url, list(r.photometry.bands), r.photometry.flux.tolist(), r.photometry.flux_err.tolist(),
              r.photometry.wavelength.tolist()) for r in refs]
    with open(path, "wb") as f:
        pickle.dump(plain, f)


def child(sample: str) -> dict:
    """One round on the tree on ``sys.path``: CPU µs per spectrum of open and calibrate, and a digest."""
    import time

    from campfire.models import Photometry, SpectrumData
    from campfire.tasks import calibrate as cal

    with open(sample, "rb") as f:
        plain = pickle.load(f)
    phots = [Photometry(b, fl, fe, w) for _, b, fl, fe, w in plain]
    urls = [p[0] for p in plain]
    for u in urls:  # page cache warm: CPU, not disk
        with open(u, "rb") as f:
            f.read()

    def calibrate_all(specs):
        out = []
        for spec, phot in zip(specs, phots):
            try:
                out.append(cal.calibrate_to_photometry(spec, phot, **OPTIONS))
            except Exception as err:  # a spectrum without a usable band: its reason is part of the result
                out.append(str(err))
        return out

    specs = [SpectrumData.from_fits(u) for u in urls]  # warm-up: imports, caches
    calibrate_all(specs)
    cal._band_matrix_cached.cache_clear()
    c0 = time.process_time()
    specs = [SpectrumData.from_fits(u) for u in urls]
    c1 = time.process_time()
    results = calibrate_all(specs)
    c2 = time.process_time()
    h = hashlib.sha256()
    for s in specs:
        h.update(s.wavelength.tobytes() + s.fnu.tobytes() + s.fnu_err.tobytes()
                 + json.dumps(s.header, sort_keys=True, default=str).encode())
    for r in results:
        if isinstance(r, str):
            h.update(r.encode())
        else:
            h.update(r.spectrum.fnu.tobytes() + r.spectrum.fnu_err.tobytes() + r.coefficients.tobytes()
                     + repr((r.chi2, r.bands_used, r.rejected, r.ratios)).encode())
    n = len(urls)
    import campfire

    return {"open": (c1 - c0) / n * 1e6, "calibrate": (c2 - c1) / n * 1e6, "digest": h.hexdigest()[:16],
            "campfire": campfire.__file__}


def _run_child(src: str, sample: str) -> dict:
    code = (f"import sys, json; sys.path.insert(0, {str(HERE)!r}); import bench_stage_kernels as b; "
            f"print('RESULT', json.dumps(b.child({sample!r})))")
    proc = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=src), capture_output=True,
                          text=True, cwd=tempfile.gettempdir())
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    out = json.loads([x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1][7:])
    if not os.path.realpath(out["campfire"]).startswith(os.path.realpath(src) + os.sep):
        raise RuntimeError(f"the run of {src} imported campfire from {out['campfire']}")
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", help="an archive root (e.g. the full demo)")
    ap.add_argument("--before", default=None, help="also run a checkout of this git ref, alternating")
    ap.add_argument("--spectra", type=int, default=1200)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    sources = {"after": str(HERE.parent)}
    before = None
    if args.before:
        before = tempfile.mkdtemp(prefix="bench-ref-")
        subprocess.run(["git", "-C", str(HERE.parent), "worktree", "add", "--detach", before, args.before],
                       check=True, capture_output=True)
        sources = {"before": before, "after": str(HERE.parent)}
    fd, sample = tempfile.mkstemp(suffix=".pkl", prefix="bench-kernels-")
    os.close(fd)
    try:
        _sample(args.root, args.spectra, sample)
        print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        runs: dict[str, list[dict]] = {k: [] for k in sources}
        for i in range(args.rounds):
            for label, src in sources.items():
                runs[label].append(_run_child(src, sample))
                r = runs[label][-1]
                print(f"round {i + 1} {label}: open {r['open']:.0f}, calibrate {r['calibrate']:.0f} µs per spectrum "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        os.unlink(sample)
        if before:
            subprocess.run(["git", "-C", str(HERE.parent), "worktree", "remove", "--force", before], capture_output=True)
    print(f"\nCPU µs per spectrum ({args.spectra} spectra; best / median of {args.rounds} rounds):")
    print("| stage | " + " | ".join(sources) + " |")
    print("|---|" + "---:|" * len(sources))
    for stage in ("open", "calibrate"):
        cells = []
        for label in sources:
            v = [r[stage] for r in runs[label]]
            cells.append(f"{min(v):.0f} / {statistics.median(v):.0f}")
        print(f"| {stage} | " + " | ".join(cells) + " |")
    digests = {r["digest"] for rs in runs.values() for r in rs}
    print("results: identical in every round" if len(digests) == 1 else f"results: DIFFERENT ({sorted(digests)})")
    if len(digests) != 1:
        sys.exit(1)


if __name__ == "__main__":
    main()
