"""Inspection records and the consensus rule, on the catalog (no server).

The consensus rule is a pure function (campfire.catalog.consensus); the catalog keeps
the records (campfire.catalog.inspections) and derives each visibility set's fields
from the records that set may see (campfire.catalog.aggregates.refresh_inspected).
"""
from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

from campfire import Campfire, ValidationError
from campfire.catalog.aggregates import visible_program_ids
from campfire.catalog.consensus import consensus
from campfire.catalog.db import catalog_path, connect
from campfire.catalog.inspections import add_inspection, add_inspections, inspections_for
from campfire.catalog.schema import CARRIED_OVER, VIEW_COLUMNS, upgrade_catalog
from campfire.catalog.visibility import Visibility
from campfire.demo.identity import DEMO_REVIEWER
from campfire.errors import NotFoundError


def rec(reviewer, z, q, t, **kw):
    return {"reviewer": reviewer, "redshift": z, "quality": q, "created_at": f"2025-01-01T00:00:{t:02d}", **kw}


# ------------------------------------------------------------------------------ the rule
def test_single_reviewer_grade_stands_as_given():
    assert consensus([rec("ann", 3.42, 4, 1)]) == {"state": "single", "redshift": 3.42, "quality": 4,
                                                    "n_reviewers": 1}


def test_agreement_gives_the_median_and_the_lowest_grade():
    got = consensus([rec("ann", 3.420, 4, 1), rec("ben", 3.428, 3, 2), rec("cy", 3.424, 4, 3)])
    assert got["state"] == "consensus" and got["n_reviewers"] == 3
    assert got["redshift"] == pytest.approx(3.424) and got["quality"] == 3


def test_disagreement_is_a_conflict_without_a_redshift():
    # |dz|/(1+z) = 0.03 / 4.42 = 0.0068 > 0.005
    got = consensus([rec("ann", 3.42, 4, 1), rec("ben", 3.45, 4, 2)])
    assert got == {"state": "conflict", "redshift": None, "quality": 0, "n_reviewers": 2}
    # just inside the tolerance agrees
    assert consensus([rec("ann", 3.42, 4, 1), rec("ben", 3.44, 3, 2)])["state"] == "consensus"


def test_an_admin_resolution_wins_over_the_conflict():
    records = [rec("ann", 3.42, 4, 1), rec("ben", 5.1, 4, 2),
               rec("root", 5.1, 3, 3, resolves_conflict=True), rec("cy", 3.42, 4, 4)]
    assert consensus(records) == {"state": "resolved", "redshift": 5.1, "quality": 3, "n_reviewers": 4}


def test_low_grades_only_take_the_highest_grade():
    got = consensus([rec("ann", 2.0, 2, 1), rec("ben", None, 1, 2), rec("cy", 2.5, 2, 3)])
    assert got == {"state": "consensus", "redshift": 2.5, "quality": 2, "n_reviewers": 3}  # latest of the 2s
    assert consensus([rec("ann", None, 1, 1)]) == {"state": "single", "redshift": None, "quality": 1,
                                                   "n_reviewers": 1}


def test_low_grades_do_not_block_a_confident_one():
    got = consensus([rec("ann", 3.42, 4, 1), rec("ben", 6.0, 2, 2)])
    assert got["state"] == "consensus" and got["redshift"] == 3.42 and got["quality"] == 4


def test_only_each_reviewers_latest_record_counts():
    # ann first disagreed with ben, then changed her mind: no conflict any more
    records = [rec("ann", 5.0, 4, 1), rec("ben", 3.42, 4, 2), rec("ann", 3.421, 3, 3)]
    got = consensus(records)
    assert got["state"] == "consensus" and got["quality"] == 3 and got["n_reviewers"] == 2
    # the order given does not matter, the times do
    assert consensus(list(reversed(records))) == got
    # a later "not inspected" withdraws a grade
    assert consensus([rec("ann", 3.42, 4, 1), rec("ann", None, 0, 2)])["state"] == "none"


# ---------------------------------------------------------------------------- the catalog
@pytest.fixture
def root(demo_root, tmp_path):
    """A writable copy of the demo catalog (no products: the records need none)."""
    dest = tmp_path / "root"
    (dest / "meta").mkdir(parents=True)
    shutil.copyfile(catalog_path(demo_root), catalog_path(dest))
    return dest


@pytest.fixture
def mixed(root):
    """An object with a public and a proprietary spectrum: (object_id, public spectrum, proprietary spectrum)."""
    conn = sqlite3.connect(catalog_path(root))
    row = conn.execute(
        "SELECT s1.object_id, s1.spectrum_id, s2.spectrum_id FROM spectra s1 "
        "JOIN programs p1 ON p1.program_id = s1.program_id AND p1.is_public = 1 "
        "JOIN spectra s2 ON s2.object_id = s1.object_id "
        "JOIN programs p2 ON p2.program_id = s2.program_id AND p2.is_public = 0 ORDER BY 1 LIMIT 1").fetchone()
    conn.close()
    return row


def _view(conn, key, oid):
    return conn.execute("SELECT redshift, redshift_inspected, redshift_quality, inspection_state, inspected_at "
                        "FROM object_aggregates WHERE visibility = ? AND object_id = ?", (key, oid)).fetchone()


def test_the_demo_grades_are_records_resting_on_what_they_graded(root):
    """Issue 15.5: what an anonymous caller sees of a grade comes from public spectra only."""
    conn = sqlite3.connect(catalog_path(root))
    public = visible_program_ids(conn, "")
    n_records = conn.execute("SELECT count(*) FROM inspections WHERE reviewer = ?", (DEMO_REVIEWER,)).fetchone()[0]
    assert n_records > 100
    # the object of the leak report: its public view rests on its one public spectrum (S/N 1.7)
    oid = "ember_uds_p4_58515"
    records = inspections_for(conn, oid, Visibility(program_ids=frozenset(public), key=""))
    assert len(records) == 1 and "S/N 1.7" in records[0]["comment"]
    seen = [s["spectrum_id"] for s in records[0]["spectra_seen"]]
    snr = conn.execute(f"SELECT max(signal_to_noise) FROM spectra WHERE spectrum_id IN ({','.join('?' * len(seen))})",
                       seen).fetchone()[0]
    assert snr == pytest.approx(1.66, abs=0.01)
    assert _view(conn, "", oid)[2] == records[0]["quality"]
    everything = inspections_for(conn, oid, Visibility.everything())
    assert len(everything) == 2 and _view(conn, "*", oid)[2] == everything[-1]["quality"]
    # every object: the public view's quality is the consensus of its public records only
    for (oid,) in conn.execute("SELECT object_id FROM object_aggregates WHERE visibility = ''").fetchall():
        visible = inspections_for(conn, oid, Visibility(program_ids=frozenset(public), key=""))
        assert _view(conn, "", oid)[2] == consensus(visible)["quality"], oid
        # the objects row holds the view of everything
        star = consensus(inspections_for(conn, oid, Visibility.everything()))
        assert conn.execute("SELECT redshift_quality FROM objects WHERE object_id = ?", (oid,)).fetchone()[0] == \
            star["quality"]
    conn.close()


def test_a_grade_on_a_proprietary_spectrum_stays_with_its_program(root, mixed):
    oid, public_spec, prop_spec = mixed
    conn = connect(catalog_path(root), readonly=False)
    before_public = _view(conn, "", oid)
    with conn:
        stored = add_inspection(conn, oid, "ann", redshift=7.123, quality="secure", comment="Ha and [OIII]",
                                issues=["contaminated"], spectra_seen=[public_spec, prop_spec])
    assert stored["quality"] == 4 and stored["quality_name"] == "secure" and stored["issues"] == ["CONTAMINATED"]
    assert {s["spectrum_id"] for s in stored["spectra_seen"]} == {public_spec, prop_spec}
    assert stored["outdated"] is False and stored["reviewer"] == "ann"
    assert set(stored) == {"inspection_id", "object_id", "reviewer", "redshift", "quality", "quality_name", "comment",
                           "issues", "spectra_seen", "resolves_conflict", "created_at", "outdated"}
    # members (and the pipeline) see it; the public set does not, in any field
    star = _view(conn, "*", oid)
    assert star[1] == 7.123 or star[3] == "conflict"
    assert _view(conn, "", oid) == before_public
    public = Visibility(program_ids=frozenset(visible_program_ids(conn, "")), key="")
    assert stored["inspection_id"] not in {r["inspection_id"] for r in inspections_for(conn, oid, public)}
    # a record on the public spectrum alone reaches the public set
    with conn:
        add_inspection(conn, oid, "ben", redshift=7.125, quality=3, spectra_seen=[public_spec])
    assert "ben" in {r["reviewer"] for r in inspections_for(conn, oid, public)}
    view = _view(conn, "", oid)
    assert view[3] in ("consensus", "conflict") and view[4] > before_public[4]
    conn.close()


def test_local_queries_reflect_a_new_grade(root, mixed):
    oid = mixed[0]
    cf = Campfire(data_dir=root)
    conn = connect(catalog_path(root), readonly=False)
    with conn:  # everything about the object withdrawn: then one secure grade
        for reviewer in {r["reviewer"] for r in inspections_for(conn, oid, Visibility.everything())}:
            add_inspection(conn, oid, reviewer, quality=0)
    assert oid not in set(cf.query_objects(inspected_only=True)["object_id"])
    with conn:
        add_inspection(conn, oid, "ann", redshift=2.2222, quality="probable")
    conn.close()
    got = cf.query_objects(inspected_only=True, redshift_quality=[3, 4], search=oid)
    assert list(got["object_id"]) == [oid]
    assert got["redshift_inspected"][0] == 2.2222 and got["redshift"][0] == 2.2222
    spectra = cf.query_spectra(redshift_range=(2.2, 2.25), redshift_quality=["probable"], search=oid)
    assert len(spectra) >= 2 and set(spectra["object_id"]) == {oid}


def test_history_is_never_overwritten(root, mixed):
    oid = mixed[0]
    conn = connect(catalog_path(root), readonly=False)
    with conn:
        first = add_inspection(conn, oid, "ann", redshift=3.0, quality=3)
        add_inspection(conn, oid, "ann", redshift=3.5, quality=4)
    with pytest.raises(sqlite3.IntegrityError, match="history"):
        conn.execute("UPDATE inspections SET quality = 1 WHERE inspection_id = ?", (first["inspection_id"],))
    conn.rollback()
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
        conn.execute("DELETE FROM inspections WHERE inspection_id = ?", (first["inspection_id"],))
    conn.rollback()
    mine = [r for r in inspections_for(conn, oid, Visibility.everything()) if r["reviewer"] == "ann"]
    assert [(r["redshift"], r["quality"]) for r in mine] == [(3.0, 3), (3.5, 4)]
    conn.close()


def test_an_inspection_is_outdated_when_a_file_it_saw_changed(root, mixed):
    oid, public_spec, _ = mixed
    conn = connect(catalog_path(root), readonly=False)
    with conn:
        add_inspection(conn, oid, "ann", redshift=3.0, quality=3, spectra_seen=[public_spec])
    assert not inspections_for(conn, oid, Visibility.everything())[-1]["outdated"]
    with conn:  # the pipeline reprocesses the spectrum
        conn.execute("UPDATE spectra SET file_hash = ? WHERE spectrum_id = ?", ("0" * 64, public_spec))
    records = inspections_for(conn, oid, Visibility.everything())
    assert records[-1]["outdated"] is True
    assert all(r["outdated"] for r in records if public_spec in {s["spectrum_id"] for s in r["spectra_seen"]})
    with conn:  # a new look at the new file is current again
        assert add_inspection(conn, oid, "ann", redshift=3.0, quality=4, spectra_seen=[public_spec])["outdated"] is False
    conn.close()


@pytest.mark.parametrize("kwargs, message", [
    ({"quality": "great", "redshift": 1.0}, r"quality: unknown quality 'great'; allowed: 0-4 or 'not_inspected'"),
    ({"quality": 7, "redshift": 1.0}, r"quality: expected an int 0-4"),
    ({"quality": True, "redshift": 1.0}, r"quality: expected an int 0-4"),
    ({"quality": 3}, r"redshift: a grade of 3 \(probable\) needs a redshift"),
    ({"quality": 3, "redshift": -1.0}, r"redshift: expected a number in \[0, 30\]"),
    ({"quality": 3, "redshift": float("nan")}, r"redshift: expected a number in \[0, 30\]"),
    ({"quality": 3, "redshift": "3.1"}, r"redshift: expected a number or None"),
    ({"quality": 3, "redshift": 1.0, "comment": "x" * 2001}, r"comment: at most 2000 characters, got 2001"),
    ({"quality": 3, "redshift": 1.0, "issues": ["SLIME"]},
     r"issues: unknown issue flag 'SLIME'; allowed: BAD_SPECTRUM, WRONG_EXTRACTION, CONTAMINATED"),
    ({"quality": 3, "redshift": 1.0, "spectra_seen": ["not_a_spectrum_of_it"]},
     r"spectra_seen: 'not_a_spectrum_of_it' is not a spectrum of object"),
    ({"quality": 3, "redshift": 1.0, "created_at": "yesterday"}, r"created_at: expected ISO time text"),
])
def test_bad_values_are_refused_with_the_parameter_named(root, mixed, kwargs, message):
    conn = connect(catalog_path(root), readonly=False)
    n = conn.execute("SELECT count(*) FROM inspections").fetchone()[0]
    with pytest.raises(ValidationError, match=message):
        add_inspection(conn, mixed[0], "ann", **kwargs)
    conn.rollback()
    with pytest.raises(ValidationError, match="reviewer: expected an account name"):
        add_inspection(conn, mixed[0], "Not A Name", quality=1)
    with pytest.raises(NotFoundError, match="object 'no_such_object' not found"):
        add_inspection(conn, "no_such_object", "ann", quality=1)
    assert conn.execute("SELECT count(*) FROM inspections").fetchone()[0] == n
    conn.close()


def test_a_producer_writes_many_records_and_refreshes_once(root, mixed):
    """The ingest's path: records of imported grades, then one refresh of the aggregates."""
    from campfire.catalog.aggregates import refresh_standard_aggregates

    oid, public_spec, _ = mixed
    conn = connect(catalog_path(root), readonly=False)
    with conn:
        ids = add_inspections(conn, [
            {"object_id": oid, "reviewer": "dja:GB", "quality": 4, "redshift": 4.5, "spectra_seen": [public_spec],
             "created_at": "2024-03-01T00:00:00Z", "comment": "DJA grade 3"},
            {"object_id": oid, "reviewer": "dja:AdG", "quality": 4, "redshift": 4.501, "spectra_seen": [public_spec],
             "created_at": "2024-03-02T00:00:00Z"},
        ], refresh=False)
        assert len(ids) == 2
        refresh_standard_aggregates(conn)
    reviewers = {r["reviewer"] for r in inspections_for(conn, oid, Visibility.everything())}
    assert {"dja:GB", "dja:AdG"} <= reviewers
    # imported grades keep their own time, but what they changed is newer than the last sync
    view = _view(conn, "", oid)
    assert view[4] > "2025"
    conn.close()


def _make_v2(root):
    """Turn the catalog under ``root`` into what campfire wrote with schema 2 (grades in objects only)."""
    conn = sqlite3.connect(catalog_path(root))
    conn.execute("DROP TABLE inspections")
    conn.execute("DROP INDEX object_aggregates_redshift")
    conn.execute("DROP INDEX IF EXISTS object_aggregates_inspected")  # a demo built by an earlier draft
    for col in VIEW_COLUMNS:
        conn.execute(f"ALTER TABLE object_aggregates DROP COLUMN {col}")
    conn.execute("UPDATE archive_meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()


def test_a_schema_2_catalog_keeps_its_grades_as_records(root, mixed):
    oid = mixed[0]
    conn = sqlite3.connect(catalog_path(root))
    before = dict(conn.execute("SELECT object_id, redshift_quality FROM objects").fetchall())
    conn.close()
    _make_v2(root)
    old = Campfire(data_dir=root)  # a schema-2 catalog still answers, from the objects rows
    assert old.query_objects(search=oid)["redshift_quality"][0] == before[oid]
    assert upgrade_catalog(root) is True
    conn = sqlite3.connect(catalog_path(root))
    carried = conn.execute("SELECT object_id, quality, spectra_seen FROM inspections WHERE reviewer = ?",
                           (CARRIED_OVER,)).fetchall()
    assert {o: q for o, q, _ in carried} == {o: q for o, q in before.items() if q > 0}
    n_spectra = conn.execute("SELECT count(*) FROM spectra WHERE object_id = ?", (oid,)).fetchone()[0]
    assert len(json.loads(next(s for o, _, s in carried if o == oid))) == n_spectra
    # everything keeps its grades; the public set no longer sees one resting on a proprietary spectrum
    assert dict(conn.execute("SELECT object_id, redshift_quality FROM objects").fetchall()) == before
    assert _view(conn, "*", oid)[2] == before[oid]
    assert _view(conn, "", oid)[2] == 0
    conn.close()
    assert upgrade_catalog(root) is False  # idempotent


def test_grading_in_an_archive_root_of_ones_own(root, mixed, capsys):
    """Campfire(data_dir=<pipeline root>).inspect writes there; a synced copy refuses (its grades go to the server)."""
    from campfire import cli
    from campfire.errors import CampfireError

    oid = mixed[0]
    cf = Campfire(data_dir=root)
    stored = cf.inspect(oid, redshift=1.5, quality="secure", comment="by hand", reviewer="ann")
    assert stored["reviewer"] == "ann" and stored["consensus"]["n_reviewers"] >= 1
    table = cf.get_inspections(oid)
    assert table["reviewer"][-1] == "ann" and table["comment"][-1] == "by hand"
    assert table.colnames == ["inspection_id", "reviewer", "redshift", "quality", "quality_name", "comment", "issues",
                              "spectra_seen", "resolves_conflict", "created_at", "outdated"]
    assert table.meta["consensus"] == consensus(inspections_for(
        sqlite3.connect(catalog_path(root)), oid, Visibility.everything()))
    # withdraw every grade but ann's new one: the catalog follows
    for reviewer in set(table["reviewer"]) - {"ann"}:
        cf.inspect(oid, quality=0, reviewer=str(reviewer))
    got = cf.query_objects(inspected_only=True, redshift_quality=[3, 4], search=oid)
    assert list(got["redshift_inspected"]) == [1.5]
    # the CLI on the same root (reviewer named, since there is no login)
    assert cli.main(["inspect", oid, "--redshift", "1.501", "--quality", "4", "--data-dir", str(root),
                     "--reviewer", "ben"]) == 0
    assert "consensus: consensus, z=1.5005, quality 4, 2 reviewer(s)" in capsys.readouterr().out
    with pytest.raises(ValidationError, match="quality: required"):
        cf.inspect(oid, redshift=1.5)
    with pytest.raises(NotFoundError, match="object 'nope' not found"):
        cf.get_inspections("nope")
    # a client's synced copy is not the place for grades
    conn = sqlite3.connect(catalog_path(root))
    conn.execute("UPDATE archive_meta SET value = 'client' WHERE key = 'owner'")
    conn.commit()
    conn.close()
    with pytest.raises(CampfireError, match="synced copy of a server's catalog"):
        Campfire(data_dir=root).local_catalog.inspect(oid, quality=1, reviewer="ann")
    with pytest.raises(CampfireError, match="no server is configured"):
        Campfire(data_dir=root).inspect(oid, quality=1)
