"""``campfire archive ingest`` at scale: files/s with and without the redshift fits, peak memory, re-ingest.

    python bench/make_ingest_corpus.py /work/scratch/ingest-10k 10000     # once: the inputs
    python bench/bench_ingest.py /work/scratch/ingest-10k [--sizes 1000,10000] [--fit-sizes 1000,10000]
                                 [--workers 2] [--out /work/scratch/bench-ingest]

Every phase runs in a fresh process (so its peak memory is its own) over the first N
files of the corpus (folders of 500 files: observation bench00-v4, bench01-v4, ...):

* ``bare``: the floor any ingest pays — read each file, sha256 it and open it with
  ``SpectrumData.from_fits``, one process, no catalog (the bare library, side by side;
  at the smallest N only);
* ``ingest``: a new archive root from the N files, ``--no-fit``, on the ``processes``
  scheduler with ``--workers`` workers;
* ``fit``: the same with the automatic redshift fits;
* ``again``: a re-ingest of the unchanged N files into the root of ``ingest``.

Printed per phase: wall seconds, files/s, the peak RSS of the main process (the
scheduler: plan, records, the catalog transaction) and of the largest worker process.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import time


def _folders(corpus: pathlib.Path, n: int) -> list[str]:
    folders = sorted(p for p in corpus.iterdir() if p.is_dir())
    need = -(-n // 500)
    if need > len(folders):
        raise SystemExit(f"{corpus} has {len(folders) * 500} files; {n} asked for (make_ingest_corpus.py)")
    return [str(f) for f in folders[:need]]


def _peaks() -> dict:
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"rss_main_mb": round(me, 1), "rss_worker_mb": round(kids, 1)}


def phase_bare(corpus: pathlib.Path, n: int) -> dict:
    import hashlib

    from campfire.models import SpectrumData

    files = sorted(p for f in _folders(corpus, n) for p in pathlib.Path(f).glob("*.spec.fits"))[:n]
    t0 = time.perf_counter()
    for p in files:
        hashlib.sha256(p.read_bytes()).hexdigest()
        SpectrumData.from_fits(p)
    wall = time.perf_counter() - t0
    return {"files": len(files), "seconds": round(wall, 2), "files_per_s": round(len(files) / wall, 1), **_peaks()}


def phase_ingest(corpus: pathlib.Path, n: int, root: pathlib.Path, fit: bool, workers: int) -> dict:
    from campfire.archive import ingest

    t0 = time.perf_counter()
    summary = ingest(root, _folders(corpus, n), fit=fit, scheduler="processes", workers=workers, progress=False)
    wall = time.perf_counter() - t0
    counts = summary.meta["counts"]
    done = counts["new"] + counts["updated"] + counts["unchanged"]
    return {"files": done, "new": counts["new"], "unchanged": counts["unchanged"], "failed": counts["failed"],
            "seconds": round(wall, 2), "files_per_s": round(done / wall, 1), "times": summary.meta["times"],
            **_peaks()}


def run_phase(corpus: pathlib.Path, workers: int, args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, str(corpus), "--workers", str(workers), "--phase", *args],
                         capture_output=True, text=True, env=os.environ.copy())
    if out.returncode != 0:
        raise SystemExit(f"phase {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus")
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--fit-sizes", default="1000,10000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="/work/scratch/bench-ingest")
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    corpus = pathlib.Path(args.corpus)
    if args.phase:
        kind, n = args.phase[0], int(args.phase[1])
        if kind == "bare":
            result = phase_bare(corpus, n)
        else:
            result = phase_ingest(corpus, n, pathlib.Path(args.phase[2]), kind == "fit", args.workers)
        print(json.dumps(result))
        return
    out = pathlib.Path(args.out)
    print(f"# ingest benchmark: {corpus}, processes scheduler with {args.workers} workers, {os.cpu_count()} CPUs; "
          f"load average at start {os.getloadavg()[0]:.1f}")
    print("| phase | N | seconds | files/s | peak RSS main (MB) | peak RSS worker (MB) | notes |")
    print("|---|---:|---:|---:|---:|---:|---|")

    def show(name, n, r, note=""):
        print(f"| {name} | {n:,} | {r['seconds']} | {r['files_per_s']} | {r['rss_main_mb']} | {r['rss_worker_mb']} | "
              f"{note} |", flush=True)

    sizes = [int(s) for s in args.sizes.split(",") if s]
    for n in sizes:
        if n == sizes[0]:  # the reference rate; it does not depend on N
            show("bare: read + sha256 + from_fits, 1 process", n, run_phase(corpus, args.workers, ["bare", str(n), "-"]))
        root = out / f"nofit-{n}"
        shutil.rmtree(root, ignore_errors=True)
        r = run_phase(corpus, args.workers, ["ingest", str(n), str(root)])
        show("ingest --no-fit", n, r, f"{r['new']} new, {r['failed']} failed; split {r['times']}")
        r = run_phase(corpus, args.workers, ["ingest", str(n), str(root)])
        show("re-ingest, unchanged", n, r, f"{r['unchanged']} unchanged; split {r['times']}")
    for n in [int(s) for s in args.fit_sizes.split(",") if s]:
        root = out / f"fit-{n}"
        shutil.rmtree(root, ignore_errors=True)
        r = run_phase(corpus, args.workers, ["fit", str(n), str(root)])
        show("ingest with fits", n, r, f"{r['new']} new; split {r['times']}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
