"""Resuming ``campfire run``: what earlier runs completed, and the state a run leaves behind.

The output directory holds :data:`STATE_FILE`: the *layout* of the run (the order of
the zarr rows) and the *input key* of every complete object and population stack
(steps + options + input hashes, :mod:`campfire.workflows.provenance`). An object is
complete when its key is unchanged and its output files exist; it is then skipped
(``--force`` recomputes everything). A population over spectra needs every spectrum in
the graph, so then nothing is skipped.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from campfire.workflows.outputs import OutDir, fits_path_for, write_json

__all__ = ["STATE_FILE", "Completed", "completed", "next_state", "read_state", "write_state"]

STATE_FILE = ".campfire-run.json"


def read_state(outdir: OutDir) -> dict:
    """The state an earlier run left in ``outdir`` (empty when there is none or it is unreadable)."""
    try:
        import fsspec

        with fsspec.open(str(outdir / STATE_FILE), "r") as f:  # a local path or an fsspec URL
            return json.load(f)
    except (OSError, ValueError):
        return {}


def write_state(outdir: OutDir, state: dict) -> None:
    """Write the run state (atomically)."""
    write_json(outdir / STATE_FILE, state)


@dataclass
class Completed:
    """What earlier runs completed: ``objects`` and ``populations`` to skip."""

    previous: dict = field(default_factory=dict)
    same_layout: bool = False
    objects: set[str] = field(default_factory=set)
    populations: set[str] = field(default_factory=set)

    @property
    def object_keys(self) -> dict[str, str]:
        """The input keys of the complete objects of the earlier run (same layout only)."""
        return self.previous.get("objects", {}) if self.same_layout else {}


def _object_complete(wf, sel, outdir: OutDir, keys: dict, oid: str) -> bool:
    if keys.get(oid) != sel.keys[oid]:
        return False
    if not wf.outputs.fits:
        return True
    if sel.kind == "objects":
        return OutDir(fits_path_for(str(outdir), sel.objects[oid], "objects")).exists()
    return all(OutDir(fits_path_for(str(outdir), r, "spectra")).exists() for r in sel.by_object[oid])


def completed(wf, sel, outdir: OutDir, *, force: bool = False) -> Completed:
    """Which objects and population stacks of ``sel`` are complete in ``outdir``.

    Parameters
    ----------
    wf : Workflow
    sel : Selection
        (:func:`campfire.workflows.plan.select`)
    outdir : OutDir
    force : bool
        Treat nothing as complete.

    Returns
    -------
    Completed
    """
    if force:
        return Completed()
    previous = read_state(outdir)
    zarr_path = outdir / wf.outputs.zarr if wf.outputs.zarr else None
    same_layout = previous.get("layout") == sel.layout and (zarr_path is None or zarr_path.exists())
    keys = previous.get("objects", {}) if same_layout else {}
    objects = {oid for oid in sel.objects if _object_complete(wf, sel, outdir, keys, oid)}
    populations = {lab for lab in sel.populations
                   if same_layout and previous.get("populations", {}).get(lab) == sel.population_keys[lab]
                   and (not wf.outputs.fits or (outdir / "fits" / f"{lab}.fits").exists())}
    if any(lab not in populations and (spec.options["input"] == "spectra" or sel.kind != "objects")
           for lab, spec in sel.populations.items()):
        objects = set()  # a population over spectra needs every spectrum in this graph
    return Completed(previous=previous, same_layout=same_layout, objects=objects, populations=populations)


def next_state(sel, done: Completed, ok_objects: set[str], populations: dict[str, Any]) -> dict:
    """The state to leave behind: earlier complete objects and populations plus this run's successes."""
    objects = {**done.object_keys, **{oid: sel.keys[oid] for oid in ok_objects}}
    pops = {**(done.previous.get("populations", {}) if done.same_layout else {}),
            **{lab: sel.population_keys[lab] for lab, r in populations.items() if r.get("status") == "ok"}}
    return {"layout": sel.layout, "objects": {k: v for k, v in objects.items() if k in sel.keys}, "populations": pops}
