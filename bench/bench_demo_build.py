"""The first run: building the small demo archive, before/after, fresh and warm (issue 16.6).

Each build runs ``campfire demo build ROOT --size small`` in its own process, with the
default workers (the CPUs, at most 8). ``fresh`` gives it an empty numba cache
(``NUMBA_CACHE_DIR``), as on a machine that never ran campfire: the redshift fit's
kernels are compiled; ``warm`` reuses that cache (every later build). Printed: wall
clock and the CPU seconds of the build and its worker processes. ``--before REF``
builds with the campfire of a git ref (a temporary worktree, its C kernels built) too,
alternating with this tree, so the shared machine's load hits both alike; the two
archives' FITS and truth files are compared byte for byte, their catalogs by SQL dump (same content).

Side by side, the bare floor of the same work: the CPU of the redshift fits alone
(``fit_redshift`` over the spectra of 40 objects, scaled to the archive's spectra, in the
environment the build's workers get).

    python bench/bench_demo_build.py [--before REF] [--rounds 1]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def build(tree: pathlib.Path, root: pathlib.Path, cache: pathlib.Path) -> tuple[float, float, str]:
    env = dict(os.environ, PYTHONPATH=str(tree), NUMBA_CACHE_DIR=str(cache))
    env.pop("CAMPFIRE_DISABLE_NUMBA", None)
    t0, c0 = time.perf_counter(), children_cpu()
    # cwd = the tree: `python -m` puts the working directory first on sys.path, before
    # PYTHONPATH (run from the repository root, "before" would import this tree's campfire)
    out = subprocess.run([sys.executable, "-m", "campfire", "demo", "build", str(root), "--size", "small"],
                         env=env, capture_output=True, text=True, timeout=3600, cwd=str(tree))
    wall, cpu = time.perf_counter() - t0, children_cpu() - c0
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    first = next((ln for ln in out.stderr.splitlines() if ln.startswith("campfire: building")), "")
    return wall, cpu, first


def digest(root: pathlib.Path) -> str:
    """One hash of every file of the archive: paths and bytes, the SQLite catalog by its SQL dump.

    The catalog's content, not its pages: how the file was written (one transaction or
    several) moves bytes that hold no data.
    """
    import sqlite3

    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            if p.suffix == ".db":
                conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
                try:
                    for line in conn.iterdump():
                        h.update(line.encode())
                finally:
                    conn.close()
            else:
                h.update(p.read_bytes())
    return h.hexdigest()[:16]


def fit_floor(tree: pathlib.Path) -> float:
    """CPU seconds of fit_redshift alone over the archive's spectra (40 objects measured, scaled)."""
    code = (
        "import time, tempfile, numpy as np\n"
        "from campfire.demo import survey, generate\n"
        "from campfire.models import SpectrumData\n"
        "from campfire.tasks.redshift import fit_redshift\n"
        "import campfire.demo.instrument as ins\n"
        "plan = survey.make_plan('small', 0)\n"
        "specs = []\n"
        "for o in plan.objects[:40]:\n"
        "    sed = generate.true_sed(o.sed)\n"
        "    for t in o.targets:\n"
        "        for sp in t.spectra:\n"
        "            r = generate._simulate_spectrum(o, t, sp, sed, 0)\n"
        "            specs.append(SpectrumData(r['wave'], r['flux'], r['err'], grating=ins.CONFIGS[sp.config].grating))\n"
        "fit_redshift(specs[0])\n"
        "t = time.process_time()\n"
        "for s in specs:\n"
        "    try: fit_redshift(s, z_range=(0.0, 15.0))\n"
        "    except Exception: pass\n"
        "print((time.process_time() - t) / len(specs) * plan.counts()['spectra'])\n"
    )
    # what the build's workers get: one BLAS thread (campfire.demo.builder._one_blas_thread)
    env = dict(os.environ, PYTHONPATH=str(tree), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=1800,
                         cwd=str(tree))
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=None)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    work = pathlib.Path(tempfile.mkdtemp(prefix="campfire-demo-bench-"))
    trees = {"after": REPO}
    try:
        if args.before:
            # a worktree of the ref with its C kernels built (without them it would fit with numba's)
            sys.path.insert(0, str(HERE))
            from bench_pipeline import _built_checkout

            trees["before"] = pathlib.Path(_built_checkout(args.before))
        print(f"small demo build, default workers on {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} "
              "(shared machine)")
        rows = []
        for r in range(args.rounds):
            for name in (list(trees) if r % 2 == 0 else list(trees)[::-1]):
                cache = work / f"numba-{name}-{r}"
                for state in ("fresh", "warm"):
                    root = work / f"demo-{name}-{r}-{state}"
                    wall, cpu, first = build(trees[name], root, cache)
                    rows.append((name, state, wall, cpu, digest(root)))
                    if state == "fresh" and name == "after" and r == 0:
                        print(f"first line: {first}")
                    if state == "warm":
                        shutil.rmtree(root, ignore_errors=True)
                print(f"load average now {os.getloadavg()[0]:.1f}")
        print(f"{'':7} {'numba cache':>11} {'wall s':>7} {'CPU s':>7}  content")
        for name, state, wall, cpu, dig in rows:
            print(f"{name:7} {state:>11} {wall:>7.1f} {cpu:>7.1f}  {dig}")
        print(f"same content in every build: {len({d for *_, d in rows}) == 1}")
        print(f"bare floor: fit_redshift alone over the 460 spectra: {fit_floor(REPO):.1f} CPU s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if "before" in trees:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(trees["before"])],
                           capture_output=True)


if __name__ == "__main__":
    main()
