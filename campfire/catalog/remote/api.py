"""The HTTP backend: :class:`RemoteCatalog`, the catalog API of a campfire server.

The same methods as :class:`~campfire.catalog.local.LocalCatalog`
(:class:`~campfire.catalog.backend.CatalogBackend`) plus what only a server has (2D
data, redshift fits, cutouts, files, the export, tag editing). Each method builds its
request (:mod:`~campfire.catalog.remote.payloads`), sends it
(:mod:`~campfire.catalog.remote.http`) and parses the answer
(:mod:`~campfire.catalog.remote.parse`) into the Tables and dicts the local backend
returns, so ``remote=True`` gives the same rows, columns and dtypes.

Examples
--------
>>> from campfire.catalog.filters import build_query
>>> rc = RemoteCatalog('http://127.0.0.1:8000')                     # doctest: +SKIP
>>> rc.login('alice', 'alice-demo')                                  # doctest: +SKIP
>>> rc.query(build_query('objects', fields=['uds'], limit=10))       # doctest: +SKIP
"""
from __future__ import annotations

import os
import pathlib
import time
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from campfire import config
from campfire.catalog.columns import (
    OBJECT_COLUMNS,
    PROGRAM_COLUMNS,
    SPECTRUM_COLUMNS,
    TAG_COLUMNS,
    columns_of,
    inspections_table,
    objects_table,
    row_dict,
    spectra_table,
)
from campfire.catalog.filters import Query
from campfire.catalog.remote.credentials import CredentialStore
from campfire.catalog.remote.http import APIClient
from campfire.catalog.remote.parse import (
    check_columns,
    parse_arrays,
    parse_generic_table,
    parse_row,
    parse_table,
)
from campfire.catalog.remote.payloads import (
    inspection_payload,
    object_ids_payload,
    path_id,
    query_payload,
    tag_payload,
)
from campfire.errors import NotFoundError, ValidationError

if TYPE_CHECKING:  # astropy.table takes ~0.3 s to import: every Dask worker imports this module
    from astropy.table import Table

__all__ = ["RemoteCatalog"]


def _file_path(spectrum_id: str) -> str:
    return f"/spectra/{path_id('spectrum_id', spectrum_id)}/file"


class RemoteCatalog:
    """The HTTP API backend of :class:`campfire.Campfire`.

    Parameters
    ----------
    base_url : str
        Server root; ``/api/v1`` is appended.
    auto_refresh : bool
        Refresh an expired access token with the stored refresh token.
    data_dir : path, optional
        The client's data directory: spectrum rows get ``local_path`` when the file
        is already there (so ``Spectrum.downloaded`` is true after a fetch).
    credentials : CredentialStore, optional
        Where tokens are kept (default: :func:`campfire.config.credentials_path`).

    Raises
    ------
    ValidationError
        ``base_url`` is not an http(s) URL.
    """

    def __init__(self, base_url: str, auto_refresh: bool = True, data_dir: str | os.PathLike | None = None,
                 credentials: CredentialStore | None = None):
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValidationError(f"base_url: expected an http(s) URL, got {base_url!r}")
        self.http = APIClient(base_url, auto_refresh=auto_refresh, credentials=credentials)
        self.base_url = self.http.base_url
        self.api_url = self.http.api_url
        self.data_dir = pathlib.Path(data_dir) if data_dir is not None else None
        self._detail_cache: dict[str, tuple[float, dict]] = {}

    def __repr__(self) -> str:
        return f"RemoteCatalog({self.base_url!r})"

    def __reduce__(self):
        # picklable for Dask workers: the same server, data_dir and token file; sessions are per process
        return (RemoteCatalog, (self.base_url, self.auto_refresh, self.data_dir, self.credentials))

    def file_url(self, spectrum_id: str) -> str:
        """The URL of a spectrum's FITS file on this server."""
        return self.api_url + _file_path(spectrum_id)

    # -- session and credentials (see campfire.catalog.remote.http) ------------------------
    @property
    def session(self):
        """This thread's ``requests.Session``."""
        return self.http.session

    @property
    def auto_refresh(self) -> bool:
        return self.http.auto_refresh

    @property
    def credentials(self) -> CredentialStore:
        """The token store (assign another one to use a different file)."""
        return self.http.credentials

    @credentials.setter
    def credentials(self, store: CredentialStore) -> None:
        self.http.credentials = store

    @property
    def username(self) -> str | None:
        """The user whose tokens are stored for this server (None: anonymous)."""
        return self.http.username

    def login(self, username: str, password: str) -> None:
        """Log in with the OAuth2 password grant (see :meth:`APIClient.login`)."""
        self.http.login(username, password)

    def logout(self) -> None:
        """Revoke the stored refresh token on the server and forget the tokens."""
        self.http.logout()

    def whoami(self) -> dict:
        """``{'username', 'programs', 'visibility'}`` as the server sees this client."""
        return self.http.get_json("/me")

    # -- queries ---------------------------------------------------------------------------
    def query(self, q: Query) -> Table:
        """Rows of ``q`` as the same astropy Table the local backend returns.

        ``limit=None`` gets the server's default page (``campfire.api.page-size``);
        a limit above the server's maximum is fetched in several pages.

        Parameters
        ----------
        q : Query
            From :func:`campfire.catalog.filters.build_query`.

        Returns
        -------
        astropy.table.Table

        Raises
        ------
        ValidationError
            The server refused the query (an unknown field, program, tag, ...).
        APIError
            The server failed or cannot be reached (after the retries).
        """
        max_limit = int(config.get("api.max-limit"))
        if q.limit is not None and q.limit > max_limit:
            rows = [tuple(r.values()) for r in self.iter_rows(q, page_size=max_limit)]
            return objects_table(rows) if q.kind == "objects" else spectra_table(rows)
        payload = self.http.get_json(f"/{q.kind}", query_payload(q, count=False))
        return self._with_local_paths(parse_table(q.kind, payload))

    def count(self, q: Query) -> int:
        """Number of rows matching ``q`` (ignores limit and offset).

        Parameters
        ----------
        q : Query

        Returns
        -------
        int
        """
        payload = self.http.get_json(f"/{q.kind}", query_payload(q, limit=0, offset=0))
        return int(payload["total"])

    def iter_rows(self, q: Query, page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Stream rows as dicts, paging through the API.

        Parameters
        ----------
        q : Query
        page_size : int, optional
            Rows per request (default ``campfire.api.page-size``).

        Returns
        -------
        iterator of dict
            One dict per row, as :meth:`LocalCatalog.iter_rows <campfire.catalog.local.LocalCatalog.iter_rows>`.
        """
        page_size = int(page_size or config.get("api.page-size"))
        columns = columns_of(q.kind)
        remaining = q.limit
        offset = q.offset
        while remaining is None or remaining > 0:
            n = page_size if remaining is None else min(page_size, remaining)
            payload = self.http.get_json(f"/{q.kind}", query_payload(q, limit=n, offset=offset, count=False))
            check_columns(payload, columns)
            rows = payload["rows"]
            for row in rows:
                d = row_dict(columns, row)
                if q.kind == "spectra":
                    d["local_path"] = self._local_path(d)
                yield d
            if len(rows) < n:
                return
            offset += len(rows)
            if remaining is not None:
                remaining -= len(rows)

    # -- single records ------------------------------------------------------------------------
    def _object_detail(self, object_id: str) -> dict | None:
        now = time.monotonic()
        cached = self._detail_cache.get(object_id)
        if cached and now - cached[0] < 5.0:
            return cached[1]
        try:
            payload = self.http.get_json(f"/objects/{path_id('object_id', object_id)}")
        except NotFoundError:
            return None
        if len(self._detail_cache) > 64:
            self._detail_cache.clear()
        # get_object asks for the row, then spectra, then photometry: one request serves all three
        self._detail_cache[object_id] = (now, payload)
        return payload

    def object_row(self, object_id: str) -> dict[str, Any] | None:
        """One object row (as query_objects columns), or None if it does not exist for you."""
        self._detail_cache.pop(object_id, None)
        detail = self._object_detail(object_id)
        return None if detail is None else parse_row(OBJECT_COLUMNS, detail["object"])

    def object_spectra(self, object_id: str) -> list[dict[str, Any]]:
        """The spectra rows of one object (empty when it does not exist for you)."""
        detail = self._object_detail(object_id)
        if detail is None:
            return []
        rows = [parse_row(SPECTRUM_COLUMNS, r) for r in detail["spectra"]]
        for r in rows:
            r["local_path"] = self._local_path(r)
        return rows

    def object_photometry(self, object_id: str) -> dict[str, Any] | None:
        """``{'catalog', 'photo_z', 'photo_z_err_lo', 'photo_z_err_hi', 'bands'}``, or None."""
        detail = self._object_detail(object_id)
        if detail is None or detail.get("photometry") is None:
            return None
        phot = dict(detail["photometry"])
        phot["bands"] = [[b[0]] + [float("nan") if v is None else v for v in b[1:]] for b in phot.get("bands", [])]
        return phot

    def spectrum_row(self, spectrum_id: str) -> dict[str, Any] | None:
        """One spectrum row, or None if it does not exist for you."""
        try:
            payload = self.http.get_json(f"/spectra/{path_id('spectrum_id', spectrum_id)}")
        except NotFoundError:
            return None
        row = parse_row(SPECTRUM_COLUMNS, payload)
        row["local_path"] = self._local_path(row)
        return row

    def _local_path(self, row: dict) -> str:
        """``<data_dir>/<fits_path>`` when that file is there with the catalog's size, else ''."""
        if self.data_dir is None or not row.get("fits_path"):
            return ""
        path = self.data_dir / row["fits_path"]
        try:
            if path.stat().st_size == row.get("file_size"):
                return str(path)
        except OSError:
            pass
        return ""

    def _with_local_paths(self, table: Table) -> Table:
        if "local_path" in table.colnames and self.data_dir is not None and len(table):
            paths = [self._local_path({"fits_path": fp, "file_size": int(sz)})
                     for fp, sz in zip(table["fits_path"], table["file_size"])]
            if any(paths):
                table["local_path"] = np.array(paths, dtype=str)
        return table

    # -- 2D data, fits, imaging -------------------------------------------------------------------
    def spectrum_data(self, spectrum_id: str) -> dict:
        """``{wave, fnu, fnu_err, snr_2d, n_spatial, n_wave, profile, profile_fit, profile_pix}``."""
        payload = self.http.get_json(f"/spectra/{path_id('spectrum_id', spectrum_id)}/data", what=spectrum_id)
        out = parse_arrays(payload)
        for key in ("n_spatial", "n_wave"):
            if key in out:
                out[key] = int(out[key])
        return out

    def redshift_fit(self, spectrum_id: str) -> dict:
        """``{redshift, chi2_min, confidence, z_grid, chi2_grid, model_wave, model_fnu, redshift_lo, redshift_hi}``."""
        payload = self.http.get_json(f"/spectra/{path_id('spectrum_id', spectrum_id)}/redshift-fit",
                                     what=spectrum_id)
        return parse_arrays(payload)

    def cutout_png(self, object_id: str, fov: float = 5.0, size: int | None = None) -> bytes:
        """The PNG bytes of a cutout around ``object_id``."""
        params = {"fov": repr(float(fov))}
        if size is not None:
            params["size"] = str(int(size))
        return self.http.request("GET", f"/objects/{path_id('object_id', object_id)}/cutout.png", params=params,
                                 what=object_id).content

    def shutters(self, object_id: str, fov: float = 5.0) -> dict:
        """MSA shutter geometry (dict) around ``object_id``."""
        return self.http.get_json(f"/objects/{path_id('object_id', object_id)}/shutters",
                                  {"fov": repr(float(fov))}, what=object_id)

    # -- files and export (streamed responses for campfire.transfer) ------------------------------
    def open_file(self, spectrum_id: str, headers: dict | None = None):
        """A streamed response of the spectrum's FITS file (``headers``: Range / If-Range).

        See :meth:`~campfire.catalog.remote.http.APIClient.stream_get`: read it with ``read1(n)``
        (``stream(n)`` through a proxy).
        A server whose products live on an object store may answer with a redirect to a
        pre-signed URL; it is followed without the access token, and the response keeps
        the server's ``ETag`` (the content's sha256).
        """
        return self.http.stream_get(_file_path(spectrum_id), headers=headers, what=spectrum_id)

    def export(self, since: str | None = None):
        """The streamed gzip bulk export (see :mod:`campfire.server.export`)."""
        params = {"since": since} if since else None
        return self.http.request("GET", "/export", params=params, stream=True, timeout_key="download.timeout")

    # -- metadata -------------------------------------------------------------------------------
    def programs(self) -> Table:
        """program_id, slug, program_name, pi_name, is_public of the programs you may see."""
        return parse_generic_table(PROGRAM_COLUMNS, self.http.get_json("/programs"))

    def fields(self) -> list[str]:
        """The fields you may see."""
        return list(self.http.get_json("/fields"))

    def gratings(self) -> list[str]:
        """The gratings of the spectra you may see."""
        return list(self.http.get_json("/gratings"))

    def observations(self) -> list[str]:
        """The observations you may see."""
        return list(self.http.get_json("/observations"))

    def metadata(self) -> dict[str, list]:
        """``{'programs', 'fields', 'gratings', 'observations'}``."""
        return dict(self.http.get_json("/metadata"))

    def counts(self) -> dict[str, int]:
        """``{'observations', 'objects', 'spectra'}`` you may see."""
        return {k: int(v) for k, v in self.http.get_json("/counts").items()}

    def tags(self) -> Table:
        """slug, name, member_count, kind, owner, description of the tags you may see."""
        return parse_generic_table(TAG_COLUMNS, self.http.get_json("/tags"))

    # -- tag editing -----------------------------------------------------------------------------
    def create_tag(self, slug: str, name: str, *, shared: bool = False, description: str = "") -> dict:
        """Create your tag; returns its row."""
        body = tag_payload(slug, name, shared=shared, description=description)
        return self.http.request("POST", "/tags", json_body=body).json()

    def update_tag(self, slug: str, *, name: str | None = None, description: str | None = None,
                   shared: bool | None = None) -> dict:
        """Rename, re-describe, share or unshare your tag; returns its row."""
        body = tag_payload(slug, name, shared=shared, description=description)
        body.pop("slug")
        return self.http.request("PATCH", f"/tags/{path_id('slug', slug)}", json_body=body).json()

    def delete_tag(self, slug: str) -> None:
        """Delete your tag."""
        self.http.request("DELETE", f"/tags/{path_id('slug', slug)}")

    def tag_objects(self, slug: str, object_ids) -> int:
        """Add objects to your tag; how many were new."""
        ids = object_ids_payload(object_ids)
        return int(self.http.request("POST", f"/tags/{path_id('slug', slug)}/objects",
                                     json_body={"object_ids": ids}).json()["added"])

    def untag_objects(self, slug: str, object_ids) -> int:
        """Remove objects from your tag; how many were removed."""
        ids = object_ids_payload(object_ids)
        return int(self.http.request("DELETE", f"/tags/{path_id('slug', slug)}/objects",
                                     json_body={"object_ids": ids}).json()["removed"])

    # -- inspections --------------------------------------------------------------------------
    def inspections(self, object_id: str) -> Table:
        """The object's inspection records you may see (oldest first), the consensus in ``meta``."""
        body = self.http.get_json(f"/objects/{path_id('object_id', object_id)}/inspections", what=object_id)
        return inspections_table(object_id, body["inspections"], body["consensus"])

    def inspect(self, object_id: str, *, quality, redshift=None, comment: str = "", issues=None,
                resolves_conflict: bool = False, reviewer: str | None = None) -> dict[str, Any]:
        """Grade an object as the logged-in account; the stored record with the object's new ``consensus``."""
        if reviewer is not None:
            raise ValidationError("reviewer: a server records the account you logged in with as the reviewer; "
                                  "leave reviewer unset")
        body = inspection_payload(quality=quality, redshift=redshift, comment=comment, issues=issues,
                                  resolves_conflict=resolves_conflict)
        self._detail_cache.pop(object_id, None)
        answer = self.http.request("POST", f"/objects/{path_id('object_id', object_id)}/inspections",
                                   json_body=body, what=object_id).json()
        return {**answer["inspection"], "consensus": answer["consensus"]}
