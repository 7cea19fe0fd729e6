-- sleep_logs: every sleep log a target night's sleep detail can read (features/sleep_state.py): the night's own
-- logs and the night before's (a night's noon-to-noon sleep-state window holds the afternoon of the night before),
-- from every source (the choice of source is made later, in nightly_features.sql).
-- Ordered by person, source and night, so that a log's device-mates of the same and the previous night are its
-- neighbours; the log's place in that order is its log_key, a plain integer name for it.
select s.person_id, s.source, s.source_session_id,
    s.night_date - date '1970-01-01' as day_number,
    s.night_date >= t.first_night as on_target_night,
    epoch_us(s.start_utc) as start_us,
    -- the window of the sleep state (SRI) this log would open as its night's main sleep: noon to noon, local
    -- time at waking
    epoch_us((s.night_date - 1)::timestamp + interval 12 hour - to_minutes(s.end_utc_offset_min))
        as state_window_start_us,
    -- only a main sleep long enough to count opens a sleep-state window
    s.time_in_bed_min >= $min_main_sleep_min as opens_state_window
from sleep_sessions s
join feature_targets t on s.person_id = t.person_id
    and s.night_date between t.first_night::date - 1 and t.last_night::date
where s.night_date between $first_target_night - 1 and $last_target_night
order by s.person_id, s.source, s.night_date, s.source_session_id
