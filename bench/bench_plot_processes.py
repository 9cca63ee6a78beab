"""README's main job on the threads scheduler: quick-look PNGs drawn in processes vs in the threads.

    python bench/bench_plot_processes.py ROOT [--rounds 3] [--workflow workflows/stack_lrds.yaml] [--ref REF]

Each run is ``campfire run``'s ``run_workflow`` in a fresh process (as README's command runs
it) over the archive root ROOT (e.g. the small demo), alternating
``campfire.graph.plot-processes`` ``auto`` (the PNGs drawn by loky worker processes) and ``0``
(drawn by the scheduler's threads, one at a time under the GIL) round by round. Printed per
run: the run's seconds as its summary reports them, the compute's, when the first task
started, the process's wall time (imports included) and the CPU seconds of the run and every
process it started. The PNGs of both settings are compared byte for byte.

``--ref REF`` adds a third run per round: the same on a checkout of git ref REF (a temporary
worktree, its C kernels built in place), with its own defaults — the "before".
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
RUN = ("import sys, json, campfire; from campfire.workflows.runner import run_workflow; "
       "s = run_workflow(sys.argv[1], output=sys.argv[2], scheduler='threads', progress=False, echo=lambda _: None); "
       "print('RESULT', json.dumps({'seconds': s['seconds'], 'timings': s['timings'], "
       "'done': s['objects']['done'], 'campfire': campfire.__file__}))")


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def one_run(workflow: pathlib.Path, out: pathlib.Path, setting: str, tree: str | None = None) -> dict:
    env = dict(os.environ, DASK_CAMPFIRE__GRAPH__PLOT_PROCESSES=setting)
    if tree:
        env["PYTHONPATH"] = tree
    cpu0, t0 = _children_cpu(), time.perf_counter()
    # from the workflow's (empty of code) folder: `python -c` puts the working directory first on sys.path
    proc = subprocess.run([sys.executable, "-c", RUN, str(workflow), str(out)], capture_output=True, text=True,
                          env=env, check=True, timeout=600, cwd=workflow.parent)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    expected = os.path.realpath(tree or HERE.parent) + os.sep
    if not os.path.realpath(result["campfire"]).startswith(expected):
        raise RuntimeError(f"the run of {expected} imported campfire from {result['campfire']}")
    pngs = {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.glob("plots/**/*.png"))}
    return dict(result, wall=wall, cpu=cpu, pngs=pngs)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", help="an archive root (e.g. the small demo)")
    ap.add_argument("--workflow", default=str(HERE.parent / "workflows" / "stack_lrds.yaml"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ref", default=None, help="also run a checkout of this git ref (before), interleaved")
    args = ap.parse_args(argv)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-plot-processes-"))
    workflow = tmp / pathlib.Path(args.workflow).name
    workflow.write_text(pathlib.Path(args.workflow).read_text().replace("archive: demo", f"archive: {args.root}"))
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    one_run(workflow, tmp / "warm", "0")  # the page cache and numba's cache, before any timed run
    trees = {"auto": None, "0": None}
    if args.ref:
        sys.path.insert(0, str(HERE))
        from bench_pipeline import _built_checkout

        trees[f"{args.ref} (before)"] = _built_checkout(args.ref)
    runs: dict[str, list[dict]] = {k: [] for k in trees}
    print("| round | tree / plot-processes | PNGs | run s | compute s | first task s | process wall s | CPU s |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    try:
        for i in range(args.rounds):
            for setting, tree in trees.items():
                r = one_run(workflow, tmp / f"{len(runs[setting])}-{i}-{setting.split()[0]}",
                            setting if tree is None else "0", tree)
                runs[setting].append(r)
                t = r["timings"]
                print(f"| {i + 1} | {setting} | {len(r['pngs'])} | {r['seconds']:.2f} | {t['compute']:.2f} | "
                      f"{t['first_task_after_start']:.2f} | {r['wall']:.2f} | {r['cpu']:.2f} |", flush=True)
    finally:
        for tree in trees.values():
            if tree:
                subprocess.run(["git", "-C", str(HERE.parent), "worktree", "remove", "--force", tree],
                               capture_output=True)
    for setting, rs in runs.items():
        print(f"{setting}: median run {statistics.median(r['seconds'] for r in rs):.2f} s, process wall "
              f"{statistics.median(r['wall'] for r in rs):.2f} s, CPU {statistics.median(r['cpu'] for r in rs):.2f} s")
    digests = {json.dumps(r["pngs"], sort_keys=True) for rs in runs.values() for r in rs}
    print("PNGs: the same bytes in every run" if len(digests) == 1 else "PNGs: DIFFER between runs")
    print("campfire from:", sorted({r["campfire"] for rs in runs.values() for r in rs}))


if __name__ == "__main__":
    main()
