"""Costs users wait for once per call or once per process (issue 16, points 1 and 4).

    python bench/bench_percall.py [--root DEMO_ROOT] [--files 300] [--ref REF]

Prints, side by side in the same run:

* **open**: a bare astropy read of the SPEC1D table (``fits.open`` + the three columns)
  against campfire's 1D path (``read_spectrum_record``, ``SpectrumData.from_fits``,
  ``Campfire.open_spectrum`` through the catalog) and fitsio (C, when installed), per file, on the
  demo's files (page cache warm);
* **per call**: ``resample_flux`` of one spectrum (600 px → 400 px, with errors), the
  spectres-compatible signature people loop over, against SpectResC and spectres;
* **cold start**: ``python -c "import campfire"`` and the first compiled call in a fresh
  process (numba and its on-disk cache loaded), as CPU time of that process (wall time
  swings with the neighbours' load on a shared machine; CPU time does not).

``--ref REF`` also measures the cold start (and open) on a checkout of git ref REF (a
temporary worktree), interleaved with this tree's runs. Figures are CPU time, best of
several repeats.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent


def _best(fn, n: int, repeat: int = 5) -> float:
    """Best per-call CPU seconds of ``fn`` over ``repeat`` loops of ``n`` calls."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - t0) / n)
    return best


# ------------------------------------------------------------------------------ open
def bench_open(root: str, n_files: int) -> dict[str, float]:
    from astropy.io import fits

    from campfire import Campfire
    from campfire.io.fits import read_spectrum_record
    from campfire.models import SpectrumData

    files = sorted(glob.glob(os.path.join(root, "products", "*", "*.spec.fits")))[:n_files]
    cf = Campfire(data_dir=root)
    ids = [pathlib.Path(f).name.removesuffix(".spec.fits") for f in files]

    def astropy_spec1d():
        for f in files:
            with fits.open(f, memmap=False) as h:
                d = h["SPEC1D"].data
                np.array(d["wave"], float), np.array(d["flux"], float), np.array(d["err"], float)

    out = {}
    runners = {"bare astropy SPEC1D read": astropy_spec1d,
               "campfire read_spectrum_record": lambda: [read_spectrum_record(f) for f in files],
               "campfire SpectrumData.from_fits": lambda: [SpectrumData.from_fits(f) for f in files],
               "campfire Campfire.open_spectrum(id)": lambda: [cf.open_spectrum(i) for i in ids]}
    try:
        import fitsio

        def fitsio_spec1d():
            for f in files:
                d = fitsio.read(f, ext="SPEC1D", columns=["wave", "flux", "err"])
                np.array(d["wave"], float), np.array(d["flux"], float), np.array(d["err"], float)
                fitsio.read_header(f, ext=0)

        runners["fitsio SPEC1D read + primary header"] = fitsio_spec1d
    except ImportError:
        pass
    for name, fn in runners.items():
        fn()  # warm: imports, page cache
        out[name] = _best(fn, 1, repeat=3) / len(files)
    return out


# ------------------------------------------------------------------------------ per call
def bench_per_call() -> dict[str, float]:
    from campfire.calibration import resample_flux

    rng = np.random.default_rng(0)
    w = np.linspace(0.6, 5.3, 600)
    f = rng.normal(1.0, 0.1, 600)
    e = np.full(600, 0.1)
    nw = np.linspace(0.7, 5.2, 400)
    out = {}
    resample_flux(nw, w, f, e)
    out["campfire resample_flux"] = _best(lambda: resample_flux(nw, w, f, e), 3000)
    try:
        import spectresc

        a = resample_flux(nw, w, f, e)[0]
        b = spectresc.spectres(nw, w, f, e, fill=np.nan, verbose=False)[0]
        out["max rel. diff vs SpectResC"] = float(np.nanmax(np.abs(a - b) / np.abs(b)))
        out["SpectResC spectres"] = _best(lambda: spectresc.spectres(nw, w, f, e, fill=np.nan, verbose=False), 3000)
    except ImportError:
        pass
    try:
        import spectres

        out["spectres (Python)"] = _best(lambda: spectres.spectres(nw, w, f, e, fill=np.nan, verbose=False), 100)
    except ImportError:
        pass
    return out


# ------------------------------------------------------------------------------ cold start
_COLD = """
import resource, time, json, sys
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
c0, t0 = cpu(), time.perf_counter()
import campfire
c1, t1 = cpu(), time.perf_counter()
mods = sorted(m for m in ("dask", "astropy", "astropy.units", "astropy.table", "numba", "scipy") if m in sys.modules)
import numpy as np
from campfire.calibration import resample_flux
w = np.linspace(0.6, 5.3, 600); f = np.ones(600); e = np.full(600, 0.1); nw = np.linspace(0.7, 5.2, 400)
c2 = cpu()
resample_flux(nw, w, f, e)
c3, t3 = cpu(), time.perf_counter()
print(json.dumps({"process_cpu": c1, "import_cpu": c1 - c0, "import_wall": t1 - t0, "first_call_cpu": c3 - c2,
                  "first_call_wall": t3 - t1, "heavy_modules_after_import": mods}))
"""

_BARE = "import resource; r = resource.getrusage(resource.RUSAGE_SELF); print(r.ru_utime + r.ru_stime)"


def bench_cold(src: str, cache_dir: str, repeat: int = 5) -> dict:
    env = dict(os.environ, PYTHONPATH=src, CAMPFIRE_CACHE_DIR=cache_dir)
    env.pop("NUMBA_CACHE_DIR", None)
    subprocess.run([sys.executable, "-c", _COLD], env=env, check=True, capture_output=True, cwd=tempfile.gettempdir())
    runs = []
    bare = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", _COLD], env=env, check=True, capture_output=True, text=True,
                             cwd=tempfile.gettempdir())
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        bare.append(float(subprocess.run([sys.executable, "-c", _BARE], capture_output=True, text=True).stdout))
    best = {k: min(r[k] for r in runs) for k in ("process_cpu", "import_cpu", "import_wall", "first_call_cpu",
                                                   "first_call_wall")}
    best["python_startup_cpu"] = min(bare)
    best["heavy_modules_after_import"] = runs[-1]["heavy_modules_after_import"]
    return best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=os.environ.get("CAMPFIRE_TEST_DEMO_ROOT"), help="a demo archive root")
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--ref", default=None, help="also measure the cold start and open on this git ref (before)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from bench_pipeline import _checkout  # a temporary worktree of a git ref

    if args.child:  # one measurement on this tree, for --ref
        print("RESULT", json.dumps(bench_open(args.root, args.files) if args.child == "open" else {}))
        return
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    sources = {"after": str(HERE.parent)}
    before = _checkout(args.ref) if args.ref else None
    if before:
        sources = {"before": before, **sources}
    try:
        if args.root:
            print(f"\nopen, CPU ms per file ({args.files} files of {args.root}):")
            for label, src in sources.items():
                env = dict(os.environ, PYTHONPATH=src)
                out = subprocess.run([sys.executable, str(HERE / "bench_percall.py"), "--root", args.root, "--files",
                                      str(args.files), "--child", "open"], env=env, capture_output=True, text=True,
                                     check=True)
                res = json.loads([x for x in out.stdout.splitlines() if x.startswith("RESULT ")][-1][7:])
                bare = res["bare astropy SPEC1D read"]
                for name, sec in res.items():
                    print(f"  {label:6s} {name:40s} {sec * 1e3:7.3f} ms  ({sec / bare:.2f}× bare astropy)")
        print("\nper call, resample_flux of one spectrum (600 → 400 px, with errors), CPU µs per call:")
        for name, value in bench_per_call().items():
            print(f"  {name:32s} {value:.3g}" if name.startswith("max") else f"  {name:32s} {value * 1e6:8.2f} µs")
        print("\ncold start, CPU s of a fresh process (best of 5; numba cache warm in a temporary CAMPFIRE_CACHE_DIR):")
        with tempfile.TemporaryDirectory() as cache:
            for label, src in sources.items():
                c = bench_cold(src, os.path.join(cache, label))
                print(f"  {label:6s} python startup {c['python_startup_cpu']:.3f} s; `import campfire` "
                      f"{c['import_cpu']:.3f} s (wall {c['import_wall']:.3f} s); first compiled call "
                      f"+{c['first_call_cpu']:.3f} s (wall {c['first_call_wall']:.3f} s); imported by "
                      f"`import campfire`: {', '.join(c['heavy_modules_after_import']) or 'none of dask/astropy/numba/scipy'}")
    finally:
        if before:
            subprocess.run(["git", "-C", str(HERE.parent), "worktree", "remove", "--force", before], capture_output=True)


if __name__ == "__main__":
    main()
