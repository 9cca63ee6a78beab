"""Dask graph builders: the LazySpectra collection, tree reductions, zarr outputs, schedulers.

Graphs depend on :mod:`campfire.tasks` (pure step functions), never the other way.
Nothing here is imported by ``import campfire`` except what the eager API needs.

* :mod:`campfire.graphs.collection` — :class:`~campfire.graphs.collection.LazySpectra`
* :mod:`campfire.graphs.builders` — layer naming and small layer builders
* :mod:`campfire.graphs.reduction` — tree reduction and per-chunk gathering
* :mod:`campfire.graphs.stacking` — per-object and population stack graphs
* :mod:`campfire.graphs.zarr_out` — chunk-aligned zarr writers
* :mod:`campfire.graphs.scheduler` — threads | processes | synchronous | local:N | tcp://
* :mod:`campfire.graphs.eager` — ``calibrate_and_stack`` on the graph path
"""
