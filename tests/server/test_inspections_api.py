"""Inspections through the real server: grading, visibility of grades, permissions, blind mode, the queue, the refit.

alice is a member of the demo's proprietary program, bob of none; an admin account is
added per server. Every check of what a caller sees compares three paths: the API,
a client's synced catalog (export + incremental sync) and local queries on it.
"""
from __future__ import annotations

import io
import sqlite3

import numpy as np
import pytest
import requests

from campfire import ValidationError, cli
from campfire.catalog.consensus import consensus
from campfire.server.auth import AuthStore, add_user
from campfire.server.testing import ServerThread

pytestmark = pytest.mark.server

API = "/api/v1"
ADMIN = ("root-admin", "root-admin-password")


@pytest.fixture(scope="module")
def srv(server):
    add_user(server.root, *ADMIN, role="admin")
    # which objects the demo graded (the tests add inspections as they go)
    server.sql("CREATE TABLE demo_inspected AS SELECT DISTINCT object_id FROM inspections")
    return server


def login(url: str, user: str | None) -> dict:
    if user is None:
        return {}
    password = {"alice": "alice-demo", "bob": "bob-demo", ADMIN[0]: ADMIN[1]}[user]
    r = requests.post(f"{url}{API}/auth/token", data={"grant_type": "password", "username": user,
                                                       "password": password})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="module")
def headers(srv):
    return {user: login(srv.url, user) for user in (None, "bob", "alice", ADMIN[0])}


def call(srv, method, path, user, headers, **kwargs):
    return requests.request(method, f"{srv.url}{API}{path}", headers=headers[user], **kwargs)


def public_ids(conn) -> list[int]:
    return [r[0] for r in conn.execute("SELECT program_id FROM programs WHERE is_public = 1")]


def pick(srv, kind: str) -> list[str]:
    """Objects of one kind, as the demo built them.

    'mixed_ungraded': public and proprietary spectra, no inspection; 'mixed': the same
    with inspections; 'public_only': public spectra only, no inspection.
    """
    conn = sqlite3.connect(srv.db)
    try:
        pub = ",".join(map(str, public_ids(conn)))
        mixed = f"sum(program_id IN ({pub})) > 0 AND sum(program_id NOT IN ({pub})) > 0"
        having, graded = {
            "mixed_ungraded": (mixed, "NOT IN"),
            "mixed": (mixed, "IN"),
            "public_only": (f"sum(program_id NOT IN ({pub})) = 0", "NOT IN"),
        }[kind]
        rows = conn.execute(
            f"SELECT object_id FROM spectra GROUP BY object_id HAVING {having} AND object_id {graded} "
            "(SELECT object_id FROM demo_inspected) ORDER BY object_id").fetchall()
    finally:
        conn.close()
    return [r[0] for r in rows]


_used: set[str] = set()


def fresh(srv, kind: str) -> str:
    """An object of ``kind`` no other test of this module has touched."""
    for oid in pick(srv, kind):
        if oid not in _used:
            _used.add(oid)
            return oid
    raise AssertionError(f"the demo has too few {kind} objects")


def grade(srv, headers, user, oid, **body):
    return call(srv, "POST", f"/objects/{oid}/inspections", user, headers, json=body)


def object_fields(srv, headers, user, oid) -> tuple:
    r = call(srv, "GET", f"/objects/{oid}", user, headers)
    r.raise_for_status()
    o = r.json()["object"]
    return o["redshift"], o["redshift_inspected"], o["redshift_quality"]


# ------------------------------------------------------------------------------ issue 15.5
def test_the_reported_leak_is_closed(srv, headers):
    """Anonymous GET /objects/ember_uds_p4_58515 showed quality 4 from a hidden spectrum (S/N 1.7 visible)."""
    oid = "ember_uds_p4_58515"
    anon = call(srv, "GET", f"/objects/{oid}/inspections", None, headers).json()
    alice = call(srv, "GET", f"/objects/{oid}/inspections", "alice", headers).json()
    anon_spectra = {s["spectrum_id"] for s in call(srv, "GET", f"/objects/{oid}", None, headers).json()["spectra"]}
    # every record anonymous sees rests on spectra anonymous sees; alice sees more
    assert anon["inspections"] and all({s["spectrum_id"] for s in r["spectra_seen"]} <= anon_spectra
                                       for r in anon["inspections"])
    assert len(alice["inspections"]) > len(anon["inspections"])
    # the object's fields are each caller's consensus
    for user, seen in ((None, anon), ("alice", alice)):
        z, z_insp, q = object_fields(srv, headers, user, oid)
        assert (z_insp, q) == (seen["consensus"]["redshift"], seen["consensus"]["quality"]), user
    assert object_fields(srv, headers, "bob", oid) == object_fields(srv, headers, None, oid)


# ----------------------------------------------------------------- grading and visibility
def test_a_members_grade_is_seen_by_members_only_in_every_path(srv, headers, make_client):
    oid = fresh(srv, "mixed_ungraded")
    before = object_fields(srv, headers, None, oid)
    assert before[2] == 0
    clients = {user: make_client(srv.url, user) for user in (None, "bob", "alice")}
    for cf in clients.values():
        cf.sync()
    r = grade(srv, headers, "alice", oid, redshift=4.4321, quality="secure", comment="[OIII] <b>doublet</b>",
              issues=["CONTAMINATED"])
    assert r.status_code == 201, r.text
    body = r.json()
    rec = body["inspection"]
    assert set(rec) == {"inspection_id", "object_id", "reviewer", "redshift", "quality", "quality_name", "comment",
                        "issues", "spectra_seen", "resolves_conflict", "created_at", "outdated"}
    assert rec["reviewer"] == "alice" and rec["quality"] == 4 and rec["quality_name"] == "secure"
    assert rec["comment"] == "[OIII] <b>doublet</b>" and rec["issues"] == ["CONTAMINATED"] and not rec["outdated"]
    alice_spectra = {s["spectrum_id"]: s["file_hash"] for s in
                     call(srv, "GET", f"/objects/{oid}", "alice", headers).json()["spectra"]}
    assert {s["spectrum_id"]: s["sha256"] for s in rec["spectra_seen"]} == alice_spectra
    assert body["consensus"] == {"state": "single", "redshift": 4.4321, "quality": 4, "n_reviewers": 1}
    # the API: alice sees the grade, anonymous and bob see nothing of it
    assert object_fields(srv, headers, "alice", oid) == (4.4321, 4.4321, 4)
    for user in (None, "bob"):
        assert object_fields(srv, headers, user, oid) == before, user
        assert call(srv, "GET", f"/objects/{oid}/inspections", user, headers).json()["inspections"] == []
        page = call(srv, "GET", "/objects", user, headers, params={"search": oid, "inspected_only": "true"}).json()
        assert page["rows"] == [] and page["total"] == 0
        spectra = call(srv, "GET", "/spectra", user, headers,
                       params={"search": oid, "redshift_quality": "secure"}).json()
        assert spectra["rows"] == []
    page = call(srv, "GET", "/objects", "alice", headers,
                params={"search": oid, "inspected_only": "true", "redshift_quality": "3,4"}).json()
    assert [row[0] for row in page["rows"]] == [oid]
    assert call(srv, "GET", "/spectra", "alice", headers,
                params={"search": oid, "redshift_range": "4.43,4.44", "redshift_quality": "secure"}).json()["total"] >= 2
    # export + incremental sync, then local queries: each client has exactly its own view
    for user, cf in clients.items():
        cf.sync()
        local = cf.query_objects(inspected_only=True, redshift_quality=[3, 4], search=oid)
        remote = cf.query_objects(inspected_only=True, redshift_quality=[3, 4], search=oid, remote=True)
        assert list(local["object_id"]) == list(remote["object_id"]) == ([oid] if user == "alice" else []), user
        obj = cf.get_object(oid)
        assert (obj.redshift, obj.redshift_quality) == object_fields(srv, headers, user, oid)[::2], user
        local_records = cf.local_catalog.conn.execute(
            "SELECT reviewer FROM inspections WHERE object_id = ?", (oid,)).fetchall()
        assert local_records == ([("alice",)] if user == "alice" else []), user
        n = len(cf.query_spectra(search=oid, redshift_quality=["secure"]))
        assert (n > 0) == (user == "alice"), user


def test_sync_carries_a_new_grade_and_a_hidden_one_moves_nothing(srv, headers, make_client):
    oid_public = fresh(srv, "public_only")
    oid_mixed = fresh(srv, "mixed")
    alice, anon = make_client(srv.url, "alice"), make_client(srv.url)
    alice.sync()
    anon.sync()
    anon_before = anon.get_object(oid_mixed).redshift_quality
    db = alice.data_dir / "meta" / "campfire.db"
    inode = db.stat().st_ino
    # a writer whose clock runs ahead: grades made after it still reach the next delta
    srv.sql("UPDATE spectra SET updated_at = '2999-01-01T00:00:00Z' WHERE spectrum_id = "
            "(SELECT min(spectrum_id) FROM spectra WHERE object_id = ?)", (fresh(srv, "public_only"),))
    alice.sync()
    anon.sync()
    assert grade(srv, headers, ADMIN[0], oid_public, redshift=1.234, quality=3).status_code == 201
    assert grade(srv, headers, "alice", oid_mixed, redshift=5.5, quality=4).status_code == 201
    alice.sync()
    assert db.stat().st_ino == inode  # a delta, applied in place
    got = alice.query_objects(search=oid_mixed)
    remote = alice.query_objects(search=oid_mixed, remote=True)
    for name in ("redshift", "redshift_inspected", "redshift_quality"):  # NaN: a conflict has no redshift
        np.testing.assert_array_equal(got[name], remote[name], err_msg=name)
    records = alice.local_catalog.conn.execute("SELECT redshift FROM inspections WHERE object_id = ? AND "
                                               "reviewer = 'alice'", (oid_mixed,)).fetchall()
    assert records == [(5.5,)]
    assert alice.get_object(oid_public).redshift_inspected == 1.234
    # anonymous: the public grade arrives, the hidden one does not even move the object
    cursor = anon.local_catalog.meta("sync_cursor")
    import gzip
    import json

    r = requests.get(f"{srv.url}{API}/export", params={"since": cursor})
    assert r.headers["x-campfire-export"] == "ndjson-delta"
    lines = [json.loads(x) for x in gzip.decompress(r.content).splitlines()]
    moved = {row[0] for x in lines if x["type"] == "rows" and x["table"] == "objects" for row in x["rows"]}
    assert oid_public in moved and oid_mixed not in moved
    anon.sync()
    assert anon.get_object(oid_public).redshift_quality == 3
    assert anon.get_object(oid_mixed).redshift_quality == anon_before


# ----------------------------------------------------------------------------- permissions
def test_who_may_inspect(srv, headers, ids):
    mixed = fresh(srv, "mixed")
    public = fresh(srv, "public_only")
    hidden = ids["prop_only"][0]
    body = {"redshift": 2.0, "quality": 3}
    n_before = len(call(srv, "GET", f"/objects/{mixed}/inspections", ADMIN[0], headers).json()["inspections"])
    assert grade(srv, headers, None, mixed, **body).status_code == 401
    r = grade(srv, headers, "bob", mixed, **body)
    assert r.status_code == 403 and "members of a program with a spectrum" in r.json()["message"]
    assert grade(srv, headers, "alice", public, **body).status_code == 403  # not a member of its programs
    assert grade(srv, headers, "bob", hidden, **body).status_code == 404  # invisible: does not exist for bob
    assert grade(srv, headers, "alice", hidden, **body).status_code == 201
    assert grade(srv, headers, ADMIN[0], public, **body).status_code == 201  # admins inspect anything
    r = grade(srv, headers, "alice", mixed, resolves_conflict=True, **body)
    assert r.status_code == 403 and "only an archive admin" in r.json()["message"]
    # nothing was stored by the refused requests
    records = call(srv, "GET", f"/objects/{mixed}/inspections", ADMIN[0], headers).json()["inspections"]
    assert len(records) == n_before
    # a grant of the program makes bob a member (a grant, not a new password: that would end his logins)
    store = AuthStore(srv.root)
    try:
        assert store.grant("bob", [ids["prop_ids"][0]])
        assert grade(srv, headers, "bob", mixed, **body).status_code == 201
    finally:
        store._conn.execute("DELETE FROM memberships WHERE username = 'bob'")
        store._conn.commit()
        store.close()


def test_conflict_and_admin_resolution(srv, headers):
    oid = fresh(srv, "mixed_ungraded")
    assert grade(srv, headers, "alice", oid, redshift=3.0, quality=4).status_code == 201
    r = grade(srv, headers, ADMIN[0], oid, redshift=3.5, quality=3)
    assert r.json()["consensus"]["state"] == "conflict"
    assert object_fields(srv, headers, "alice", oid)[1:] == (None, 0)
    for user in ("alice", ADMIN[0]):
        queue = call(srv, "GET", "/inspections/queue", user, headers, params={"mode": "conflicts", "limit": 1000})
        assert oid in queue.json()["object_ids"], user
    r = grade(srv, headers, ADMIN[0], oid, redshift=3.0, quality=4, resolves_conflict=True, comment="Lya break")
    assert r.json()["consensus"] == {"state": "resolved", "redshift": 3.0, "quality": 4, "n_reviewers": 2}
    assert object_fields(srv, headers, "alice", oid) == (3.0, 3.0, 4)
    queue = call(srv, "GET", "/inspections/queue", "alice", headers, params={"mode": "conflicts", "limit": 1000})
    assert oid not in queue.json()["object_ids"]
    # history: every record is there, oldest first
    records = call(srv, "GET", f"/objects/{oid}/inspections", "alice", headers).json()["inspections"]
    assert [(r["reviewer"], r["redshift"], r["resolves_conflict"]) for r in records] == [
        ("alice", 3.0, False), (ADMIN[0], 3.5, False), (ADMIN[0], 3.0, True)]


@pytest.mark.parametrize("body, message", [
    ({"redshift": 2.0, "quality": "great"}, "quality: unknown quality 'great'; allowed: 0-4 or 'not_inspected'"),
    ({"redshift": 2.0, "quality": 5}, "quality: expected an int 0-4"),
    ({"redshift": 2.0}, "quality: required"),
    ({"quality": "probable"}, "redshift: a grade of 3 (probable) needs a redshift"),
    ({"redshift": 2.0, "quality": 3, "comment": "x" * 2001}, "comment: at most 2000 characters, got 2001"),
    ({"redshift": 2.0, "quality": 3, "issues": ["SLIME"]}, "issues: unknown issue flag 'SLIME'; allowed: "
                                                           "BAD_SPECTRUM, WRONG_EXTRACTION, CONTAMINATED"),
    ({"redshift": 2.0, "quality": 3, "issues": "BAD_SPECTRUM"}, "issues: expected a list of issue names"),
    ({"redshift": 2.0, "quality": 3, "reviewer": "mallory"}, "unknown field reviewer; allowed: redshift"),
    ({"redshift": 10 ** 400, "quality": 3}, "redshift: expected a number in [0, 30]"),
    ({"redshift": 2.0, "quality": 3, "resolves_conflict": "yes"}, "resolves_conflict: expected true or false"),
])
def test_bad_grades_are_400_with_a_clear_message(srv, headers, body, message):
    oid = pick(srv, "mixed")[-1]
    r = grade(srv, headers, "alice", oid, **body)
    assert r.status_code == 400 and message in r.json()["message"], r.text
    r = requests.post(f"{srv.url}{API}/objects/{oid}/inspections", headers=headers["alice"], data=b"[1, 2")
    assert r.status_code == 400


def test_an_inspection_is_marked_outdated_when_its_file_changes(srv, headers):
    oid = fresh(srv, "mixed")

    def alices():
        records = call(srv, "GET", f"/objects/{oid}/inspections", "alice", headers).json()["inspections"]
        return [r for r in records if r["reviewer"] == "alice"]

    assert grade(srv, headers, "alice", oid, redshift=2.5, quality=2).status_code == 201
    assert [r["outdated"] for r in alices()] == [False]
    spectrum = alices()[0]["spectra_seen"][0]["spectrum_id"]
    srv.sql("UPDATE spectra SET file_hash = ?, updated_at = '2099-01-01T00:00:00Z' WHERE spectrum_id = ?",
            ("f" * 64, spectrum))
    assert [r["outdated"] for r in alices()] == [True]
    # so is every earlier record that saw the file
    everyone = call(srv, "GET", f"/objects/{oid}/inspections", "alice", headers).json()["inspections"]
    assert all(r["outdated"] for r in everyone if spectrum in {s["spectrum_id"] for s in r["spectra_seen"]})
    # a new look at the new file is current; the old record stays, marked
    assert grade(srv, headers, "alice", oid, redshift=2.5, quality=3).json()["inspection"]["outdated"] is False
    assert [r["outdated"] for r in alices()] == [True, False]


def test_the_queue_lists_what_this_reviewer_may_grade_and_has_not(srv, headers):
    r = call(srv, "GET", "/inspections/queue", "alice", headers, params={"fields": "uds", "limit": 5})
    assert r.status_code == 200
    first = r.json()
    assert first["mode"] == "ungraded" and len(first["object_ids"]) == 5 and first["total"] >= 5
    conn = sqlite3.connect(srv.db)
    try:
        for oid in first["object_ids"]:  # alice is a member of a program with a spectrum of each, in uds
            assert conn.execute("SELECT count(*) FROM spectra s JOIN programs p USING (program_id) "
                                "WHERE s.object_id = ? AND p.is_public = 0", (oid,)).fetchone()[0] > 0
            assert conn.execute("SELECT field FROM objects WHERE object_id = ?", (oid,)).fetchone()[0] == "uds"
    finally:
        conn.close()
    assert grade(srv, headers, "alice", first["object_ids"][0], quality=1).status_code == 201
    again = call(srv, "GET", "/inspections/queue", "alice", headers, params={"fields": "uds", "limit": 5}).json()
    assert again["object_ids"][:4] == first["object_ids"][1:] and again["total"] == first["total"] - 1
    assert call(srv, "GET", "/inspections/queue", "bob", headers).json()["object_ids"] == []
    assert call(srv, "GET", "/inspections/queue", None, headers).status_code == 401
    r = call(srv, "GET", "/inspections/queue", "alice", headers, params={"mode": "everything"})
    assert r.status_code == 400 and "mode: expected one of ungraded, conflicts" in r.json()["message"]


def test_users_add_with_the_admin_role(srv, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("carol-password\n"))
    assert cli.main(["users", "add", "carol", "--root", str(srv.root), "--role", "admin", "--password-stdin"]) == 0
    assert "added user carol (admin)" in capsys.readouterr().out
    store = AuthStore(srv.root)
    try:
        assert store.role_of("carol") == "admin" and store.role_of("bob") == "member"
    finally:
        store.close()
    # an admin sees every program: the pipeline's own visibility set
    assert requests.get(f"{srv.url}{API}/me", headers=login(srv.url, ADMIN[0])).json()["visibility"] == "*"


# ------------------------------------------------------------------------------ blind mode
def test_blind_mode_hides_others_grades_until_you_grade(archive_copy, make_client):
    root = archive_copy
    add_user(root, *ADMIN, role="admin")
    srv = ServerThread(root, blind_inspections=True).start()
    try:
        h = {user: login(srv.url, user) for user in (None, "alice", ADMIN[0])}
        conn = sqlite3.connect(root / "meta" / "campfire.db")
        pub = ",".join(map(str, public_ids(conn)))
        oid = conn.execute(f"SELECT object_id FROM inspections i WHERE NOT EXISTS (SELECT 1 FROM spectra s "
                           f"WHERE s.object_id = i.object_id AND s.program_id IN ({pub})) LIMIT 1").fetchone()[0]
        public = conn.execute(f"SELECT object_id FROM inspections i WHERE NOT EXISTS (SELECT 1 FROM spectra s "
                              f"WHERE s.object_id = i.object_id AND s.program_id NOT IN ({pub})) LIMIT 1").fetchone()[0]
        conn.close()
        url = f"{srv.url}{API}/objects/{oid}/inspections"
        before = requests.get(url, headers=h["alice"]).json()
        assert before["inspections"] == [] and before["consensus"]["state"] == "hidden" and before["may_inspect"]
        admin_view = requests.get(url, headers=h[ADMIN[0]]).json()
        assert admin_view["inspections"] and admin_view["consensus"]["state"] != "hidden"
        anonymous = requests.get(f"{srv.url}{API}/objects/{public}/inspections").json()
        assert anonymous["inspections"] == [] and anonymous["consensus"]["state"] == "hidden"
        assert requests.get(f"{srv.url}{API}/objects/{public}/inspections", headers=h[ADMIN[0]]).json()["inspections"]
        r = requests.post(url, headers=h["alice"], json={"redshift": 3.0, "quality": 2})
        assert r.status_code == 201
        after = requests.get(url, headers=h["alice"]).json()
        assert len(after["inspections"]) == len(admin_view["inspections"]) + 1
        assert after["consensus"] == consensus(after["inspections"])
        # a synced catalog holds the reviewer's own records only
        cf = make_client(srv.url, "alice")
        cf.sync()
        assert {r[0] for r in cf.local_catalog.conn.execute("SELECT DISTINCT reviewer FROM inspections")} == {"alice"}
    finally:
        srv.stop()


# -------------------------------------------------------------------------------- refit
def test_refit_in_a_narrow_window(srv, headers, ids):
    oid = ids["example_object"]  # z = 3.4210 inspected; alice may not inspect it (public only)
    conn = sqlite3.connect(srv.db)
    z_true = conn.execute("SELECT z_true FROM truth_objects WHERE object_id = ?", (oid,)).fetchone()[0]
    conn.close()
    r = call(srv, "POST", f"/objects/{oid}/refit", ADMIN[0], headers, json={"z_center": 3.40, "dz": 0.1})
    assert r.status_code == 200, r.text
    fit = r.json()
    assert fit["z_range"] == [pytest.approx(3.30), pytest.approx(3.50)]
    assert abs(fit["redshift"] - z_true) / (1 + z_true) < 0.005
    assert fit["redshift_lo"] <= fit["redshift"] <= fit["redshift_hi"]
    assert 3.3 - 1e-6 <= min(fit["z_grid"]) and max(fit["z_grid"]) <= 3.5 + 1e-6 and len(fit["z_grid"]) < 500
    assert fit["spectrum_id"] in {s["spectrum_id"] for s in
                                  call(srv, "GET", f"/objects/{oid}", ADMIN[0], headers).json()["spectra"]}
    # bounded: a window wider than +-0.5, another object's spectrum, callers who may not inspect
    r = call(srv, "POST", f"/objects/{oid}/refit", ADMIN[0], headers, json={"z_center": 3.4, "dz": 2})
    assert r.status_code == 400 and "dz: expected a number in [0.0001, 0.5]" in r.json()["message"]
    r = call(srv, "POST", f"/objects/{oid}/refit", ADMIN[0], headers,
             json={"z_center": 3.4, "spectrum_id": ids["public_spectrum"]})
    assert r.status_code == 400 and "is not a spectrum of" in r.json()["message"]
    assert call(srv, "POST", f"/objects/{oid}/refit", None, headers, json={"z_center": 3.4}).status_code == 401
    assert call(srv, "POST", f"/objects/{oid}/refit", "alice", headers, json={"z_center": 3.4}).status_code == 403
    # at most two at once: with both slots taken, a third waits, then gets 429
    archive = srv.thread.app.state.archive
    archive.refit_wait = 0.2
    assert archive.refits.acquire(timeout=5) and archive.refits.acquire(timeout=5)
    try:
        r = call(srv, "POST", f"/objects/{oid}/refit", ADMIN[0], headers, json={"z_center": 3.4})
        assert r.status_code == 429 and r.headers["retry-after"] == "2"
    finally:
        archive.refits.release()
        archive.refits.release()
        archive.refit_wait = 10.0
    assert call(srv, "POST", f"/objects/{oid}/refit", ADMIN[0], headers, json={"z_center": 3.4}).status_code == 200


# ---------------------------------------------------------------------------- Python and CLI
def test_python_and_cli_grades_reach_the_synced_catalog(srv, headers, make_client, capsys):
    oid = fresh(srv, "mixed_ungraded")
    cf = make_client(srv.url, "alice", own_credentials=False)  # the CLI below reads the same token file
    cf.sync()
    assert len(cf.query_objects(inspected_only=True, redshift_quality=[3, 4], search=oid)) == 0
    stored = cf.inspect(oid, redshift=6.0123, quality="probable", comment="Lya break", flags=["BAD_SPECTRUM"])
    assert stored["reviewer"] == "alice" and stored["quality_name"] == "probable" and stored["issues"] == ["BAD_SPECTRUM"]
    assert stored["consensus"] == {"state": "single", "redshift": 6.0123, "quality": 3, "n_reviewers": 1}
    remote = cf.get_inspections(oid, remote=True)
    assert list(remote["reviewer"]) == ["alice"] and remote["issues"][0] == "BAD_SPECTRUM"
    assert remote.meta["consensus"]["state"] == "single" and not remote["outdated"][0]
    assert len(cf.get_inspections(oid)) == 0  # the synced catalog: until the next sync
    # the CLI, as the same account
    assert cli.main(["inspect", oid, "--redshift", "6.0150", "--quality", "secure", "--flag", "CONTAMINATED",
                     "--server", srv.url, "--data-dir", str(cf.data_dir)]) == 0
    out = capsys.readouterr().out
    assert f"of {oid} by alice: z=6.0150 secure (4)" in out and "consensus: single, z=6.0150, quality 4" in out
    cf.sync()
    local = cf.get_inspections(oid)
    assert list(local["redshift"]) == [6.0123, 6.015] and local.meta["consensus"]["quality"] == 4
    got = cf.query_objects(inspected_only=True, redshift_quality=[3, 4], search=oid)
    assert list(got["object_id"]) == [oid] and got["redshift_inspected"][0] == 6.015
    assert cli.main(["inspections", oid, "--data-dir", str(cf.data_dir)]) == 0
    assert "Lya break" in capsys.readouterr().out
    # what the server refuses arrives as a clear error
    bob = make_client(srv.url, "bob")
    with pytest.raises(ValidationError, match="you may not inspect"):
        bob.inspect(oid, redshift=6.0, quality=3)
    with pytest.raises(ValidationError, match="quality: unknown quality 'great'"):
        cf.inspect(oid, redshift=6.0, quality="great")
    with pytest.raises(ValidationError, match="reviewer: a server records the account"):
        cf.inspect(oid, redshift=6.0, quality=3, reviewer="someone-else")
    assert cli.main(["inspect", oid, "--quality", "probable", "--server", srv.url,
                     "--data-dir", str(cf.data_dir)]) == 2
    assert "redshift: a grade of 3 (probable) needs a redshift" in capsys.readouterr().err


def test_grades_written_by_another_writer_are_derived_for_every_caller(srv, headers):
    """An ingest adds records while the server runs and refreshes the standard sets ('*' and '') only.

    The sets of users (alice's) are the server's to bring up to date — and its own next
    grade must not make it skip them.
    """
    from campfire.catalog.aggregates import refresh_standard_aggregates
    from campfire.catalog.db import connect
    from campfire.catalog.inspections import add_inspection

    by_pipeline, by_server = fresh(srv, "public_only"), fresh(srv, "public_only")
    for user in (None, "alice", ADMIN[0]):  # every visibility set is current before
        object_fields(srv, headers, user, by_pipeline)
    conn = connect(srv.db, readonly=False)
    with conn:
        add_inspection(conn, by_pipeline, "pipeline", redshift=2.345, quality=4, refresh=False)
        refresh_standard_aggregates(conn)
    conn.close()
    assert grade(srv, headers, ADMIN[0], by_server, redshift=1.0, quality=3).status_code == 201
    for user in (None, "bob", "alice", ADMIN[0]):
        assert object_fields(srv, headers, user, by_pipeline) == (2.345, 2.345, 4), user
        assert object_fields(srv, headers, user, by_server) == (1.0, 1.0, 3), user
