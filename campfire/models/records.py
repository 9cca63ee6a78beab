"""Catalog records: ``Object`` → ``SpectrumCollection`` → ``Spectrum`` (→ ``SpectrumData`` when opened).

A :class:`Spectrum` is a catalog row plus an attached *opener*; a
:class:`SpectrumCollection` may carry a *lazy factory*. The client attaches both (it
knows where files are and how to build Dask graphs), so this module needs neither HTTP
nor Dask: ``s.open()`` and ``obj.spectra.lazy()`` call what was attached.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field, fields
from dataclasses import field as _field  # Object has an attribute named 'field'
from typing import Any, Callable, Iterable, Iterator, Sequence, TYPE_CHECKING

import numpy as np

from campfire.catalog.columns import SPECTRUM_COLUMN_NAMES as SPECTRUM_COLUMNS  # the columns of query_spectra
from campfire.errors import CampfireError, ValidationError
from campfire.models.photometry import Photometry
from campfire.models.spectra import SpectrumData

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = ["Spectrum", "SpectrumCollection", "Object", "SPECTRUM_COLUMNS", "split_list"]



@dataclass(repr=False)
class Spectrum:
    """One catalog row plus an attached opener. ``.open()`` (or ``.data``) loads the arrays.

    The fields are the ``query_spectra`` columns (:data:`SPECTRUM_COLUMNS`). ``_opener``
    is what the client attaches: ``opener(spectrum) -> SpectrumData`` (local file
    first, else the server).

    Examples
    --------
    >>> s = Spectrum('ember_uds_p4_prism_clear_123456', grating='PRISM', signal_to_noise=12.5)
    >>> s.grating, s.downloaded
    ('PRISM', False)
    """

    spectrum_id: str
    object_id: str = ""
    target_id: str = ""
    grating: str = ""
    filter: str = ""
    observation: str = ""
    program: str = ""
    fits_path: str = ""
    signal_to_noise: float = float("nan")
    exposure_time: float = float("nan")
    reduction_version: str = ""
    redshift_auto: float = float("nan")
    dq_flags: int = 0
    local_path: str = ""
    file_hash: str = ""
    file_size: int = 0
    redshift_auto_lo: float = float("nan")
    redshift_auto_hi: float = float("nan")
    redshift_auto_confidence: float = float("nan")
    _opener: Callable[["Spectrum"], SpectrumData] | None = field(default=None, compare=False)
    _data: SpectrumData | None = field(default=None, compare=False)

    @classmethod
    def from_row(cls, row: dict, opener: Callable[["Spectrum"], SpectrumData] | None = None) -> "Spectrum":
        """A Spectrum from a catalog row (a dict of ``query_spectra`` columns; others ignored).

        Parameters
        ----------
        row : dict
        opener : callable, optional
            ``opener(spectrum) -> SpectrumData``, called by :meth:`open`.

        Returns
        -------
        Spectrum

        Examples
        --------
        >>> Spectrum.from_row({'spectrum_id': 'a', 'grating': 'PRISM', 'extra': 1}).grating
        'PRISM'
        """
        names = {f.name for f in fields(cls)} - {"_opener", "_data"}
        kwargs = {k: row[k] for k in names if k in row and row[k] is not None}
        return cls(**kwargs, _opener=opener)

    def as_dict(self) -> dict:
        """The row as a dict of :data:`SPECTRUM_COLUMNS`.

        Returns
        -------
        dict

        Examples
        --------
        >>> Spectrum('a', grating='PRISM').as_dict()['grating']
        'PRISM'
        """
        return {k: getattr(self, k) for k in SPECTRUM_COLUMNS}

    @property
    def downloaded(self) -> bool:
        """True when the FITS file is on local disk."""
        return bool(self.local_path) and os.path.exists(self.local_path)

    def open(self) -> SpectrumData:
        """Load the FITS arrays (local file first, else through the client's API fallback).

        Returns
        -------
        SpectrumData

        Raises
        ------
        CampfireError
            No local file and no client attached to fetch it.
        FileFormatError
            The file is not a readable spectrum.

        Examples
        --------
        >>> spec = obj.spectra[0].open()  # doctest: +SKIP
        """
        if self._opener is None:
            if self.downloaded:
                return SpectrumData.from_fits(self.local_path)
            raise CampfireError(
                f"spectrum {self.spectrum_id} has no local file and no client attached to fetch it"
            )
        return self._opener(self)

    @property
    def data(self) -> SpectrumData:
        """The opened SpectrumData (cached after the first access)."""
        if self._data is None:
            self._data = self.open()
        return self._data

    def plot(self, **kwargs):
        """Quick-look plot: ``s.open().plot(**kwargs)`` (see :meth:`SpectrumData.plot`).

        Parameters
        ----------
        **kwargs
            ``flux_unit``, ``ax``, ``redshift`` ... of :meth:`SpectrumData.plot`.

        Returns
        -------
        matplotlib.axes.Axes

        Examples
        --------
        >>> obj.spectra[0].plot(flux_unit='flam')  # doctest: +SKIP
        """
        return self.data.plot(**kwargs)

    def __repr__(self) -> str:
        return (
            f"Spectrum({self.spectrum_id}, {self.grating}/{self.filter}, S/N={self.signal_to_noise:.1f}, "
            f"dq_flags={self.dq_flags}, downloaded={self.downloaded})"
        )


class SpectrumCollection(Sequence):
    """Numpy-style filterable container of :class:`Spectrum`.

    Integer indexing gives a Spectrum; slices, boolean masks and integer arrays give a
    new collection; attribute names give numpy arrays.

    Parameters
    ----------
    spectra : iterable of Spectrum
    lazy : callable, optional
        ``lazy(list_of_spectrum) -> LazySpectra``, attached by the client that made the
        rows (what :meth:`lazy` calls); kept by every sub-collection.

    Raises
    ------
    ValidationError
        An item that is not a Spectrum.

    Examples
    --------
    >>> coll = SpectrumCollection([Spectrum('a', grating='PRISM', signal_to_noise=12.0),
    ...                            Spectrum('b', grating='G395M', signal_to_noise=3.0)])
    >>> coll[coll.grating == 'PRISM'].spectrum_id
    array(['a'], dtype='<U1')
    >>> coll.gratings
    ['G395M', 'PRISM']
    """

    _ARRAY_ATTRS = tuple(f for f in SPECTRUM_COLUMNS) + ("downloaded",)

    def __init__(self, spectra: Iterable[Spectrum] = (), *, lazy: Callable[[list], Any] | None = None):
        self._spectra = list(spectra)
        self._lazy = lazy
        for s in self._spectra:
            if not isinstance(s, Spectrum):
                raise ValidationError(f"spectra: expected Spectrum items, got {type(s).__name__}")

    def _sub(self, spectra: Iterable[Spectrum]) -> "SpectrumCollection":
        return SpectrumCollection(spectra, lazy=self._lazy)

    def __len__(self) -> int:
        return len(self._spectra)

    def __iter__(self) -> Iterator[Spectrum]:
        return iter(self._spectra)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self._spectra[key]
        if isinstance(key, slice):
            return self._sub(self._spectra[key])
        arr = np.asarray(key)
        if arr.dtype == bool:
            if arr.shape != (len(self),):
                raise ValidationError(f"mask: expected {len(self)} booleans, got shape {arr.shape}")
            return self._sub(s for s, keep in zip(self._spectra, arr) if keep)
        if np.issubdtype(arr.dtype, np.integer):
            return self._sub(self._spectra[i] for i in arr)
        raise ValidationError(f"index: expected int, slice, boolean mask or int array, got {key!r}")

    def __getattr__(self, name: str):
        if name in SpectrumCollection._ARRAY_ATTRS:
            values = [getattr(s, name) for s in self._spectra]
            if name in ("signal_to_noise", "exposure_time", "redshift_auto", "redshift_auto_lo", "redshift_auto_hi",
                        "redshift_auto_confidence"):
                return np.array(values, dtype=float)
            if name in ("dq_flags", "file_size"):
                return np.array(values, dtype=int)
            if name == "downloaded":
                return np.array(values, dtype=bool)
            return np.array(values, dtype=str) if values else np.array([], dtype=str)
        raise AttributeError(name)

    @property
    def gratings(self) -> list[str]:
        """Sorted unique gratings."""
        return sorted({s.grating for s in self._spectra})

    def to_table(self) -> Table:
        """The rows as an astropy Table (:data:`SPECTRUM_COLUMNS`).

        Returns
        -------
        astropy.table.Table

        Examples
        --------
        >>> len(SpectrumCollection([Spectrum('a'), Spectrum('b')]).to_table())
        2
        """
        rows = [s.as_dict() for s in self._spectra]
        from astropy.table import Table

        return Table(rows=rows, names=SPECTRUM_COLUMNS) if rows else Table(names=SPECTRUM_COLUMNS)

    def open(self) -> list[SpectrumData]:
        """Every spectrum opened (:meth:`Spectrum.open`), in order.

        Returns
        -------
        list of SpectrumData

        Raises
        ------
        CampfireError
            A spectrum with no local file and no client to fetch it.

        Examples
        --------
        >>> specs = obj.spectra.open()  # doctest: +SKIP
        """
        return [s.open() for s in self._spectra]

    def lazy(self):
        """A lazy Dask collection over these spectra (:class:`campfire.graphs.collection.LazySpectra`).

        Returns
        -------
        LazySpectra

        Raises
        ------
        CampfireError
            The collection was not made by a client (build one with
            ``LazySpectra.from_spectra(list(collection))``).

        Examples
        --------
        >>> cal = obj.spectra.lazy().calibrate()  # doctest: +SKIP
        """
        if self._lazy is None:
            raise CampfireError(
                "lazy: this collection was not made by a Campfire client; use "
                "campfire.graphs.collection.LazySpectra.from_spectra(list(collection))"
            )
        return self._lazy(list(self._spectra))

    def __repr__(self) -> str:
        head = ", ".join(s.spectrum_id for s in self._spectra[:3])
        more = ", ..." if len(self) > 3 else ""
        n = len(self)
        return f"SpectrumCollection({n} spectr{'um' if n == 1 else 'a'}: {head}{more})"

    def __reduce__(self):
        return (functools.partial(SpectrumCollection, lazy=self._lazy), (self._spectra,))


@dataclass(repr=False)
class Object:
    """One sky position with its spectra and photometry attached (``cf.get_object``).

    Examples
    --------
    >>> obj = Object('ember_uds_p4_123456', field='uds', redshift=3.421, tags=['lrd'])
    >>> print(obj)
    Object(ember_uds_p4_123456, z=3.4210, uds)
      0 spectra ()
      tags: lrd
      no photometry
    """

    object_id: str
    field: str = ""
    ra: float = float("nan")
    dec: float = float("nan")
    redshift: float = float("nan")
    redshift_auto: float = float("nan")
    redshift_inspected: float = float("nan")
    redshift_quality: int = 0
    programs: list[str] = _field(default_factory=list)
    tags: list[str] = _field(default_factory=list)
    gratings: list[str] = _field(default_factory=list)
    n_spectra: int = 0
    max_snr: float = float("nan")
    max_exposure_time: float = float("nan")
    has_photometry: bool = False
    photo_z: float | None = None
    photo_z_err_lo: float | None = None
    photo_z_err_hi: float | None = None
    spectra: SpectrumCollection = _field(default_factory=SpectrumCollection)
    photometry: Photometry | None = None

    def __repr__(self) -> str:
        z = f"z={self.redshift:.4f}" if self.redshift == self.redshift else "z=?"
        lines = [f"Object({self.object_id}, {z}, {self.field})"]
        n = len(self.spectra)
        lines.append(f"  {n} spectr{'um' if n == 1 else 'a'} ({', '.join(self.spectra.gratings)})")
        lines.append(f"  tags: {', '.join(self.tags) if self.tags else '-'}")
        lines.append(f"  {self.photometry!r}" if self.photometry is not None else "  no photometry")
        return "\n".join(lines)


def split_list(value: Any) -> list[str]:
    """A comma-joined catalog cell ('lrd,blagn') as a list.

    Parameters
    ----------
    value : str, list or None

    Returns
    -------
    list of str

    Examples
    --------
    >>> split_list('lrd,blagn'), split_list(None)
    (['lrd', 'blagn'], [])
    """
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [v for v in str(value).split(",") if v]
