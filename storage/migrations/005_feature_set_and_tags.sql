-- full feature set (issue 4) and person tags
-- nightly_features and night_signals are derived tables: they are dropped and recreated with the new columns
-- here, and `emberwatch rebuild` recomputes them from the normalized tables (nothing is lost).
CREATE TABLE tags (
    person_id VARCHAR NOT NULL,
    tag VARCHAR NOT NULL,             -- illness | travel | on-call | night-shift | day-off
    first_night DATE NOT NULL,        -- wake dates, inclusive
    last_night DATE NOT NULL,
    tagged_at TIMESTAMP NOT NULL,
    PRIMARY KEY (person_id, tag, first_night)
);
DROP TABLE nightly_features;
CREATE TABLE nightly_features (
    person_id VARCHAR NOT NULL,
    night_date DATE NOT NULL,
    source VARCHAR,
    log_type VARCHAR,
    tst_min DOUBLE,
    time_in_bed_min DOUBLE,
    efficiency_pct DOUBLE,
    waso_min DOUBLE,
    onset_latency_min DOUBLE,
    awakenings_count INTEGER,
    bedtime_min DOUBLE,
    wake_min DOUBLE,
    midsleep_min DOUBLE,
    midsleep_clock_min DOUBLE,
    nap_min DOUBLE,
    resting_hr_bpm DOUBLE,
    ln_rmssd DOUBLE,
    rmssd_ms DOUBLE,
    breathing_rate_brpm DOUBLE,
    skin_temp_deviation_c DOUBLE,
    spo2_avg_pct DOUBLE,
    steps_count INTEGER,
    active_min DOUBLE,
    sedentary_min DOUBLE,
    valid_activity_day BOOLEAN,
    sleep_state_bits BIT,
    tag_illness BOOLEAN NOT NULL,
    tag_travel BOOLEAN NOT NULL,
    tag_on_call BOOLEAN NOT NULL,
    tag_night_shift BOOLEAN NOT NULL,
    tag_day_off BOOLEAN NOT NULL,
    free_day BOOLEAN NOT NULL,
    day_sleep BOOLEAN,
    away_from_home BOOLEAN NOT NULL,
    valid_night BOOLEAN NOT NULL,
    PRIMARY KEY (person_id, night_date)
);
DROP TABLE night_signals;
CREATE TABLE night_signals (
    person_id VARCHAR NOT NULL,
    night_date DATE NOT NULL,
    valid_night BOOLEAN NOT NULL,
    travel_context BOOLEAN NOT NULL,
    baseline_excluded BOOLEAN NOT NULL,
    baseline_valid_nights INTEGER NOT NULL,
    warming_up BOOLEAN NOT NULL,
    tst_z DOUBLE, efficiency_z DOUBLE, waso_z DOUBLE, onset_latency_z DOUBLE, awakenings_z DOUBLE,
    resting_hr_delta_bpm DOUBLE, ln_rmssd_z DOUBLE, breathing_rate_delta_brpm DOUBLE, spo2_delta_pct DOUBLE,
    tst_sd_14n_min DOUBLE, tst_sd_band INTEGER, onset_sd_14n_min DOUBLE, onset_sd_band INTEGER,
    sri_14n DOUBLE, social_jetlag_28n_min DOUBLE, short_sleep_run_nights INTEGER,
    waso_long_nights_7n INTEGER, onset_long_nights_7n INTEGER, continuity_flag BOOLEAN,
    rhr_elevated_2n BOOLEAN,
    ln_rmssd_7n_mean DOUBLE, ln_rmssd_7n_nights INTEGER, hrv_below_band BOOLEAN,
    rmssd_cv_7n_pct DOUBLE,
    bedtime_ewma_min DOUBLE, bedtime_drift_min DOUBLE, midsleep_ewma_min DOUBLE, midsleep_drift_min DOUBLE,
    sleep_deviates BOOLEAN,
    recovery_deviates BOOLEAN,
    illness_deviates BOOLEAN,
    sleep_flag BOOLEAN NOT NULL,
    recovery_flag BOOLEAN NOT NULL,
    sleep_strong_flag BOOLEAN NOT NULL,
    recovery_strong_flag BOOLEAN NOT NULL,
    illness_flag BOOLEAN NOT NULL,
    PRIMARY KEY (person_id, night_date)
);
