"""Simulate one object: its true SED, photometry, and every spectrum's files and rows.

:func:`simulate_object` is the unit of work of the builder (one process task). It is
deterministic: every random number comes from a generator keyed by (seed, object,
observation, configuration), so the result does not depend on which worker runs it or
in which order.

A spectrum is made the way the data are: the true SED is convolved with the
configuration's LSF (:func:`campfire.demo.instrument.lsf_convolve`) and multiplied by
the slit loss; the 2D spectrum (rows × pixels) is that flux spread over a Gaussian
spatial profile plus per-pixel Gaussian noise (plus a contaminating trace or a
background residual where flagged); the 1D spectrum is the optimal (profile-weighted)
extraction of the 2D one, so its error array is exactly the standard deviation of its
noise.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import zipfile
from typing import Any

import numpy as np
from scipy.special import erf

from campfire.demo import instrument as ins
from campfire.demo import survey
from campfire.demo.sed import TRUTH_EDGES, true_band_flux, true_sed
from campfire.flags import DQFlags
from campfire.tasks.quality import median_snr as spectrum_statistic  # the catalog's signal_to_noise

__all__ = ["simulate_object", "spectrum_statistic", "write_npz", "DET_PX_PER_FWHM"]

DET_PX_PER_FWHM = 2.2  # detector pixels per resolution element (maps the grid onto the detectors)
_NPZ_DATE = (2024, 1, 1, 0, 0, 0)


def write_npz(path: str | os.PathLike, **arrays) -> None:
    """``np.savez_compressed`` with fixed zip timestamps, so the same arrays give identical bytes."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.save(buf, np.asarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_NPZ_DATE)
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)
    os.replace(tmp, path)


def _sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _coverage(cfg: ins.Config, wave: np.ndarray, det_start: float):
    """Which pixels have data, and where the detector gap falls (wavelengths) if it does."""
    lo, hi = cfg.nominal
    nominal = (wave >= lo) & (wave <= hi)
    u = ins.wave_to_u(cfg, wave)
    det = det_start + (u - float(ins.wave_to_u(cfg, np.array([lo]))[0])) * DET_PX_PER_FWHM
    g0 = survey.DETECTOR["gap_start"]
    g1 = g0 + survey.DETECTOR["gap_px"]
    in_gap = nominal & (det >= g0) & (det < g1)
    on_det = (det >= 0) & (det < survey.DETECTOR["end"])
    data = nominal & on_det & ~in_gap
    gap = (float(wave[in_gap].min()), float(wave[in_gap].max())) if in_gap.any() else None
    return data, gap


def _profile(ny: int, center: float, sigma_pix: np.ndarray) -> np.ndarray:
    """Pixel-integrated Gaussian spatial profile, (ny, nwave), each column summing to 1."""
    edges = np.arange(ny + 1)[:, None] - 0.5
    cdf = 0.5 * (1.0 + erf((edges - center) / (np.sqrt(2.0) * sigma_pix[None, :])))
    p = np.diff(cdf, axis=0)
    return p / p.sum(axis=0, keepdims=True)


def _source_sigma(obj: survey.ObjectPlan) -> float:
    """Gaussian σ [arcsec] with the object's half-light radius (r_e = 1.1774 σ)."""
    return obj.r_e / 1.1774


def _simulate_spectrum(obj: survey.ObjectPlan, tgt: survey.TargetPlan, sp: survey.SpectrumPlan,
                       truth_fnu: np.ndarray, seed: int) -> dict[str, Any]:
    cfg = ins.CONFIGS[sp.config]
    obs = next(o for o in survey.OBSERVATIONS if o.name == tgt.observation)
    rng = survey._rng(seed, *sp.seed_key)
    wave = ins.pixel_grid(cfg, sp.shift)
    model = ins.lsf_convolve(cfg, TRUTH_EDGES, truth_fnu, wave)
    src_sigma = _source_sigma(obj)
    sl = ins.slit_loss(wave, src_sigma, tgt.dx, tgt.dy, obs.throughput, obs.psf_scale)
    data, gap = _coverage(cfg, wave, sp.det_start)
    sigma_1d = ins.noise_sigma(cfg, wave, sp.exptime)

    ny = ins.N_SPATIAL
    yc = (ny - 1) / 2 + tgt.dy / ins.SPATIAL_PIXSCALE
    psf_sig = obs.psf_scale * ins.psf_fwhm_arcsec(wave) / 2.3548
    sig_y = np.sqrt(src_sigma**2 + psf_sig**2) / ins.SPATIAL_PIXSCALE
    prof = _profile(ny, yc, sig_y)
    p2 = (prof**2).sum(axis=0)
    sigma_pix = sigma_1d * np.sqrt(p2)  # so the optimal extraction has error sigma_1d
    signal = model * sl
    sci = prof * signal[None, :] + rng.standard_normal((ny, wave.size)) * sigma_pix[None, :]
    additive_2d = np.zeros((ny, wave.size))
    contam = None
    if sp.contamination:
        side = rng.choice([-1.0, 1.0])
        offset = float(side * rng.uniform(6.5, 8.5))
        amp = float(rng.uniform(0.3, 1.0) * max(np.median(signal), 0.02))
        slope = float(rng.uniform(-1.0, 1.5))
        cflux = amp * (wave / 2.5) ** slope
        cprof = _profile(ny, yc + offset, np.full(wave.size, 1.2))
        additive_2d += cprof * cflux[None, :]
        contam = {"offset_pix": round(offset, 3), "amp": amp, "slope": slope}
    bkg = None
    if sp.bad_background:
        amp = float(rng.uniform(1.0, 2.5) * rng.choice([-1.0, 1.0]))
        phase = float(rng.uniform(0, 2 * np.pi))
        x = (wave - wave[0]) / (wave[-1] - wave[0])
        pedestal = amp * sigma_pix * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * x + phase))
        additive_2d += pedestal[None, :]
        bkg = {"amp_sigma": amp, "phase": phase}
    sci += additive_2d
    # optimal extraction (uniform weights along the slit)
    flux = (prof * sci).sum(axis=0) / p2
    additive = (prof * additive_2d).sum(axis=0) / p2
    err = sigma_1d.copy()
    flux[~data] = np.nan
    err[~data] = np.nan
    sci[:, ~data] = np.nan
    wht = np.where(data[None, :], 1.0 / sigma_pix[None, :] ** 2, np.nan) * np.ones((ny, 1))

    snr = spectrum_statistic(flux, err)
    lo, hi = cfg.nominal
    good = wave[data]
    span = (float(good.min()), float(good.max())) if good.size else (float("nan"), float("nan"))
    partial = (not good.size) or (span[1] - span[0]) < survey.PARTIAL_COVERAGE_FRACTION * (hi - lo)
    flags = 0
    if gap is not None:
        flags |= int(DQFlags.CHIP_GAP)
    if sp.contamination:
        flags |= int(DQFlags.CONTAMINATION)
    if not (snr >= survey.LOW_SNR_THRESHOLD):
        flags |= int(DQFlags.LOW_SNR)
    if sp.bad_background:
        flags |= int(DQFlags.BAD_BACKGROUND)
    if partial:
        flags |= int(DQFlags.PARTIAL_COVERAGE)
    if tgt.stuck_neighbours:
        flags |= int(DQFlags.STUCK_SHUTTER)
    if abs(tgt.dx) > survey.OFF_CENTER_DX or abs(tgt.dy) > survey.OFF_CENTER_DY:
        flags |= int(DQFlags.OFF_CENTER)

    # the collapsed spatial profile and its model
    with np.errstate(invalid="ignore"):
        collapsed = np.nansum(sci[:, data], axis=1)
        total = collapsed.sum()
        profile1d = collapsed / total if total != 0 else collapsed
    pfit = prof[:, data].mean(axis=1) if data.any() else prof.mean(axis=1)
    return {
        "wave": wave,
        "flux": flux,
        "err": err,
        "sci": sci,
        "wht": wht,
        "profile": prof,
        "prof1d": {"pix": np.arange(ny) - (ny - 1) / 2, "profile": profile1d, "pfit": pfit},
        "model": model,
        "slitloss": sl,
        "additive": additive,
        "snr": snr,
        "flags": flags,
        "gap": gap,
        "span": span,
        "contam": contam,
        "bkg": bkg,
        "yc": yc,
        "src_sigma": src_sigma,
    }


def _photometry(obj: survey.ObjectPlan, truth_fnu: np.ndarray, seed: int):
    """True band fluxes of the SED and the catalog's noisy ones (no slit loss here)."""
    from campfire.bands import get_band

    if obj.phot_catalog is None:
        return []
    rng = survey._rng(seed, "photometry", obj.index)
    _, bands = survey.PHOT_CATALOGS[obj.field]
    rows = []
    for band, depth in bands:
        true = true_band_flux(truth_fnu, band)
        sigma = float(np.hypot(10 ** (-0.4 * (depth - 23.9)) / 5.0, survey.PHOT_FLOOR * abs(true)))
        flux = true + sigma * rng.standard_normal()
        rows.append({"band": band, "flux": float(flux), "flux_err": sigma, "flux_true": float(true),
                     "wavelength": get_band(band).pivot})
    return rows


def _header(obj, tgt, sp, cfg, res, seed) -> dict[str, Any]:
    obs = next(o for o in survey.OBSERVATIONS if o.name == tgt.observation)
    prog = obs.program
    q, r, c = survey.quadrant(tgt.col, tgt.row)
    return {
        "TELESCOP": "JWST",
        "INSTRUME": "NIRSPEC",
        "SPECID": sp.spectrum_id,
        "OBJID": obj.object_id,
        "TARGID": tgt.target_id,
        "SRCNAME": f"{prog.program_id}_{tgt.source_id}",
        "SOURCEID": tgt.source_id,
        "PROGRAM": prog.program_id,
        "PROGSLUG": prog.slug,
        "OBSERVTN": tgt.observation,
        "FIELD": obj.field,
        "GRATING": cfg.grating,
        "FILTER": cfg.filter,
        "EXPTIME": sp.exptime,
        "DATE-OBS": survey.observation_date(obs, seed)[:10],
        "RA": obj.ra,
        "DEC": obj.dec,
        "SRCRA": obj.ra,
        "SRCDEC": obj.dec,
        "PA_APER": obs.pa_aper,
        "PA_V3": round((obs.pa_aper - survey.V3_IDL_Y_ANGLE) % 360.0, 3),
        "QUADRANT": q,
        "SHUTROW": r,
        "SHUTCOL": c,
        "SRCXPOS": round(tgt.dx / ins.SHUTTER_PITCH[0], 4),  # offset in shutter pitch units
        "SRCYPOS": round(tgt.dy / ins.SHUTTER_PITCH[1], 4),
        "YTRACE": round(res["yc"], 4),
        "YPIXSCL": ins.SPATIAL_PIXSCALE,
        "BUNIT": "microJansky",
        "REDVER": survey.REDUCTION_VERSION,
        "DQFLAGS": res["flags"],
        "SNR": round(res["snr"], 4) if np.isfinite(res["snr"]) else -1.0,
        "ORIGIN": "campfire demo",
    }


def _fit_redshifts(specs) -> list[dict[str, Any] | None]:
    """Blind redshift fits of the spectra (``campfire.tasks.redshift.fit_redshift``).

    Returns one fit dict per spectrum, or None for each when the fitter is unavailable.
    """
    from campfire.errors import ValidationError

    try:
        from campfire.tasks.redshift import fit_redshift
    except ImportError:  # the fitter is optional for the archive's layout, not for its science
        return [None] * len(specs)
    out = []
    for spec in specs:
        try:
            out.append(fit_redshift(spec, z_range=(0.0, 15.0)))
        except ValidationError:  # too few valid pixels to fit: no redshift, like a real pipeline
            out.append(None)
    return out


def simulate_object(obj: survey.ObjectPlan, seed: int, root: str) -> dict[str, Any]:
    """Write an object's spectra and truth files under ``root``; return its catalog rows.

    Parameters
    ----------
    obj : ObjectPlan
        The object (from :func:`campfire.demo.survey.make_plan`).
    seed : int
        The build's seed.
    root : str
        The archive root being built.

    Returns
    -------
    dict
        ``spectra`` (rows for the ``spectra`` table + truth), ``photometry`` and ``truth``.
    """
    from campfire.catalog.columns import auto_redshift_values
    from campfire.io.fits import auto_redshift_cards, write_spectrum_file
    from campfire.models import SpectrumData

    root_p = pathlib.Path(root)
    truth_fnu = true_sed(obj.sed)
    phot = _photometry(obj, truth_fnu, seed)
    write_npz(root_p / "truth" / "objects" / f"{obj.object_id}.npz", fnu=truth_fnu.astype(np.float32),
              z=np.float64(obj.sed.z))

    sims = []
    for tgt in obj.targets:
        for sp in tgt.spectra:
            sims.append((tgt, sp, _simulate_spectrum(obj, tgt, sp, truth_fnu, seed)))
    specs = [
        SpectrumData(res["wave"], res["flux"], res["err"], spectrum_id=sp.spectrum_id,
                     grating=ins.CONFIGS[sp.config].grating, filter=ins.CONFIGS[sp.config].filter,
                     object_id=obj.object_id, header={"DQFLAGS": res["flags"]})  # as the file will say
        for tgt, sp, res in sims
    ]
    fits_ = _fit_redshifts(specs)

    rows = []
    for (tgt, sp, res), fit in zip(sims, fits_):
        cfg = ins.CONFIGS[sp.config]
        header = _header(obj, tgt, sp, cfg, res, seed)
        # the automatic redshift, its 68% interval and confidence (ZFIT holds the fit with χ²(z))
        header.update({k: v for k, v in auto_redshift_cards(fit).items() if v is not None})
        rel = f"products/{tgt.observation}/{sp.spectrum_id}.spec.fits"
        path = root_p / rel
        write_spectrum_file(
            path, wave=res["wave"], flux=res["flux"], err=res["err"], header=header,
            sci=res["sci"], wht=res["wht"], profile=res["profile"], prof1d=res["prof1d"],
            zfit=fit, overwrite=True,
        )
        write_npz(root_p / "truth" / "spectra" / f"{sp.spectrum_id}.npz",
                  model=res["model"].astype(np.float32),
                  slitloss=res["slitloss"].astype(np.float32), additive=res["additive"].astype(np.float32))
        good = np.isfinite(res["flux"])
        wv = res["wave"][good]
        obs = next(o for o in survey.OBSERVATIONS if o.name == tgt.observation)
        rows.append({
            "spectrum_id": sp.spectrum_id,
            "object_id": obj.object_id,
            "target_id": tgt.target_id,
            "observation": tgt.observation,
            "program_id": obs.program.program_id,
            "grating": cfg.grating,
            "filter": cfg.filter,
            "fits_path": rel,
            "signal_to_noise": res["snr"] if np.isfinite(res["snr"]) else None,
            "exposure_time": sp.exptime,
            "reduction_version": survey.REDUCTION_VERSION,
            **auto_redshift_values(fit),
            "dq_flags": res["flags"],
            "file_hash": _sha256(path),
            "file_size": path.stat().st_size,
            "n_pix": int(res["wave"].size),
            "wave_min": float(wv.min()) if wv.size else None,
            "wave_max": float(wv.max()) if wv.size else None,
            "truth": {
                "spectrum_id": sp.spectrum_id,
                "object_id": obj.object_id,
                "slitloss_model": "gaussian_aperture_v1",
                "src_sigma": res["src_sigma"],
                "dx": tgt.dx,
                "dy": tgt.dy,
                "throughput": obs.throughput,
                "psf_scale": obs.psf_scale,
                "slitloss_1um": float(ins.slit_loss(1.0, res["src_sigma"], tgt.dx, tgt.dy, obs.throughput, obs.psf_scale)),
                "slitloss_3um": float(ins.slit_loss(3.0, res["src_sigma"], tgt.dx, tgt.dy, obs.throughput, obs.psf_scale)),
                "slitloss_5um": float(ins.slit_loss(5.0, res["src_sigma"], tgt.dx, tgt.dy, obs.throughput, obs.psf_scale)),
                "gap_min": res["gap"][0] if res["gap"] else None,
                "gap_max": res["gap"][1] if res["gap"] else None,
                "cover_min": res["span"][0],
                "cover_max": res["span"][1],
                "det_start": sp.det_start,
                "shift": sp.shift,
                "contamination": json.dumps(res["contam"]) if res["contam"] else None,
                "background": json.dumps(res["bkg"]) if res["bkg"] else None,
                "stuck_neighbours": ",".join(str(k) for k in tgt.stuck_neighbours),
            },
        })
    return {"object_id": obj.object_id, "index": obj.index, "spectra": rows, "photometry": phot}
