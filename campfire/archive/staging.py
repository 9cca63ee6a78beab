"""One ingest run's scratch space on disk: staged products, job batches and the run's records.

An ingest of 80,000 files must not hold 80,000 records in memory, so everything
per-file lives here, under ``<root>/products/.ingest-staging/<run>/``:

* ``jobs-<k>.pkl``: the jobs of one Dask task (the task reads them itself, so the graph
  holds only file names), and ``jobs-<k>.records.pkl``: what the task returns;
* ``<index>.spec.fits`` / ``<index>.zfit.fits``: staged products, moved into place
  after the commit;
* ``run.db``: a SQLite table of the run's records — one row per input file (and per
  problem of the table, the catalogue or programs.yaml) with its status, IDs and
  reason, plus the pickled record of every file ready to enter the catalog. The
  catalog transaction attaches it as ``stage`` and streams through it in founding
  order; the summary is read from it at the end.

The folder is removed once the files it staged are in place (:func:`campfire.archive.state.run_pending`).
"""
from __future__ import annotations

import pathlib
import pickle
import sqlite3
from typing import Any, Iterable, Iterator

__all__ = ["RunStore", "founding_key", "iter_ready", "STAGE"]

STAGE = "stage"  # the schema name the catalog connection attaches run.db under

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    idx         INTEGER PRIMARY KEY,   -- the input's position (negative: a note that is not an input file)
    source      TEXT NOT NULL,
    status      TEXT NOT NULL,         -- ready, failed, unchanged, new, updated, missing, withdrawn, warning
    spectrum_id TEXT NOT NULL DEFAULT '',
    object_id   TEXT NOT NULL DEFAULT '',
    reason      TEXT NOT NULL DEFAULT '',
    order_key   TEXT,                  -- founding order of the objects (grouping)
    program_id  INTEGER,
    stamp       TEXT,                  -- an unchanged input's new stamp (its bytes were read: the same)
    data        BLOB                   -- the pickled record of a file ready for the catalog
);
CREATE INDEX IF NOT EXISTS records_status ON records (status, order_key);
CREATE INDEX IF NOT EXISTS records_spectrum ON records (spectrum_id);
CREATE TABLE IF NOT EXISTS touched (object_id TEXT PRIMARY KEY);
"""


def founding_key(rec: dict[str, Any]) -> str:
    """Observation date, observation, source ID, spectrum ID: the order in which new spectra found objects."""
    return "\x1f".join((rec.get("observed_at") or "9999", rec["observation"], rec["source_id"], rec["spectrum_id"]))


class RunStore:
    """The records of one run in ``<folder>/run.db`` (see the module docstring).

    Parameters
    ----------
    folder : pathlib.Path
        The run's staging folder (created).
    """

    def __init__(self, folder: pathlib.Path):
        self.folder = pathlib.Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "run.db"
        self.conn = sqlite3.connect(self.path)
        self.conn.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;" + _SCHEMA)
        self._notes = 0

    def close(self) -> None:
        self.conn.close()

    def add_records(self, records: Iterable[dict[str, Any]]) -> None:
        """Records of the per-file step (``ready``, ``same`` or ``failed``), or ``unchanged`` ones of the plan."""
        rows = []
        for rec in records:
            status = rec["status"]
            if status == "ready":
                rows.append((rec["index"], rec["source"], "ready", rec["spectrum_id"], rec.get("reason", ""),
                             founding_key(rec), rec["program_id"], None,
                             pickle.dumps(rec, protocol=pickle.HIGHEST_PROTOCOL)))
            else:
                stamp = rec["stamp"] if status == "same" else None  # bytes read again: the same, a new stamp
                status = "unchanged" if status == "same" else status
                rows.append((rec["index"], rec["source"], status, rec.get("spectrum_id") or "", rec.get("reason", ""),
                             None, None, stamp, None))
        with self.conn:
            self.conn.executemany("INSERT OR REPLACE INTO records (idx, source, status, spectrum_id, reason, order_key, "
                                  "program_id, stamp, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def note(self, source: str, status: str, spectrum_id: str = "", object_id: str = "", reason: str = "", *,
             via: sqlite3.Connection | None = None) -> None:
        """A summary row that is not an input file of the per-file step (a problem, a warning, a missing file).

        ``via``: the catalog connection the store is attached to (as ``stage``) while its
        transaction runs — the store's own connection must not write then.
        """
        self._notes += 1
        row = (-self._notes, str(source), status, spectrum_id or "", object_id or "", reason or "")
        sql = "INSERT INTO {}records (idx, source, status, spectrum_id, object_id, reason) VALUES (?, ?, ?, ?, ?, ?)"
        if via is not None:
            via.execute(sql.format(f"{STAGE}."), row)
            return
        with self.conn:
            self.conn.execute(sql.format(""), row)

    def count(self, status: str) -> int:
        return self.conn.execute("SELECT count(*) FROM records WHERE status = ?", (status,)).fetchone()[0]


def iter_ready(conn: sqlite3.Connection, where: str = "", params: tuple = (), chunk: int = 500
               ) -> Iterator[list[dict[str, Any]]]:
    """The ``ready`` records of the attached run store, in founding order, ``chunk`` at a time.

    The order is read first (a list of integers), the records a chunk at a time, so the
    caller may change the store's rows while it iterates.
    """
    order = [r[0] for r in conn.execute(
        f"SELECT idx FROM {STAGE}.records r WHERE r.status = 'ready' {where} ORDER BY r.order_key", params)]
    for k in range(0, len(order), chunk):
        ids = order[k:k + chunk]
        data = dict(conn.execute(f"SELECT idx, data FROM {STAGE}.records WHERE idx IN ({','.join('?' * len(ids))})",
                                 ids))
        yield [pickle.loads(data[i]) | {"idx": i} for i in ids]
