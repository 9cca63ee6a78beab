"""The export cursor tells nothing about hidden data (issue 15, point 7).

Its time part is the latest ``updated_at`` over the rows the caller may see: a change
to a proprietary spectrum moves a member's cursor, never an anonymous caller's.
"""
from __future__ import annotations

import base64
import json

import pytest
import requests

pytestmark = pytest.mark.server


def _cursor_time(server, token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = requests.get(f"{server.url}/api/v1/export", headers=headers, stream=True)
    r.close()
    cursor = r.headers["X-Campfire-Cursor"]
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["t"]


def test_cursor_time_is_over_visible_rows_only(fresh_server, ids, get_token):
    public_high = fresh_server.sql(
        "SELECT max(m) FROM (SELECT max(s.updated_at) AS m FROM spectra s JOIN programs p USING (program_id) "
        "WHERE p.is_public = 1 UNION ALL SELECT max(o.updated_at) FROM objects o WHERE EXISTS (SELECT 1 FROM "
        "spectra s JOIN programs p USING (program_id) WHERE s.object_id = o.object_id AND p.is_public = 1))")[0][0]
    assert _cursor_time(fresh_server) == public_high
    # the pipeline touches a proprietary spectrum (and its proprietary-only object)
    hidden = ids["prop_spectra"][0]
    fresh_server.sql("UPDATE spectra SET updated_at = '2999-01-01T00:00:00+00:00' WHERE spectrum_id = ?", (hidden,))
    fresh_server.sql("UPDATE objects SET updated_at = '2999-01-01T00:00:00+00:00' WHERE object_id = ?",
                     (ids["prop_only"][0],))
    assert _cursor_time(fresh_server) == public_high  # anonymous: nothing moved
    assert _cursor_time(fresh_server, get_token(fresh_server.url, "bob")) == public_high  # bob is no member
    assert _cursor_time(fresh_server, get_token(fresh_server.url, "alice")) == "2999-01-01T00:00:00+00:00"
