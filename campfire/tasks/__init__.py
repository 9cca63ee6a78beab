"""Pure step functions (no Dask import here): numpy/astropy in, numpy/dataclasses out.

download → open → synphot → calibrate → resample → stack → redshift fit. Graph
builders in :mod:`campfire.graphs` compose them; the eager API calls them directly.
"""
