"""The query layer: one filter vocabulary, two backends behind one contract.

=================  ================================================================
``filters.py``     the query keywords validated once → a frozen ``Query`` (+ HTTP params)
``backend.py``     ``CatalogBackend``: the Protocol the client talks to
``local.py``       ``LocalCatalog``: the SQLite backend (connections, caches, methods)
``remote/``        ``RemoteCatalog``: the HTTP backend (payloads → http → parse; tokens)
``compile.py``     Query → SQL for the schema
``planner.py``     the access path of spectra queries (capped index probes)
``columns.py``     the answer's columns, rows → Tables and dicts
``visibility.py``  what one caller may see, as SQL predicates
``db.py``          the catalog file: ``catalog_path``, ``connect``, ``read_meta``, change stamp
``schema.py``      schema.sql, versions and upgrades, ``create_catalog`` / ``finalize_catalog``
``writer.py``      ``CatalogWriter``: the one INSERT per table, for whoever fills a catalog
``aggregates.py``  the per-visibility object aggregates and inspection fields
``inspections.py`` reviewers' inspection records: writing them, what a caller may see, outdated
``consensus.py``   the consensus rule over inspection records (pure)
=================  ================================================================
"""
