"""Who a real spectrum file is: IDs, program, observation and field, from its name and headers.

The rules, in order (DESIGN.md "IDs"):

* **DJA v4 names** ``{root}_{grating}-{filter}_{prog}_{srcid}.spec.fits`` give the
  observation (``root``, e.g. ``stark-rxcj2248-v4``), the configuration, the program and
  the source ID; the headers must agree on the configuration.
* **Other names** (older msaexp files, renamed files): GRATING/FILTER from the headers;
  the source ID from SOURCEID/SRCID (or the tail of SRCNAME, or the table's ``srcid``);
  the observation from the table's ``root``, else the file name without its
  ``_{srcid}`` tail and ``.spec.fits``.
* **Program**: the PROGRAM keyword, else the file name, else the table row (its
  ``msamet``/``dataset`` JWST file names, ``jw{prog:05d}...``), else SRCNAME
  ``{prog}_{srcid}`` (the JWST pipeline's default source name), else the MSAMETFL /
  FILENAME keywords, else :data:`PLACEHOLDER_PROGRAM` — ingest never stops for it.
* IDs: ``spectrum_id = <observation>_<grating>_<filter>_<source_id>``, ``target_id =
  <observation>_<source_id>``, lower-case.
* **Field** of an observation (:func:`field_for`): a well-known deep field when the
  pointing lies in it (:data:`KNOWN_FIELDS`), else the field of an already known
  observation within :data:`FIELD_RADIUS_DEG`, else a coordinate name
  ``jHHMM[p|m]DDMM`` (the style of DJA's ``borg-0037m3337`` roots).

Examples
--------
>>> parse_dja_name('stark-rxcj2248-v4_g140m-f100lp_2478_3.spec.fits')
DJAName(root='stark-rxcj2248-v4', grating='G140M', filter='F100LP', program_id=2478, source_id='3')
>>> spectrum_id('stark-rxcj2248-v4', 'G140M', 'F100LP', '3')
'stark-rxcj2248-v4_g140m_f100lp_3'
>>> field_for(342.19, -44.54, [])
'j2248m4432'
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from campfire.catalog.filters import KNOWN_GRATINGS
from campfire.errors import FileFormatError

__all__ = [
    "DJAName",
    "Identity",
    "PLACEHOLDER_PROGRAM",
    "KNOWN_FILTERS",
    "KNOWN_FIELDS",
    "FIELD_RADIUS_DEG",
    "parse_dja_name",
    "program_from_jwst_name",
    "spectrum_id",
    "target_id",
    "coordinate_name",
    "separation_deg",
    "field_for",
    "resolve_identity",
]

KNOWN_FILTERS = ("CLEAR", "F070LP", "F100LP", "F170LP", "F290LP")

# (program_id, slug, name): the program of files that name none (no PROGRAM keyword, no
# table row, no {prog}_{srcid} source name). Public, like every program without programs.yaml.
PLACEHOLDER_PROGRAM = (0, "unassigned", "Program not known (no PROGRAM keyword, table row or source name)")

_DJA = re.compile(
    rf"^(?P<root>.+)_(?P<grating>{'|'.join(g.lower() for g in KNOWN_GRATINGS)})"
    rf"-(?P<filter>{'|'.join(f.lower() for f in KNOWN_FILTERS)})_(?P<prog>\d+)_(?P<src>-?[A-Za-z0-9]+)\.spec\.fits$",
    re.IGNORECASE,
)
_JWST = re.compile(r"^jw(\d{5})\d{6}", re.IGNORECASE)
_SRCNAME = re.compile(r"^(\d{3,5})_(-?[A-Za-z0-9]+)$")
_UNSAFE = re.compile(r"[^a-z0-9._+-]+")

# Well-known deep fields: name → (RA, Dec, radius) in degrees. A pointing inside one
# belongs to it; DJA roots and the demo use these names.
KNOWN_FIELDS: dict[str, tuple[float, float, float]] = {
    "gds": (53.125, -27.80, 0.5),       # GOODS-South / HUDF (JADES)
    "gdn": (189.23, 62.24, 0.5),        # GOODS-North
    "uds": (34.40, -5.20, 0.8),         # UKIDSS UDS (PRIMER, RUBIES, EXCELS)
    "cosmos": (150.12, 2.21, 1.2),      # COSMOS
    "egs": (214.90, 52.90, 0.8),        # Extended Groth Strip (CEERS)
    "abell2744": (3.58, -30.40, 0.3),   # Abell 2744 (UNCOVER, GLASS)
}
FIELD_RADIUS_DEG = 0.5  # observations this close share a (coordinate-named) field


@dataclass(frozen=True)
class DJAName:
    """The parts of a DJA v4 file name."""

    root: str
    grating: str
    filter: str
    program_id: int
    source_id: str


@dataclass(frozen=True)
class Identity:
    """Who a spectrum file is (see the module docstring for the rules)."""

    spectrum_id: str
    target_id: str
    observation: str
    source_id: str
    program_id: int
    program_from: str  # header, name, table, srcname, msa-file, placeholder
    grating: str
    filter: str


def parse_dja_name(name: str) -> DJAName | None:
    """The parts of a DJA v4 ``*.spec.fits`` file name, or None when it does not follow the scheme."""
    m = _DJA.match(name)
    if m is None:
        return None
    return DJAName(_safe(m["root"]), m["grating"].upper(), m["filter"].upper(), int(m["prog"]), m["src"].lower())


def program_from_jwst_name(name: Any) -> int | None:
    """The proposal ID of a JWST file name (``jw01345062001_...`` → 1345), else None.

    Examples
    --------
    >>> program_from_jwst_name('jw02478051001_01_msa.fits')
    2478
    """
    if not isinstance(name, str):
        return None
    m = _JWST.match(name.strip().rsplit("/", 1)[-1])
    return int(m.group(1)) if m else None


def _safe(text: Any) -> str:
    """Lower-case ID text with anything outside [a-z0-9._+-] turned into '-'."""
    return _UNSAFE.sub("-", str(text).strip().lower()).strip("-")


def spectrum_id(observation: str, grating: str, filt: str, source_id: str) -> str:
    """``<observation>_<grating>_<filter>_<source_id>`` in lower case."""
    return f"{_safe(observation)}_{_safe(grating)}_{_safe(filt)}_{_safe(source_id)}"


def target_id(observation: str, source_id: str) -> str:
    """``<observation>_<source_id>`` in lower case."""
    return f"{_safe(observation)}_{_safe(source_id)}"


def coordinate_name(ra: float, dec: float) -> str:
    """A field name from a position: ``j`` + RA hours/minutes + ``p``/``m`` + Dec degrees/arcmin.

    Examples
    --------
    >>> coordinate_name(69.946, -52.7318)
    'j0439m5243'
    """
    minutes = int(math.floor((ra % 360.0) / 15.0 * 60.0 + 1e-9))
    arcmin = int(math.floor(abs(dec) * 60.0 + 1e-9))
    sign = "p" if dec >= 0 else "m"
    return f"j{minutes // 60:02d}{minutes % 60:02d}{sign}{arcmin // 60:02d}{arcmin % 60:02d}"


def separation_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance [deg] between two positions [deg] (haversine: exact at arcsec scales)."""
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    s = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin((r2 - r1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(s))))


def field_for(ra: float, dec: float, known: Iterable[tuple[str, float, float]]) -> str:
    """The field of an observation pointing at (ra, dec) degrees.

    Parameters
    ----------
    ra, dec : float
        The pointing (or the first source's position).
    known : iterable of (field, ra, dec)
        Observations already in the archive (or met earlier in this ingest).
    """
    for name, (fra, fdec, radius) in KNOWN_FIELDS.items():
        if separation_deg(ra, dec, fra, fdec) <= radius:
            return name
    best = min(((separation_deg(ra, dec, r, d), f) for f, r, d in known if r is not None and d is not None),
               default=None)
    if best is not None and best[0] <= FIELD_RADIUS_DEG:
        return best[1]
    return coordinate_name(ra, dec)


def _header_program(header: Mapping[str, Any]) -> int | None:
    value = header.get("PROGRAM")
    try:
        return int(str(value).strip()) if value not in (None, "") else None
    except ValueError:
        return None


def _header_source(header: Mapping[str, Any]) -> str | None:
    for key in ("SOURCEID", "SRCID"):
        value = header.get(key)
        if value not in (None, ""):
            return _safe(value)
    m = _SRCNAME.match(str(header.get("SRCNAME", "")).strip())
    return _safe(m.group(2)) if m else None


def resolve_identity(name: str, header: Mapping[str, Any], table: Mapping[str, Any] | None = None) -> Identity:
    """The IDs of a spectrum file from its name, headers and (optional) DJA table row.

    Parameters
    ----------
    name : str
        The file name (no folders).
    header : mapping
        The merged primary + SPEC1D header (``SpectrumData.header``).
    table : mapping, optional
        The file's row of the DJA merged table (keys ``root``, ``srcid``, ``program_id``).

    Raises
    ------
    FileFormatError
        The name's configuration disagrees with the headers, or no grating/filter or
        source ID can be found.
    """
    table = table or {}
    head_grating = str(header.get("GRATING", "") or "").strip().upper()
    head_filter = str(header.get("FILTER", "") or "").strip().upper()
    dja = parse_dja_name(name)
    program_id, program_from = _header_program(header), "header"
    if dja is not None:
        if (head_grating and head_grating != dja.grating) or (head_filter and head_filter != dja.filter):
            raise FileFormatError(
                f"{name}: the file name says {dja.grating}/{dja.filter} but the headers say "
                f"{head_grating or '?'}/{head_filter or '?'}; the file was renamed or is not what its name says"
            )
        observation, grating, filt, source = dja.root, dja.grating, dja.filter, dja.source_id
        if program_id is None:
            program_id, program_from = dja.program_id, "name"
    else:
        grating = head_grating or str(table.get("grating") or "").upper()
        filt = head_filter or str(table.get("filter") or "").upper()
        if not grating or not filt:
            raise FileFormatError(f"{name}: no GRATING/FILTER keywords (SPEC1D or primary header) and no table row "
                                  "giving them; expected an msaexp/DJA spectrum")
        source = _header_source(header) or (_safe(table["srcid"]) if table.get("srcid") not in (None, "") else None)
        if not source:
            raise FileFormatError(f"{name}: no source ID (SOURCEID, SRCID or SRCNAME keyword, or table srcid)")
        stem = name[: -len(".spec.fits")] if name.lower().endswith(".spec.fits") else name.rsplit(".", 1)[0]
        if table.get("root"):
            observation = _safe(table["root"])
        elif stem.lower().endswith(f"_{source}"):
            observation = _safe(stem[: -len(source) - 1])
        else:
            observation = _safe(stem)
    if program_id is None and table.get("program_id") is not None:
        program_id, program_from = int(table["program_id"]), "table"
    if program_id is None:
        m = _SRCNAME.match(str(header.get("SRCNAME", "")).strip())
        if m:
            program_id, program_from = int(m.group(1)), "srcname"
    if program_id is None:
        for key in ("MSAMETFL", "FILENAME", "SFILE000"):
            program_id = program_from_jwst_name(header.get(key))
            if program_id is not None:
                program_from = "msa-file"
                break
    if program_id is None:
        program_id, program_from = PLACEHOLDER_PROGRAM[0], "placeholder"
    return Identity(
        spectrum_id=spectrum_id(observation, grating, filt, source),
        target_id=target_id(observation, source),
        observation=_safe(observation),
        source_id=source,
        program_id=int(program_id),
        program_from=program_from,
        grating=grating,
        filter=filt,
    )
