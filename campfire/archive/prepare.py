"""The per-file step of an ingest (a Dask task): read, check, measure, fit, stage the product.

:func:`prepare_batch` runs in a worker (thread, process or cluster worker) on a few
:class:`Job` values and returns one small record (a dict of plain values) per file —
never arrays, so the scheduler's memory does not grow with the number of files. The
fit and the archive copy go to files in the staging folder of the run; the catalog
transaction later moves them into place.

A record's ``status`` is ``'ready'``, ``'same'`` (the bytes the archive already holds:
nothing to do) or ``'failed'`` (with ``reason``: what was wrong, naming what was
expected). Nothing a bad file does escapes as an exception.
"""
from __future__ import annotations

import hashlib
import pathlib
import pickle
import uuid
from dataclasses import dataclass
from typing import Any

import fsspec

from campfire.archive.names import resolve_identity
from campfire.archive.products import archive_copy_bytes, redshift_fit_file_bytes
from campfire.archive.sources import SourceFile, read_bytes
from campfire.archive.table import finite_float
from campfire.catalog.columns import auto_redshift_values
from campfire.errors import CampfireError, ValidationError
from campfire.io.fits import auto_redshift_cards, write_atomic

__all__ = ["Job", "PrepareOptions", "prepare_batch", "prepare_batch_file", "prepare_file"]


@dataclass(frozen=True)
class PrepareOptions:
    """What every task of one ingest needs (picklable)."""

    mode: str                 # copy | link | in-place
    staging: str              # the run's staging folder (local, under <root>/products)
    fit: bool                 # run the automatic redshift fit
    z_range: tuple[float, float] = (0.0, 15.0)


@dataclass(frozen=True)
class Job:
    """One input file to prepare: its source, its table row's identity facts, what the archive knows of it.

    ``known_sha256`` is set when the archive holds this input in the current mode and
    fitted: bytes with that hash are ``'same'`` (only the stamp moved) and are not
    processed again.
    """

    index: int
    source: SourceFile
    table: dict[str, Any] | None = None
    known_spectrum_id: str | None = None
    known_sha256: str | None = None


def prepare_batch(jobs: list[Job], options: PrepareOptions) -> list[dict[str, Any]]:
    """:func:`prepare_file` over a batch of jobs."""
    return [prepare_file(job, options) for job in jobs]


def prepare_batch_file(jobs_path: str, options: PrepareOptions) -> str:
    """The unit of a Dask task: the jobs pickled at ``jobs_path`` → their records pickled beside it; that path.

    Jobs and records travel through the run's staging folder, so neither the graph nor
    the scheduler's results hold them (see :mod:`campfire.archive.staging`).
    """
    with open(jobs_path, "rb") as f:
        jobs = pickle.load(f)
    out = jobs_path[: -len(".pkl")] + ".records.pkl"
    write_atomic(out, pickle.dumps(prepare_batch(jobs, options), protocol=pickle.HIGHEST_PROTOCOL))
    return out


def _failed(rec: dict[str, Any], reason: str) -> dict[str, Any]:
    rec.update(status="failed", reason=reason)
    return rec


def _exposure(header, table) -> float | None:
    # v4: EXPTIME is the total; older msaexp files have only EFFEXPTM, which they write
    # as the sum over the combined exposures (1345_933: 3 x 1021.222 s = 3063.666 s)
    for value in (header.get("EXPTIME"), header.get("EFFEXPTM"), table.get("exptime")):
        if finite_float(value) is not None:
            return finite_float(value)
    return None


def prepare_file(job: Job, options: PrepareOptions) -> dict[str, Any]:
    """Read one input and stage its product; a record of plain values (see the module docstring)."""
    from campfire.models import SpectrumData
    from campfire.tasks.quality import spectrum_quality

    src = job.source
    rec: dict[str, Any] = {"index": job.index, "source": src.key, "name": src.name, "stamp": src.stamp,
                           "status": "ready", "reason": ""}
    staging = pathlib.Path(options.staging)
    # the bytes just hashed are the bytes parsed: handed to the reader in memory, never re-read from the source
    parse_path = f"memory://campfire-ingest/{uuid.uuid4().hex}-{src.name}"
    memory = fsspec.filesystem("memory")
    try:
        try:
            data = read_bytes(src.url)
        except Exception as err:  # permissions, network: this file's problem only
            return _failed(rec, f"cannot read the file ({type(err).__name__}: {err})")
        rec["source_sha256"] = hashlib.sha256(data).hexdigest()
        rec["source_size"] = len(data)
        if rec["source_sha256"] == job.known_sha256:
            rec.update(status="same", spectrum_id=job.known_spectrum_id)
            return rec
        memory.pipe_file(parse_path, data)
        try:
            spec = SpectrumData.from_fits(parse_path)
        except CampfireError as err:
            return _failed(rec, str(err).replace(str(parse_path), src.name))
        header, table = spec.header, job.table or {}
        try:
            ident = resolve_identity(src.name, header, table)
        except CampfireError as err:
            return _failed(rec, str(err))
        ra = finite_float(header.get("SRCRA", header.get("RA")))
        dec = finite_float(header.get("SRCDEC", header.get("DEC")))
        if ra is None or dec is None:
            ra, dec = table.get("ra"), table.get("dec")
        if ra is None or dec is None or not (0 <= ra < 360 and -90 <= dec <= 90):
            return _failed(rec, f"{src.name}: no valid position (SRCRA/SRCDEC keywords, or the table's ra/dec)")
        quality = spectrum_quality(spec.wavelength, spec.fnu, spec.fnu_err, ident.grating, ident.filter)
        if quality["n_valid"] == 0:
            return _failed(rec, f"{src.name}: no valid pixel (every flux/err is NaN or zero)")
        rec.update(
            spectrum_id=job.known_spectrum_id or ident.spectrum_id, derived_spectrum_id=ident.spectrum_id,
            target_id=ident.target_id, observation=ident.observation, source_id=ident.source_id,
            program_id=ident.program_id, program_from=ident.program_from, grating=ident.grating,
            filter=ident.filter, ra=float(ra), dec=float(dec), exposure_time=_exposure(header, table),
            reduction_version=str(header["VERSION"]).strip() if header.get("VERSION") else None,
            observed_at=str(header.get("DATE-OBS") or "") or None, pa_v3=finite_float(header.get("PA_V3")),
            pointing_ra=finite_float(header.get("TARG_RA")), pointing_dec=finite_float(header.get("TARG_DEC")),
            program_title=header.get("TITLE"), pi_name=header.get("PI_NAME"),
            signal_to_noise=quality["signal_to_noise"] if quality["signal_to_noise"] == quality["signal_to_noise"]
            else None,
            n_pix=quality["n_pix"], wave_min=quality["wave_min"], wave_max=quality["wave_max"],
            dq_flags=int(quality["dq_flags"]) | int(table.get("dq_flags") or 0),
            **auto_redshift_values(None), fitted=False,
        )
        fit = None
        if options.fit:
            from campfire.tasks.redshift import fit_redshift

            try:
                fit = fit_redshift(spec, z_range=options.z_range)
                rec.update(**auto_redshift_values(fit), fitted=True)
            except ValidationError as err:
                rec.update(fitted=True, reason=f"no automatic redshift: {err}")
        cards = {"SPECID": rec["spectrum_id"], "TARGID": ident.target_id, "REDVER": rec["reduction_version"],
                 **auto_redshift_cards(fit),
                 "ORIGFILE": src.name, "ORIGSHA": rec["source_sha256"]}
        if options.mode == "copy":
            out = archive_copy_bytes(data, cards, fit)
            staged = staging / f"{job.index}.spec.fits"
            write_atomic(staged, out)
            rec.update(staged=str(staged), file_hash=hashlib.sha256(out).hexdigest(), file_size=len(out))
        else:
            rec.update(staged=None, file_hash=rec["source_sha256"], file_size=len(data))
            if fit is not None:
                side = staging / f"{job.index}.zfit.fits"
                write_atomic(side, redshift_fit_file_bytes(fit, cards))
                rec["staged_fit"] = str(side)
        return rec
    except Exception as err:  # a bug or a file no reader anticipated: recorded, never fatal to the run
        return _failed(rec, f"unexpected error ({type(err).__name__}: {err})")
    finally:
        if memory.exists(parse_path):
            memory.rm_file(parse_path)
