"""Tag filters name one tag (issue 15, point 3): your own and system tags by slug, others' as owner/slug.

alice and bob each create a shared tag ``cands`` over different objects. The rule
(:mod:`campfire.catalog.tagnames`) holds on the server (API and Python ``remote=True``),
on a synced copy (the export carries the owners; the copy knows who synced it), and in
``Object.tags``; a system tag added later with a user's slug takes the bare slug.
"""
from __future__ import annotations

import pytest
import requests

from campfire import cli
from campfire.errors import ValidationError

pytestmark = pytest.mark.server


@pytest.fixture
def two_cands(fresh_server, make_client):
    """alice's and bob's shared ``cands`` (disjoint members), and their clients."""
    alice, bob = make_client(fresh_server.url, "alice"), make_client(fresh_server.url, "bob")
    public = [r["object_id"] for r in bob.query_objects(remote=True, limit=20, sort="object_id")]
    mine, his = public[:7], public[7:17]
    alice.create_tag("cands", "Alice's candidates", shared=True)
    bob.create_tag("cands", "Bob's candidates", shared=True)
    assert alice.tag_objects("cands", mine) == 7 and bob.tag_objects("cands", his) == 10
    return {"alice": alice, "bob": bob, "anon": make_client(fresh_server.url), "mine": mine, "his": his,
            "server": fresh_server}


def ids_of(table) -> set[str]:
    return set(table["object_id"])


def test_own_slug_is_yours_and_owner_slug_is_theirs(two_cands):
    alice, bob, mine, his = two_cands["alice"], two_cands["bob"], two_cands["mine"], two_cands["his"]
    assert ids_of(alice.query_objects(remote=True, tags=["cands"])) == set(mine)
    assert ids_of(alice.query_objects(remote=True, tags=["bob/cands"])) == set(his)
    assert ids_of(alice.query_objects(remote=True, tags=["alice/cands"])) == set(mine)
    assert ids_of(alice.query_objects(remote=True, tags=["cands", "bob/cands"])) == set(mine) | set(his)
    assert ids_of(bob.query_objects(remote=True, tags=["cands"])) == set(his)
    assert ids_of(bob.query_objects(remote=True, tags=["alice/cands"])) == set(mine)
    # spectra join through the object the same way
    spectra = alice.query_spectra(remote=True, tags=["bob/cands"])
    assert set(spectra["object_id"]) == set(his)
    # the HTTP API takes the same names
    url = f"{two_cands['server'].url}/api/v1/objects"
    r = requests.get(url, params={"tags": "bob/cands", "limit": 100})
    assert r.status_code == 400 and "unknown tag" in r.json()["message"]  # anonymous: shared tags are not theirs


def test_object_tags_and_errors_use_the_same_names(two_cands):
    alice, bob, anon = two_cands["alice"], two_cands["bob"], two_cands["anon"]
    both = two_cands["his"][0]
    alice.tag_objects("cands", [both])
    assert {"cands", "bob/cands"} <= set(alice.get_object(both, remote=True).tags)
    assert {"cands", "alice/cands"} <= set(bob.get_object(both, remote=True).tags)
    row = alice.query_objects(remote=True, search=both)
    assert {"cands", "bob/cands"} <= set(row["tags"][0].split(","))
    # a name seen in Object.tags is a valid filter
    assert both in ids_of(alice.query_objects(remote=True, tags=["bob/cands"]))
    with pytest.raises(ValidationError, match=r"unknown tag 'nope'.*bob/cands"):
        alice.query_objects(remote=True, tags=["nope"])
    with pytest.raises(ValidationError, match="unknown tag"):
        anon.query_objects(remote=True, tags=["cands"])


def test_tag_listings_show_the_owner(two_cands, capsys):
    rows = {(r["slug"], r["owner"]) for r in two_cands["alice"].get_tags(remote=True)}
    assert {("cands", "alice"), ("cands", "bob")} <= rows
    server = two_cands["server"]
    assert cli.main(["tags", "list", "--server", server.url]) == 0  # anonymous: system tags only
    assert "cands" not in capsys.readouterr().out


def test_synced_copy_follows_the_same_rule(two_cands):
    alice, mine, his = two_cands["alice"], two_cands["mine"], two_cands["his"]
    alice.sync()
    assert ids_of(alice.query_objects(tags=["cands"])) == set(mine)
    assert ids_of(alice.query_objects(tags=["bob/cands"])) == set(his)
    assert {(r["slug"], r["owner"]) for r in alice.get_tags()} >= {("cands", "alice"), ("cands", "bob")}
    assert set(alice.query_spectra(tags=["cands"])["object_id"]) == set(mine)
    # bob syncs into another data_dir: the same names from his side
    bob = two_cands["bob"]
    bob.sync()
    assert ids_of(bob.query_objects(tags=["cands"])) == set(his)
    assert ids_of(bob.query_objects(tags=["alice/cands"])) == set(mine)


def test_a_system_tag_added_later_takes_the_bare_slug(two_cands):
    alice, mine = two_cands["alice"], two_cands["mine"]
    server = two_cands["server"]
    (target,) = server.sql("SELECT object_id FROM objects ORDER BY object_id DESC LIMIT 1")[0]
    server.sql("INSERT INTO tags (slug, name, description, kind, owner, updated_at) "
               "VALUES ('cands', 'Candidates', '', 'system', '', '2999-01-01T00:00:00+00:00')")
    (tag_id,) = server.sql("SELECT tag_id FROM tags WHERE slug = 'cands' AND kind = 'system'")[0]
    server.sql("INSERT INTO object_tags (tag_id, object_id) VALUES (?, ?)", (tag_id, target))
    assert ids_of(alice.query_objects(remote=True, tags=["cands"])) == {target}
    assert ids_of(alice.query_objects(remote=True, tags=["alice/cands"])) == set(mine)
    assert "alice/cands" in alice.get_object(mine[0], remote=True).tags
    # and a new tag cannot take a system slug
    with pytest.raises(ValidationError, match="reserved"):
        two_cands["bob"].create_tag("lrd", "mine")
