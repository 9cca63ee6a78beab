"""Flag expressions: operators, the parser, SQL ≡ Python, utilities."""
from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campfire import ValidationError, decode_flags, encode_flags, list_flags
from campfire.flags import DQFlags, FlagExpr, as_flag_expr, parse_flag_expr

D = DQFlags
ALL = [m for m in D]


def test_bits_and_names():
    assert [int(m) for m in D] == [1, 2, 4, 8, 16, 32, 64]
    assert decode_flags(3, "dq_flags") == ["CHIP_GAP", "CONTAMINATION"]
    assert encode_flags(["CHIP_GAP", "CONTAMINATION"], "dq_flags") == 3
    assert decode_flags(0) == []


@pytest.mark.parametrize(
    "expr, value, expected",
    [
        (D.CHIP_GAP | D.LOW_SNR, 1, True),
        (D.CHIP_GAP | D.LOW_SNR, 4, True),
        (D.CHIP_GAP | D.LOW_SNR, 2, False),
        (D.CHIP_GAP & D.LOW_SNR, 1, False),
        (D.CHIP_GAP & D.LOW_SNR, 5, True),
        (~D.CONTAMINATION, 2, False),
        (~D.CONTAMINATION, 5, True),
        (~D.CONTAMINATION & ~D.LOW_SNR, 0, True),
        (~D.CONTAMINATION & ~D.LOW_SNR, 4, False),
        (~D.CONTAMINATION & ~D.LOW_SNR, 2, False),
        (~D.CONTAMINATION & ~D.LOW_SNR, 1, True),
        (D.CHIP_GAP & ~D.OFF_CENTER, 1, True),
        (D.CHIP_GAP & ~D.OFF_CENTER, 65, False),
    ],
)
def test_operator_semantics(expr, value, expected):
    assert isinstance(expr, FlagExpr)
    assert expr.matches(value) is expected


def test_not_of_or_is_refused_with_the_supported_form():
    with pytest.raises(ValidationError, match=r"~A & ~B"):
        ~(D.CONTAMINATION | D.LOW_SNR)
    with pytest.raises(ValidationError, match="not supported"):
        parse_flag_expr("~(CONTAMINATION | LOW_SNR)")


def test_plain_ints():
    assert as_flag_expr(3).matches(2) and not as_flag_expr(3).matches(4)
    zero = as_flag_expr(0)
    assert zero.matches(0) and not zero.matches(1)


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValidationError, match="dq_flags.*unknown flag 'NOPE'"):
        as_flag_expr("NOPE")
    with pytest.raises(ValidationError, match="dq_flags"):
        as_flag_expr(1 << 20)
    with pytest.raises(ValidationError, match="names: unknown dq_flags flag"):
        encode_flags(["CHIP_GAP", "BOGUS"])
    with pytest.raises(ValidationError, match="both required and excluded"):
        D.CHIP_GAP & ~D.CHIP_GAP
    with pytest.raises(ValidationError, match="flag_type"):
        decode_flags(1, "bogus_flags")


def test_list_flags_prints_all(capsys):
    list_flags()
    out = capsys.readouterr().out
    for m in D:
        assert m.name in out
    list_flags("object_flags")
    assert "retired" in capsys.readouterr().out
    with pytest.raises(ValidationError, match="tags"):
        decode_flags(1, "object_flags")


# -- property tests: the string form round-trips and SQL agrees with Python ----------
members = st.sampled_from(ALL)


@st.composite
def expressions(draw):
    kind = draw(st.sampled_from(["any", "all", "none", "mixed", "int"]))
    picks = draw(st.lists(members, min_size=1, max_size=3, unique=True))
    if kind == "int":
        return as_flag_expr(draw(st.integers(0, 127)))
    if kind == "any":
        expr = picks[0]
        for m in picks[1:]:
            expr = expr | m
        return FlagExpr.from_value(expr) if not isinstance(expr, FlagExpr) else expr
    if kind == "all":
        expr = FlagExpr(all_of=int(picks[0]))
        for m in picks[1:]:
            expr = expr & m
        return expr
    if kind == "none":
        expr = ~picks[0]
        for m in picks[1:]:
            expr = expr & ~m
        return expr
    rest = [m for m in ALL if m not in picks]
    if not rest:
        return FlagExpr(any_of=(int(picks[0]),))
    return (picks[0] | picks[-1]) & ~rest[0] if len(picks) > 1 else picks[0] & ~rest[0]


@settings(max_examples=200, deadline=None)
@given(expressions(), st.lists(st.integers(0, 127), min_size=1, max_size=40))
def test_sql_equals_python_and_string_roundtrip(expr, values):
    assert parse_flag_expr(str(expr)) == expr
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (i INTEGER, f INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    sql, params = expr.to_sql("f")
    got = {r[0] for r in conn.execute(f"SELECT i FROM t WHERE {sql}", params)}
    want = {i for i, v in enumerate(values) if expr.matches(v)}
    assert got == want
