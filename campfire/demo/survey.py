"""The demo survey: programs, fields, observations and the plan of every target.

:func:`make_plan` turns ``(size, seed)`` into a :class:`Plan` — every object with its
position, SED parameters, morphology, photometry catalog, and the spectra each of its
observations took (configuration, exposure time, shutter, detector placement, flags
that follow from that placement). The plan is pure and cheap; the builder turns it
into files. The same seed gives the same plan.

The MSA of every observation is a lattice of shutters (pitch 0.27″ × 0.53″, open area
0.20″ × 0.46″, 4 quadrants of 365 × 171) centred on the pointing and rotated to the
aperture position angle ``pa_aper`` (the direction of the slit's long axis, east of
north). A target sits in one shutter with an offset (dx, dy) from its centre, the
slitlet is that shutter and its two neighbours along the slit, and the stuck-closed
shutters are a fixed property of the MSA (:func:`is_stuck`).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import math
from dataclasses import dataclass, field

import numpy as np

from campfire.demo import instrument as ins
from campfire.demo.sed import SEDParams, draw_sed_params
# LOW_SNR <=> signal_to_noise < 3; PARTIAL_COVERAGE <=> finite span < 95% of the nominal range:
# the definitions every archive shares (the ingest of real products too)
from campfire.tasks.quality import LOW_SNR_THRESHOLD, PARTIAL_COVERAGE_FRACTION

__all__ = [
    "PROGRAMS",
    "FIELDS",
    "OBSERVATIONS",
    "PHOT_CATALOGS",
    "EXAMPLE",
    "PROPRIETARY_PROGRAMS",
    "Plan",
    "make_plan",
    "tan_project",
    "tan_deproject",
    "is_stuck",
    "msa_cell",
    "shutter_center",
    "V3_IDL_Y_ANGLE",
    "OFF_CENTER_DX",
    "OFF_CENTER_DY",
    "LOW_SNR_THRESHOLD",
    "PARTIAL_COVERAGE_FRACTION",
]

REDUCTION_VERSION = "v4.2"
OFF_CENTER_DX = 0.05  # arcsec: OFF_CENTER <=> |dx| > 0.05" or |dy| > 0.12"
OFF_CENTER_DY = 0.12
V3_IDL_Y_ANGLE = 138.5  # demo convention: pa_aper = pa_v3 + 138.5 (approximately NIRSpec's)

# --------------------------------------------------------------------------------------
# programs, fields, observations (fictional programs with JWST-like proposal IDs)


@dataclass(frozen=True)
class Program:
    program_id: int
    slug: str
    name: str
    pi: str
    is_public: bool


PROGRAMS: tuple[Program, ...] = (
    Program(5224, "EMBER-UDS", "EMBER: Emission-line and Broad-line Extragalactic Reconnaissance in UDS",
            "Okafor, N.", True),
    Program(5387, "KINDLE-COSMOS", "KINDLE: Kinematics and Ionisation of Distant Line Emitters in COSMOS",
            "Lindqvist, S.", True),
    Program(4871, "ASH-GDS", "ASH: A Spectroscopic Haul in GOODS-South", "Moreau, C.", True),
    Program(4512, "CINDER-EGS", "CINDER: Continuum and Interstellar Diagnostics of EGS Reddened galaxies",
            "Tanaka, H.", True),
    Program(6032, "EMBER-DEEP", "EMBER-DEEP: ultra-deep follow-up of EMBER little red dots", "Okafor, N.", False),
)
PROPRIETARY_PROGRAMS: tuple[str, ...] = tuple(p.slug for p in PROGRAMS if not p.is_public)
_PROGRAM_BY_SLUG = {p.slug: p for p in PROGRAMS}

FIELDS = {  # field centres [deg]
    "uds": (34.4050, -5.2000),
    "cosmos": (150.1000, 2.3300),
    "gds": (53.1400, -27.8000),
    "egs": (214.9200, 52.8800),
}

# photometric catalog per field: (name, [(band, 5σ depth AB)])
PHOT_CATALOGS = {
    "uds": ("UVCANDELS", [("f606w", 27.8), ("f814w", 27.5), ("f125w", 27.2), ("f160w", 27.1),
                          ("f150w", 28.6), ("f277w", 28.9), ("f356w", 28.9), ("f444w", 28.6)]),
    "cosmos": ("COSMOS-Web", [("f814w", 27.2), ("f115w", 27.3), ("f150w", 27.6), ("f277w", 28.0),
                              ("f444w", 27.8)]),
    "gds": ("JADES", [("f435w", 28.4), ("f606w", 28.8), ("f775w", 28.3), ("f814w", 28.0), ("f090w", 29.2),
                      ("f115w", 29.4), ("f150w", 29.5), ("f200w", 29.6), ("f277w", 29.8), ("f356w", 29.8),
                      ("f410m", 29.3), ("f444w", 29.5)]),
    "egs": ("CEERS", [("f606w", 28.0), ("f814w", 27.7), ("f125w", 27.3), ("f160w", 27.3), ("f115w", 28.8),
                      ("f150w", 28.7), ("f200w", 28.9), ("f277w", 29.1), ("f356w", 29.0), ("f410m", 28.4),
                      ("f444w", 28.6)]),
}
PHOT_FLOOR = 0.02  # fractional calibration floor added in quadrature to the depth noise


@dataclass(frozen=True)
class Observation:
    name: str
    slug: str
    field: str
    offset: tuple[float, float]  # pointing offset from the field centre [arcsec east, north]
    pa_aper: float  # deg
    day: int  # days after the survey's start date
    configs: tuple[tuple[str, float, float], ...]  # (config key, fraction of targets, exptime [s])
    weight: float  # share of the objects whose first observation this is
    throughput: float  # flux-calibration factor of the slit loss
    psf_scale: float  # PSF FWHM multiplier

    @property
    def program(self) -> Program:
        return _PROGRAM_BY_SLUG[self.slug]


OBSERVATIONS: tuple[Observation, ...] = (
    Observation("cinder_egs_p2", "CINDER-EGS", "egs", (0.0, 0.0), 130.0, 0,
                (("PRISM/CLEAR", 1.0, 3107.0), ("G140M/F100LP", 0.55, 3107.0), ("G235M/F170LP", 0.5, 3107.0),
                 ("G395M/F290LP", 0.65, 3107.0)),
                0.13, 0.97, 1.00),
    Observation("ash_gds_p1", "ASH-GDS", "gds", (0.0, 0.0), 298.0, 35,
                (("PRISM/CLEAR", 1.0, 9979.0), ("G140M/F070LP", 0.35, 7440.0), ("G235M/F170LP", 0.5, 7440.0),
                 ("G395M/F290LP", 0.5, 7440.0)),
                0.15, 1.03, 0.95),
    Observation("kindle_cosmos_p1", "KINDLE-COSMOS", "cosmos", (-60.5, 75.5), 72.0, 122,
                (("PRISM/CLEAR", 1.0, 5690.0), ("G235M/F170LP", 0.65, 5690.0), ("G395M/F290LP", 0.5, 5690.0)),
                0.13, 0.93, 1.05),
    Observation("kindle_cosmos_p2", "KINDLE-COSMOS", "cosmos", (-20.0, 40.0), 75.0, 125,
                (("PRISM/CLEAR", 1.0, 4202.0), ("G140M/F100LP", 0.4, 4202.0), ("G395M/F290LP", 0.65, 4202.0)),
                0.12, 1.00, 1.10),
    Observation("ember_uds_p1", "EMBER-UDS", "uds", (-40.0, 25.0), 250.0, 221,
                (("PRISM/CLEAR", 1.0, 3063.0), ("G140M/F100LP", 0.4, 3063.0), ("G395M/F290LP", 0.7, 3063.0)),
                0.13, 0.95, 1.00),
    Observation("ember_uds_p4", "EMBER-UDS", "uds", (10.0, -15.0), 252.0, 225,
                (("PRISM/CLEAR", 1.0, 2889.0), ("G140M/F100LP", 0.5, 4377.0), ("G395M/F290LP", 0.6, 4377.0)),
                0.13, 1.02, 1.08),
    Observation("ember_deep_uds_p1", "EMBER-DEEP", "uds", (-15.0, 5.0), 49.0, 403,
                (("PRISM/CLEAR", 1.0, 27680.0), ("G395M/F290LP", 0.7, 19980.0)),
                0.10, 0.98, 0.97),
    Observation("ember_deep_cosmos_p1", "EMBER-DEEP", "cosmos", (-45.0, 60.0), 44.0, 409,
                (("PRISM/CLEAR", 1.0, 27680.0), ("G140M/F100LP", 0.5, 19980.0)),
                0.11, 1.01, 1.02),
)
_OBS_BY_NAME = {o.name: o for o in OBSERVATIONS}

# (home observation, other observation, fraction of the home's objects also targeted there)
OVERLAPS = (
    ("ember_uds_p1", "ember_uds_p4", 0.12),
    ("ember_uds_p1", "ember_deep_uds_p1", 0.15),
    ("ember_uds_p4", "ember_deep_uds_p1", 0.15),
    ("kindle_cosmos_p1", "kindle_cosmos_p2", 0.15),
    ("kindle_cosmos_p1", "ember_deep_cosmos_p1", 0.12),
    ("kindle_cosmos_p2", "ember_deep_cosmos_p1", 0.12),
)

EXAMPLE = {
    "object_id": "ember_uds_p4_123456",
    "observation": "ember_uds_p4",
    "source_id": 123456,
    "sed_type": "lrd",
    "z": 3.4210,
    "photo_z": 3.51,
    "configs": ("PRISM/CLEAR", "G140M/F100LP", "G395M/F290LP"),
}
CONE_EXAMPLE = (150.0832, 2.3511, 30.0)  # the reference's cone search (ra, dec, radius ")

SIZES = {
    "small": {"n_objects": 240, "n_spectra": 460},
    "full": {"n_objects": 2450, "n_spectra": 7200},
}
_TYPE_FRACTIONS = {"sf": 0.42, "hae": 0.15, "lae": 0.11, "qg": 0.09, "blagn": 0.10, "lrd": 0.13}
_SIZE_RANGES = {  # half-light radius [arcsec], Sérsic n
    "sf": ((0.08, 0.30), (0.8, 1.5)),
    "hae": ((0.06, 0.25), (0.8, 1.5)),
    "lae": ((0.04, 0.15), (0.8, 1.5)),
    "qg": ((0.06, 0.25), (2.5, 4.0)),
    "blagn": ((0.06, 0.25), (1.0, 2.5)),
    "lrd": ((0.015, 0.05), (1.0, 1.0)),
}

# MSA lattice: 2 x 2 quadrants of 365 columns (dispersion, x) x 171 rows (slit, y)
MSA_NCOL, MSA_NROW = 2 * 365, 2 * 171
DETECTOR = {"gap_start": 2048.0, "gap_px": 100.0, "end": 4196.0}
STUCK_FRACTION = 0.05


def start_date(seed: int) -> _dt.date:
    """The survey's first observing day: fixed for a seed, never the clock."""
    return _dt.date(2022, 12, 1) + _dt.timedelta(days=int(seed) % 97)


def observation_date(obs: Observation, seed: int) -> str:
    return (start_date(seed) + _dt.timedelta(days=obs.day)).isoformat() + "T00:00:00"


def reduction_time(seed: int) -> str:
    """The ``updated_at`` of every demo row (the pipeline's reduction date)."""
    return (start_date(seed) + _dt.timedelta(days=760)).isoformat() + "T12:00:00Z"


# --------------------------------------------------------------------------------------
# geometry


def tan_project(ra, dec, ra0: float, dec0: float):
    """Gnomonic projection: (ra, dec) [deg] → (ξ east, η north) [arcsec] about (ra0, dec0)."""
    a, d = np.radians(ra), np.radians(dec)
    a0, d0 = math.radians(ra0), math.radians(dec0)
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    xi = np.cos(d) * np.sin(a - a0) / cosc
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc
    return np.degrees(xi) * 3600.0, np.degrees(eta) * 3600.0


def tan_deproject(xi, eta, ra0: float, dec0: float):
    """Inverse of :func:`tan_project`: (ξ, η) [arcsec] → (ra, dec) [deg]."""
    x, y = np.radians(np.asarray(xi, float) / 3600.0), np.radians(np.asarray(eta, float) / 3600.0)
    d0 = math.radians(dec0)
    rho = np.hypot(x, y)
    c = np.arctan(rho)
    with np.errstate(invalid="ignore", divide="ignore"):
        dec = np.where(rho > 0, np.arcsin(np.cos(c) * np.sin(d0) + y * np.sin(c) * np.cos(d0) / np.where(rho > 0, rho, 1)),
                       d0)
    ra = math.radians(ra0) + np.arctan2(x * np.sin(c), rho * np.cos(d0) * np.cos(c) - y * np.sin(d0) * np.sin(c))
    return np.degrees(ra) % 360.0, np.degrees(dec)


def pointing(obs: Observation) -> tuple[float, float]:
    """The MSA centre (ra, dec) of an observation."""
    ra0, dec0 = FIELDS[obs.field]
    if obs.name == "kindle_cosmos_p1":  # the reference's cone-search position
        return CONE_EXAMPLE[0], CONE_EXAMPLE[1]
    ra, dec = tan_deproject(obs.offset[0], obs.offset[1], ra0, dec0)
    return float(ra), float(dec)


def _msa_axes(pa_aper: float):
    t = math.radians(pa_aper)
    yhat = np.array([math.sin(t), math.cos(t)])  # along the slit, in (east, north)
    xhat = np.array([math.cos(t), -math.sin(t)])  # across (dispersion)
    return xhat, yhat


def msa_xy(obs: Observation, ra, dec):
    """MSA-frame coordinates (x across, y along the slit) [arcsec] of sky positions."""
    ra0, dec0 = pointing(obs)
    xi, eta = tan_project(ra, dec, ra0, dec0)
    xhat, yhat = _msa_axes(obs.pa_aper)
    return xi * xhat[0] + eta * xhat[1], xi * yhat[0] + eta * yhat[1]


def msa_cell(obs: Observation, ra, dec):
    """(col, row, dx, dy) of the shutter containing each position, 0-based over the whole MSA."""
    x, y = msa_xy(obs, ra, dec)
    px, py = ins.SHUTTER_PITCH
    col = np.floor(x / px + MSA_NCOL / 2).astype(int)
    row = np.floor(y / py + MSA_NROW / 2).astype(int)
    dx = x - (col - MSA_NCOL / 2 + 0.5) * px
    dy = y - (row - MSA_NROW / 2 + 0.5) * py
    return col, row, dx, dy


def shutter_center(obs: Observation, col, row):
    """Sky position (ra, dec) of shutter centres."""
    px, py = ins.SHUTTER_PITCH
    x = (np.asarray(col) - MSA_NCOL / 2 + 0.5) * px
    y = (np.asarray(row) - MSA_NROW / 2 + 0.5) * py
    xhat, yhat = _msa_axes(obs.pa_aper)
    xi, eta = x * xhat[0] + y * yhat[0], x * xhat[1] + y * yhat[1]
    ra0, dec0 = pointing(obs)
    return tan_deproject(xi, eta, ra0, dec0)


def quadrant(col: int, row: int) -> tuple[int, int, int]:
    """(quadrant 1-4, row, column) in the 1-based per-quadrant convention."""
    q = 1 + (col >= 365) + 2 * (row >= 171)
    return int(q), int(row % 171) + 1, int(col % 365) + 1


def is_stuck(col, row, seed: int) -> np.ndarray:
    """Whether MSA shutters are stuck closed (a property of the MSA, same in every observation)."""
    shape = np.broadcast(np.asarray(col), np.asarray(row)).shape
    col = np.atleast_1d(np.asarray(col)).astype(np.uint64)
    row = np.atleast_1d(np.asarray(row)).astype(np.uint64)
    # a splitmix64-style hash: uint64 arrays wrap around silently, as intended
    h = col * np.uint64(0x9E3779B97F4A7C15) + row * np.uint64(0xBF58476D1CE4E5B9) + np.uint64((int(seed) + 1) * 0x94D049BB)
    h ^= h >> np.uint64(31)
    h *= np.uint64(0xD6E8FEB86659FD93)
    h ^= h >> np.uint64(29)
    out = (h >> np.uint64(11)).astype(np.float64) / float(1 << 53) < STUCK_FRACTION
    return out.reshape(shape)


def _inside_msa(col, row):
    return (col >= 0) & (col < MSA_NCOL) & (row >= 1) & (row < MSA_NROW - 1)


# --------------------------------------------------------------------------------------
# the plan


@dataclass
class SpectrumPlan:
    spectrum_id: str
    config: str
    exptime: float
    shift: float  # sub-pixel grid shift
    det_start: float  # detector pixel of the nominal blue end
    contamination: bool
    bad_background: bool
    seed_key: tuple  # entropy for this spectrum's noise


@dataclass
class TargetPlan:
    observation: str
    source_id: int
    col: int
    row: int
    dx: float
    dy: float
    stuck_neighbours: tuple[int, ...]  # which of the slitlet's rows (+1/-1) are stuck closed
    spectra: list[SpectrumPlan] = field(default_factory=list)

    @property
    def target_id(self) -> str:
        return f"{self.observation}_{self.source_id}"


@dataclass
class ObjectPlan:
    index: int
    object_id: str
    field: str
    ra: float
    dec: float
    sed: SEDParams
    r_e: float  # arcsec
    sersic_n: float
    axis_ratio: float
    pa: float  # deg
    phot_catalog: str | None
    targets: list[TargetPlan] = field(default_factory=list)
    forced: dict = field(default_factory=dict)  # inspection overrides (example object, query guarantees)


@dataclass
class Plan:
    size: str
    seed: int
    objects: list[ObjectPlan]

    @property
    def spectra(self):
        for o in self.objects:
            for t in o.targets:
                for s in t.spectra:
                    yield o, t, s

    def counts(self) -> dict[str, int]:
        return {
            "observations": len({t.observation for o in self.objects for t in o.targets}),
            "objects": len(self.objects),
            "spectra": sum(1 for _ in self.spectra),
        }


def _rng(seed: int, *key) -> np.random.Generator:
    """A generator keyed by (seed, key...): independent of call order and worker."""
    ints = [int(seed)]
    for k in key:
        ints.append(k if isinstance(k, int) else int.from_bytes(hashlib.sha256(str(k).encode()).digest()[:4], "little"))
    return np.random.default_rng(np.random.SeedSequence(ints))


def _draw_offset(rng: np.random.Generator) -> tuple[float, float]:
    """A target's offset from its shutter centre: mostly centred, some off-centre."""
    if rng.random() < 0.85:
        return float(rng.uniform(-0.045, 0.045)), float(rng.uniform(-0.11, 0.11))
    if rng.random() < 0.5:
        return float(rng.choice([-1, 1]) * rng.uniform(0.055, 0.085)), float(rng.uniform(-0.11, 0.11))
    return float(rng.uniform(-0.045, 0.045)), float(rng.choice([-1, 1]) * rng.uniform(0.13, 0.20))


def _usable(obs: Observation, ra, dec, seed: int, margin: tuple[float, float] = (0.085, 0.20)):
    """Whether a position can be targeted: inside the MSA, inside an open area, central shutter not stuck."""
    col, row, dx, dy = msa_cell(obs, np.atleast_1d(ra), np.atleast_1d(dec))
    ok = _inside_msa(col, row) & (np.abs(dx) <= margin[0]) & (np.abs(dy) <= margin[1])
    ok &= ~is_stuck(col, row, seed)
    return ok, col, row, dx, dy


def _allocate(total: int, weights: dict[str, float]) -> dict[str, int]:
    keys = list(weights)
    w = np.array([weights[k] for k in keys], float)
    raw = w / w.sum() * total
    n = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - n))[: total - n.sum()]:
        n[i] += 1
    return dict(zip(keys, n.tolist()))


def make_plan(size: str = "small", seed: int = 0, *, n_objects: int | None = None,
              n_spectra: int | None = None) -> Plan:
    """The deterministic plan of a demo archive.

    Parameters
    ----------
    size : {'small', 'full'}
        The preset sizes (see :data:`SIZES`).
    seed : int
        Everything random derives from it.
    n_objects, n_spectra : int, optional
        Override the preset counts (tests build reduced archives this way).

    Returns
    -------
    Plan

    Examples
    --------
    >>> plan = make_plan('small', seed=0)
    >>> plan.counts()['objects']
    240
    """
    preset = SIZES[size]
    n_obj = int(n_objects or preset["n_objects"])
    n_spec = int(n_spectra or preset["n_spectra"])
    if n_obj < 40:
        from campfire.errors import ValidationError

        raise ValidationError(f"n_objects: at least 40 so that every feature is represented, got {n_obj}")
    rng = _rng(seed, "plan")

    # --- SED types: stratified so every type is present at any size
    counts = _allocate(n_obj - 1, _TYPE_FRACTIONS)
    types = [t for t, k in counts.items() for _ in range(k)]
    rng.shuffle(types)

    # --- home observation of each object (the example is object 0)
    homes_n = _allocate(n_obj - 1, {o.name: o.weight for o in OBSERVATIONS})
    homes = [n for n, k in homes_n.items() for _ in range(k)]
    rng.shuffle(homes)
    homes = ["ember_uds_p4"] + homes
    types = ["lrd"] + types

    # --- extra observations per object (multi-program objects)
    extras: list[list[str]] = [[] for _ in range(n_obj)]
    for home, other, frac in OVERLAPS:
        idx = [i for i in range(1, n_obj) if homes[i] == home]
        k = int(round(frac * len(idx)))
        for i in rng.choice(idx, size=k, replace=False) if k else []:
            extras[int(i)].append(other)

    objects: list[ObjectPlan] = []
    used_ids: dict[str, set] = {o.name: set() for o in OBSERVATIONS}
    used_ids["ember_uds_p4"].add(EXAMPLE["source_id"])
    for i in range(n_obj):
        orng = _rng(seed, "object", i)
        home = _OBS_BY_NAME[homes[i]]
        obs_list = [home] + [_OBS_BY_NAME[n] for n in sorted(set(extras[i]), key=lambda n: _OBS_BY_NAME[n].day)]
        # position: a shutter of the home MSA + an offset; the others must see it in an open shutter
        for _attempt in range(500):
            if i == 0:
                # near the MSA centre, in a slitlet with no stuck shutter: a clean example
                col, row = 300, 200 + _attempt
                dx, dy = 0.004, -0.012
                if bool(is_stuck(col, row - 1, seed)) or bool(is_stuck(col, row + 1, seed)):
                    continue
            else:
                near_cone = home.name == "kindle_cosmos_p1" and i % 9 == 0
                span = (60, 40) if near_cone else (MSA_NCOL // 2 - 2, MSA_NROW // 2 - 2)
                col = int(MSA_NCOL // 2 + orng.integers(-span[0], span[0]))
                row = int(MSA_NROW // 2 + orng.integers(-span[1], span[1]))
                dx, dy = _draw_offset(orng)
            if is_stuck(col, row, seed):
                continue
            px, py = ins.SHUTTER_PITCH
            x = (col - MSA_NCOL / 2 + 0.5) * px + dx
            y = (row - MSA_NROW / 2 + 0.5) * py + dy
            xhat, yhat = _msa_axes(home.pa_aper)
            ra0, dec0 = pointing(home)
            ra, dec = tan_deproject(x * xhat[0] + y * yhat[0], x * xhat[1] + y * yhat[1], ra0, dec0)
            ra, dec = float(ra), float(dec)
            if all(_usable(o, ra, dec, seed)[0][0] for o in obs_list[1:]):
                break
        else:  # pragma: no cover - the overlaps are generous
            obs_list = [home]
        # source ids: unique per observation
        targets = []
        for obs in obs_list:
            if i == 0:
                sid = EXAMPLE["source_id"]
            else:
                while True:
                    sid = int(orng.integers(1000, 99999)) if obs.slug != "ASH-GDS" else int(orng.integers(10000, 300000))
                    if sid not in used_ids[obs.name]:
                        used_ids[obs.name].add(sid)
                        break
            ok, c, r, ddx, ddy = _usable(obs, ra, dec, seed, margin=(1.0, 1.0))
            c, r = int(c[0]), int(r[0])
            stuck = tuple(k for k in (-1, 1) if bool(is_stuck(c, r + k, seed)))
            targets.append(TargetPlan(obs.name, sid, c, r, float(ddx[0]), float(ddy[0]), stuck))
        sed_type = types[i]
        if i == 0:
            sed = draw_sed_params(orng, "lrd", z=EXAMPLE["z"])
            sed = SEDParams(**{**sed.__dict__, "norm": 1.6})
        else:
            sed = draw_sed_params(orng, sed_type)
        (re_lo, re_hi), (n_lo, n_hi) = _SIZE_RANGES[sed.sed_type]
        r_e = float(np.exp(orng.uniform(np.log(re_lo), np.log(re_hi))))
        has_phot = i == 0 or orng.random() < 0.88
        obj = ObjectPlan(
            index=i,
            object_id=f"{obs_list[0].name}_{targets[0].source_id}",
            field=home.field,
            ra=round(ra, 7),
            dec=round(dec, 7),
            sed=sed,
            r_e=round(r_e, 4),
            sersic_n=round(float(orng.uniform(n_lo, n_hi)), 2),
            axis_ratio=round(float(orng.uniform(0.35, 1.0)) if sed.sed_type != "lrd" else float(orng.uniform(0.8, 1.0)), 3),
            pa=round(float(orng.uniform(0.0, 180.0)), 1),
            phot_catalog=PHOT_CATALOGS[home.field][0] if has_phot else None,
            targets=targets,
        )
        if i == 0:
            obj.forced = {"redshift_quality": 4, "redshift_inspected": EXAMPLE["z"], "photo_z": EXAMPLE["photo_z"]}
        objects.append(obj)

    _assign_spectra(objects, n_spec, seed)
    _guarantees(objects, seed)
    return Plan(size=size, seed=int(seed), objects=objects)


def _spectrum(obj: ObjectPlan, t: TargetPlan, key: str, exptime: float, seed: int) -> SpectrumPlan:
    cfg = ins.CONFIGS[key]
    srng = _rng(seed, "spectrum", obj.index, t.observation, key)
    c = t.col / MSA_NCOL
    if cfg.is_prism:
        det_start = 100.0 + c * 3800.0
    else:
        det_start = -150.0 + c * 2700.0
    if obj.index == 0:
        det_start = 900.0 if cfg.is_prism else 300.0  # the example: no gap, full coverage
    shift = 0.0 if obj.index == 0 and cfg.is_prism else float(np.clip(0.5 * t.dx / 0.1, -0.5, 0.5))
    return SpectrumPlan(
        spectrum_id=f"{t.observation}_{cfg.grating}_{cfg.filter}_{t.source_id}".lower(),
        config=key,
        exptime=float(exptime),
        shift=round(shift, 4),
        det_start=round(det_start, 2),
        contamination=bool(srng.random() < 0.06) and obj.index != 0,
        bad_background=bool(srng.random() < 0.04) and obj.index != 0,
        seed_key=("spectrum-noise", obj.index, t.observation, key),
    )


def _assign_spectra(objects: list[ObjectPlan], n_spec: int, seed: int) -> None:
    """Give each target its dispersers, then add/remove grating spectra to hit ``n_spec``."""
    rng = _rng(seed, "spectra")
    optional: list[tuple[ObjectPlan, TargetPlan, str, float]] = []
    for obj in objects:
        for t in obj.targets:
            obs = _OBS_BY_NAME[t.observation]
            nods = 1.0 if obj.index == 0 else float(rng.choice([1.0, 1.0, 1.0, 2 / 3, 1 / 3]))
            for key, frac, exptime in obs.configs:
                if obj.index == 0:
                    take = key in EXAMPLE["configs"]
                else:
                    take = frac >= 1.0 or rng.random() < frac
                if take:
                    t.spectra.append(_spectrum(obj, t, key, round(exptime * nods, 1), seed))
                elif frac < 1.0:
                    optional.append((obj, t, key, round(exptime * nods, 1)))
    total = sum(len(t.spectra) for o in objects for t in o.targets)
    if total < n_spec:
        picks = rng.permutation(len(optional))[: n_spec - total]
        for j in sorted(picks.tolist()):
            obj, t, key, exptime = optional[j]
            t.spectra.append(_spectrum(obj, t, key, exptime, seed))
    elif total > n_spec:
        removable = [(o, t, s) for o in objects if o.index != 0 for t in o.targets for s in t.spectra
                     if not ins.CONFIGS[s.config].is_prism]
        for j in sorted(rng.permutation(len(removable))[: total - n_spec].tolist(), reverse=True):
            o, t, s = removable[j]
            t.spectra.remove(s)
    order = {key: k for k, key in enumerate(ins.CONFIGS)}
    for o in objects:
        for t in o.targets:
            t.spectra.sort(key=lambda s: order[s.config])
    # every target keeps at least one spectrum
    for o in objects:
        o.targets = [t for t in o.targets if t.spectra] or o.targets[:1]


def _guarantees(objects: list[ObjectPlan], seed: int) -> None:
    """Make the reference's query examples return rows at every size."""
    cosmos_hi = [o for o in objects if o.field == "cosmos" and 4.2 <= o.sed.z <= 7.8]
    for o in cosmos_hi[:4]:
        o.forced.setdefault("redshift_quality", 4 if o.index % 2 else 3)
