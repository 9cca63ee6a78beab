"""Readers of a demo archive's ground truth (see ``campfire/demo/README.md``).

Examples
--------
>>> from campfire.demo import truth
>>> sed = truth.true_sed(root, 'ember_uds_p4_123456')            # doctest: +SKIP
>>> sed['z'], sed['wave'].shape == sed['fnu'].shape              # doctest: +SKIP
(3.421, True)
>>> t = truth.spectrum_truth(root, 'ember_uds_p4_prism_clear_123456')  # doctest: +SKIP
>>> # flux = t['slitloss'] * t['model'] + t['additive'] + noise
"""
from __future__ import annotations

import os
import pathlib
import sqlite3
from typing import Any

import numpy as np

from campfire.catalog.db import catalog_path, opened
from campfire.errors import NotFoundError

__all__ = ["true_sed", "spectrum_truth", "truth_object", "truth_spectrum", "sed_grid"]


def _root(root) -> pathlib.Path:
    return pathlib.Path(root).expanduser()


def _npz(path: pathlib.Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise NotFoundError(f"no truth file {path} (is this a demo archive built with FITS products?)")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def sed_grid(root: str | os.PathLike) -> dict[str, np.ndarray]:
    """The truth grid: ``wave`` (pixel centres, μm, observed frame) and ``edges``."""
    return _npz(_root(root) / "truth" / "sed_grid.npz")


def true_sed(root: str | os.PathLike, object_id: str) -> dict[str, Any]:
    """An object's true SED: ``wave`` and ``wave_rest`` [μm], ``fnu`` [μJy], ``z``.

    Examples
    --------
    >>> sed = true_sed(root, 'ember_uds_p4_123456')  # doctest: +SKIP
    """
    grid = sed_grid(root)
    obj = _npz(_root(root) / "truth" / "objects" / f"{object_id}.npz")
    z = float(obj["z"])
    return {"wave": grid["wave"], "wave_rest": grid["wave"] / (1 + z), "fnu": obj["fnu"].astype(float), "z": z}


def spectrum_truth(root: str | os.PathLike, spectrum_id: str) -> dict[str, np.ndarray]:
    """A spectrum's truth arrays on its FITS grid: ``model``, ``slitloss``, ``additive``.

    ``flux = slitloss · model + additive + noise`` with noise ~ N(0, err).
    """
    return {k: v.astype(float) for k, v in _npz(_root(root) / "truth" / "spectra" / f"{spectrum_id}.npz").items()}


def _row(root, table: str, key: str, value: str) -> dict[str, Any]:
    db = catalog_path(_root(root))
    with opened(db) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute(f"SELECT * FROM {table} WHERE {key} = ?", (value,)).fetchone()
    if row is None:
        raise NotFoundError(f"{value!r} is not in {table} of {db}")
    return dict(row)


def truth_object(root: str | os.PathLike, object_id: str) -> dict[str, Any]:
    """The ``truth_objects`` row of an object (z_true, sed_type, sed_params JSON, ...)."""
    return _row(root, "truth_objects", "object_id", object_id)


def truth_spectrum(root: str | os.PathLike, spectrum_id: str) -> dict[str, Any]:
    """The ``truth_spectra`` row of a spectrum (slit-loss parameters, gap, coverage, ...)."""
    return _row(root, "truth_spectra", "spectrum_id", spectrum_id)
