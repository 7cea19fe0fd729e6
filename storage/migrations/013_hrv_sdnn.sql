-- Apple's heart-rate variability is SDNN, not RMSSD: a night's HRV now holds the metric its source measures.
-- nightly_hrv keeps RMSSD for the sources that give it and SDNN for Apple (exactly one of the two a night and
-- source), and the features carry SDNN in columns of its own, so that no baseline, z or export ever
-- mixes the two metrics.
ALTER TABLE nightly_hrv ALTER COLUMN rmssd_ms DROP NOT NULL;
ALTER TABLE nightly_hrv ADD COLUMN sdnn_ms DOUBLE;
ALTER TABLE nightly_features ADD COLUMN sdnn_ms DOUBLE;
ALTER TABLE nightly_features ADD COLUMN ln_sdnn DOUBLE;
ALTER TABLE night_signals ADD COLUMN ln_sdnn_z DOUBLE;
