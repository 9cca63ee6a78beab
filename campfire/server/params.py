"""Reading a request: query strings, IDs, numbers and bodies, with 400s that name the parameter.

The filter vocabulary itself is parsed by :func:`campfire.catalog.filters.query_from_params`
(the same definition the client sends with :meth:`Query.to_params`); the helpers here
cover what the routes read besides it.

Examples
--------
>>> float_param({'fov': '3'}, 'fov', 5.0, 0.01, 60.0)
3.0
"""
from __future__ import annotations

import json
import math
import re
import urllib.parse

from starlette.exceptions import HTTPException
from starlette.requests import Request

from campfire import config
from campfire.catalog.filters import FILTER_NAMES, PAGING_NAMES
from campfire.errors import ValidationError

__all__ = ["ID_RE", "MAX_FORM_BYTES", "query_params", "check_id", "float_param", "no_extra", "only",
           "parse_json", "read_json", "read_form", "filter_doc", "too_large_message"]

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")
MAX_FORM_BYTES = 16384  # an OAuth2 form is a few hundred bytes


def query_params(request) -> dict[str, str]:
    """Query parameters with repeated keys comma-joined (``?fields=a&fields=b``)."""
    out: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        out[key] = f"{out[key]},{value}" if key in out else value
    return out


def check_id(name: str, value: str) -> str:
    """``value`` if it is a well-formed object/spectrum ID, else a ValidationError naming ``name``."""
    if not ID_RE.match(value or ""):
        raise ValidationError(f"{name}: expected an ID of letters, digits, '_', '.' or '-', got {value!r}")
    return value


def float_param(params: dict, name: str, default: float | None, lo: float, hi: float) -> float | None:
    """Pop ``name`` from ``params`` as a number in [lo, hi] (``default`` when absent)."""
    raw = params.pop(name, None)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError(f"{name}: expected a number, got {raw!r}") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ValidationError(f"{name}: expected a number in [{lo:g}, {hi:g}], got {raw!r}")
    return value


def no_extra(params: dict) -> None:
    """A ValidationError naming any parameter left over (unknown to the route)."""
    if params:
        raise ValidationError(f"unknown parameter{'s' if len(params) > 1 else ''} {', '.join(sorted(params))}")


def only(body, allowed: tuple[str, ...]) -> None:
    """A JSON object body with no field besides ``allowed``."""
    if not isinstance(body, dict):
        raise ValidationError("expected a JSON object body")
    extra = sorted(set(body) - set(allowed))
    if extra:
        raise ValidationError(f"unknown field{'s' if len(extra) > 1 else ''} {', '.join(extra)}; "
                              f"allowed: {', '.join(allowed)}")


def too_large_message(limit: int) -> str:
    """The message of a 413."""
    return f"request body too large: at most {limit:,} bytes"


def parse_json(body: bytes):
    """A JSON request body; a ValidationError (400) for malformed or absurdly nested JSON."""
    try:
        return json.loads(body)
    except RecursionError:  # thousands of nested brackets: Python's parser gives up, not our server
        raise ValidationError("body: JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("body: malformed JSON") from None


async def read_json(request: Request):
    """A route's JSON body, read only when the route asks for it (after authentication).

    Routes take it as ``body: dict = Depends(read_json)`` declared *after* their caller
    dependency, so an anonymous request is answered 401 before a byte of its body is
    read; the size limit is the :class:`~campfire.server.limits.BodyLimit` middleware's.
    """
    return parse_json(await request.body())


async def read_form(request: Request) -> dict[str, str]:
    """An OAuth2 form body (x-www-form-urlencoded, or JSON) without python-multipart."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:  # (the BodyLimit middleware refuses it earlier on the API's token routes)
        raise HTTPException(413, too_large_message(MAX_FORM_BYTES))
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        data = parse_json(body or b"{}")
        if not isinstance(data, dict):
            raise ValidationError("body: expected a JSON object")
        # form fields are strings: a number or a list where a token belongs is a bad request,
        # not something to stringify and look up
        bad = sorted(str(k) for k, v in data.items() if v is not None and not isinstance(v, str))
        if bad:
            raise ValidationError(f"body: {', '.join(bad)}: expected a string")
        return {str(k): v for k, v in data.items() if v is not None}
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise ValidationError("body: expected UTF-8 form data") from None
    return dict(pairs)


def filter_doc() -> list[dict]:
    """OpenAPI parameter docs of the filter vocabulary (parsed by query_from_params, not FastAPI)."""
    docs = {
        "fields": "comma-separated fields, e.g. cosmos,uds",
        "programs": "comma-separated program slugs or JWST proposal ids",
        "gratings": "comma-separated gratings, e.g. PRISM,G395M",
        "observations": "comma-separated observation names",
        "redshift_range": "min,max",
        "redshift_quality": "comma-separated 0-4 or names (not_inspected, impossible, tentative, probable, secure)",
        "max_snr_range": "min,max (objects: best S/N; spectra: the spectrum's S/N)",
        "dq_flags": "flag expression, e.g. ~CONTAMINATION&~LOW_SNR, or an int",
        "tags": "comma-separated tags: system tags and your own by slug, another user's shared tag as owner/slug",
        "inspected_only": "true|false",
        "staleness": "not supported by the server (it cannot know your local files)",
        "has_photometry": "true|false",
        "search": "text search on IDs",
        "cone_search": "ra,dec,radius_arcsec",
        "limit": f"rows per page (default {config.get('api.page-size')}, at most {config.get('api.max-limit')})",
        "offset": "rows to skip",
        "sort": "sort column (whitelisted)",
        "sort_dir": "asc|desc",
        "count": "true|false: include the total row count (default true)",
    }
    return [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": docs[name]}
        for name in FILTER_NAMES + PAGING_NAMES + ("count",)
    ]
