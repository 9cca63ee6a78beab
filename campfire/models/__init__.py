"""The data model: Object → SpectrumCollection → Spectrum → SpectrumData, Photometry, results.

Plain dataclasses with numpy arrays; they know nothing of HTTP, SQL or Dask.

* :mod:`campfire.models.spectra` — ``SpectrumData`` (arrays; ``from_fits`` / ``to_fits`` through :mod:`campfire.io`)
* :mod:`campfire.models.photometry` — ``Photometry`` (and ``Photometry.from_record``)
* :mod:`campfire.models.records` — ``Object``, ``SpectrumCollection``, ``Spectrum`` (catalog rows
  with the opener / lazy factory the client attaches)
* :mod:`campfire.models.results` — ``CalibrationResult``, ``CalibrateAndStackResult``
"""
from campfire.models.photometry import BandFlux, Photometry
from campfire.models.records import SPECTRUM_COLUMNS, Object, Spectrum, SpectrumCollection, split_list
from campfire.models.results import CalibrateAndStackResult, CalibrationResult
from campfire.models.spectra import SpectrumData, as_1d, as_spectrum_data

__all__ = [
    "SpectrumData",
    "Spectrum",
    "SpectrumCollection",
    "Photometry",
    "Object",
    "BandFlux",
    "CalibrationResult",
    "CalibrateAndStackResult",
    "SPECTRUM_COLUMNS",
    "as_1d",
    "as_spectrum_data",
    "split_list",
]
