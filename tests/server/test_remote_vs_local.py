"""``remote=True`` returns the local path's rows, row for row, on the same archive.

Two comparisons: alice (member of every program) over HTTP against the archive root
read directly; and an anonymous client over HTTP against that client's own synced copy.
"""
from __future__ import annotations

import numpy as np
import pytest

from campfire.catalog.filters import build_query
from campfire.client import Campfire
from campfire.flags import DQFlags

pytestmark = pytest.mark.server

OBJECT_FILTERS = [
    {},
    {"fields": ["COSMOS"], "redshift_range": (2.0, 6.0)},
    {"redshift_quality": ["probable", "secure"], "inspected_only": True},
    {"gratings": ["PRISM"], "dq_flags": ~DQFlags.CONTAMINATION & ~DQFlags.LOW_SNR},
    {"dq_flags": DQFlags.CHIP_GAP | DQFlags.LOW_SNR},
    {"tags": ["lrd", "blagn"]},
    {"cone_search": (34.4051456, -5.2101074, 90.0)},
    {"programs": ["EMBER-UDS"], "sort": "max_snr", "sort_dir": "desc", "limit": 20, "offset": 5},
    {"has_photometry": False},
    {"search": "123"},
    {"max_snr_range": (5.0, 50.0), "sort": "redshift", "sort_dir": "desc"},
    {"observations": ["ember_uds_p4"], "sort": "ra"},
    {"inspected_only": False, "sort": "photo_z", "limit": 15},
]
SPECTRUM_FILTERS = [
    {},
    {"gratings": ["PRISM"], "inspected_only": True, "dq_flags": ~DQFlags.CONTAMINATION & ~DQFlags.LOW_SNR},
    {"fields": ["uds"], "redshift_range": (1.0, 5.0), "sort": "signal_to_noise", "sort_dir": "desc"},
    {"tags": ["lrd"], "max_snr_range": (3.0, 1e9)},
    {"programs": [5224], "sort": "exposure_time", "limit": 30, "offset": 10},
    {"cone_search": (34.4051456, -5.2101074, 120.0), "sort": "object_id"},
    {"search": "prism", "sort": "dq_flags", "sort_dir": "desc"},
]


def assert_same_table(remote, local):
    assert remote.colnames == local.colnames
    assert len(remote) == len(local)
    for name in remote.colnames:
        assert remote[name].dtype.kind == local[name].dtype.kind, name
        assert remote[name].unit == local[name].unit, name
        if name == "local_path":
            continue  # where the file is on *this* machine, not a catalog value
        a, b = np.asarray(remote[name]), np.asarray(local[name])
        if a.dtype.kind == "f":
            np.testing.assert_array_equal(a, b, err_msg=name)  # exact: JSON floats round-trip
        else:
            assert a.tolist() == b.tolist(), name


@pytest.fixture(scope="module")
def alice(server, tmp_path_factory):
    cf = Campfire(base_url=server.url, data_dir=tmp_path_factory.mktemp("alice"))
    cf.login("alice", "alice-demo")
    return cf


@pytest.fixture(scope="module")
def direct(server):
    return Campfire(data_dir=server.root)


@pytest.mark.parametrize("filters", OBJECT_FILTERS, ids=lambda f: ",".join(f) or "none")
def test_query_objects_remote_equals_local(alice, direct, filters):
    assert_same_table(alice.query_objects(remote=True, **filters), direct.query_objects(**filters))


@pytest.mark.parametrize("filters", SPECTRUM_FILTERS, ids=lambda f: ",".join(f) or "none")
def test_query_spectra_remote_equals_local(alice, direct, filters):
    assert_same_table(alice.query_spectra(remote=True, **filters), direct.query_spectra(**filters))


def test_iter_and_single_records_equal(alice, direct, ids):
    with_small_pages = list(alice.remote_catalog.iter_rows(build_query("spectra", fields=["uds"]), page_size=37))
    local_rows = list(direct.iter_spectra(fields=["uds"]))
    assert len(with_small_pages) == len(local_rows) > 37
    for r, l in zip(with_small_pages, local_rows):
        assert {k: v for k, v in r.items() if k != "local_path"} == pytest.approx(
            {k: v for k, v in l.items() if k != "local_path"}, nan_ok=True)
    assert [r["object_id"] for r in alice.iter_objects(remote=True, tags=["lrd"])] == \
        [r["object_id"] for r in direct.iter_objects(tags=["lrd"])]
    for oid in (ids["example_object"], ids["mixed"][0], ids["prop_only"][0]):
        ro, lo = alice.get_object(oid, remote=True), direct.get_object(oid)
        for field in ("object_id", "field", "ra", "dec", "redshift_quality", "programs", "tags", "gratings",
                      "n_spectra", "has_photometry", "photo_z"):
            assert getattr(ro, field) == getattr(lo, field), field
        assert list(ro.spectra.spectrum_id) == list(lo.spectra.spectrum_id)
        if lo.photometry is not None:
            assert ro.photometry.bands == lo.photometry.bands
            np.testing.assert_array_equal(ro.photometry.flux, lo.photometry.flux)
    rs, ls = alice.get_spectrum(ids["example_spectrum"], remote=True), direct.get_spectrum(ids["example_spectrum"])
    assert {k: v for k, v in rs.items() if k != "local_path"} == {k: v for k, v in ls.items() if k != "local_path"}
    assert alice.get_object("no_such_object_1", remote=True) is None
    assert alice.get_spectrum("no_such_spectrum_1", remote=True) is None
    assert alice.get_programs(remote=True).colnames == direct.get_programs().colnames
    assert list(alice.get_programs(remote=True)["slug"]) == list(direct.get_programs()["slug"])
    assert alice.get_metadata(remote=True) == direct.get_metadata()
    assert alice.get_gratings(remote=True) == direct.get_gratings()


def test_redshift_interval_and_confidence_remote_equal_local(alice, direct, ids):
    """The automatic redshift's 68% interval and confidence: the same through the API as on disk,
    in query_spectra (cut and sorted on) and in get_redshift_fit_data."""
    sid = ids["example_spectrum"]
    remote, local = alice.remote_catalog.redshift_fit(sid), direct.get_redshift_fit_data(sid)
    for key in ("redshift", "redshift_lo", "redshift_hi", "confidence"):
        assert remote[key] == pytest.approx(local[key]), key
    assert local["redshift_lo"] <= local["redshift"] <= local["redshift_hi"]
    row = direct.get_spectrum(sid)
    assert (row["redshift_auto_lo"], row["redshift_auto_hi"], row["redshift_auto_confidence"]) == pytest.approx(
        (local["redshift_lo"], local["redshift_hi"], local["confidence"]), abs=1e-4)
    kw = dict(gratings=["PRISM"], sort="redshift_auto_confidence", sort_dir="desc", limit=40)
    r, d = alice.query_spectra(remote=True, **kw), direct.query_spectra(**kw)
    assert_same_table(r, d)
    assert np.all(np.diff(np.asarray(d["redshift_auto_confidence"])) <= 0)


def test_anonymous_remote_equals_its_synced_copy(server, tmp_path):
    cf = Campfire(base_url=server.url, data_dir=tmp_path / "anon")
    cf.sync()
    for filters in OBJECT_FILTERS:
        if "programs" in filters:
            continue
        assert_same_table(cf.query_objects(remote=True, **filters), cf.query_objects(**filters))
    for filters in SPECTRUM_FILTERS[:4]:
        assert_same_table(cf.query_spectra(remote=True, **filters), cf.query_spectra(**filters))
    remote_tags, local_tags = cf.get_tags(remote=True), cf.get_tags()
    assert remote_tags.colnames == local_tags.colnames
    assert remote_tags["slug"].tolist() == local_tags["slug"].tolist()
    assert remote_tags["member_count"].tolist() == local_tags["member_count"].tolist()


def test_remote_limits(alice, direct):
    # remote default: one page of campfire.api.page-size rows; a larger limit is paged transparently
    import dask

    with dask.config.set({"campfire.api.page-size": 50, "campfire.api.max-limit": 60}):
        assert len(alice.query_spectra(remote=True)) == 50
        assert_same_table(alice.query_spectra(remote=True, limit=130), direct.query_spectra(limit=130))
    with pytest.raises(Exception, match="staleness"):
        alice.query_objects(remote=True, staleness=True)


def test_remote_errors_map_to_campfire_exceptions(alice, ids):
    from campfire.errors import NotFoundError, ValidationError

    with pytest.raises(NotFoundError):
        alice.remote_catalog.spectrum_data("no_such_spectrum_1")
    with pytest.raises(NotFoundError):
        alice.remote_catalog.redshift_fit("no_such_spectrum_1")
    with pytest.raises(ValidationError, match="unknown field 'atlantis'"):
        alice.query_objects(remote=True, fields=["atlantis"])
    with pytest.raises(ValidationError, match="sort"):
        alice.query_spectra(remote=True, sort="max_snr")
    data = alice.get_spectrum_data(ids["example_spectrum"])
    assert data["snr_2d"].shape == (data["n_spatial"], data["n_wave"]) and data["wave"].dtype == float
