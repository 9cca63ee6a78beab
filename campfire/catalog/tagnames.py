"""How a caller names a tag: in filters, in ``Object.tags``, in error messages.

Slugs are unique per owner, not across owners: alice and bob may each share a tag
``cands``. A tag name is therefore read from the caller's point of view:

* ``slug`` — the **system** tag ``slug`` if there is one, else the caller's **own** tag
  ``slug``. Another user's tag is never named by its bare slug.
* ``owner/slug`` — user ``owner``'s tag ``slug``: another user's shared tag, or your
  own (``alice/cands`` is the same tag as ``cands`` for alice).

Collisions with system tags: a user cannot create a tag with a system tag's slug (409).
Should the archive add a system tag whose slug a user already has, the bare slug names
the system tag from then on, and the user's own tag is ``<user>/slug``.

``Object.tags`` lists names in this form too, so a name read there can be passed back
as a filter. Who "the caller" is: the server's logged-in user; on a synced copy, the
user it was synced as (``archive_meta.sync_user``); nobody on a pipeline's archive root
(there, user tags are named ``owner/slug`` only).

Examples
--------
>>> split_name('bob/cands'), split_name('lrd')
(('bob', 'cands'), (None, 'lrd'))
>>> match_predicate(['cands'], 't', 'alice')[1]
['cands', 'alice']
"""
from __future__ import annotations

from typing import Iterable

__all__ = ["split_name", "display_expr", "match_predicate"]


def split_name(name: str) -> tuple[str | None, str]:
    """``'owner/slug'`` → (owner, slug); ``'slug'`` → (None, slug)."""
    owner, sep, slug = name.rpartition("/")
    return (owner if sep else None), slug


def _system_has(alias: str) -> str:
    return f"EXISTS (SELECT 1 FROM tags sys WHERE sys.slug = {alias}.slug AND sys.kind = 'system')"


def display_expr(alias: str, viewer: str | None) -> tuple[str, list]:
    """SQL (and parameters) of the name of tag ``alias`` as ``viewer`` writes it."""
    return (f"CASE WHEN {alias}.kind = 'system' THEN {alias}.slug "
            f"WHEN {alias}.owner = ? AND NOT {_system_has(alias)} THEN {alias}.slug "
            f"ELSE {alias}.owner || '/' || {alias}.slug END", [viewer or ""])


def match_predicate(names: Iterable[str], alias: str, viewer: str | None) -> tuple[str, list]:
    """SQL (and parameters) keeping the rows of ``tags`` (as ``alias``) that ``names`` name for ``viewer``.

    Visibility is not checked here: callers AND it with the caller's tag predicate.
    """
    terms, params = [], []
    for name in names:
        owner, slug = split_name(name)
        if owner is not None:
            terms.append(f"({alias}.slug = ? AND {alias}.owner = ? AND {alias}.kind != 'system')")
            params += [slug, owner]
        else:
            terms.append(f"({alias}.slug = ? AND ({alias}.kind = 'system' OR ({alias}.owner = ? "
                         f"AND NOT {_system_has(alias)})))")
            params += [slug, viewer or ""]
    return "(" + " OR ".join(terms or ["0"]) + ")", params
