"""The DJA merged table (CSV, CSV.gz, ECSV or FITS): per-file facts, grades and photometry.

The columns are those of the public DJA NIRSpec merged table v4 (dawn-cph/dja,
``_posts/2025-05-01-nirspec-merged-table-v4.md``; summary in DJA-TABLE.md). An ingest uses:

* ``file`` (required): the spectrum file name — the row describes the input file of
  that name;
* identity, when a file does not carry it: ``root`` (observation), ``srcid``,
  ``grating``, ``filter``, ``ra``/``dec``, ``exptime``, and the program from the JWST
  names in ``msamet``/``dataset`` (``jw{prog:05d}...``);
* inspection: ``grade``, ``z_best`` (``zgrade``), ``reviewer``, ``comment``
  (:mod:`campfire.archive.grades`);
* photometry: ``phot_{band}_tot_1`` / ``phot_{band}_etot_1`` [μJy] and ``z_phot``;
* ``dq_flags`` (campfire's extension, not a DJA column): flag names (``CONTAMINATION,
  BAD_BACKGROUND``) or an integer, OR-ed into the flags derived from the data.

Every other column is read and left alone. A table that cannot be read, a row without
a file name, two rows for one file, a bad grade and an unknown band each become a
problem (``(source, reason)``); the rest of the table is used.

Examples
--------
>>> facts = identity_facts({'root': 'gds-udeep-v4', 'srcid': 20128771, 'msamet': 'jw03215001002_02_msa.fits'})
>>> facts['program_id'], facts['root']
(3215, 'gds-udeep-v4')
"""
from __future__ import annotations

import math
import os
import pathlib
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from campfire.archive.names import program_from_jwst_name
from campfire.errors import ValidationError
from campfire.flags import DQFlags

__all__ = ["DJATable", "read_dja_table", "read_table_file", "identity_facts", "band_columns", "clean_value",
           "finite_float"]

_PHOT = re.compile(r"^phot_(?P<band>[a-z0-9]+)_tot_1$", re.IGNORECASE)
_PHOT_ERR = "phot_{band}_etot_1"


@dataclass
class DJATable:
    """The rows of a DJA merged table by file name, and what was wrong with it."""

    path: str
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)   # file name -> row (clean values)
    row_numbers: dict[str, int] = field(default_factory=dict)       # file name -> 1-based row number
    bands: dict[str, tuple[str, str]] = field(default_factory=dict)  # band -> (flux column, error column)
    problems: list[tuple[str, str]] = field(default_factory=list)

    def where(self, name: str) -> str:
        """``"<table> row N"`` for messages."""
        return f"{self.path} row {self.row_numbers.get(name, '?')}"


def clean_value(value: Any) -> Any:
    """A table cell as a plain Python value: masked / NaN / empty → None, numpy scalars unwrapped."""
    if value is None or value is np.ma.masked:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        value = value.strip()
        return value if value and value.lower() not in ("--", "nan", "none", "null") else None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_table_file(path: str | os.PathLike):
    """An astropy Table from a CSV (``.csv``, ``.csv.gz``), ECSV or FITS file.

    Raises
    ------
    ValidationError
        The file cannot be read as a table of that kind.
    """
    from astropy.table import Table

    p = pathlib.Path(path).expanduser()
    low = p.name.lower()
    if low.endswith((".fits", ".fits.gz", ".fit")):
        fmt = "fits"
    elif low.endswith((".ecsv", ".ecsv.gz")):
        fmt = "ascii.ecsv"
    elif low.endswith((".csv", ".csv.gz")):
        fmt = "ascii.csv"
    else:
        raise ValidationError(f"{p}: expected a .csv, .csv.gz, .ecsv or .fits table")
    try:
        return Table.read(p, format=fmt)
    except FileNotFoundError as err:
        raise ValidationError(f"{p}: no such file") from err
    except Exception as err:  # astropy raises many kinds on a malformed file
        raise ValidationError(f"{p}: cannot read it as a {fmt} table ({type(err).__name__}: {err})") from err


def identity_facts(row: dict[str, Any]) -> dict[str, Any]:
    """What a table row says about a file's identity (passed to the per-file step).

    Keys: ``root``, ``srcid``, ``grating``, ``filter``, ``ra``, ``dec``, ``exptime``,
    ``program_id`` (from ``msamet``/``dataset``), ``dq_flags`` (int); absent values None.
    """
    program = program_from_jwst_name(row.get("msamet")) or program_from_jwst_name(row.get("dataset"))
    return {
        "root": row.get("root"),
        "srcid": row.get("srcid"),
        "grating": row.get("grating"),
        "filter": row.get("filter"),
        "ra": finite_float(row.get("ra")),
        "dec": finite_float(row.get("dec")),
        "exptime": finite_float(row.get("exptime")),
        "program_id": program,
        "dq_flags": row.get("_dq_flags", 0),
    }


def finite_float(value) -> float | None:
    """``float(value)`` when that is a finite number, else None (the cells and keywords of foreign files).

    Examples
    --------
    >>> finite_float('2.5'), finite_float('nan'), finite_float(None)
    (2.5, None, None)
    """
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _flags(value) -> int:
    """A ``dq_flags`` cell: an integer or flag names separated by commas, '|' or spaces."""
    if value is None:
        return 0
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value < 0 or value >= 1 << len(DQFlags):
            raise ValidationError(f"dq_flags: {value} has bits outside the {len(DQFlags)} DQ flags")
        return int(value)
    names = [n for n in re.split(r"[,|\s]+", str(value).strip().upper()) if n]
    out = 0
    for n in names:
        if n.isdigit():
            out |= _flags(int(n))
        elif n in DQFlags.__members__:
            out |= int(DQFlags[n])
        else:
            raise ValidationError(f"dq_flags: unknown flag {n!r}; known: {', '.join(DQFlags.__members__)}")
    return out


def band_columns(colnames, known: set[str]) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """The ``phot_{band}_tot_1`` columns with their error columns, and the unknown bands' columns."""
    lower = {c.lower(): c for c in colnames}
    bands, unknown = {}, []
    for low, col in lower.items():
        m = _PHOT.match(low)
        if not m:
            continue
        band = m["band"].lower()
        if band not in known:
            unknown.append(col)
            continue
        err = lower.get(_PHOT_ERR.format(band=band))
        if err is not None:
            bands[band] = (col, err)
    return bands, unknown


def read_dja_table(path: str | os.PathLike) -> DJATable:
    """Read a DJA merged table; problems are collected, never raised (see the module docstring).

    Examples
    --------
    >>> t = read_dja_table('/nonexistent/dja.csv')
    >>> t.rows, t.problems[0][1]
    ({}, '/nonexistent/dja.csv: no such file')
    """
    from campfire.bands import known_bands

    text = str(path)
    out = DJATable(text)
    try:
        table = read_table_file(path)
    except ValidationError as err:
        out.problems.append((text, str(err)))
        return out
    cols = {c.lower(): c for c in table.colnames}
    if "file" not in cols:
        out.problems.append((text, "the table has no 'file' column; expected the DJA merged table (file, srcid, ra, "
                                   "dec, grating, filter, root, ..., z_best, grade, reviewer, comment)"))
        return out
    out.bands, unknown = band_columns(table.colnames, set(known_bands()))
    for col in unknown:
        band = _PHOT.match(col.lower())["band"]
        out.problems.append((f"{text} column {col}", f"unknown band {band!r}: not a campfire band "
                                                     f"(campfire.bands.known_bands()); its photometry is not attached"))
    wanted = {"file", "root", "srcid", "grating", "filter", "ra", "dec", "exptime", "msamet", "dataset", "z_best",
              "zgrade", "grade", "reviewer", "comment", "z_phot", "dq_flags"}
    wanted |= {c for pair in out.bands.values() for c in pair}
    present = [cols[c] for c in sorted(wanted & set(cols)) if c in cols] + \
              [c for pair in out.bands.values() for c in pair]
    present = list(dict.fromkeys(present))
    for i, raw in enumerate(table[present] if present else table, start=1):
        row = {name.lower(): clean_value(raw[name]) for name in present}
        where = f"{text} row {i}"
        name = row.get("file")
        if not name:
            out.problems.append((where, "no file name in the 'file' column"))
            continue
        name = str(name).rsplit("/", 1)[-1]
        if name in out.rows:
            out.problems.append((where, f"file {name} is also described by row {out.row_numbers[name]}; that row is used"))
            continue
        try:
            row["_dq_flags"] = _flags(row.get("dq_flags"))
            if row.get("grade") is not None:
                from campfire.archive.grades import quality_from_dja_grade

                quality_from_dja_grade(row["grade"])
        except ValidationError as err:
            out.problems.append((where, f"{err}; the row is not used"))
            continue
        row["phot"] = _photometry(row, out.bands)
        out.rows[name] = row
        out.row_numbers[name] = i
    return out


def _photometry(row: dict[str, Any], bands: dict[str, tuple[str, str]]) -> dict[str, tuple[float, float]]:
    phot = {}
    for band, (fcol, ecol) in bands.items():
        flux, err = finite_float(row.get(fcol.lower())), finite_float(row.get(ecol.lower()))
        if flux is not None and err is not None and err > 0:
            phot[band] = (flux, err)
    return phot
