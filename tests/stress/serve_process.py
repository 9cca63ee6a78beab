"""Run the archive server in this process on a fixed loopback port (used by the stress tests).

    python serve_process.py ROOT PORT [THROTTLE_BYTES_PER_SECOND]

A fixed port lets a test SIGKILL the server and start it again at the same URL (the
client keeps its base_url); SO_REUSEADDR lets the new process bind at once although
the killed one left connections in TIME_WAIT. With a throttle, file bodies trickle
so a test can kill the server mid-download. Prints ``READY`` once it accepts.
"""
from __future__ import annotations

import socket
import sys
import threading
import time


def main(root: str, port: int, throttle: float = 0.0) -> None:
    import uvicorn

    from campfire.server.app import create_app
    from campfire.server.faults import FaultInjector
    from campfire.server.limits import uvicorn_config

    faults = FaultInjector()
    if throttle > 0:
        faults.throttle("/file", bytes_per_second=throttle)
    # the injector's in-memory request log would grow without bound under load: instead, file
    # requests (with their Range header) are printed, so a test can see how a client resumed
    def record(scope) -> None:
        if scope["path"].endswith("/file"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            print(f"FILE {scope['method']} {scope['path']} range={headers.get('range', '')}", flush=True)

    faults._record = record
    app = create_app(root, faults=faults)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so asyncio sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = uvicorn.Server(uvicorn_config(app, log_level="warning", lifespan="on", timeout_keep_alive=30))

    def ready() -> None:
        while not server.started:
            time.sleep(0.01)
        print("READY", flush=True)

    threading.Thread(target=ready, daemon=True).start()
    server.run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
