"""Photometric band transmission curves (data) and their loader.

Band names are lower-case filter names (``'f444w'``, ``'f606w'``, ``'f160w'``); the
instrument-prefixed file stems (``'jwst_f444w'``, ``'acs_wfc_f606w'``) work too.
Curves ship inside the package (see ``PROVENANCE.md``).

Examples
--------
>>> from campfire.bands import get_band
>>> band = get_band('f444w')
>>> round(band.pivot, 2)
4.4
"""
from __future__ import annotations

import functools
import pathlib
from dataclasses import dataclass

import numpy as np

from campfire.errors import ValidationError

__all__ = ["Band", "get_band", "known_bands", "band_pivot"]

DATA_DIR = pathlib.Path(__file__).with_name("data")
_PREFIXES = ("jwst_", "acs_wfc_", "wfc3_ir_")
_INSTRUMENTS = {"jwst_": "JWST/NIRCam", "acs_wfc_": "HST/ACS-WFC", "wfc3_ir_": "HST/WFC3-IR"}


@dataclass(frozen=True)
class Band:
    """One band: wavelength [micron], throughput (photon-counting), pivot wavelength [micron]."""

    name: str
    instrument: str
    wavelength: np.ndarray
    throughput: np.ndarray

    @functools.cached_property
    def pivot(self) -> float:
        w, t = self.wavelength, self.throughput
        return float(np.sqrt(np.trapezoid(t * w, w) / np.trapezoid(t / w, w)))

    def support(self, threshold: float = 0.005) -> tuple[float, float]:
        """Wavelength range where throughput exceeds ``threshold`` × its peak."""
        return _support(self, threshold)

    def __hash__(self):
        return hash(self.name)

    def __eq__(self, other):
        return isinstance(other, Band) and other.name == self.name


@functools.lru_cache(maxsize=256)
def _support(band: Band, threshold: float) -> tuple[float, float]:
    above = np.flatnonzero(band.throughput > threshold * band.throughput.max())
    return float(band.wavelength[above[0]]), float(band.wavelength[above[-1]])


@functools.lru_cache(maxsize=None)
def _files() -> dict[str, pathlib.Path]:
    out = {}
    for path in sorted(DATA_DIR.glob("*.par")):
        stem = path.stem
        short = next(stem[len(p):] for p in _PREFIXES if stem.startswith(p))
        out[short] = path
    return out


def known_bands() -> list[str]:
    """Names of every shipped band, sorted by pivot wavelength."""
    return sorted(_files(), key=lambda n: get_band(n).pivot)


def _normalise(name: str) -> str:
    if not isinstance(name, str):
        raise ValidationError(f"band: expected a band name string, got {name!r}")
    key = name.strip().lower()
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix):]
    return key


@functools.lru_cache(maxsize=None)
def _load(key: str) -> Band:
    path = _files()[key]
    data = np.loadtxt(path, comments="#")
    wave = data[:, 0] / 1e4
    thru = np.clip(data[:, 1], 0.0, None)
    order = np.argsort(wave)
    instrument = next(v for p, v in _INSTRUMENTS.items() if path.stem.startswith(p))
    wave, thru = wave[order], thru[order]
    wave.setflags(write=False)
    thru.setflags(write=False)
    return Band(name=key, instrument=instrument, wavelength=wave, throughput=thru)


def get_band(name: str) -> Band:
    """Load a band by name; unknown names raise ValidationError listing the known bands."""
    key = _normalise(name)
    if key not in _files():
        raise ValidationError(
            f"band: unknown band {name!r}; known bands: {', '.join(sorted(_files()))}"
        )
    return _load(key)


def band_pivot(name: str) -> float:
    """Pivot wavelength of a band in micron."""
    return get_band(name).pivot
