"""Helpers of the portal tests: the running portal, logging in, more accounts."""
from __future__ import annotations

import pathlib

import requests

PASSWORDS = {"alice": "alice-demo", "bob": "bob-demo", "carol": "carol-portal", "dana": "dana-portal-admin"}


class Portal:
    """A running server over a private archive copy."""

    def __init__(self, thread, root: pathlib.Path):
        self.thread = thread
        self.url = thread.url
        self.root = root

    @property
    def archive(self):
        return self.thread.app.state.archive

    def api(self, method: str, path: str, user: str | None = None, **kwargs) -> requests.Response:
        """An API call with a bearer token of ``user`` (or anonymous)."""
        headers = kwargs.pop("headers", {})
        if user:
            headers["Authorization"] = f"Bearer {self.token(user)}"
        return requests.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=60, **kwargs)

    def token(self, user: str) -> str:
        r = requests.post(f"{self.url}/api/v1/auth/token", timeout=60,
                          data={"grant_type": "password", "username": user, "password": PASSWORDS[user]})
        r.raise_for_status()
        return r.json()["access_token"]


def login(page, portal: Portal, user: str, next_path: str = "/") -> None:
    """Log in through the portal's login form."""
    page.goto(f"{portal.url}/login?next={next_path}")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector(f".who[data-user='{user}']")


def add_account(portal: Portal, user: str, programs=(), role: str | None = None) -> None:
    """A further account on the portal's archive (a reviewer of the public programs, an admin)."""
    from campfire.server.auth import add_user

    kwargs = {"role": role} if role else {}
    add_user(portal.root, user, PASSWORDS[user], programs=list(programs), **kwargs)


def visibility_ids(root: pathlib.Path) -> dict:
    """Ground truth from the catalog file: proprietary-only objects, mixed objects and their spectra."""
    import sqlite3

    conn = sqlite3.connect(f"file:{root / 'meta' / 'campfire.db'}?mode=ro", uri=True)
    try:
        prop = sorted(r[0] for r in conn.execute("SELECT program_id FROM programs WHERE is_public = 0"))
        marks = ",".join("?" * len(prop))
        prop_only = [r[0] for r in conn.execute(
            f"SELECT object_id FROM spectra GROUP BY object_id HAVING sum(program_id NOT IN ({marks})) = 0 "
            "ORDER BY object_id", prop)]
        mixed = [r[0] for r in conn.execute(
            f"SELECT object_id FROM spectra GROUP BY object_id HAVING sum(program_id IN ({marks})) > 0 "
            f"AND sum(program_id NOT IN ({marks})) > 0 ORDER BY object_id", prop * 2)]
        spectra = {}
        for oid in mixed[:1]:
            spectra[oid] = conn.execute("SELECT spectrum_id, program_id IN (%s) FROM spectra WHERE object_id = ? "
                                        "ORDER BY spectrum_id" % marks, prop + [oid]).fetchall()
    finally:
        conn.close()
    return {"prop_only": prop_only, "mixed": mixed, "mixed_spectra": spectra}
