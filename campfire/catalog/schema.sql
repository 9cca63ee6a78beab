-- campfire catalog schema: one file shared by the pipeline (demo builder), the server
-- and the client's synced copy (<root>/meta/campfire.db). Values are stored lower-case
-- (fields, observations, tags), gratings/filters upper-case, program slugs as given.
-- Schema version 3 (campfire.catalog.schema.SCHEMA_VERSION): spectra carry copies of their
-- object's field, redshift, redshift_quality and has_photometry, kept equal by the triggers
-- at the end (version 2); reviewers' inspections are records, and the inspection fields an
-- object shows are derived from the ones a caller may see (version 3);
-- campfire.catalog.schema.upgrade_catalog() brings an older file up to date.
PRAGMA foreign_keys = ON;
-- 16 KiB pages: a scan of a million spectra rows takes ~30 % less time than with 4 KiB
-- (fewer pages to fetch and parse). Only a new, empty file takes it (or a VACUUM).
PRAGMA page_size = 16384;

CREATE TABLE IF NOT EXISTS archive_meta (
    key   TEXT PRIMARY KEY,      -- schema_version, owner (pipeline|server|client), last_synced,
    value TEXT NOT NULL          -- sync_cursor, server_url, catalog_version, built_with, ...
);

CREATE TABLE IF NOT EXISTS programs (
    program_id   INTEGER PRIMARY KEY,            -- JWST proposal ID
    slug         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    program_name TEXT NOT NULL,
    pi_name      TEXT NOT NULL,
    is_public    INTEGER NOT NULL CHECK (is_public IN (0, 1))
);

CREATE TABLE IF NOT EXISTS observations (
    observation TEXT PRIMARY KEY,                -- e.g. ember_uds_p4
    program_id  INTEGER NOT NULL REFERENCES programs (program_id),
    field       TEXT NOT NULL,
    ra          REAL,                            -- pointing centre [deg]
    dec         REAL,
    pa_v3       REAL,                            -- position angle [deg]
    observed_at TEXT
);

CREATE TABLE IF NOT EXISTS objects (
    object_id          TEXT PRIMARY KEY,         -- <observation>_<source_id> of the first observation
    field              TEXT NOT NULL,
    ra                 REAL NOT NULL,
    dec                REAL NOT NULL,
    cx                 REAL NOT NULL,            -- unit vector: exact cone distance without trig in SQL
    cy                 REAL NOT NULL,
    cz                 REAL NOT NULL,
    redshift           REAL,                     -- best: inspected if graded > 1 else auto
    redshift_auto      REAL,
    redshift_inspected REAL,                     -- consensus of all inspections (per visibility set:
    redshift_quality   INTEGER NOT NULL DEFAULT 0 CHECK (redshift_quality BETWEEN 0 AND 4),  -- aggregates)
    has_photometry     INTEGER NOT NULL DEFAULT 0,
    phot_catalog       TEXT,
    photo_z            REAL,
    photo_z_err_lo     REAL,
    photo_z_err_hi     REAL,
    updated_at         TEXT NOT NULL             -- ISO time; drives incremental sync
);
CREATE INDEX IF NOT EXISTS objects_field ON objects (field);
CREATE INDEX IF NOT EXISTS objects_redshift ON objects (redshift);
-- field + redshift drive the common science selections from objects into spectra
CREATE INDEX IF NOT EXISTS objects_field_redshift ON objects (field, redshift);
CREATE INDEX IF NOT EXISTS objects_updated ON objects (updated_at);

-- cone search index: id = objects.rowid, boxes in degrees
CREATE VIRTUAL TABLE IF NOT EXISTS objects_rtree USING rtree (id, ra_min, ra_max, dec_min, dec_max);

CREATE TABLE IF NOT EXISTS spectra (
    spectrum_id       TEXT PRIMARY KEY,          -- <observation>_<grating>_<filter>_<source_id>
    object_id         TEXT NOT NULL REFERENCES objects (object_id),
    target_id         TEXT NOT NULL,             -- <observation>_<source_id>
    observation       TEXT NOT NULL REFERENCES observations (observation),
    program_id        INTEGER NOT NULL REFERENCES programs (program_id),
    grating           TEXT NOT NULL,
    filter            TEXT NOT NULL,
    fits_path         TEXT NOT NULL,             -- relative to the archive root
    signal_to_noise   REAL,
    exposure_time     REAL,
    reduction_version TEXT,
    redshift_auto     REAL,
    dq_flags          INTEGER NOT NULL DEFAULT 0,
    file_hash         TEXT,                      -- sha256 of the FITS file
    file_size         INTEGER,
    n_pix             INTEGER,
    wave_min          REAL,
    wave_max          REAL,
    updated_at        TEXT NOT NULL,
    object_field            TEXT,            -- copies of the object's field, redshift, redshift_quality
    object_redshift         REAL,            -- and has_photometry (the triggers at the end keep them
    object_redshift_quality INTEGER,         -- equal): query_spectra filters on them without a join.
    object_has_photometry   INTEGER,         -- NULL only while the object is missing
    redshift_auto_lo         REAL,           -- the 68% interval of redshift_auto (16th-84th
    redshift_auto_hi         REAL,           -- percentiles of p(z)) and its confidence (schema 4;
    redshift_auto_confidence REAL            -- NULL where the fit predates it or did not run)
);
CREATE INDEX IF NOT EXISTS spectra_object ON spectra (object_id);
CREATE INDEX IF NOT EXISTS spectra_grating ON spectra (grating, signal_to_noise);
-- one grating in spectrum_id order (query_spectra's default sort): its rows only, no sort
CREATE INDEX IF NOT EXISTS spectra_grating_id ON spectra (grating, spectrum_id);
CREATE INDEX IF NOT EXISTS spectra_observation ON spectra (observation);
CREATE INDEX IF NOT EXISTS spectra_program ON spectra (program_id);
CREATE INDEX IF NOT EXISTS spectra_snr ON spectra (signal_to_noise);
CREATE INDEX IF NOT EXISTS spectra_updated ON spectra (updated_at);
-- field + redshift drive, then the columns the other filters of query_spectra test: SQLite tests them
-- in the index and reads only the rows that pass. It replaces spectra_field_redshift (object_field,
-- object_redshift): upgrade_catalog drops that one once this one is built; the planner uses either
CREATE INDEX IF NOT EXISTS spectra_field_redshift_filters ON spectra (object_field, object_redshift,
    object_redshift_quality, grating, signal_to_noise, dq_flags, program_id, object_has_photometry);
CREATE INDEX IF NOT EXISTS spectra_redshift ON spectra (object_redshift);

-- Cross-spectrum aggregates, materialised per visibility set so a non-member never sees
-- a proprietary program through them. visibility = '*' (all programs), '' (public only)
-- or the comma-joined sorted ids of the visible proprietary programs. The inspection fields
-- are the consensus of the inspections this set may see (campfire.catalog.consensus): a
-- grade resting on a proprietary spectrum never shows outside its program.
CREATE TABLE IF NOT EXISTS object_aggregates (
    visibility         TEXT NOT NULL,
    object_id          TEXT NOT NULL,
    n_spectra          INTEGER NOT NULL,
    max_snr            REAL,
    max_exposure_time  REAL,
    programs           TEXT NOT NULL,            -- comma-joined slugs, sorted
    gratings           TEXT NOT NULL,            -- comma-joined, sorted
    redshift           REAL,                     -- best: inspected if graded > 1 else objects.redshift_auto
    redshift_inspected REAL,
    redshift_quality   INTEGER NOT NULL DEFAULT 0,
    inspection_state   TEXT NOT NULL DEFAULT 'none',  -- none|single|consensus|conflict|resolved
    n_reviewers        INTEGER NOT NULL DEFAULT 0,
    inspected_at       TEXT,                     -- recorded_at of the latest visible inspection
    PRIMARY KEY (visibility, object_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS object_aggregates_snr ON object_aggregates (visibility, max_snr);
CREATE INDEX IF NOT EXISTS object_aggregates_redshift ON object_aggregates (visibility, redshift);

-- One row per reviewer's judgement of an object, never changed or deleted (the triggers at
-- the end refuse it): a new judgement is a new row. campfire.catalog.inspections writes and
-- reads them; an inspection is visible to a caller who may see every spectrum it rests on.
CREATE TABLE IF NOT EXISTS inspections (
    inspection_id     INTEGER PRIMARY KEY,
    object_id         TEXT NOT NULL,
    reviewer          TEXT NOT NULL,             -- account name, or e.g. dja:<initials> for imported grades
    redshift          REAL,
    quality           INTEGER NOT NULL CHECK (quality BETWEEN 0 AND 4),
    comment           TEXT NOT NULL DEFAULT '',
    issues            INTEGER NOT NULL DEFAULT 0,    -- 1 BAD_SPECTRUM, 2 WRONG_EXTRACTION, 4 CONTAMINATED
    spectra_seen      TEXT NOT NULL,             -- JSON [{"spectrum_id": ..., "sha256": ...}, ...]
    resolves_conflict INTEGER NOT NULL DEFAULT 0 CHECK (resolves_conflict IN (0, 1)),
    created_at        TEXT NOT NULL,             -- ISO time (UTC) of the judgement (imported grades: their own)
    recorded_at       TEXT NOT NULL              -- ISO time (UTC) it entered this catalog
);
CREATE INDEX IF NOT EXISTS inspections_object ON inspections (object_id, inspection_id);
CREATE INDEX IF NOT EXISTS inspections_reviewer ON inspections (reviewer, object_id);

CREATE TABLE IF NOT EXISTS photometry (
    object_id  TEXT NOT NULL REFERENCES objects (object_id),
    band       TEXT NOT NULL,                    -- lower-case filter name, e.g. f444w
    flux       REAL NOT NULL,                    -- uJy
    flux_err   REAL NOT NULL,                    -- uJy
    wavelength REAL NOT NULL,                    -- pivot [um]
    PRIMARY KEY (object_id, band)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS tags (
    tag_id      INTEGER PRIMARY KEY,
    slug        TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL CHECK (kind IN ('system', 'private', 'shared')),
    owner       TEXT,                            -- NULL for system tags
    updated_at  TEXT NOT NULL,
    UNIQUE (slug, owner)
);
CREATE TABLE IF NOT EXISTS object_tags (
    tag_id    INTEGER NOT NULL REFERENCES tags (tag_id) ON DELETE CASCADE,
    object_id TEXT NOT NULL REFERENCES objects (object_id),
    PRIMARY KEY (tag_id, object_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS object_tags_object ON object_tags (object_id);

-- Files present under <root>/products with the hash they had when written/downloaded.
-- local_path = <root>/<fits_path> for these; stale = sha256 != spectra.file_hash.
CREATE TABLE IF NOT EXISTS local_files (
    spectrum_id   TEXT PRIMARY KEY,
    sha256        TEXT NOT NULL,
    size          INTEGER NOT NULL,
    downloaded_at TEXT NOT NULL
);

-- Ground truth of a generated (demo) archive, for tests that check recovery. Only the
-- demo builder writes these; see campfire/demo/README.md for their definitions.
CREATE TABLE IF NOT EXISTS truth_objects (
    object_id   TEXT PRIMARY KEY,
    z_true      REAL NOT NULL,
    sed_type    TEXT NOT NULL,                   -- sf, hae, lae, qg, blagn, lrd
    norm_fnu    REAL NOT NULL,                   -- continuum f_nu [uJy] at 4.0 um observed
    r_e         REAL NOT NULL,                   -- half-light radius [arcsec]
    sersic_n    REAL NOT NULL,
    axis_ratio  REAL NOT NULL,
    pa          REAL NOT NULL,                   -- major-axis PA [deg E of N]
    sed_params  TEXT NOT NULL,                   -- JSON of campfire.demo.sed.SEDParams
    sed_file    TEXT NOT NULL                    -- truth/objects/<object_id>.npz (relative to the root)
);
CREATE TABLE IF NOT EXISTS truth_spectra (
    spectrum_id      TEXT PRIMARY KEY,
    object_id        TEXT NOT NULL,
    slitloss_model   TEXT NOT NULL,              -- gaussian_aperture_v1 (campfire.demo.instrument.slit_loss)
    src_sigma        REAL NOT NULL,              -- source Gaussian sigma [arcsec]
    dx               REAL NOT NULL,              -- source offset from the shutter centre [arcsec]
    dy               REAL NOT NULL,
    throughput       REAL NOT NULL,
    psf_scale        REAL NOT NULL,
    slitloss_1um     REAL, slitloss_3um REAL, slitloss_5um REAL,
    gap_min          REAL, gap_max REAL,         -- wavelengths [um] lost to the detector gap (NULL: none)
    cover_min        REAL, cover_max REAL,       -- finite wavelength span [um]
    det_start        REAL, shift REAL,
    contamination    TEXT, background TEXT,      -- JSON parameters when injected
    stuck_neighbours TEXT NOT NULL DEFAULT '',   -- slitlet rows (-1,1) stuck closed
    truth_file       TEXT NOT NULL               -- truth/spectra/<spectrum_id>.npz
);
CREATE TABLE IF NOT EXISTS truth_photometry (
    object_id TEXT NOT NULL,
    band      TEXT NOT NULL,
    flux_true REAL NOT NULL,                     -- the true SED through the band [uJy]
    PRIMARY KEY (object_id, band)
) WITHOUT ROWID;

-- Keep the spectra's copies of their object's columns equal to the object's, whoever
-- writes (pipeline, server, sync, a hand-written UPDATE). A bulk load that creates the
-- triggers after its rows (sync snapshots) fills the copies in finalize_catalog().
CREATE TRIGGER IF NOT EXISTS spectra_object_copy_insert AFTER INSERT ON spectra
BEGIN
    UPDATE spectra SET (object_field, object_redshift, object_redshift_quality, object_has_photometry) =
        (SELECT o.field, o.redshift, o.redshift_quality, o.has_photometry FROM objects o WHERE o.object_id = NEW.object_id)
    WHERE rowid = NEW.rowid;
END;
CREATE TRIGGER IF NOT EXISTS spectra_object_copy_move AFTER UPDATE OF object_id ON spectra
BEGIN
    UPDATE spectra SET (object_field, object_redshift, object_redshift_quality, object_has_photometry) =
        (SELECT o.field, o.redshift, o.redshift_quality, o.has_photometry FROM objects o WHERE o.object_id = NEW.object_id)
    WHERE rowid = NEW.rowid;
END;
CREATE TRIGGER IF NOT EXISTS objects_copy_insert AFTER INSERT ON objects
BEGIN
    UPDATE spectra SET object_field = NEW.field, object_redshift = NEW.redshift,
        object_redshift_quality = NEW.redshift_quality, object_has_photometry = NEW.has_photometry
    WHERE object_id = NEW.object_id;
END;
CREATE TRIGGER IF NOT EXISTS objects_copy_update AFTER UPDATE OF object_id, field, redshift, redshift_quality, has_photometry ON objects
WHEN NEW.object_id IS NOT OLD.object_id OR NEW.field IS NOT OLD.field OR NEW.redshift IS NOT OLD.redshift
    OR NEW.redshift_quality IS NOT OLD.redshift_quality OR NEW.has_photometry IS NOT OLD.has_photometry
BEGIN
    UPDATE spectra SET object_field = NEW.field, object_redshift = NEW.redshift,
        object_redshift_quality = NEW.redshift_quality, object_has_photometry = NEW.has_photometry
    WHERE object_id = NEW.object_id;
END;
CREATE TRIGGER IF NOT EXISTS objects_copy_delete AFTER DELETE ON objects
BEGIN
    UPDATE spectra SET object_field = NULL, object_redshift = NULL, object_redshift_quality = NULL,
        object_has_photometry = NULL
    WHERE object_id = OLD.object_id;
END;
CREATE TRIGGER IF NOT EXISTS inspections_keep_history BEFORE UPDATE ON inspections
BEGIN
    SELECT RAISE(ABORT, 'inspections are history: add a new inspection instead of changing one');
END;
CREATE TRIGGER IF NOT EXISTS inspections_keep_rows BEFORE DELETE ON inspections
BEGIN
    SELECT RAISE(ABORT, 'inspections are history: they are never deleted');
END;
