"""The ``catalog`` demo size: 1,000,000 spectra of catalog rows, no FITS files.

For query and sync benchmarks. Built with vectorised numpy and ``executemany`` (no
simulation): 40 programs (the demo's five, including the proprietary EMBER-DEEP,
plus generated ones, three more of them proprietary) in 12 fields, ≈ 2,400 MSA
observations of ≈ 150 targets, ≈ 10 % of targets re-observing an earlier object of
the same field, PRISM for every target plus M gratings, photometry for most objects.

Because no file exists, the file columns are stand-ins: ``file_hash`` is the sha256
of ``"<spectrum_id>:<seed>"`` (it looks like a real hash and is stable for a seed),
``file_size`` is what such a file would weigh, and ``local_files`` is empty. Signal-to-
noise, flags and redshifts are drawn, not measured; ``LOW_SNR`` is still set exactly
where ``signal_to_noise < 3``.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import math
import pathlib
import sys
import time

import numpy as np

from campfire.bands import band_pivot
from campfire.catalog.aggregates import refresh_standard_aggregates
from campfire.catalog.db import catalog_path, write_meta
from campfire.catalog.inspections import add_inspections
from campfire.catalog.schema import create_catalog, finalize_catalog
from campfire.catalog.writer import CatalogWriter
from campfire.demo import survey
from campfire.demo.identity import DEMO_REVIEWER, demo_meta, write_build_marker, write_system_tags
from campfire.demo.sed import REDSHIFT_RANGES

__all__ = ["build_catalog", "N_SPECTRA"]

N_SPECTRA = 1_000_000
_EXTRA_FIELDS = {
    "gdn": (189.2282, 62.2400), "abell2744": (3.5800, -30.4000), "sep": (80.4900, -69.5000),
    "nep": (260.7000, 65.8000), "macs0416": (64.0380, -24.0700), "el-gordo": (15.7400, -49.2500),
    "cosmos-3d": (150.2000, 2.1000), "uds-south": (34.3000, -5.4000),
}
_GRATING_SETS = [("G140M", "F100LP", 0.45), ("G235M", "F170LP", 0.45), ("G395M", "F290LP", 0.55),
                 ("G140M", "F070LP", 0.15)]
_NPIX = {"PRISM": 1024, "G140M": 1541, "G235M": 1482, "G395M": 1375}
_RANGE = {"PRISM/CLEAR": (0.6, 5.3), "G140M/F070LP": (0.70, 1.27), "G140M/F100LP": (0.97, 1.89),
          "G235M/F170LP": (1.66, 3.17), "G395M/F290LP": (2.87, 5.27)}


def build_catalog(root: pathlib.Path, seed: int = 0, progress: bool = True,
                  n_spectra: int = N_SPECTRA) -> dict[str, int]:
    """Write ``<root>/meta/campfire.db`` with ``n_spectra`` catalog rows (no FITS files).

    Parameters
    ----------
    root : pathlib.Path
        The archive root to write (its catalog is created).
    seed : int
        Everything random derives from it.
    progress : bool
        Print timings of the stages to stderr.
    n_spectra : int
        Spectra rows to write.

    Returns
    -------
    dict
        ``{'observations', 'objects', 'spectra'}`` written.
    """
    t0 = time.perf_counter()

    def say(msg):
        if progress:
            print(f"  [{time.perf_counter() - t0:5.1f} s] {msg}", file=sys.stderr)

    rng = survey._rng(seed, "catalog")
    stamp = survey.reduction_time(seed)
    fields = {**survey.FIELDS, **_EXTRA_FIELDS}
    field_names = sorted(fields)

    # --- programs: the demo's five + generated ones
    programs = [(p.program_id, p.slug, p.name, p.pi, int(p.is_public)) for p in survey.PROGRAMS]
    words = ["GLOW", "SPARK", "FLARE", "BLAZE", "TORCH", "EMBERS", "ASHES", "HEARTH", "KINDLING", "SMOKE", "FLINT"]
    used = {p[0] for p in programs}
    k = 0
    while len(programs) < 40:
        pid = int(rng.integers(1000, 9999))
        if pid in used:
            continue
        used.add(pid)
        slug = f"{words[k % len(words)]}-{k:02d}"
        programs.append((pid, slug, f"{slug}: a generated survey of the catalog benchmark", f"PI {k:02d}",
                         0 if k % 12 == 5 else 1))
        k += 1
    prog_ids = np.array([p[0] for p in programs])
    prog_fields = {p[0]: list(rng.choice(field_names, size=int(rng.integers(1, 4)), replace=False))
                   for p in programs}

    # --- observations and targets, until the spectra count is reached
    obs_rows, t_obs, t_nspec_conf = [], [], []
    conf_keys = ["PRISM/CLEAR"] + [f"{g}/{f}" for g, f, _ in _GRATING_SETS]
    total = 0
    obs_counter: dict[str, int] = {}
    day0 = survey.start_date(seed)
    while total < n_spectra:
        pid = int(rng.choice(prog_ids))
        slug = next(p[1] for p in programs if p[0] == pid)
        field = str(rng.choice(prog_fields[pid]))
        base = f"{slug.lower().replace('-', '_')}_{field.replace('-', '')}"
        obs_counter[base] = obs_counter.get(base, 0) + 1
        name = f"{base}_p{obs_counter[base]}"
        ra0, dec0 = fields[field]
        ra, dec = survey.tan_deproject(rng.uniform(-300, 300), rng.uniform(-300, 300), ra0, dec0)
        day = int(rng.integers(0, 900))
        obs_rows.append((name, pid, field, round(float(ra), 7), round(float(dec), 7),
                         round(float(rng.uniform(0, 360)), 3), (day0 + _dt.timedelta(days=day)).isoformat() + "T00:00:00"))
        n_t = int(rng.poisson(150))
        probs = np.array([1.0] + [p for _, _, p in _GRATING_SETS]) * (rng.random(len(conf_keys)) < 0.8)
        probs[0] = 1.0
        take = rng.random((n_t, len(conf_keys))) < probs[None, :]
        t_obs += [len(obs_rows) - 1] * n_t
        t_nspec_conf.append(take)
        total += int(take.sum())
    take = np.vstack(t_nspec_conf)
    t_obs = np.array(t_obs)
    # trim the surplus from the last targets' gratings (PRISM stays)
    surplus = int(take.sum()) - n_spectra
    if surplus > 0:
        idx = np.argwhere(take[:, 1:])[::-1][:surplus]
        take[idx[:, 0], idx[:, 1] + 1] = False
    n_t = take.shape[0]
    say(f"{len(obs_rows)} observations, {n_t} targets")

    # --- objects: ~10% of targets re-observe an earlier target's object in the same field
    obs_day = np.array([r[6] for r in obs_rows])
    obs_field = np.array([r[2] for r in obs_rows])
    order = np.lexsort((np.arange(n_t), obs_day[t_obs]))  # targets in time order
    rank = np.empty(n_t, int)
    rank[order] = np.arange(n_t)
    obj_of = np.arange(n_t)
    tf = obs_field[t_obs]
    for f in field_names:
        members = order[tf[order] == f]  # this field's targets in time order
        if members.size < 2:
            continue
        rep = rng.random(members.size) < 0.10
        rep[0] = False
        pos = np.flatnonzero(rep)
        earlier = (rng.random(pos.size) * pos).astype(int)
        obj_of[members[pos]] = members[earlier]
    for _ in range(64):  # resolve chains (a repeat of a repeat)
        nxt = obj_of[obj_of]
        if np.array_equal(nxt, obj_of):
            break
        obj_of = nxt
    first_targets = np.flatnonzero(obj_of == np.arange(n_t))
    # an object's targets in one observation: keep one (re-targeting in one MSA is rare)
    n_obj = first_targets.size
    say(f"{n_obj} objects")

    # source ids unique per observation
    source_id = np.empty(n_t, np.int64)
    for o in range(len(obs_rows)):
        sel = np.flatnonzero(t_obs == o)
        source_id[sel] = rng.choice(np.arange(1000, 999999), size=sel.size, replace=False)
    obs_names = np.array([r[0] for r in obs_rows])
    target_id = np.char.add(np.char.add(obs_names[t_obs], "_"), source_id.astype(str))
    object_id_of_target = target_id[obj_of]

    # object attributes (indexed by first-target position)
    ob_index = {int(t): i for i, t in enumerate(first_targets)}
    obj_idx_of_target = np.array([ob_index[int(t)] for t in obj_of])
    ra_p = np.array([r[3] for r in obs_rows])[t_obs[first_targets]]
    dec_p = np.array([r[4] for r in obs_rows])[t_obs[first_targets]]
    # within an MSA footprint (~3.2' x 3') of the first observation's pointing
    o_ra = np.round((ra_p + rng.uniform(-95, 95, n_obj) / 3600.0 / np.cos(np.radians(dec_p))) % 360.0, 7)
    o_dec = np.round(dec_p + rng.uniform(-90, 90, n_obj) / 3600.0, 7)
    types = rng.choice(list(survey._TYPE_FRACTIONS), size=n_obj, p=np.array(list(survey._TYPE_FRACTIONS.values())))
    z = np.empty(n_obj)
    for t, (lo, hi) in REDSHIFT_RANGES.items():
        sel = types == t
        z[sel] = np.clip(rng.normal(0.5 * (lo + hi), 0.25 * (hi - lo), sel.sum()), lo, hi)
    quality = rng.choice([0, 1, 2, 3, 4], size=n_obj, p=[0.25, 0.05, 0.15, 0.25, 0.30])
    z_auto = np.where(rng.random(n_obj) < 0.85, z + rng.normal(0, 0.002, n_obj) * (1 + z),
                      rng.uniform(0.1, 12, n_obj))
    z_insp = np.where(quality >= 2, np.round(z, 4), np.nan)
    z_best = np.where(quality >= 2, z_insp, z_auto)
    o_field = obs_field[t_obs[first_targets]]
    catalogs = {f: survey.PHOT_CATALOGS.get(f, ("ASTRODEEP-JWST", survey.PHOT_CATALOGS["gds"][1][4:]))
                for f in field_names}
    has_phot = rng.random(n_obj) < 0.85
    photo_z = np.round(np.maximum(0.01, z + rng.normal(0, 0.05, n_obj) * (1 + z)), 3)
    a, d = np.radians(o_ra), np.radians(o_dec)
    cx, cy, cz = np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)
    obj_ids = target_id[first_targets]

    # --- spectra rows
    ti, ci = np.nonzero(take)
    grat = np.array([c.split("/")[0] for c in conf_keys])[ci]
    filt = np.array([c.split("/")[1] for c in conf_keys])[ci]
    spec_ids = np.char.lower(np.char.add(np.char.add(np.char.add(np.char.add(np.char.add(
        obs_names[t_obs[ti]], "_"), grat), "_"), np.char.add(filt, "_")), source_id[ti].astype(str)))
    n_s = spec_ids.size
    snr = np.round(np.exp(rng.normal(np.log(6.0), 1.0, n_s)) * np.where(grat == "PRISM", 1.0, 0.4), 4)
    flags = np.zeros(n_s, np.int64)
    for bit, p in ((0, 0.0), (1, 0.06), (3, 0.04), (4, 0.03), (5, 0.09), (6, 0.12)):
        flags |= (rng.random(n_s) < p).astype(np.int64) << bit
    flags |= ((grat != "PRISM") & (rng.random(n_s) < 0.5)).astype(np.int64) << 0  # chip gaps
    flags |= ((grat == "PRISM") & (rng.random(n_s) < 0.1)).astype(np.int64) << 0
    flags |= (snr < survey.LOW_SNR_THRESHOLD).astype(np.int64) << 2
    exptime = np.round(rng.choice([2889.0, 3063.0, 4377.0, 5690.0, 9979.0, 27680.0], n_s) *
                       rng.choice([1.0, 1.0, 2 / 3, 1 / 3], n_s), 1)
    z_auto_s = z_auto[obj_idx_of_target[ti]] + rng.normal(0, 0.001, n_s)
    # the fit's 68% interval and confidence (a stream of their own: the rest of the catalog stays
    # as it was): right fits are narrow and sure, the 15% wrong ones mostly unsure
    fit_rng = survey._rng(seed, "catalog-fit")
    right = np.abs(z_auto_s - z[obj_idx_of_target[ti]]) < 0.01 * (1 + z[obj_idx_of_target[ti]])
    half = fit_rng.uniform(0.0003, 0.003, n_s) * (1 + z_auto_s)
    z_lo_s, z_hi_s = np.maximum(z_auto_s - half, 0.0), z_auto_s + half
    conf_s = np.where(right, fit_rng.uniform(0.85, 1.0, n_s), fit_rng.uniform(0.0, 0.7, n_s))
    npix = np.array([_NPIX[g] for g in grat])
    lo = np.array([_RANGE[c][0] for c in conf_keys])[ci]
    hi = np.array([_RANGE[c][1] for c in conf_keys])[ci]
    fsize = 2880 * np.ceil((npix * (12 * 15 + 40) + 40000) / 2880).astype(np.int64)
    say("spectra arrays")

    conn = create_catalog(catalog_path(root), owner="pipeline")
    writer = CatalogWriter(conn)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    try:
        with conn:
            write_meta(conn, demo_meta("catalog", seed, stamp))
            writer.add_programs(programs)
            writer.add_observations(obs_rows)
            tag_ids = write_system_tags(writer, stamp)

            def none(x):
                return None if (isinstance(x, float) and math.isnan(x)) else x

            catname = np.array([catalogs[f][0] for f in o_field])
            writer.add_objects(
                (str(obj_ids[i]), str(o_field[i]), float(o_ra[i]), float(o_dec[i]), float(cx[i]), float(cy[i]),
                 float(cz[i]), round(float(z_best[i]), 5), round(float(z_auto[i]), 5), none(float(z_insp[i])),
                 int(quality[i]), int(has_phot[i]), str(catname[i]) if has_phot[i] else None,
                 float(photo_z[i]) if has_phot[i] else None, 0.1 if has_phot[i] else None,
                 0.12 if has_phot[i] else None, stamp) for i in range(n_obj)
            )
            writer.index_objects()
            say("objects")
            writer.add_object_tags((tag_ids[str(t)], str(obj_ids[i])) for i, t in enumerate(types) if str(t) in tag_ids)
            phot = []
            for f in field_names:
                bands = catalogs[f][1]
                sel = np.flatnonzero(has_phot & (o_field == f))
                for band, depth in bands:
                    piv = band_pivot(band)
                    err = 10 ** (-0.4 * (depth - 23.9)) / 5
                    flux = np.exp(rng.normal(np.log(0.3), 1.0, sel.size))
                    phot += [(str(obj_ids[i]), band, float(fl), err, piv) for i, fl in zip(sel, flux)]
            writer.add_photometry(phot)
            say(f"{len(phot)} photometry rows")
            obs_prog = np.array([r[1] for r in obs_rows])
            so = t_obs[ti]
            obj_of_spec = object_id_of_target[ti]
            tid_of_spec = target_id[ti]
            prog_of_spec = obs_prog[so]
            obs_of_spec = obs_names[so]

            def rows():
                for j in range(n_s):
                    sid = str(spec_ids[j])
                    yield (sid, str(obj_of_spec[j]), str(tid_of_spec[j]), str(obs_of_spec[j]), int(prog_of_spec[j]),
                           str(grat[j]), str(filt[j]), f"products/{obs_of_spec[j]}/{sid}.spec.fits", float(snr[j]),
                           float(exptime[j]), survey.REDUCTION_VERSION, round(float(z_auto_s[j]), 5), int(flags[j]),
                           hashlib.sha256(f"{sid}:{seed}".encode()).hexdigest(), int(fsize[j]), int(npix[j]),
                           float(lo[j]), float(hi[j]), stamp, round(float(z_lo_s[j]), 5),
                           round(float(z_hi_s[j]), 5), round(float(conf_s[j]), 4))

            writer.add_spectra(rows())
            say(f"{n_s} spectra")
            # each grade is the demo team's inspection record resting on all of the object's spectra
            seen: dict[str, list] = {}
            for j in range(n_s):
                sid = str(spec_ids[j])
                seen.setdefault(str(obj_of_spec[j]), []).append(
                    (sid, hashlib.sha256(f"{sid}:{seed}".encode()).hexdigest()))
            add_inspections(conn, ({
                "object_id": str(obj_ids[i]), "reviewer": DEMO_REVIEWER, "quality": int(quality[i]),
                "redshift": none(float(z_insp[i])), "spectra_seen": seen[str(obj_ids[i])],
                "created_at": stamp, "recorded_at": stamp,
            } for i in range(n_obj) if quality[i] > 0 and str(obj_ids[i]) in seen), refresh=False)
            say("inspections")
            refresh_standard_aggregates(conn)
            say("aggregates")
            write_build_marker(conn, "catalog", seed)
        counts = {"observations": len(obs_rows), "objects": n_obj, "spectra": n_s}
        finalize_catalog(conn)  # planner statistics: cone searches use the R*Tree
        conn.execute("PRAGMA journal_mode = DELETE")
    finally:
        conn.close()
    return counts
