"""A TCP proxy on loopback that adds a round-trip time, for benchmarks of downloads "over a real network".

Every byte is held back half the round-trip time in each direction (so a request and
its answer pay one RTT, a new connection one more for the handshake as seen by the
client); bandwidth is not limited. Loopback only: it listens on 127.0.0.1 and forwards
only to a loopback address. Bounded: at most ``max_connections`` connections at once
(more are closed at once), and at most ``window`` bytes in flight per direction of a
connection (the reader waits, as TCP would), so a fast sender cannot fill memory.

Run it as its own process (so its CPU is not counted as the client's)::

    python bench/latency_proxy.py 127.0.0.1:8000 --rtt 0.05
    # prints "proxy 127.0.0.1:PORT -> 127.0.0.1:8000 rtt 50 ms" and serves until killed

or in a thread of the current process with :class:`LatencyProxy` (``start()`` / ``stop()``).
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ipaddress
import socket
import sys
import threading

READ_SIZE = 256 * 1024


class LatencyProxy:
    """Forward ``127.0.0.1:port`` → ``target`` with ``rtt`` seconds of added round-trip time.

    Parameters
    ----------
    target : (str, int)
        A loopback host and port.
    rtt : float
        Added round-trip time in seconds (half each way), 0 ≤ rtt ≤ 5.
    max_connections : int
        Connections served at once; more are closed on arrival.
    window : int
        Bytes in flight per direction of a connection.
    """

    def __init__(self, target: tuple[str, int], rtt: float = 0.05, *, max_connections: int = 256,
                 window: int = 4 << 20):
        host, port = target
        if not ipaddress.ip_address(socket.gethostbyname(host)).is_loopback:
            raise ValueError(f"target: expected a loopback address, got {host!r}")
        if not 0.0 <= rtt <= 5.0:
            raise ValueError(f"rtt: expected 0 to 5 seconds, got {rtt!r}")
        self.target, self.rtt = (host, int(port)), float(rtt)
        self.max_connections, self.window = int(max_connections), int(window)
        self.port: int | None = None
        self.connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy reader → writer, each chunk delivered ``rtt / 2`` after it was read."""
        loop = asyncio.get_running_loop()
        delay = self.rtt / 2
        held: collections.deque = collections.deque()
        room = asyncio.Semaphore(1)  # released when the bytes in flight fall below the window
        in_flight = 0
        arrived = asyncio.Event()

        async def receive():
            nonlocal in_flight
            while True:
                while in_flight >= self.window:
                    await room.acquire()
                data = await reader.read(READ_SIZE)
                held.append((loop.time() + delay, data))
                in_flight += len(data)
                arrived.set()
                if not data:
                    return

        async def deliver():
            nonlocal in_flight
            while True:
                while not held:
                    arrived.clear()
                    await arrived.wait()
                due, data = held.popleft()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    with contextlib.suppress(OSError):
                        if writer.can_write_eof():
                            writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
                in_flight -= len(data)
                if room.locked():
                    room.release()

        await room.acquire()
        tasks = [asyncio.ensure_future(receive()), asyncio.ensure_future(deliver())]
        try:
            await asyncio.gather(*tasks)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for t in tasks:
                t.cancel()

    async def _serve(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        if self.connections >= self.max_connections:
            c_writer.close()
            return
        self.connections += 1
        task = asyncio.current_task()
        self._tasks.add(task)  # a strong reference: asyncio keeps only weak ones to running tasks
        s_writer = None
        try:
            s_reader, s_writer = await asyncio.open_connection(*self.target)
            for w in (c_writer, s_writer):
                w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await asyncio.gather(self._pipe(c_reader, s_writer), self._pipe(s_reader, c_writer),
                                 return_exceptions=True)
        except OSError:
            pass
        finally:
            self._tasks.discard(task)
            self.connections -= 1
            for w in (c_writer, s_writer):
                if w is not None:
                    w.close()

    async def serve(self, port: int = 0, started: threading.Event | None = None) -> None:
        """Listen on ``127.0.0.1:port`` until cancelled."""
        server = await asyncio.start_server(self._serve, "127.0.0.1", port, backlog=self.max_connections)
        self.port = server.sockets[0].getsockname()[1]
        self._loop = asyncio.get_running_loop()
        if started is not None:
            started.set()
        async with server:
            await server.serve_forever()

    # -- in a thread of this process --------------------------------------------------------
    def start(self) -> int:
        """Serve in a daemon thread; the listening port."""
        started = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main(started)), daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("latency proxy did not start")
        return self.port

    async def _main(self, started: threading.Event) -> None:
        self._stop = asyncio.Event()
        task = asyncio.ensure_future(self.serve(0, started))
        await self._stop.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="TCP proxy on loopback adding a round-trip time")
    parser.add_argument("target", help="HOST:PORT to forward to (loopback)")
    parser.add_argument("--rtt", type=float, default=0.05, help="added round-trip time in seconds (default 0.05)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--max-connections", type=int, default=256)
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    proxy = LatencyProxy((host, int(port)), args.rtt, max_connections=args.max_connections)
    started = threading.Event()

    def announce():
        started.wait()
        print(f"proxy 127.0.0.1:{proxy.port} -> {host}:{port} rtt {args.rtt * 1000:.0f} ms", flush=True)

    threading.Thread(target=announce, daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(proxy.serve(args.port, started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
