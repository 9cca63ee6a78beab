"""DJA grades → quality (the one mapping), the DJA table, photometric catalogues, programs.yaml, SOURCE arguments."""
from __future__ import annotations

import os

import numpy as np
import pytest
from astropy.table import Table
from real_inputs import DJA, OLD, REAL, SPECTRA, write_dja_table

from campfire.archive.grades import (
    DJA_GRADE_QUALITY,
    judgement_from_row,
    quality_from_dja_grade,
    reviewer_name,
    store_judgements,
)
from campfire.archive.photometry import parse_band_column, read_photometry
from campfire.archive.programs import parse_programs, read_programs
from campfire.archive.sources import expand_sources
from campfire.archive.table import read_dja_table
from campfire.catalog.aggregates import refresh_standard_aggregates
from campfire.errors import ValidationError

# -- grades ---------------------------------------------------------------------------------------


def test_the_dja_grade_mapping():
    # 3 robust -> secure, 2 ambiguous -> tentative, 1 no features / 0 data problem -> impossible, -1 -> not inspected
    assert DJA_GRADE_QUALITY == {3: 4, 2: 2, 1: 1, 0: 1, -1: 0}
    assert [quality_from_dja_grade(g) for g in (3, 2, 1, 0, -1, None, float("nan"), 3.0)] == [4, 2, 1, 1, 0, 0, 0, 4]
    for bad in (4, -2, 2.5, "A", "robust"):
        with pytest.raises(ValidationError, match="expected a DJA grade"):
            quality_from_dja_grade(bad)


def test_a_judgement_carries_z_only_when_the_grade_gives_one():
    row = {"grade": 3, "z_best": 6.1, "zgrade": 6.2, "reviewer": "DS", "comment": " CIV "}
    j = judgement_from_row(row, "obj", [("s1", "abc")], "t row 1")
    assert (j.reviewer, j.redshift, j.quality, j.comment, j.spectra) == ("dja:DS", 6.1, 4, "CIV", (("s1", "abc"),))
    assert judgement_from_row(dict(row, z_best=None), "obj", [], "").redshift == 6.2  # zgrade when z_best is missing
    assert judgement_from_row(dict(row, grade=1), "obj", [], "").redshift is None     # "no features": no redshift
    assert judgement_from_row(dict(row, grade=0), "obj", [], "").quality == 1
    assert judgement_from_row(dict(row, grade=-1), "obj", [], "") is None
    assert judgement_from_row(dict(row, reviewer=None), "obj", [], "").reviewer == "dja:unknown"
    assert reviewer_name("G. B.") == "dja:G.B."


def test_grades_are_stored_once_as_inspection_records_and_the_best_of_a_reviewer_counts(tmp_path):
    from campfire.archive.state import ensure_state
    from campfire.catalog.schema import create_catalog
    from campfire.catalog.writer import CatalogWriter, unit_vector

    conn = create_catalog(tmp_path / "c.db", owner="pipeline")
    ensure_state(conn)
    w = CatalogWriter(conn)
    with conn:
        w.add_programs([(1, "p1", "P1", "", 1)])
        w.add_observations([("obs", 1, "f", 0.0, 0.0, None, None)])
        w.add_objects([(o, "f", 10.0, 1.0, *unit_vector(10.0, 1.0), 2.0, 2.0, None, 0, 0, None, None, None, None, "t0")
                       for o in ("a", "b")])
        w.add_spectra([(f"{o}_{g}", o, o, "obs", 1, g.upper(), "CLEAR", "x", 1.0, 1.0, "v", 2.0, 0, f"sha-{o}{g}", 1,
                        10, 1.0, 5.0, "t0", None, None, None) for o in ("a", "b") for g in ("prism", "g395m")])
        refresh_standard_aggregates(conn)
    rows = [({"grade": 2, "z_best": 2.5, "reviewer": "DS"}, "a", "a_prism"),
            ({"grade": 3, "z_best": 2.1, "reviewer": "DS"}, "a", "a_g395m"),
            ({"grade": 1, "z_best": 9.0, "reviewer": "KH"}, "b", "b_prism")]
    js = [judgement_from_row(r, oid, [(sid, f"sha-{sid.replace('_', '')}")], "t") for r, oid, sid in rows]
    with conn:
        assert store_judgements(conn, js) == {"a", "b"}
    records = conn.execute("SELECT object_id, reviewer, quality, redshift, spectra_seen FROM inspections "
                           "ORDER BY inspection_id").fetchall()
    assert [r[:4] for r in records] == [("a", "dja:DS", 2, 2.5), ("a", "dja:DS", 4, 2.1), ("b", "dja:KH", 1, None)]
    assert '"spectrum_id":"a_g395m","sha256":"sha-ag395m"' in records[1][4]
    got = {r[0]: r[1:] for r in conn.execute("SELECT object_id, redshift, redshift_inspected, redshift_quality FROM objects")}
    assert got["a"] == (2.1, 2.1, 4)  # the reviewer's best-graded spectrum is their latest word
    assert got["b"] == (2.0, None, 1)  # impossible: the best redshift stays the automatic one
    with conn:
        assert store_judgements(conn, js) == set()  # an unchanged table adds nothing
    assert conn.execute("SELECT count(*) FROM inspections").fetchone()[0] == 3
    js[1] = judgement_from_row(dict(rows[1][0], grade=2), "a", [("a_g395m", "sha-ag395m")], "t")
    with conn:
        assert store_judgements(conn, js) == {"a"}  # a changed grade: that reviewer's rows again, as new records
    assert conn.execute("SELECT count(*) FROM inspections").fetchone()[0] == 5
    assert conn.execute("SELECT redshift_quality FROM objects WHERE object_id = 'a'").fetchone()[0] == 2
    with pytest.raises(ValidationError, match="without a redshift"):
        judgement_from_row({"grade": 3, "reviewer": "x"}, "a", [], "t")


# -- the DJA table --------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".fits"])
def test_dja_table_csv_and_fits(tmp_path, suffix):
    path = write_dja_table(tmp_path / f"dja{suffix}", files=SPECTRA[:2])
    t = read_dja_table(path)
    assert t.problems == []
    assert set(t.rows) == {p.name for p in SPECTRA[:2]}
    row = t.rows["borg-v4_prism-clear_1747_732.spec.fits"]
    assert (row["grade"], row["z_best"], row["reviewer"], row["root"]) == (3, 8.22, "GB", "borg-v4")


def test_dja_table_problems_are_reported_and_the_rest_is_used(tmp_path):
    extra = [{"file": "", "grade": 3}, {"file": SPECTRA[0].name, "grade": 2}, {"file": "x.spec.fits", "grade": 7},
             {"file": "y.spec.fits", "dq_flags": "CONTAMINATION,NO_SUCH_FLAG"}]
    path = tmp_path / "dja.csv"
    write_dja_table(path, files=SPECTRA[:2], extra_columns={"phot_f999w_tot_1": 1.0, "phot_f999w_etot_1": 0.1,
                                                            "phot_f444w_tot_1": 2.0, "phot_f444w_etot_1": 0.2,
                                                            "dq_flags": "CONTAMINATION"})
    t = Table.read(path)
    for r in extra:
        t.add_row({c: r.get(c, t[c].dtype.type()) for c in t.colnames})
    t.write(path, overwrite=True)
    table = read_dja_table(path)
    reasons = [reason for _, reason in table.problems]
    assert any("unknown band 'f999w'" in r for r in reasons)
    assert any("no file name" in r for r in reasons)
    assert any("also described by row 1; that row is used" in r for r in reasons)
    assert any("expected a DJA grade" in r and "not used" in r for r in reasons)
    assert any("unknown flag 'NO_SUCH_FLAG'" in r for r in reasons)
    assert set(table.rows) == {p.name for p in SPECTRA[:2]}
    assert table.rows[SPECTRA[0].name]["phot"] == {"f444w": (2.0, 0.2)}
    assert table.rows[SPECTRA[0].name]["_dq_flags"] == 2  # CONTAMINATION, OR-ed into the data's flags


def test_an_unreadable_or_wrong_table_is_one_problem(tmp_path):
    bad = tmp_path / "notes.csv"
    bad.write_text("a,b\n1,2\n")
    assert "no 'file' column" in read_dja_table(bad).problems[0][1]
    (tmp_path / "t.txt").write_text("x")
    assert "expected a .csv" in read_dja_table(tmp_path / "t.txt").problems[0][1]
    garbage = tmp_path / "g.fits"
    garbage.write_bytes(b"not fits at all" * 100)
    assert "cannot read it as a fits table" in read_dja_table(garbage).problems[0][1]


# -- photometric catalogues -----------------------------------------------------------------------


def test_band_column_spellings():
    assert parse_band_column("F444W") == ("f444w", "flux")
    assert parse_band_column("flux_f150w") == ("f150w", "flux")
    assert parse_band_column("f150w_flux") == ("f150w", "flux")
    assert parse_band_column("phot_f115w_tot_1") == ("f115w", "flux")
    assert parse_band_column("f160w_mag") == ("f160w", "mag")
    assert parse_band_column("dec") is None and parse_band_column("z_phot") is None


def test_photometry_units_magnitudes_sentinels_and_photo_z(tmp_path):
    import astropy.units as u

    t = Table()
    t["id"] = ["obj_1", "obj_2"]
    t["f444w"] = [500.0, -99.0] * u.nJy
    t["f444w_err"] = [50.0, 1.0] * u.nJy
    t["mag_f150w"] = [23.9, 25.0]
    t["magerr_f150w"] = [0.1, 0.2]
    t["z_phot"] = [3.0, 1.0]
    t["z160"] = [2.9, 0.8]
    t["z840"] = [3.2, 1.1]
    t.write(tmp_path / "p.ecsv")
    cat = read_photometry(tmp_path / "p.ecsv")
    assert cat.problems == [] and cat.name == "p"
    first, second = cat.rows
    assert first.ids == ("obj_1",)
    assert first.bands["f444w"] == (pytest.approx(0.5), pytest.approx(0.05))  # nJy -> uJy
    assert first.bands["f150w"] == (pytest.approx(1.0), pytest.approx(np.log(10) / 2.5 * 0.1))  # AB 23.9 = 1 uJy
    assert first.photo_z == (3.0, pytest.approx(0.1), pytest.approx(0.2))
    assert "f444w" not in second.bands  # the -99 sentinel
    assert second.bands["f150w"][0] == pytest.approx(10 ** ((23.9 - 25.0) / 2.5))


def test_photometry_problems(tmp_path):
    (tmp_path / "a.csv").write_text("ra,dec,f999w,f999w_err,f444w\n1,2,3,0.1,4\n")
    cat = read_photometry(tmp_path / "a.csv")
    reasons = " | ".join(r for _, r in cat.problems)
    assert "unknown band 'f999w'" in reasons and "no error column for band f444w" in reasons
    (tmp_path / "b.csv").write_text("name,f444w,f444w_err\nx,1,0.1\n")
    assert "cannot be matched" in read_photometry(tmp_path / "b.csv").problems[0][1]
    (tmp_path / "c.ecsv").write_text("# %ECSV 1.0\n# ---\n# datatype:\n# - {name: ra, datatype: float64}\n"
                                     "# - {name: dec, datatype: float64}\n# - {name: f444w, unit: s, datatype: float64}\n"
                                     "# - {name: f444w_err, datatype: float64}\nra dec f444w f444w_err\n1 2 3 4\n")
    assert "neither a flux density nor a magnitude" in read_photometry(tmp_path / "c.ecsv").problems[0][1]


# -- programs.yaml --------------------------------------------------------------------------------


def test_programs_yaml(tmp_path):
    path = tmp_path / "programs.yaml"
    path.write_text("programs:\n  - id: 2478\n    slug: stark-rxcj2248\n    public: false\n    members: [Carol]\n"
                    "  - id: 1747\nfields:\n  stark-rxcj2248-v4: RXCJ2248\n")
    spec = read_programs(path)
    stark = spec.programs[2478]
    assert (stark.slug, stark.is_public, stark.members, stark.program_name) == ("stark-rxcj2248", False, ("carol",), "")
    assert spec.programs[1747].slug == "1747" and spec.programs[1747].is_public
    assert spec.fields == {"stark-rxcj2248-v4": "rxcj2248"}


@pytest.mark.parametrize("text, message", [
    ("programs:\n  - id: x\n", "programs[0]: id: expected the JWST proposal ID"),
    ("programs:\n  - id: 1\n    publik: false\n", "unknown key(s) publik"),
    ("programs:\n  - id: 1\n    public: 'no'\n", "public: expected true or false"),
    ("programs:\n  - {id: 1, slug: a}\n  - {id: 2, slug: A}\n", "slug 'A' is also used by program 1"),
    ("programs:\n  - {id: 1}\n  - {id: 1}\n", "program 1 is listed twice"),
    ("programes: []\n", "unknown key(s) programes"),
    ("programs: [\n", "not valid YAML"),
])
def test_bad_programs_yaml_names_the_problem(tmp_path, text, message):
    path = tmp_path / "programs.yaml"
    path.write_text(text)
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        read_programs(path)
    assert parse_programs(None).programs == {}


# -- SOURCE arguments -----------------------------------------------------------------------------


def test_sources_folders_globs_urls_and_scopes(tmp_path):
    files, scopes, problems = expand_sources([str(REAL)])
    names = sorted(f.name for f in files)
    assert names == sorted([p.name for p in SPECTRA] + [f"jw01345062001_03101_0000{i}_nrs2_phot.138.1345_933.fits"
                                                         for i in (1, 2, 3)])
    assert problems == [] and scopes[0].kind == "dir"
    assert all(scopes[0].covers(f.key) for f in files)
    assert not scopes[0].covers(str(tmp_path / "x.fits"))
    by_glob, scopes_g, _ = expand_sources([str(DJA / "stark-*.spec.fits")])
    assert len(by_glob) == 3 and scopes_g[0].covers(by_glob[0].key) and not scopes_g[0].covers(str(OLD))
    by_url, _, _ = expand_sources([f"file://{DJA}"])
    assert sorted(f.key for f in by_url) == sorted(str(p) for p in DJA.glob("*.spec.fits"))
    # hidden folders and side files of an archive are not inputs; a stamp is size:mtime
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "a.fits").write_bytes(b"x")
    (tmp_path / "b.zfit.fits").write_bytes(b"x")
    (tmp_path / "c.fits").write_bytes(b"xyz")
    found, _, _ = expand_sources([tmp_path])
    assert [f.name for f in found] == ["c.fits"]
    assert found[0].stamp == f"3:{os.stat(tmp_path / 'c.fits').st_mtime_ns}"
    (tmp_path / "empty").mkdir()
    _, _, problems = expand_sources([tmp_path / "nope.fits", str(tmp_path / "*.nothing"), tmp_path / "empty"])
    assert [p[1] for p in problems] == ["no such file or directory", "the glob matched no file",
                                        "no *.fits files found there"]
