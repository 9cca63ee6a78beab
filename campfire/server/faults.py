"""Fault injection for tests: a tiny ASGI middleware driven by a :class:`FaultInjector`.

Only enabled when ``create_app(root, faults=FaultInjector())`` is called (the test
suite does; ``campfire serve`` never does). It can answer the next N matching requests
with an error status, throttle response bodies, or cut a response after some bytes,
and it records every request's method, path and headers so tests can assert what the
client sent (e.g. a ``Range`` header on resume).

Examples
--------
>>> faults = FaultInjector()
>>> faults.fail('/api/v1/objects', status=500, times=2)   # the next two answers are 500s
>>> app = create_app(root, faults=faults)  # doctest: +SKIP
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

__all__ = ["FaultInjector", "FaultMiddleware"]


@dataclass
class _Rule:
    kind: str                  # fail | throttle | cut | flaky
    path: str                  # substring of the request path
    times: int = 1             # fail/cut: how many requests (-1: forever)
    status: int = 500
    headers: dict = field(default_factory=dict)
    rate: float = 0.0          # throttle: bytes per second
    after: int = 0             # cut: bytes sent before the connection drops
    method: str | None = None
    actions: tuple = ()        # flaky: an int status is answered as an error, a float stalls that many seconds
    first: int = 0             # flaky: the first N attempts of each distinct request get actions[i]
    rate: float = 0.0          # flaky: later attempts get a random action with this probability
    rng: object = None
    attempts: dict = field(default_factory=dict)


class _Cut(Exception):
    """Raised mid-response to drop the connection (the client sees a truncated body)."""


class FaultInjector:
    """Programmable faults plus a log of the requests seen."""

    def __init__(self):
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self.requests: list[dict] = []

    def fail(self, path: str, status: int = 500, times: int = 1, headers: dict | None = None,
             method: str | None = None) -> None:
        """Answer the next ``times`` requests whose path contains ``path`` with ``status``."""
        with self._lock:
            self._rules.append(_Rule("fail", path, times, status, dict(headers or {}), method=method))

    def throttle(self, path: str, bytes_per_second: float) -> None:
        """Slow down response bodies of matching requests (until :meth:`clear`)."""
        with self._lock:
            self._rules.append(_Rule("throttle", path, -1, rate=float(bytes_per_second)))

    def cut(self, path: str, after_bytes: int, times: int = 1) -> None:
        """Drop the connection of the next ``times`` matching responses after ``after_bytes``."""
        with self._lock:
            self._rules.append(_Rule("cut", path, times, after=int(after_bytes)))

    def flaky(self, path: str, actions: tuple = (500,), *, first: int = 0, rate: float = 0.0, seed: int = 0,
              method: str | None = "GET") -> None:
        """Intermittent faults on matching requests (until :meth:`clear`).

        ``actions`` are HTTP statuses (answered as errors) and floats (seconds the request
        is stalled before it is served, so a client with a shorter timeout gives up). The
        first ``first`` attempts of every distinct request (method, path, query) take
        ``actions`` in turn — e.g. ``flaky('/api/v1/', (500, 2.0), first=2)``: a 500, then a
        timeout, then the answer — and any later attempt gets a random one of them with
        probability ``rate`` (seeded, so a run is reproducible).
        """
        import random

        with self._lock:
            self._rules.append(_Rule("flaky", path, -1, method=method, actions=tuple(actions), first=int(first),
                                     rate=float(rate), rng=random.Random(seed)))

    def _flaky_action(self, method: str, path: str, query: str):
        with self._lock:
            for rule in self._rules:
                if rule.kind != "flaky" or rule.path not in path or (rule.method and rule.method != method):
                    continue
                key = (method, path, query)
                n = rule.attempts.get(key, 0)
                rule.attempts[key] = n + 1
                if n < rule.first:
                    return rule.actions[n % len(rule.actions)]
                if rule.rate and rule.rng.random() < rule.rate:
                    return rule.rng.choice(rule.actions)
                return None
        return None

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self.requests.clear()

    def matching(self, path: str) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if path in r["path"]]

    def _take(self, kind: str, method: str, path: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.kind != kind or rule.path not in path or (rule.method and rule.method != method):
                    continue
                if rule.times == 0:
                    continue
                if rule.times > 0:
                    rule.times -= 1
                return rule
        return None

    def _record(self, scope) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        with self._lock:
            self.requests.append({"method": scope["method"], "path": scope["path"],
                                  "query": scope.get("query_string", b"").decode("latin-1"), "headers": headers})


class FaultMiddleware:
    """The ASGI side of :class:`FaultInjector`."""

    def __init__(self, app, injector: FaultInjector):
        self.app = app
        self.injector = injector

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        import anyio

        inj = self.injector
        method, path = scope["method"], scope["path"]
        inj._record(scope)
        action = inj._flaky_action(method, path, scope.get("query_string", b"").decode("latin-1"))
        if isinstance(action, float):
            await anyio.sleep(action)  # then serve it: the client has given up by now
        elif action is not None:
            body = json.dumps({"error": "injected", "message": f"injected intermittent fault {action}"}).encode()
            await send({"type": "http.response.start", "status": int(action),
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        rule = inj._take("fail", method, path)
        if rule is not None:
            body = json.dumps({"error": "injected", "message": f"injected fault {rule.status}"}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            headers += [(k.lower().encode(), str(v).encode()) for k, v in rule.headers.items()]
            await send({"type": "http.response.start", "status": rule.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        throttle = inj._take("throttle", method, path)
        cut = inj._take("cut", method, path)
        if throttle is None and cut is None:
            return await self.app(scope, receive, send)
        sent = 0

        async def wrapped(message):
            nonlocal sent
            if message["type"] == "http.response.body":
                body = message.get("body", b"")
                if cut is not None and sent + len(body) > cut.after:
                    keep = max(0, cut.after - sent)
                    await send({"type": "http.response.body", "body": body[:keep], "more_body": True})
                    raise _Cut(f"injected connection cut after {cut.after} bytes")
                if throttle is not None and body:
                    # small slices so a throttled download shows steady progress
                    step = max(1, int(throttle.rate / 20))
                    for i in range(0, len(body), step):
                        piece = body[i:i + step]
                        await anyio.sleep(len(piece) / throttle.rate)
                        last = i + step >= len(body)
                        await send({"type": "http.response.body", "body": piece,
                                    "more_body": message.get("more_body", False) if last else True})
                    sent += len(body)
                    return
                sent += len(body)
            await send(message)

        await self.app(scope, receive, wrapped)
