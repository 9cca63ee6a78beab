"""User tags on the server: create, rename, delete, add and remove members (issue 9).

Rules: slugs are lower-case letters, digits and single hyphens; a slug is unique per
owner; system slugs are reserved; only a tag's owner changes it; members must be
objects the owner can see. Every change happens in one transaction, so a rejected
request changes nothing.
"""
from __future__ import annotations

import datetime as _dt
import re
import sqlite3
from typing import Iterable

from campfire.errors import NotFoundError, ValidationError

__all__ = ["SLUG_RE", "TagError", "check_slug", "create", "update", "delete", "find_own", "add_members", "remove_members"]

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_SLUG = 64
MAX_NAME = 200
MAX_DESCRIPTION = 2000
MAX_MEMBERS_PER_REQUEST = 10_000


class TagError(Exception):
    """A refused tag operation with its HTTP status (403 not the owner, 409 conflict)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def check_slug(slug) -> str:
    if not isinstance(slug, str) or not 0 < len(slug) <= MAX_SLUG or not SLUG_RE.match(slug):
        raise ValidationError(
            f"slug: expected lower-case letters, digits and hyphens (e.g. 'my-lrds', at most {MAX_SLUG} "
            f"characters), got {slug!r}"
        )
    return slug


def _check_text(name: str, value, limit: int, required: bool) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit:
        raise ValidationError(f"{name}: expected {'a non-empty' if required else 'a'} string of at most {limit} characters")
    return value.strip()


def find_own(conn: sqlite3.Connection, owner: str, slug: str, visible_pred: tuple[str, list]) -> tuple:
    """The caller's own tag ``slug`` as (tag_id, slug, name, description, kind, owner).

    A visible tag of someone else (or a system tag) with that slug is a 403; nothing
    visible is a 404, so another user's private tag stays invisible.
    """
    check_slug(slug)
    row = conn.execute(
        "SELECT tag_id, slug, name, description, kind, owner FROM tags WHERE slug = ? AND owner = ? AND kind != 'system'",
        (slug, owner),
    ).fetchone()
    if row is not None:
        return row
    pred, params = visible_pred
    other = conn.execute(
        f"SELECT kind, owner FROM tags t WHERE t.slug = ? AND {pred} ORDER BY t.kind = 'system' DESC LIMIT 1",
        [slug] + params,
    ).fetchone()
    if other is not None:
        if other[0] == "system":
            raise TagError(403, f"tag {slug!r} is a system tag; system tags are read-only")
        raise TagError(403, f"tag {slug!r} belongs to {other[1]}; only its owner can change it")
    raise NotFoundError(f"no tag {slug!r} of yours (create it with cf.create_tag({slug!r}, name))")


def create(conn: sqlite3.Connection, owner: str, slug, name, description=None, shared: bool = False) -> int:
    check_slug(slug)
    name = _check_text("name", name, MAX_NAME, True)
    description = _check_text("description", description, MAX_DESCRIPTION, False)
    if not isinstance(shared, bool):
        raise ValidationError(f"shared: expected true or false, got {shared!r}")
    if conn.execute("SELECT 1 FROM tags WHERE slug = ? AND kind = 'system'", (slug,)).fetchone():
        raise TagError(409, f"slug {slug!r} is reserved for a system tag; choose another slug")
    if conn.execute("SELECT 1 FROM tags WHERE slug = ? AND owner = ?", (slug, owner)).fetchone():
        raise TagError(409, f"you already have a tag {slug!r}")
    cur = conn.execute(
        "INSERT INTO tags (slug, name, description, kind, owner, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        (slug, name, description, "shared" if shared else "private", owner, _now()),
    )
    return int(cur.lastrowid)


def update(conn: sqlite3.Connection, tag_id: int, *, name=None, description=None, shared=None) -> None:
    sets, params = [], []
    if name is not None:
        sets.append("name = ?")
        params.append(_check_text("name", name, MAX_NAME, True))
    if description is not None:
        sets.append("description = ?")
        params.append(_check_text("description", description, MAX_DESCRIPTION, False))
    if shared is not None:
        if not isinstance(shared, bool):
            raise ValidationError(f"shared: expected true or false, got {shared!r}")
        sets.append("kind = ?")
        params.append("shared" if shared else "private")
    if not sets:
        raise ValidationError("nothing to change: pass name, description or shared")
    sets.append("updated_at = ?")
    params.append(_now())
    conn.execute(f"UPDATE tags SET {', '.join(sets)} WHERE tag_id = ?", params + [tag_id])


def delete(conn: sqlite3.Connection, tag_id: int) -> None:
    conn.execute("DELETE FROM object_tags WHERE tag_id = ?", (tag_id,))
    conn.execute("DELETE FROM tags WHERE tag_id = ?", (tag_id,))


def check_object_ids(object_ids) -> list[str]:
    if isinstance(object_ids, str) or not isinstance(object_ids, (list, tuple)):
        raise ValidationError("object_ids: expected a list of object IDs")
    if not object_ids:
        raise ValidationError("object_ids: empty list")
    if len(object_ids) > MAX_MEMBERS_PER_REQUEST:
        raise ValidationError(f"object_ids: at most {MAX_MEMBERS_PER_REQUEST} per request")
    for oid in object_ids:
        if not isinstance(oid, str) or not 0 < len(oid) <= 200:
            raise ValidationError(f"object_ids: expected ID strings, got {oid!r}")
    return list(dict.fromkeys(object_ids))


def add_members(conn: sqlite3.Connection, tag_id: int, object_ids: Iterable[str]) -> int:
    before = conn.total_changes
    conn.executemany("INSERT OR IGNORE INTO object_tags (tag_id, object_id) VALUES (?, ?)",
                     [(tag_id, oid) for oid in object_ids])
    conn.execute("UPDATE tags SET updated_at = ? WHERE tag_id = ?", (_now(), tag_id))
    return conn.total_changes - before - 1


def remove_members(conn: sqlite3.Connection, tag_id: int, object_ids: Iterable[str]) -> int:
    before = conn.total_changes
    conn.executemany("DELETE FROM object_tags WHERE tag_id = ? AND object_id = ?", [(tag_id, oid) for oid in object_ids])
    conn.execute("UPDATE tags SET updated_at = ? WHERE tag_id = ?", (_now(), tag_id))
    return conn.total_changes - before - 1
