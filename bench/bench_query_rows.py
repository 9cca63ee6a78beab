"""Per-row and fixed cost of local queries on the 1,000,000-spectrum catalog, before/after (issue 16.5).

Cases: a multi-filter ``query_spectra`` (~thousands of rows), a 30" ``cone_search``
(hundreds of objects), 50,000 rows of ``query_spectra(gratings=['G235M'])`` (the
per-row cost), and a query that matches nothing (the fixed cost: path choice, SQL,
an empty Table). Each is timed through ``Campfire.query_*`` — with the reader campfire
chooses (``campfire.catalog.reader: auto``: columns through ADBC when the ``fast`` extra
is installed) and with the row reader (``rows``) — and, side by side, as the bare
libraries: the same SQL and parameters through ``sqlite3`` ``fetchall()`` (SQLite's own
work plus Python's row tuples, the floor of any row-wise reader) and through
``adbc_driver_sqlite`` into an Arrow table (SQLite's work plus Arrow's columns, the floor
of the columnar reader: no numpy arrays, no Table).

``--before REF`` runs the same cases with the campfire of a git ref (``git archive``
into a temp dir) in a child process, alternating with this tree's, so the shared
machine's load hits both alike. Times are the median of ``--repeat`` runs (wall), the
best of ``--rounds``; the CPU time of the process is printed too (less sensitive to
what else runs on a shared machine).

    python bench/bench_query_rows.py CATALOG_ROOT [--before REF] [--repeat 15] [--rounds 2]
    # CATALOG_ROOT: a demo built with ``campfire demo build ROOT --size catalog``
    # the columnar reader and the bare ADBC column need: pip install "campfire[fast]"
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent


def _bare_arrow(path):
    """The same SQL through the ADBC SQLite driver into an Arrow table (None without the driver)."""
    try:
        import adbc_driver_sqlite.dbapi
    except ImportError:
        return None
    import atexit

    conn = adbc_driver_sqlite.dbapi.connect(f"file:{path}?mode=ro", autocommit=True)
    cur = conn.cursor()
    atexit.register(lambda: (cur.close(), conn.close()))
    cur.execute("PRAGMA cache_size = -65536")  # as campfire's connections
    cur.fetchall()

    def run(sql, params):
        cur.execute(sql, params)
        return cur.fetch_arrow_table()

    return run


def child(root: str, repeat: int) -> dict:
    import dask

    from campfire import Campfire
    from campfire.catalog.filters import build_query
    from campfire.flags import DQFlags

    cf = Campfire(data_dir=root)
    cat = cf.local_catalog
    conn = cat.conn
    fields = cf.get_fields()
    n_obj = conn.execute("SELECT max(rowid) FROM objects").fetchone()[0]
    ra, dec = conn.execute("SELECT ra, dec FROM objects WHERE rowid = ?", (n_obj // 2,)).fetchone()
    arrow = _bare_arrow(cat.db_path)
    cases = {
        "multi-filter query_spectra": ("spectra", dict(
            fields=fields[:1], gratings=["PRISM"], redshift_range=(4.0, 6.0), max_snr_range=(5, 1e9),
            dq_flags=~DQFlags.CONTAMINATION & ~DQFlags.LOW_SNR, inspected_only=True)),
        '30" cone query_objects': ("objects", dict(cone_search=(ra, dec, 30.0))),
        "50,000 rows query_spectra": ("spectra", dict(gratings=["G235M"], limit=50_000)),
        "no match (fixed cost)": ("objects", dict(cone_search=(ra, dec + 1.0, 0.01))),
    }
    out = {}
    for label, (kind, kw) in cases.items():
        call = (lambda kw=kw: cf.query_spectra(**kw)) if kind == "spectra" else (lambda kw=kw: cf.query_objects(**kw))
        sql, params = cat.compile(build_query(kind, **kw).resolve(cat.vocabulary()))

        def bare(sql=sql, params=params):
            return conn.execute(sql, params).fetchall()

        def rows(call=call):
            with dask.config.set({"campfire.catalog.reader": "rows"}):  # an older tree ignores it
                return call()

        fns = {"campfire": call, "row reader": rows, "bare": bare}
        if arrow is not None:
            fns["arrow"] = lambda sql=sql, params=params: arrow(sql, params)
        n = len(call())
        assert len(bare()) == n and len(rows()) == n
        assert arrow is None or fns["arrow"]().num_rows == n
        times = {k: [] for name in fns for k in (name, name + " cpu")}
        names = list(fns)
        shuffle = random.Random(0)
        for i in range(repeat):
            # alternate, so that the load of the moment hits all alike, in a new order each time: a query
            # right after another reader's (the bare ADBC one's most) finds the CPU caches filled by it and
            # takes longer (a 30" cone: +0.2-0.3 ms after ADBC, stop 28), so none may always go after one.
            # (A rotation of one order kept every reader behind the same one: campfire's behind ADBC's)
            for name in shuffle.sample(names, len(names)):
                fn = fns[name]
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                times[name].append(time.perf_counter() - t0)
                times[name + " cpu"].append(time.process_time() - c0)
        out[label] = {"rows": n, **{k: statistics.median(v) * 1e3 for k, v in times.items()}}
    return out


def run_child(tree: pathlib.Path, root: str, repeat: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", root, str(repeat)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (
                             str(tree), os.environ.get("PYTHONPATH"))))}, timeout=1800)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    parser.add_argument("--before", default=None)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    trees = {"after": REPO}
    tmp = None
    if args.before:
        tmp = tempfile.TemporaryDirectory(prefix="campfire-before-")
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.before, "campfire"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp.name], input=archive, check=True)
        trees["before"] = pathlib.Path(tmp.name)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine); "
          f"median of {args.repeat} x {args.rounds} rounds, wall ms")
    results: dict[str, list[dict]] = {k: [] for k in trees}
    for r in range(args.rounds):
        for name in (list(trees) if r % 2 == 0 else list(trees)[::-1]):
            results[name].append(run_child(trees[name], args.root, args.repeat))
    best = {name: {label: {k: min(run[label][k] for run in runs) for k in runs[0][label]}
                   for label in runs[0]} for name, runs in results.items()}
    arrow = "arrow" in best["after"][next(iter(best["after"]))]
    print(f"{'case':30} {'rows':>7} " + " ".join(f"{n + ' ms':>12} {'µs/row':>7}" for n in trees)
          + f" {'after, rows reader':>18} {'bare sqlite3 ms':>16}" + (f" {'bare ADBC→Arrow':>16}" if arrow else ""))
    for label in best["after"]:
        n = best["after"][label]["rows"]
        cells = " ".join(f"{best[t][label]['campfire']:>12.2f} {1e3 * best[t][label]['campfire'] / max(n, 1):>7.2f}"
                         for t in trees)
        bare = min(best[t][label]["bare"] for t in trees)
        print(f"{label:30} {n:>7,} {cells} {best['after'][label]['row reader']:>18.2f} {bare:>16.2f}"
              + (f" {best['after'][label]['arrow']:>16.2f}" if arrow else ""))
    # CPU time of this process: what the query costs, less what the neighbours' load adds to the wall
    print("CPU ms (process_time; median, best round):  " + "  ".join(
        f"{label}: " + " / ".join(f"{t} {best[t][label]['campfire cpu']:.2f}" for t in trees)
        + f" / after, rows reader {best['after'][label]['row reader cpu']:.2f}"
        + f" / bare {min(best[t][label]['bare cpu'] for t in trees):.2f}"
        + (f" / bare ADBC {best['after'][label]['arrow cpu']:.2f}" if arrow else "") for label in best["after"]))
    readers = [(t, "campfire") for t in trees] + [("after, rows reader", "row reader")]
    for name, key in readers:
        runs = best[name.split(",")[0]]
        fixed = runs["no match (fixed cost)"][key]
        big = runs["50,000 rows query_spectra"]
        per_row = (big[key] - fixed) / big["rows"] * 1e3
        print(f"{name}: fixed cost {fixed:.2f} ms, {per_row:.2f} µs per returned row")
    big = best["after"]["50,000 rows query_spectra"]
    print(f"bare sqlite3 fetchall: {big['bare'] / big['rows'] * 1e3:.2f} µs per row"
          + (f"; bare ADBC → Arrow: {big['arrow'] / big['rows'] * 1e3:.2f} µs per row" if arrow else ""))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]))))
    else:
        main()
