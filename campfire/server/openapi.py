"""What the HTTP API really answers, written into its OpenAPI document.

The endpoints build their JSON by hand (rows straight from SQLite, arrays with NaN →
null), so FastAPI cannot infer their response schemas, and its default ``422`` is
never sent (every bad request is a ``400`` with ``{"error", "message"}``). This
module describes each operation — its success bodies, the error statuses it may
answer with, the parameters parsed from the raw query string (the filter
vocabulary, ``fov``, ``since``, ``Range``) and the request bodies — and
:func:`install` merges that into the generated document. Clients, generated SDKs and
the schema-driven fuzz tests (tests/stress) then check real responses against it.

Every operation of the app must have an entry in :data:`OPERATIONS`:
:func:`document` raises for an undocumented one, so a new endpoint cannot ship
without saying what it returns.

Examples
--------
>>> from campfire.server.openapi import install
>>> install(app)  # doctest: +SKIP
"""
from __future__ import annotations

import copy
from typing import Any

from campfire.catalog.columns import OBJECT_COLUMNS, SPECTRUM_COLUMNS
from campfire.catalog.consensus import STATES
from campfire.catalog.filters import QUALITY_NAMES
from campfire.catalog.inspections import ISSUE_FLAGS, MAX_COMMENT, MAX_REDSHIFT
from campfire.server.inspections import MAX_REFIT_HALF_WIDTH, QUEUE_MODES
from campfire.server.tags import MAX_SLUG, SLUG_RE

__all__ = ["OPERATIONS", "document", "install", "SECURITY_SCHEME"]

SECURITY_SCHEME = "OAuth2PasswordBearer"

# ------------------------------------------------------------------------------ schemas
_JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}


def _nullable(kind: str) -> dict:
    return {"type": [kind, "null"]}


def _cell(dtype: str) -> dict:
    """A value of a catalog column as sent in list rows (SQLite booleans are 0/1)."""
    if dtype == "bool":
        return {"type": ["boolean", "integer", "null"]}
    if dtype == "float":
        return {"type": ["number", "null"]}
    return _nullable(_JSON_TYPES[dtype])


def _row_object(columns) -> dict:
    return {"type": "object", "required": [c[0] for c in columns],
            "properties": {name: _cell(dtype) for name, _, dtype in columns}}


_SCALAR = {"type": ["string", "number", "boolean", "null"]}


def _row_array(columns) -> dict:
    # one value per column, in the order of "columns" (the per-column types are those of the
    # row objects; tuple schemas — prefixItems — are not understood by every OpenAPI tool)
    n = len(columns)
    return {"type": "array", "minItems": n, "maxItems": n, "items": _SCALAR}


def _obj(required: dict[str, dict], optional: dict[str, dict] | None = None) -> dict:
    return {"type": "object", "required": sorted(required), "properties": {**required, **(optional or {})}}


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
NUMBER_OR_NULL = {"type": ["number", "null"]}
STRINGS = {"type": "array", "items": STRING}
NUMBERS = {"type": "array", "items": NUMBER_OR_NULL}

ERROR = _obj({"error": STRING, "message": STRING})
# RFC 6749 section 5.2: "error" is required, "error_description" optional (a malformed body gets ERROR's shape)
OAUTH_ERROR = _obj({"error": STRING, "message": STRING}, {"error_description": STRING})
TABLE = _obj({"columns": STRINGS, "rows": {"type": "array", "items": {"type": "array"}}})
OBJECT_ROW = _row_object(OBJECT_COLUMNS)
SPECTRUM_ROW = _row_object(SPECTRUM_COLUMNS)
TAG = _obj({"slug": STRING, "name": STRING, "member_count": INTEGER, "kind": STRING, "owner": STRING,
            "description": STRING})
PHOTOMETRY = _obj({"catalog": STRING, "photo_z": NUMBER_OR_NULL, "photo_z_err_lo": NUMBER_OR_NULL,
                   "photo_z_err_hi": NUMBER_OR_NULL,
                   "bands": {"type": "array", "items": {"type": "array", "minItems": 4, "maxItems": 4,
                                                        "items": _SCALAR}}})  # band, flux, error, wavelength


def _page(columns) -> dict:
    return _obj({"kind": {"enum": ["objects", "spectra"]}, "total": _nullable("integer"), "limit": INTEGER,
                 "offset": INTEGER, "columns": {"type": "array", "items": STRING, "const": [c[0] for c in columns]},
                 "rows": {"type": "array", "items": _row_array(columns)}})


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _binary(media_type: str, description: str, headers: dict | None = None, also: tuple[str, ...] = ()) -> dict:
    binary = {"schema": {"type": "string", "format": "binary"}}
    out = {"description": description, "content": {m: dict(binary) for m in (media_type, *also)}}
    if headers:
        out["headers"] = headers
    return out


def _error(description: str, schema: dict = ERROR) -> dict:
    return _json(schema, description)


_ERRORS = {
    400: "invalid request: an unknown parameter or value, a bad range, a malformed body (JSON error with a message)",
    401: "invalid, expired or malformed access token; log in again (campfire login)",
    403: "not the owner of this tag",
    404: "no such object, spectrum, file or data — or not visible to you",
    409: "the tag slug is taken or reserved",
    413: "request body too large (campfire.server.max-body-bytes; 16 KiB on the token endpoints)",
    416: "Range outside the file",
    429: "too many failed logins; retry after Retry-After seconds",
    502: "imaging_unavailable: the archive's imaging cannot be read (a corrupt index or image, an unreachable "
         "object store); the message names the file",
    503: "busy (renders or password checks at their limit); retry after Retry-After seconds",
}
_RETRY_AFTER = {"Retry-After": {"schema": INTEGER}}


def _errors(*codes: int) -> dict:
    return {str(c): _error(_ERRORS[c]) for c in codes}


def _query(name: str, description: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema or STRING, "description": description}


_FOV = _query("fov", "field of view in arcsec (0.01-60, default 5)", {"type": "number", "minimum": 0.01,
                                                                        "maximum": 60})
_ETAG = {"ETag": {"description": "sha256 of the file content, quoted", "schema": STRING}}


def _form(properties: dict, required: list[str]) -> dict:
    schema = {"type": "object", "required": required, "properties": properties}
    return {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": schema},
                                          "application/json": {"schema": schema}}}


def _body(properties: dict, required: list[str], example: dict | None = None) -> dict:
    schema = {"type": "object", "required": required, "properties": properties, "additionalProperties": False}
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"required": True, "content": {"application/json": content}}


SLUG = {"type": "string", "pattern": SLUG_RE.pattern, "maxLength": MAX_SLUG}

# inspections
QUALITY = {"type": "integer", "minimum": 0, "maximum": 4}
ISSUES = {"type": "array", "items": {"enum": list(ISSUE_FLAGS)}}
INSPECTION = _obj({
    "inspection_id": INTEGER, "object_id": STRING, "reviewer": STRING, "redshift": NUMBER_OR_NULL,
    "quality": QUALITY, "quality_name": {"enum": list(QUALITY_NAMES)}, "comment": STRING, "issues": ISSUES,
    "spectra_seen": {"type": "array", "items": _obj({"spectrum_id": STRING, "sha256": _nullable("string")})},
    "resolves_conflict": {"type": "boolean"}, "created_at": STRING,
    "outdated": {"type": "boolean", "description": "a spectrum it rests on has another sha256 now (or is gone)"}})
CONSENSUS = _obj({"state": {"enum": [*STATES, "hidden"]}, "redshift": NUMBER_OR_NULL, "quality": QUALITY,
                  "n_reviewers": INTEGER})
_INSPECTION_BODY = {
    "redshift": {"type": ["number", "null"], "minimum": 0, "maximum": MAX_REDSHIFT,
                 "description": "required from quality 2 (tentative) on"},
    "quality": {"anyOf": [QUALITY, {"enum": list(QUALITY_NAMES)}]},
    "comment": {"type": "string", "maxLength": MAX_COMMENT},
    "issues": ISSUES,
    "resolves_conflict": {"type": "boolean", "description": "admins only: this grade settles a conflict"},
}
_REFIT_BODY = {
    "z_center": {"type": "number", "minimum": 0, "maximum": 30},
    "dz": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_REFIT_HALF_WIDTH,
           "description": f"half-width of the window in z (default 0.05, at most {MAX_REFIT_HALF_WIDTH})"},
    "spectrum_id": {"type": "string", "description": "one of the object's spectra (default: the best visible)"},
}
_INSPECT_403 = _error("you may not inspect this object (inspections are by members of a program with a spectrum of "
                      "it, or by archive admins), or resolve a conflict (admins only)")
_TAG_FIELDS = {"name": STRING, "description": STRING, "shared": {"type": "boolean"}}
_OBJECT_IDS = {"object_ids": {"type": "array", "items": STRING, "minItems": 1}}

# (method, path) -> what the operation answers. "auth": "optional" (anonymous callers see the
# public programs), "required" (an account), or "none" (the endpoint reads no token).
OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/health"): {"auth": "none", "responses": {
        "200": _json(_obj({"status": STRING, "api_version": STRING, "catalog_id": STRING}))}},
    ("get", "/me"): {"auth": "optional", "responses": {
        "200": _json(_obj({"username": _nullable("string"), "programs": {"type": "array", "items": INTEGER},
                           "visibility": STRING})), **_errors(401)}},
    ("post", "/auth/token"): {"auth": "none", "responses": {
        "200": _json(_obj({"access_token": STRING, "token_type": {"const": "bearer"}, "expires_in": INTEGER,
                           "refresh_token": STRING, "username": STRING})),
        "400": _error("invalid_request, invalid_grant or unsupported_grant_type (OAuth2 error)", OAUTH_ERROR),
        "429": {**_error(_ERRORS[429], OAUTH_ERROR), "headers": _RETRY_AFTER},
        "503": {**_error(_ERRORS[503], OAUTH_ERROR), "headers": _RETRY_AFTER}},
        "requestBody": _form({"grant_type": {"type": "string", "enum": ["password", "refresh_token"]},
                              "username": STRING, "password": {"type": "string", "format": "password"},
                              "refresh_token": STRING}, ["grant_type"])},
    ("post", "/auth/revoke"): {"auth": "none", "responses": {
        "200": _json(_obj({"revoked": {"type": "boolean"}})), **_errors(400)},
        "requestBody": _form({"token": STRING}, ["token"])},
    ("get", "/objects"): {"auth": "optional", "responses": {"200": _json(_page(OBJECT_COLUMNS)), **_errors(400, 401)}},
    ("get", "/spectra"): {"auth": "optional", "responses": {"200": _json(_page(SPECTRUM_COLUMNS)),
                                                             **_errors(400, 401)}},
    ("get", "/objects/{object_id}"): {"auth": "optional", "responses": {
        "200": _json(_obj({"object": OBJECT_ROW, "spectra": {"type": "array", "items": SPECTRUM_ROW},
                           "photometry": {"anyOf": [{"type": "null"}, PHOTOMETRY]}})), **_errors(400, 401, 404)}},
    ("get", "/spectra/{spectrum_id}"): {"auth": "optional", "responses": {
        "200": _json(SPECTRUM_ROW), **_errors(400, 401, 404)}},
    ("get", "/spectra/{spectrum_id}/file"): {"auth": "optional", "responses": {
        "200": _binary("application/fits", "the FITS file", _ETAG),
        "206": _binary("application/fits", "the requested byte range (Range: bytes=START-[END]); several "
                       "ranges come as multipart/byteranges (RFC 9110)", _ETAG,
                       also=("multipart/byteranges",)),
        "304": {"description": "If-None-Match matched the ETag"},
        **_errors(400, 401, 404),
        "416": {**_error(_ERRORS[416]), "headers": {"Content-Range": {"schema": STRING}}},
        "503": {**_error("file_changed: the file was rewritten in place while it was read; retry after "
                         "Retry-After seconds"), "headers": _RETRY_AFTER}},
        "parameters": [
            {"name": "Range", "in": "header", "required": False, "schema": STRING,
             "description": "bytes=START-[END] to resume a download "
                            "(several comma-separated ranges: multipart/byteranges)"},
            {"name": "If-Range", "in": "header", "required": False, "schema": STRING,
             "description": "the ETag the partial file came from"},
            {"name": "If-None-Match", "in": "header", "required": False, "schema": STRING}]},
    ("get", "/spectra/{spectrum_id}/data"): {"auth": "optional", "responses": {
        "200": _json(_obj({"wave": NUMBERS, "fnu": NUMBERS, "fnu_err": NUMBERS,
                           "snr_2d": {"type": "array", "items": NUMBERS}, "n_spatial": INTEGER, "n_wave": INTEGER,
                           "profile": NUMBERS, "profile_fit": NUMBERS, "profile_pix": NUMBERS})),
        **_errors(400, 401, 404)}},
    ("get", "/spectra/{spectrum_id}/redshift-fit"): {"auth": "optional", "responses": {
        "200": _json(_obj({"redshift": NUMBER_OR_NULL, "chi2_min": NUMBER_OR_NULL, "confidence": NUMBER_OR_NULL,
                           "z_grid": NUMBERS, "chi2_grid": NUMBERS, "model_wave": NUMBERS, "model_fnu": NUMBERS,
                           "redshift_lo": NUMBER_OR_NULL, "redshift_hi": NUMBER_OR_NULL})),
        **_errors(400, 401, 404)}},
    ("get", "/objects/{object_id}/cutout.png"): {"auth": "optional", "responses": {
        "200": _binary("image/png", "the cutout (geometry in a 'campfire' text chunk)"),
        **_errors(400, 401, 404, 502), "503": {**_error(_ERRORS[503]), "headers": _RETRY_AFTER}},
        "parameters": [_FOV, _query("size", "output pixels per side (16-2048; default: the imaging's native "
                                            "scale, at most 2048 pixels a side)",
                                    {"type": "integer", "minimum": 16, "maximum": 2048})]},
    ("get", "/objects/{object_id}/shutters"): {"auth": "optional", "responses": {
        "200": _json(_obj({"object_id": STRING, "shutters": {"type": "array", "items": {"type": "object"}},
                           "observations": {"type": "array", "items": {"type": "object"}}})),
        **_errors(400, 401, 404, 502)},
        "parameters": [_FOV]},
    ("get", "/metadata"): {"auth": "optional", "responses": {
        "200": _json(_obj({"programs": STRINGS, "fields": STRINGS, "gratings": STRINGS, "observations": STRINGS})),
        **_errors(401)}},
    ("get", "/programs"): {"auth": "optional", "responses": {"200": _json(TABLE), **_errors(401)}},
    ("get", "/fields"): {"auth": "optional", "responses": {"200": _json(STRINGS), **_errors(401)}},
    ("get", "/gratings"): {"auth": "optional", "responses": {"200": _json(STRINGS), **_errors(401)}},
    ("get", "/observations"): {"auth": "optional", "responses": {"200": _json(STRINGS), **_errors(401)}},
    ("get", "/counts"): {"auth": "optional", "responses": {
        "200": _json(_obj({"observations": INTEGER, "objects": INTEGER, "spectra": INTEGER})), **_errors(401)}},
    ("get", "/tags"): {"auth": "optional", "responses": {"200": _json(TABLE), **_errors(401)}},
    ("post", "/tags"): {"auth": "required", "responses": {
        "201": _json(TAG, "created"), **_errors(400, 401, 409)},
        "requestBody": _body({"slug": SLUG, **_TAG_FIELDS}, ["slug"],
                             {"slug": "my-lrds", "name": "My LRDs", "description": "", "shared": False})},
    ("patch", "/tags/{slug}"): {"auth": "required", "responses": {
        "200": _json(TAG), **_errors(400, 401, 403, 404)}, "requestBody": _body(_TAG_FIELDS, [])},
    ("delete", "/tags/{slug}"): {"auth": "required", "responses": {
        "200": _json(_obj({"deleted": STRING})), **_errors(400, 401, 403, 404)}},
    ("post", "/tags/{slug}/objects"): {"auth": "required", "responses": {
        "200": _json(_obj({"slug": STRING, "added": INTEGER, "member_count": INTEGER})),
        **_errors(400, 401, 403, 404)}, "requestBody": _body(_OBJECT_IDS, ["object_ids"])},
    ("delete", "/tags/{slug}/objects"): {"auth": "required", "responses": {
        "200": _json(_obj({"slug": STRING, "removed": INTEGER, "member_count": INTEGER})),
        **_errors(400, 401, 403, 404)}, "requestBody": _body(_OBJECT_IDS, ["object_ids"])},
    ("post", "/objects/{object_id}/inspections"): {"auth": "required", "responses": {
        "201": _json(_obj({"inspection": INSPECTION, "consensus": CONSENSUS}), "stored"),
        **_errors(400, 401), "403": _INSPECT_403, **_errors(404)},
        "requestBody": _body(_INSPECTION_BODY, ["quality"],
                             {"redshift": 3.421, "quality": "secure", "comment": "Ha and [OIII]", "issues": []})},
    ("get", "/objects/{object_id}/inspections"): {"auth": "optional", "responses": {
        "200": _json(_obj({"inspections": {"type": "array", "items": INSPECTION}, "consensus": CONSENSUS,
                           "may_inspect": {"type": "boolean"}, "may_resolve": {"type": "boolean"}})),
        **_errors(400, 401, 404)}},
    ("get", "/inspections/queue"): {"auth": "required", "responses": {
        "200": _json(_obj({"mode": {"enum": list(QUEUE_MODES)}, "total": INTEGER, "limit": INTEGER,
                           "offset": INTEGER, "object_ids": STRINGS})),
        **_errors(400, 401)},
        "parameters": [_query("mode", "ungraded (default): objects you have not graded; conflicts: objects whose "
                                      "reviewers disagree", {"enum": list(QUEUE_MODES)})]},
    ("post", "/objects/{object_id}/refit"): {"auth": "required", "responses": {
        "200": _json(_obj({"object_id": STRING, "spectrum_id": STRING, "z_range": NUMBERS,
                           "redshift": NUMBER_OR_NULL, "redshift_lo": NUMBER_OR_NULL, "redshift_hi": NUMBER_OR_NULL,
                           "chi2_min": NUMBER_OR_NULL, "confidence": NUMBER_OR_NULL, "z_grid": NUMBERS,
                           "chi2_grid": NUMBERS})),
        **_errors(400, 401), "403": _INSPECT_403, **_errors(404),
        "429": {**_error("refits are busy; retry after Retry-After seconds"),
                "headers": {"Retry-After": {"schema": INTEGER}}}},
        "requestBody": _body(_REFIT_BODY, ["z_center"], {"z_center": 3.42, "dz": 0.05})},
    ("get", "/export"): {"auth": "optional", "responses": {
        "200": _binary("application/gzip", "a gzip SQLite snapshot or NDJSON delta (X-Campfire-Export says which)",
                       {"X-Campfire-Export": {"schema": {"enum": ["sqlite-snapshot", "ndjson-delta"]}},
                        "X-Campfire-Cursor": {"schema": STRING}}),
        **_errors(400, 401)},
        "parameters": [_query("since", "the cursor of an earlier export: answer with a delta when possible")]},
}

# path parameters are IDs / slugs: documenting the pattern lets clients (and fuzzers) know it
_PATH_PATTERNS = {"object_id": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$"},
                  "spectrum_id": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$"},
                  "slug": SLUG}


def document(doc: dict, prefix: str) -> dict:
    """Return ``doc`` (FastAPI's generated OpenAPI document) with :data:`OPERATIONS` merged in.

    Raises
    ------
    KeyError
        An operation of the app has no entry in :data:`OPERATIONS` (or the reverse).
    """
    doc = copy.deepcopy(doc)
    seen = set()
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete", "head"):
                continue
            key = (method, path.removeprefix(prefix))
            if key not in OPERATIONS:
                raise KeyError(f"{method.upper()} {path} is not described in campfire.server.openapi.OPERATIONS")
            seen.add(key)
            spec = OPERATIONS[key]
            op["responses"] = copy.deepcopy(spec["responses"])
            if "requestBody" in spec:
                op["requestBody"] = copy.deepcopy(spec["requestBody"])
                op["responses"]["413"] = _error(_ERRORS[413])  # the BodyLimit middleware, on every body
            params = [p for p in op.get("parameters", [])]
            for p in params:
                if p.get("in") == "path" and p["name"] in _PATH_PATTERNS:
                    p["schema"] = dict(_PATH_PATTERNS[p["name"]])
            names = {(p["in"], p["name"]) for p in params}
            params += [copy.deepcopy(p) for p in spec.get("parameters", []) if (p["in"], p["name"]) not in names]
            if params:
                op["parameters"] = params
            auth = spec["auth"]
            if auth == "none":
                op.pop("security", None)
            elif auth == "optional":
                op["security"] = [{}, {SECURITY_SCHEME: []}]  # anonymous callers are welcome
            else:
                op["security"] = [{SECURITY_SCHEME: []}]
    missing = set(OPERATIONS) - seen
    if missing:
        raise KeyError(f"OPERATIONS describes operations the app does not have: {sorted(missing)}")
    schemas = doc.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422, never sent
        schemas.pop(name, None)
    return doc


def install(app, prefix: str) -> None:
    """Make ``app.openapi()`` return the described document (built once, then cached)."""
    generate = app.openapi

    def openapi() -> dict:
        if getattr(app, "_campfire_openapi", None) is None:
            app._campfire_openapi = document(generate(), prefix)
        return app._campfire_openapi

    app.openapi = openapi
