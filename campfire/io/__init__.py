"""FITS read/write of the pipeline format, through fsspec paths (no model classes here)."""
from campfire.io.fits import (
    read_redshift_fit,
    read_spectrum_2d,
    read_spectrum_record,
    write_spectrum,
    write_spectrum_file,
)

__all__ = ["read_spectrum_record", "read_spectrum_2d", "read_redshift_fit", "write_spectrum", "write_spectrum_file"]
