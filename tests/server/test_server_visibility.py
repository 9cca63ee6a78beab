"""Proprietary programs from every endpoint: anonymous and bob never see them, alice (a member) does.

The oracle is the raw catalog: for each caller the set of visible spectra is "public
programs (+ the caller's)", and every object-level number is recomputed from it here.
"""
from __future__ import annotations

import gzip
import sqlite3

import pytest
import requests

pytestmark = pytest.mark.server

USERS = [None, "bob", "alice"]


@pytest.fixture(scope="module")
def auth(server):
    out = {None: {}}
    for user, password in (("alice", "alice-demo"), ("bob", "bob-demo")):
        r = requests.post(f"{server.url}/api/v1/auth/token",
                          data={"grant_type": "password", "username": user, "password": password})
        out[user] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return out


@pytest.fixture(scope="module")
def oracle(server):
    conn = sqlite3.connect(server.db)
    conn.row_factory = sqlite3.Row
    try:
        spectra = [dict(r) for r in conn.execute("SELECT * FROM spectra")]
        programs = {r["program_id"]: dict(r) for r in conn.execute("SELECT * FROM programs")}
        observations = {r["observation"]: dict(r) for r in conn.execute("SELECT * FROM observations")}
        tags = {}
        for slug, oid in conn.execute("SELECT t.slug, ot.object_id FROM object_tags ot JOIN tags t USING (tag_id) "
                                      "WHERE t.kind = 'system'"):
            tags.setdefault(slug, set()).add(oid)
    finally:
        conn.close()

    def visible(user):
        ok = {p for p, row in programs.items() if row["is_public"] or user == "alice"}
        specs = [s for s in spectra if s["program_id"] in ok]
        objs: dict[str, list] = {}
        for s in specs:
            objs.setdefault(s["object_id"], []).append(s)
        return {"programs": ok, "spectra": {s["spectrum_id"] for s in specs}, "objects": objs,
                "observations": {o for o, row in observations.items() if row["program_id"] in ok},
                "slugs": {programs[p]["slug"] for p in ok}}

    return {user: visible(user) for user in USERS} | {"tags": tags, "programs": programs}


def get(server, path, auth, user, **params):
    return requests.get(f"{server.url}/api/v1{path}", headers=auth[user], params=params)


def _all(server, auth, user, kind):
    rows, offset = [], 0
    while True:
        body = get(server, f"/{kind}", auth, user, limit=10000, offset=offset).json()
        rows += [dict(zip(body["columns"], r)) for r in body["rows"]]
        if len(body["rows"]) < 10000:
            return rows, body["total"]
        offset += 10000


@pytest.mark.parametrize("user", USERS)
def test_lists_and_totals(server, auth, oracle, user):
    spectra, total = _all(server, auth, user, "spectra")
    assert {r["spectrum_id"] for r in spectra} == oracle[user]["spectra"] and total == len(spectra)
    objects, total = _all(server, auth, user, "objects")
    assert {r["object_id"] for r in objects} == set(oracle[user]["objects"]) and total == len(objects)
    # aggregates are computed over the visible spectra only
    for row in objects:
        specs = oracle[user]["objects"][row["object_id"]]
        assert row["n_spectra"] == len(specs)
        assert row["max_snr"] == pytest.approx(max(s["signal_to_noise"] for s in specs))
        assert row["max_exposure_time"] == pytest.approx(max(s["exposure_time"] for s in specs))
        assert row["programs"] == ",".join(sorted({oracle["programs"][s["program_id"]]["slug"] for s in specs}))
        assert row["gratings"] == ",".join(sorted({s["grating"] for s in specs}))
    assert get(server, "/counts", auth, user).json() == {
        "observations": len(oracle[user]["observations"]), "objects": len(oracle[user]["objects"]),
        "spectra": len(oracle[user]["spectra"])}


@pytest.mark.parametrize("user", ["bob", None])
def test_proprietary_ids_do_not_exist_for_non_members(server, auth, ids, user):
    for oid in ids["prop_only"][:5]:
        for path in (f"/objects/{oid}", f"/objects/{oid}/cutout.png", f"/objects/{oid}/shutters"):
            r = get(server, path, auth, user)
            assert r.status_code == 404, path
            assert r.json()["error"] == "not_found"
    for sid in ids["prop_spectra"][:5]:
        for path in (f"/spectra/{sid}", f"/spectra/{sid}/file", f"/spectra/{sid}/data", f"/spectra/{sid}/redshift-fit"):
            r = get(server, path, auth, user)
            assert r.status_code == 404, path
        r = requests.head(f"{server.url}/api/v1/spectra/{sid}/file", headers=auth[user])
        assert r.status_code == 404
    # filters naming proprietary things are unknown values, exactly like made-up ones
    for params in ({"observations": ids["prop_obs"][0]}, {"programs": ids["prop_slugs"][0]},
                   {"programs": str(ids["prop_ids"][0])}, {"search": ids["prop_only"][0]}):
        r = get(server, "/objects", auth, user, **params)
        assert r.status_code == 400 or r.json()["total"] == 0, params
    assert get(server, "/objects", auth, user, search=ids["prop_only"][0]).json()["total"] == 0


def test_members_see_everything(server, auth, ids):
    for oid in ids["prop_only"][:3]:
        r = get(server, f"/objects/{oid}", auth, "alice")
        assert r.status_code == 200 and r.json()["spectra"]
        assert get(server, f"/objects/{oid}/shutters", auth, "alice").status_code == 200
    for sid in ids["prop_spectra"][:3]:
        assert get(server, f"/spectra/{sid}/file", auth, "alice").status_code == 200
        assert get(server, f"/spectra/{sid}/data", auth, "alice").status_code == 200
    assert get(server, "/objects", auth, "alice", observations=ids["prop_obs"][0]).json()["total"] > 0


@pytest.mark.parametrize("user", USERS)
def test_mixed_objects_show_only_visible_spectra(server, auth, oracle, ids, user):
    for oid in ids["mixed"][:5]:
        body = get(server, f"/objects/{oid}", auth, user).json()
        specs = oracle[user]["objects"][oid]
        assert {s["spectrum_id"] for s in body["spectra"]} == {s["spectrum_id"] for s in specs}
        assert body["object"]["n_spectra"] == len(specs)
        shutters = get(server, f"/objects/{oid}/shutters", auth, user, fov=5).json()
        seen = {s["observation"] for s in shutters["shutters"]} | {o["observation"] for o in shutters["observations"]}
        assert seen <= oracle[user]["observations"]


@pytest.mark.parametrize("user", USERS)
def test_metadata_and_tag_counts(server, auth, oracle, user):
    meta = get(server, "/metadata", auth, user).json()
    assert set(meta["programs"]) == oracle[user]["slugs"]
    assert set(meta["observations"]) == oracle[user]["observations"]
    assert set(get(server, "/observations", auth, user).json()) == oracle[user]["observations"]
    programs = get(server, "/programs", auth, user).json()
    assert {r[1] for r in programs["rows"]} == oracle[user]["slugs"]
    tags = get(server, "/tags", auth, user).json()
    counts = {r[0]: r[2] for r in tags["rows"]}
    for slug, members in oracle["tags"].items():
        assert counts[slug] == len(members & set(oracle[user]["objects"])), slug


@pytest.mark.parametrize("user", USERS)
def test_bulk_export_holds_only_visible_rows(server, auth, oracle, user, tmp_path):
    r = get(server, "/export", auth, user)
    assert r.status_code == 200 and r.headers["x-campfire-export"] == "sqlite-snapshot"
    snapshot = tmp_path / "snapshot.db"
    snapshot.write_bytes(gzip.decompress(r.content))
    conn = sqlite3.connect(snapshot)
    conn.row_factory = sqlite3.Row
    try:
        tables = {name: [dict(row) for row in conn.execute(f"SELECT * FROM {name}")]
                  for name in ("spectra", "objects", "programs", "observations", "photometry", "object_aggregates",
                               "tags", "object_tags", "truth_objects", "truth_spectra", "local_files")}
        kinds = {row[0] for row in conn.execute("SELECT type FROM sqlite_master")}
    finally:
        conn.close()
    assert {s["spectrum_id"] for s in tables["spectra"]} == oracle[user]["spectra"]
    assert {o["object_id"] for o in tables["objects"]} == set(oracle[user]["objects"])
    assert {p["slug"] for p in tables["programs"]} == oracle[user]["slugs"]
    assert {o["observation"] for o in tables["observations"]} == oracle[user]["observations"]
    assert {p["object_id"] for p in tables["photometry"]} <= set(oracle[user]["objects"])
    assert {a["object_id"] for a in tables["object_aggregates"]} == set(oracle[user]["objects"])
    assert {a["visibility"] for a in tables["object_aggregates"]} == {"*"}
    for agg in tables["object_aggregates"]:
        assert agg["n_spectra"] == len(oracle[user]["objects"][agg["object_id"]])
    assert {t["object_id"] for t in tables["object_tags"]} <= set(oracle[user]["objects"])
    assert {t["kind"] for t in tables["tags"]} == {"system"}
    # nothing of the pipeline's own: no truth, no local files, no triggers or views
    assert not tables["truth_objects"] and not tables["truth_spectra"] and not tables["local_files"]
    assert kinds <= {"table", "index"}


def test_aggregates_follow_pipeline_changes(fresh_server, get_token, ids):
    """The pipeline changes a spectrum's S/N: every visibility set's aggregates follow."""
    import datetime as dt

    oid = ids["mixed"][0]
    headers = {"Authorization": f"Bearer {get_token(fresh_server.url, 'alice')}"}
    url = f"{fresh_server.url}/api/v1/objects/{oid}"
    before = {who: requests.get(url, headers=h).json()["object"]["max_snr"] for who, h in (("anon", {}), ("alice", headers))}
    (sid,) = fresh_server.sql(
        "SELECT s.spectrum_id FROM spectra s JOIN programs p USING (program_id) WHERE s.object_id = ? "
        "AND p.is_public = 1 LIMIT 1", (oid,))[0]
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fresh_server.sql("UPDATE spectra SET signal_to_noise = 9999.0, updated_at = ? WHERE spectrum_id = ?", (stamp, sid))
    for who, h in (("anon", {}), ("alice", headers)):
        after = requests.get(url, headers=h).json()["object"]["max_snr"]
        assert after == 9999.0 != before[who]
    assert requests.get(f"{fresh_server.url}/api/v1/objects", params={"max_snr_range": "9000,10000"}).json()["total"] == 1
