-- several devices per person (issue 18): which sources a person has, which one they chose per data type, and,
-- on every feature night, the source each value came from (provenance).
-- A person's sources. persons.source stays their first (primary) source: the one the nightly run syncs first
-- and the one enrolment set; every source is listed here, the primary included.
CREATE TABLE person_sources (
    person_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    added_at TIMESTAMP NOT NULL,      -- UTC
    PRIMARY KEY (person_id, source)
);
INSERT INTO person_sources SELECT person_id, source, enrolled_at FROM persons;
-- A person's own choice of the source that counts for one data type (features/devices.py: DATA_TYPES), over the
-- default order. Applies to the nights computed after it was made (the next rebuild recomputes them all).
CREATE TABLE source_choices (
    person_id VARCHAR NOT NULL,
    data_type VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    chosen_at TIMESTAMP NOT NULL,     -- UTC
    PRIMARY KEY (person_id, data_type)
);
-- nightly_features: the main sleep's source is now named for its data type, and each other data type gets its own
ALTER TABLE nightly_features RENAME COLUMN source TO sleep_source;
ALTER TABLE nightly_features ADD COLUMN resting_hr_source VARCHAR;
ALTER TABLE nightly_features ADD COLUMN hrv_source VARCHAR;
ALTER TABLE nightly_features ADD COLUMN breathing_rate_source VARCHAR;
ALTER TABLE nightly_features ADD COLUMN spo2_source VARCHAR;
ALTER TABLE nightly_features ADD COLUMN skin_temp_source VARCHAR;
ALTER TABLE nightly_features ADD COLUMN steps_source VARCHAR;
