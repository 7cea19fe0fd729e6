-- sleep calibration: per-person widening of the sleep threshold where the person's own check-ins disagree with it
-- One row per person and the first night it applies to; a night uses the latest row whose applies_from is on or
-- before it (features/sql/night_signals.sql), so a rebuild gives the nights the same thresholds the nightly run
-- gave them. z_sleep_extra = 0 is a step back to the default. Decided by features/calibration.py.
CREATE TABLE sleep_calibration (
    person_id VARCHAR NOT NULL,
    applies_from DATE NOT NULL,
    z_sleep_extra DOUBLE NOT NULL,     -- robust SDs added to Thresholds.z_sleep for this person (0 .. the limit)
    checks INTEGER NOT NULL,           -- short nights (or weeks) in the look-back with the person's own report
    disagreements INTEGER NOT NULL,    -- ... of which the person said they felt as usual or better
    decided_at TIMESTAMP NOT NULL,     -- UTC
    PRIMARY KEY (person_id, applies_from)
);

-- Nights whose signals must still be recomputed after the person's steps changed (kept until they are): a run that
-- dies between storing new steps and recomputing the nights finishes the work when it runs again.
CREATE TABLE sleep_calibration_pending (
    person_id VARCHAR PRIMARY KEY,
    recompute_from DATE NOT NULL
);
