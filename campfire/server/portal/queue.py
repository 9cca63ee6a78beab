"""The reviewer's queue page (``/queue``): a selection's objects to grade, and its conflicts.

The selection is the catalog page's (same query string). Grading starts at the first
object; on the object pages ``n`` / ``p`` walk the same queue
(``/api/v1/inspections/queue``), which the server computes for the caller: objects they
may inspect and have not graded, or those whose reviewers disagree.
"""
from __future__ import annotations

import dataclasses
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request

from campfire.server import inspections as review
from campfire.server.archive import Archive
from campfire.server.deps import get_archive
from campfire.server.portal.render import Viewer, render, viewer
from campfire.server.portal.selection import selection_from_items

__all__ = ["router"]

router = APIRouter()

SHOWN = 50  # objects listed per queue


@router.get("/queue")
def queue_page(request: Request, v: Viewer = Depends(viewer), archive: Archive = Depends(get_archive)):
    sel = selection_from_items(request.query_params.multi_items())
    selection = sel.query_string(page=None, per_page=None)
    queues = []
    if v.user:
        q = dataclasses.replace(sel.query, limit=SHOWN, offset=0)
        for mode, title in (("ungraded", "Not graded by you"), ("conflicts", "Reviewers disagree")):
            result = review.queue(archive, v.caller, q, mode)
            suffix = "&".join(p for p in (selection, "queue=conflicts" if mode == "conflicts" else "") if p)
            queues.append({"mode": mode, "title": title, "total": result["total"], "ids": result["object_ids"],
                           "suffix": f"?{suffix}" if suffix else ""})
    return render(request, v, "queue.html", queues=queues, selection=selection, quote=quote,
                  filters=sel.filter_params())
