"""The query layer: one filter vocabulary (filters.py), two backends (local SQLite, remote HTTP)."""
