"""``Campfire``: the eager facade of the reference. Thin: validate → query/graph → compute.

Queries go to the local SQLite catalog when ``<data_dir>/meta/campfire.db`` exists
(and ``remote=False``), otherwise to the HTTP API (:mod:`campfire.catalog.remote`);
both implement :class:`~campfire.catalog.backend.CatalogBackend`. Sync and downloads
live in :mod:`campfire.transfer`, science steps in :mod:`campfire.tasks`, graphs in
:mod:`campfire.graphs`, pictures in :mod:`campfire.imaging` / :mod:`campfire.quicklook`.
"""
from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any, Iterator, Unpack


from campfire import config
from campfire.catalog.backend import CatalogBackend
from campfire.catalog.db import CATALOG_FILE
from campfire.catalog.filters import QueryFilters, build_query
from campfire.errors import CampfireError, CampfireWarning, NotFoundError, ValidationError
from campfire.models import Object, Photometry, Spectrum, SpectrumCollection, SpectrumData, split_list

if TYPE_CHECKING:
    from campfire.catalog.local import LocalCatalog
    from campfire.catalog.remote import RemoteCatalog
    from campfire.graphs.collection import LazySpectra

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = ["Campfire"]

NO_ARCHIVE = (
    "no archive to read: {data_dir} has no catalog (" + CATALOG_FILE + ") and no server is configured. "
    "Set CAMPFIRE_API_URL (or pass base_url=) to use a server and run cf.sync(), set CAMPFIRE_ROOT "
    "(or pass data_dir=) to an archive root, or use the built-in demo archive: "
    "Campfire(data_dir=campfire.demo.ensure())"
)
NO_SERVER = (
    "no server is configured{action}: set CAMPFIRE_API_URL (or pass base_url=) to the URL of a "
    "`campfire serve`, e.g. http://127.0.0.1:8000"
)
LOCAL_ARCHIVE_NOTE = " ({data_dir} has its own catalog: queries read it without a server or a sync)"


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

    Raises
    ------
    ValidationError
        ``base_url`` is not a string or ``auto_refresh`` not a bool.

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
        self._remote: RemoteCatalog | None = None

    def __reduce__(self):
        return (Campfire, (self.base_url, self.data_dir, self.auto_refresh))

    def __repr__(self) -> str:
        where = f"local {self.data_dir}" if self.is_local else f"remote {self.base_url or '(no server configured)'}"
        return f"Campfire({where})"

    # -- state ------------------------------------------------------------------------
    @property
    def is_local(self) -> bool:
        """True when ``<data_dir>/meta/campfire.db`` exists and is valid."""
        from campfire.catalog.local import LocalCatalog  # its SQL compiler: ~45 ms, on first use (issue 16.4)

        return LocalCatalog.is_valid(self.data_dir)

    @property
    def last_synced(self) -> str | None:
        """ISO timestamp of the last successful sync (or None)."""
        if not self.is_local:
            return None
        return self.local_catalog.meta("last_synced")

    @property
    def local_catalog(self) -> LocalCatalog:
        """The SQLite backend over ``<data_dir>/meta/campfire.db``.

        Raises
        ------
        CampfireError
            There is no valid catalog in ``data_dir``.
        """
        if self._local is None:
            if not self.is_local:
                raise CampfireError(NO_ARCHIVE.format(data_dir=self.data_dir))
            from campfire.catalog.local import LocalCatalog

            self._local = LocalCatalog(self.data_dir)
        return self._local

    @property
    def remote_catalog(self) -> RemoteCatalog:
        """The HTTP backend (:class:`campfire.catalog.remote.RemoteCatalog`).

        Raises
        ------
        CampfireError
            No server is configured (``base_url`` / ``$CAMPFIRE_API_URL``).
        """
        if self._remote is None:
            if not self.base_url:
                raise self._no_server()
            from campfire.catalog.remote import RemoteCatalog  # requests: only when a server is used

            self._remote = RemoteCatalog(self.base_url, auto_refresh=self.auto_refresh, data_dir=self.data_dir)
        return self._remote

    def _no_server(self, action: str = "") -> CampfireError:
        # "no catalog" would be wrong when data_dir has one: what is missing is the server
        note = LOCAL_ARCHIVE_NOTE.format(data_dir=self.data_dir) if self.is_local else ""
        return CampfireError(NO_SERVER.format(action=f" to {action}" if action else "") + note)

    def catalog(self, remote: bool = False) -> CatalogBackend:
        """The catalog queries go to: the local one when there is one and ``remote`` is False, else the server's.

        Parameters
        ----------
        remote : bool
            Force the HTTP API.

        Returns
        -------
        CatalogBackend
            A :class:`~campfire.catalog.local.LocalCatalog` or
            :class:`~campfire.catalog.remote.RemoteCatalog`.

        Raises
        ------
        ValidationError
            ``remote`` is not a bool.
        CampfireError
            Neither a local catalog nor a server.

        Examples
        --------
        >>> cf.catalog().counts()  # doctest: +SKIP
        {'observations': 8, 'objects': 240, 'spectra': 460}
        """
        if not isinstance(remote, bool):
            raise ValidationError(f"remote: expected True or False, got {remote!r}")
        if remote or not self.is_local:
            if remote is False and not self.base_url:
                raise CampfireError(NO_ARCHIVE.format(data_dir=self.data_dir))
            return self.remote_catalog
        return self.local_catalog

    # -- sync, download, login (HTTP; see campfire.transfer) ---------------------------
    def login(self, username: str, password: str) -> None:
        """Log in to the server and store tokens in the user-only credentials file.

        Parameters
        ----------
        username, password : str
            The account (``campfire users add`` on the server).

        Raises
        ------
        AuthenticationError
            Wrong user name or password, or too many failed logins.
        CampfireError
            No server is configured.

        Examples
        --------
        >>> cf.login('alice', 'alice-demo')  # doctest: +SKIP
        """
        if not self.base_url:
            raise self._no_server("log in to")
        self.remote_catalog.login(username, password)

    def sync(self) -> dict[str, int]:
        """Pull the object/spectra catalog from the server into ``<data_dir>/meta/campfire.db``.

        Metadata only, no FITS files; incremental after the first sync. An interrupted
        sync leaves the previous catalog as it was.

        Returns
        -------
        dict
            ``{'observations', 'objects', 'spectra', 'stale_count'}``; ``stale_count``
            counts the downloaded files whose server copy changed.

        Raises
        ------
        CampfireError
            No server, or ``data_dir`` is an archive root a pipeline or server owns.
        APIError
            The server failed or the stream broke (``SyncInterrupted``).
        DownloadError
            The local disk is full or read-only.

        Examples
        --------
        >>> cf.sync()  # doctest: +SKIP
        {'observations': 8, 'objects': 2450, 'spectra': 7200, 'stale_count': 0}
        """
        from campfire.transfer import sync_catalog

        if not self.base_url:
            raise self._no_server("sync from")
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

        Files already present with the catalog's hash are skipped; each file is
        streamed, resumed after an interruption, verified by its sha256 and recorded
        (:mod:`campfire.graphs.download`, computed on ``max_workers`` threads).

        Parameters
        ----------
        observations, programs, fields, gratings : list, optional
            Which spectra (the filters of ``query_spectra``).
        stale_only : bool
            Only re-download files whose server copy changed.
        max_workers : int
            Parallel downloads.

        Returns
        -------
        dict
            ``{'downloaded', 'skipped', 'failed', 'bytes', 'seconds'}``.

        Raises
        ------
        CampfireError
            No synced catalog in ``data_dir`` (run ``sync()``), or no server.
        ValidationError
            A bad filter, ``stale_only`` or ``max_workers``.
        DownloadError
            Some files failed (after every other file was fetched and recorded).

        Examples
        --------
        >>> cf.download(programs=['EMBER-UDS'], gratings=['PRISM'])  # doctest: +SKIP
        {'downloaded': 42, 'skipped': 0, 'failed': [], 'bytes': 11975040, 'seconds': 1.8}
        """
        from campfire.graphs.download import download_files

        if not self.is_local:
            raise CampfireError(f"download() needs a synced catalog in {self.data_dir}: run cf.sync() first")
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValidationError(f"max_workers: expected a positive int, got {max_workers!r}")
        if not isinstance(stale_only, bool):
            raise ValidationError(f"stale_only: expected True or False, got {stale_only!r}")
        query = build_query(
            "spectra", observations=observations, programs=programs, fields=fields, gratings=gratings,
            staleness=True if stale_only else None,
        )
        remote = self.remote_catalog if self.base_url else None
        return download_files(remote, self.data_dir, query, max_workers=max_workers, stale_only=stale_only)

    # -- queries ----------------------------------------------------------------------
    def query_objects(self, *, remote: bool = False, **filters: Unpack[QueryFilters]) -> Table:
        """Query objects (one row per sky position).

        Parameters
        ----------
        remote : bool
            Force the HTTP API even when a local catalog exists.
        **filters
            fields, programs, gratings, observations, redshift_range, redshift_quality,
            max_snr_range, dq_flags, tags, inspected_only, staleness, has_photometry,
            search, cone_search, limit (unlimited locally, ``campfire.api.page-size``
            remotely), offset, sort (``'object_id'``), sort_dir (``'asc'``) — see
            :class:`~campfire.catalog.filters.QueryFilters`.

        Returns
        -------
        astropy.table.Table
            object_id, field, ra, dec, redshift, redshift_auto, redshift_inspected,
            redshift_quality, programs, tags, gratings, n_spectra, max_snr,
            max_exposure_time, has_photometry, photo_z, photo_z_err_lo, photo_z_err_hi.

        Raises
        ------
        ValidationError
            An unknown filter or value (the message names it and what is allowed), or
            ``staleness`` with ``remote=True``.
        CampfireError
            Neither a local catalog nor a server.

        Examples
        --------
        >>> cf.query_objects(fields=['cosmos'], redshift_range=(4.0, 8.0), redshift_quality=[3, 4])  # doctest: +SKIP
        """
        return self._query("objects", remote, filters)

    def query_spectra(self, *, remote: bool = False, **filters: Unpack[QueryFilters]) -> Table:
        """Query spectra (one row per spectrum).

        Same vocabulary as :meth:`query_objects`; the inspection filters
        (redshift_range, redshift_quality, inspected_only, tags) apply to the parent
        object, ``dq_flags`` and ``max_snr_range`` to each spectrum; sort defaults to
        ``'spectrum_id'``.

        Parameters
        ----------
        remote : bool
            Force the HTTP API.
        **filters
            See :meth:`query_objects`.

        Returns
        -------
        astropy.table.Table
            spectrum_id, target_id, object_id, grating, fits_path, signal_to_noise,
            exposure_time, reduction_version, redshift_auto, dq_flags, local_path,
            filter, observation, program, file_hash, file_size, redshift_auto_lo,
            redshift_auto_hi (the 68% interval of redshift_auto) and
            redshift_auto_confidence (the fit's confidence, 0–1; NaN where the
            catalog predates them).

        Raises
        ------
        ValidationError
            An unknown filter or value.
        CampfireError
            Neither a local catalog nor a server.

        Examples
        --------
        >>> from campfire.flags import DQFlags
        >>> cf.query_spectra(gratings=['PRISM'], dq_flags=~DQFlags.CONTAMINATION & ~DQFlags.LOW_SNR)  # doctest: +SKIP
        """
        return self._query("spectra", remote, filters)

    def _query(self, kind: str, remote: bool, filters: dict) -> Table:
        backend = self.catalog(remote)
        if backend is not self._local and "limit" not in filters:
            filters = dict(filters, limit=config.get("api.page-size"))
        self._check_staleness(filters, backend)
        return backend.query(build_query(kind, **filters))

    def _check_staleness(self, filters: dict, backend: CatalogBackend) -> None:
        if filters.get("staleness") is not None and backend is not self._local:
            raise ValidationError("staleness: cannot be used with remote=True (the server does not know your local files)")

    def iter_objects(self, *, remote: bool = False, **filters: Unpack[QueryFilters]) -> Iterator[dict]:
        """Stream object rows (dicts) without holding the result set in memory.

        Locally one SQLite cursor; remotely page after page of the API.

        Parameters
        ----------
        remote : bool
            Force the HTTP API.
        **filters
            See :meth:`query_objects` (``limit`` is unlimited here by default).

        Returns
        -------
        iterator of dict
            One dict per row with the :meth:`query_objects` columns.

        Raises
        ------
        ValidationError
            An unknown filter or value.

        Examples
        --------
        >>> for row in cf.iter_objects(redshift_range=(2.0, 4.0)):  # doctest: +SKIP
        ...     print(row['object_id'], row['redshift'])
        """
        backend = self.catalog(remote)
        self._check_staleness(filters, backend)
        return backend.iter_rows(build_query("objects", **filters))

    def iter_spectra(self, *, remote: bool = False, **filters: Unpack[QueryFilters]) -> Iterator[dict]:
        """Stream spectrum rows (dicts) without holding the result set in memory.

        Parameters
        ----------
        remote : bool
            Force the HTTP API.
        **filters
            See :meth:`query_spectra`.

        Returns
        -------
        iterator of dict
            One dict per row with the :meth:`query_spectra` columns.

        Raises
        ------
        ValidationError
            An unknown filter or value.

        Examples
        --------
        >>> ids = [r['spectrum_id'] for r in cf.iter_spectra(gratings=['PRISM'])]  # doctest: +SKIP
        """
        backend = self.catalog(remote)
        self._check_staleness(filters, backend)
        return backend.iter_rows(build_query("spectra", **filters))

    # -- single records --------------------------------------------------------------
    def get_object(self, object_id: str, *, remote: bool = False) -> Object | None:
        """One object with ``.spectra`` and ``.photometry`` attached.

        Parameters
        ----------
        object_id : str
            E.g. ``'ember_uds_p4_123456'``.
        remote : bool
            Force the HTTP API.

        Returns
        -------
        Object or None
            None when there is no such object (or you may not see it); when
            ``object_id`` is a spectrum's ID, a :class:`~campfire.errors.CampfireWarning`
            names its object.

        Raises
        ------
        ValidationError
            ``object_id`` is not an ID string.

        Examples
        --------
        >>> obj = cf.get_object('ember_uds_p4_123456')  # doctest: +SKIP
        >>> obj.spectra.gratings, obj.photometry.photo_z  # doctest: +SKIP
        (['G140M', 'G395M', 'PRISM'], 3.51)
        """
        _check_id("object_id", object_id)
        backend = self.catalog(remote)
        row = backend.object_row(object_id)
        if row is None:
            spectrum = backend.spectrum_row(object_id)
            if spectrum is not None:  # the reference's None stays; the hint says what was meant
                warnings.warn(f"get_object: {object_id!r} is a spectrum ID, not an object ID; its object is "
                              f"{spectrum['object_id']!r} (cf.get_object({spectrum['object_id']!r})), and "
                              f"cf.get_spectrum({object_id!r}) gives the spectrum's row", CampfireWarning, stacklevel=2)
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
        """One spectrum's catalog row.

        Parameters
        ----------
        spectrum_id : str
            E.g. ``'ember_uds_p4_prism_clear_123456'``.
        remote : bool
            Force the HTTP API.

        Returns
        -------
        dict or None
            The :meth:`query_spectra` columns; None when there is no such spectrum.

        Raises
        ------
        ValidationError
            ``spectrum_id`` is not an ID string.

        Examples
        --------
        >>> cf.get_spectrum('ember_uds_p4_prism_clear_123456')['grating']  # doctest: +SKIP
        'PRISM'
        """
        _check_id("spectrum_id", spectrum_id)
        backend = self.catalog(remote)
        row = backend.spectrum_row(spectrum_id)
        if row is None and backend.object_row(spectrum_id) is not None:
            warnings.warn(f"get_spectrum: {spectrum_id!r} is an object ID, not a spectrum ID; "
                          f"cf.get_object({spectrum_id!r}).spectra lists its spectra", CampfireWarning, stacklevel=2)
        return row

    # -- opening spectra ----------------------------------------------------------------
    def open_spectrum(self, spectrum_id: str) -> SpectrumData:
        """Open a spectrum: the local FITS file first, else fetch it from the API into ``products/``.

        Parameters
        ----------
        spectrum_id : str

        Returns
        -------
        SpectrumData

        Raises
        ------
        ValidationError
            ``spectrum_id`` is not an ID string.
        NotFoundError
            No such spectrum, or its file is not here and there is no server to fetch it from.
        DownloadError
            The file could not be fetched.

        Examples
        --------
        >>> spec = cf.open_spectrum('ember_uds_p4_prism_clear_123456')  # doctest: +SKIP
        """
        _check_id("spectrum_id", spectrum_id)
        return self.local_path(spectrum_id, fetch=True, open_=True)

    def local_path(self, spectrum_id: str, fetch: bool = True, open_: bool = False):
        """The local FITS path of a spectrum (fetching it when allowed), or its opened data.

        Parameters
        ----------
        spectrum_id : str
        fetch : bool
            Fetch the file from the server when it is not here.
        open_ : bool
            Return the opened :class:`SpectrumData` instead of the path.

        Returns
        -------
        str or SpectrumData

        Raises
        ------
        NotFoundError
            Not in the catalog, or not here and not fetched.
        CampfireError
            Neither a local catalog nor a server.
        """
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

        path = fetch_spectrum(self.remote_catalog, self.data_dir, spectrum_id, row)
        return SpectrumData.from_fits(path) if open_ else path

    def _open_spectrum_obj(self, spectrum: Spectrum) -> SpectrumData:
        if spectrum.downloaded:
            return SpectrumData.from_fits(spectrum.local_path)
        return self.open_spectrum(spectrum.spectrum_id)

    # -- 2D data, fits, imaging -----------------------------------------------------------
    def get_spectrum_data(self, spectrum_id: str) -> dict[str, Any]:
        """The arrays behind the 2D quick-look of a spectrum.

        Parameters
        ----------
        spectrum_id : str

        Returns
        -------
        dict
            ``{wave, fnu, fnu_err, snr_2d, n_spatial, n_wave, profile, profile_fit, profile_pix}``.

        Raises
        ------
        NotFoundError
            No such spectrum, or its file has no 2D data.

        Examples
        --------
        >>> cf.get_spectrum_data('ember_uds_p4_prism_clear_123456')['snr_2d'].shape  # doctest: +SKIP
        """
        _check_id("spectrum_id", spectrum_id)
        if self.is_local or not self.base_url:
            from campfire.io.fits import read_spectrum_2d

            return read_spectrum_2d(self.local_path(spectrum_id))
        return self.remote_catalog.spectrum_data(spectrum_id)

    def get_redshift_fit_data(self, spectrum_id: str) -> dict[str, Any]:
        """The stored redshift fit of a spectrum (its χ² curve and best model).

        Parameters
        ----------
        spectrum_id : str

        Returns
        -------
        dict
            ``{redshift, chi2_min, confidence, z_grid, chi2_grid, model_wave, model_fnu,
            redshift_lo, redshift_hi}``: ``redshift_lo``/``redshift_hi`` are the 68%
            interval of ``redshift`` (16th–84th percentiles of p(z); NaN in fits stored
            before it was recorded), the catalog's ``redshift_auto_lo``/``_hi``.

        Raises
        ------
        NotFoundError
            No such spectrum, or its file has no fit.

        Examples
        --------
        >>> cf.get_redshift_fit_data('ember_uds_p4_prism_clear_123456')['redshift']  # doctest: +SKIP
        """
        _check_id("spectrum_id", spectrum_id)
        if self.is_local or not self.base_url:
            from campfire.io.fits import read_redshift_fit

            try:
                return read_redshift_fit(self.local_path(spectrum_id))
            except NotFoundError:
                # an archive that links its inputs keeps fits in side files, which a download does not bring
                if not self.base_url:
                    raise
        return self.remote_catalog.redshift_fit(spectrum_id)

    def get_cutout(self, object_id: str, fov: float = 5.0, size: int | None = None) -> str:
        """Path of a cached cutout PNG around an object.

        Parameters
        ----------
        object_id : str
        fov : float
            Field of view in arcseconds.
        size : int, optional
            Output pixels per side (default: the native scale).

        Returns
        -------
        str
            The PNG under ``<data_dir>/cache/``.

        Raises
        ------
        NotFoundError
            No such object, or no imaging covers it.

        Examples
        --------
        >>> path = cf.get_cutout('ember_uds_p4_123456', fov=3.2)  # doctest: +SKIP
        """
        from campfire.imaging import cutout_for_client

        return cutout_for_client(self, _check_id("object_id", object_id), fov=fov, size=size)

    def get_shutters(self, object_id: str, fov: float = 5.0) -> dict:
        """Cached MSA shutter geometry around an object.

        Parameters
        ----------
        object_id : str
        fov : float
            Field of view in arcseconds.

        Returns
        -------
        dict
            The shutters and observations (see :func:`campfire.imaging.plot_cutout`).

        Raises
        ------
        NotFoundError
            No such object.

        Examples
        --------
        >>> data = cf.get_shutters('ember_uds_p4_123456', fov=3.2)  # doctest: +SKIP
        """
        from campfire.imaging import shutters_for_client

        return shutters_for_client(self, _check_id("object_id", object_id), fov=fov)

    def plot_cutout(self, object_id: str, fov: float = 5.0, size: int | None = None, shutters=True, ax=None,
                    shutter_style: dict | None = None, scalebar: bool = True):
        """Plot a cutout with the MSA shutters drawn as vector patches.

        Parameters
        ----------
        object_id : str
        fov : float
            Field of view in arcseconds.
        size : int, optional
            Output pixels per side (default: native resolution).
        shutters : bool or {'all', 'target'}
            True or 'all': every shutter; 'target': the target's only; False: none.
        ax : matplotlib.axes.Axes, optional
            Default ``plt.gca()``.
        shutter_style : dict, optional
            Per-category overrides ('target', 'other', 'stuck_closed').
        scalebar : bool
            Draw a scalebar.

        Returns
        -------
        matplotlib.axes.Axes

        Raises
        ------
        NotFoundError
            No such object, or no imaging covers it.

        Examples
        --------
        >>> cf.plot_cutout('ember_uds_p4_123456', fov=3.2, ax=ax)  # doctest: +SKIP
        """
        from campfire.imaging import plot_cutout

        path = self.get_cutout(object_id, fov=fov, size=size)
        data = self.get_shutters(object_id, fov=fov) if shutters else None
        return plot_cutout(path, shutters=data if data is not None else False, object_id=object_id, fov=fov, ax=ax,
                           which=shutters, shutter_style=shutter_style, scalebar=scalebar)

    # -- lazy collections ----------------------------------------------------------------
    def lazy_spectra(self, **filters) -> LazySpectra:
        """A lazy Dask collection over the spectra matching ``filters`` (see :mod:`campfire.graphs`).

        Parameters
        ----------
        **filters
            The filters of :meth:`query_spectra`, plus ``batch_size``, ``errors``
            (``'raise'`` or ``'record'``), ``storage_root`` and ``remote``
            (:meth:`LazySpectra.from_query <campfire.graphs.collection.LazySpectra.from_query>`).

        Returns
        -------
        LazySpectra
            Nothing runs until ``.compute()`` (or ``dask.compute``).

        Raises
        ------
        ValidationError
            An unknown filter or value.

        Examples
        --------
        >>> lazy = cf.lazy_spectra(tags=['lrd'], gratings=['PRISM'])  # doctest: +SKIP
        >>> stack = lazy.calibrate().stack('median', by='all', rest_frame=True).compute()  # doctest: +SKIP
        """
        from campfire.graphs.collection import LazySpectra

        return LazySpectra.from_query(self, **filters)

    def _lazy_from_spectra(self, spectra):
        # the lazy factory get_object attaches to obj.spectra (obj.spectra.lazy())
        from campfire.graphs.collection import LazySpectra

        return LazySpectra.from_spectra(spectra, client=self)

    # -- metadata -------------------------------------------------------------------------
    def get_metadata(self, *, remote: bool = False) -> dict[str, list]:
        """Programs, fields, gratings and observations at once.

        Parameters
        ----------
        remote : bool
            Force the HTTP API.

        Returns
        -------
        dict
            ``{'programs': [...], 'fields': [...], 'gratings': [...], 'observations': [...]}``.

        Examples
        --------
        >>> cf.get_metadata()['fields']  # doctest: +SKIP
        ['cosmos', 'egs', 'gds', 'uds']
        """
        return self.catalog(remote).metadata()

    def get_programs(self, *, remote: bool = False) -> Table:
        """The programs you may see.

        Parameters
        ----------
        remote : bool
            Force the HTTP API.

        Returns
        -------
        astropy.table.Table
            program_id, slug, program_name, pi_name, is_public.

        Examples
        --------
        >>> cf.get_programs()['slug']  # doctest: +SKIP
        """
        return self.catalog(remote).programs()

    def get_fields(self, *, remote: bool = False) -> list[str]:
        """The fields you may see, sorted.

        Parameters
        ----------
        remote : bool
            Force the HTTP API.

        Returns
        -------
        list of str

        Examples
        --------
        >>> cf.get_fields()  # doctest: +SKIP
        ['cosmos', 'egs', 'gds', 'uds']
        """
        return self.catalog(remote).fields()

    def get_gratings(self, *, remote: bool = False) -> list[str]:
        """The gratings of the spectra you may see, in instrument order.

        Parameters
        ----------
        remote : bool
            Force the HTTP API.

        Returns
        -------
        list of str

        Examples
        --------
        >>> cf.get_gratings()  # doctest: +SKIP
        ['PRISM', 'G140M', 'G235M', 'G395M']
        """
        return self.catalog(remote).gratings()

    def get_observations(self, *, remote: bool = False) -> list[str]:
        """The observations you may see, sorted.

        Parameters
        ----------
        remote : bool
            Force the HTTP API.

        Returns
        -------
        list of str

        Examples
        --------
        >>> cf.get_observations()[:2]  # doctest: +SKIP
        ['cinder_egs_p1', 'cinder_egs_p2']
        """
        return self.catalog(remote).observations()

    def get_tags(self, *, remote: bool = False) -> Table:
        """The tags you may see, with how many visible objects carry each.

        Parameters
        ----------
        remote : bool
            Force the HTTP API.

        Returns
        -------
        astropy.table.Table
            slug, name, member_count, kind, owner, description.

        Examples
        --------
        >>> cf.get_tags()['slug']  # doctest: +SKIP
        """
        return self.catalog(remote).tags()

    # -- user tags (server-side; see campfire.server.tags) ----------------------------------
    def create_tag(self, slug: str, name: str, shared: bool = False, description: str = "") -> dict:
        """Create a private (or, with ``shared=True``, shared) tag on the server. Needs a login.

        Slugs are lower-case letters, digits and hyphens, unique per owner; system
        slugs (lrd, blagn, ...) are reserved. A synced catalog sees it at the next sync.

        Parameters
        ----------
        slug : str
        name : str
            Display name.
        shared : bool
            Visible to every logged-in user.
        description : str

        Returns
        -------
        dict
            The tag's row (slug, name, member_count, kind, owner, description).

        Raises
        ------
        AuthenticationError
            Not logged in.
        ValidationError
            A bad or reserved slug, or one you already have.

        Examples
        --------
        >>> cf.create_tag('my-lrds', 'My LRD candidates', shared=False)  # doctest: +SKIP
        """
        return self.remote_catalog.create_tag(slug, name, shared=shared, description=description)

    def update_tag(self, slug: str, *, name: str | None = None, description: str | None = None,
                   shared: bool | None = None) -> dict:
        """Rename, re-describe, share or unshare one of your tags.

        Parameters
        ----------
        slug : str
        name, description : str, optional
            New values (None: unchanged).
        shared : bool, optional
            Share (True) or make private (False); None: unchanged.

        Returns
        -------
        dict
            The tag's row.

        Raises
        ------
        AuthenticationError
            Not logged in.
        NotFoundError
            You have no such tag.

        Examples
        --------
        >>> cf.update_tag('my-lrds', shared=True)  # doctest: +SKIP
        """
        return self.remote_catalog.update_tag(slug, name=name, description=description, shared=shared)

    def tag_objects(self, slug: str, object_ids) -> int:
        """Add objects (that you can see) to your tag.

        Parameters
        ----------
        slug : str
        object_ids : str or list of str

        Returns
        -------
        int
            How many were new.

        Raises
        ------
        AuthenticationError
            Not logged in.
        ValidationError
            An object you cannot see (then nothing changes).

        Examples
        --------
        >>> cf.tag_objects('my-lrds', ['ember_uds_p4_123456'])  # doctest: +SKIP
        1
        """
        return self.remote_catalog.tag_objects(slug, object_ids)

    def untag_objects(self, slug: str, object_ids) -> int:
        """Remove objects from your tag.

        Parameters
        ----------
        slug : str
        object_ids : str or list of str

        Returns
        -------
        int
            How many were removed.

        Raises
        ------
        AuthenticationError
            Not logged in.

        Examples
        --------
        >>> cf.untag_objects('my-lrds', ['ember_uds_p4_123456'])  # doctest: +SKIP
        1
        """
        return self.remote_catalog.untag_objects(slug, object_ids)

    def delete_tag(self, slug: str) -> None:
        """Delete one of your tags (its memberships go with it).

        Parameters
        ----------
        slug : str

        Raises
        ------
        AuthenticationError
            Not logged in.
        NotFoundError
            You have no such tag.

        Examples
        --------
        >>> cf.delete_tag('my-lrds')  # doctest: +SKIP
        """
        self.remote_catalog.delete_tag(slug)

    # -- inspections (campfire.catalog.inspections; the server's rules in campfire.server.inspections) --
    def inspect(self, object_id: str, redshift: float | None = None, quality: int | str | None = None,
                comment: str = "", flags: list[str] | None = None, *, resolves_conflict: bool = False,
                reviewer: str | None = None, remote: bool = False) -> dict[str, Any]:
        """Grade an object: store your inspection (a record; nothing is overwritten).

        The object's ``redshift_inspected`` / ``redshift_quality`` are then the consensus
        of the reviewers' latest records (:mod:`campfire.catalog.consensus`). On a
        server (``base_url``, or a synced ``data_dir``) you grade as the account you
        logged in with; your grade reaches your synced catalog at the next ``sync()``.
        In an archive root you own (a pipeline's, ``$CAMPFIRE_ROOT``) it is written
        there directly, by ``reviewer``.

        Parameters
        ----------
        object_id : str
        redshift : float, optional
            Your redshift; required for quality 2 (tentative) and up.
        quality : int or str
            0-4 or ``'not_inspected'``, ``'impossible'``, ``'tentative'``, ``'probable'``,
            ``'secure'``. 0 withdraws your earlier grade.
        comment : str
            Free text, at most 2000 characters.
        flags : list of str, optional
            Issue flags: ``'BAD_SPECTRUM'``, ``'WRONG_EXTRACTION'``, ``'CONTAMINATED'``.
        resolves_conflict : bool
            Settle a conflict between reviewers (archive admins only).
        reviewer : str, optional
            Who grades, in an archive root you own (default: your login name on this
            machine); a server records your account instead.
        remote : bool
            Grade on the server even when ``data_dir`` is an archive root of your own.

        Returns
        -------
        dict
            The stored record (``inspection_id``, ``reviewer``, ``redshift``, ``quality``,
            ``quality_name``, ``comment``, ``issues``, ``spectra_seen``, ``created_at``,
            ``outdated``, ...) and ``consensus`` (``state``, ``redshift``, ``quality``,
            ``n_reviewers``).

        Raises
        ------
        ValidationError
            A bad value (naming the parameter), or the server refused (not a member of
            a program with a spectrum of the object).
        AuthenticationError
            Not logged in to the server.
        NotFoundError
            No such object (for you).

        Examples
        --------
        >>> cf.inspect('ember_uds_p4_123456', redshift=3.4210, quality='secure', comment='Ha, [OIII]')  # doctest: +SKIP
        """
        _check_id("object_id", object_id)
        if quality is None:
            raise ValidationError("quality: required (0-4 or not_inspected, impossible, tentative, probable, secure)")
        values = dict(quality=quality, redshift=redshift, comment=comment, issues=flags,
                      resolves_conflict=resolves_conflict)
        if self._grades_locally(remote):
            return self.local_catalog.inspect(object_id, reviewer=reviewer or _login_name(), **values)
        return self.remote_catalog.inspect(object_id, reviewer=reviewer, **values)

    def get_inspections(self, object_id: str, *, remote: bool = False) -> Table:
        """The inspections of an object you may see, oldest first, with their consensus.

        Parameters
        ----------
        object_id : str
        remote : bool
            Ask the server (a synced catalog holds the records of its last ``sync()``).

        Returns
        -------
        astropy.table.Table
            inspection_id, reviewer, redshift, quality, quality_name, comment, issues,
            spectra_seen, resolves_conflict, created_at, outdated (the file of a
            spectrum it rests on has changed since); ``meta['consensus']``.

        Raises
        ------
        NotFoundError
            No such object (for you).

        Examples
        --------
        >>> t = cf.get_inspections('ember_uds_p4_123456')  # doctest: +SKIP
        >>> t['reviewer', 'redshift', 'quality_name'], t.meta['consensus']  # doctest: +SKIP
        """
        _check_id("object_id", object_id)
        return self.catalog(remote).inspections(object_id)

    def _grades_locally(self, remote: bool) -> bool:
        """True when grades go into ``data_dir`` itself: an archive root that is not a synced copy."""
        if not isinstance(remote, bool):
            raise ValidationError(f"remote: expected True or False, got {remote!r}")
        return not remote and self.is_local and self.local_catalog.meta("owner") != "client"


def _login_name() -> str:
    """This machine's user name, as a reviewer name (lower-case)."""
    import getpass

    try:
        return getpass.getuser().lower()
    except (KeyError, OSError):  # no user name in the environment or the password database
        raise ValidationError("reviewer: cannot tell who you are on this machine; pass reviewer='name'") from None
