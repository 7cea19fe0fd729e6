-- initial schema
CREATE TABLE persons (
    person_id VARCHAR PRIMARY KEY,
    email VARCHAR NOT NULL,
    tz_name VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    source_config VARCHAR,            -- JSON: how to reach this person's data (no secrets)
    status VARCHAR NOT NULL DEFAULT 'active',   -- active | paused
    detail_level VARCHAR NOT NULL DEFAULT 'minimal',
    enrolled_at TIMESTAMP NOT NULL
);
CREATE TABLE raw_payloads (
    person_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    resource VARCHAR NOT NULL,
    payload_sha256 VARCHAR NOT NULL,
    window_start DATE,
    window_end DATE,
    fetched_at TIMESTAMP NOT NULL,    -- UTC; first time this exact payload was seen
    body BLOB NOT NULL,
    PRIMARY KEY (person_id, source, resource, payload_sha256)
);
CREATE TABLE quarantine (
    person_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    resource VARCHAR NOT NULL,
    payload_sha256 VARCHAR NOT NULL,
    locator VARCHAR NOT NULL,         -- which item of the payload ('' = the whole payload)
    reason VARCHAR NOT NULL,
    quarantined_at TIMESTAMP NOT NULL,
    PRIMARY KEY (person_id, payload_sha256, locator)
);
CREATE TABLE sleep_sessions (
    person_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    source_session_id VARCHAR NOT NULL,
    night_date DATE NOT NULL,
    start_utc TIMESTAMP NOT NULL,
    end_utc TIMESTAMP NOT NULL,
    tz_name VARCHAR NOT NULL,
    start_utc_offset_min INTEGER NOT NULL,
    end_utc_offset_min INTEGER NOT NULL,
    is_main_sleep BOOLEAN NOT NULL,
    log_type VARCHAR NOT NULL,
    minutes_asleep INTEGER NOT NULL,
    minutes_awake INTEGER NOT NULL,
    minutes_to_fall_asleep INTEGER NOT NULL,
    time_in_bed_min INTEGER NOT NULL,
    PRIMARY KEY (person_id, source, source_session_id)
);
CREATE TABLE sleep_segments (
    person_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    source_session_id VARCHAR NOT NULL,
    seg_start_utc TIMESTAMP NOT NULL,
    duration_s INTEGER NOT NULL,
    stage VARCHAR NOT NULL,
    PRIMARY KEY (person_id, source, source_session_id, seg_start_utc)
);
CREATE TABLE daily_activity (
    person_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    day DATE NOT NULL,
    steps INTEGER,
    sedentary_min INTEGER,
    lightly_active_min INTEGER,
    moderately_active_min INTEGER,
    very_active_min INTEGER,
    PRIMARY KEY (person_id, source, day)
);
CREATE TABLE daily_resting_hr (
    person_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    day DATE NOT NULL,
    resting_hr_bpm DOUBLE NOT NULL,
    PRIMARY KEY (person_id, source, day)
);
CREATE TABLE nightly_hrv (
    person_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    night_date DATE NOT NULL,
    rmssd_ms DOUBLE NOT NULL,
    deep_rmssd_ms DOUBLE,
    PRIMARY KEY (person_id, source, night_date)
);
CREATE TABLE nightly_vitals (
    person_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    night_date DATE NOT NULL,
    spo2_avg_pct DOUBLE,
    breathing_rate_brpm DOUBLE,
    skin_temp_deviation_c DOUBLE,
    PRIMARY KEY (person_id, source, night_date)
);
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
    nap_min DOUBLE,
    resting_hr_bpm DOUBLE,
    ln_rmssd DOUBLE,
    breathing_rate_brpm DOUBLE,
    skin_temp_deviation_c DOUBLE,
    spo2_avg_pct DOUBLE,
    day_sleep BOOLEAN,
    away_from_home BOOLEAN NOT NULL,
    valid_night BOOLEAN NOT NULL,
    PRIMARY KEY (person_id, night_date)
);
CREATE TABLE night_signals (
    person_id VARCHAR NOT NULL,
    night_date DATE NOT NULL,
    valid_night BOOLEAN NOT NULL,
    travel_context BOOLEAN NOT NULL,
    baseline_valid_nights INTEGER NOT NULL,
    warming_up BOOLEAN NOT NULL,
    tst_z DOUBLE, efficiency_z DOUBLE, waso_z DOUBLE, onset_latency_z DOUBLE, awakenings_z DOUBLE,
    resting_hr_delta_bpm DOUBLE, ln_rmssd_z DOUBLE,
    sleep_deviates BOOLEAN,
    recovery_deviates BOOLEAN,
    illness_deviates BOOLEAN,
    sleep_flag BOOLEAN NOT NULL,
    recovery_flag BOOLEAN NOT NULL,
    illness_flag BOOLEAN NOT NULL,
    PRIMARY KEY (person_id, night_date)
);
CREATE TABLE alerts (
    person_id VARCHAR NOT NULL,
    night_date DATE NOT NULL,
    domains VARCHAR NOT NULL,
    explanation_json VARCHAR NOT NULL,
    decided_at TIMESTAMP NOT NULL,
    PRIMARY KEY (person_id, night_date)
);
CREATE TABLE email_ledger (
    person_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,            -- alert | digest
    period_key VARCHAR NOT NULL,      -- alert: night date; digest: ISO week (e.g. 2026-W35)
    message_id VARCHAR NOT NULL UNIQUE,
    status VARCHAR NOT NULL,          -- queued | sent | failed
    message_bytes BLOB,               -- kept only until sent (minimum necessary)
    queued_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error VARCHAR,
    PRIMARY KEY (person_id, kind, period_key)
);
CREATE TABLE run_failures (
    run_label VARCHAR NOT NULL,
    person_id VARCHAR NOT NULL,
    stage VARCHAR NOT NULL,
    error VARCHAR NOT NULL,           -- class and a sentence; never tokens, addresses or health values
    failed_at TIMESTAMP NOT NULL
);
