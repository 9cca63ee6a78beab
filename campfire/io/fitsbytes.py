"""FITS at the byte level: read headers, HDU extents and binary-table columns; write simple HDUs.

The 1D spectrum path (:func:`campfire.io.fits.read_spectrum_record`) needs two headers
and three table columns of a file that also holds 2D images, a profile and a redshift
fit. astropy builds every HDU, parses every card and decodes the table (≈ 3 ms a file,
≈ 17 ms through the old reader); this module reads only the header blocks (each HDU's
data is skipped by its declared size) and the table's bytes, with numpy (≈ 0.2 ms).

What it does not know it leaves to astropy: :class:`Unsupported` is raised for valid
layouts outside the common case (scaled, null-valued or vector columns, ASCII tables,
unknown card forms), and the caller reads the file with astropy instead. Corruption
(a truncated file, a header that declares more data than the file holds, axis counts
outside the standard's 0..999) is a :class:`~campfire.errors.FileFormatError` here,
before anything is allocated from a header.

Writing: the pipeline's own outputs (a primary HDU of keywords, a table of float64
columns, a float32 image, a bytes image for provenance JSON) are formatted here card by
card the way astropy formats them (≈ 1 ms a file instead of ≈ 25 ms); astropy reads them
back with the same keywords and values (the demo's spectrum files: the same bytes). A
RICE-compressed float32 image (the demo's imaging stamps) is the bytes astropy's
``CompImageHDU`` writes, its tiles compressed by astropy's own codecs, without the
header and table machinery around them (≈ 5× less CPU).
"""
from __future__ import annotations

import functools
import io
import os
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from campfire.errors import FileFormatError

__all__ = ["Unsupported", "HDUInfo", "FileSource", "scan_hdus", "check_counts_anywhere", "parse_header", "scan_keywords", "read_table_columns", "format_cards",
           "hdu_bytes", "primary_hdu", "bintable_hdu", "bytes_image_hdu", "float32_image_hdu",
           "rice_image_hdu"]

BLOCK = 2880
CARD = 80
MAX_AXES = 999  # the FITS standard's bound on NAXIS and TFIELDS
_BITPIX = {8, 16, 32, 64, -32, -64}
_SKIP_CARDS = {"COMMENT", "HISTORY", ""}
_END_HEAD = "END" + " " * 7  # the END card's first 10 columns (the rest of a header is padding)


class Unsupported(Exception):
    """A valid FITS layout this reader does not handle; read the file with astropy."""


_HEAD = 64 << 10  # the first read: the primary header and, in the archive's files, the 1D table
_WINDOW = 2 * 2880  # each later read fetches at least this much: an HDU's first card, then its header
_READ_AHEAD = 4 << 20  # files up to this size are read ahead whole by the kernel


class FileSource:
    """Random access to a file's bytes: ``pread`` through a small window on a local file, an
    fsspec file (its own block cache) for a URL, or bytes already in memory.

    A local file is not read whole: the archive's files hold 2D images after the 1D table,
    and copying ~300 kB to read ~30 kB cost more than the table. The kernel is asked to read
    a file of up to 4 MiB ahead whole (``POSIX_FADV_WILLNEED``), so a cold disk still serves it
    in one go.
    """

    def __init__(self, path: str | os.PathLike | bytes):
        self.path = path
        self._fd: int | None = None
        self._f = None
        self._start, self._buf = 0, b""
        if isinstance(path, bytes):  # a file already in memory
            self._f = io.BytesIO(path)
            self.size = len(path)
        elif isinstance(path, str) and "://" in path:
            import fsspec

            self._f = fsspec.open(path, "rb").open()
            size = getattr(self._f, "size", None)
            self.size = int(size) if size is not None else self._f.seek(0, os.SEEK_END)
        else:
            self._fd = os.open(os.fspath(path), os.O_RDONLY)
            try:
                self.size = os.fstat(self._fd).st_size
                if _HEAD < self.size <= _READ_AHEAD and hasattr(os, "posix_fadvise"):
                    os.posix_fadvise(self._fd, 0, self.size, os.POSIX_FADV_WILLNEED)
                self._buf = os.pread(self._fd, min(self.size, _HEAD), 0)
            except BaseException:
                os.close(self._fd)
                raise

    def read(self, offset: int, n: int) -> bytes:
        if self._fd is not None:
            if not (self._start <= offset and offset + n <= self._start + len(self._buf)):
                self._start, self._buf = offset, os.pread(self._fd, max(n, _WINDOW), offset)
            return self._buf[offset - self._start:offset - self._start + n]
        self._f.seek(offset)
        return self._f.read(n)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class HDUInfo:
    """One HDU: its raw header, structural keywords, and where its data unit lies."""

    index: int
    name: str
    xtension: str | None
    header: bytes
    keys: dict[str, Any]
    data_start: int
    data_size: int


# ------------------------------------------------------------------------------ cards
_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([EeDd][+-]?\d+)?\Z")


def _string_value(text: str) -> tuple[str, str] | None:
    """The quoted string at the start of ``text`` ('' escapes a quote) and what follows it."""
    out = []
    i = 1
    while True:
        j = text.find("'", i)
        if j < 0:
            return None
        out.append(text[i:j])
        if text[j + 1:j + 2] == "'":
            out.append("'")
            i = j + 2
            continue
        return "".join(out), text[j + 1:]


@functools.lru_cache(maxsize=8192)
def _value(text: str) -> Any:
    """A card's value field → str / bool / int / float; ``None`` for an empty value.

    Raises Unsupported for anything else (complex numbers, malformed values), so astropy
    decides what such a card means. Cached: most cards of an archive's files repeat from
    file to file (units, column formats, structure), and the values are immutable.
    """
    text = text.lstrip()
    if text.startswith("'"):
        parsed = _string_value(text)
        if parsed is None:
            raise Unsupported("unterminated string")
        value, rest = parsed
        rest = rest.strip()
        if rest and not rest.startswith("/"):
            raise Unsupported("text after a string value")
        return value.rstrip()
    token = text.partition("/")[0].strip()
    if not token:
        return None
    if token == "T":
        return True
    if token == "F":
        return False
    if _INT.match(token):
        return int(token)
    if _FLOAT.match(token):
        return float(token.replace("D", "E").replace("d", "e"))
    raise Unsupported(f"card value {token!r}")


def _cards(raw: bytes) -> list[str]:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as err:  # astropy decides (it reads such cards with a warning)
        raise Unsupported(f"a header holds non-ASCII bytes at {err.start}") from err
    return [text[i:i + CARD] for i in range(0, len(text), CARD)]


def parse_header(raw: bytes) -> dict[str, Any]:
    """The keyword → value pairs of a raw header (first occurrence wins; commentary skipped).

    Values are str (trailing blanks removed, CONTINUE cards joined), bool, int or float,
    as astropy gives them; keywords without a value are left out. ``HIERARCH A B`` cards
    are keyed ``'A B'``.

    Raises
    ------
    Unsupported
        A card form this parser does not know (astropy reads the header instead).
    """
    out: dict[str, Any] = {}
    cards = _cards(raw)
    n = len(cards)
    i = 0
    while i < n:
        card = cards[i]
        i += 1
        key = card[:8].rstrip()
        if key == "END":
            break
        if key in _SKIP_CARDS or key == "CONTINUE":
            continue
        if key == "HIERARCH":
            name, eq, rest = card[9:].partition("=")
            if not eq:
                continue
            key = " ".join(name.split())
            field = rest
        elif card[8:10] == "= ":
            field = card[10:]
        else:
            continue  # no value indicator: commentary text
        if key in out:
            continue
        value = _value(field)
        # long strings: 'abc&' followed by CONTINUE  'def' cards
        while isinstance(value, str) and value.endswith("&") and i < n and cards[i].startswith("CONTINUE"):
            more = _value(cards[i][8:])
            if not isinstance(more, str):
                raise Unsupported("CONTINUE card without a string")
            value = value[:-1] + more
            i += 1
        if value is not None:
            out[key] = value
    return out


def scan_keywords(raw: bytes, pattern: re.Pattern) -> dict[str, Any]:
    """The values of the keywords ``pattern`` matches (at card starts), without parsing the rest.

    ``pattern`` matches the first 10 columns of a card (``'NAXIS1  = '``); the structural
    keywords of every HDU and a table's column keywords are found this way, which costs
    a look-up per card up to END (each distinct card start is matched once per process)
    instead of a parse of every card.
    """
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as err:  # astropy decides (it reads such cards with a warning)
        raise Unsupported(f"a header holds non-ASCII bytes at {err.start}") from err
    out: dict[str, Any] = {}
    # card by card up to END: a search of the whole text tries the pattern at every byte (~4× slower)
    matches = _card_matcher(pattern)
    for start in range(0, len(text), CARD):
        head = text[start:start + 10]
        if head == _END_HEAD:
            break
        if matches(head):
            key = head[:8].rstrip()
            if key not in out:
                value = _value(text[start + 10:start + CARD])
                if value is not None:
                    out[key] = value
    return out


@functools.lru_cache(maxsize=16)
def _card_matcher(pattern: re.Pattern) -> Callable[[str], bool]:
    """Whether ``pattern`` matches a card's first 10 columns, remembered per distinct card start."""
    return functools.lru_cache(maxsize=4096)(lambda head: pattern.match(head) is not None)


# ------------------------------------------------------------------------------ HDUs
def _count(keys: dict, key: str, default: int, hi: int | None, where: str) -> int:
    value = keys.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (hi is not None and value > hi):
        raise FileFormatError(f"invalid {key} = {value!r} in {where}")
    return value


def _header_end(source: FileSource, start: int) -> bytes:
    """The raw header starting at ``start``, up to and including its END card's block."""
    chunks = []
    pos = start
    while True:
        block = source.read(pos, BLOCK)
        if len(block) < BLOCK:
            raise FileFormatError(
                f"the file is truncated: a header at byte {start:,} has no END card before the end of the file"
            )
        chunks.append(block)
        pos += BLOCK
        for off in range(0, BLOCK, CARD):
            if block[off:off + 3] == b"END" and not block[off + 3:off + CARD].strip():
                return b"".join(chunks)


def scan_hdus(source: FileSource) -> list[HDUInfo]:
    """Every HDU's header and data extent, checked against the file's size.

    Raises
    ------
    FileFormatError
        Not FITS, a truncated file, or a header that declares more than the file holds.
    Unsupported
        Something after the last HDU that is neither an extension nor padding.
    """
    hdus: list[HDUInfo] = []
    pos = 0
    size = source.size
    if source.read(0, 8) != b"SIMPLE  ":
        raise FileFormatError("not a readable FITS file (it does not start with a SIMPLE card)")
    while pos < size:
        if size - pos < BLOCK:
            if hdus and not source.read(pos, size - pos).strip(b"\0 "):
                break
            raise FileFormatError(f"the file is truncated ({size - pos} stray bytes after byte {pos:,})")
        if hdus and source.read(pos, 8) != b"XTENSION":
            if not source.read(pos, min(BLOCK, size - pos)).strip(b"\0 "):
                pos += BLOCK
                continue
            raise Unsupported(f"bytes after HDU {len(hdus) - 1} that are not an extension")
        raw = _header_end(source, pos)
        where = f"HDU {len(hdus)}"
        try:
            keys = scan_keywords(raw, _STRUCTURAL_CARDS)
        except Unsupported as err:
            if "non-ASCII" in str(err):
                raise
            raise FileFormatError(f"a structural keyword of {where} is unreadable ({err})") from None
        naxis = _count(keys, "NAXIS", 0, MAX_AXES, where)
        _count(keys, "TFIELDS", 0, MAX_AXES, where)
        bitpix = keys.get("BITPIX")
        if bitpix not in _BITPIX or isinstance(bitpix, bool):
            raise FileFormatError(f"invalid BITPIX = {bitpix!r} in {where}")
        nbytes = 0
        if naxis:
            first_axis = 2 if keys.get("GROUPS") is True and keys.get("NAXIS1") == 0 else 1
            n = 1
            for axis in range(first_axis, naxis + 1):
                n *= _count(keys, f"NAXIS{axis}", 0, None, where)
            gcount = _count(keys, "GCOUNT", 1, None, where)
            pcount = _count(keys, "PCOUNT", 0, None, where)
            nbytes = abs(bitpix) // 8 * gcount * (pcount + n)
        data_start = pos + len(raw)
        padded = -(-nbytes // BLOCK) * BLOCK
        if data_start + nbytes > size:
            name = str(keys.get("EXTNAME", "PRIMARY" if not hdus else ""))
            raise FileFormatError(
                f"HDU {len(hdus)} ({name}) declares {nbytes:,} bytes of data but the file holds "
                f"{max(size - data_start, 0):,}: the file is truncated or its header is corrupt"
            )
        if data_start + padded > size:
            raise FileFormatError(f"the file is truncated (HDU {len(hdus)} lacks the padding of its last block)")
        xtension = keys.get("XTENSION") if hdus else None
        name = str(keys.get("EXTNAME", "PRIMARY" if not hdus else "")).strip().upper()
        hdus.append(HDUInfo(len(hdus), name, None if xtension is None else str(xtension).strip(),
                            raw, keys, data_start, nbytes))
        pos = data_start + padded
    if not hdus:
        raise FileFormatError("not a readable FITS file (empty)")
    return hdus


# a count card at any byte offset: a header shifted by inserted bytes is misaligned for the scan
# above, but astropy still reads its cards (and loops over a NAXIS of 10^11)
_ANY_COUNT = re.compile(rb"(NAXIS|TFIELDS|PCOUNT|GCOUNT)([0-9]{0,3}) *= *([-+]?[0-9]+)")


def check_counts_anywhere(data: bytes) -> None:
    """Refuse counts no FITS file of ``len(data)`` bytes can hold, wherever their cards sit.

    The guard for files :func:`scan_hdus` leaves to astropy (misaligned or non-ASCII
    headers): astropy sizes lists and loops from NAXIS and TFIELDS before it checks them,
    so one corrupt digit would hang it. Conservative by design — a card at any offset counts.

    Raises
    ------
    FileFormatError
        NAXIS or TFIELDS outside 0..999, or an axis length, PCOUNT or GCOUNT beyond the
        file's size in bytes.

    Examples
    --------
    >>> check_counts_anywhere(b"SIMPLE  =                    T NAXIS   =                    2")
    """
    for match in _ANY_COUNT.finditer(data):
        key, axis, value = match.group(1).decode(), match.group(2).decode(), int(match.group(3))
        limit = MAX_AXES if key in ("NAXIS", "TFIELDS") and not axis else len(data)
        if not 0 <= value <= limit:
            raise FileFormatError(f"invalid {key}{axis} = {value} at byte {match.start():,} (allowed: 0..{limit:,})")


# the first 10 columns of the cards that say where an HDU's data lies, and of a table's column cards
_STRUCTURAL_CARDS = re.compile(r"(?:SIMPLE  |XTENSION|BITPIX  |NAXIS[0-9 ]{3}|PCOUNT  |GCOUNT  |GROUPS  |TFIELDS |EXTNAME )= ")
_COLUMN_CARDS = re.compile(r"(?:T(?:TYPE|FORM|UNIT|SCAL|ZERO|NULL)[0-9 ]{3}|TDIM[0-9 ]{4})= ")

# ------------------------------------------------------------------------------ tables
_TFORM = re.compile(r"\s*(\d*)([LXBIJKAEDCMPQ])(.*)\Z")
_WIDTH = {"L": 1, "B": 1, "I": 2, "J": 4, "K": 8, "A": 1, "E": 4, "D": 8, "C": 8, "M": 16, "P": 8, "Q": 16}
_NUMERIC = {"B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}


def read_table_columns(
    source: FileSource, hdu: HDUInfo, pick: Callable[[list[str]], dict[str, str]],
) -> tuple[dict[str, np.ndarray], dict[str, str | None], list[str]]:
    """Float64 arrays of some columns of a binary table, without reading the rest of the file.

    Parameters
    ----------
    source : FileSource
    hdu : HDUInfo
        A BINTABLE HDU from :func:`scan_hdus`.
    pick : callable
        Given the column names, returns ``{key: column name}`` of the columns to read
        (raising FileFormatError for missing ones).

    Returns
    -------
    (dict, dict, list)
        ``{key: array}``, ``{key: unit or None}`` and every column name.

    Raises
    ------
    Unsupported
        A picked column is scaled, null-valued, a vector or not numeric.
    """
    keys = hdu.keys
    if keys.get("NAXIS") != 2 or keys.get("BITPIX") != 8:
        raise Unsupported("a binary table with NAXIS != 2 or BITPIX != 8")
    raw = hdu.header
    tfields = int(keys.get("TFIELDS", 0))
    cards = scan_keywords(raw, _COLUMN_CARDS)
    names, offsets, forms = [], [], []
    offset = 0
    for k in range(1, tfields + 1):
        tform = cards.get(f"TFORM{k}")
        match = _TFORM.match(tform) if isinstance(tform, str) else None
        if match is None:
            raise Unsupported(f"TFORM{k} = {tform!r}")
        repeat = int(match.group(1)) if match.group(1) else 1
        code = match.group(2)
        names.append(str(cards.get(f"TTYPE{k}", f"col{k}")))
        offsets.append(offset)
        forms.append((code, repeat, k))
        offset += (repeat + 7) // 8 if code == "X" else repeat * _WIDTH[code]
    if offset != keys["NAXIS1"]:
        raise Unsupported(f"columns of {offset} bytes in rows of NAXIS1 = {keys['NAXIS1']}")
    nrows = keys["NAXIS2"]
    chosen = pick(names)
    lower = {}
    for i, name in enumerate(names):
        lower.setdefault(name.lower(), i)
    fields, units = {}, {}
    for key, name in chosen.items():
        i = lower[name.lower()]
        code, repeat, k = forms[i]
        if code not in _NUMERIC or repeat != 1 or any(f"{p}{k}" in cards for p in ("TSCAL", "TZERO", "TNULL", "TDIM")):
            raise Unsupported(f"column {name} (TFORM{k} = {cards.get(f'TFORM{k}')!r})")
        fields[key] = (i, code)
        unit = cards.get(f"TUNIT{k}")
        units[key] = str(unit) if unit not in (None, "") else None
    if nrows == 0:
        return {key: np.empty(0) for key in chosen}, units, names
    buf = source.read(hdu.data_start, nrows * keys["NAXIS1"])
    dtype = np.dtype({
        "names": list(fields), "formats": [_NUMERIC[code] for _, code in fields.values()],
        "offsets": [offsets[i] for i, _ in fields.values()], "itemsize": keys["NAXIS1"],
    })
    rows = np.frombuffer(buf, dtype=dtype, count=nrows)
    return {key: rows[key].astype(float) for key in fields}, units, names


# ------------------------------------------------------------------------------ writing
_KEYWORD = re.compile(r"[A-Z0-9_-]{1,8}\Z")


def _format_float(value: float) -> str:
    """astropy's float card format: Python's shortest repr, upper-case E, at most 20 characters."""
    if not np.isfinite(value):
        raise ValueError(f"a FITS header cannot hold {value!r}")
    text = repr(float(value)).replace("e", "E")
    if "." not in text and "E" not in text:
        text += ".0"
    if len(text) > 20:
        mantissa, _, exponent = text.partition("E")
        text = mantissa[: 20 - len(exponent) - 1] + "E" + exponent if exponent else text[:20]
    return text


def _string_cards(key: str, value: str, comment: str) -> list[str]:
    """A string value: one card, or the long-string convention (``'...&'`` + CONTINUE cards)."""
    quoted = "'" + value.replace("'", "''").ljust(8) + "'"
    card = f"{key:<8}= {quoted:<20}" + (f" / {comment}" if comment else "")
    if len(quoted) <= 70 and len(card) <= CARD:
        return [card]
    if len(quoted) <= 70:  # the comment does not fit: cut it, as astropy does
        return [card[:CARD]]
    pieces, piece = [], ""
    for ch in value:  # pieces of ≤ 67 escaped characters, never splitting a doubled quote
        esc = "''" if ch == "'" else ch
        if len(piece) + len(esc) > 67:
            pieces.append(piece)
            piece = ""
        piece += esc
    pieces.append(piece)
    cards = [f"{key:<8}= '{pieces[0]}&'"]
    cards += [f"CONTINUE  '{p}&'" for p in pieces[1:-1]]
    if len(pieces) > 1:
        cards.append(f"CONTINUE  '{pieces[-1]}'")
    else:
        cards[0] = f"{key:<8}= '{pieces[0]}'"
    if comment:
        cards.append(f"CONTINUE  '' / {comment}")
    return [c[:CARD] for c in cards]


def format_cards(key: str, value: Any, comment: str = "") -> list[str]:
    """The 80-character card(s) of one keyword (str, bool, int, float or None).

    Raises
    ------
    ValueError
        A keyword that is not 1–8 characters of A–Z, 0–9, ``_``, ``-``; a non-ASCII text; a
        NaN or infinite float; another type.
    """
    key = key.upper()
    if not _KEYWORD.match(key):
        raise ValueError(f"invalid FITS keyword {key!r}")
    if isinstance(value, tuple):
        value, comment = value
    if comment and not str(comment).isascii():
        raise ValueError(f"{key}: the comment is not ASCII")
    if isinstance(value, (str, np.str_)):
        if not value.isascii() or not value.isprintable():
            raise ValueError(f"{key}: a FITS header holds printable ASCII text only, got {value!r}")
        return _string_cards(key, str(value), comment)
    if isinstance(value, (bool, np.bool_)):
        text = "T" if value else "F"
    elif isinstance(value, (int, np.integer)):
        text = str(int(value))
    elif isinstance(value, (float, np.floating)):
        text = _format_float(float(value))
    elif value is None:
        text = ""
    else:
        raise ValueError(f"{key}: cannot write a {type(value).__name__} in a FITS header")
    card = f"{key:<8}= {text:>20}" + (f" / {comment}" if comment else "")
    return [card[:CARD]]


def hdu_bytes(cards: list[str], data: bytes = b"", *, fill: bytes = b"\0") -> bytes:
    """One HDU: the header (cards, END, blank-padded) and its data (padded with ``fill``)."""
    text = "".join(c.ljust(CARD) for c in cards) + "END".ljust(CARD)
    header = text.ljust(-(-len(text) // BLOCK) * BLOCK).encode("ascii")
    return header + data + fill * (-len(data) % BLOCK)


def primary_hdu(items: dict[str, Any]) -> bytes:
    """An empty primary HDU carrying ``items`` (keyword → value or (value, comment))."""
    cards = ["SIMPLE  =                    T / conforms to FITS standard",
             "BITPIX  =                    8 / array data type",
             "NAXIS   =                    0 / number of array dimensions",
             "EXTEND  =                    T"]
    for key, value in items.items():
        cards += format_cards(key, value)
    return hdu_bytes(cards)


def bintable_hdu(name: str, columns: list[tuple[str, np.ndarray, str | None]], items: dict[str, Any] | None = None) -> bytes:
    """A binary table of float64 columns (``(name, values, unit or None)``; ``''``: dimensionless), with extra keywords."""
    nrows = len(columns[0][1]) if columns else 0
    cards = ["XTENSION= 'BINTABLE'           / binary table extension",
             "BITPIX  =                    8 / array data type",
             "NAXIS   =                    2 / number of array dimensions",
             f"NAXIS1  = {8 * len(columns):>20} / length of dimension 1",
             f"NAXIS2  = {nrows:>20} / length of dimension 2",
             "PCOUNT  =                    0 / number of group parameters",
             "GCOUNT  =                    1 / number of groups",
             f"TFIELDS = {len(columns):>20} / number of table fields"]
    for k, (col, _, unit) in enumerate(columns, 1):
        cards += format_cards(f"TTYPE{k}", col) + format_cards(f"TFORM{k}", "D")
        if unit == "":  # said explicitly: a normalised flux has no unit
            cards += format_cards(f"TUNIT{k}", "", "dimensionless: f_nu / median f_nu in NORMLO-NORMHI")
        elif unit:
            cards += format_cards(f"TUNIT{k}", unit)
    cards += format_cards("EXTNAME", name, "extension name")
    for key, value in (items or {}).items():
        cards += format_cards(key, value)
    rows = np.empty(nrows, dtype=[(f"c{k}", ">f8") for k in range(len(columns))])
    for k, (_, values, _) in enumerate(columns):
        rows[f"c{k}"] = values
    return hdu_bytes(cards, rows.tobytes())


def bytes_image_hdu(name: str, payload: bytes, items: dict[str, Any] | None = None) -> bytes:
    """A 1D ``uint8`` image extension holding ``payload`` (e.g. UTF-8 JSON)."""
    cards = ["XTENSION= 'IMAGE   '           / Image extension",
             "BITPIX  =                    8 / array data type",
             "NAXIS   =                    1 / number of array dimensions",
             f"NAXIS1  = {len(payload):>20}",
             "PCOUNT  =                    0 / number of parameters",
             "GCOUNT  =                    1 / number of groups"]
    cards += format_cards("EXTNAME", name, "extension name")
    for key, value in (items or {}).items():
        cards += format_cards(key, value)
    return hdu_bytes(cards, payload)


def float32_image_hdu(name: str, image: np.ndarray, items: dict[str, Any] | None = None) -> bytes:
    """An image extension of big-endian float32 pixels (any number of axes), with extra keywords.

    The cards and bytes of astropy's ``ImageHDU(np.float32 array, name=name)`` with ``items``
    set after it.
    """
    data = np.ascontiguousarray(image, dtype=">f4")
    cards = ["XTENSION= 'IMAGE   '           / Image extension",
             "BITPIX  =                  -32 / array data type",
             f"NAXIS   = {data.ndim:>20} / number of array dimensions"]
    for k, n in enumerate(reversed(data.shape), 1):
        cards += format_cards(f"NAXIS{k}", int(n))
    cards += ["PCOUNT  =                    0 / number of parameters",
              "GCOUNT  =                    1 / number of groups"]
    cards += format_cards("EXTNAME", name, "extension name")
    for key, value in (items or {}).items():
        cards += format_cards(key, value)
    return hdu_bytes(cards, data.tobytes())


def rice_image_hdu(name: str, image: np.ndarray, items: dict[str, Any] | None = None, *,
                   quantize_level: float = 16.0, dither_seed: int = 1) -> bytes:
    """A 2D float32 image, RICE_1-compressed in row tiles with SUBTRACTIVE_DITHER_1 quantization.

    The bytes of astropy's ``CompImageHDU(image.astype(np.float32), name=name,
    compression_type='RICE_1', quantize_level=quantize_level, quantize_method=1,
    dither_seed=dither_seed)`` with ``items`` set after it, written by ``HDUList.writeto``;
    each tile is quantized and compressed by astropy's codecs (the same calls astropy makes).

    Raises
    ------
    Unsupported
        Layouts astropy handles differently (NaN pixels: ZBLANK; a tile that cannot be
        quantized: the lossless GZIP fallback; not 2D), or an astropy without these codec
        modules: write those with astropy.
    """
    try:  # astropy's private codec modules (astropy ≥ 6): another layout is left to astropy itself
        from astropy.io.fits.hdu.compressed._codecs import Rice1
        from astropy.io.fits.hdu.compressed._quantization import QuantizationFailedException, Quantize
    except ImportError as err:
        raise Unsupported(f"rice_image_hdu: astropy's tile codecs are not where expected ({err})") from None

    data = np.ascontiguousarray(image, dtype=np.float32)
    if data.ndim != 2 or not data.size:
        raise Unsupported("rice_image_hdu: a non-empty 2D image only")
    if np.isnan(data).any():
        raise Unsupported("rice_image_hdu: NaN pixels (ZBLANK) are left to astropy")
    ny, nx = data.shape
    codec = Rice1(blocksize=32, bytepix=4, tilesize=nx)
    chunks, scales, zeros = [], [], []
    for row in range(ny):  # one tile per image row (astropy's default ZTILE = (NAXIS1, 1))
        q = Quantize(row=row + dither_seed, dither_method=1, quantize_level=quantize_level, bitpix=-32)
        try:
            qdata, scale, zero = q.encode_quantized(data[row:row + 1])
        except QuantizationFailedException:
            raise Unsupported("rice_image_hdu: a tile astropy would store losslessly (GZIP)") from None
        chunks.append(codec.encode(np.asarray(qdata).reshape(1, nx)))
        scales.append(scale)
        zeros.append(zero)
    table = np.zeros(ny, dtype=[("c", ">i4", (2,)), ("g", ">i4", (2,)), ("s", ">f8"), ("z", ">f8")])
    sizes = np.array([len(c) for c in chunks])
    table["c"][:, 0] = sizes
    table["c"][1:, 1] = np.cumsum(sizes[:-1])
    table["s"] = scales
    table["z"] = zeros
    heap = b"".join(chunks)
    cards = ["XTENSION= 'BINTABLE'           / binary table extension",
             "BITPIX  =                    8 / array data type",
             "NAXIS   =                    2 / number of array dimensions",
             f"NAXIS1  = {table.itemsize:>20} / width of table in bytes",
             f"NAXIS2  = {ny:>20} / number of rows in table",
             f"PCOUNT  = {len(heap):>20} / number of group parameters",
             "GCOUNT  =                    1 / number of groups",
             "TFIELDS =                    4 / number of fields in each row"]
    cards += format_cards("TTYPE1", "COMPRESSED_DATA") + format_cards("TFORM1", f"1PB({int(sizes.max())})")
    cards += format_cards("TTYPE2", "GZIP_COMPRESSED_DATA") + format_cards("TFORM2", "1PB(0)")
    cards += format_cards("TTYPE3", "ZSCALE") + format_cards("TFORM3", "1D")
    cards += format_cards("TTYPE4", "ZZERO") + format_cards("TFORM4", "1D")
    cards += ["ZIMAGE  =                    T / extension contains compressed image",
              "ZTENSION= 'IMAGE   '           / Image extension",
              "ZBITPIX =                  -32 / array data type",
              "ZNAXIS  =                    2 / number of array dimensions"]
    cards += format_cards("ZNAXIS1", nx) + format_cards("ZNAXIS2", ny)
    cards += ["ZPCOUNT =                    0 / number of parameters",
              "ZGCOUNT =                    1 / number of groups"]
    cards += format_cards("ZTILE1", nx, "size of tiles to be compressed")
    cards += format_cards("ZTILE2", 1, "size of tiles to be compressed")
    cards += ["ZCMPTYPE= 'RICE_1  '           / compression algorithm",
              "ZNAME1  = 'BLOCKSIZE'          / compression block size",
              "ZVAL1   =                   32 / pixels per block",
              "ZNAME2  = 'BYTEPIX '           / bytes per pixel (1, 2, 4, or 8)",
              "ZVAL2   =                    4 / bytes per pixel (1, 2, 4, or 8)",
              "ZNAME3  = 'NOISEBIT'           / floating point quantization level"]
    cards += format_cards("ZVAL3", float(quantize_level), "floating point quantization level")
    cards += ["ZQUANTIZ= 'SUBTRACTIVE_DITHER_1' / Pixel Quantization Algorithm"]
    cards += format_cards("ZDITHER0", int(dither_seed), "dithering offset when quantizing floats")
    cards += format_cards("EXTNAME", name, "name of this binary table extension")
    for key, value in (items or {}).items():
        cards += format_cards(key, value)
    return hdu_bytes(cards, table.tobytes() + heap)
