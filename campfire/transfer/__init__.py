"""Moving bytes between a server and a client data_dir.

============  ==============================================================
``sync``      the catalog: the server's bulk export → ``<data_dir>/meta/campfire.db``
``download``  FITS files: plan, stream to ``.part``, resume, verify sha256, record
``locks``     one writer per data_dir catalog and per file, across processes
``datadir``   the data_dir as a write target: ownership, safe paths, hashes, disk errors
============  ==============================================================

Everything takes the server (:class:`~campfire.catalog.remote.RemoteCatalog`) and the
``data_dir``, never the client.
"""
from __future__ import annotations

from campfire.transfer.datadir import file_sha256
from campfire.transfer.download import fetch_ref, fetch_spectrum, plan_downloads, record_downloads
from campfire.transfer.sync import SyncInterrupted, sync_catalog

__all__ = ["sync_catalog", "plan_downloads", "fetch_spectrum", "fetch_ref", "record_downloads", "file_sha256", "SyncInterrupted"]
