"""The filter vocabulary of ``query_objects`` / ``query_spectra``, validated once.

:func:`build_query` turns the keyword arguments of the reference into a frozen
:class:`Query` (pure: types, ranges, names). :meth:`Query.resolve` then checks the
values against an archive's vocabulary (fields, programs, gratings, observations,
tags) — the local backend with its catalog, the server with what the caller may see.
:meth:`Query.to_params` / :func:`query_from_params` carry the same Query over HTTP,
so both backends read exactly one definition.

Examples
--------
>>> q = build_query('objects', fields=['COSMOS'], redshift_range=(4, 8), redshift_quality=['secure'])
>>> q.fields, q.redshift_quality
(('cosmos',), (4,))
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, Mapping, Sequence, TypedDict

from numpy import bool_ as np_bool

from campfire.errors import ValidationError
from campfire.flags import FlagExpr, as_flag_expr

__all__ = [
    "QueryFilters",
    "Query",
    "Vocabulary",
    "build_query",
    "query_from_params",
    "QUALITY_NAMES",
    "parse_quality",
    "SORT_COLUMNS",
    "FILTER_NAMES",
    "KNOWN_GRATINGS",
]

QUALITY_NAMES = {"not_inspected": 0, "impossible": 1, "tentative": 2, "probable": 3, "secure": 4}
KNOWN_GRATINGS = ("PRISM", "G140M", "G235M", "G395M", "G140H", "G235H", "G395H")

SORT_COLUMNS = {
    "objects": (
        "object_id", "field", "ra", "dec", "redshift", "redshift_auto", "redshift_inspected",
        "redshift_quality", "n_spectra", "max_snr", "max_exposure_time", "photo_z", "has_photometry",
    ),
    "spectra": (
        "spectrum_id", "object_id", "target_id", "observation", "grating", "filter", "signal_to_noise",
        "exposure_time", "redshift_auto", "dq_flags", "reduction_version", "redshift_auto_lo",
        "redshift_auto_hi", "redshift_auto_confidence",
    ),
}
DEFAULT_SORT = {"objects": "object_id", "spectra": "spectrum_id"}

# the filter keywords shared by both query kinds (and by lazy_spectra / workflows)
FILTER_NAMES = (
    "fields", "programs", "gratings", "observations", "redshift_range", "redshift_quality",
    "max_snr_range", "dq_flags", "tags", "inspected_only", "staleness", "has_photometry",
    "search", "cone_search",
)
PAGING_NAMES = ("limit", "offset", "sort", "sort_dir")


class QueryFilters(TypedDict, total=False):
    """The keyword arguments of ``query_objects`` / ``query_spectra`` / ``iter_*`` / ``lazy_spectra``.

    For type checkers and IDEs (``**filters: Unpack[QueryFilters]``); :func:`build_query`
    validates the values at run time and names the parameter when one is wrong. Every
    filter is optional; None means "no filter".
    """

    fields: Sequence[str] | None                 # e.g. ['cosmos', 'uds'] (any case)
    programs: Sequence[int | str] | None         # JWST proposal ids or program slugs
    gratings: Sequence[str] | None               # e.g. ['PRISM', 'G395M']
    observations: Sequence[str] | None           # observation names
    redshift_range: tuple[float, float] | None   # (min, max) of the object's best redshift
    redshift_quality: Sequence[int | str] | None  # 0-4 or names: [3, 4] or ['probable', 'secure']
    max_snr_range: tuple[float, float] | None    # objects: best S/N; spectra: the spectrum's S/N
    dq_flags: Any                                # an int bitmask or a DQFlags expression (campfire.flags)
    tags: Sequence[str] | None                   # tag slugs, e.g. ['lrd', 'blagn']
    inspected_only: bool | None
    staleness: bool | None                       # local catalog only: files whose server hash changed
    has_photometry: bool | None
    search: str | None                           # text search on IDs
    cone_search: tuple[float, float, float] | None  # (ra, dec, radius_arcsec)
    limit: int | None                            # unlimited locally; campfire.api.page-size remotely
    offset: int
    sort: str                                    # a column (objects: 'object_id', spectra: 'spectrum_id')
    sort_dir: str                                # 'asc' or 'desc'


@dataclass(frozen=True)
class Vocabulary:
    """The values an archive (as seen by one user) knows, for :meth:`Query.resolve`."""

    fields: frozenset[str]
    programs: Mapping[str, int]          # lower-case slug -> program_id
    gratings: frozenset[str]
    observations: frozenset[str]
    tags: frozenset[str]


@dataclass(frozen=True)
class Query:
    """A validated query. ``None`` means "no filter" for every field."""

    kind: str
    fields: tuple[str, ...] | None = None
    programs: tuple[int | str, ...] | None = None
    gratings: tuple[str, ...] | None = None
    observations: tuple[str, ...] | None = None
    redshift_range: tuple[float, float] | None = None
    redshift_quality: tuple[int, ...] | None = None
    max_snr_range: tuple[float, float] | None = None
    dq_flags: FlagExpr | None = None
    tags: tuple[str, ...] | None = None
    inspected_only: bool | None = None
    staleness: bool | None = None
    has_photometry: bool | None = None
    search: str | None = None
    cone_search: tuple[float, float, float] | None = None
    limit: int | None = None
    offset: int = 0
    sort: str = ""
    sort_dir: str = "asc"

    # -- vocabulary -----------------------------------------------------------------
    def resolve(self, vocab: Vocabulary) -> "Query":
        """Check names against ``vocab``; program slugs become program ids.

        Parameters
        ----------
        vocab : Vocabulary
            What the archive (as the caller sees it) knows.

        Returns
        -------
        Query
            The same query with program ids.

        Raises
        ------
        ValidationError
            A field, grating, observation, tag or program the archive does not know
            (the message lists the allowed ones).
        """
        changes: dict[str, Any] = {}
        for name, known in (
            ("fields", vocab.fields),
            ("gratings", vocab.gratings | set(KNOWN_GRATINGS)),
            ("observations", vocab.observations),
            ("tags", vocab.tags),
        ):
            values = getattr(self, name)
            if values is None:
                continue
            unknown = [v for v in values if v not in known]
            if unknown:
                singular = {"fields": "field", "gratings": "grating", "observations": "observation", "tags": "tag"}[name]
                raise ValidationError(
                    f"{name}: unknown {singular}{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                    f"allowed: {', '.join(sorted(known)) or '(none)'}"
                )
        if self.programs is not None:
            ids = set(vocab.programs.values())
            resolved = []
            for p in self.programs:
                if isinstance(p, int):
                    if p not in ids:
                        raise ValidationError(f"programs: unknown program id {p}; allowed: {_program_list(vocab)}")
                    resolved.append(p)
                else:
                    pid = vocab.programs.get(p.lower())
                    if pid is None:
                        raise ValidationError(f"programs: unknown program {p!r}; allowed: {_program_list(vocab)}")
                    resolved.append(pid)
            changes["programs"] = tuple(dict.fromkeys(resolved))
        return dataclasses.replace(self, **changes) if changes else self

    # -- HTTP ------------------------------------------------------------------------
    def to_params(self) -> dict[str, str]:
        """Query-string parameters of the HTTP API (lists comma-joined, ranges 'lo,hi').

        Returns
        -------
        dict of str to str
            What :func:`query_from_params` turns back into the same Query.

        Examples
        --------
        >>> build_query('spectra', gratings=['prism'], redshift_range=(4, 6)).to_params()
        {'gratings': 'PRISM', 'redshift_range': '4.0,6.0', 'sort': 'spectrum_id', 'sort_dir': 'asc'}
        """
        out: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "kind" or value is None:
                continue
            if f.name == "offset" and value == 0:
                continue
            if isinstance(value, FlagExpr):
                out[f.name] = str(value)
            elif isinstance(value, bool):
                out[f.name] = "true" if value else "false"
            elif isinstance(value, tuple):
                out[f.name] = ",".join(_fmt(v) for v in value)
            else:
                out[f.name] = _fmt(value)
        return out


def _fmt(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _program_list(vocab: Vocabulary) -> str:
    return ", ".join(f"{slug} ({pid})" for slug, pid in sorted(vocab.programs.items())) or "(none)"


# ---------------------------------------------------------------------------- validation
def _str_list(name: str, value, transform=str.lower) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    try:
        items = list(value)
    except TypeError:
        raise ValidationError(f"{name}: expected a list of strings, got {value!r}") from None
    out = []
    for v in items:
        if not isinstance(v, str) or not v.strip():
            raise ValidationError(f"{name}: expected non-empty strings, got {v!r}")
        out.append(transform(v.strip()))
    if not out:
        raise ValidationError(f"{name}: empty list; pass None for no filter")
    return tuple(dict.fromkeys(out))


def _number(name: str, value) -> float:
    if isinstance(value, bool):
        raise ValidationError(f"{name}: expected a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name}: expected a number, got {value!r}") from None
    if math.isnan(x):
        raise ValidationError(f"{name}: NaN is not allowed")
    return x


def _range(name: str, value, lower: float | None = None) -> tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, str) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValidationError(f"{name}: expected (min, max), got {value!r}")
    lo, hi = (_number(name, v) for v in value)
    if lo > hi:
        raise ValidationError(f"{name}: min ({lo:g}) is greater than max ({hi:g})")
    if lower is not None and hi < lower:
        raise ValidationError(f"{name}: values must be >= {lower:g}, got ({lo:g}, {hi:g})")
    return lo, hi


def _bool(name: str, value) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, np_bool):  # a numpy bool scalar (an array has no single truth value)
        return bool(value)
    raise ValidationError(f"{name}: expected True, False or None, got {value!r}")


def _items(name: str, value, expected: str) -> list:
    """A scalar (str or int) as a one-item list, an iterable's items, anything else a ValidationError."""
    if isinstance(value, (str, numbers.Integral)):
        return [value]
    try:
        return list(value)
    except TypeError:  # a float, None inside, a 0-d array ...: not a list of anything
        raise ValidationError(f"{name}: expected {expected}, got {value!r}") from None


MAX_INT_DIGITS = 18  # every integer of the vocabulary fits in a signed 64-bit SQLite integer


def _decimal(name: str, text: str) -> int:
    """A string of decimal digits as an int, refusing more digits than any parameter needs.

    Python itself refuses to convert strings of more than ~4,300 digits (ValueError, a
    500 before this check); a 19-digit number already exceeds every id or quality.
    """
    if len(text) > MAX_INT_DIGITS:
        raise ValidationError(f"{name}: expected at most {MAX_INT_DIGITS} digits, got a number of {len(text)} digits")
    return int(text)


def _integer(v) -> bool:
    """True for Python and numpy integers (a column value), never for bools."""
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np_bool))


def parse_quality(value, name: str = "quality") -> int:
    """One redshift quality: an int 0-4 or its name (``'secure'``, case-insensitive) → the int.

    Raises
    ------
    ValidationError
        Anything else, naming ``name`` and what is allowed.

    Examples
    --------
    >>> parse_quality('Secure'), parse_quality(2), parse_quality('3')
    (4, 2, 3)
    """
    allowed = "0-4 or " + ", ".join(f"{n!r}" for n in QUALITY_NAMES)
    if isinstance(value, str):
        key = value.strip().lower()
        if key in QUALITY_NAMES:
            return QUALITY_NAMES[key]
        if not key.isdecimal():
            raise ValidationError(f"{name}: unknown quality {value!r}; allowed: {allowed}")
        value = _decimal(name, key)
    if not _integer(value) or not 0 <= value <= 4:
        raise ValidationError(f"{name}: expected an int 0-4 or a quality name ({allowed}), got {value!r}")
    return int(value)


def _quality(value) -> tuple[int, ...] | None:
    if value is None:
        return None
    out = [parse_quality(v, "redshift_quality")
           for v in _items("redshift_quality", value, "ints 0-4 or quality names")]
    if not out:
        raise ValidationError("redshift_quality: empty list; pass None for no filter")
    return tuple(sorted(set(out)))


def _programs(value) -> tuple[int | str, ...] | None:
    if value is None:
        return None
    out: list[int | str] = []
    for v in _items("programs", value, "program ids (int) or slugs (str)"):
        if isinstance(v, (bool, np_bool)):
            raise ValidationError(f"programs: expected program ids or slugs, got {v!r}")
        if _integer(v) or (isinstance(v, str) and v.strip().isdecimal()):
            pid = _decimal("programs", v.strip()) if isinstance(v, str) else int(v)
            # JWST proposal ids are positive; a negative one would come back as a slug over HTTP
            if not 0 < pid < 2**62:
                raise ValidationError(f"programs: expected a positive program id, got {v!r}")
            out.append(pid)
        elif isinstance(v, str) and v.strip():
            out.append(v.strip())
        else:
            raise ValidationError(f"programs: expected program ids (int) or slugs (str), got {v!r}")
    if not out:
        raise ValidationError("programs: empty list; pass None for no filter")
    return tuple(out)


def _cone(value) -> tuple[float, float, float] | None:
    if value is None:
        return None
    if isinstance(value, str) or not hasattr(value, "__len__") or len(value) != 3:
        raise ValidationError(f"cone_search: expected (ra, dec, radius_arcsec), got {value!r}")
    ra, dec, radius = (_number("cone_search", v) for v in value)
    if not 0 <= ra < 360:
        raise ValidationError(f"cone_search: ra must be in [0, 360) deg, got {ra:g}")
    if not -90 <= dec <= 90:
        raise ValidationError(f"cone_search: dec must be in [-90, 90] deg, got {dec:g}")
    if not 0 < radius <= 3600 * 10:
        raise ValidationError(f"cone_search: radius must be in (0, 36000] arcsec, got {radius:g}")
    return ra, dec, radius


def _upper(s: str) -> str:
    return s.upper()


def build_query(kind: str, **kwargs) -> Query:
    """Validate the keyword arguments of query_objects / query_spectra into a :class:`Query`.

    Unknown keywords raise ValidationError listing the allowed ones — nothing is
    silently ignored.

    Parameters
    ----------
    kind : {'objects', 'spectra'}
    **kwargs
        The filters and paging of :class:`QueryFilters`.

    Returns
    -------
    Query
        Frozen; names are normalised (fields lower-case, gratings upper-case).

    Raises
    ------
    ValidationError
        An unknown keyword or a bad value; the message names the parameter and what
        is allowed.

    Examples
    --------
    >>> build_query('objects', tags=['LRD'], limit=5).tags
    ('lrd',)
    """
    if kind not in SORT_COLUMNS:
        raise ValidationError(f"kind: expected 'objects' or 'spectra', got {kind!r}")
    allowed = FILTER_NAMES + PAGING_NAMES
    unknown = [k for k in kwargs if k not in allowed]
    if unknown:
        raise ValidationError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; allowed: {', '.join(allowed)}"
        )
    get = kwargs.get
    search = get("search")
    if search is not None and (not isinstance(search, str) or not search.strip() or len(search) > 200):
        raise ValidationError(f"search: expected a non-empty string of at most 200 characters, got {search!r}")
    limit = get("limit")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit < 2**62:
            raise ValidationError(f"limit: expected a non-negative int or None, got {limit!r}")
    offset = get("offset")
    if offset is None:
        offset = 0
    # an upper bound too: SQLite integers are 64-bit (a huge offset is a ValidationError, not an overflow)
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < 2**62:
        raise ValidationError(f"offset: expected a non-negative int, got {offset!r}")
    # no truth tests on caller values: an array or a FlagExpr has no single truth value
    sort = get("sort")
    if sort is None or (isinstance(sort, str) and not sort):
        sort = DEFAULT_SORT[kind]
    if not isinstance(sort, str) or sort not in SORT_COLUMNS[kind]:
        raise ValidationError(f"sort: unknown column {sort!r} for {kind}; allowed: {', '.join(SORT_COLUMNS[kind])}")
    sort_dir = get("sort_dir")
    if sort_dir is None or (isinstance(sort_dir, str) and not sort_dir):
        sort_dir = "asc"
    if not isinstance(sort_dir, str) or sort_dir.lower() not in ("asc", "desc"):
        raise ValidationError(f"sort_dir: expected 'asc' or 'desc', got {sort_dir!r}")
    return Query(
        kind=kind,
        fields=_str_list("fields", get("fields")),
        programs=_programs(get("programs")),
        gratings=_str_list("gratings", get("gratings"), _upper),
        observations=_str_list("observations", get("observations")),
        redshift_range=_range("redshift_range", get("redshift_range")),
        redshift_quality=_quality(get("redshift_quality")),
        max_snr_range=_range("max_snr_range", get("max_snr_range")),
        dq_flags=as_flag_expr(get("dq_flags")),
        tags=_str_list("tags", get("tags")),
        inspected_only=_bool("inspected_only", get("inspected_only")),
        staleness=_bool("staleness", get("staleness")),
        has_photometry=_bool("has_photometry", get("has_photometry")),
        search=search.strip() if search else None,
        cone_search=_cone(get("cone_search")),
        limit=limit,
        offset=offset,
        sort=sort,
        sort_dir=sort_dir.lower(),
    )


def query_from_params(kind: str, params: Mapping[str, str]) -> Query:
    """The inverse of :meth:`Query.to_params` (what the server does with a query string).

    Parameters
    ----------
    kind : {'objects', 'spectra'}
    params : mapping of str to str
        Query-string parameters (repeated keys already comma-joined).

    Returns
    -------
    Query

    Raises
    ------
    ValidationError
        As :func:`build_query`, and for booleans other than true/false/1/0.

    Examples
    --------
    >>> query_from_params('objects', {'fields': 'uds,cosmos', 'limit': '10'}).fields
    ('uds', 'cosmos')
    """
    kwargs: dict[str, Any] = {}
    for key, raw in params.items():
        if key in ("fields", "programs", "gratings", "observations", "tags", "redshift_quality"):
            kwargs[key] = [v for v in raw.split(",")] if raw != "" else []
        elif key in ("redshift_range", "max_snr_range", "cone_search"):
            kwargs[key] = raw.split(",")
        elif key in ("inspected_only", "staleness", "has_photometry"):
            low = raw.lower()
            if low not in ("true", "false", "1", "0"):
                raise ValidationError(f"{key}: expected true or false, got {raw!r}")
            kwargs[key] = low in ("true", "1")
        elif key in ("limit", "offset"):
            if not raw.strip().isdecimal():
                raise ValidationError(f"{key}: expected a non-negative integer, got {raw[:40]!r}")
            kwargs[key] = _decimal(key, raw.strip())
        else:
            kwargs[key] = raw
    return build_query(kind, **kwargs)
