"""schema.sql as statements: the tables apart from the indexes, for bulk loads.

A bulk load (the server's export snapshot, the client's sync) creates the tables,
inserts every row, and only then builds each index once — much faster than
maintaining the indexes row by row.

Examples
--------
>>> tables, indexes = schema_statements()
>>> any('CREATE TABLE IF NOT EXISTS spectra' in s for s in tables), all('INDEX' in s for s in indexes)
(True, True)
"""
from __future__ import annotations

import re
import sqlite3

from campfire.catalog.local import SCHEMA_PATH

__all__ = ["schema_statements"]


def schema_statements() -> tuple[list[str], list[str]]:
    """schema.sql split into (table statements, index statements); PRAGMAs dropped."""
    text = "\n".join(line.split("--", 1)[0] for line in SCHEMA_PATH.read_text().splitlines())
    statements, buf = [], ""
    for line in text.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    indexes = [s for s in statements if re.match(r"CREATE\s+(UNIQUE\s+)?INDEX", s, re.I)]
    tables = [s for s in statements if s not in indexes and not s.upper().startswith("PRAGMA")]
    return tables, indexes
