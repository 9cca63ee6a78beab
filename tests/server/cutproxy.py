"""A TCP proxy on loopback that closes every connection after N bytes of the server's answer.

Where the server's FaultInjector cuts a response inside the app (the HTTP framing stays
valid up to the cut), this cuts the byte stream itself, anywhere — inside the status
line or the headers too — as a broken network or a dying proxy would.
"""
from __future__ import annotations

import contextlib
import socket
import threading


class CuttingProxy:
    """Forward 127.0.0.1:<port> to ``upstream``; close each connection after ``cut_after`` response bytes."""

    def __init__(self, upstream: tuple[str, int], cut_after: int):
        self.upstream = upstream
        self.cut_after = cut_after
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> "CuttingProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.close()
        self._thread.join(timeout=10)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.upstream, timeout=60)
        threading.Thread(target=self._pump_requests, args=(client, upstream), daemon=True).start()
        left = self.cut_after
        try:
            while left > 0:
                data = upstream.recv(min(65536, left))
                if not data:
                    break
                client.sendall(data)
                left -= len(data)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    @staticmethod
    def _pump_requests(client: socket.socket, upstream: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                data = client.recv(65536)
                if not data:
                    break
                upstream.sendall(data)
