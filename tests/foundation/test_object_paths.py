"""Objects queries give one answer whatever access path the planner picks (campfire.catalog.planner.object_path).

Each case runs with the planner's own choice, with SQLite's plan (no hints), and with
every index refused (as on a catalog too large for any filter to be selective), for pages
and counts in several sort orders; the unsorted answers are also checked against the
plain-Python oracle of test_local_catalog.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_local_catalog import expected_objects, filter_cases, raw  # noqa: F401, F811 (fixture)

from campfire.catalog import compile as compile_module
from campfire.catalog import planner
from campfire.catalog.filters import build_query
from campfire.catalog.local import LocalCatalog

SORTS = [("object_id", "asc"), ("redshift", "desc"), ("max_snr", "desc"), ("ra", "asc")]
PAGES = [(None, 0), (25, 0), (10, 30)]


def _answer(cat: LocalCatalog, f: dict, sort: str, sort_dir: str, limit, offset):
    q = build_query("objects", **f, sort=sort, sort_dir=sort_dir, limit=limit, offset=offset)
    table = cat.query(q)
    return table, cat.count(q)


def _same(a, b, label):
    assert a.colnames == b.colnames and len(a) == len(b), label
    for name in a.colnames:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), (label, name)


@pytest.fixture(scope="module")
def cat(demo_root):
    return LocalCatalog(demo_root)


def test_every_object_path_returns_the_same_rows(cat, raw, monkeypatch):
    cases = filter_cases(raw) + [{}]
    chosen = {}
    for i, f in enumerate(cases):
        for sort, sort_dir in SORTS:
            for limit, offset in PAGES:
                chosen[(i, sort, sort_dir, limit, offset)] = _answer(cat, f, sort, sort_dir, limit, offset)
        if f:
            assert set(chosen[(i, "object_id", "asc", None, 0)][0]["object_id"]) == expected_objects(raw, f), f
    with monkeypatch.context() as m:  # SQLite's own plan, no hints
        m.setattr(compile_module, "object_path", lambda *a, **k: planner.ObjectPath())
        for key, (table, n) in chosen.items():
            got, got_n = _answer(cat, cases[key[0]], *key[1:])
            _same(table, got, key)
            assert got_n == n, key
    # every filter called broad, pages walked or sorted
    monkeypatch.setattr(planner, "_MIN_CAP", 0)
    monkeypatch.setattr(planner, "_SELECTIVE", 0.0)
    for page_walk in (0, 10**9):
        monkeypatch.setattr(planner, "_PAGE_WALK", page_walk)
        for key, (table, n) in chosen.items():
            got, got_n = _answer(cat, cases[key[0]], *key[1:])
            _same(table, got, (key, page_walk))
            assert got_n == n, key


def test_object_paths_follow_the_probes(cat, monkeypatch):
    """A selective filter's index drives; broad filters walk the caller's rows in order and stop after the page."""
    monkeypatch.setattr(planner, "_MIN_CAP", 0)
    monkeypatch.setattr(planner, "_SELECTIVE", 0.2)  # the demo is small: call 20 % selective

    def plan(count=False, **f):
        q = dataclasses.replace(build_query("objects", **f), limit=f.get("limit", 100)).resolve(cat.vocabulary())
        sql, params = cat.compile(q, count=count)
        rows = cat.conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        # the plan of the query itself: not of the per-row scalar subqueries (an object's few tags are sorted there)
        inner = {r[0] for r in rows if r[-1].startswith("CORRELATED SCALAR SUBQUERY")}
        for node, parent, _, _ in rows:
            if parent in inner:
                inner.add(node)
        return " | ".join(r[-1] for r in rows if r[0] not in inner)

    assert "USING INDEX object_aggregates_redshift" in plan(redshift_range=(7.0, 7.5))
    assert "INDEX objects_field" in plan(fields=["egs"], redshift_range=(0, 20))
    walk = plan(redshift_range=(0, 20), redshift_quality=[0, 1, 2, 3, 4])
    assert walk.startswith("SEARCH a USING PRIMARY KEY (visibility=?)") and "TEMP B-TREE FOR ORDER BY" not in walk
    by_z = plan(redshift_range=(0, 20), sort="redshift", sort_dir="desc")
    assert by_z.startswith("SEARCH a USING INDEX object_aggregates_redshift") and "TEMP B-TREE FOR ORDER BY" not in by_z
    assert "TEMP B-TREE FOR ORDER BY" in plan(sort="ra")  # no index on ra: all rows, then a sort
    # counts read objects only when a filter needs it
    assert "objects" not in plan(count=True, redshift_range=(0, 20), inspected_only=True).replace("object_aggregates", "")
    assert " o " in plan(count=True, fields=["egs", "uds", "gds", "cosmos"], redshift_range=(0, 20)) + " "
    # tags: one lookup per member of the tag
    assert "SEARCH ot USING" in plan(tags=["lrd"]) or "SCAN ot" in plan(tags=["lrd"])
