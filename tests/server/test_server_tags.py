"""User tags (issue 9): system, private and shared tags, respected from every path.

alice is a member of the proprietary program, bob of none; "anon" is not logged in.
"""
from __future__ import annotations

import sqlite3

import pytest

from campfire import cli
from campfire.errors import AuthenticationError, NotFoundError, ValidationError
from campfire.flags import list_flags

pytestmark = pytest.mark.server

SYSTEM = {"lrd", "blagn", "lae", "hae", "qg"}


@pytest.fixture
def people(server, make_client):
    return {"alice": make_client(server.url, "alice"), "bob": make_client(server.url, "bob"),
            "anon": make_client(server.url)}


def tag_rows(cf, remote=True) -> dict:
    t = cf.get_tags(remote=remote)
    assert t.colnames[:3] == ["slug", "name", "member_count"] and {"kind", "owner"} <= set(t.colnames)
    return {(r["slug"], r["owner"]): dict(zip(t.colnames, r)) for r in t}


def member_table(server) -> int:
    return server.sql("SELECT count(*) FROM object_tags")[0][0] + server.sql("SELECT count(*) FROM tags")[0][0]


def test_visibility_of_private_and_shared_tags(server, people, ids):
    alice, bob, anon = people["alice"], people["bob"], people["anon"]
    alice.create_tag("v-private", "Alice private", description="only mine")
    alice.create_tag("v-shared", "Alice shared", shared=True)
    bob.create_tag("v-bob", "Bob private")
    public_obj, prop_obj = ids["example_object"], ids["prop_only"][0]
    assert alice.tag_objects("v-shared", [public_obj, prop_obj]) == 2
    assert alice.tag_objects("v-private", [public_obj]) == 1
    assert bob.tag_objects("v-bob", [public_obj]) == 1

    a, b, n = tag_rows(alice), tag_rows(bob), tag_rows(anon)
    assert {s for s, _ in n} == SYSTEM and all(r["kind"] == "system" for r in n.values())
    assert ("v-private", "alice") in a and ("v-shared", "alice") in a and ("v-bob", "bob") not in a
    assert ("v-shared", "alice") in b and ("v-bob", "bob") in b and ("v-private", "alice") not in b
    assert a[("v-private", "alice")]["kind"] == "private" and a[("v-shared", "alice")]["kind"] == "shared"
    assert a[("v-private", "alice")]["description"] == "only mine"
    # member_count counts only objects the caller may see (the proprietary-only one is not bob's)
    assert a[("v-shared", "alice")]["member_count"] == 2 and b[("v-shared", "alice")]["member_count"] == 1

    # Object.tags and tag filters follow the same rules (another user's shared tag is owner/slug:
    # catalog/tagnames.py)
    assert set(alice.get_object(public_obj, remote=True).tags) >= {"v-private", "v-shared"}
    bob_tags = set(bob.get_object(public_obj, remote=True).tags)
    assert "alice/v-shared" in bob_tags and "v-bob" in bob_tags and not {"v-private", "alice/v-private"} & bob_tags
    assert not {"v-shared", "alice/v-shared"} & set(anon.get_object(public_obj, remote=True).tags)
    assert list(bob.query_objects(remote=True, tags=["alice/v-shared"])["object_id"]) == [public_obj]
    assert set(alice.query_objects(remote=True, tags=["v-shared"])["object_id"]) == {public_obj, prop_obj}
    for cf, slug in ((bob, "v-private"), (bob, "alice/v-private"), (bob, "v-shared"), (anon, "v-shared"),
                     (anon, "alice/v-shared"), (anon, "v-bob")):
        with pytest.raises(ValidationError, match="unknown tag"):
            cf.query_objects(remote=True, tags=[slug])
    assert "v-private" not in bob.query_objects(remote=True, search=public_obj)["tags"][0]


def test_bad_requests_change_nothing(server, people, ids):
    alice, bob, anon = people["alice"], people["bob"], people["anon"]
    alice.create_tag("b-mine", "Mine")
    bob.create_tag("b-bobs", "Bob's", shared=True)
    before = member_table(server)
    for slug in ("Bad Slug", "UPPER", "-lead", "trail-", "a--b", "", "x" * 65, "dots.no", "ü"):
        with pytest.raises(ValidationError, match="slug"):
            alice.create_tag(slug, "name")
    with pytest.raises(ValidationError, match="already have"):
        alice.create_tag("b-mine", "again")
    with pytest.raises(ValidationError, match="reserved"):
        alice.create_tag("lrd", "my lrds")
    with pytest.raises(ValidationError, match="name"):
        alice.create_tag("b-noname", "   ")
    with pytest.raises(ValidationError, match="shared"):
        alice.create_tag("b-badshared", "x", shared="yes")
    with pytest.raises(AuthenticationError, match="campfire login"):
        anon.create_tag("b-anon", "x")
    # someone else's tag: shared ones are read-only to others, private ones do not exist for them
    with pytest.raises(ValidationError, match="belongs to bob"):
        alice.tag_objects("b-bobs", [ids["example_object"]])
    with pytest.raises(ValidationError, match="belongs to bob"):
        alice.delete_tag("b-bobs")
    with pytest.raises(ValidationError, match="belongs to bob"):
        alice.update_tag("b-bobs", name="mine now")
    with pytest.raises(NotFoundError):
        bob.tag_objects("b-mine", [ids["example_object"]])
    with pytest.raises(NotFoundError):
        bob.delete_tag("b-mine")
    with pytest.raises(ValidationError, match="system tag"):
        alice.update_tag("lrd", name="renamed")
    with pytest.raises(ValidationError, match="system tag"):
        alice.untag_objects("lrd", [ids["example_object"]])
    # an object bob cannot see is unknown, and the valid ID in the same request is not added either
    with pytest.raises(ValidationError, match="unknown object"):
        bob.tag_objects("b-bobs", [ids["example_object"], ids["prop_only"][0]])
    with pytest.raises(ValidationError, match="unknown object"):
        alice.tag_objects("b-mine", ["not_an_object_1"])
    with pytest.raises(ValidationError):
        alice.tag_objects("b-mine", [])
    assert member_table(server) == before
    assert tag_rows(bob)[("b-bobs", "bob")]["member_count"] == 0
    # the same slug under another owner is fine (unique per owner)
    bob.create_tag("b-mine", "Bob's own b-mine")
    assert {("b-mine", "alice"), ("b-mine", "bob")} <= set(tag_rows(alice)) | set(tag_rows(bob))


def test_rename_share_untag_delete(server, people, ids):
    alice, bob = people["alice"], people["bob"]
    alice.create_tag("r-tag", "First name")
    alice.tag_objects("r-tag", [ids["example_object"], ids["mixed"][0]])
    alice.update_tag("r-tag", name="Second name", description="now described")
    row = tag_rows(alice)[("r-tag", "alice")]
    assert row["name"] == "Second name" and row["description"] == "now described" and row["kind"] == "private"
    assert ("r-tag", "alice") not in tag_rows(bob)
    alice.update_tag("r-tag", shared=True)
    assert tag_rows(bob)[("r-tag", "alice")]["member_count"] == 2
    assert alice.untag_objects("r-tag", [ids["mixed"][0]]) == 1
    assert tag_rows(bob)[("r-tag", "alice")]["member_count"] == 1
    alice.delete_tag("r-tag")
    assert ("r-tag", "alice") not in tag_rows(alice) and ("r-tag", "alice") not in tag_rows(bob)
    assert not server.sql("SELECT 1 FROM tags WHERE slug = 'r-tag'")
    with pytest.raises(NotFoundError):
        alice.delete_tag("r-tag")


def test_sync_carries_the_callers_tags_and_later_changes(server, people, ids):
    alice, bob = people["alice"], people["bob"]
    alice.create_tag("s-private", "Alice sync private")
    alice.create_tag("s-shared", "Alice sync shared", shared=True)
    alice.tag_objects("s-private", [ids["example_object"]])
    alice.tag_objects("s-shared", [ids["example_object"], ids["prop_only"][1]])
    alice.sync()
    bob.sync()
    # offline: the synced copies answer tag filters with each user's visible tags
    a, b = tag_rows(alice, remote=False), tag_rows(bob, remote=False)
    assert a[("s-private", "alice")]["kind"] == "private" and a[("s-shared", "alice")]["member_count"] == 2
    assert ("s-private", "alice") not in b and b[("s-shared", "alice")]["member_count"] == 1
    assert list(alice.query_objects(tags=["s-private"])["object_id"]) == [ids["example_object"]]
    with pytest.raises(ValidationError, match="unknown tag"):
        bob.query_objects(tags=["s-private"])
    assert "s-private" not in bob.get_object(ids["example_object"]).tags
    assert {"s-private", "s-shared"} <= set(alice.get_object(ids["example_object"]).tags)
    for cf in (alice, bob):  # member counts of the copy equal the server's view of that user
        remote, local = tag_rows(cf), tag_rows(cf, remote=False)
        assert {k: v["member_count"] for k, v in remote.items()} == {k: v["member_count"] for k, v in local.items()}
    conn = sqlite3.connect(bob.data_dir / "meta" / "campfire.db")
    try:
        assert not conn.execute("SELECT 1 FROM tags WHERE slug = 's-private'").fetchall()
    finally:
        conn.close()
    # a change on the server reaches the client at the next (incremental) sync
    alice.tag_objects("s-private", [ids["mixed"][1]])
    alice.delete_tag("s-shared")
    alice.sync()
    bob.sync()
    assert set(alice.query_objects(tags=["s-private"])["object_id"]) == {ids["example_object"], ids["mixed"][1]}
    assert ("s-shared", "alice") not in tag_rows(alice, remote=False)
    assert ("s-shared", "alice") not in tag_rows(bob, remote=False)
    with pytest.raises(ValidationError, match=r"unknown tag[\s\S]*synced copy[\s\S]*after cf\.sync\(\)"):
        bob.query_objects(tags=["s-shared"])


def test_cli_tags(server, people, make_client, capsys, ids):
    url = server.url
    make_client(url, "alice", own_credentials=False)  # the CLI reads the default credentials file
    assert cli.main(["tags", "--server", url, "create", "cli-tag", "--name", "From the CLI", "--shared"]) == 0
    assert capsys.readouterr().out.startswith("created tag alice/cli-tag (From the CLI, shared with every logged-in user)")
    assert cli.main(["tags", "--server", url, "add", "cli-tag", ids["example_object"], ids["mixed"][2]]) == 0
    assert capsys.readouterr().out.startswith("added 2 objects to tag cli-tag;")
    assert cli.main(["tags", "--server", url, "add", "cli-tag", ids["example_object"]]) == 0
    assert capsys.readouterr().out.startswith("added 0 objects to tag cli-tag (1 already had it)")
    assert cli.main(["tags", "--server", url, "remove", "cli-tag", ids["mixed"][2]]) == 0
    assert capsys.readouterr().out.startswith("removed tag cli-tag from 1 object")
    assert cli.main(["tags", "--server", url, "list"]) == 0
    out = capsys.readouterr().out
    assert "cli-tag" in out and "From the CLI" in out and "lrd" in out
    assert cli.main(["tags", "--server", url, "create", "Bad Slug"]) == 2
    assert "slug" in capsys.readouterr().err
    assert cli.main(["tags", "--server", url, "update", "cli-tag", "--name", "Renamed", "--private"]) == 0
    row = tag_rows(people["alice"])[("cli-tag", "alice")]
    assert row["name"] == "Renamed" and row["kind"] == "private"
    assert cli.main(["tags", "--server", url, "delete", "cli-tag"]) == 0
    assert ("cli-tag", "alice") not in tag_rows(people["alice"])


def test_object_flags_are_retired_in_favour_of_tags(capsys):
    list_flags("object_flags")
    assert "tags" in capsys.readouterr().out
