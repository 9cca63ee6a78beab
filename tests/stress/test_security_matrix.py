"""The proprietary program through EVERY endpoint: a test matrix over the server's OpenAPI route list.

Each operation of :data:`campfire.server.openapi.OPERATIONS` has a probe here, run as
anonymous, as bob (member of no proprietary program) and as alice (a member: the
positive control that proves each probe can see what it looks for). A new endpoint
without a probe fails :func:`test_every_operation_has_a_probe`.

The oracle is the raw catalog: a caller sees the spectra of the public programs (plus
alice the proprietary one), and every object-level answer — membership, aggregates,
filters evaluated over spectra (gratings, dq_flags, S/N), cone searches, tag counts,
metadata, bulk exports and their deltas — is recomputed from those spectra here.
tests/server/test_server_visibility.py already proves lists, totals, aggregates, the
full export and 404s on a few IDs; this matrix adds the remaining cells: filters whose
answer a hidden spectrum would change, If-None-Match/Range/HEAD on hidden files, cone
searches at hidden positions, tag edits naming hidden objects (same message as an
unknown ID), other users' private tags (404, not 403), delta exports and borrowed
cursors, /me, /health, /counts, /gratings, /fields.

Guards: ``Visibility`` in campfire/catalog/local.py (spectra predicate inside every
object filter), the per-visibility ``object_aggregates``, ``_spectrum_or_404`` before the
ETag/Range handling in app.py, the visibility checks of tag edits, and export.py's
per-caller snapshot/delta (cursor bound to the caller's visibility).
"""
from __future__ import annotations

import gzip
import itertools
import json
import pathlib
import sqlite3

import pytest
import requests

from campfire.flags import DQFlags
from campfire.server.openapi import OPERATIONS
from stresskit import API, copy_archive, password_token, start_server

pytestmark = pytest.mark.server

USERS = [None, "bob", "alice"]


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def srv(demo_root, tmp_path_factory):
    root = copy_archive(pathlib.Path(demo_root), tmp_path_factory.mktemp("matrix") / "root")
    s = start_server(root)
    yield s
    s.thread.stop()


@pytest.fixture(scope="module")
def auth(srv) -> dict:
    out = {None: {}}
    for user in ("bob", "alice"):
        out[user] = {"Authorization": f"Bearer {password_token(srv.url, user)['access_token']}"}
    return out


@pytest.fixture(scope="module")
def alice_tags(srv, auth, ids) -> dict:
    """alice's shared tag (two proprietary-only objects + a public one) and her private tag."""
    h = auth["alice"]
    members = [ids["prop_only"][0], ids["prop_only"][1], ids["example_object"]]
    for slug, shared in (("deep-picks", True), ("alice-private", False)):
        r = requests.post(f"{srv.url}{API}/tags", json={"slug": slug, "name": slug, "shared": shared}, headers=h)
        assert r.status_code == 201, r.text
        r = requests.post(f"{srv.url}{API}/tags/{slug}/objects", json={"object_ids": members}, headers=h)
        assert r.status_code == 200, r.text
    return {"shared": "deep-picks", "private": "alice-private", "members": members}


@pytest.fixture(scope="module")
def oracle(srv):
    conn = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        spectra = [dict(r) for r in conn.execute("SELECT * FROM spectra")]
        programs = {r["program_id"]: dict(r) for r in conn.execute("SELECT * FROM programs")}
        observations = {r["observation"]: dict(r) for r in conn.execute("SELECT * FROM observations")}
        objects = {r["object_id"]: dict(r) for r in conn.execute("SELECT object_id, ra, dec FROM objects")}
        system_tags: dict[str, set] = {}
        for slug, oid in conn.execute("SELECT t.slug, ot.object_id FROM object_tags ot JOIN tags t USING (tag_id) "
                                      "WHERE t.kind = 'system'"):
            system_tags.setdefault(slug, set()).add(oid)
    finally:
        conn.close()
    out = {"programs": programs, "objects": objects, "system_tags": system_tags}
    for user in USERS:
        ok = {p for p, row in programs.items() if row["is_public"] or user == "alice"}
        specs = [s for s in spectra if s["program_id"] in ok]
        by_obj: dict[str, list] = {}
        for s in specs:
            by_obj.setdefault(s["object_id"], []).append(s)
        obs = {o for o, row in observations.items() if row["program_id"] in ok}
        out[user] = {"spectra": {s["spectrum_id"]: s for s in specs}, "objects": by_obj, "observations": obs,
                     "fields": {observations[o]["field"] for o in obs}, "gratings": {s["grating"] for s in specs},
                     "slugs": {programs[p]["slug"] for p in ok}, "program_ids": ok}
    return out


class Probe:
    """What one test cell needs: the server, the caller, the oracle, the leak detector."""

    def __init__(self, srv, auth, user, oracle, ids, secrets, tags):
        self.srv, self.auth, self.user, self.oracle, self.ids, self.secrets, self.tags = (
            srv, auth, user, oracle, ids, secrets, tags)
        self.sees = oracle[user]
        self.member = user == "alice"

    def request(self, method: str, path: str, *, check: bool = True, **kwargs) -> requests.Response:
        headers = {**self.auth[self.user], **kwargs.pop("headers", {})}
        r = requests.request(method, f"{self.srv.url}{API}{path}", headers=headers, **kwargs)
        assert r.status_code < 500, (method, path, r.status_code, r.text[:300])
        if check:
            self.no_secrets(r.content, r.request)
        return r

    def get(self, path: str, **params) -> requests.Response:
        return self.request("GET", path, params=params)

    def no_secrets(self, body: bytes, req) -> None:
        if self.member:
            return
        asked = requests.utils.unquote(req.url) + (req.body.decode("latin-1") if isinstance(req.body, bytes)
                                                   else str(req.body or ""))
        leaked = self.secrets.leaks(body, asked)
        assert not leaked, f"{self.user or 'anonymous'}: {req.method} {req.url} shows proprietary {leaked[:5]}"

    def all_rows(self, kind: str, **params) -> list[dict]:
        rows, offset = [], 0
        while True:
            body = self.get(f"/{kind}", limit=10000, offset=offset, **params).json()
            rows += [dict(zip(body["columns"], r)) for r in body["rows"]]
            if len(body["rows"]) < 10000:
                return rows
            offset += 10000

    def same_message_as_unknown(self, r: requests.Response, hidden: str, made_up: str, r2: requests.Response):
        """A hidden ID is answered exactly like a made-up one (status and message, IDs aside)."""
        assert r.status_code == r2.status_code
        assert r.json()["message"].replace(hidden, "X") == r2.json()["message"].replace(made_up, "X")


@pytest.fixture
def probe(request, srv, auth, oracle, ids, secrets, alice_tags):
    user = request.node.callspec.params["user"]
    return Probe(srv, auth, user, oracle, ids, secrets, alice_tags)


# --------------------------------------------------------------------------------- probes
def probe_health(p: Probe):
    assert p.get("/health").json()["status"] == "ok"


def probe_me(p: Probe):
    me = p.get("/me").json()
    assert me["username"] == p.user
    proprietary = {pid for pid, row in p.oracle["programs"].items() if not row["is_public"]}
    assert set(me["programs"]) == (proprietary if p.member else set())


def probe_token(p: Probe):
    if p.user is None:
        r = p.request("POST", "/auth/token", data={"grant_type": "refresh_token", "refresh_token": "x" * 43})
        assert r.status_code == 400
        return
    from stresskit import DEMO_PASSWORDS

    r = p.request("POST", "/auth/token", data={"grant_type": "password", "username": p.user,
                                               "password": DEMO_PASSWORDS[p.user]})
    assert r.status_code == 200
    # the token carries no memberships: they are looked up per request (a revoked grant takes effect at once);
    # "fam" names the login it belongs to (refused at once when that login is logged out)
    claims = json.loads(__import__("base64").urlsafe_b64decode(r.json()["access_token"].split(".")[1] + "=="))
    assert set(claims) <= {"sub", "iat", "exp", "iss", "typ", "jti", "fam"}


def probe_revoke(p: Probe):
    if p.user is None:
        assert p.request("POST", "/auth/revoke", data={"token": "y" * 43}).json() == {"revoked": True}
        return
    pair = password_token(p.srv.url, p.user)
    assert p.request("POST", "/auth/revoke", data={"token": pair["refresh_token"]}).status_code == 200
    again = p.request("POST", "/auth/token", data={"grant_type": "refresh_token",
                                                   "refresh_token": pair["refresh_token"]})
    assert again.status_code == 400


def _visible_filter(p: Probe, pred) -> set[str]:
    """Objects with at least one visible spectrum satisfying ``pred``."""
    return {oid for oid, specs in p.sees["objects"].items() if any(pred(s) for s in specs)}


def probe_objects(p: Probe):
    ids = {r["object_id"] for r in p.all_rows("objects")}
    assert ids == set(p.sees["objects"])
    # object filters evaluated over spectra must see only the caller's spectra
    for grating in ("PRISM", "G140M", "G235M", "G395M"):
        got = {r["object_id"] for r in p.all_rows("objects", gratings=grating)}
        assert got == _visible_filter(p, lambda s, g=grating: s["grating"] == g), grating
    for flag in DQFlags:
        got = {r["object_id"] for r in p.all_rows("objects", dq_flags=flag.name)}
        assert got == _visible_filter(p, lambda s, b=int(flag): s["dq_flags"] & b), flag.name
    best = {oid: max(s["signal_to_noise"] for s in specs) for oid, specs in p.sees["objects"].items()}
    for lo in (5.0, 20.0, 50.0):
        got = {r["object_id"] for r in p.all_rows("objects", max_snr_range=f"{lo},1e9")}
        assert got == {oid for oid, snr in best.items() if snr >= lo}, lo
    top = p.get("/objects", sort="max_snr", sort_dir="desc", limit=5).json()
    snr = top["columns"].index("max_snr")
    assert [r[snr] for r in top["rows"]] == pytest.approx(sorted(best.values(), reverse=True)[:5])
    # cone searches at the positions of proprietary-only objects find nothing hidden
    for oid in p.ids["prop_only"][:5]:
        obj = p.oracle["objects"][oid]
        got = {r["object_id"] for r in p.all_rows("objects", cone_search=f"{obj['ra']},{obj['dec']},2")}
        assert (oid in got) == p.member and got <= set(p.sees["objects"])
    # a tag of alice's that holds hidden objects lists only the visible ones (another user's tag is
    # named owner/slug: campfire.catalog.tagnames)
    r = p.get("/objects", tags=f"alice/{p.tags['shared']}")
    if p.user is None:
        assert r.status_code == 400  # anonymous callers see system tags only: an unknown tag
    else:
        assert {row[0] for row in r.json()["rows"]} == {o for o in p.tags["members"] if o in p.sees["objects"]}
    r = p.get("/objects", search=p.ids["prop_only"][0])
    assert (r.json()["total"] == 1) == p.member


def probe_spectra(p: Probe):
    ids = {r["spectrum_id"] for r in p.all_rows("spectra")}
    assert ids == set(p.sees["spectra"])
    for oid in p.ids["mixed"][:5]:
        got = {r["spectrum_id"] for r in p.all_rows("spectra", search=oid)}
        assert got == {s["spectrum_id"] for s in p.sees["objects"][oid]}
    for params in ({"observations": p.ids["prop_obs"][0]}, {"programs": p.ids["prop_slugs"][0]},
                   {"programs": str(p.ids["prop_ids"][0])}):
        r = p.get("/spectra", **params)
        assert (r.status_code == 200 and r.json()["total"] > 0) if p.member else r.status_code == 400, params


def probe_object(p: Probe):
    made_up = "ember_uds_p4_999999999"
    unknown = p.get(f"/objects/{made_up}")
    for oid in p.ids["prop_only"][:5]:
        r = p.get(f"/objects/{oid}")
        if p.member:
            assert r.status_code == 200 and r.json()["spectra"]
        else:
            p.same_message_as_unknown(r, oid, made_up, unknown)
    for oid in p.ids["mixed"][:5]:
        body = p.get(f"/objects/{oid}").json()
        assert {s["spectrum_id"] for s in body["spectra"]} == {s["spectrum_id"] for s in p.sees["objects"][oid]}
        assert body["object"]["n_spectra"] == len(p.sees["objects"][oid])
        assert body["object"]["max_snr"] == pytest.approx(max(s["signal_to_noise"] for s in p.sees["objects"][oid]))


def _hidden_spectra(p: Probe) -> list[str]:
    return p.ids["prop_spectra"][:4] + [s["spectrum_id"] for oid in p.ids["mixed"][:2]
                                         for s in p.oracle["alice"]["objects"][oid] if s["program_id"] in
                                         set(p.ids["prop_ids"])]


def probe_spectrum(p: Probe):
    made_up = "ember_uds_p4_prism_clear_999999999"
    unknown = p.get(f"/spectra/{made_up}")
    for sid in _hidden_spectra(p):
        r = p.get(f"/spectra/{sid}")
        if p.member:
            assert r.status_code == 200
        else:
            p.same_message_as_unknown(r, sid, made_up, unknown)


def probe_file(p: Probe):
    for sid in _hidden_spectra(p):
        digest = p.oracle["alice"]["spectra"][sid]["file_hash"]
        variants = [
            p.request("GET", f"/spectra/{sid}/file"),
            p.request("HEAD", f"/spectra/{sid}/file"),
            p.request("GET", f"/spectra/{sid}/file", headers={"Range": "bytes=0-99"}),
            # a guessed hash must not turn into a 304 "yes, that is the file" oracle
            p.request("GET", f"/spectra/{sid}/file", headers={"If-None-Match": f'"{digest}"'}),
            p.request("GET", f"/spectra/{sid}/file", headers={"Range": "bytes=999999999-"}),
        ]
        statuses = [r.status_code for r in variants]
        assert statuses == ([200, 200, 206, 304, 416] if p.member else [404] * 5), (sid, statuses)


def probe_data(p: Probe):
    for sid in _hidden_spectra(p)[:3]:
        r = p.get(f"/spectra/{sid}/data")
        assert r.status_code == (200 if p.member else 404)


def probe_redshift_fit(p: Probe):
    for sid in _hidden_spectra(p)[:3]:
        r = p.get(f"/spectra/{sid}/redshift-fit")
        assert r.status_code == (200 if p.member else 404)
        if not p.member:
            assert r.json()["error"] == "not_found"


def probe_cutout(p: Probe):
    for oid in p.ids["prop_only"][:3]:
        assert p.get(f"/objects/{oid}/cutout.png", fov=2).status_code == (200 if p.member else 404)
    assert p.get(f"/objects/{p.ids['mixed'][0]}/cutout.png", fov=2).status_code == 200


def probe_shutters(p: Probe):
    for oid in p.ids["prop_only"][:3]:
        assert p.get(f"/objects/{oid}/shutters").status_code == (200 if p.member else 404)
    for oid in p.ids["mixed"][:5]:
        body = p.get(f"/objects/{oid}/shutters", fov=10).json()
        seen = {s["observation"] for s in body["shutters"]} | {o["observation"] for o in body["observations"]}
        assert seen <= p.sees["observations"]
        if p.member:
            assert seen & set(p.ids["prop_obs"]), oid


def probe_metadata(p: Probe):
    meta = p.get("/metadata").json()
    assert set(meta["programs"]) == p.sees["slugs"] and set(meta["observations"]) == p.sees["observations"]
    assert set(meta["fields"]) == p.sees["fields"] and set(meta["gratings"]) == p.sees["gratings"]


def probe_programs(p: Probe):
    body = p.get("/programs").json()
    assert {r[0] for r in body["rows"]} == p.sees["program_ids"]


def probe_fields(p: Probe):
    assert set(p.get("/fields").json()) == p.sees["fields"]


def probe_gratings(p: Probe):
    assert set(p.get("/gratings").json()) == p.sees["gratings"]


def probe_observations(p: Probe):
    assert set(p.get("/observations").json()) == p.sees["observations"]


def probe_counts(p: Probe):
    assert p.get("/counts").json() == {"observations": len(p.sees["observations"]),
                                       "objects": len(p.sees["objects"]), "spectra": len(p.sees["spectra"])}


def probe_tags(p: Probe):
    body = p.get("/tags").json()
    rows = [dict(zip(body["columns"], r)) for r in body["rows"]]
    counts = {(r["slug"], r["owner"]): r["member_count"] for r in rows}
    for slug, members in p.oracle["system_tags"].items():
        assert counts[(slug, "")] == len(members & set(p.sees["objects"])), slug
    shared = (p.tags["shared"], "alice")
    if p.user is None:
        assert shared not in counts  # anonymous: system tags only
    else:
        assert counts[shared] == len([o for o in p.tags["members"] if o in p.sees["objects"]])
    assert ((p.tags["private"], "alice") in counts) == p.member


def _own_tag(p: Probe, slug: str) -> None:
    requests.delete(f"{p.srv.url}{API}/tags/{slug}", headers=p.auth[p.user])
    r = p.request("POST", "/tags", json={"slug": slug, "name": slug})
    assert r.status_code == 201, r.text


def probe_create_tag(p: Probe):
    if p.user is None:
        assert p.request("POST", "/tags", json={"slug": "anon-tag", "name": "x"}).status_code == 401
        return
    # the slug of another user's private tag is free: a 409 would reveal that it exists
    if not p.member:
        r = p.request("POST", "/tags", json={"slug": p.tags["private"], "name": "mine"})
        assert r.status_code == 201, r.text
        assert p.request("DELETE", f"/tags/{p.tags['private']}").status_code == 200


def probe_update_tag(p: Probe):
    if p.user is None:
        assert p.request("PATCH", f"/tags/{p.tags['shared']}", json={"name": "x"}).status_code == 401
        return
    private = p.request("PATCH", f"/tags/{p.tags['private']}", json={"description": "seen"})
    shared = p.request("PATCH", f"/tags/{p.tags['shared']}", json={"description": "seen"})
    if p.member:
        assert private.status_code == 200 and shared.status_code == 200
    else:
        assert private.status_code == 404  # invisible, not "forbidden"
        assert shared.status_code == 403   # visible (shared) but not bob's


def probe_delete_tag(p: Probe):
    if p.user is None:
        assert p.request("DELETE", f"/tags/{p.tags['shared']}").status_code == 401
        return
    if p.member:
        _own_tag(p, "alice-temp")
        assert p.request("DELETE", "/tags/alice-temp").status_code == 200
        return
    assert p.request("DELETE", f"/tags/{p.tags['private']}").status_code == 404
    assert p.request("DELETE", f"/tags/{p.tags['shared']}").status_code == 403


def _members_probe(p: Probe, method: str, key: str):
    if p.user is None:
        assert p.request(method, f"/tags/{p.tags['shared']}/objects",
                         json={"object_ids": [p.ids["example_object"]]}).status_code == 401
        return
    slug = f"{p.user}-probe"
    _own_tag(p, slug)
    hidden, made_up = p.ids["prop_only"][0], "ember_uds_p4_999999999"
    r = p.request(method, f"/tags/{slug}/objects", json={"object_ids": [hidden]})
    if p.member:
        assert r.status_code == 200 and key in r.json()
    else:
        unknown = p.request(method, f"/tags/{slug}/objects", json={"object_ids": [made_up]})
        p.same_message_as_unknown(r, hidden, made_up, unknown)
        assert r.status_code == 400


def probe_tag_objects(p: Probe):
    _members_probe(p, "POST", "added")


def probe_untag_objects(p: Probe):
    _members_probe(p, "DELETE", "removed")


_YEARS = itertools.count(3000)


def _ndjson(body: bytes) -> list[dict]:
    return [json.loads(line) for line in gzip.decompress(body).splitlines() if line]


def probe_export(p: Probe):
    r = p.get("/export")
    assert r.headers["x-campfire-export"] == "sqlite-snapshot"
    p.no_secrets(gzip.decompress(r.content), r.request)
    cursor = r.headers["x-campfire-cursor"]
    # touch a hidden spectrum (and its object) and a public one: a delta carries only what the caller sees
    hidden = p.ids["prop_spectra"][0]
    public = p.ids["public_spectrum"]
    stamp = f"{next(_YEARS):04d}-01-01T00:00:00.000000Z"  # later than every earlier cursor
    for sid in (hidden, public):
        p.srv.sql("UPDATE spectra SET updated_at = ? WHERE spectrum_id = ?", (stamp, sid))
    p.srv.sql("UPDATE objects SET updated_at = ? WHERE object_id = ?", (stamp, p.ids["prop_only"][0]))
    d = p.get("/export", since=cursor)
    assert d.headers["x-campfire-export"] == "ndjson-delta"
    p.no_secrets(gzip.decompress(d.content), d.request)
    sent = {row[0] for line in _ndjson(d.content) if line["type"] == "rows" and line["table"] == "spectra"
            for row in line["rows"]}
    assert public in sent and (hidden in sent) == p.member
    # another caller's cursor gives no delta of *their* catalog: a full export of one's own
    other = requests.get(f"{p.srv.url}{API}/export", headers=p.auth["alice" if not p.member else None]).headers
    borrowed = p.get("/export", since=other["x-campfire-cursor"])
    assert borrowed.headers["x-campfire-export"] == "sqlite-snapshot"
    p.no_secrets(gzip.decompress(borrowed.content), borrowed.request)


def probe_post_inspection(p: Probe):
    body = {"redshift": 2.5, "quality": "probable", "comment": "probe"}
    hidden, made_up, mixed = p.ids["prop_only"][0], "ember_uds_p4_999999999", p.ids["mixed"][0]
    if p.user is None:
        assert p.request("POST", f"/objects/{mixed}/inspections", json=body).status_code == 401
        return
    r = p.request("POST", f"/objects/{hidden}/inspections", json=body)
    if p.member:
        assert r.status_code == 201
        assert {s["spectrum_id"] for s in r.json()["inspection"]["spectra_seen"]} == \
            {s["spectrum_id"] for s in p.sees["objects"][hidden]}
    else:  # a hidden object is answered like a made-up one; a visible one the caller may not grade is 403
        p.same_message_as_unknown(r, hidden, made_up, p.request("POST", f"/objects/{made_up}/inspections", json=body))
        assert p.request("POST", f"/objects/{mixed}/inspections", json=body).status_code == 403


def probe_get_inspections(p: Probe):
    made_up = "ember_uds_p4_999999999"
    unknown = p.get(f"/objects/{made_up}/inspections")
    for oid in p.ids["prop_only"][:3]:
        r = p.get(f"/objects/{oid}/inspections")
        if p.member:
            assert r.status_code == 200
        else:
            p.same_message_as_unknown(r, oid, made_up, unknown)
    records = [r for oid in p.ids["mixed"][:8] for r in p.get(f"/objects/{oid}/inspections").json()["inspections"]]
    # only records resting on spectra the caller sees (the member's positive control: some rest on hidden ones)
    assert all({s["spectrum_id"] for s in r["spectra_seen"]} <= set(p.sees["spectra"]) for r in records)
    resting_on_hidden = [r for r in records if {s["spectrum_id"] for s in r["spectra_seen"]}
                         - set(p.oracle[None]["spectra"])]
    assert bool(resting_on_hidden) == p.member


def probe_queue(p: Probe):
    r = p.get("/inspections/queue", limit=1000)
    if p.user is None:
        assert r.status_code == 401
        return
    ids = r.json()["object_ids"]
    if p.member:  # the objects with a spectrum of the program alice is in
        prop = set(p.ids["prop_ids"])
        assert ids and all(any(s["program_id"] in prop for s in p.sees["objects"][oid]) for oid in ids)
    else:
        assert ids == []


def probe_refit(p: Probe):
    hidden, made_up, mixed = p.ids["prop_only"][0], "ember_uds_p4_999999999", p.ids["mixed"][0]
    body = {"z_center": 2.0, "dz": 0.05}
    if p.user is None:
        assert p.request("POST", f"/objects/{mixed}/refit", json=body).status_code == 401
        return
    r = p.request("POST", f"/objects/{hidden}/refit", json=body)
    if p.member:
        assert r.status_code == 200 and r.json()["spectrum_id"] in p.sees["spectra"]
    else:
        p.same_message_as_unknown(r, hidden, made_up, p.request("POST", f"/objects/{made_up}/refit", json=body))
        assert p.request("POST", f"/objects/{mixed}/refit", json=body).status_code == 403


PROBES = {
    ("get", "/health"): probe_health,
    ("get", "/me"): probe_me,
    ("post", "/auth/token"): probe_token,
    ("post", "/auth/revoke"): probe_revoke,
    ("get", "/objects"): probe_objects,
    ("get", "/spectra"): probe_spectra,
    ("get", "/objects/{object_id}"): probe_object,
    ("get", "/spectra/{spectrum_id}"): probe_spectrum,
    ("get", "/spectra/{spectrum_id}/file"): probe_file,
    ("get", "/spectra/{spectrum_id}/data"): probe_data,
    ("get", "/spectra/{spectrum_id}/redshift-fit"): probe_redshift_fit,
    ("get", "/objects/{object_id}/cutout.png"): probe_cutout,
    ("get", "/objects/{object_id}/shutters"): probe_shutters,
    ("get", "/metadata"): probe_metadata,
    ("get", "/programs"): probe_programs,
    ("get", "/fields"): probe_fields,
    ("get", "/gratings"): probe_gratings,
    ("get", "/observations"): probe_observations,
    ("get", "/counts"): probe_counts,
    ("get", "/tags"): probe_tags,
    ("post", "/tags"): probe_create_tag,
    ("patch", "/tags/{slug}"): probe_update_tag,
    ("delete", "/tags/{slug}"): probe_delete_tag,
    ("post", "/tags/{slug}/objects"): probe_tag_objects,
    ("delete", "/tags/{slug}/objects"): probe_untag_objects,
    ("get", "/export"): probe_export,
    ("post", "/objects/{object_id}/inspections"): probe_post_inspection,
    ("get", "/objects/{object_id}/inspections"): probe_get_inspections,
    ("get", "/inspections/queue"): probe_queue,
    ("post", "/objects/{object_id}/refit"): probe_refit,
}


def test_every_operation_has_a_probe(srv):
    # the live document, not only the static table: an endpoint added to the app shows up here
    paths = requests.get(f"{srv.url}{API}/openapi.json").json()["paths"]
    live = {(m, path.removeprefix(API)) for path, item in paths.items() for m in item
            if m in ("get", "post", "put", "patch", "delete")}
    assert live == set(PROBES) == set(OPERATIONS)


@pytest.mark.parametrize("user", USERS, ids=lambda u: u or "anonymous")
@pytest.mark.parametrize("route", sorted(PROBES), ids=lambda r: f"{r[0].upper()} {r[1]}")
def test_visibility_matrix(probe, route, user):
    PROBES[route](probe)
