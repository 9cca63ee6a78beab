"""The object page (``/objects/{object_id}``) and the data its plots draw.

The page itself (rendered on the server) holds what is read rather than plotted: the
object's numbers, spectra, photometry, programs and tags. Its script then fetches
``/objects/{object_id}/view.json`` (:func:`campfire.server.portal.view.object_view`), the
cutout and the MSA shutters, and draws the plots. The page's query string is the
catalog selection it was opened from; ``n`` / ``p`` walk that selection.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from campfire.errors import ValidationError
from campfire.flags import decode_flags
from campfire.server.archive import Archive
from campfire.server.deps import get_archive
from campfire.server.encoding import finite
from campfire.server.inspections import QUEUE_MODES
from campfire.server.portal.catalog import visible_tags
from campfire.server.portal.render import QUALITY_LABELS, Viewer, render, viewer
from campfire.server.portal.selection import selection_from_items
from campfire.server.portal.view import line_list, object_view
from campfire.server.records import object_or_404

__all__ = ["router", "object_tags"]

router = APIRouter()


def object_tags(v: Viewer, object_id: str) -> list[dict]:
    """The tags of one object that ``v`` may see: slug, name, kind, owner (a tag is owner + slug)."""
    pred, params = v.caller.visibility.tag_predicate("t")
    rows = v.catalog.conn.execute(
        f"SELECT t.slug, t.name, t.kind, coalesce(t.owner, '') FROM object_tags ot JOIN tags t ON t.tag_id = ot.tag_id "
        f"WHERE ot.object_id = ? AND {pred} ORDER BY t.kind != 'system', t.owner, t.slug", [object_id] + params,
    ).fetchall()
    return [{"slug": s, "name": n, "kind": k, "owner": o} for s, n, k, o in rows]


@router.get("/objects/{object_id}")
def object_page(object_id: str, request: Request, v: Viewer = Depends(viewer)):
    items = request.query_params.multi_items()
    queue_mode = next((v for k, v in items if k == "queue"), "ungraded")
    if queue_mode not in QUEUE_MODES:
        raise ValidationError(f"queue: expected one of {', '.join(QUEUE_MODES)}, got {queue_mode!r}")
    sel = selection_from_items([(k, v) for k, v in items if k != "queue"])
    obj = object_or_404(v.caller, object_id)
    spectra = v.catalog.object_spectra(object_id)
    for s in spectra:
        s["dq_names"] = decode_flags(int(s["dq_flags"] or 0))
    phot = v.catalog.object_photometry(object_id)
    tags = object_tags(v, object_id)
    own_tags = [t for t in visible_tags(v) if v.user and t["owner"] == v.user and t["kind"] != "system"]
    selection = sel.query_string(page=None, per_page=None)
    return render(
        request, v, "object.html", obj=obj, spectra=spectra, phot=phot, tags=tags, own_tags=own_tags,
        selection=selection,
        page_data={
            "object_id": object_id, "user": v.user, "selection": selection, "queue_mode": queue_mode,
            "view_url": f"/objects/{object_id}/view.json",
            "cutout_url": f"/api/v1/objects/{object_id}/cutout.png?fov=4",
            "shutters_url": f"/api/v1/objects/{object_id}/shutters?fov=4",
            # missing values are NaN in catalog rows: null in JSON
            **{k: finite(obj[k]) for k in ("redshift", "redshift_auto", "redshift_inspected", "redshift_quality")},
            "qualities": {str(k): n for k, n in QUALITY_LABELS.items()},
            "lines": line_list(), "own_tags": [t["slug"] for t in own_tags],
        },
    )


@router.get("/objects/{object_id}/view.json")
def object_data(object_id: str, v: Viewer = Depends(viewer), archive: Archive = Depends(get_archive)):
    return Response(object_view(archive, v.caller, object_id), media_type="application/json",
                    headers={"Cache-Control": "private, no-cache"})
