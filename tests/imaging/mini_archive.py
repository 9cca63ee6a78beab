"""A tiny archive root in the demo's imaging layout, with known geometry.

Two catalog objects of one observation ('tobs_p1', aperture PA 30°): A at the origin
and B 1.0″ east / 0.9″ south of it, each a bright point source in its own 8″ stamp
(the stamps are pieces of one TAN mosaic, as in the demo), each with a 3-shutter
slitlet; B's northern nod shutter is stuck closed; one other MSA target's slitlet and
two stuck-closed shutters nearby. Everything is placed in arcsec offsets from A, so
tests know where every shutter and source must appear.
"""
from __future__ import annotations

import json
import math
import pathlib

import numpy as np

from campfire.imaging import offsets_to_sky

RA0, DEC0 = 34.40, -5.20  # object A
FIELD_CENTER = (34.41, -5.21)  # the mosaic's tangent point: not at the object, as in the demo
PIXSCALE = 0.04
STAMP = 200
PA = 30.0  # slit long axis, degrees east of north
PITCH = (0.27, 0.53)
OPEN = (0.20, 0.46)
OBS = "tobs_p1"
FIELD = "testf"
A_ID, B_ID = f"{OBS}_1001", f"{OBS}_1002"
B_OFFSET = (1.0, -0.9)  # east, north [arcsec] from A
A_IN_SHUTTER = (0.03, -0.05)  # A's offset from its shutter centre (across, along the slit) [arcsec]


def msa_axes(pa: float = PA) -> tuple[np.ndarray, np.ndarray]:
    """(xhat, yhat) in (east, north): y along the slit at PA east of north, x across it."""
    t = math.radians(pa)
    return np.array([math.cos(t), -math.sin(t)]), np.array([math.sin(t), math.cos(t)])


def shutter_corners(center_en: np.ndarray) -> np.ndarray:
    """Four (east, north) corners of a shutter's open area, in order around it."""
    xhat, yhat = msa_axes()
    ox, oy = OPEN
    return np.array([center_en + sx * ox / 2 * xhat + sy * oy / 2 * yhat for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))])


def slitlet_centres(source_en, in_shutter=(0.0, 0.0)) -> list[np.ndarray]:
    """Centres (east, north) of the source shutter and its two nods (south-ish, north-ish)."""
    xhat, yhat = msa_axes()
    centre = np.asarray(source_en, float) - in_shutter[0] * xhat - in_shutter[1] * yhat
    return [centre - PITCH[1] * yhat, centre, centre + PITCH[1] * yhat]


def _shutter_json(center_en, state: str, role: str | None, ident: tuple[int, int, int]) -> dict:
    corners = shutter_corners(np.asarray(center_en, float))
    ra, dec = offsets_to_sky(corners[:, 0], corners[:, 1], RA0, DEC0)
    cra, cdec = offsets_to_sky(center_en[0], center_en[1], RA0, DEC0)
    out = {"quadrant": ident[0], "row": ident[1], "column": ident[2], "ra": float(cra), "dec": float(cdec),
           "state": state, "corners": [[float(a), float(d)] for a, d in zip(ra, dec)]}
    if role:
        out["role"] = role
    return out


def expected_shutters() -> dict[str, list[np.ndarray]]:
    """The (east, north) corner arrays of every shutter by category."""
    a = slitlet_centres((0.0, 0.0), A_IN_SHUTTER)
    b = slitlet_centres(B_OFFSET)
    filler = slitlet_centres((-1.2, 0.6))
    stuck = [np.array([-0.4, -1.3]), np.array([0.9, 1.1])]
    return {
        "target": [shutter_corners(c) for c in a],
        "other": [shutter_corners(c) for c in b[:2]] + [shutter_corners(c) for c in filler],
        "stuck_closed": [shutter_corners(b[2])] + [shutter_corners(c) for c in stuck],
    }


def _shutter_doc() -> dict:
    a = slitlet_centres((0.0, 0.0), A_IN_SHUTTER)
    b = slitlet_centres(B_OFFSET)
    filler = slitlet_centres((-1.2, 0.6))
    stuck = [np.array([-0.4, -1.3]), np.array([0.9, 1.1])]
    b_ra, b_dec = offsets_to_sky(*B_OFFSET, RA0, DEC0)
    roles = ("nod", "source", "nod")
    return {
        "format": "campfire-demo-shutters/1",
        "observation": OBS,
        "field": FIELD,
        "pa_aper": PA,
        "shutter_pitch": list(PITCH),
        "shutter_open": list(OPEN),
        "targets": [
            {"target_id": A_ID, "object_id": A_ID, "source_id": 1001, "ra": RA0, "dec": DEC0,
             "shutters": [_shutter_json(c, "open", r, (1, 100 + k, 50)) for k, (c, r) in enumerate(zip(a, roles))]},
            {"target_id": B_ID, "object_id": B_ID, "source_id": 1002, "ra": float(b_ra), "dec": float(b_dec),
             "shutters": [_shutter_json(c, "stuck_closed" if k == 2 else "open", r, (1, 200 + k, 60))
                          for k, (c, r) in enumerate(zip(b, roles))]},
        ],
        "other_open": [
            {"source_id": 555555, "shutters": [_shutter_json(c, "open", r, (2, 10 + k, 5))
                                               for k, (c, r) in enumerate(zip(filler, roles))]},
        ],
        # B's stuck nod is listed here too, as the demo does: it must be drawn once
        "stuck_closed": [_shutter_json(b[2], "stuck_closed", None, (1, 202, 60))]
        + [_shutter_json(c, "stuck_closed", None, (3, 1 + k, 1)) for k, c in enumerate(stuck)],
    }


def _mosaic_wcs():
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(FIELD_CENTER)
    w.wcs.crpix = [4096.5, 4096.5]
    w.wcs.cd = np.array([[-PIXSCALE / 3600, 0.0], [0.0, PIXSCALE / 3600]])
    return w


def _write_stamps(folder: pathlib.Path) -> list[dict]:
    from astropy.io import fits

    wcs = _mosaic_wcs()
    sources = [((0.0, 0.0), 40.0), (B_OFFSET, 15.0)]  # (east, north), peak in noise units
    entries = []
    for k, (object_id, (east, north)) in enumerate(((A_ID, (0.0, 0.0)), (B_ID, B_OFFSET))):
        ra, dec = offsets_to_sky(east, north, RA0, DEC0)
        cx, cy = wcs.world_to_pixel_values(ra, dec)
        x0, y0 = int(round(float(cx))) - STAMP // 2, int(round(float(cy))) - STAMP // 2
        yy, xx = np.mgrid[:STAMP, :STAMP]
        img = np.random.default_rng(k).normal(0.0, 1.0, (STAMP, STAMP))
        for (se, sn), peak in sources:
            sra, sdec = offsets_to_sky(se, sn, RA0, DEC0)
            sx, sy = wcs.world_to_pixel_values(sra, sdec)
            img += peak * np.exp(-((xx - (sx - x0)) ** 2 + (yy - (sy - y0)) ** 2) / (2 * 1.5**2))
        hdr = wcs.to_header()
        hdr["CRPIX1"] -= x0
        hdr["CRPIX2"] -= y0
        hdr["FILTER"] = "F444W"
        (folder / "stamps").mkdir(parents=True, exist_ok=True)
        hdu = fits.CompImageHDU(img.astype(np.float32), header=hdr, name="SCI")
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(folder / "stamps" / f"{object_id}.fits", overwrite=True)
        entries.append({"object_id": object_id, "file": f"stamps/{object_id}.fits", "ra": float(ra), "dec": float(dec),
                        "x0": x0, "y0": y0})
    return entries


def _write_catalog(root: pathlib.Path) -> None:
    from campfire.catalog.schema import create_catalog

    conn = create_catalog(root / "meta" / "campfire.db", owner="pipeline")
    now = "2026-01-01T00:00:00"
    conn.execute("INSERT INTO programs VALUES (9999, 'TEST', 'A test program', 'Tester, T.', 1)")
    conn.execute("INSERT INTO observations VALUES (?, 9999, ?, ?, ?, ?, ?)", (OBS, FIELD, RA0, DEC0, PA - 138.5, now))
    b_ra, b_dec = offsets_to_sky(*B_OFFSET, RA0, DEC0)
    for oid, ra, dec in ((A_ID, RA0, DEC0), (B_ID, float(b_ra), float(b_dec))):
        r, d = math.radians(ra), math.radians(dec)
        conn.execute(
            "INSERT INTO objects (object_id, field, ra, dec, cx, cy, cz, redshift, redshift_quality, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 3.0, 0, ?)",
            (oid, FIELD, ra, dec, math.cos(d) * math.cos(r), math.cos(d) * math.sin(r), math.sin(d), now),
        )
        sid = oid.rsplit("_", 1)[1]
        spec_id = f"{OBS}_prism_clear_{sid}"
        conn.execute(
            "INSERT INTO spectra (spectrum_id, object_id, target_id, observation, program_id, grating, filter, "
            "fits_path, signal_to_noise, dq_flags, updated_at) VALUES (?, ?, ?, ?, 9999, 'PRISM', 'CLEAR', ?, 10, 0, ?)",
            (spec_id, oid, oid, OBS, f"products/{OBS}/{spec_id}.spec.fits", now),
        )
        for vis in ("*", ""):
            conn.execute("INSERT INTO object_aggregates (visibility, object_id, n_spectra, max_snr, max_exposure_time, "
                         "programs, gratings, redshift) VALUES (?, ?, 1, 10, 1000, 'TEST', 'PRISM', 3.0)", (vis, oid))
    conn.commit()
    conn.close()


def build_mini_root(root: pathlib.Path) -> pathlib.Path:
    """Write the tiny archive root (catalog + imaging) and return it."""
    _write_catalog(root)
    folder = root / "imaging" / FIELD
    (folder / "shutters").mkdir(parents=True, exist_ok=True)
    stamps = _write_stamps(folder)
    index = {"format": "campfire-demo-imaging/1", "field": FIELD, "band": "f444w", "pixscale": PIXSCALE,
             "stamp_pix": STAMP, "stamps": stamps, "observations": [OBS]}
    (folder / "index.json").write_text(json.dumps(index))
    (folder / "shutters" / f"{OBS}.json").write_text(json.dumps(_shutter_doc()))
    return root
