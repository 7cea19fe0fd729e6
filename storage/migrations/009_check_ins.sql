-- check-ins: the person's own reports of how they felt (a PMsys export, a CSV, the weekly email's one-tap question)
-- One row per person, day, scale and source. `report_date` is the local date the report was made on; a morning
-- report describes the night that ended that morning, whose night_date (the wake date) is the same date. A weekly
-- question's report_date is the Sunday that ends the week it asks about. Values are on the scale's own range and
-- orientation (storage/check_ins.py: SCALES); reports never feed an email by themselves.
CREATE TABLE check_ins (
    person_id VARCHAR NOT NULL,
    report_date DATE NOT NULL,
    scale VARCHAR NOT NULL,
    value DOUBLE NOT NULL,
    source VARCHAR NOT NULL,         -- 'pmsys', 'csv', 'weekly-email'
    recorded_at TIMESTAMP NOT NULL,  -- UTC: when the report was made (or imported, when the file does not say)
    PRIMARY KEY (person_id, report_date, scale, source)
);
