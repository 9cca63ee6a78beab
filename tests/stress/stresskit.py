"""Helpers of the hardening suite (tests/stress): server processes, archive copies, the leak detector.

Imported by conftest.py and the test modules (a module of its own, so tests never
import a ``conftest`` by name).
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.util
import os
import pathlib
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import requests

HERE = pathlib.Path(__file__).resolve().parent
# the helpers of tests/server/conftest.py (archive copy, server thread with a FaultInjector),
# loaded under a name of their own
_spec = importlib.util.spec_from_file_location("_campfire_server_conftest", HERE.parent / "server" / "conftest.py")
server_helpers = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = server_helpers  # dataclasses look their module up there
_spec.loader.exec_module(server_helpers)

copy_archive = server_helpers.copy_archive
start_server = server_helpers.start_server
DEMO_PASSWORDS = server_helpers.DEMO_PASSWORDS
API = "/api/v1"


def password_token(url: str, user: str) -> dict:
    """The token endpoint's answer (access + refresh token) for a demo user."""
    r = requests.post(f"{url}{API}/auth/token",
                      data={"grant_type": "password", "username": user, "password": DEMO_PASSWORDS[user]})
    r.raise_for_status()
    return r.json()


# ------------------------------------------------------------------- server in a process
SERVE_SCRIPT = HERE / "serve_process.py"


@dataclass
class ServerProcess:
    """``campfire.server`` in its own process on a fixed loopback port (restartable)."""

    root: pathlib.Path
    port: int
    throttle: float = 0.0          # bytes/s of /file bodies (0: full speed)
    proc: subprocess.Popen | None = None
    log: list = field(default_factory=list)
    code: pathlib.Path | None = None  # another checkout of campfire to run (benchmarks: before/after)
    env: dict = field(default_factory=dict)  # extra environment (DASK_CAMPFIRE__... settings)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> "ServerProcess":
        env = dict(os.environ, DASK_CAMPFIRE__SERVER__BCRYPT_ROUNDS="4", **self.env)
        script = SERVE_SCRIPT
        if self.code is not None:
            env["PYTHONPATH"] = str(self.code)
            script = self.code / "tests" / "stress" / "serve_process.py"
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(self.root), str(self.port), repr(self.throttle)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            self.log.append(line)
            if line.startswith("READY"):
                # keep draining stdout (a full pipe would block the server) into the log
                threading.Thread(target=self._drain, daemon=True).start()
                return self
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError("server process did not start:\n" + "".join(self.log))

    def _drain(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            for line in self.proc.stdout:
                self.log.append(line)

    def file_requests(self) -> list[tuple[str, str]]:
        """(path, Range header) of every file request this server process answered."""
        out = []
        for line in list(self.log):
            if line.startswith("FILE "):
                _, _, path, rng = line.split(" ", 3)
                out.append((path, rng.strip().removeprefix("range=")))
        return out

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, connections drop mid-body."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()

    def rss_bytes(self) -> int:
        """Resident memory of the server process (Linux /proc)."""
        text = pathlib.Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------- leak detector
@dataclass(frozen=True)
class Secrets:
    """What a non-member must never read: names and IDs of the proprietary programs' data."""

    program_ids: frozenset[int]
    strings: tuple[str, ...]          # lower-case: slugs, names, observations, spectrum/object/file IDs

    def leaks(self, body: str | bytes, request_text: str = "") -> list[str]:
        """The secret strings in ``body`` that were not simply echoed from the request."""
        if isinstance(body, bytes):
            body = body.decode("latin-1")
        low, asked = body.lower(), request_text.lower()
        return [s for s in self.strings if s in low and s not in asked]


def catalog_secrets(db: pathlib.Path) -> Secrets:
    """The proprietary programs' identifying strings, read from an archive's catalog."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        prop = {r[0] for r in conn.execute("SELECT program_id FROM programs WHERE is_public = 0")}
        marks = ",".join("?" * len(prop))
        strings: set[str] = set()
        for slug, name in conn.execute(f"SELECT slug, program_name FROM programs WHERE program_id IN ({marks})",
                                       sorted(prop)):
            strings |= {slug, name}
        strings |= {r[0] for r in conn.execute(
            f"SELECT observation FROM observations WHERE program_id IN ({marks})", sorted(prop))}
        for sid, fits_path, digest in conn.execute(
                f"SELECT spectrum_id, fits_path, file_hash FROM spectra WHERE program_id IN ({marks})", sorted(prop)):
            strings |= {sid, pathlib.PurePosixPath(fits_path).name, digest}
        strings |= {r[0] for r in conn.execute(
            f"SELECT object_id FROM spectra GROUP BY object_id HAVING sum(program_id NOT IN ({marks})) = 0",
            sorted(prop))}
    finally:
        conn.close()
    # a secret that is part of a public string (a shared PI name, a common word) proves nothing
    return Secrets(frozenset(prop), tuple(sorted(s.lower() for s in strings if s and len(s) >= 6)))


# ------------------------------------------------------------------ concurrency helpers
def at_once(n: int, fn) -> list:
    """``fn(i)`` for i < n, from n threads released together (a barrier); the results in order."""
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait(timeout=120)
        return fn(i)

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


class Poller:
    """A client asking ``url`` again and again (``pause`` s apart) in a thread, recording each latency."""

    def __init__(self, url: str, pause: float = 0.05):
        self.url = url
        self.pause = pause
        self.latencies: list[float] = []
        self.failures = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with requests.Session() as s:
            while not self._done.is_set():
                t0 = time.monotonic()
                try:
                    ok = s.get(self.url, timeout=300).status_code == 200
                except requests.RequestException:
                    ok = False
                self.latencies.append(time.monotonic() - t0)
                self.failures += not ok
                time.sleep(self.pause)

    def __enter__(self) -> "Poller":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join(300)


class PeakRSS:
    """The peak resident memory of a :class:`ServerProcess` while in the ``with`` block (sampled every 20 ms)."""

    def __init__(self, srv: ServerProcess):
        self.srv = srv
        self.start = self.peak = srv.rss_bytes()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            with contextlib.suppress(OSError, AttributeError):
                self.peak = max(self.peak, self.srv.rss_bytes())
            time.sleep(0.02)

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join(30)
