"""Tags: listing the visible ones, and creating, editing and filling your own.

Routes with a body take it as ``Depends(read_json)`` after the caller: who is asking is
settled (401 for anonymous) before a byte of the body is read.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends

from campfire.catalog.columns import TAG_COLUMNS
from campfire.errors import NotFoundError, ValidationError
from campfire.server import tags as tagops
from campfire.server.archive import Archive, Caller
from campfire.server.deps import caller, get_archive, user_caller
from campfire.server.encoding import json_response, table_json
from campfire.server.params import check_id, only, read_json

__all__ = ["router"]

router = APIRouter(tags=["tags"])

_TAG_NAMES = tuple(c[0] for c in TAG_COLUMNS)


def _tag_json(c: Caller, slug: str, owner: str | None) -> dict:
    for row in table_json(c.catalog.tags())["rows"]:
        item = dict(zip(_TAG_NAMES, row))
        if item["slug"] == slug and (item["owner"] or None) == owner:
            return item
    raise NotFoundError(f"no tag {slug!r}")


def _visible_object(c: Caller, object_id: str) -> bool:
    row = c.catalog.conn.execute(
        "SELECT 1 FROM object_aggregates WHERE visibility = ? AND object_id = ?", (c.visibility.key, object_id)
    ).fetchone()
    return row is not None


@router.get("/tags", summary="Visible tags: slug, name, member_count, kind, owner, description")
def list_tags(c: Caller = Depends(caller)):
    return json_response(table_json(c.catalog.tags()))


@router.post("/tags", status_code=201, summary="Create a private or shared tag")
def create_tag(c: Caller = Depends(user_caller), archive: Archive = Depends(get_archive),
               body=Depends(read_json)):
    only(body, ("slug", "name", "description", "shared"))
    archive.write(lambda conn: tagops.create(conn, c.user, body.get("slug"), body.get("name"),
                                             body.get("description"), body.get("shared", False)))
    return json_response(_tag_json(c, body["slug"], c.user), status=201)


@router.patch("/tags/{slug}", summary="Rename, describe, share or unshare your tag")
def update_tag(slug: str, c: Caller = Depends(user_caller), archive: Archive = Depends(get_archive),
               body=Depends(read_json)):
    only(body, ("name", "description", "shared"))

    def op(conn):
        row = tagops.find_own(conn, c.user, slug, c.visibility.tag_predicate("t"))
        tagops.update(conn, row[0], name=body.get("name"), description=body.get("description"),
                      shared=body.get("shared"))
    archive.write(op)
    return json_response(_tag_json(c, slug, c.user))


@router.delete("/tags/{slug}", summary="Delete your tag")
def delete_tag(slug: str, c: Caller = Depends(user_caller), archive: Archive = Depends(get_archive)):
    def op(conn):
        row = tagops.find_own(conn, c.user, slug, c.visibility.tag_predicate("t"))
        tagops.delete(conn, row[0])
    archive.write(op)
    return json_response({"deleted": slug})


def _members(slug: str, c: Caller, archive: Archive, body: dict, add: bool):
    only(body, ("object_ids",))
    ids = tagops.check_object_ids(body.get("object_ids"))
    for oid in ids:
        check_id("object_ids", oid)
    # every object must be visible to the caller; otherwise nothing changes
    missing = [oid for oid in ids if not _visible_object(c, oid)]
    if missing:
        shown = ", ".join(map(repr, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise ValidationError(f"object_ids: unknown object{'s' if len(missing) > 1 else ''} {shown}; nothing changed")

    def op(conn):
        row = tagops.find_own(conn, c.user, slug, c.visibility.tag_predicate("t"))
        fn = tagops.add_members if add else tagops.remove_members
        return fn(conn, row[0], ids)
    changed = archive.write(op)
    item = _tag_json(c, slug, c.user)
    return json_response({"slug": slug, "added" if add else "removed": changed, "member_count": item["member_count"]})


@router.post("/tags/{slug}/objects", summary="Add objects to your tag")
def tag_objects(slug: str, c: Caller = Depends(user_caller), archive: Archive = Depends(get_archive),
                body=Depends(read_json)):
    return _members(slug, c, archive, body, add=True)


@router.delete("/tags/{slug}/objects", summary="Remove objects from your tag")
def untag_objects(slug: str, c: Caller = Depends(user_caller), archive: Archive = Depends(get_archive),
                  body=Depends(read_json)):
    return _members(slug, c, archive, body, add=False)
