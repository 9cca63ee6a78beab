"""MSA shutters around an object: which ones, in which category, where on the sky.

Every observation that took a spectrum of the object contributes the shutters of its
MSA configuration: ``'target'`` (the open shutters of the object's own slitlet),
``'other'`` (other sources' open shutters) and ``'stuck_closed'`` (shutters that failed
closed). :func:`shutter_geometry` is what the server's shutter endpoint and a local
client call.
"""
from __future__ import annotations

import os
import pathlib
from typing import Any, Iterable, Mapping

import numpy as np

from campfire.errors import ImagingError, NotFoundError
from campfire.imaging.archive import imaging_store, object_row, read_json
from campfire.imaging.geometry import check_fov, check_object_id, sky_to_offsets

__all__ = ["shutter_geometry", "msa_shutters", "CATEGORIES"]

CATEGORIES = ("target", "other", "stuck_closed")


def _shutter_key(observation: str, sh: Mapping[str, Any]) -> tuple:
    return observation, sh.get("quadrant"), sh.get("row"), sh.get("column")


def msa_shutters(doc: Mapping[str, Any], object_id: str) -> tuple[list[tuple[str, dict]], str | None]:
    """(category, shutter) pairs of one observation's geometry, and the object's source ID there.

    Parameters
    ----------
    doc : dict
        One ``shutters/<observation>.json`` (``targets``, ``other_open``, ``stuck_closed``).
    object_id : str

    Returns
    -------
    (list of (str, dict), str or None)
        Each shutter once, with its category and ``source_id``; the object's own
        slitlet first.

    Examples
    --------
    >>> doc = {'observation': 'obs1', 'targets': [{'object_id': 'o', 'source_id': 7, 'shutters': [
    ...     {'quadrant': 1, 'row': 2, 'column': 3}]}], 'stuck_closed': [{'quadrant': 1, 'row': 2, 'column': 4}]}
    >>> [(cat, sh['column']) for cat, sh in msa_shutters(doc, 'o')[0]], msa_shutters(doc, 'o')[1]
    ([('target', 3), ('stuck_closed', 4)], '7')
    """
    out: list[tuple[str, dict]] = []
    seen: set[tuple] = set()
    obs = doc.get("observation", "")
    source_id = None

    def add(category: str, sh: dict, sid) -> None:
        key = _shutter_key(obs, sh)
        if key in seen and key[1:] != (None, None, None):
            return
        seen.add(key)
        if sh.get("state", "open") == "stuck_closed":
            category = "stuck_closed"
        out.append((category, dict(sh, source_id=None if sid is None else str(sid))))

    targets = doc.get("targets", [])
    for t in targets:  # the object's own slitlet first, so its shutters keep the 'target' category
        if t.get("object_id") == object_id:
            source_id = str(t.get("source_id"))
            for sh in t.get("shutters", []):
                add("target", sh, t.get("source_id"))
    for t in targets:
        if t.get("object_id") != object_id:
            for sh in t.get("shutters", []):
                add("other", sh, t.get("source_id"))
    for f in doc.get("other_open", []):
        for sh in f.get("shutters", []):
            add("other", sh, f.get("source_id"))
    for sh in doc.get("stuck_closed", []):
        add("stuck_closed", sh, None)
    return out, source_id


def shutter_geometry(root: str | os.PathLike, object_id: str, fov: float, *,
                     observations: Iterable[str] | None = None) -> dict[str, Any]:
    """MSA shutters around an object as a JSON-serialisable dict.

    Every observation that took a spectrum of the object contributes the shutters of
    its MSA configuration whose outline reaches into the ``fov`` square:
    ``'target'`` (the open shutters of the object's own slitlet), ``'other'`` (other
    sources' open shutters), ``'stuck_closed'`` (shutters that failed closed,
    including any in the object's slitlet).

    Parameters
    ----------
    root : path
        Archive root (``<field>/shutters/<observation>.json`` of its imaging: ``<root>/imaging``
        or ``archive_meta.imaging_url``).
    object_id : str
        The object.
    fov : float
        Side of the square [arcsec], 0 < fov ≤ 60.
    observations : iterable of str, optional
        Only these observations (the server passes the ones the caller may see).

    Returns
    -------
    dict
        ``object_id``, ``ra``, ``dec`` [deg], ``fov`` [arcsec], ``pa`` [deg] (of the
        first observation), ``observations`` (``observation``, ``pa``, ``source_id``),
        ``categories``, and ``shutters``: a list of ``{category, observation,
        source_id, role, quadrant, row, column, corners, corners_radec, center}``
        where ``corners`` are the four corners of the open area as (east, north)
        offsets [arcsec] from the object, ``corners_radec`` the same corners in
        degrees and ``center`` the centre offset.

    Examples
    --------
    >>> geo = shutter_geometry(campfire.demo.ensure(), 'ember_uds_p4_123456', 3.2)  # doctest: +SKIP
    >>> sorted({s['category'] for s in geo['shutters']})  # doctest: +SKIP
    ['other', 'stuck_closed', 'target']
    """
    object_id = check_object_id(object_id)
    fov = check_fov(fov)
    root = pathlib.Path(root)
    row = object_row(root, object_id)
    ra, dec = float(row["ra"]), float(row["dec"])
    wanted = sorted({spec.get("observation") for spec in row["_spectra"] if spec.get("observation")})
    if observations is not None:
        allowed = {str(o).lower() for o in observations}
        wanted = [o for o in wanted if o.lower() in allowed]
    store, field = imaging_store(root), str(row["field"])
    found, shutters = [], []
    reach = fov / 2
    for obs in wanted:
        try:
            doc = read_json(store, field, "shutters", f"{obs}.json")
        except NotFoundError:
            continue  # an observation without MSA geometry
        try:
            pairs, source_id = msa_shutters(doc, object_id)
            found.append({"observation": obs, "pa": doc.get("pa_aper"), "source_id": source_id})
            for category, sh in pairs:
                corners = np.asarray(sh["corners"], dtype=float)
                east, north = sky_to_offsets(corners[:, 0], corners[:, 1], ra, dec)
                if east.max() < -reach or east.min() > reach or north.max() < -reach or north.min() > reach:
                    continue
                shutters.append(
                    {
                        "category": category,
                        "observation": obs,
                        "source_id": sh.get("source_id"),
                        "role": sh.get("role"),
                        "quadrant": sh.get("quadrant"),
                        "row": sh.get("row"),
                        "column": sh.get("column"),
                        "corners": [[round(float(e), 5), round(float(n), 5)] for e, n in zip(east, north)],
                        "corners_radec": [[float(a), float(d)] for a, d in corners],
                        "center": [round(float(east.mean()), 5), round(float(north.mean()), 5)],
                    }
                )
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise ImagingError(f"{store.location(field, 'shutters', obs + '.json')}: not an MSA shutters document "
                               f"({type(err).__name__}: {err})") from err
    observations = found
    order = {c: i for i, c in enumerate(CATEGORIES)}
    shutters.sort(key=lambda s: (order[s["category"]], s["observation"], s["center"][1], s["center"][0]))
    return {
        "object_id": object_id,
        "ra": ra,
        "dec": dec,
        "fov": fov,
        "pa": observations[0]["pa"] if observations else None,
        "observations": observations,
        "categories": list(CATEGORIES),
        "units": {"corners": "arcsec offsets (east, north) from the object", "corners_radec": "deg"},
        "shutters": shutters,
    }
