"""Request parameters and bodies of the API, built from Python values (pure: no network).

The first of the client's three stages (astroquery's ``_args_to_payload``): what a
:class:`~campfire.catalog.filters.Query`, a login or a tag edit becomes on the wire.

Examples
--------
>>> from campfire.catalog.filters import build_query
>>> query_payload(build_query('objects', fields=['uds']), limit=10, count=False)
{'fields': 'uds', 'sort': 'object_id', 'sort_dir': 'asc', 'limit': '10', 'count': 'false'}
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

import numpy as np

from campfire.catalog.filters import Query
from campfire.errors import ValidationError

__all__ = ["query_payload", "password_grant", "refresh_grant", "tag_payload", "object_ids_payload", "path_id",
           "inspection_payload"]


def query_payload(q: Query, *, limit: int | None = None, offset: int | None = None, count: bool = True) -> dict:
    """Query-string parameters of ``/objects`` or ``/spectra`` for one page of ``q``."""
    params = q.to_params()
    if limit is not None:
        params["limit"] = str(limit)
    if offset is not None:
        if offset:
            params["offset"] = str(offset)
        else:
            params.pop("offset", None)
    if not count:
        params["count"] = "false"
    return params


def password_grant(username: str, password: str) -> dict:
    """The OAuth2 password grant form."""
    if not isinstance(username, str) or not username.strip():
        raise ValidationError("username: expected a non-empty string")
    if not isinstance(password, str) or not password:
        raise ValidationError("password: expected a non-empty string")
    return {"grant_type": "password", "username": username.strip(), "password": password}


def refresh_grant(refresh_token: str) -> dict:
    """The OAuth2 refresh_token grant form."""
    return {"grant_type": "refresh_token", "refresh_token": refresh_token}


def tag_payload(slug: str, name: str | None = None, *, shared: bool | None = None,
                description: str | None = None) -> dict:
    """The JSON body of a tag creation or edit (absent values are not sent)."""
    if not isinstance(slug, str):
        raise ValidationError(f"slug: expected a string, got {slug!r}")
    body: dict[str, Any] = {"slug": slug}
    if name is not None:
        body["name"] = name
    if shared is not None:
        if not isinstance(shared, bool):
            raise ValidationError(f"shared: expected True or False, got {shared!r}")
        body["shared"] = shared
    if description is not None:
        body["description"] = description
    return body


def object_ids_payload(object_ids) -> list[str]:
    """A non-empty list of object ID strings (one ID, a list, or an array column)."""
    if isinstance(object_ids, str):
        object_ids = [object_ids]
    try:
        ids = [str(o) if isinstance(o, np.str_) else o for o in object_ids]
    except TypeError:
        raise ValidationError(f"object_ids: expected a list of object IDs, got {object_ids!r}") from None
    for oid in ids:
        if not isinstance(oid, str) or not oid:
            raise ValidationError(f"object_ids: expected ID strings, got {oid!r}")
    if not ids:
        raise ValidationError("object_ids: empty list")
    return ids


def inspection_payload(*, quality, redshift=None, comment: str = "", issues=None,
                       resolves_conflict: bool = False) -> dict:
    """The JSON body of ``POST /objects/{id}/inspections`` (numpy scalars as plain values; the server checks them).

    Examples
    --------
    >>> inspection_payload(quality='secure', redshift=np.float64(3.42), issues='CONTAMINATED')
    {'quality': 'secure', 'redshift': 3.42, 'comment': '', 'issues': ['CONTAMINATED'], 'resolves_conflict': False}
    """
    if quality is None:
        raise ValidationError("quality: required (0-4 or not_inspected, impossible, tentative, probable, secure)")
    if isinstance(issues, str):
        issues = [issues]
    return {
        "quality": quality.item() if isinstance(quality, np.generic) else quality,
        "redshift": redshift.item() if isinstance(redshift, np.generic) else redshift,
        "comment": comment,
        "issues": [] if issues is None else list(issues),
        "resolves_conflict": resolves_conflict,
    }


def path_id(name: str, value: str) -> str:
    """An ID as one URL path segment (quoted); ValidationError naming ``name`` if it is not an ID string."""
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{name}: expected an ID string, got {value!r}")
    return quote(value, safe="")
