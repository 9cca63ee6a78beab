"""FITS read/write of the pipeline format, through fsspec paths."""
from campfire.io.fits import read_spectrum, read_spectrum_2d, read_redshift_fit, write_spectrum, write_spectrum_file

__all__ = ["read_spectrum", "read_spectrum_2d", "read_redshift_fit", "write_spectrum", "write_spectrum_file"]
