"""Pure step functions (no Dask, HTTP, files or config here): numpy/astropy in, numpy/dataclasses out.

* :mod:`campfire.tasks.calibrate` — ``calibrate_to_photometry`` (slit-loss multiplier from photometry)
* :mod:`campfire.tasks.resample` — flux-conserving resampling (``resample_flux``, ``resample_spectra``)
* :mod:`campfire.tasks.stack` — ``stack_spectra`` and the stack prelude (rest frame, normalisation)
* :mod:`campfire.tasks.combine` — partial sums and per-chunk medians that stacks combine
* :mod:`campfire.tasks.synphot` — synthetic photometry (computed in :mod:`campfire.bands.synphot`)
* :mod:`campfire.tasks.redshift` — ``fit_redshift``
* :mod:`campfire.tasks.batch` — the steps over a batch of spectra (Items) that graph tasks run
* :mod:`campfire.tasks.population` — population stacks as partials / chunks of batches

Graph builders in :mod:`campfire.graphs` compose them (and add the I/O steps, download
and open, at the graph edge); the eager API (:mod:`campfire.calibration`) calls them directly.
"""
