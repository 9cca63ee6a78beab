"""The tags page (``/tags``): the viewer's own tags to edit, the shared and system tags to use.

A tag is identified by its owner and slug (``owner/slug``; system tags have no owner).
The page lists; its script creates, renames, describes, shares/unshares and deletes the
viewer's tags through ``/api/v1/tags`` (cookie session + CSRF token), where every
change is checked again.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from campfire.catalog.columns import TAG_COLUMNS
from campfire.server.encoding import table_json
from campfire.server.portal.render import Viewer, render, viewer

__all__ = ["router"]

router = APIRouter()


@router.get("/tags")
def tags_page(request: Request, v: Viewer = Depends(viewer)):
    table = table_json(v.catalog.tags())
    tags = [dict(zip([c[0] for c in TAG_COLUMNS], row)) for row in table["rows"]]
    own = [t for t in tags if v.user and t["owner"] == v.user and t["kind"] != "system"]
    others = [t for t in tags if t not in own]
    return render(request, v, "tags.html", own=own, others=others, page_data={"user": v.user})
