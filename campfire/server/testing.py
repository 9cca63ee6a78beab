"""Run the real server in a background thread on a free loopback port (tests, benchmarks).

Examples
--------
>>> with running_server(root) as url:          # doctest: +SKIP
...     Campfire(base_url=url).get_programs(remote=True)
"""
from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Iterator

__all__ = ["ServerThread", "running_server"]


class ServerThread:
    """uvicorn serving ``create_app(root, faults=...)`` on 127.0.0.1:<free port> in a thread."""

    def __init__(self, root, faults=None, log_level: str = "warning", **app_options):
        import uvicorn

        from campfire.server.app import create_app
        from campfire.server.limits import uvicorn_config

        self.app = create_app(root, faults=faults, **app_options)
        self.faults = faults
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP; with
        # proto 0 every keep-alive response waited ~40 ms for a delayed ACK (Nagle)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))  # port 0: the OS picks a free port
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn_config(self.app, log_level=log_level, lifespan="on", timeout_keep_alive=30,
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True,
                                       name=f"campfire-server-{self.port}")

    def start(self, timeout: float = 30.0) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the campfire server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        with contextlib.suppress(OSError):
            self.sock.close()


@contextlib.contextmanager
def running_server(root, faults=None) -> Iterator[str]:
    """Context manager yielding the base URL of a server over ``root``."""
    srv = ServerThread(root, faults=faults).start()
    try:
        yield srv.url
    finally:
        srv.stop()
