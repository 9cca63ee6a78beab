"""``Campfire``: the eager facade of the reference. Thin: validate → query/graph → compute.

Queries go to the local SQLite catalog when ``<data_dir>/meta/campfire.db`` exists
(and ``remote=False``), otherwise to the HTTP API (:mod:`campfire.catalog.remote`).
Science steps live in :mod:`campfire.tasks`, graphs in :mod:`campfire.graphs`,
pictures in :mod:`campfire.imaging` / :mod:`campfire.quicklook`.
"""
from __future__ import annotations

import os
from typing import Any, Iterator

from astropy.table import Table

from campfire import config
from campfire.catalog.filters import build_query
from campfire.catalog.local import LocalCatalog
from campfire.errors import CampfireError, NotFoundError, ValidationError
from campfire.models import Object, Photometry, Spectrum, SpectrumCollection, SpectrumData, split_list

__all__ = ["Campfire"]

NO_ARCHIVE = (
    "no archive to read: {data_dir} has no catalog (meta/campfire.db) and no server is configured. "
    "Set CAMPFIRE_API_URL (or pass base_url=) to use a server and run cf.sync(), set CAMPFIRE_ROOT "
    "(or pass data_dir=) to an archive root, or use the built-in demo archive: "
    "Campfire(data_dir=campfire.demo.ensure())"
)


def _check_id(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 200 or any(c in value for c in "/\\\0") or value.strip() != value:
        raise ValidationError(f"{name}: expected an ID string like 'ember_uds_p4_123456', got {value!r}")
    return value


class Campfire:
    """Client of a campfire archive: local SQLite catalog first, HTTP API otherwise.

    Parameters
    ----------
    base_url : str, optional
        Server root (the client appends ``/api/v1``). Defaults to ``$CAMPFIRE_API_URL``.
    data_dir : str or Path, optional
        Root data directory. Defaults to ``$CAMPFIRE_ROOT`` or ``~/campfire``.
    auto_refresh : bool
        Refresh expired OAuth access tokens transparently.

    Examples
    --------
    >>> import campfire.demo
    >>> cf = Campfire(data_dir=campfire.demo.ensure())  # doctest: +SKIP
    >>> cf.is_local  # doctest: +SKIP
    True
    """

    def __init__(self, base_url: str | None = None, data_dir: str | os.PathLike | None = None, auto_refresh: bool = True):
        if base_url is not None and not isinstance(base_url, str):
            raise ValidationError(f"base_url: expected a URL string, got {base_url!r}")
        if not isinstance(auto_refresh, bool):
            raise ValidationError(f"auto_refresh: expected True or False, got {auto_refresh!r}")
        self.base_url = config.resolve_base_url(base_url)
        self.data_dir = config.resolve_data_dir(data_dir)
        self.auto_refresh = auto_refresh
        self._local: LocalCatalog | None = None
        self._remote = None

    def __reduce__(self):
        return (Campfire, (self.base_url, self.data_dir, self.auto_refresh))

    def __repr__(self) -> str:
        where = f"local {self.data_dir}" if self.is_local else f"remote {self.base_url or '(no server configured)'}"
        return f"Campfire({where})"

    # -- state ------------------------------------------------------------------------
    @property
    def is_local(self) -> bool:
        """True when ``<data_dir>/meta/campfire.db`` exists and is valid."""
        return LocalCatalog.is_valid(self.data_dir)

    @property
    def last_synced(self) -> str | None:
        """ISO timestamp of the last successful sync (or None)."""
        if not self.is_local:
            return None
        return self.local_catalog.meta("last_synced")

    @property
    def local_catalog(self) -> LocalCatalog:
        if self._local is None:
            if not self.is_local:
                raise CampfireError(NO_ARCHIVE.format(data_dir=self.data_dir))
            self._local = LocalCatalog(self.data_dir)
        return self._local

    @property
    def remote_catalog(self):
        """The HTTP backend (:class:`campfire.catalog.remote.RemoteCatalog`)."""
        if self._remote is None:
            if not self.base_url:
                raise CampfireError(NO_ARCHIVE.format(data_dir=self.data_dir))
            from campfire.catalog.remote import RemoteCatalog

            self._remote = RemoteCatalog(self.base_url, auto_refresh=self.auto_refresh, data_dir=self.data_dir)
        return self._remote

    def _backend(self, remote: bool = False):
        if not isinstance(remote, bool):
            raise ValidationError(f"remote: expected True or False, got {remote!r}")
        if remote or not self.is_local:
            if remote is False and not self.base_url:
                raise CampfireError(NO_ARCHIVE.format(data_dir=self.data_dir))
            return self.remote_catalog
        return self.local_catalog

    # -- sync, download, login (HTTP; see campfire.transfer) ---------------------------
    def login(self, username: str, password: str) -> None:
        """Log in to the server and store tokens in the user-only credentials file."""
        self.remote_catalog.login(username, password)

    def sync(self) -> dict[str, int]:
        """Pull the object/spectra catalog from the server into ``<data_dir>/meta/campfire.db``.

        Returns ``{'observations', 'objects', 'spectra', 'stale_count'}``.
        """
        from campfire.transfer import sync_catalog

        result = sync_catalog(self.remote_catalog, self.data_dir)
        self._local = None
        return result

    def download(
        self,
        observations: list[str] | None = None,
        programs: list[int | str] | None = None,
        fields: list[str] | None = None,
        gratings: list[str] | None = None,
        stale_only: bool = False,
        max_workers: int = 4,
    ) -> dict[str, Any]:
        """Download FITS files of the synced catalog (requires a prior ``sync()``).

        Builds the same download graph as a workflow (``LazySpectra.download``) and
        computes it on ``max_workers`` threads (:mod:`campfire.graphs.download`).
        """
        from campfire.graphs.download import download_files

        if not self.is_local:
            raise CampfireError("download() needs a synced catalog: run cf.sync() (or `campfire sync`) first")
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValidationError(f"max_workers: expected a positive int, got {max_workers!r}")
        if not isinstance(stale_only, bool):
            raise ValidationError(f"stale_only: expected True or False, got {stale_only!r}")
        query = build_query(
            "spectra", observations=observations, programs=programs, fields=fields, gratings=gratings,
            staleness=True if stale_only else None,
        )
        return download_files(self, query, max_workers=max_workers, stale_only=stale_only)

    # -- queries ----------------------------------------------------------------------
    def query_objects(self, *, remote: bool = False, **filters) -> Table:
        """Query objects (one row per sky position) → astropy Table.

        Filters: fields, programs, gratings, observations, redshift_range,
        redshift_quality, max_snr_range, dq_flags, tags, inspected_only, staleness,
        has_photometry, search, cone_search, limit, offset, sort='object_id', sort_dir='asc'.

        Examples
        --------
        >>> cf.query_objects(fields=['cosmos'], redshift_range=(4.0, 8.0), redshift_quality=[3, 4])  # doctest: +SKIP
        """
        return self._query("objects", remote, filters)

    def query_spectra(self, *, remote: bool = False, **filters) -> Table:
        """Query spectra (one row per spectrum) → astropy Table.

        Same vocabulary as :meth:`query_objects`; inspection filters join through the
        parent object, ``dq_flags`` and ``max_snr_range`` apply per spectrum.
        """
        return self._query("spectra", remote, filters)

    def _query(self, kind: str, remote: bool, filters: dict) -> Table:
        backend = self._backend(remote)
        query = build_query(kind, **self._defaults(filters, backend))
        return backend.query(query)

    def _defaults(self, filters: dict, backend) -> dict:
        if backend is not self._local and "limit" not in filters:
            filters = dict(filters, limit=config.get("api.page-size"))
        if filters.get("staleness") is not None and backend is not self._local:
            raise ValidationError("staleness: cannot be used with remote=True (the server does not know your local files)")
        return filters

    def iter_objects(self, *, remote: bool = False, **filters) -> Iterator[dict]:
        """Stream object rows (dicts) without holding the result set in memory."""
        backend = self._backend(remote)
        if filters.get("staleness") is not None and backend is not self._local:
            raise ValidationError("staleness: cannot be used with remote=True")
        return backend.iter_rows(build_query("objects", **filters))

    def iter_spectra(self, *, remote: bool = False, **filters) -> Iterator[dict]:
        """Stream spectrum rows (dicts) without holding the result set in memory."""
        backend = self._backend(remote)
        if filters.get("staleness") is not None and backend is not self._local:
            raise ValidationError("staleness: cannot be used with remote=True")
        return backend.iter_rows(build_query("spectra", **filters))

    # -- single records --------------------------------------------------------------
    def get_object(self, object_id: str, *, remote: bool = False) -> Object | None:
        """One object with ``.spectra`` and ``.photometry`` attached, or None if not found."""
        _check_id("object_id", object_id)
        backend = self._backend(remote)
        row = backend.object_row(object_id)
        if row is None:
            return None
        spectra = SpectrumCollection(
            (Spectrum.from_row(r, opener=self._open_spectrum_obj) for r in backend.object_spectra(object_id)),
            lazy=self._lazy_from_spectra,
        )
        photometry = Photometry.from_record(backend.object_photometry(object_id), object_id=object_id)
        scalars = {k: v for k, v in row.items() if k not in ("programs", "tags", "gratings")}
        return Object(
            **scalars,
            programs=split_list(row.get("programs")),
            tags=split_list(row.get("tags")),
            gratings=split_list(row.get("gratings")),
            spectra=spectra,
            photometry=photometry,
        )

    def get_spectrum(self, spectrum_id: str, *, remote: bool = False) -> dict | None:
        """One spectrum's catalog row as a dict, or None if not found."""
        _check_id("spectrum_id", spectrum_id)
        return self._backend(remote).spectrum_row(spectrum_id)

    # -- opening spectra ----------------------------------------------------------------
    def open_spectrum(self, spectrum_id: str) -> SpectrumData:
        """Open a spectrum: the local FITS file first, else fetch it from the API into ``products/``.

        Examples
        --------
        >>> spec = cf.open_spectrum('ember_uds_p4_prism_clear_123456')  # doctest: +SKIP
        """
        _check_id("spectrum_id", spectrum_id)
        return self.local_path(spectrum_id, fetch=True, open_=True)

    def local_path(self, spectrum_id: str, fetch: bool = True, open_: bool = False):
        """The local FITS path of a spectrum (fetching it when allowed), or its opened data."""
        row = self.local_catalog.spectrum_row(spectrum_id) if self.is_local else None
        if row is not None and row["local_path"] and os.path.exists(row["local_path"]):
            return SpectrumData.from_fits(row["local_path"]) if open_ else row["local_path"]
        if row is None and self.is_local and not self.base_url:
            raise NotFoundError(f"spectrum {spectrum_id!r} is not in the catalog at {self.data_dir}")
        if not fetch or not self.base_url:
            if row is not None:
                raise NotFoundError(
                    f"spectrum {spectrum_id!r} is in the catalog but its file is not in {self.data_dir / 'products'}; "
                    "set CAMPFIRE_API_URL to fetch it, or run cf.download()"
                )
            raise CampfireError(NO_ARCHIVE.format(data_dir=self.data_dir))
        from campfire.transfer import fetch_spectrum

        path = fetch_spectrum(self, spectrum_id, row)
        return SpectrumData.from_fits(path) if open_ else path

    def _open_spectrum_obj(self, spectrum: Spectrum) -> SpectrumData:
        if spectrum.downloaded:
            return SpectrumData.from_fits(spectrum.local_path)
        return self.open_spectrum(spectrum.spectrum_id)

    # -- 2D data, fits, imaging -----------------------------------------------------------
    def get_spectrum_data(self, spectrum_id: str) -> dict[str, Any]:
        """``{wave, fnu, fnu_err, snr_2d, n_spatial, n_wave, profile, profile_fit, profile_pix}``."""
        _check_id("spectrum_id", spectrum_id)
        if self.is_local or not self.base_url:
            from campfire.io.fits import read_spectrum_2d

            return read_spectrum_2d(self.local_path(spectrum_id))
        return self.remote_catalog.spectrum_data(spectrum_id)

    def get_redshift_fit_data(self, spectrum_id: str) -> dict[str, Any]:
        """``{redshift, chi2_min, confidence, z_grid, chi2_grid, model_wave, model_fnu}``."""
        _check_id("spectrum_id", spectrum_id)
        if self.is_local or not self.base_url:
            from campfire.io.fits import read_redshift_fit

            return read_redshift_fit(self.local_path(spectrum_id))
        return self.remote_catalog.redshift_fit(spectrum_id)

    def get_cutout(self, object_id: str, fov: float = 5.0, size: int | None = None) -> str:
        """Path of a cached cutout PNG around an object."""
        from campfire.imaging import cutout_for_client

        return cutout_for_client(self, _check_id("object_id", object_id), fov=fov, size=size)

    def get_shutters(self, object_id: str, fov: float = 5.0) -> dict:
        """Cached MSA shutter geometry (dict) around an object."""
        from campfire.imaging import shutters_for_client

        return shutters_for_client(self, _check_id("object_id", object_id), fov=fov)

    def plot_cutout(self, object_id: str, fov: float = 5.0, size: int | None = None, shutters=True, ax=None,
                    shutter_style: dict | None = None, scalebar: bool = True):
        """Plot a cutout with the MSA shutters drawn as vector patches."""
        from campfire.imaging import plot_cutout

        path = self.get_cutout(object_id, fov=fov, size=size)
        data = self.get_shutters(object_id, fov=fov) if shutters else None
        return plot_cutout(path, shutters=data if data is not None else False, object_id=object_id, fov=fov, ax=ax,
                           which=shutters, shutter_style=shutter_style, scalebar=scalebar)

    # -- lazy collections ----------------------------------------------------------------
    def lazy_spectra(self, **filters):
        """A lazy Dask collection over the spectra matching ``filters`` (see campfire.graphs)."""
        from campfire.graphs.collection import LazySpectra

        return LazySpectra.from_query(self, **filters)

    def _lazy_from_spectra(self, spectra):
        # the lazy factory get_object attaches to obj.spectra (obj.spectra.lazy())
        from campfire.graphs.collection import LazySpectra

        return LazySpectra.from_spectra(spectra, client=self)

    # -- metadata -------------------------------------------------------------------------
    def get_metadata(self, *, remote: bool = False) -> dict[str, list]:
        """``{'programs': [...], 'fields': [...], 'gratings': [...], 'observations': [...]}``."""
        return self._backend(remote).metadata()

    def get_programs(self, *, remote: bool = False) -> Table:
        """astropy Table: program_id, slug, program_name, pi_name, is_public."""
        return self._backend(remote).programs()

    def get_fields(self, *, remote: bool = False) -> list[str]:
        return self._backend(remote).fields()

    def get_gratings(self, *, remote: bool = False) -> list[str]:
        return self._backend(remote).gratings()

    def get_observations(self, *, remote: bool = False) -> list[str]:
        return self._backend(remote).observations()

    def get_tags(self, *, remote: bool = False) -> Table:
        """astropy Table: slug, name, member_count (+ kind, owner, description)."""
        return self._backend(remote).tags()

    # -- user tags (server-side; see campfire.server.tags) ----------------------------------
    def create_tag(self, slug: str, name: str, shared: bool = False, description: str = "") -> dict:
        """Create a private (or, with ``shared=True``, shared) tag on the server. Needs a login.

        Slugs are lower-case letters, digits and hyphens, unique per owner; system
        slugs (lrd, blagn, ...) are reserved. A synced catalog sees it at the next sync.

        Examples
        --------
        >>> cf.create_tag('my-lrds', 'My LRD candidates', shared=False)  # doctest: +SKIP
        """
        return self.remote_catalog.create_tag(slug, name, shared=shared, description=description)

    def update_tag(self, slug: str, *, name: str | None = None, description: str | None = None,
                   shared: bool | None = None) -> dict:
        """Rename, re-describe, share or unshare one of your tags."""
        return self.remote_catalog.update_tag(slug, name=name, description=description, shared=shared)

    def tag_objects(self, slug: str, object_ids) -> int:
        """Add objects (that you can see) to your tag; returns how many were new.

        Examples
        --------
        >>> cf.tag_objects('my-lrds', ['ember_uds_p4_123456'])  # doctest: +SKIP
        1
        """
        return self.remote_catalog.tag_objects(slug, object_ids)

    def untag_objects(self, slug: str, object_ids) -> int:
        """Remove objects from your tag; returns how many were removed."""
        return self.remote_catalog.untag_objects(slug, object_ids)

    def delete_tag(self, slug: str) -> None:
        """Delete one of your tags (its memberships go with it)."""
        self.remote_catalog.delete_tag(slug)
