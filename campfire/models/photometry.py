"""``Photometry``: the broadband photometry of one object as parallel arrays."""
from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from typing import Any, Mapping, TYPE_CHECKING

import numpy as np

from campfire.errors import ValidationError
from campfire.models.spectra import as_1d

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = ["Photometry", "BandFlux"]

BandFlux = namedtuple("BandFlux", ["flux", "flux_err", "wavelength"])


@dataclass(repr=False)
class Photometry:
    """Broadband photometry of one object as parallel arrays (μJy, pivot wavelength in μm).

    Parameters
    ----------
    bands : list of str
        Band names (stored lower-case, e.g. ``'f444w'``).
    flux, flux_err : array_like
        Flux density and its error [μJy], one per band.
    wavelength : array_like
        Pivot wavelength of each band [μm].
    catalog : str, optional
        The photometric catalogue the values come from.
    photo_z, photo_z_err_lo, photo_z_err_hi : float, optional
        Photometric redshift and its asymmetric errors.
    object_id : str, optional

    Raises
    ------
    ValidationError
        Arrays whose length differs from the number of bands.

    Examples
    --------
    >>> phot = Photometry(['f150w', 'f444w'], [1.0, 2.0], [0.1, 0.1], [1.50, 4.40], catalog='UVCANDELS')
    >>> phot['f444w'].flux
    2.0
    """

    bands: list[str]
    flux: np.ndarray
    flux_err: np.ndarray
    wavelength: np.ndarray
    catalog: str = ""
    photo_z: float | None = None
    photo_z_err_lo: float | None = None
    photo_z_err_hi: float | None = None
    object_id: str | None = None

    def __post_init__(self):
        self.bands = [str(b).lower() for b in self.bands]
        n = len(self.bands)
        self.flux = as_1d("flux", self.flux, n)
        self.flux_err = as_1d("flux_err", self.flux_err, n)
        self.wavelength = as_1d("wavelength", self.wavelength, n)

    def __reduce__(self):
        # The values travel inside the pickle, not as arrays: a workflow's graph carries every
        # object's photometry (a dozen values), and pickle protocol 5 (distributed) sends each
        # array as an out-of-band frame of its own: 6,372 frames of ~100 bytes for the full
        # demo's calibrate_all, ~0.1 s more to submit and load the graph.
        return (type(self), (self.bands, self.flux.tolist(), self.flux_err.tolist(), self.wavelength.tolist(),
                             self.catalog, self.photo_z, self.photo_z_err_lo, self.photo_z_err_hi, self.object_id))

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None, object_id: str | None = None) -> "Photometry | None":
        """The Photometry of a catalog record, or None when the object has none.

        This is the one place a catalog's photometry record becomes a Photometry: the
        client (``get_object``) and the graph selection both call it.

        Parameters
        ----------
        record : dict or None
            ``{'bands': [(band, flux, flux_err, wavelength), ...], 'catalog', 'photo_z',
            'photo_z_err_lo', 'photo_z_err_hi'}`` as both catalog backends return it
            (``object_photometry``); missing keys are empty / None.
        object_id : str, optional
            Stored on the result.

        Returns
        -------
        Photometry or None
            None for a missing record or one without bands.

        Raises
        ------
        ValidationError
            Malformed band rows.

        Examples
        --------
        >>> Photometry.from_record({'bands': [('f444w', 2.0, 0.1, 4.4)], 'catalog': 'UVCANDELS'}, 'obj1')
        Photometry(1 bands, UVCANDELS)
        >>> Photometry.from_record({'bands': []}) is None
        True
        """
        if not record or not record.get("bands"):
            return None
        try:
            bands, flux, flux_err, wavelength = (list(col) for col in zip(*(tuple(b)[:4] for b in record["bands"])))
        except (TypeError, ValueError):
            raise ValidationError(
                "record: expected band rows (band, flux, flux_err, wavelength) in record['bands']"
            ) from None
        return cls(
            bands=bands,
            flux=flux,
            flux_err=flux_err,
            wavelength=wavelength,
            catalog=record.get("catalog") or "",
            photo_z=record.get("photo_z"),
            photo_z_err_lo=record.get("photo_z_err_lo"),
            photo_z_err_hi=record.get("photo_z_err_hi"),
            object_id=object_id,
        )

    def __len__(self) -> int:
        return len(self.bands)

    def __getitem__(self, band: str) -> BandFlux:
        """One band as ``BandFlux(flux, flux_err, wavelength)`` (name matched case-insensitively).

        Raises
        ------
        ValidationError
            The band is not in this photometry (the message lists the bands).
        """
        key = str(band).lower()
        if key not in self.bands:
            raise ValidationError(f"band: {band!r} is not in this photometry; bands: {', '.join(self.bands)}")
        i = self.bands.index(key)
        return BandFlux(float(self.flux[i]), float(self.flux_err[i]), float(self.wavelength[i]))

    def __contains__(self, band: str) -> bool:
        return str(band).lower() in self.bands

    def to_table(self) -> Table:
        """The photometry as an astropy Table with units.

        Returns
        -------
        astropy.table.Table
            ``band``, ``flux``, ``flux_err`` [μJy], ``wavelength`` [μm]; catalog, photo_z and
            object_id in ``meta``.

        Examples
        --------
        >>> Photometry(['f444w'], [2.0], [0.1], [4.4]).to_table()['flux'].unit
        Unit("uJy")
        """
        import astropy.units as u
        from astropy.table import Table

        t = Table(
            {
                "band": list(self.bands),
                "flux": self.flux * u.uJy,
                "flux_err": self.flux_err * u.uJy,
                "wavelength": self.wavelength * u.um,
            }
        )
        t.meta.update(catalog=self.catalog, photo_z=self.photo_z, object_id=self.object_id)
        return t

    def __repr__(self) -> str:
        pz = f", photo_z={self.photo_z:.2f}" if self.photo_z is not None else ""
        return f"Photometry({len(self)} bands, {self.catalog or '?'}{pz})"
