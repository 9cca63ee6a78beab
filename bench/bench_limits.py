"""Bounded work per request (issue 15, points 1 and 2): cutouts and logins under load, before and after.

Runs the same two scenarios against the server of each checkout given (``--before`` a
checkout of the code before the limits, e.g. ``git archive 26c4e3a | tar -x -C /tmp/base``,
and this one), each in its own process over its own copy of the small demo, on loopback:

* **cutouts** — N concurrent large cutouts (``fov``, ``size=2048``; distinct fields of
  view, so no cache can answer, then N identical ones) while one client asks
  ``GET /objects?limit=10`` over and over: the server's peak and final RSS, the answers'
  statuses, the burst's wall time and the small query's latency (median, max);
* **logins** — 40 concurrent logins of an account hashed with the default bcrypt cost
  (12) while one client asks ``GET /objects/{id}`` over and over: the burst's wall time
  and the GET's latency (median, max).

    python bench/bench_limits.py --before /tmp/base [--cutouts 20] [--fov 40] [--root DEMO_ROOT]

The machine is shared (2 cores, other jobs): compare the two columns of one run.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time

import requests

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "stress"))  # the server-process harness, load helpers

from stresskit import PeakRSS, Poller, ServerProcess, at_once, copy_archive, free_port  # noqa: E402

MB = 2 ** 20
OBJ = "ember_uds_p4_123456"


def latency(poller) -> str:
    lat = poller.latencies or [float("nan")]
    return (f"median {statistics.median(lat) * 1e3:.0f} ms, max {max(lat) * 1e3:.0f} ms "
            f"({len(poller.latencies)} requests, {poller.failures} failed)")


def statuses(answers) -> str:
    codes: dict[str, int] = {}
    for a in answers:
        key = str(a) if isinstance(a, int) else type(a).__name__
        codes[key] = codes.get(key, 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(codes.items()))


def get_status(url: str, params=None, data=None) -> int | Exception:
    try:
        if data is not None:
            return requests.post(url, data=data, timeout=900).status_code
        return requests.get(url, params=params, timeout=900).status_code
    except requests.RequestException as err:
        return err


def cutouts(srv, n: int, fov: float) -> list[str]:
    api = f"{srv.url}/api/v1"
    url = f"{api}/objects/{OBJ}/cutout.png"
    assert requests.get(url, params={"fov": 2}, timeout=300).status_code == 200  # imports, caches warm
    lines = []
    # distinct fields of view (no cache can help), then identical requests of a field not seen yet
    for label, params in (("distinct", lambda i: {"fov": fov + i / 100, "size": 2048}),
                          ("identical", lambda i: {"fov": fov + 0.5, "size": 2048})):
        t0 = time.monotonic()
        with PeakRSS(srv) as rss, Poller(f"{api}/objects?limit=10") as small:
            answers = at_once(n, lambda i: get_status(url, params(i)))
        wall = time.monotonic() - t0
        time.sleep(1.0)
        lines.append(f"  {n} {label} cutouts (fov {fov:g}, size 2048): {wall:.0f} s, statuses {statuses(answers)}; "
                     f"server RSS idle {rss.start / MB:.0f} MB, peak {rss.peak / MB:.0f} MB, after {srv.rss_bytes() / MB:.0f} MB"
                     f"\n      concurrent GET /objects?limit=10: {latency(small)}")
    return lines


def logins(srv, n: int) -> list[str]:
    api = f"{srv.url}/api/v1"
    url = f"{api}/objects/{OBJ}"
    form = {"grant_type": "password", "username": "carol", "password": "carol-password-1"}
    assert get_status(f"{api}/auth/token", data=form) == 200
    with Poller(url) as idle:
        time.sleep(3)
    t0 = time.monotonic()
    with Poller(url) as busy:
        answers = at_once(n, lambda i: get_status(f"{api}/auth/token", data=form))
    wall = time.monotonic() - t0
    return [f"  {n} concurrent logins (bcrypt cost 12): {wall:.1f} s, statuses {statuses(answers)}",
            f"      GET /objects/{{id}} alone: {latency(idle)}",
            f"      GET /objects/{{id}} during the logins: {latency(busy)}"]


def main(argv=None) -> None:
    import dask

    from campfire.server.auth import add_user

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="checkout of the code before the limits")
    ap.add_argument("--cutouts", type=int, default=20)
    ap.add_argument("--fov", type=float, default=40.0)
    ap.add_argument("--logins", type=int, default=40)
    ap.add_argument("--root", default=os.environ.get("CAMPFIRE_TEST_DEMO_ROOT"))
    ap.add_argument("--login-workers", type=int, default=None,
                    help="also run the logins on this code with this many hashing threads (the trade-off)")
    args = ap.parse_args(argv)
    if not args.root:
        ap.error("--root (or $CAMPFIRE_TEST_DEMO_ROOT): a small demo archive")
    load = os.getloadavg()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {load:.1f} (shared); "
          f"servers and clients on loopback")
    this = HERE.parent
    runs = [("before", pathlib.Path(args.before).resolve(), {}, True), ("after", this, {}, True)]
    if args.login_workers:
        runs.append((f"after, login-workers {args.login_workers}", this,
                     {"DASK_CAMPFIRE__SERVER__LOGIN_WORKERS": str(args.login_workers)}, False))
    for label, code, env, with_cutouts in runs:
        work = pathlib.Path(tempfile.mkdtemp(prefix="campfire-limits-"))
        root = copy_archive(pathlib.Path(args.root), work / "root")
        with dask.config.set({"campfire.server.bcrypt-rounds": 12}):
            add_user(root, "carol", "carol-password-1")
        srv = ServerProcess(root, free_port(), code=code, env=env).start()
        try:
            print(f"\n== {label}: {code}")
            lines = cutouts(srv, args.cutouts, args.fov) if with_cutouts else []
            for line in lines + logins(srv, args.logins):
                print(line, flush=True)
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
