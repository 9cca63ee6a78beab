"""Every filter of the reference on the local SQLite backend, checked against a plain-Python oracle.

The oracle reads the raw tables once and applies each filter with loops, independently
of the SQL compiler, so a wrong predicate shows as a set difference.
"""
from __future__ import annotations

import math
import sqlite3

import numpy as np
import pytest
from astropy.table import Table

from campfire import Campfire, NotFoundError, ValidationError
from campfire.flags import DQFlags, as_flag_expr
from campfire.models import Object, SpectrumCollection


@pytest.fixture(scope="module")
def cf(demo_root):
    return Campfire(data_dir=demo_root)


@pytest.fixture(scope="module")
def raw(demo_root):
    conn = sqlite3.connect(demo_root / "meta" / "campfire.db")
    conn.row_factory = sqlite3.Row
    objects = {r["object_id"]: dict(r) for r in conn.execute("SELECT * FROM objects")}
    spectra = [dict(r) for r in conn.execute("SELECT * FROM spectra")]
    programs = {r["program_id"]: dict(r) for r in conn.execute("SELECT * FROM programs")}
    tags: dict[str, set] = {}
    for oid, slug in conn.execute("SELECT ot.object_id, t.slug FROM object_tags ot JOIN tags t USING (tag_id)"):
        tags.setdefault(oid, set()).add(slug)
    conn.close()
    return {"objects": objects, "spectra": spectra, "programs": programs, "tags": tags}


def _sep_arcsec(ra1, dec1, ra2, dec2):
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    c = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(r1 - r2)
    return math.degrees(math.acos(min(1.0, c))) * 3600


def _spec_ok(s, f, raw):
    if "programs" in f and not ({s["program_id"]} & {p if isinstance(p, int) else next(
            k for k, v in raw["programs"].items() if v["slug"].lower() == p.lower()) for p in f["programs"]}):
        return False
    if "gratings" in f and s["grating"] not in [g.upper() for g in f["gratings"]]:
        return False
    if "observations" in f and s["observation"] not in f["observations"]:
        return False
    if "dq_flags" in f and not as_flag_expr(f["dq_flags"]).matches(s["dq_flags"]):
        return False
    return True


def _obj_ok(o, f, raw):
    if "fields" in f and o["field"] not in [x.lower() for x in f["fields"]]:
        return False
    if "redshift_range" in f:
        lo, hi = f["redshift_range"]
        if o["redshift"] is None or not lo <= o["redshift"] <= hi:
            return False
    if "redshift_quality" in f and o["redshift_quality"] not in f["redshift_quality"]:
        return False
    if "inspected_only" in f and (o["redshift_quality"] > 0) != f["inspected_only"]:
        return False
    if "has_photometry" in f and bool(o["has_photometry"]) != f["has_photometry"]:
        return False
    if "tags" in f and not (raw["tags"].get(o["object_id"], set()) & set(f["tags"])):
        return False
    if "cone_search" in f:
        ra, dec, r = f["cone_search"]
        if _sep_arcsec(ra, dec, o["ra"], o["dec"]) > r:
            return False
    return True


def expected_objects(raw, f):
    by_obj: dict[str, list] = {}
    for s in raw["spectra"]:
        by_obj.setdefault(s["object_id"], []).append(s)
    out = set()
    for oid, o in raw["objects"].items():
        specs = by_obj.get(oid, [])
        if not specs or not _obj_ok(o, f, raw):
            continue
        spec_filters = {k for k in ("programs", "gratings", "observations", "dq_flags") if k in f}
        if spec_filters and not any(_spec_ok(s, f, raw) for s in specs):
            continue
        if "max_snr_range" in f:
            lo, hi = f["max_snr_range"]
            if not lo <= max(s["signal_to_noise"] for s in specs) <= hi:
                continue
        if "search" in f and f["search"].lower() not in oid.lower():
            continue
        out.add(oid)
    return out


def expected_spectra(raw, f):
    out = set()
    for s in raw["spectra"]:
        o = raw["objects"][s["object_id"]]
        if not _obj_ok(o, f, raw) or not _spec_ok(s, f, raw):
            continue
        if "max_snr_range" in f and not f["max_snr_range"][0] <= s["signal_to_noise"] <= f["max_snr_range"][1]:
            continue
        if "search" in f and f["search"].lower() not in (s["spectrum_id"] + " " + s["object_id"]).lower():
            continue
        out.add(s["spectrum_id"])
    return out


def filter_cases(raw):
    o = raw["objects"]["ember_uds_p4_123456"]
    some_obs = sorted({s["observation"] for s in raw["spectra"]})[:2]
    slug = next(iter(raw["programs"].values()))["slug"]
    pid = sorted(raw["programs"])[-1]
    return [
        {"fields": ["COSMOS"]},
        {"fields": ["uds", "cosmos"], "redshift_range": (3.0, 6.0)},
        {"programs": [slug]},
        {"programs": [pid, slug.upper()]},
        {"gratings": ["prism"]},
        {"gratings": ["G395M", "G140M"], "max_snr_range": (5.0, 1e9)},
        {"observations": some_obs},
        {"redshift_range": (4.0, 8.0), "redshift_quality": [3, 4], "inspected_only": True},
        {"redshift_quality": [0]},
        {"inspected_only": False},
        {"max_snr_range": (0.0, 3.0)},
        {"dq_flags": ~DQFlags.CONTAMINATION & ~DQFlags.LOW_SNR},
        {"dq_flags": DQFlags.CHIP_GAP | DQFlags.LOW_SNR},
        {"dq_flags": DQFlags.CHIP_GAP & DQFlags.LOW_SNR},
        {"dq_flags": 0},
        {"tags": ["lrd", "blagn"]},
        {"tags": ["qg"], "has_photometry": True},
        {"has_photometry": False},
        {"search": "P4_1"},
        {"cone_search": (o["ra"], o["dec"], 30.0)},
        {"cone_search": (150.0832, 2.3511, 30.0)},
        {"fields": ["cosmos"], "gratings": ["PRISM"], "dq_flags": ~DQFlags.LOW_SNR, "tags": ["lrd", "hae", "lae"]},
    ]


def test_demo_has_the_reference_object(cf):
    assert cf.is_local
    obj = cf.get_object("ember_uds_p4_123456")
    assert isinstance(obj, Object)
    assert obj.redshift == pytest.approx(3.4210)
    assert "lrd" in obj.tags and obj.field == "uds"
    assert set(obj.spectra.gratings) >= {"G140M", "G395M", "PRISM"}
    assert obj.photometry is not None and obj.photometry.catalog == "UVCANDELS" and len(obj.photometry) == 8


def test_every_filter_matches_the_oracle(cf, raw):
    for f in filter_cases(raw):
        got_o = set(cf.query_objects(**f)["object_id"])
        assert got_o == expected_objects(raw, f), f
        got_s = set(cf.query_spectra(**f)["spectrum_id"])
        assert got_s == expected_spectra(raw, f), f
    # the cases are not vacuous
    assert sum(bool(expected_spectra(raw, f)) for f in filter_cases(raw)) >= len(filter_cases(raw)) - 3


def test_columns_and_types(cf):
    spectra = cf.query_spectra(gratings=["PRISM"], limit=5)
    assert isinstance(spectra, Table)
    assert spectra.colnames[:11] == ["spectrum_id", "target_id", "object_id", "grating", "fits_path",
                                     "signal_to_noise", "exposure_time", "reduction_version", "redshift_auto",
                                     "dq_flags", "local_path"]
    assert all(p.endswith(".spec.fits") and str(cf.data_dir) in p for p in spectra["local_path"])
    objects = cf.query_objects(limit=5)
    for col in ("object_id", "field", "ra", "dec", "redshift", "redshift_auto", "redshift_inspected",
                "redshift_quality", "programs", "tags", "n_spectra", "max_snr", "max_exposure_time",
                "has_photometry", "photo_z"):
        assert col in objects.colnames
    empty = cf.query_spectra(search="no-such-thing-anywhere")
    assert len(empty) == 0 and empty.colnames == spectra.colnames


def test_aggregates_agree_with_spectra(cf, raw):
    table = cf.query_objects(limit=50)
    for row in table:
        specs = [s for s in raw["spectra"] if s["object_id"] == row["object_id"]]
        assert row["n_spectra"] == len(specs)
        assert row["max_snr"] == pytest.approx(max(s["signal_to_noise"] for s in specs))
        assert row["gratings"].split(",") == sorted({s["grating"] for s in specs})


def test_sort_limit_offset(cf):
    full = cf.query_spectra(sort="signal_to_noise", sort_dir="desc")
    assert np.all(np.diff(full["signal_to_noise"]) <= 0)
    page = cf.query_spectra(sort="signal_to_noise", sort_dir="desc", limit=7, offset=3)
    assert list(page["spectrum_id"]) == list(full["spectrum_id"][3:10])
    assert list(cf.query_objects()["object_id"]) == sorted(cf.query_objects()["object_id"])


def test_iterators_stream_the_same_rows(cf):
    rows = list(cf.iter_objects(redshift_range=(2.0, 4.0)))
    assert [r["object_id"] for r in rows] == list(cf.query_objects(redshift_range=(2.0, 4.0))["object_id"])
    assert all(2.0 <= r["redshift"] <= 4.0 for r in rows)
    it = cf.iter_spectra(tags=["lrd"])
    first = next(it)
    assert isinstance(first, dict) and "spectrum_id" in first


def test_single_records(cf):
    row = cf.get_spectrum("ember_uds_p4_prism_clear_123456")
    assert row["grating"] == "PRISM" and row["object_id"] == "ember_uds_p4_123456"
    assert cf.get_spectrum("ember_uds_p4_prism_clear_999999999") is None
    assert cf.get_object("nope_123") is None
    with pytest.raises(ValidationError, match="object_id"):
        cf.get_object("../../etc/passwd")
    with pytest.raises(ValidationError, match="spectrum_id"):
        cf.get_spectrum(42)
    with pytest.raises(NotFoundError):
        cf.open_spectrum("ember_uds_p4_prism_clear_999999999")


def test_object_tree(cf):
    obj = cf.get_object("ember_uds_p4_123456")
    assert isinstance(obj.spectra, SpectrumCollection)
    prism = obj.spectra[obj.spectra.grating == "PRISM"]
    assert len(prism) >= 1 and all(s.downloaded for s in obj.spectra)
    spec = prism[0].open()
    assert repr(spec) == "SpectrumData(ember_uds_p4_prism_clear_123456, PRISM, 1024 pixels, 0.60-5.30 μm)"
    assert prism[0].data is prism[0].data  # cached
    text = repr(obj)
    assert text.splitlines()[0] == "Object(ember_uds_p4_123456, z=3.4210, uds)"
    assert "Photometry(8 bands, UVCANDELS, photo_z=3.51)" in text


def test_metadata(cf, raw):
    meta = cf.get_metadata()
    assert set(meta) == {"programs", "fields", "gratings", "observations"}
    assert "ember_uds_p4" in cf.get_observations()
    assert {"cosmos", "uds"} <= set(cf.get_fields())
    assert cf.get_gratings()[0] == "PRISM"
    programs = cf.get_programs()
    assert {"program_id", "slug", "program_name", "pi_name", "is_public"} <= set(programs.colnames)
    tags = cf.get_tags()
    assert {"slug", "name", "member_count"} <= set(tags.colnames)
    lrd = tags[tags["slug"] == "lrd"][0]
    assert lrd["member_count"] == sum("lrd" in t for t in raw["tags"].values())


def test_bad_inputs(cf):
    with pytest.raises(ValidationError, match="fields: unknown field 'mars'"):
        cf.query_objects(fields=["mars"])
    with pytest.raises(ValidationError, match="gratings"):
        cf.query_spectra(gratings=["G999M"])
    with pytest.raises(ValidationError, match="sort: unknown column"):
        cf.query_spectra(sort="fits_path; DROP TABLE spectra")
    with pytest.raises(ValidationError, match="redshift_range"):
        cf.query_objects(redshift_range=(5, 1))
    with pytest.raises(ValidationError, match="cone_search"):
        cf.query_objects(cone_search=(150, 2, "thirty"))
    with pytest.raises(ValidationError, match="unknown flag"):
        cf.query_spectra(dq_flags="NOT_A_FLAG")
    with pytest.raises(ValidationError, match="unknown parameter"):
        cf.query_objects(feilds=["cosmos"])
    with pytest.raises(ValidationError, match="remote"):
        cf.query_objects(remote="yes")


def test_staleness_locally(cf, demo_root, tmp_path):
    # a copy of the catalog where one local file's recorded hash differs from the catalog's
    import shutil

    root = tmp_path / "root"
    (root / "meta").mkdir(parents=True)
    shutil.copy(demo_root / "meta" / "campfire.db", root / "meta" / "campfire.db")
    conn = sqlite3.connect(root / "meta" / "campfire.db")
    sid = conn.execute("SELECT spectrum_id FROM local_files ORDER BY spectrum_id LIMIT 1").fetchone()[0]
    conn.execute("UPDATE local_files SET sha256 = 'old' WHERE spectrum_id = ?", (sid,))
    conn.commit()
    conn.close()
    copy = Campfire(data_dir=root)
    assert list(copy.query_spectra(staleness=True)["spectrum_id"]) == [sid]
    assert sid not in set(copy.query_spectra(staleness=False)["spectrum_id"])
    oid = copy.get_spectrum(sid)["object_id"]
    assert list(copy.query_objects(staleness=True)["object_id"]) == [oid]


def test_no_archive_error_names_the_ways_in(tmp_path):
    cf = Campfire(data_dir=tmp_path / "empty")
    assert not cf.is_local and cf.last_synced is None
    with pytest.raises(Exception, match="CAMPFIRE_API_URL.*CAMPFIRE_ROOT.*demo"):
        cf.query_objects()


def test_env_vars(monkeypatch, demo_root):
    monkeypatch.setenv("CAMPFIRE_ROOT", str(demo_root))
    monkeypatch.setenv("CAMPFIRE_API_URL", "http://127.0.0.1:9/")
    cf = Campfire()
    assert cf.data_dir == demo_root.resolve() and cf.is_local
    assert cf.base_url == "http://127.0.0.1:9"
    monkeypatch.delenv("CAMPFIRE_ROOT")
    monkeypatch.setenv("HOME", "/nonexistent-home")
    assert str(Campfire().data_dir) == "/nonexistent-home/campfire"
