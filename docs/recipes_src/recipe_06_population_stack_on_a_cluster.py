"""
6. A population stack on a Dask cluster
=======================================

The eager functions of recipe 3 work on one object in memory. For a population —
every little red dot in the archive, or every object with photometry — campfire
builds the same steps as a lazy Dask graph: spectra are read, calibrated and
resampled in batches, each object is stacked in one task, and the population stack is
a tree reduction of partial sums (a median is gathered per wavelength chunk), so no
process ever holds the whole sample. The graph runs on threads, processes, a
``distributed.LocalCluster``, or any Dask cluster you connect to.

This recipe starts a LocalCluster of two worker processes, computes per-object
calibrated stacks of the little red dots and their rest-frame median stack, and
looks at what was excluded and why.
"""

import dask
import matplotlib.pyplot as plt
import numpy as np
from distributed import Client, LocalCluster

import campfire.demo
from campfire import Campfire, get_emission_lines

cf = Campfire(data_dir=campfire.demo.ensure())

# %%
# The cluster
# -----------
#
# Two worker processes with one thread each (size it to your machine; on a batch
# system, ``dask-jobqueue`` gives you the same ``Client`` backed by jobs). In a script,
# put this under ``if __name__ == "__main__":`` — worker processes are spawned and
# import your script; in a notebook nothing is needed.

cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0")
client = Client(cluster)
print(client)
print("dashboard:", client.dashboard_link)

# %%
# The lazy collection
# -------------------
#
# ``cf.lazy_spectra`` takes the ``query_spectra`` filters and returns a lazy
# collection; nothing is read yet. ``batch_size`` is the number of spectra per task
# (the default, 200, suits real samples; a small one spreads this small sample over
# both workers). A spectrum that cannot be processed — a corrupt file, no usable
# photometric band — becomes a recorded failure by default (``errors='record'``)
# instead of an exception that stops the whole population;
# ``.with_errors('raise')`` would stop at the first one.

lazy = cf.lazy_spectra(tags=["lrd"], has_photometry=True, gratings=["PRISM"], batch_size=8)
print(lazy)

grid = np.geomspace(0.6, 5.3, 700)  # observed frame, μm
per_object = lazy.calibrate(degree=2).resample(grid).stack("weighted_mean", by="object")
population = per_object.stack("median", by="all", rest_frame=True, window=(0.42, 0.48))
print(per_object)
print(population)

# %%
# Compute both at once: the shared steps run once, on the cluster (a distributed
# ``Client`` becomes Dask's default scheduler when it is created).

stacks, pop = dask.compute(per_object, population)
print(len(stacks), "per-object stacks;", pop)
print(stacks.summary())  # what failed, if anything: .failures, .left_out

# %%
# What went in and what was left out: a population stack records its inputs, its
# normalisation window, and every input it had to exclude, with the reason.

print(pop.meta["n_spectra"], "objects stacked, normalised in", pop.meta["norm_window"], "μm (rest)")
for reason in pop.meta["excluded"]:
    print("excluded:", reason)

# %%
# Failures upstream — a spectrum that could not be calibrated, say — are kept on the
# items: ``.items()`` computes the same graph but returns, for each object, its
# value, inputs and failures.

items = per_object.items().compute()
for item in items:
    if item.failure or item.failed_inputs:
        print(item.ref.object_id, item.failure, item.failed_inputs)
print(sum(1 for i in items if not i.failure), "of", len(items), "objects stacked without failure")

# %%
# The rest-frame population stack, with the lines of a broad-line little red dot
# marked, over a few of the per-object stacks brought to the rest frame:

fig, ax = plt.subplots(figsize=(10, 4.5), layout="constrained")
lrds = cf.query_objects(tags=["lrd"])
redshifts = dict(zip(lrds["object_id"], lrds["redshift"]))
for spec in stacks[:8]:
    z = redshifts[spec.object_id]
    rest = spec.wavelength / (1 + z)
    norm = np.nanmedian(spec.fnu[(rest > 0.42) & (rest < 0.48)])
    if np.isfinite(norm) and norm > 0:
        ax.plot(rest, spec.fnu / norm, lw=0.5, alpha=0.5)
ax.fill_between(pop.wavelength, pop.fnu - pop.fnu_err, pop.fnu + pop.fnu_err, color="k", alpha=0.3, lw=0)
ax.plot(pop.wavelength, pop.fnu, color="k", lw=1.2, label=f"median of {pop.meta['n_spectra']} LRDs")
for line in get_emission_lines(0.0, 0.3, 0.7):
    if line["name"] in ("Hbeta", "[OIII]-5008", "Halpha", "[OII]-3727", "Hgamma"):
        x = line["rest_wavelength"] / 1e4
        ax.axvline(x, color="C0", lw=0.6, ls=":")
        ax.annotate(line["name"], (x, 0.97), xycoords=("data", "axes fraction"), rotation=90, ha="right",
                    va="top", fontsize=8, color="C0")
shown = (pop.wavelength > 0.3) & (pop.wavelength < 0.72)
ax.set(xlim=(0.3, 0.72), ylim=(0, 1.2 * np.nanmax(pop.fnu[shown])), xlabel="rest-frame wavelength [μm]",
       ylabel=r"$f_\nu$ / median(0.42–0.48 μm)")
ax.legend(loc="center left")

# %%
# Writing the results
# -------------------
#
# ``to_zarr`` writes the per-object stacks (on their common grid) into a zarr store,
# chunk by chunk from the workers, with the steps in the attributes:

import tempfile

import zarr

store = f"{tempfile.mkdtemp()}/lrds.zarr"
per_object.to_zarr(store, group="objects")
print(zarr.open_group(store, mode="r")["objects"].tree())

# %%
# The same as a workflow
# ----------------------
#
# ``workflows/stack_lrds.yaml`` declares the same selection, steps and outputs, and
# ``campfire run`` runs it as one graph (``--workers 2`` starts a LocalCluster like the
# one above; ``--scheduler tcp://HOST:8786`` uses a running cluster). The plan, without
# running it:
#
# .. command-output:: campfire run workflows/stack_lrds.yaml --dry-run
#    :cwd: /..
#    :prompt:
#
# See :doc:`/workflows` for the file format. Finally, close the cluster:

client.close()
cluster.close()
