"""What a spectrum's file holds: the FITS file itself (ETag, Range), its arrays, its redshift fit."""
from __future__ import annotations

import os
from email.utils import formatdate
from typing import Iterator

from fastapi import APIRouter, Depends, Request, Security
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable, Response

from campfire.errors import NotFoundError, ValidationError
from campfire.io.fits import read_redshift_fit, read_spectrum_2d
from campfire.server.archive import Archive, Caller
from campfire.server.deps import caller, caller_of, get_archive, oauth2
from campfire.server.encoding import arrays_json, json_response
from campfire.server.errors import APIProblem
from campfire.server.params import no_extra, query_params
from campfire.server.records import spectrum_or_404
from campfire.server.streaming import ClosingStreamingResponse

__all__ = ["router"]

router = APIRouter(tags=["files"])


class _FileResponse(FileResponse):
    """Starlette's file response (Range, If-Range, HEAD) in 512 KiB reads instead of 64 KiB."""

    chunk_size = 512 * 1024


# A local product up to this size is read whole on the route's worker thread and answered from
# memory. Starlette's FileResponse would stat, open, read and close it on four more thread hops
# and watch for a disconnect on a task of its own: 1-2 ms of server CPU per file (bench_file_server.py).
_INLINE_MAX = 1 << 20


@router.head("/spectra/{spectrum_id}/file", include_in_schema=False)
@router.get("/spectra/{spectrum_id}/file",
            summary="The spectrum's FITS file (ETag = sha256 of the content; Range supported; "
                    "object-store products: a 307 redirect to a short-lived pre-signed URL, or streamed)",
            response_class=Response)
async def spectrum_file(spectrum_id: str, request: Request, _token: str | None = Security(oauth2),
                        archive: Archive = Depends(get_archive)):
    # who is asking and the answer on one worker thread: a sync dependency would take a hop of its own
    return await run_in_threadpool(_spectrum_file, spectrum_id, request, archive)


def _spectrum_file(spectrum_id: str, request: Request, archive: Archive) -> Response:
    no_extra(query_params(request))
    row = spectrum_or_404(caller_of(request, archive), spectrum_id)
    path = archive.file_path(row["fits_path"])
    etag = f'"{row["file_hash"]}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Accept-Ranges": "bytes"}
    inm = request.headers.get("if-none-match")
    if inm and etag in [t.strip() for t in inm.split(",")]:
        return Response(status_code=304, headers=headers)
    http_range = request.headers.get("range")
    if not archive.products.is_remote:
        return _local_file(path, request, headers, http_range)
    size = int(row.get("file_size") or 0) or archive.products.size(row["fits_path"])
    ranges = _ranges(http_range, size) if http_range is not None else []
    return _object_store_file(archive, row, request, headers, size, ranges)


def _local_file(path, request: Request, headers: dict, http_range: str | None) -> Response:
    """A product under ``<root>/products``: from memory up to ``_INLINE_MAX`` bytes, else Starlette's file response.

    The size, date and bytes all come from one open file (a file replaced meanwhile is
    answered whole from the version opened). Several ranges (multipart/byteranges) and
    large files go to :class:`_FileResponse`, given the ``fstat`` so it does not stat again.
    """
    try:
        f = open(path, "rb")
    except FileNotFoundError:  # removed since Archive.file_path looked
        raise NotFoundError("file not available on this server") from None
    with f:
        st = os.fstat(f.fileno())
        ranges = _ranges(http_range, st.st_size) if http_range is not None else []
        if st.st_size > _INLINE_MAX or len(ranges) > 1:
            return _FileResponse(path, media_type="application/fits", headers=headers, filename=path.name,
                                 stat_result=st)
        headers = {**headers, "Last-Modified": formatdate(st.st_mtime, usegmt=True)}
        status, start, end, out = _span(request, headers, st.st_size, ranges, path.name)
        if request.method == "HEAD":
            return Response(status_code=status, headers=out, media_type="application/fits")
        if start:
            f.seek(start)
        body = f.read(end - start)
    if len(body) != end - start:  # truncated since the fstat: never answer fewer bytes than Content-Length says
        raise APIProblem(503, "file_changed", "the file changed while it was read; try again", {"Retry-After": "1"})
    return Response(body, status_code=status, headers=out, media_type="application/fits")


def _ranges(http_range: str, size: int) -> list[tuple[int, int]]:
    """The byte ranges (start, end exclusive) of a Range header, checked against the file's size."""
    try:
        return FileResponse._parse_range_header(http_range, size)
    except MalformedRangeHeader as err:
        raise ValidationError(f"Range: {err.content or 'malformed'}; expected 'bytes=START-[END]'") from None
    except RangeNotSatisfiable:
        raise APIProblem(416, "range_not_satisfiable", f"Range: outside the file (size {size} bytes)",
                         {"Content-Range": f"bytes */{size}"}) from None


def _object_store_file(archive: Archive, row, request: Request, headers: dict, size: int,
                       ranges: list[tuple[int, int]]) -> Response:
    """A product on the object store: a redirect to a pre-signed URL, or its bytes streamed through.

    The redirect carries the content's ETag (sha256) for the client to check: the store's
    own ETag is an MD5 of its upload, not the hash the catalog knows. The caller's
    access was checked above; the URL it gets is good for ``presign_expires`` seconds.
    """
    fits_path = row["fits_path"]
    if archive.products_delivery == "redirect":
        url = archive.products.presigned_url(fits_path, archive.presign_expires)
        if url is not None:
            return Response(status_code=307, headers={**headers, "Location": url, "Cache-Control": "no-store"})
    status, start, end, out = _span(request, headers, size, ranges, fits_path.rsplit("/", 1)[-1])
    if request.method == "HEAD":
        return Response(status_code=status, headers=out, media_type="application/fits")
    f = archive.products.open(fits_path)  # a missing object: NotFoundError (404) before any byte is sent
    return ClosingStreamingResponse(_read_span(f, start, end), status_code=status, headers=out,
                                    media_type="application/fits")


def _span(request: Request, headers: dict, size: int, ranges: list[tuple[int, int]],
          filename: str) -> tuple[int, int, int, dict]:
    """Status, byte span (start, end exclusive) and headers of a one-part answer to a file request.

    An ``If-Range`` naming another version (neither the ETag nor, when sent, the
    ``Last-Modified`` date) gets the whole file; several ranges get the whole file too
    (RFC 9110 allows it).
    """
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() not in (headers["ETag"], headers.get("Last-Modified")):
        ranges = []  # the client's part is of another version: the whole file
    start, end = ranges[0] if len(ranges) == 1 else (0, size)
    out = {**headers, "Content-Length": str(end - start),
           "Content-Disposition": f'attachment; filename="{filename}"'}
    status = 200
    if (start, end) != (0, size):
        status, out["Content-Range"] = 206, f"bytes {start}-{end - 1}/{size}"
    return status, start, end, out


def _read_span(f, start: int, end: int) -> Iterator[bytes]:
    """Bytes ``start``..``end`` of an open file, in ``_FileResponse.chunk_size`` reads (closed at the end)."""
    try:
        f.seek(start)
        left = end - start
        while left > 0:
            block = f.read(min(_FileResponse.chunk_size, left))
            if not block:
                break
            left -= len(block)
            yield block
    finally:
        f.close()


@router.get("/spectra/{spectrum_id}/data", summary="Arrays of get_spectrum_data (1D, 2D S/N, profile)")
def spectrum_data(spectrum_id: str, request: Request, c: Caller = Depends(caller),
                  archive: Archive = Depends(get_archive)):
    no_extra(query_params(request))
    row = spectrum_or_404(c, spectrum_id)
    return json_response(arrays_json(read_spectrum_2d(archive.file_path(row["fits_path"]))))


@router.get("/spectra/{spectrum_id}/redshift-fit", summary="Arrays of get_redshift_fit_data")
def redshift_fit(spectrum_id: str, request: Request, c: Caller = Depends(caller),
                 archive: Archive = Depends(get_archive)):
    no_extra(query_params(request))
    row = spectrum_or_404(c, spectrum_id)
    return json_response(arrays_json(read_redshift_fit(archive.file_path(row["fits_path"]))))
