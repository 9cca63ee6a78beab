"""Local catalog speed on the 1,000,000-spectrum demo catalog (issue 2).

Prints: median/p90 time of a multi-filter query_spectra, of large (~50,000-row)
query_spectra results without a field filter — with the access path LocalCatalog chose,
and through the schema-1 join for comparison (``--no-join`` skips those slow runs) —,
of a 30-arcsec cone search (R*Tree index vs a full scan of the same predicate), and
the peak memory of iter_spectra over the whole catalog (tracemalloc, flat = streaming).

    python bench/bench_query.py [ROOT] [--no-join] [--no-iter]
    # ROOT defaults to a temp dir; builds --size catalog there if it has no catalog
"""
from __future__ import annotations

import math
import pathlib
import statistics
import sys
import tempfile
import time
import tracemalloc

import numpy as np


def timeit(fn, repeat=15):
    fn()  # warm the page cache
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, float(np.percentile(times, 90)) * 1e3


def _plan(catalog, query) -> str:
    sql, params = catalog.compile(query.resolve(catalog.vocabulary()))
    return "; ".join(row[-1] for row in catalog.conn.execute("EXPLAIN QUERY PLAN " + sql, params))


def large_results(cf, join: bool = True) -> None:
    """~50,000-row answers from 1,000,000 spectra without a field filter (the slow case of issue 2)."""
    import dataclasses

    from campfire.catalog.filters import build_query
    from campfire.catalog.columns import spectra_table
    from campfire.catalog.db import change_stamp
    from campfire.catalog.local import LocalCatalog
    from campfire.flags import DQFlags

    cases = {
        "gratings=['PRISM'], redshift_range=(4, 6), max_snr_range=(5, 1e9), dq_flags=~CONTAMINATION & ~LOW_SNR, "
        "inspected_only=True": dict(gratings=["PRISM"], redshift_range=(4.0, 6.0), max_snr_range=(5, 1e9),
                                    dq_flags=~DQFlags.CONTAMINATION & ~DQFlags.LOW_SNR, inspected_only=True),
        "redshift_range=(5.0, 5.4)": dict(redshift_range=(5.0, 5.4)),
        "gratings=['G235M'], limit=50_000": dict(gratings=["G235M"], limit=50_000),
        "redshift_range=(8.0, 8.2)": dict(redshift_range=(8.0, 8.2)),
    }
    cat = cf.local_catalog
    # the schema-1 access path on the same file: spectra JOIN objects, SQLite's own plan
    joined = LocalCatalog(cat.root)
    joined._layout_cache = (change_stamp(joined.db_path), dataclasses.replace(joined._layout(), copies=False))
    for label, kw in cases.items():
        q = build_query("spectra", **kw)
        n = len(cf.query_spectra(**kw))
        med, p90 = timeit(lambda: cf.query_spectra(**kw), repeat=7)
        # where the time goes: choosing the path; execute (a plan with a sort finds and sorts every
        # row here, one without streams them during the fetch); fetch + Table
        rq = q.resolve(cat.vocabulary())
        t0 = time.perf_counter()
        sql, params = cat.compile(rq)
        t1 = time.perf_counter()
        cur = cat.conn.execute(sql, params)
        t2 = time.perf_counter()
        spectra_table(cur.fetchall())
        t3 = time.perf_counter()
        print(f"query_spectra({label}) -> {n:,} rows: median {med:.0f} ms, p90 {p90:.0f} ms "
              f"[one run: path {1e3 * (t1 - t0):.0f} ms + execute {1e3 * (t2 - t1):.0f} ms + "
              f"fetch and Table {1e3 * (t3 - t2):.0f} ms; "
              f"plan: {_plan(cat, q)}]")
        if join:
            med_j, p90_j = timeit(lambda: joined.query(q), repeat=3)
            print(f"    through the schema-1 join: median {med_j:.0f} ms, p90 {p90_j:.0f} ms "
                  f"(plan: {_plan(joined, q)})")


def main(root: str | None = None, join: bool = True, iterate: bool = True) -> None:
    import campfire.demo
    from campfire import Campfire
    from campfire.flags import DQFlags

    root = pathlib.Path(root or tempfile.mkdtemp(prefix="campfire-catalog-"))
    if not (root / "meta" / "campfire.db").exists():
        t0 = time.perf_counter()
        campfire.demo.build(root, size="catalog")
        print(f"built catalog demo in {time.perf_counter() - t0:.1f} s at {root}")
    cf = Campfire(data_dir=root)
    conn = cf.local_catalog.conn
    n_spec = conn.execute("SELECT count(*) FROM spectra").fetchone()[0]
    n_obj = conn.execute("SELECT count(*) FROM objects").fetchone()[0]
    print(f"catalog: {n_spec:,} spectra, {n_obj:,} objects")

    fields = cf.get_fields()
    multi = dict(fields=fields[:1], gratings=["PRISM"], redshift_range=(4.0, 6.0), max_snr_range=(5, 1e9),
                 dq_flags=~DQFlags.CONTAMINATION & ~DQFlags.LOW_SNR, inspected_only=True)
    n_rows = len(cf.query_spectra(**multi))
    med, p90 = timeit(lambda: cf.query_spectra(**multi))
    print(f"query_spectra multi-filter ({n_rows:,} rows): median {med:.1f} ms, p90 {p90:.1f} ms")
    large_results(cf, join=join)

    # a cone centred on a real object
    ra, dec = conn.execute("SELECT ra, dec FROM objects ORDER BY rowid LIMIT 1 OFFSET ?", (n_obj // 2,)).fetchone()
    cone = (ra, dec, 30.0)
    n_cone = len(cf.query_objects(cone_search=cone))
    med, p90 = timeit(lambda: cf.query_objects(cone_search=cone))
    print(f"cone_search 30\" via R*Tree ({n_cone} objects): median {med:.2f} ms, p90 {p90:.2f} ms")
    r = 30 / 3600
    cra, cdec = math.radians(ra), math.radians(dec)
    v = (math.cos(cdec) * math.cos(cra), math.cos(cdec) * math.sin(cra), math.sin(cdec))
    scan_sql = "SELECT object_id FROM objects WHERE cx * ? + cy * ? + cz * ? >= ?"
    scan = lambda: conn.execute(scan_sql, (*v, math.cos(math.radians(r)))).fetchall()  # noqa: E731
    assert len(scan()) == n_cone
    med_s, p90_s = timeit(scan, repeat=5)
    print(f"cone_search 30\" by full scan (same predicate, no index): median {med_s:.1f} ms, p90 {p90_s:.1f} ms")
    plan = conn.execute("EXPLAIN QUERY PLAN " + cf.local_catalog.compile(
        __import__("campfire.catalog.filters", fromlist=["build_query"]).build_query("objects", cone_search=cone))[0],
        cf.local_catalog.compile(__import__("campfire.catalog.filters", fromlist=["build_query"]).build_query(
            "objects", cone_search=cone))[1]).fetchall()
    print("cone plan:", "; ".join(row[-1] for row in plan))

    for limit in (10_000, 100_000, None) if iterate else ():
        tracemalloc.start()
        t0 = time.perf_counter()
        n = 0
        for i, _row in enumerate(cf.iter_spectra()):
            n += 1
            if limit and i + 1 >= limit:
                break
        dt = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(f"iter_spectra over {n:,} rows: {dt:.1f} s ({n / dt:,.0f} rows/s), peak traced memory {peak:.1f} MiB")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(args[0] if args else None, join="--no-join" not in sys.argv, iterate="--no-iter" not in sys.argv)
