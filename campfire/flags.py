"""Data-quality flags and flag expressions.

``DQFlags`` members are :class:`enum.IntFlag` values, so plain ints, ``encode_flags``
and ``decode_flags`` work as usual. The operators ``|``, ``&`` and ``~`` between
members return a :class:`FlagExpr` instead of a bitwise int, because the bitwise
meaning is not the filtering meaning (``CHIP_GAP & LOW_SNR`` would be 0).

A :class:`FlagExpr` is a conjunction of three parts, which covers every supported
form: ``A | B`` (any of), ``A & B`` (all of), ``~A`` (not), ``~A & ~B`` (neither) and
``X & ~A`` (combined). The one compiler here turns it into a SQL predicate and into
the string the HTTP API and workflow YAML files carry, so both backends agree.

Examples
--------
>>> from campfire.flags import DQFlags
>>> expr = ~DQFlags.CONTAMINATION & ~DQFlags.LOW_SNR
>>> str(expr)
'~CONTAMINATION & ~LOW_SNR'
>>> expr.matches(0), expr.matches(DQFlags.LOW_SNR)
(True, False)
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from campfire.errors import ValidationError

__all__ = [
    "DQFlags",
    "FlagExpr",
    "as_flag_expr",
    "list_flags",
    "decode_flags",
    "encode_flags",
    "FLAG_DESCRIPTIONS",
]

SUPPORTED_FORMS = (
    "supported forms: A | B (any of), A & B (all of), ~A (not A), "
    "~A & ~B (neither), X & ~A (combined); to exclude several flags write "
    "~A & ~B, not ~(A | B)"
)


class _FlagOperators:
    """Operators of DQFlags members that build filter expressions."""

    def __or__(self, other):
        return FlagExpr.from_value(self) | other

    def __ror__(self, other):
        return FlagExpr.from_value(other) | FlagExpr.from_value(self)

    def __and__(self, other):
        return FlagExpr(all_of=int(self)) & other

    def __rand__(self, other):
        return FlagExpr.from_value(other, conjunctive=True) & FlagExpr(all_of=int(self))

    def __invert__(self):
        return FlagExpr(none_of=int(self))


class DQFlags(enum.IntFlag):
    """Per-spectrum data-quality bits (the ``dq_flags`` column)."""

    # EnumType installs Flag's bitwise operators on the class itself, so ours are
    # assigned here rather than inherited from a mixin.
    __or__ = _FlagOperators.__or__
    __ror__ = _FlagOperators.__ror__
    __and__ = _FlagOperators.__and__
    __rand__ = _FlagOperators.__rand__
    __invert__ = _FlagOperators.__invert__

    CHIP_GAP = 1 << 0
    CONTAMINATION = 1 << 1
    LOW_SNR = 1 << 2
    BAD_BACKGROUND = 1 << 3
    PARTIAL_COVERAGE = 1 << 4
    STUCK_SHUTTER = 1 << 5
    OFF_CENTER = 1 << 6


FLAG_DESCRIPTIONS: dict[str, str] = {
    "CHIP_GAP": "part of the trace falls on the NRS1/NRS2 detector gap",
    "CONTAMINATION": "another source falls in the slitlet",
    "LOW_SNR": "median signal-to-noise below 3",
    "BAD_BACKGROUND": "background subtraction is unreliable",
    "PARTIAL_COVERAGE": "wavelength range truncated",
    "STUCK_SHUTTER": "a slitlet shutter is stuck closed or failed open",
    "OFF_CENTER": "source far from the shutter centre",
}

FLAG_TYPES: dict[str, type[enum.IntFlag]] = {"dq_flags": DQFlags}

_RETIRED = {
    "object_flags": (
        "object_flags was retired: object-level flags are now tags. "
        "Use cf.get_tags() to list them and cf.query_objects(tags=['lrd', ...]) to filter."
    )
}

_ALL_BITS = -1  # "no flag set": (flags & -1) == 0  <=>  flags == 0


@dataclass(frozen=True)
class FlagExpr:
    """A flag filter: (any bit of each ``any_of`` group) and all of ``all_of`` and none of ``none_of``."""

    any_of: tuple[int, ...] = ()
    all_of: int = 0
    none_of: int = 0

    # -- construction ---------------------------------------------------------
    @classmethod
    def from_value(cls, value: Any, *, conjunctive: bool = False) -> "FlagExpr":
        """Coerce a member, int, string or expression. A plain int N means any of N's bits.

        Parameters
        ----------
        value : DQFlags, int, str or FlagExpr
            0 means "no flag set".
        conjunctive : bool
            Read an int as "all of its bits" (the ``&`` side of an expression).

        Returns
        -------
        FlagExpr

        Raises
        ------
        ValidationError
            Another type, unknown bits, or an unparsable string (the message shows the
            supported forms).

        Examples
        --------
        >>> FlagExpr.from_value(3).matches(2), FlagExpr.from_value(3, conjunctive=True).matches(2)
        (True, False)
        """
        if isinstance(value, FlagExpr):
            return value
        if isinstance(value, str):
            return parse_flag_expr(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(
                f"dq_flags: expected a DQFlags expression, an int or a string, got {value!r}; "
                + SUPPORTED_FORMS
            )
        value = int(value)
        _check_bits(value)
        if value == 0:
            return cls(none_of=_ALL_BITS)
        return cls(all_of=value) if conjunctive else cls(any_of=(value,))

    def __post_init__(self):
        # canonical form: "any of one bit" is "all of that bit"; groups sorted, unique
        singles = [g for g in self.any_of if _is_single_bit(g)]
        groups = tuple(sorted({g for g in self.any_of if not _is_single_bit(g)}))
        object.__setattr__(self, "any_of", groups)
        object.__setattr__(self, "all_of", self.all_of | sum(set(singles)))
        if self.all_of & self.none_of and self.none_of != _ALL_BITS:
            raise ValidationError(
                f"dq_flags: {', '.join(_names(self.all_of & self.none_of))} is both required and excluded, "
                "so the expression can never match"
            )
        if self.none_of == _ALL_BITS and (self.all_of or self.any_of):
            raise ValidationError("dq_flags: 0 (no flag set) cannot be combined with required flags")

    # -- operators --------------------------------------------------------------
    def __and__(self, other):
        other = FlagExpr.from_value(other, conjunctive=True)
        return FlagExpr(
            any_of=tuple(dict.fromkeys(self.any_of + other.any_of)),
            all_of=self.all_of | other.all_of,
            none_of=_ALL_BITS if _ALL_BITS in (self.none_of, other.none_of) else self.none_of | other.none_of,
        )

    __rand__ = __and__

    def __or__(self, other):
        other = FlagExpr.from_value(other)
        a, b = self._as_single_group(), other._as_single_group()
        if a is None or b is None:
            raise ValidationError(f"dq_flags: cannot OR {self} with {other}; " + SUPPORTED_FORMS)
        return FlagExpr(any_of=(a | b,))

    def __ror__(self, other):
        return FlagExpr.from_value(other) | self

    def __invert__(self):
        text = str(self) if str(self).startswith("(") else f"({self})"
        raise ValidationError(f"dq_flags: ~{text} is not supported; " + SUPPORTED_FORMS)

    def __bool__(self):
        raise TypeError("a FlagExpr has no truth value; pass it as dq_flags=... or call .matches(value)")

    def _as_single_group(self) -> int | None:
        """The mask of an "any of" expression (a single member counts), else None."""
        if self.none_of or (self.any_of and self.all_of):
            return None
        if len(self.any_of) == 1 and not self.all_of:
            return self.any_of[0]
        if not self.any_of and self.all_of and _is_single_bit(self.all_of):
            return self.all_of
        return None

    # -- evaluation and compilation --------------------------------------------
    def matches(self, flags: int) -> bool:
        """Evaluate on one bitmask in Python (the reference semantics).

        Parameters
        ----------
        flags : int

        Returns
        -------
        bool

        Examples
        --------
        >>> (~DQFlags.CONTAMINATION & ~DQFlags.LOW_SNR).matches(1)
        True
        """
        flags = int(flags)
        return (
            all(flags & g for g in self.any_of)
            and (flags & self.all_of) == self.all_of
            and (flags & self.none_of) == 0
        )

    def to_sql(self, column: str) -> tuple[str, list[int]]:
        """A SQL predicate over an integer ``column`` with bound parameters.

        Parameters
        ----------
        column : str
            The (trusted) column expression.

        Returns
        -------
        (str, list of int)

        Examples
        --------
        >>> (DQFlags.CHIP_GAP | DQFlags.LOW_SNR).to_sql('s.dq_flags')
        ('((s.dq_flags & ?) != 0)', [5])
        """
        parts, params = [], []
        for group in self.any_of:
            parts.append(f"({column} & ?) != 0")
            params.append(group)
        if self.all_of:
            parts.append(f"({column} & ?) = ?")
            params += [self.all_of, self.all_of]
        if self.none_of:
            parts.append(f"({column} & ?) = 0")
            params.append(self.none_of)
        return ("(" + " AND ".join(parts) + ")" if parts else "1"), params

    def __str__(self) -> str:
        if self.none_of == _ALL_BITS:
            return "0"
        parts = []
        for group in self.any_of:
            names = _names(group)
            parts.append(names[0] if len(names) == 1 else "(" + " | ".join(names) + ")")
        parts += _names(self.all_of)
        parts += ["~" + n for n in _names(self.none_of)]
        return " & ".join(parts)

    def __repr__(self) -> str:
        return f"FlagExpr({self})"


def _is_single_bit(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def _check_bits(value: int, kind: str = "dq_flags") -> None:
    known = sum(int(m) for m in FLAG_TYPES[kind])
    if value < 0 or value & ~known:
        raise ValidationError(
            f"{kind}: {value} has bits outside the known flags "
            f"({', '.join(f'{m.name}={int(m)}' for m in FLAG_TYPES[kind])})"
        )


def _names(mask: int, kind: str = "dq_flags") -> list[str]:
    return [m.name for m in FLAG_TYPES[kind] if mask & int(m)]


_TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(.))")


def parse_flag_expr(text: str, kind: str = "dq_flags") -> FlagExpr:
    """Parse ``'~CONTAMINATION & ~LOW_SNR'`` (workflow YAML, HTTP query) into a FlagExpr.

    Grammar: ``expr := term ('&' term)*``, ``term := '~'? atom | '(' NAME ('|' NAME)* ')'``,
    ``atom := NAME | INT``, and a bare ``NAME | NAME | ...`` at the top level.
    """
    flag_type = FLAG_TYPES[kind]
    tokens = [t for t in _TOKEN.findall(text.strip())]
    pos = 0

    def fail(msg: str):
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise ValidationError(f"{kind}: cannot parse {shown!r}: {msg}; " + SUPPORTED_FORMS)

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take():
        nonlocal pos
        tok = peek()
        pos += 1
        return tok

    def atom():
        tok = take()
        if tok is None:
            fail("unexpected end")
        num, name, sym = tok
        if num:
            if len(num) > 20:  # more than any flag mask (and Python refuses ~4,300+ digit strings)
                fail(f"number of {len(num)} digits is too large")
            value = int(num)
            _check_bits(value, kind)
            return value
        if name:
            try:
                return int(flag_type[name.upper()])
            except KeyError:
                fail(f"unknown flag {name!r} (known: {', '.join(m.name for m in flag_type)})")
        if sym == "(":
            value = atom()
            expr = FlagExpr.from_value(value)
            while peek() and peek()[2] == "|":
                take()
                expr = expr | atom()
            if not peek() or peek()[2] != ")":
                fail("expected ')'")
            take()
            return expr
        fail(f"unexpected {sym!r}")

    def term():
        tok = peek()
        if tok and tok[2] == "~":
            take()
            value = atom()
            if isinstance(value, FlagExpr):
                fail("~( ... ) is not supported")
            return FlagExpr(none_of=value)
        value = atom()
        return value

    if not tokens:
        fail("empty expression")
    first = term()
    if peek() and peek()[2] == "|":
        expr = FlagExpr.from_value(first)
        while peek() and peek()[2] == "|":
            take()
            expr = expr | atom()
        if peek():
            fail("mixing | and & needs parentheses around the | part")
        return expr
    expr = FlagExpr.from_value(first, conjunctive=False)
    # a bare int / name followed by '&' terms means "all of"
    if peek() and not isinstance(first, FlagExpr):
        expr = FlagExpr.from_value(first, conjunctive=True)
    while peek():
        if peek()[2] != "&":
            fail(f"unexpected {''.join(peek())!r}")
        take()
        expr = expr & term()
    return expr


def as_flag_expr(value: Any, kind: str = "dq_flags") -> FlagExpr | None:
    """Validate a ``dq_flags=`` argument: None, int, member, string or FlagExpr.

    Parameters
    ----------
    value : None, int, DQFlags, str or FlagExpr
    kind : str
        The flag type (``'dq_flags'``).

    Returns
    -------
    FlagExpr or None

    Raises
    ------
    ValidationError
        A retired or unknown flag type, or a value :meth:`FlagExpr.from_value` refuses.

    Examples
    --------
    >>> as_flag_expr(None) is None, as_flag_expr(0).matches(0)
    (True, True)
    """
    if value is None:
        return None
    if kind in _RETIRED:
        raise ValidationError(_RETIRED[kind])
    if kind not in FLAG_TYPES:
        raise ValidationError(f"unknown flag type {kind!r}; known: {', '.join(FLAG_TYPES)}")
    return FlagExpr.from_value(value)


def _flag_type(kind: str) -> type[enum.IntFlag]:
    if kind in _RETIRED:
        raise ValidationError(_RETIRED[kind])
    try:
        return FLAG_TYPES[kind]
    except KeyError:
        raise ValidationError(
            f"flag_type: unknown flag type {kind!r}; known: {', '.join(FLAG_TYPES)}"
        ) from None


def list_flags(flag_type: str | None = None) -> None:
    """Print the flags of one type (or all types) with their bits and meaning.

    Parameters
    ----------
    flag_type : str, optional
        ``'dq_flags'``; default every type.

    Raises
    ------
    ValidationError
        An unknown flag type.

    Examples
    --------
    >>> list_flags('dq_flags')  # doctest: +ELLIPSIS
    dq_flags
      bit 0  value   1  CHIP_GAP ...
    """
    if flag_type in _RETIRED:
        print(_RETIRED[flag_type])
        return
    kinds = [flag_type] if flag_type is not None else list(FLAG_TYPES)
    for kind in kinds:
        members = list(_flag_type(kind))
        print(kind)
        for m in members:
            bit = int(m).bit_length() - 1
            print(f"  bit {bit}  value {int(m):>3}  {m.name:<17} {FLAG_DESCRIPTIONS.get(m.name, '')}")


def decode_flags(value: int, flag_type: str = "dq_flags") -> list[str]:
    """Names of the bits set in ``value``.

    Parameters
    ----------
    value : int
        A bitmask.
    flag_type : str
        ``'dq_flags'``.

    Returns
    -------
    list of str

    Raises
    ------
    ValidationError
        Not an int, bits outside the type, or an unknown type.

    Examples
    --------
    >>> decode_flags(3, 'dq_flags')
    ['CHIP_GAP', 'CONTAMINATION']
    """
    kind = _flag_type(flag_type)
    if isinstance(value, bool) or not isinstance(value, (int,)) and not hasattr(value, "__index__"):
        raise ValidationError(f"value: expected an int bitmask, got {value!r}")
    value = int(value)
    _check_bits(value, flag_type)
    return [m.name for m in kind if value & int(m)]


def encode_flags(names, flag_type: str = "dq_flags") -> int:
    """The bitmask of flag names (case-insensitive).

    Parameters
    ----------
    names : str or iterable of str
    flag_type : str
        ``'dq_flags'``.

    Returns
    -------
    int

    Raises
    ------
    ValidationError
        An unknown name (the message lists the known ones) or type.

    Examples
    --------
    >>> encode_flags(['CHIP_GAP', 'CONTAMINATION'], 'dq_flags')
    3
    """
    kind = _flag_type(flag_type)
    if isinstance(names, str):
        names = [names]
    value = 0
    for name in names:
        try:
            value |= int(kind[str(name).upper()])
        except KeyError:
            raise ValidationError(
                f"names: unknown {flag_type} flag {name!r}; known: {', '.join(m.name for m in kind)}"
            ) from None
    return value
