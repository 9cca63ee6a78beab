"""What a spectrum's file holds: the FITS file itself (ETag, Range), its arrays, its redshift fit."""
from __future__ import annotations

from typing import Iterator

from fastapi import APIRouter, Depends, Request
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable, Response, StreamingResponse

from campfire.errors import ValidationError
from campfire.io.fits import read_redshift_fit, read_spectrum_2d
from campfire.server.archive import Archive, Caller
from campfire.server.deps import caller, get_archive
from campfire.server.encoding import arrays_json, json_response
from campfire.server.errors import APIProblem
from campfire.server.params import no_extra, query_params
from campfire.server.records import spectrum_or_404

__all__ = ["router"]

router = APIRouter(tags=["files"])


class _FileResponse(FileResponse):
    """Starlette's file response (Range, If-Range, HEAD) in 512 KiB reads instead of 64 KiB."""

    chunk_size = 512 * 1024


@router.head("/spectra/{spectrum_id}/file", include_in_schema=False)
@router.get("/spectra/{spectrum_id}/file",
            summary="The spectrum's FITS file (ETag = sha256 of the content; Range supported; "
                    "object-store products: a 307 redirect to a short-lived pre-signed URL, or streamed)",
            response_class=Response)
def spectrum_file(spectrum_id: str, request: Request, c: Caller = Depends(caller),
                  archive: Archive = Depends(get_archive)):
    no_extra(query_params(request))
    row = spectrum_or_404(c, spectrum_id)
    path = archive.file_path(row["fits_path"])
    etag = f'"{row["file_hash"]}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Accept-Ranges": "bytes"}
    inm = request.headers.get("if-none-match")
    if inm and etag in [t.strip() for t in inm.split(",")]:
        return Response(status_code=304, headers=headers)
    http_range = request.headers.get("range")
    if archive.products.is_remote:
        size = int(row.get("file_size") or 0) or archive.products.size(row["fits_path"])
    else:
        size = path.stat().st_size if http_range is not None else 0
    ranges = _ranges(http_range, size) if http_range is not None else []
    if archive.products.is_remote:
        return _object_store_file(archive, row, request, headers, size, ranges)
    return _FileResponse(path, media_type="application/fits", headers=headers, filename=path.name)


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
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != headers["ETag"]:
        ranges = []  # the client's part is of another version: the whole file
    start, end = ranges[0] if len(ranges) == 1 else (0, size)  # several ranges: the whole file (RFC 9110 allows it)
    out = {**headers, "Content-Length": str(end - start),
           "Content-Disposition": f'attachment; filename="{fits_path.rsplit("/", 1)[-1]}"'}
    status = 200
    if (start, end) != (0, size):
        status, out["Content-Range"] = 206, f"bytes {start}-{end - 1}/{size}"
    if request.method == "HEAD":
        return Response(status_code=status, headers=out, media_type="application/fits")
    f = archive.products.open(fits_path)  # a missing object: NotFoundError (404) before any byte is sent
    return StreamingResponse(_read_span(f, start, end), status_code=status, headers=out, media_type="application/fits")


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
