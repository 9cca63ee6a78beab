"""campfire: client and Dask pipeline of a JWST/NIRSpec MSA spectroscopy archive."""
from __future__ import annotations

from campfire import config as _config  # registers the packaged Dask defaults
from campfire.errors import (
    APIError,
    AuthenticationError,
    CampfireError,
    DownloadError,
    NotFoundError,
    ValidationError,
)
from campfire.flags import DQFlags, decode_flags, encode_flags, list_flags
from campfire.lines import EMISSION_LINES, convert_flux_units, get_emission_lines
from campfire.models import Object, Photometry, Spectrum, SpectrumCollection, SpectrumData
from campfire.tasks.redshift import fit_redshift
from campfire.tasks.synphot import synthetic_photometry

__version__ = "0.1.0"
