"""A synthetic pipeline-format spectrum (SPEC1D + SCI/WHT/PROFILE/PROF1D + ZFIT/ZMODEL)."""
from __future__ import annotations

import numpy as np

Z_TRUE = 3.421
HALPHA, OIII = 6564.61, 5008.24


def write_synthetic(path, z: float = Z_TRUE, n_wave: int = 400) -> str:
    from campfire.io.fits import write_spectrum_file

    rng = np.random.default_rng(7)
    wave = np.linspace(0.6, 5.3, n_wave)
    cont = 1.0 + 0.3 * wave
    lines = 8 * np.exp(-0.5 * ((wave - HALPHA * (1 + z) / 1e4) / 0.012) ** 2)
    lines += 4 * np.exp(-0.5 * ((wave - OIII * (1 + z) / 1e4) / 0.010) ** 2)
    flux = cont + lines + rng.normal(0, 0.1, n_wave)
    err = np.full(n_wave, 0.1)
    flux[:3] = err[:3] = np.nan  # NaN padding at the blue end, as in DJA v4 files
    ny = 21
    pix = np.arange(ny) - 10.0
    prof = np.exp(-0.5 * (pix / 1.5) ** 2)
    prof /= prof.sum()
    sci = np.outer(prof, np.nan_to_num(flux)) + rng.normal(0, 0.02, (ny, n_wave))
    wht = np.full((ny, n_wave), 1 / 0.02**2)
    wht[:, :3] = 0.0
    wht[3, 100:110] = 0.0  # a masked patch inside the trace region
    z_grid = np.linspace(0.0, 8.0, 801)
    chi2 = 3000 - 2500 * np.exp(-0.5 * ((z_grid - z) / 0.02) ** 2) + 50 * np.sin(3 * z_grid)
    return write_spectrum_file(
        path, wave=wave, flux=flux, err=err,
        header={"SPECID": "syn_prism_clear_1", "GRATING": "PRISM", "FILTER": "CLEAR"},
        sci=sci, wht=wht, profile=np.outer(prof, np.ones(n_wave)),
        prof1d={"pix": pix, "profile": sci.sum(axis=1), "pfit": prof * sci.sum()},
        zfit={"redshift": z, "chi2_min": float(chi2.min()), "confidence": 0.98, "z_grid": z_grid, "chi2_grid": chi2,
              "model_wave": wave, "model_fnu": cont + lines},
        overwrite=True,
    )
