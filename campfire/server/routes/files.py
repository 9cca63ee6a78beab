"""What a spectrum's file holds: the FITS file itself (ETag, Range), its arrays, its redshift fit."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable, Response

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
            summary="The spectrum's FITS file (ETag = sha256 of the content; Range supported)",
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
    if http_range is not None:
        size = path.stat().st_size
        try:
            FileResponse._parse_range_header(http_range, size)
        except MalformedRangeHeader as err:
            raise ValidationError(f"Range: {err.content or 'malformed'}; expected 'bytes=START-[END]'") from None
        except RangeNotSatisfiable:
            raise APIProblem(416, "range_not_satisfiable", f"Range: outside the file (size {size} bytes)",
                             {"Content-Range": f"bytes */{size}"}) from None
    return _FileResponse(path, media_type="application/fits", headers=headers, filename=path.name)


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
