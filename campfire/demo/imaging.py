"""Synthetic imaging and MSA shutter geometry of the demo fields (for cutouts).

Layout under ``<root>/imaging/<field>/`` (see ``campfire/demo/README.md``):

``stamps/<object_id>.fits``
    An 8″ × 8″ (200 × 200 pixel) F444W-like image around every object, cut out of one
    field-wide mosaic: a TAN WCS at 0.04″/pixel, north up, east left, whose tangent
    point is the field centre (so stamps of one field are pixel-aligned pieces of the
    same mosaic). Pixel values are μJy per pixel (AB zero point 23.9), Sérsic galaxies
    (the catalog objects with their sizes, shapes and true F444W fluxes, plus fainter
    field galaxies and the other MSA targets) convolved with a Gaussian PSF
    (FWHM 0.145″) plus Gaussian noise. Stored RICE-compressed (``CompImageHDU``
    named ``SCI``; astropy reads it like an ordinary image).
``shutters/<observation>.json``
    The MSA geometry of one observation: pointing, aperture PA, shutter pitch and
    open area, every target's 3-shutter slitlet, other open shutters nearby and the
    stuck-closed shutters within 4″ of any target, each shutter with its centre and
    the four corners of its open area (ra, dec in degrees).
``index.json``
    The field's mosaic WCS, band, pixel scale, stamp size and the list of stamps.
"""
from __future__ import annotations

import json
import math
import pathlib
from typing import Any

import numpy as np

from campfire.demo import instrument as ins
from campfire.demo import survey

__all__ = ["render_field", "field_wcs", "field_wcs_cards", "mosaic_pixels", "shutter_geometry", "PIXSCALE", "STAMP_PIX", "BAND", "PSF_FWHM"]

PIXSCALE = 0.04  # arcsec / pixel
STAMP_PIX = 200  # 8 arcsec
BAND = "f444w"
PSF_FWHM = 0.145  # arcsec (NIRCam F444W)
DEPTH_5SIG = 28.6  # AB in a 0.1" radius aperture
STUCK_RADIUS = 4.0  # arcsec around each target
MOSAIC_NPIX = 16384  # the virtual field mosaic (never written whole)


def field_wcs_cards(field: str) -> dict[str, tuple[Any, str]]:
    """The mosaic WCS of a field as FITS cards, keyword → (value, comment): TAN, 0.04″/pixel,
    north up, east left, the tangent point at the field centre.

    The cards astropy writes for it (``WCS.to_header``), built without importing
    astropy.wcs (~0.5 s in each demo-build worker, with astropy.coordinates).

    Examples
    --------
    >>> field_wcs_cards('uds')['CTYPE1']
    ('RA---TAN', 'Right ascension, gnomonic projection')
    """
    ra0, dec0 = survey.FIELDS[field]
    crpix = MOSAIC_NPIX / 2 + 0.5
    pc = float(f"{PIXSCALE / 3600.0:.13e}")  # as wcslib writes it
    return {
        "WCSAXES": (2, "Number of coordinate axes"),
        "CRPIX1": (crpix, "Pixel coordinate of reference point"),
        "CRPIX2": (crpix, "Pixel coordinate of reference point"),
        "PC1_1": (-pc, "Coordinate transformation matrix element"),
        "PC2_2": (pc, "Coordinate transformation matrix element"),
        "CDELT1": (1.0, "[deg] Coordinate increment at reference point"),
        "CDELT2": (1.0, "[deg] Coordinate increment at reference point"),
        "CUNIT1": ("deg", "Units of coordinate increment and value"),
        "CUNIT2": ("deg", "Units of coordinate increment and value"),
        "CTYPE1": ("RA---TAN", "Right ascension, gnomonic projection"),
        "CTYPE2": ("DEC--TAN", "Declination, gnomonic projection"),
        "CRVAL1": (ra0, "[deg] Coordinate value at reference point"),
        "CRVAL2": (dec0, "[deg] Coordinate value at reference point"),
        "LONPOLE": (180.0, "[deg] Native longitude of celestial pole"),
        "LATPOLE": (dec0, "[deg] Native latitude of celestial pole"),
        "MJDREF": (0.0, "[d] MJD of fiducial time"),
        "RADESYS": ("ICRS", "Equatorial coordinate system"),
    }


def field_wcs(field: str):
    """The mosaic WCS of a field (astropy ``WCS`` of :func:`field_wcs_cards`).

    Examples
    --------
    >>> x, y = field_wcs('uds').all_world2pix(34.405, -5.2, 0)
    >>> round(float(x), 6), round(float(y), 6)
    (8191.5, 8191.5)
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    return WCS(fits.Header([(k, v, c) for k, (v, c) in field_wcs_cards(field).items()]))


def mosaic_pixels(field: str, ra, dec) -> tuple[np.ndarray, np.ndarray]:
    """0-based mosaic pixel (x, y) of sky positions [deg]: the TAN projection of :func:`field_wcs_cards`
    (``field_wcs(field).all_world2pix(ra, dec, 0)`` to ~3e-9 pixel).

    Examples
    --------
    >>> x, y = mosaic_pixels('uds', 34.405, -5.2 + 0.4 / 3600)
    >>> float(x), round(float(y), 6)
    (8191.5, 8201.5)
    """
    ra0, dec0 = survey.FIELDS[field]
    xi, eta = survey.tan_project(ra, dec, ra0, dec0)  # arcsec east, north
    centre = MOSAIC_NPIX / 2 - 0.5
    return centre - xi / PIXSCALE, centre + eta / PIXSCALE


def _sersic_b(n: float) -> float:
    return 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n * n)


def _render_source(img: np.ndarray, x: float, y: float, flux: float, r_e_pix: float, n: float, q: float,
                   pa_deg: float) -> None:
    """Add a Sérsic source (total ``flux``) at 0-based pixel (x, y), 3×3 subsampled."""
    r_e_pix = max(r_e_pix, 0.25)
    half = int(min(max(8 * r_e_pix, 6), 60))
    ix, iy = int(round(x)), int(round(y))
    x0, x1 = max(ix - half, 0), min(ix + half + 1, img.shape[1])
    y0, y1 = max(iy - half, 0), min(iy + half + 1, img.shape[0])
    if x0 >= x1 or y0 >= y1:
        return
    sub = (np.arange(3) - 1) / 3.0
    gx = (np.arange(x0, x1)[:, None] + sub[None, :]).ravel()
    gy = (np.arange(y0, y1)[:, None] + sub[None, :]).ravel()
    dx = gx[None, :] - x
    dy = gy[:, None] - y
    t = math.radians(pa_deg)
    # major axis at PA east of north; on the image north is +y and east is -x
    u = -dx * math.sin(t) + dy * math.cos(t)  # along the major axis
    v = dx * math.cos(t) + dy * math.sin(t)  # along the minor axis
    r = np.sqrt(q * u**2 + v**2 / q)  # circularised radius: r_e is the circularised half-light radius
    prof = np.exp(-_sersic_b(n) * ((r / r_e_pix) ** (1.0 / n) - 1.0))
    prof = prof.reshape(y1 - y0, 3, x1 - x0, 3).sum(axis=(1, 3))
    total = prof.sum()
    if total > 0:
        img[y0:y1, x0:x1] += flux * prof / total


def _field_galaxies(field: str, seed: int, bounds) -> np.ndarray:
    """Faint field galaxies (not in the archive): ra, dec, flux, r_e, n, q, pa."""
    rng = survey._rng(seed, "field-galaxies", field)
    ra_lo, ra_hi, dec_lo, dec_hi = bounds
    area = (ra_hi - ra_lo) * math.cos(math.radians(0.5 * (dec_lo + dec_hi))) * (dec_hi - dec_lo) * 3600.0
    n = int(area * 40)  # ~40 per arcmin^2 brighter than ~29 AB
    mag = 29.2 - rng.exponential(1.2, n)
    return np.column_stack([
        rng.uniform(ra_lo, ra_hi, n), rng.uniform(dec_lo, dec_hi, n), 10 ** (-0.4 * (mag - 23.9)),
        np.exp(rng.uniform(np.log(0.05), np.log(0.35), n)), rng.uniform(0.8, 2.5, n), rng.uniform(0.3, 1.0, n),
        rng.uniform(0, 180, n),
    ])


def _shutter(col: int, row: int, state: str, role: str | None = None) -> dict[str, Any]:
    """A shutter's record; :func:`_place_shutters` fills in its sky centre and corners."""
    q, r, c = survey.quadrant(col, row)
    out = {"quadrant": q, "row": r, "column": c, "ra": None, "dec": None, "state": state, "corners": None}
    if role:
        out["role"] = role
    return out


def _place_shutters(obs: survey.Observation, shutters: list[tuple[dict[str, Any], int, int]]) -> None:
    """Fill in the sky centre and the four corners of the open area of ``(record, col, row)``
    shutters of one observation, all in one projection (one per shutter cost ~0.3 s a field)."""
    cols = np.array([col for _, col, _ in shutters], dtype=float)
    rows = np.array([row for _, _, row in shutters], dtype=float)
    ra, dec = survey.shutter_center(obs, cols, rows)
    px, py = ins.SHUTTER_PITCH
    ox, oy = ins.SHUTTER_OPEN
    xs = (cols - survey.MSA_NCOL / 2 + 0.5)[:, None] * px + np.array([-ox / 2, ox / 2, ox / 2, -ox / 2])
    ys = (rows - survey.MSA_NROW / 2 + 0.5)[:, None] * py + np.array([-oy / 2, -oy / 2, oy / 2, oy / 2])
    xhat, yhat = survey._msa_axes(obs.pa_aper)
    ra0, dec0 = survey.pointing(obs)
    cra, cdec = survey.tan_deproject(xs * xhat[0] + ys * yhat[0], xs * xhat[1] + ys * yhat[1], ra0, dec0)
    for i, (record, _, _) in enumerate(shutters):
        record["ra"], record["dec"] = round(float(ra[i]), 8), round(float(dec[i]), 8)
        record["corners"] = [[round(a, 8), round(d, 8)] for a, d in zip(cra[i].tolist(), cdec[i].tolist())]


def shutter_geometry(plan: survey.Plan, obs: survey.Observation, spectra_by_target: dict[str, list[str]]):
    """The shutter JSON of one observation, and the filler sources placed in other shutters."""
    seed = plan.seed
    rng = survey._rng(seed, "fillers", obs.name)
    targets, fillers, stuck = [], [], {}
    occupied = set()
    placed: list[tuple[dict[str, Any], int, int]] = []  # every shutter record, positioned at the end

    def shutter(col: int, row: int, state: str, role: str | None = None) -> dict[str, Any]:
        record = _shutter(col, row, state, role)
        placed.append((record, col, row))
        return record

    xhat, yhat = survey._msa_axes(obs.pa_aper)
    ra0, dec0 = survey.pointing(obs)
    tlist = [(o, t) for o in plan.objects for t in o.targets if t.observation == obs.name]
    for o, t in tlist:
        for k in (-1, 0, 1):
            occupied.add((t.col, t.row + k))
    for o, t in tlist:
        slit = []
        for k in (-1, 0, 1):
            state = "stuck_closed" if k in t.stuck_neighbours else "open"
            slit.append(shutter(t.col, t.row + k, state, "source" if k == 0 else "nod"))
        targets.append({
            "target_id": t.target_id, "object_id": o.object_id, "source_id": t.source_id,
            "ra": o.ra, "dec": o.dec, "dx": round(t.dx, 5), "dy": round(t.dy, 5),
            "spectrum_ids": spectra_by_target.get(t.target_id, []), "shutters": slit,
        })
        # other MSA targets (not in the archive) in slitlets nearby
        for _ in range(int(rng.choice([0, 1, 1, 2]))):
            for _try in range(20):
                dc = int(rng.integers(4, 14)) * int(rng.choice([-1, 1]))
                dr = int(rng.integers(-6, 7))
                c, r = t.col + dc, t.row + dr
                cells = [(c, r + k) for k in (-1, 0, 1)]
                if any(cell in occupied for cell in cells) or bool(survey.is_stuck(c, r, seed)):
                    continue
                if not (0 <= c < survey.MSA_NCOL and 1 <= r < survey.MSA_NROW - 1):
                    continue
                for cell in cells:
                    occupied.add(cell)
                fdx, fdy = float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.1, 0.1))
                px, py = ins.SHUTTER_PITCH
                x = (c - survey.MSA_NCOL / 2 + 0.5) * px + fdx
                y = (r - survey.MSA_NROW / 2 + 0.5) * py + fdy
                fra, fdec = survey.tan_deproject(x * xhat[0] + y * yhat[0], x * xhat[1] + y * yhat[1], ra0, dec0)
                sid = int(rng.integers(100000, 999999))
                fillers.append({
                    "source_id": sid, "ra": round(float(fra), 8), "dec": round(float(fdec), 8),
                    "shutters": [shutter(c, r + k, "stuck_closed" if (k and bool(survey.is_stuck(c, r + k, seed)))
                                          else "open", "source" if k == 0 else "nod") for k in (-1, 0, 1)],
                })
                break
        # stuck-closed shutters within STUCK_RADIUS
        nc = int(STUCK_RADIUS / ins.SHUTTER_PITCH[0]) + 1
        nr = int(STUCK_RADIUS / ins.SHUTTER_PITCH[1]) + 1
        cc, rr = np.meshgrid(np.arange(t.col - nc, t.col + nc + 1), np.arange(t.row - nr, t.row + nr + 1))
        cc, rr = cc.ravel(), rr.ravel()
        near = (((cc - t.col) * ins.SHUTTER_PITCH[0]) ** 2 + ((rr - t.row) * ins.SHUTTER_PITCH[1]) ** 2) <= STUCK_RADIUS**2
        sel = near & survey.is_stuck(cc, rr, seed) & (cc >= 0) & (cc < survey.MSA_NCOL) & (rr >= 0) & (rr < survey.MSA_NROW)
        for c, r in zip(cc[sel].tolist(), rr[sel].tolist()):
            if (c, r) not in stuck:
                stuck[(c, r)] = shutter(c, r, "stuck_closed")
    _place_shutters(obs, placed)
    doc = {
        "format": "campfire-demo-shutters/1",
        "observation": obs.name,
        "program": obs.slug,
        "program_id": obs.program.program_id,
        "field": obs.field,
        "ra_center": round(ra0, 8),
        "dec_center": round(dec0, 8),
        "pa_aper": obs.pa_aper,
        "pa_v3": round((obs.pa_aper - survey.V3_IDL_Y_ANGLE) % 360.0, 3),
        "v3_idl_y_angle": survey.V3_IDL_Y_ANGLE,
        "shutter_pitch": list(ins.SHUTTER_PITCH),
        "shutter_open": list(ins.SHUTTER_OPEN),
        "targets": targets,
        "other_open": fillers,
        "stuck_closed": [stuck[k] for k in sorted(stuck)],
    }
    return doc, fillers


def stamp_bytes(img: np.ndarray, items: dict[str, Any], dither_seed: int) -> bytes:
    """A stamp file: an empty primary HDU and the image, RICE-compressed (``SCI``, float32).

    The bytes astropy's ``CompImageHDU(..., compression_type='RICE_1', quantize_level=8,
    quantize_method=1, dither_seed=dither_seed)`` writes, formatted by
    :func:`campfire.io.fitsbytes.rice_image_hdu` (astropy itself for what that leaves to it).
    """
    from campfire.io.fitsbytes import Unsupported, primary_hdu, rice_image_hdu

    try:
        return primary_hdu({}) + rice_image_hdu("SCI", img, items, quantize_level=8.0, dither_seed=dither_seed)
    except Unsupported:
        import io

        from astropy.io import fits

        hdr = fits.Header()
        for key, value in items.items():
            hdr[key] = value
        hdu = fits.CompImageHDU(np.asarray(img, np.float32), header=hdr, name="SCI", compression_type="RICE_1",
                                quantize_level=8.0, quantize_method=1, dither_seed=dither_seed)
        buf = io.BytesIO()
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf)
        return buf.getvalue()


def render_field(root: str, plan: survey.Plan, field: str, f444w: dict[str, float],
                 spectra_by_target: dict[str, list[str]]) -> dict[str, Any]:
    """Write a field's stamps, shutter JSONs and index; return a summary.

    Parameters
    ----------
    root : str
        Archive root being built.
    plan : Plan
        The demo plan.
    field : str
        Field name (lower-case).
    f444w : dict
        True F444W flux [μJy] of every object (by object_id).
    spectra_by_target : dict
        target_id → spectrum IDs (listed in the shutter JSON).
    """
    from scipy.ndimage import gaussian_filter

    from campfire.io.fits import write_atomic

    seed = plan.seed
    out = pathlib.Path(root) / "imaging" / field
    (out / "stamps").mkdir(parents=True, exist_ok=True)
    (out / "shutters").mkdir(parents=True, exist_ok=True)
    objs = [o for o in plan.objects if o.field == field]
    # shutters first: the other targets they place are sources in the image
    extra_sources = []
    for obs in survey.OBSERVATIONS:
        if obs.field != field:
            continue
        doc, fillers = shutter_geometry(plan, obs, spectra_by_target)
        # compact: with an indent, json encodes in Python (~10× slower; 0.45 CPU s of a small build)
        text = json.dumps(doc, separators=(",", ":"))
        (out / "shutters" / f"{obs.name}.json").write_text(text + "\n")
        frng = survey._rng(seed, "filler-morph", obs.name)
        for f in fillers:
            extra_sources.append([f["ra"], f["dec"], 10 ** (-0.4 * (frng.uniform(26.5, 28.5) - 23.9)),
                                  frng.uniform(0.05, 0.3), frng.uniform(0.8, 2.0), frng.uniform(0.4, 1.0),
                                  frng.uniform(0, 180)])
    ras = np.array([o.ra for o in objs])
    decs = np.array([o.dec for o in objs])
    pad = 10.0 / 3600.0
    bounds = (ras.min() - pad / max(math.cos(math.radians(decs.mean())), 0.1), ras.max() + pad / max(math.cos(math.radians(decs.mean())), 0.1),
              decs.min() - pad, decs.max() + pad)
    field_gal = _field_galaxies(field, seed, bounds)
    cat = np.array([[o.ra, o.dec, max(f444w.get(o.object_id, 0.0), 0.0), o.r_e, o.sersic_n, o.axis_ratio, o.pa]
                    for o in objs])
    sources = np.vstack([cat] + ([np.array(extra_sources)] if extra_sources else []) + [field_gal])
    sx, sy = mosaic_pixels(field, sources[:, 0], sources[:, 1])
    wcs_cards = field_wcs_cards(field)
    sigma_pix = 10 ** (-0.4 * (DEPTH_5SIG - 23.9)) / 5.0 / math.sqrt(math.pi * (0.1 / PIXSCALE) ** 2)
    psf_sigma = PSF_FWHM / 2.3548 / PIXSCALE
    stamps = []
    for o, (ox, oy) in zip(objs, zip(sx[: len(objs)], sy[: len(objs)])):
        x0 = int(round(ox)) - STAMP_PIX // 2
        y0 = int(round(oy)) - STAMP_PIX // 2
        img = np.zeros((STAMP_PIX, STAMP_PIX))
        m = 40
        near = (sx > x0 - m) & (sx < x0 + STAMP_PIX + m) & (sy > y0 - m) & (sy < y0 + STAMP_PIX + m)
        for j in np.flatnonzero(near):
            ra, dec, flux, r_e, n, q, pa = sources[j]
            _render_source(img, sx[j] - x0, sy[j] - y0, flux, r_e / PIXSCALE, n, q, pa)
        img = gaussian_filter(img, psf_sigma, mode="constant")
        rng = survey._rng(seed, "stamp-noise", o.object_id)
        img += rng.standard_normal(img.shape) * sigma_pix
        # the WCS cards (CRPIX moved to this stamp, comments kept), then the stamp's own
        items = dict(wcs_cards)
        items["CRPIX1"] = (wcs_cards["CRPIX1"][0] - x0, wcs_cards["CRPIX1"][1])
        items["CRPIX2"] = (wcs_cards["CRPIX2"][0] - y0, wcs_cards["CRPIX2"][1])
        items.update({
            "BUNIT": ("uJy", "microJansky per pixel"),
            "PHOTZP": (23.9, "AB magnitude zero point of 1 pixel value unit"),
            "FILTER": BAND.upper(), "TELESCOP": "JWST", "INSTRUME": "NIRCAM",
            "PIXSCALE": (PIXSCALE, "arcsec/pixel"), "PSFFWHM": (PSF_FWHM, "arcsec, Gaussian PSF"),
            "OBJID": o.object_id, "FIELD": field,
            "MOSX0": (x0, "0-based x of this stamp in the field mosaic"),
            "MOSY0": (y0, "0-based y of this stamp in the field mosaic"),
            "NOISE": (round(sigma_pix, 8), "1 sigma per pixel [uJy]"),
        })
        write_atomic(out / "stamps" / f"{o.object_id}.fits", stamp_bytes(img, items, 1 + (o.index % 10000)))
        stamps.append({"object_id": o.object_id, "file": f"stamps/{o.object_id}.fits", "ra": o.ra, "dec": o.dec,
                       "x0": x0, "y0": y0})
    index = {
        "format": "campfire-demo-imaging/1",
        "field": field,
        "band": BAND,
        "pixscale": PIXSCALE,
        "psf_fwhm": PSF_FWHM,
        "stamp_pix": STAMP_PIX,
        "bunit": "uJy",
        "noise_sigma": sigma_pix,
        "mosaic_shape": [MOSAIC_NPIX, MOSAIC_NPIX],
        "mosaic_wcs": {k: value for k, (value, _) in wcs_cards.items()},
        "observations": sorted(o.name for o in survey.OBSERVATIONS if o.field == field),
        "stamps": stamps,
    }
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    return {"field": field, "n_stamps": len(stamps)}
