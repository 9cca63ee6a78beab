"""The HTTP backend, in three stages as astroquery's template module does it.

=====================  ============================================================
``payloads.py``        Query / login / tag edit → request parameters and bodies (pure)
``http.py``            the one place that touches HTTP: sessions, urllib3 retries,
                       token refresh on expiry and on a 401, errors → campfire.errors
``parse.py``           JSON → the Tables and dicts the local backend returns (pure)
``credentials.py``     the user-only (0600) token file, one entry per server
``api.py``             :class:`RemoteCatalog`, the catalog backend over the API
=====================  ============================================================

Examples
--------
>>> from campfire.catalog.remote import RemoteCatalog
>>> RemoteCatalog('http://127.0.0.1:8000')
RemoteCatalog('http://127.0.0.1:8000')
"""
from __future__ import annotations

from campfire.catalog.remote.api import RemoteCatalog
from campfire.catalog.remote.credentials import CredentialStore

__all__ = ["RemoteCatalog", "CredentialStore"]
