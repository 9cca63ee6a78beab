"""campfire: client and Dask pipeline of a JWST/NIRSpec MSA spectroscopy archive."""
from __future__ import annotations

from typing import TYPE_CHECKING

from campfire import config as _config  # registers the packaged Dask defaults
from campfire.errors import (
    APIError,
    AuthenticationError,
    CampfireError,
    CampfireWarning,
    DownloadError,
    NotFoundError,
    PartialFailureWarning,
    ValidationError,
)
from campfire.flags import DQFlags, decode_flags, encode_flags, list_flags
from campfire.lines import EMISSION_LINES, convert_flux_units, get_emission_lines
from campfire.models import Object, Photometry, Spectrum, SpectrumCollection, SpectrumData
from campfire.client import Campfire
from campfire.calibration import (
    CalibrationResult,
    calibrate_and_stack,
    calibrate_to_photometry,
    resample_flux,
    stack_spectra,
    synthetic_photometry,
)


__all__ = [  # the reference's names (+ resample_flux, fit_redshift); the Plotly helpers load on first use
    "Campfire",
    "Object", "SpectrumCollection", "Spectrum", "SpectrumData", "Photometry",
    "calibrate_to_photometry", "stack_spectra", "calibrate_and_stack", "synthetic_photometry", "CalibrationResult",
    "resample_flux", "fit_redshift",
    "convert_flux_units", "get_emission_lines", "EMISSION_LINES",
    "DQFlags", "list_flags", "decode_flags", "encode_flags",
    "CampfireError", "AuthenticationError", "NotFoundError", "DownloadError", "ValidationError", "APIError",
    "CampfireWarning", "PartialFailureWarning",
]

if TYPE_CHECKING:  # the Plotly helpers and fit_redshift exist at runtime through __getattr__ below
    from campfire.plotting import plot_redshift_fit, plot_spectrum, plot_spectrum_simple
    from campfire.tasks.redshift import fit_redshift

_LAZY = {  # heavy or optional parts load on first use, so `import campfire` stays light
    # Plotly helpers (the `plotting` extra): imported on first use, so `import campfire` stays light
    "plot_spectrum": "campfire.plotting",
    "plot_redshift_fit": "campfire.plotting",
    "plot_spectrum_simple": "campfire.plotting",
    # the redshift fit (a 1,200-line module, ~15 ms to load): on first use
    "fit_redshift": "campfire.tasks.redshift",
}


def __getattr__(name: str):
    if name == "__version__":
        # pyproject's, from the installed metadata (importlib.metadata: ~30 ms, so on first use)
        value = globals()["__version__"] = _config.package_version()
        return value
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'campfire' has no attribute {name!r}")
