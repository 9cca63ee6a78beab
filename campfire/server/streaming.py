"""Streamed responses whose source is closed when the response ends, however it ends.

Starlette's :class:`~starlette.responses.StreamingResponse` iterates a synchronous
iterator in its thread pool and, when the response stops early (the client went away,
a connection was cut, the server is stopping), leaves the iterator as it is: a
generator's ``finally`` — the export's temporary snapshot (a copy of the catalog),
a file handle, a catalog cursor — then runs whenever the garbage collector reaches
it, in whatever thread triggers that collection. :class:`ClosingStreamingResponse`
closes the iterator itself, in a worker thread (a generator's cleanup may block),
as the response ends.

Examples
--------
>>> def body():
...     try:
...         yield b"data"
...     finally:
...         print("released")
>>> response = ClosingStreamingResponse(body(), media_type="application/octet-stream")
"""
from __future__ import annotations

import logging
from typing import Any, Iterator

import anyio
from starlette.responses import StreamingResponse

__all__ = ["ClosingStreamingResponse"]

log = logging.getLogger("campfire.server")


class ClosingStreamingResponse(StreamingResponse):
    """A :class:`~starlette.responses.StreamingResponse` of ``content`` that calls ``content.close()`` when it ends.

    Parameters
    ----------
    content : iterator of bytes
        Typically a generator; closed after the last chunk, or when sending stops early.
    **kwargs
        As for :class:`~starlette.responses.StreamingResponse` (``status_code``,
        ``headers``, ``media_type``, ``background``).
    """

    def __init__(self, content: Iterator[bytes], **kwargs: Any):
        super().__init__(content, **kwargs)
        self._source = content

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                # shielded: a response cancelled (the server stopping) still releases what its source holds
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(_close, close)


def _close(close) -> None:
    try:
        close()
    except ValueError as err:  # "generator already executing": a worker thread still in it
        log.warning("a streamed response's source could not be closed (%s): the garbage collector will", err)
