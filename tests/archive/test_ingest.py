"""Ingest of the real spectra: values against the files, grades, photometry, incremental runs, bad inputs, modes."""
from __future__ import annotations

import hashlib
import io
import math
import os
import pathlib
import shutil
import sqlite3

import numpy as np
import pytest
from astropy.io import fits
from real_inputs import DJA, OLD, PHOT_BANDS, SLITLETS, SPECTRA, STARK, TABLE_ROWS, copy_inputs, write_dja_table

from campfire.archive import ingest
from campfire.errors import CampfireError, ValidationError
from campfire.flags import decode_flags
from campfire.io.fits import read_redshift_fit
from campfire.models import SpectrumData

FAST = {"scheduler": "threads", "workers": 2, "progress": False}


def _sha(path) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def _db(root) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{root}/meta/campfire.db?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def _rows(root, sql, params=()):
    with _db(root) as conn:
        return [dict(r) for r in conn.execute(sql, params)]


def _spectra(root) -> dict[str, dict]:
    return {r["spectrum_id"]: r for r in _rows(root, "SELECT * FROM spectra")}


def _status(summary) -> dict[str, str]:
    return {pathlib.Path(r["source"]).name: r["status"] for r in summary}


# -- the real archive: values against the files -----------------------------------------------------

def test_every_real_spectrum_is_in_the_catalog_with_the_values_of_its_file(real_archive):
    spectra = _spectra(real_archive)
    assert len(spectra) == len(SPECTRA) == 7
    state = {pathlib.Path(r["source"]).name: r for r in _rows(real_archive, "SELECT * FROM ingest_files")}
    for path in SPECTRA:
        src = SpectrumData.from_fits(path)
        h = src.header
        row = spectra[state[path.name]["spectrum_id"]]
        assert (row["grating"], row["filter"]) == (h["GRATING"], h["FILTER"])
        assert row["exposure_time"] == pytest.approx(float(h.get("EXPTIME", h.get("EFFEXPTM"))))
        assert row["reduction_version"] == h["VERSION"]
        assert row["n_pix"] == src.wavelength.size
        good = np.isfinite(src.fnu)
        assert row["wave_min"] == pytest.approx(src.wavelength[good].min())
        assert row["wave_max"] == pytest.approx(src.wavelength[good].max())
        assert row["signal_to_noise"] == pytest.approx(np.median(src.fnu[good] / src.fnu_err[good]))
        assert state[path.name]["source_sha256"] == _sha(path)
        obj = _rows(real_archive, "SELECT * FROM objects WHERE object_id = ?", (row["object_id"],))[0]
        assert (obj["ra"], obj["dec"]) == (pytest.approx(h["SRCRA"], abs=1e-9), pytest.approx(h["SRCDEC"], abs=1e-9))
        # the served copy: its hash is the catalog's, and it opens as the same spectrum (μm, μJy)
        copy = real_archive / row["fits_path"]
        assert _sha(copy) == row["file_hash"] and copy.stat().st_size == row["file_size"]
        local = _rows(real_archive, "SELECT * FROM local_files WHERE spectrum_id = ?", (row["spectrum_id"],))[0]
        assert local["sha256"] == row["file_hash"]
        served = SpectrumData.from_fits(copy)
        assert served.spectrum_id == row["spectrum_id"] and served.header["ORIGSHA"] == _sha(path)
        assert np.array_equal(served.wavelength, src.wavelength)
        assert np.array_equal(served.fnu, src.fnu, equal_nan=True)
        assert served.header["ZAUTO"] == pytest.approx(row["redshift_auto"], abs=1e-5)
    old = spectra["ceers-msaexp-test_prism_clear_933"]  # EFFEXPTM of the older file is the total (3 x 1021.222 s)
    assert old["exposure_time"] == pytest.approx(3063.666) and old["program_id"] == 1345


def test_the_archive_copy_keeps_every_input_hdu_byte_for_byte(real_archive):
    spectra = _spectra(real_archive)
    for path in (STARK[0], OLD):
        row = next(r for r in spectra.values() if _rows(real_archive, "SELECT 1 FROM ingest_files WHERE source = ? "
                                                       "AND spectrum_id = ?", (str(path), r["spectrum_id"])))
        original, copy = path.read_bytes(), (real_archive / row["fits_path"]).read_bytes()
        with fits.open(io.BytesIO(original)) as a, fits.open(io.BytesIO(copy)) as b:
            names = [h.name for h in b]
            assert names == [h.name for h in a] + ["ZFIT", "ZMODEL"]
            for i in range(1, len(a)):
                ia, ib = a.fileinfo(i), b.fileinfo(i)
                assert original[ia["hdrLoc"]:ia["datLoc"] + ia["datSpan"]] == copy[ib["hdrLoc"]:ib["datLoc"] + ib["datSpan"]]
            assert b[0].header["SPECID"] == row["spectrum_id"] and b[0].header["ORIGFILE"] == path.name


# PROVENANCE.md's rough line IDs (and msaexp's own test value for the older file)
LINE_REDSHIFTS = {"borg-v4_prism_clear_732": 8.22, "excels-uds04-v4_g395m_f290lp_63107": 8.27,
                  "stark-rxcj2248-v4_g140m_f100lp_3": 6.10, "stark-rxcj2248-v4_g235m_f170lp_3": 6.10,
                  "stark-rxcj2248-v4_g395m_f290lp_3": 6.10, "ceers-msaexp-test_prism_clear_933": 4.2341}


def test_automatic_redshifts_match_the_line_ids_and_their_fits_are_served(real_archive):
    spectra = _spectra(real_archive)
    for sid, z in LINE_REDSHIFTS.items():
        assert abs(spectra[sid]["redshift_auto"] - z) / (1 + z) < 0.005, sid
    # no lines: the Lyman break between 1.5 and 1.8 um puts JADES-GS-z13-0 at z = 13-14
    assert 13.0 < spectra["gds-udeep-v4_prism_clear_20128771"]["redshift_auto"] < 14.0
    for sid, row in spectra.items():
        fit = read_redshift_fit(real_archive / row["fits_path"])
        assert fit["redshift"] == pytest.approx(row["redshift_auto"])
        # the 68% interval and confidence: in the catalog, the served fit and the primary header alike
        assert row["redshift_auto_lo"] <= row["redshift_auto"] <= row["redshift_auto_hi"], sid
        assert (fit["redshift_lo"], fit["redshift_hi"], fit["confidence"]) == pytest.approx(
            (row["redshift_auto_lo"], row["redshift_auto_hi"], row["redshift_auto_confidence"]))
        header = fits.getheader(real_archive / row["fits_path"], 0)
        assert (header["ZAUTOLO"], header["ZAUTOHI"], header["ZCONF"]) == pytest.approx(
            (row["redshift_auto_lo"], row["redshift_auto_hi"], row["redshift_auto_confidence"]), abs=1e-4)
        assert fit["z_grid"].size == fit["chi2_grid"].size > 100 and fit["model_wave"].size == fit["model_fnu"].size
        assert fit["model_wave"].min() == pytest.approx(row["wave_min"])  # the model spans the valid pixels
        assert fit["model_wave"].max() == pytest.approx(row["wave_max"])


def test_objects_ids_fields_programs_and_flags(real_archive):
    objects = {r["object_id"]: r for r in _rows(real_archive, "SELECT * FROM objects")}
    assert set(objects) == {"borg-v4_732", "excels-uds04-v4_63107", "gds-udeep-v4_20128771", "stark-rxcj2248-v4_3",
                            "ceers-msaexp-test_933"}
    stark = _rows(real_archive, "SELECT spectrum_id, grating, dq_flags FROM spectra WHERE object_id = ?",
                  ("stark-rxcj2248-v4_3",))
    assert sorted(r["grating"] for r in stark) == ["G140M", "G235M", "G395M"]  # one object, three gratings
    assert all("CHIP_GAP" in decode_flags(r["dq_flags"], "dq_flags") for r in stark)
    old = _spectra(real_archive)["ceers-msaexp-test_prism_clear_933"]
    assert "PARTIAL_COVERAGE" in decode_flags(old["dq_flags"], "dq_flags")
    fields = {o: r["field"] for o, r in objects.items()}
    assert fields == {"borg-v4_732": "j0439m5243", "excels-uds04-v4_63107": "uds", "gds-udeep-v4_20128771": "gds",
                      "stark-rxcj2248-v4_3": "j2248m4432", "ceers-msaexp-test_933": "egs"}
    programs = {r["program_id"]: r for r in _rows(real_archive, "SELECT * FROM programs")}
    assert set(programs) == {1345, 1747, 2478, 3215, 3543}
    assert all(p["is_public"] == 1 and p["slug"] == str(pid) for pid, p in programs.items())
    assert programs[2478]["pi_name"] == "Stark, Daniel P." and "Reionization" in programs[2478]["program_name"]
    aggs = {r["object_id"]: r for r in _rows(real_archive, "SELECT * FROM object_aggregates WHERE visibility = ''")}
    assert aggs["stark-rxcj2248-v4_3"]["n_spectra"] == 3 and aggs["stark-rxcj2248-v4_3"]["gratings"] == "G140M,G235M,G395M"


def test_dja_grades_become_inspected_redshifts_by_the_documented_mapping(real_archive):
    objects = {r["object_id"]: r for r in _rows(real_archive, "SELECT * FROM objects")}
    expect = {  # object: (quality, inspected z) from TABLE_ROWS through DJA_GRADE_QUALITY
        "borg-v4_732": (4, 8.22), "excels-uds04-v4_63107": (2, 8.27), "gds-udeep-v4_20128771": (1, None),
        "stark-rxcj2248-v4_3": (4, 6.10), "ceers-msaexp-test_933": (0, None)}
    for oid, (quality, z) in expect.items():
        o = objects[oid]
        assert (o["redshift_quality"], o["redshift_inspected"]) == (quality, z), oid
        best = z if quality >= 2 else o["redshift_auto"]
        assert o["redshift"] == pytest.approx(best), oid
    assert TABLE_ROWS["gds-udeep-v4_prism-clear_3215_20128771.spec.fits"][2] == 1


def test_photometry_is_attached_by_position(real_archive):
    phot = _rows(real_archive, "SELECT * FROM photometry")
    by_object = {}
    for r in phot:
        by_object.setdefault(r["object_id"], {})[r["band"]] = r
    assert set(by_object) == {"borg-v4_732", "excels-uds04-v4_63107", "gds-udeep-v4_20128771", "stark-rxcj2248-v4_3",
                              "ceers-msaexp-test_933"}
    assert set(by_object["borg-v4_732"]) <= set(PHOT_BANDS) and len(by_object["borg-v4_732"]) >= 6
    assert by_object["borg-v4_732"]["f444w"]["wavelength"] == pytest.approx(4.40, abs=0.01)
    objs = _rows(real_archive, "SELECT has_photometry, phot_catalog FROM objects")
    assert all(o["has_photometry"] == 1 and o["phot_catalog"] == "synthetic-nircam" for o in objs)


# -- incremental and safe --------------------------------------------------------------------------

@pytest.fixture
def small(tmp_path):
    """Two DJA files and the older one as writable inputs, ingested once without fits."""
    inputs = copy_inputs(tmp_path / "in", [STARK[2], DJA / "borg-v4_prism-clear_1747_732.spec.fits", OLD])
    root = tmp_path / "root"
    summary = ingest(root, inputs, fit=False, **FAST)
    assert summary.meta["counts"]["new"] == 3
    return inputs, root


def test_an_unchanged_reingest_changes_nothing_at_all(small):
    inputs, root = small
    db = root / "meta" / "campfire.db"
    before, mtime = _sha(db), db.stat().st_mtime_ns
    summary = ingest(root, inputs, fit=False, **FAST)
    assert set(summary["status"]) == {"unchanged"} and summary.meta["prepared"] == 0
    assert _sha(db) == before and db.stat().st_mtime_ns == mtime
    # touched (new mtime, same bytes): read again, recognised, nothing refitted or moved
    stamps = _rows(root, "SELECT spectrum_id, updated_at FROM spectra")
    for f in inputs.iterdir():
        os.utime(f, None)
    summary = ingest(root, inputs, fit=False, **FAST)
    assert set(summary["status"]) == {"unchanged"} and summary.meta["prepared"] == 3 and summary.meta["fitted"] == 0
    assert _rows(root, "SELECT spectrum_id, updated_at FROM spectra") == stamps


def _rewrite(path: pathlib.Path, factor: float) -> None:
    with fits.open(path) as hdul:
        hdul["SPEC1D"].data["flux"] *= factor
        hdul.writeto(path, overwrite=True)


def test_a_changed_file_updates_its_hash_and_updated_at_only(small):
    inputs, root = small
    before = _spectra(root)
    target = inputs / STARK[2].name
    _rewrite(target, 2.0)
    summary = ingest(root, inputs, fit=False, **FAST)
    assert _status(summary) == {STARK[2].name: "updated", "borg-v4_prism-clear_1747_732.spec.fits": "unchanged",
                                OLD.name: "unchanged"}
    after = _spectra(root)
    sid = "stark-rxcj2248-v4_g395m_f290lp_3"
    assert after[sid]["file_hash"] != before[sid]["file_hash"] and after[sid]["updated_at"] > before[sid]["updated_at"]
    assert after[sid]["object_id"] == before[sid]["object_id"]
    assert after[sid]["signal_to_noise"] == pytest.approx(2 * before[sid]["signal_to_noise"])
    assert _sha(root / after[sid]["fits_path"]) == after[sid]["file_hash"]
    for other in set(before) - {sid}:
        assert after[other] == before[other]


def test_a_vanished_file_is_reported_and_withdrawn_only_when_asked(small):
    inputs, root = small
    (inputs / OLD.name).unlink()
    summary = ingest(root, inputs, fit=False, **FAST)
    missing = summary[summary["status"] == "missing"]
    assert len(missing) == 1 and missing[0]["spectrum_id"] == "static-test-driz-center-bkg_prism_clear_933"
    assert "--withdraw-missing" in missing[0]["reason"]
    assert "static-test-driz-center-bkg_prism_clear_933" in _spectra(root)
    # an ingest of another SOURCE does not call the files of this one missing
    other = ingest(root, [inputs / STARK[2].name], fit=False, **FAST)
    assert list(other["status"]) == ["unchanged"]
    product = root / _spectra(root)["static-test-driz-center-bkg_prism_clear_933"]["fits_path"]
    summary = ingest(root, inputs, fit=False, withdraw_missing=True, **FAST)
    assert list(summary[summary["status"] == "withdrawn"]["spectrum_id"]) == ["static-test-driz-center-bkg_prism_clear_933"]
    assert "static-test-driz-center-bkg_prism_clear_933" not in _spectra(root)
    assert not _rows(root, "SELECT 1 FROM objects WHERE object_id = 'static-test-driz-center-bkg_933'")
    assert not _rows(root, "SELECT 1 FROM object_aggregates WHERE object_id = 'static-test-driz-center-bkg_933'")
    assert not product.exists()
    assert "missing" not in set(ingest(root, inputs, fit=False, **FAST)["status"])


def test_new_files_join_existing_objects_and_ids_never_change(small, tmp_path):
    inputs, root = small
    before = {r["object_id"]: (r["ra"], r["dec"]) for r in _rows(root, "SELECT * FROM objects")}
    more = copy_inputs(tmp_path / "more", STARK[:2])
    summary = ingest(root, [inputs, more], fit=False, **FAST)
    assert sorted(summary[summary["status"] == "new"]["object_id"]) == ["stark-rxcj2248-v4_3"] * 2
    after = {r["object_id"]: (r["ra"], r["dec"]) for r in _rows(root, "SELECT * FROM objects")}
    assert after == before


def test_another_programs_spectrum_within_the_radius_joins_the_object(small, tmp_path):
    inputs, root = small
    src = inputs / STARK[2].name
    moved = tmp_path / "other" / "other-prog-v4_g395m-f290lp_9999_17.spec.fits"
    moved.parent.mkdir()
    with fits.open(src) as hdul:
        for h in hdul[1:2]:
            h.header["PROGRAM"] = "09999"
            h.header["SOURCEID"] = 17
            h.header["SRCNAME"] = "9999_17"
            h.header["SRCDEC"] = h.header["SRCDEC"] + 0.1 / 3600  # 0.1" away
        hdul.writeto(moved)
    far = moved.with_name("other-prog-v4_g395m-f290lp_9999_18.spec.fits")
    with fits.open(moved) as hdul:
        hdul[1].header["SOURCEID"] = 18
        hdul[1].header["SRCDEC"] = hdul[1].header["SRCDEC"] + 0.3 / 3600  # 0.4" away
        hdul.writeto(far)
    summary = ingest(root, [moved, far], fit=False, **FAST)
    objects = {r["spectrum_id"]: r["object_id"] for r in summary}
    assert objects["other-prog-v4_g395m_f290lp_17"] == "stark-rxcj2248-v4_3"
    assert objects["other-prog-v4_g395m_f290lp_18"] == "other-prog-v4_18"
    aggs = _rows(root, "SELECT programs FROM object_aggregates WHERE object_id = 'stark-rxcj2248-v4_3' AND visibility='*'")
    assert aggs[0]["programs"] == "2478,9999"


def test_an_interrupted_ingest_leaves_the_previous_catalog_and_files(small, monkeypatch):
    inputs, root = small
    db = root / "meta" / "campfire.db"
    before_db, before_products = _sha(db), {p: _sha(p) for p in (root / "products").rglob("*.fits")}
    _rewrite(inputs / STARK[2].name, 3.0)
    (inputs / "extra").mkdir()
    shutil.copy2(STARK[0], inputs / "extra" / STARK[0].name)

    from campfire.archive import update

    def boom(self):
        raise KeyboardInterrupt("the user pressed ^C in the middle of the transaction")

    monkeypatch.setattr(update.CatalogUpdate, "refresh_aggregates", boom)
    with pytest.raises(KeyboardInterrupt):
        ingest(root, inputs, fit=False, **FAST)
    assert _sha(db) == before_db
    assert {p: _sha(p) for p in (root / "products").rglob("*.fits")} == before_products
    assert not list((root / "products").glob(".ingest-staging/*"))
    monkeypatch.undo()
    summary = ingest(root, inputs, fit=False, **FAST)
    assert sorted(summary["status"]) == ["new", "unchanged", "unchanged", "updated"]


def test_file_moves_of_a_committed_ingest_are_finished_by_the_next_one(small, monkeypatch):
    inputs, root = small
    _rewrite(inputs / STARK[2].name, 1.5)
    from campfire.archive import run as ingest_module

    real_run_pending = ingest_module.run_pending
    calls = []

    def crash_after_commit(conn, root_):
        calls.append(1)
        if len(calls) == 2:  # the first call finishes old work; the second runs right after the commit
            raise SystemExit("killed after the commit")
        return real_run_pending(conn, root_)

    monkeypatch.setattr(ingest_module, "run_pending", crash_after_commit)
    with pytest.raises(SystemExit):
        ingest(root, inputs, fit=False, **FAST)
    row = _spectra(root)["stark-rxcj2248-v4_g395m_f290lp_3"]
    assert _sha(root / row["fits_path"]) != row["file_hash"]  # committed, not yet moved
    assert _rows(root, "SELECT count(*) AS n FROM ingest_pending")[0]["n"] > 0
    monkeypatch.undo()
    summary = ingest(root, inputs, fit=False, **FAST)
    assert set(summary["status"]) == {"unchanged"}
    assert _sha(root / row["fits_path"]) == row["file_hash"]
    assert _rows(root, "SELECT count(*) AS n FROM ingest_pending")[0]["n"] == 0


# -- bad input ---------------------------------------------------------------------------------------

def test_bad_inputs_each_get_a_reason_and_the_rest_is_ingested(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.fits").write_text("this is a text file with a .fits name\n")
    data = STARK[2].read_bytes()
    (bad / "truncated_g395m-f290lp_1_1.spec.fits").write_bytes(data[: len(data) // 2])
    with fits.open(STARK[2]) as hdul:
        cols = [c for c in hdul["SPEC1D"].columns if c.name != "err"]
        hdul["SPEC1D"] = fits.BinTableHDU.from_columns(cols, header=hdul["SPEC1D"].header, name="SPEC1D")
        hdul.writeto(bad / "wrongcols-v4_g395m-f290lp_2478_99.spec.fits")
    good = copy_inputs(tmp_path / "good", [OLD, DJA / "borg-v4_prism-clear_1747_732.spec.fits"])
    dup = tmp_path / "dup"
    copy_inputs(dup, [DJA / "borg-v4_prism-clear_1747_732.spec.fits"])
    table = write_dja_table(tmp_path / "dja.csv", files=[OLD], extra_rows=[{"file": "never-seen_prism-clear_1_1.spec.fits"}],
                            extra_columns={"phot_f999w_tot_1": 1.0, "phot_f999w_etot_1": 0.1})
    summary = ingest(tmp_path / "root", [bad, good, dup, *SLITLETS[:1], tmp_path / "nothing-here"], table=table,
                     fit=False, **FAST)
    reasons = {r["source"]: (r["status"], r["reason"]) for r in summary}

    def reason(fragment):
        return next((v for k, v in reasons.items() if fragment in k), (None, ""))

    assert reason("notes.fits") == ("failed", reason("notes.fits")[1]) and "not a readable FITS" in reason("notes.fits")[1]
    assert "truncated" in reason("truncated_")[1]
    assert "lacks column(s) err" in reason("wrongcols")[1]
    assert "unrectified JWST pipeline slitlet" in reason(SLITLETS[0].name)[1]
    assert "no such file or directory" in reason("nothing-here")[1]
    dups = [v for k, v in reasons.items() if k.endswith("borg-v4_prism-clear_1747_732.spec.fits")]
    assert len(dups) == 2 and all(s == "failed" and "duplicate spectrum id borg-v4_prism_clear_732" in r for s, r in dups)
    assert "neither among the inputs nor in the archive" in reason("row 2")[1]
    assert "unknown band 'f999w'" in reason("phot_f999w_tot_1")[1]
    assert list(summary[summary["status"] == "new"]["spectrum_id"]) == ["ceers-msaexp-test_prism_clear_933"]
    assert set(_spectra(tmp_path / "root")) == {"ceers-msaexp-test_prism_clear_933"}
    # a copy of a file the archive already holds (from another place) is a duplicate of it
    again = ingest(tmp_path / "root", [dup], fit=False, **FAST)
    assert list(again["status"]) == ["new"]  # neither copy entered before: the one left now does
    third = copy_inputs(tmp_path / "third", [DJA / "borg-v4_prism-clear_1747_732.spec.fits"])
    late = ingest(tmp_path / "root", [third], fit=False, **FAST)
    assert list(late["status"]) == ["failed"] and "already holds it" in late["reason"][0]


def test_strict_exit_status_and_the_cli(tmp_path, capsys):
    from campfire.cli import main

    args = [str(tmp_path / "root"), str(SLITLETS[0]), str(OLD), "--no-fit", "--scheduler", "synchronous", "--quiet"]
    assert main(["archive", "ingest", *args]) == 0
    out = capsys.readouterr()
    assert "1 unchanged" not in out.out and "failed" in out.err and "unrectified" in out.err
    assert main(["archive", "ingest", *args, "--strict", "--summary", str(tmp_path / "s.ecsv")]) == 1
    from astropy.table import Table

    assert set(Table.read(tmp_path / "s.ecsv")["status"]) == {"failed", "unchanged"}
    assert main(["archive", "ingest", str(tmp_path / "root"), str(OLD), "--strict", "--no-fit", "--quiet",
                 "--scheduler", "synchronous"]) == 0


def test_bad_arguments_write_nothing(tmp_path):
    for kwargs, message in (({"mode": "move"}, "mode: expected one of copy, link, in-place"),
                            ({"match_radius": 0}, "match_radius"), ({"z_range": (3, 1)}, "z_range")):
        with pytest.raises(ValidationError, match=message):
            ingest(tmp_path / "root", [OLD], **kwargs)
    (tmp_path / "p.yaml").write_text("programs:\n  - id: 1345\n    public: maybe\n")
    with pytest.raises(ValidationError, match="public: expected true or false"):
        ingest(tmp_path / "root", [OLD], programs=tmp_path / "p.yaml")
    assert not (tmp_path / "root").exists()
    client = tmp_path / "client"
    (client / "meta").mkdir(parents=True)
    conn = sqlite3.connect(client / "meta" / "campfire.db")
    conn.execute("CREATE TABLE archive_meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO archive_meta VALUES ('owner', 'client')")
    conn.commit()
    conn.close()
    with pytest.raises(CampfireError, match="client's synced copy"):
        ingest(client, [OLD])


# -- placeholders, programs.yaml and visibility --------------------------------------------------

def test_a_file_that_names_no_program_gets_the_placeholder_program(tmp_path):
    anon = tmp_path / "in" / "anonymous_5.spec.fits"
    anon.parent.mkdir()
    with fits.open(OLD) as hdul:
        hdul[1].header["SRCNAME"] = "bright-one"
        hdul[1].header["SRCID"] = 5
        hdul.writeto(anon)
    summary = ingest(tmp_path / "root", [anon], fit=False, **FAST)
    assert list(summary["spectrum_id"]) == ["anonymous_prism_clear_5"]
    prog = _rows(tmp_path / "root", "SELECT * FROM programs")
    assert prog == [{"program_id": 0, "slug": "unassigned", "program_name": prog[0]["program_name"], "pi_name": "",
                     "is_public": 1}]
    assert "not known" in prog[0]["program_name"]


# -- modes and sources --------------------------------------------------------------------------------

def test_link_mode_links_the_inputs_and_keeps_fits_in_side_files(tmp_path):
    inputs = copy_inputs(tmp_path / "in", [STARK[2]])
    root = tmp_path / "root"
    summary = ingest(root, inputs, mode="link", **FAST)
    row = _spectra(root)["stark-rxcj2248-v4_g395m_f290lp_3"]
    product = root / row["fits_path"]
    assert os.stat(product).st_ino == os.stat(inputs / STARK[2].name).st_ino  # a hard link, no copy
    assert row["file_hash"] == _sha(STARK[2])  # the input's own bytes are served
    assert read_redshift_fit(product)["redshift"] == pytest.approx(row["redshift_auto"])
    assert (product.parent / "stark-rxcj2248-v4_g395m_f290lp_3.zfit.fits").is_file()
    assert list(summary["status"]) == ["new"]
    assert set(ingest(root, inputs, mode="link", **FAST)["status"]) == {"unchanged"}
    # switching to copies replaces the link by a copy with the fit inside, and the side file goes
    assert list(ingest(root, inputs, mode="copy", **FAST)["status"]) == ["updated"]
    assert os.stat(product).st_ino != os.stat(inputs / STARK[2].name).st_ino
    assert not (product.parent / "stark-rxcj2248-v4_g395m_f290lp_3.zfit.fits").exists()
    assert fits.getheader(product, "ZFIT")["REDSHIFT"] == pytest.approx(_spectra(root)[row["spectrum_id"]]["redshift_auto"])


def test_in_place_mode_serves_files_where_they_are(tmp_path):
    root = tmp_path / "root"
    inputs = copy_inputs(root / "products" / "incoming", [OLD])
    outside = copy_inputs(tmp_path / "outside", [STARK[2]])
    summary = ingest(root, [inputs, outside], mode="in-place", **FAST)
    assert _status(summary) == {OLD.name: "new", STARK[2].name: "failed"}
    row = _spectra(root)["static-test-driz-center-bkg_prism_clear_933"]
    assert row["fits_path"] == f"products/incoming/{OLD.name}" and row["file_hash"] == _sha(OLD)
    assert (inputs / "static-test-driz-center-bkg_933.zfit.fits").is_file()
    assert read_redshift_fit(inputs / OLD.name)["redshift"] == pytest.approx(row["redshift_auto"])
    assert _sha(inputs / OLD.name) == _sha(OLD)  # never written to
    copy_mode = ingest(root, inputs, **FAST)
    assert list(copy_mode["status"]) == ["failed"] and "--in-place" in copy_mode["reason"][0]


def test_http_and_file_url_sources(tmp_path):
    import functools
    import http.server
    import threading

    served = copy_inputs(tmp_path / "www", [OLD, STARK[2]])
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        root = tmp_path / "root"
        summary = ingest(root, [url], fit=False, **FAST)
        assert sorted(summary["status"]) == ["new", "new"]
        assert all(s.startswith(url) for s in summary["source"])
        spectra = _spectra(root)
        assert spectra["static-test-driz-center-bkg_prism_clear_933"]["exposure_time"] == pytest.approx(3063.666)
        # Last-Modified + size are the stamp: an unchanged server file is not downloaded again
        again = ingest(root, [url + OLD.name, url], fit=False, **FAST)
        assert set(again["status"]) == {"unchanged"} and again.meta["prepared"] == 0
        with_link = ingest(root, [url + OLD.name], mode="link", fit=False, **FAST)
        assert "--link needs a local file" in with_link["reason"][0]
    finally:
        httpd.shutdown()
        thread.join(5)
    by_file_url = ingest(tmp_path / "root2", [f"file://{served}/{OLD.name}"], fit=False, **FAST)
    assert list(by_file_url["status"]) == ["new"] and by_file_url["source"][0] == str(served / OLD.name)


def test_processes_and_a_local_cluster_run_the_same_graph(tmp_path):
    inputs = copy_inputs(tmp_path / "in", [OLD, STARK[2]])
    threads = ingest(tmp_path / "a", inputs, scheduler="threads", workers=2, progress=False)
    procs = ingest(tmp_path / "b", inputs, scheduler="processes", workers=2, progress=False)
    import dask

    with dask.config.set({"campfire.graph.dashboard-address": None}):  # no dashboard port to collide with
        cluster = ingest(tmp_path / "c", inputs, scheduler="local:2", fit=False, progress=False)
    for summary in (threads, procs, cluster):
        assert sorted(summary["spectrum_id"]) == ["stark-rxcj2248-v4_g395m_f290lp_3",
                                                  "static-test-driz-center-bkg_prism_clear_933"]
    a, b = _spectra(tmp_path / "a"), _spectra(tmp_path / "b")
    for sid in a:
        assert a[sid]["redshift_auto"] == pytest.approx(b[sid]["redshift_auto"])
        assert a[sid]["file_hash"] == b[sid]["file_hash"]
    assert all(r["redshift_auto"] is None for r in _spectra(tmp_path / "c").values())


def test_table_identity_applies_to_new_files_and_grades_apply_every_time(tmp_path):
    root = tmp_path / "root"
    inputs = copy_inputs(tmp_path / "in", [OLD])
    ingest(root, inputs, fit=False, **FAST)
    assert "static-test-driz-center-bkg_prism_clear_933" in _spectra(root)  # no table: the name's observation
    rows = dict(TABLE_ROWS)
    rows[OLD.name] = ("ceers-msaexp-test", 4.2341, 3, 4.2341, "GB", "Ha, [OIII]")
    table = write_dja_table(tmp_path / "dja.csv", files=[OLD], rows=rows)
    summary = ingest(root, inputs, table=table, fit=False, **FAST)
    assert list(summary["status"]) == ["unchanged"]  # the id a file was given never changes
    obj = _rows(root, "SELECT * FROM objects")[0]
    assert (obj["redshift_quality"], obj["redshift_inspected"], obj["redshift"]) == (4, 4.2341, 4.2341)
    public = _rows(root, "SELECT * FROM object_aggregates WHERE visibility = ''")[0]
    assert (public["redshift_quality"], public["inspection_state"], public["n_reviewers"]) == (4, "single", 1)
    assert public["inspected_at"]  # what moves the object for an incremental sync
    record = _rows(root, "SELECT * FROM inspections")
    assert [(r["reviewer"], r["quality"], r["redshift"], r["comment"]) for r in record] == \
        [("dja:GB", 4, 4.2341, "Ha, [OIII]")]
    db = root / "meta" / "campfire.db"
    before = _sha(db)
    ingest(root, inputs, table=table, fit=False, **FAST)
    assert _sha(db) == before
    assert math.isfinite(obj["ra"])
