"""A load generator for the archive server: N concurrent clients, mixed queries and downloads.

Used by tests/stress/test_load.py (a short CI variant and a ``--runslow`` one) and by
bench/bench_load.py (the figures in bench/RESULTS.md). Loopback only, bounded in
clients and time.

Each client is a thread (or, with ``processes=True``, a process) with its own HTTP
connection, logged in as anonymous, bob or alice in turn, that until the deadline
picks a request from a weighted mix — object and spectrum queries with random
filters, single records, spectrum arrays, redshift fits, FITS downloads (whole, or
resumed with a Range request, each verified against the catalog's sha256), shutters,
cutouts, metadata, tags and the occasional bulk export — and records its latency.
Anything but the expected answer is an error: a 5xx, a dropped connection, a 404 on
an ID the caller may see, a file whose hash does not match.
"""
from __future__ import annotations

import hashlib
import multiprocessing
import random
import sqlite3
import statistics
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

API = "/api/v1"
PASSWORDS = {"alice": "alice-demo", "bob": "bob-demo"}

# (kind, weight): queries dominate, as in interactive use; downloads move most of the bytes
MIX = [
    ("objects", 18), ("spectra", 12), ("object", 14), ("spectrum", 8), ("data", 8), ("redshift_fit", 4),
    ("file", 14), ("file_range", 4), ("shutters", 4), ("cutout", 3), ("metadata", 4), ("tags", 3), ("counts", 3),
    ("export", 1),
]


@dataclass
class Pool:
    """What one kind of caller may ask for: visible IDs and file hashes."""

    objects: list[str]
    spectra: list[tuple[str, str, int]]  # (spectrum_id, sha256, size)
    fields: list[str]


def id_pools(db_path) -> dict[str | None, Pool]:
    """Visible IDs per demo caller, read from the archive's catalog."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        public = {r[0] for r in conn.execute("SELECT program_id FROM programs WHERE is_public = 1")}
        rows = conn.execute("SELECT spectrum_id, object_id, program_id, file_hash, file_size FROM spectra").fetchall()
        fields = [r[0] for r in conn.execute("SELECT DISTINCT field FROM observations o JOIN programs p "
                                             "USING (program_id) WHERE p.is_public = 1")]
    finally:
        conn.close()
    pools = {}
    for user in (None, "bob", "alice"):
        vis = [r for r in rows if user == "alice" or r[2] in public]
        pools[user] = Pool(sorted({r[1] for r in vis}), sorted((r[0], r[3], r[4]) for r in vis), sorted(fields))
    return pools


@dataclass
class ClientResult:
    latencies: dict = field(default_factory=lambda: defaultdict(list))  # kind -> [seconds]
    errors: list = field(default_factory=list)                         # (kind, detail)
    bytes: int = 0


def _token(url: str, user: str | None) -> dict:
    import requests

    if user is None:
        return {}
    r = requests.post(f"{url}{API}/auth/token",
                      data={"grant_type": "password", "username": user, "password": PASSWORDS[user]}, timeout=60)
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _one_request(session, url: str, kind: str, pool: Pool, rng: random.Random, out: ClientResult) -> None:
    """Issue one request of ``kind``; raise AssertionError on any unexpected answer."""
    if kind == "objects":
        params = {"limit": rng.choice([10, 100, 500]), "sort": rng.choice(["object_id", "redshift", "max_snr"]),
                  "sort_dir": rng.choice(["asc", "desc"])}
        if rng.random() < 0.5:
            params["fields"] = rng.choice(pool.fields)
        if rng.random() < 0.4:
            lo = rng.uniform(0, 8)
            params["redshift_range"] = f"{lo:.2f},{lo + rng.uniform(0.5, 4):.2f}"
        if rng.random() < 0.3:
            params["dq_flags"] = rng.choice(["~CONTAMINATION&~LOW_SNR", "CHIP_GAP|STUCK_SHUTTER", "0"])
        r = session.get(f"{url}{API}/objects", params=params, timeout=60)
        assert r.status_code == 200, (r.status_code, r.text[:200])
        body = r.json()
        assert len(body["rows"]) <= params["limit"]
    elif kind == "spectra":
        params = {"limit": rng.choice([10, 100, 1000]), "gratings": rng.choice(["PRISM", "G395M", "G140M,G235M"])}
        if rng.random() < 0.5:
            params["max_snr_range"] = f"{rng.uniform(0, 20):.1f},1e9"
        r = session.get(f"{url}{API}/spectra", params=params, timeout=60)
        assert r.status_code == 200, (r.status_code, r.text[:200])
        r.json()
    elif kind in ("object", "shutters", "cutout"):
        oid = rng.choice(pool.objects)
        path = {"object": f"/objects/{oid}", "shutters": f"/objects/{oid}/shutters",
                "cutout": f"/objects/{oid}/cutout.png"}[kind]
        params = {"fov": rng.choice([2.0, 5.0])} if kind != "object" else None
        r = session.get(f"{url}{API}{path}", params=params, timeout=60)
        assert r.status_code == 200, (kind, oid, r.status_code, r.text[:200])
    elif kind in ("spectrum", "data", "redshift_fit"):
        sid = rng.choice(pool.spectra)[0]
        path = {"spectrum": f"/spectra/{sid}", "data": f"/spectra/{sid}/data",
                "redshift_fit": f"/spectra/{sid}/redshift-fit"}[kind]
        r = session.get(f"{url}{API}{path}", timeout=60)
        assert r.status_code == 200, (kind, sid, r.status_code, r.text[:200])
    elif kind == "file":
        sid, digest, size = rng.choice(pool.spectra)
        r = session.get(f"{url}{API}/spectra/{sid}/file", timeout=120)
        assert r.status_code == 200, (sid, r.status_code)
        assert len(r.content) == size and hashlib.sha256(r.content).hexdigest() == digest, f"{sid}: corrupt file"
    elif kind == "file_range":
        sid, digest, size = rng.choice(pool.spectra)
        start = rng.randrange(0, size)
        r = session.get(f"{url}{API}/spectra/{sid}/file", timeout=120,
                        headers={"Range": f"bytes={start}-", "If-Range": f'"{digest}"'})
        assert r.status_code == 206 and len(r.content) == size - start, (sid, r.status_code)
    elif kind in ("metadata", "tags", "counts"):
        r = session.get(f"{url}{API}/{kind}", timeout=60)
        assert r.status_code == 200, (kind, r.status_code)
    elif kind == "export":
        r = session.get(f"{url}{API}/export", timeout=120)
        assert r.status_code == 200 and r.content[:2] == b"\x1f\x8b", r.status_code
    else:  # pragma: no cover
        raise ValueError(kind)
    out.bytes += len(r.content)


def run_client(url: str, user: str | None, pool: Pool, deadline: float, seed: int) -> ClientResult:
    """One client until ``deadline`` (time.time()): a session, a token, the request mix."""
    import requests

    rng = random.Random(seed)
    out = ClientResult()
    session = requests.Session()
    session.headers.update(_token(url, user))
    kinds, weights = zip(*MIX)
    while time.time() < deadline:
        kind = rng.choices(kinds, weights)[0]
        t0 = time.perf_counter()
        try:
            _one_request(session, url, kind, pool, rng, out)
        except Exception as err:  # noqa: BLE001 - every failure is counted, none stops the run
            out.errors.append((kind, f"{type(err).__name__}: {err}"[:300]))
        out.latencies[kind].append(time.perf_counter() - t0)
    session.close()
    return out


def _client_process(args, queue) -> None:
    result = run_client(*args)
    queue.put((dict(result.latencies), result.errors, result.bytes))


@dataclass
class LoadReport:
    clients: int
    seconds: float
    requests: int
    errors: list
    bytes: int
    latencies: dict                      # kind -> [seconds]
    rss_start: int | None = None         # server resident memory, bytes
    rss_end: int | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float, kind: str | None = None) -> float:
        values = sorted(self.latencies.get(kind, []) if kind else [v for vs in self.latencies.values() for v in vs])
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]

    def summary(self) -> str:
        lines = [f"{self.clients} clients x {self.seconds:.1f} s: {self.requests} requests, "
                 f"{self.rps:.1f} req/s, {self.bytes / self.seconds / 1e6:.1f} MB/s, errors {len(self.errors)}",
                 f"latency p50 {self.percentile(50) * 1e3:.1f} ms, p99 {self.percentile(99) * 1e3:.1f} ms"]
        if self.rss_start is not None and self.rss_end is not None:
            lines.append(f"server RSS {self.rss_start / 2**20:.0f} MB -> {self.rss_end / 2**20:.0f} MB "
                         f"({(self.rss_end - self.rss_start) / 2**20:+.0f} MB)")
        lines.append(f"{'kind':<13}{'n':>7}{'p50 ms':>9}{'p99 ms':>9}")
        for kind, _ in MIX:
            n = len(self.latencies.get(kind, []))
            if n:
                lines.append(f"{kind:<13}{n:>7}{self.percentile(50, kind) * 1e3:>9.1f}"
                             f"{self.percentile(99, kind) * 1e3:>9.1f}")
        for kind, detail in Counter(self.errors).most_common(5):
            lines.append(f"error: {kind}: {detail}")
        return "\n".join(lines)


def run_load(url: str, db_path, *, clients: int = 8, seconds: float = 20.0, processes: bool = False,
             seed: int = 0, rss=None) -> LoadReport:
    """Run ``clients`` concurrent clients against ``url`` for ``seconds``.

    Parameters
    ----------
    url : str
        Server root (``http://127.0.0.1:PORT``).
    db_path : path
        The served archive's catalog (the pool of IDs each caller may ask for).
    processes : bool
        One process per client instead of threads (no shared GIL with other clients).
    rss : callable, optional
        Returns the server's resident memory in bytes; sampled before and after.
    """
    if not 1 <= clients <= 64 or not 0 < seconds <= 600:
        raise ValueError("a bounded load: 1-64 clients for at most 600 s")
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError("load tests target the loopback interface only")
    pools = id_pools(db_path)
    users = [[None, "bob", "alice"][i % 3] for i in range(clients)]
    rss_start = rss() if rss else None
    t0 = time.time()
    deadline = t0 + seconds
    results: list[ClientResult] = []
    if processes:
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        procs = [ctx.Process(target=_client_process, args=((url, u, pools[u], deadline, seed + i), queue))
                 for i, u in enumerate(users)]
        for p in procs:
            p.start()
        import queue as _queue

        while len(results) < len(procs):
            try:
                lat, errors, nbytes = queue.get(timeout=1.0)
            except _queue.Empty:
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead or time.time() > deadline + 300:
                    raise RuntimeError(f"{len(dead)} load client process(es) died") from None
                continue
            results.append(ClientResult(defaultdict(list, lat), errors, nbytes))
        for p in procs:
            p.join(60)
    else:
        lock = threading.Lock()

        def work(i: int, user):
            r = run_client(url, user, pools[user], deadline, seed + i)
            with lock:
                results.append(r)
        threads = [threading.Thread(target=work, args=(i, u), daemon=True) for i, u in enumerate(users)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 300)
    elapsed = time.time() - t0
    rss_end = rss() if rss else None
    latencies: dict = defaultdict(list)
    for r in results:
        for kind, values in r.latencies.items():
            latencies[kind].extend(values)
    return LoadReport(clients, elapsed, sum(len(v) for v in latencies.values()),
                      [e for r in results for e in r.errors], sum(r.bytes for r in results), dict(latencies),
                      rss_start, rss_end)


def median_ms(values) -> float:
    return statistics.median(values) * 1e3 if values else float("nan")
