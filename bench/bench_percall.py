"""Costs users wait for once per call or once per process (issue 16, points 1 and 4).

    python bench/bench_percall.py [--root DEMO_ROOT] [--files 300] [--ref REF] [--rounds 3]

Prints, side by side in the same run:

* **open**: a bare astropy read of the SPEC1D table (``fits.open`` + the three columns)
  against campfire's 1D path (``read_spectrum_record``, ``SpectrumData.from_fits``,
  ``Campfire.open_spectrum`` through the catalog) and fitsio (C, when installed), per file, on the
  demo's files (page cache warm);
* **per call**: ``resample_flux`` of one spectrum (600 px → 400 px, with errors), the
  spectres-compatible signature people loop over, against SpectResC and spectres;
* **cold start**: ``python -c "import campfire"`` and the first compiled call in a fresh
  process (the C extension loaded, or numba and its on-disk cache where a tree has no C
  kernels), then with ``--root`` the first read of a spectrum file (``campfire.io.fits``
  loaded), as CPU time of that process (wall time swings with the neighbours' load on a
  shared machine; CPU time does not).

Every tree's lines name the resampling implementation its call used (C, numba, numpy): a tree
measured through ``PYTHONPATH`` uses the C kernels only when its extension is built in place
(``python setup.py build_ext --inplace``; ``--ref`` builds it in the temporary checkout).

``--ref REF`` also measures everything on a checkout of git ref REF (a temporary worktree),
interleaved with this tree's runs (per call: ``--rounds`` alternating child processes, each
timing both campfire and SpectResC). Every figure is measured in a child process whose
``PYTHONPATH`` is the tree measured, so the editable install never stands in for it.
Figures are CPU time, best of several repeats.
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


_IMPL = ("import sys; impl = 'C' if 'campfire.tasks._cresample' in sys.modules else "
         "'numba' if 'campfire.tasks._numba_resample' in sys.modules else 'numpy'")


def _implementation() -> str:
    """The resampling implementation this process's calls used (the kernel module it loaded)."""
    scope: dict = {}
    exec(_IMPL, scope)
    return scope["impl"]


# ------------------------------------------------------------------------------ per call
def bench_per_call() -> dict[str, float | str]:
    from campfire.calibration import resample_flux

    rng = np.random.default_rng(0)
    w = np.linspace(0.6, 5.3, 600)
    f = rng.normal(1.0, 0.1, 600)
    e = np.full(600, 0.1)
    nw = np.linspace(0.7, 5.2, 400)
    out = {}
    resample_flux(nw, w, f, e)
    out["campfire resample_flux"] = _best(lambda: resample_flux(nw, w, f, e), 3000)
    out["implementation"] = _implementation()
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
first_read = None
if len(sys.argv) > 1:  # a spectrum file: its first read (campfire.io.fits and what it imports)
    from campfire.io.fits import read_spectrum_record
    read_spectrum_record(sys.argv[1])
    first_read = cpu() - c3
%s
print(json.dumps({"process_cpu": c1, "import_cpu": c1 - c0, "import_wall": t1 - t0, "first_call_cpu": c3 - c2,
                  "first_call_wall": t3 - t1, "first_read_cpu": first_read,
                  "astropy_fits_loaded": "astropy.io.fits" in sys.modules,
                  "heavy_modules_after_import": mods, "implementation": impl,
                  "numba_loaded": "numba" in sys.modules, "scipy_loaded": "scipy" in sys.modules}))
""" % _IMPL

_BARE = "import resource; r = resource.getrusage(resource.RUSAGE_SELF); print(r.ru_utime + r.ru_stime)"

# numba's own floor: a trivial cached @njit function's first call in a fresh process that has
# imported campfire (so the modules campfire and numba share are paid before, as in _COLD), split
# into numba's import, the SciPy import its BLAS probe makes (numba.np.arraymath), numba's
# registries (typing and target contexts) and the rest (cache load, call)
_FLOOR_MODULE = "import numba\n@numba.njit(cache=True)\ndef first(a):\n    return a[0]\n"
_FLOOR = """
import resource, json, sys
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
import campfire
import numpy as np
a = np.ones(10)
c0 = cpu()
import numba
c1 = cpu()
import floor_kernel
c2 = cpu()
split = "--split" in sys.argv
if split:
    import scipy.linalg.cython_blas
c3 = cpu()
if split:
    from numba.core.registry import cpu_target
    cpu_target.target_context.refresh()
c4 = cpu()
floor_kernel.first(a)
c5 = cpu()
print(json.dumps({"import_numba": c1 - c0, "define": c2 - c1, "scipy_blas_probe": c3 - c2, "registries": c4 - c3,
                  "rest": c5 - c4, "first_call": c5 - c1}))
"""


def _cold_env(src: str, cache_dir: str) -> dict:
    env = dict(os.environ, PYTHONPATH=src, CAMPFIRE_CACHE_DIR=cache_dir)
    env.pop("NUMBA_CACHE_DIR", None)
    return env


def _run_json(code: str, env: dict, cwd: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, check=True, capture_output=True, text=True,
                         cwd=cwd)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_cold(sources: dict[str, str], cache: str, repeat: int = 5, spectrum: str | None = None) -> dict[str, dict]:
    """Cold start of each tree and numba's floor, ``repeat`` interleaved fresh processes each; best figures.

    With ``spectrum`` (a file), each fresh process reads it after the compiled call (first read)."""
    args = [spectrum] if spectrum else []
    floor_dir = os.path.join(cache, "floor")
    os.makedirs(floor_dir, exist_ok=True)
    pathlib.Path(floor_dir, "floor_kernel.py").write_text(_FLOOR_MODULE)
    floor_env = dict(os.environ, PYTHONPATH=os.pathsep.join([floor_dir, sources["after"]]),
                     NUMBA_CACHE_DIR=os.path.join(floor_dir, "cache"))
    tmp = tempfile.gettempdir()
    envs = {label: _cold_env(src, os.path.join(cache, label)) for label, src in sources.items()}
    for env in envs.values():  # compile into the empty cache once
        _run_json(_COLD, env, tmp, *args)
    _run_json(_FLOOR, floor_env, floor_dir)
    runs: dict[str, list] = {label: [] for label in [*sources, "floor", "floor split", "bare"]}
    for _ in range(repeat):
        for label, env in envs.items():
            runs[label].append(_run_json(_COLD, env, tmp, *args))
        runs["floor"].append(_run_json(_FLOOR, floor_env, floor_dir))
        runs["floor split"].append(_run_json(_FLOOR, floor_env, floor_dir, "--split"))
        runs["bare"].append(float(subprocess.run([sys.executable, "-c", _BARE], capture_output=True, text=True).stdout))
    best = {}
    for label in sources:
        best[label] = {k: min(r[k] for r in runs[label]) for k in ("process_cpu", "import_cpu", "import_wall",
                                                                   "first_call_cpu", "first_call_wall")}
        if spectrum:
            best[label]["first_read_cpu"] = min(r["first_read_cpu"] for r in runs[label])
        for key in ("heavy_modules_after_import", "implementation", "numba_loaded", "scipy_loaded", "astropy_fits_loaded"):
            best[label][key] = runs[label][-1][key]
    best["floor"] = {k: min(r[k] for r in runs["floor"]) for k in runs["floor"][0]}
    best["floor split"] = {k: min(r[k] for r in runs["floor split"]) for k in runs["floor split"][0]}
    best["python_startup_cpu"] = min(runs["bare"])
    return best


def _child(what: str, src: str, extra: list[str]) -> dict:
    """One ``--child`` measurement of the tree at ``src`` (its own process, ``PYTHONPATH=src``)."""
    env = dict(os.environ, PYTHONPATH=src)
    out = subprocess.run([sys.executable, str(HERE / "bench_percall.py"), *extra, "--child", what], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads([x for x in out.stdout.splitlines() if x.startswith("RESULT ")][-1][7:])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=os.environ.get("CAMPFIRE_TEST_DEMO_ROOT"), help="a demo archive root")
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--ref", default=None, help="also measure everything on this git ref (before), interleaved")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the per-call figures")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from bench_pipeline import _built_checkout  # a temporary worktree of a git ref, its C kernels built

    if args.child:  # one measurement of the tree on PYTHONPATH
        print("RESULT", json.dumps(bench_open(args.root, args.files) if args.child == "open" else bench_per_call()))
        return
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    sources = {"after": str(HERE.parent)}
    before = _built_checkout(args.ref) if args.ref else None
    if before:
        sources = {"before": before, **sources}
    try:
        if args.root:
            print(f"\nopen, CPU ms per file ({args.files} files of {args.root}):")
            for label, src in sources.items():
                res = _child("open", src, ["--root", args.root, "--files", str(args.files)])
                bare = res["bare astropy SPEC1D read"]
                for name, sec in res.items():
                    print(f"  {label:6s} {name:40s} {sec * 1e3:7.3f} ms  ({sec / bare:.2f}× bare astropy)")
        print(f"\nper call, resample_flux of one spectrum (600 → 400 px, with errors), CPU µs per call, best of "
              f"{args.rounds} interleaved rounds:")
        per_call: dict[str, dict[str, float]] = {label: {} for label in sources}
        for _ in range(args.rounds):
            for label, src in sources.items():
                res = _child("percall", src, [])
                for name, value in res.items():
                    if isinstance(value, str):
                        per_call[label][name] = value
                        continue
                    keep = max if name.startswith("max") else min
                    per_call[label][name] = keep(per_call[label].get(name, value), value)
        for label, res in per_call.items():
            for name, value in res.items():
                print(f"  {label:6s} {name:32s} {value}" if isinstance(value, str) else
                      f"  {label:6s} {name:32s} {value:.3g}" if name.startswith("max") else
                      f"  {label:6s} {name:32s} {value * 1e6:8.2f} µs")
            if "SpectResC spectres" in res:
                print(f"  {label:6s} {'campfire / SpectResC':32s} {res['campfire resample_flux'] / res['SpectResC spectres']:8.2f}")
        print("\ncold start, CPU s of a fresh process (best of 5 interleaved; numba cache warm in a temporary "
              "CAMPFIRE_CACHE_DIR):")
        files = sorted(glob.glob(os.path.join(args.root, "products", "*", "*.fits"))) if args.root else []
        with tempfile.TemporaryDirectory() as cache:
            cold = bench_cold(sources, cache, spectrum=files[0] if files else None)
        print(f"  python startup {cold['python_startup_cpu']:.3f} s")
        for label in sources:
            c = cold[label]
            print(f"  {label:6s} `import campfire` {c['import_cpu']:.3f} s (wall {c['import_wall']:.3f} s); first "
                  f"compiled call +{c['first_call_cpu']:.4f} s (wall {c['first_call_wall']:.4f} s) with the "
                  f"{c['implementation']} kernels (numba loaded: {c['numba_loaded']}, SciPy loaded: {c['scipy_loaded']}); "
                  f"imported by `import campfire`: "
                  f"{', '.join(c['heavy_modules_after_import']) or 'none of dask/astropy/numba/scipy'}")
            if "first_read_cpu" in c:
                print(f"  {label:6s} then the first read of a spectrum (read_spectrum_record) +{c['first_read_cpu']:.3f} s "
                      f"(astropy.io.fits imported: {c['astropy_fits_loaded']})")
        fl, sp = cold["floor"], cold["floor split"]
        print(f"  numba's floor (a cached trivial @njit function, first call in a fresh process after `import campfire`): "
              f"+{fl['import_numba'] + fl['first_call']:.3f} s = import numba {fl['import_numba']:.3f} s + first call "
              f"{fl['first_call']:.3f} s; split: import numba {sp['import_numba']:.3f}, SciPy imported by numba's BLAS "
              f"probe {sp['scipy_blas_probe']:.3f}, numba's registries {sp['registries']:.3f}, cache load + call "
              f"{sp['rest']:.3f} s")
    finally:
        if before:
            subprocess.run(["git", "-C", str(HERE.parent), "worktree", "remove", "--force", before], capture_output=True)


if __name__ == "__main__":
    main()
