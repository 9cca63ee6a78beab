"""The API's JSON: compact, NaN/inf as null, numpy values and arrays as plain JSON.

Rows come straight from SQLite and arrays from FITS files; :func:`json_response`
encodes them without a model layer (FastAPI's ``jsonable_encoder`` would walk every
cell of a 10,000-row page).

Examples
--------
>>> json_array([1.0, float('nan')])
[1.0, None]
>>> clean_row({'z': float('inf'), 'id': 'a'})
{'z': None, 'id': 'a'}
"""
from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from starlette.responses import Response

__all__ = ["finite", "clean_row", "json_array", "json_response", "table_json", "arrays_json"]


def finite(value):
    """``value``, or None for a non-finite float."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def clean_row(row: dict) -> dict:
    """A row dict with non-finite floats as None."""
    return {k: finite(v) for k, v in row.items()}


def json_array(values) -> list:
    """A numpy array as nested JSON lists, NaN/inf → null."""
    arr = np.asarray(values, dtype=float)
    obj = arr.astype(object)
    obj[~np.isfinite(arr)] = None
    return obj.tolist()


def _default(value):
    if isinstance(value, np.generic):
        return finite(value.item())
    if isinstance(value, np.ndarray):
        return json_array(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_response(payload: Any, status: int = 200, headers: dict | None = None) -> Response:
    """``payload`` as a compact ``application/json`` response."""
    body = json.dumps(payload, separators=(",", ":"), default=_default)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def table_json(table) -> dict:
    """An astropy Table as ``{"columns": [...], "rows": [[...], ...]}``."""
    cols = list(table.colnames)
    rows = [[finite(v.item() if hasattr(v, "item") else v) for v in row] for row in table.iterrows()]
    return {"columns": cols, "rows": rows}


def arrays_json(data: dict) -> dict:
    """A dict of arrays and scalars (spectrum data, redshift fit) as JSON values."""
    return {k: (json_array(v) if hasattr(v, "shape") else finite(v)) for k, v in data.items()}
