"""Dask graph builders: the LazySpectra collection, tree reductions, zarr outputs, schedulers.

Graphs depend on :mod:`campfire.tasks` (pure step functions), never the other way; they
are also the edge where files are read and server files fetched (:mod:`campfire.graphs.fetch`).
Nothing here is imported by ``import campfire`` except what the eager API needs.

* :mod:`campfire.graphs.collection` — :class:`~campfire.graphs.collection.LazySpectra`
* :mod:`campfire.graphs.selection` — catalog rows / Spectrum rows → picklable references in batches
* :mod:`campfire.graphs.fetch` — the download and open steps of a batch, and the per-file downloader
* :mod:`campfire.graphs.builders` — layer naming and small layer builders
* :mod:`campfire.graphs.reduction` — tree reduction and per-chunk gathering
* :mod:`campfire.graphs.stacking` — per-object and population stack graphs
* :mod:`campfire.graphs.zarr_out` — chunk-aligned zarr writers
* :mod:`campfire.graphs.scheduler` — threads | processes | synchronous | local:N | tcp://
* :mod:`campfire.graphs.eager` — ``calibrate_and_stack`` on the graph path
* :mod:`campfire.graphs.download` — ``Campfire.download`` on the graph path
* :mod:`campfire.graphs.dot` — the layer graph as DOT text when graphviz is absent
"""
