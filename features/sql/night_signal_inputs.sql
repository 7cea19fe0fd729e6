-- night_signal_inputs: what the signal step's windows read (features/windows.py), one row per night, person by
-- person in night order: each night read for `signal_targets(person_id, person_index, first_night,
-- last_night)`, from
-- $read_from_days before each person's first target (Thresholds.signal_lookback_days: the first target's
-- baseline reaches 66 days back, and those nights' travel context 3 more). A plain read, no windows: the travel
-- context and short-sleep runs, the rolling windows and the baselines are computed from it in compiled kernels
-- (with the SRI day pairs of sri_day_pairs.sql); night_signals.sql then scores the target nights and decides the
-- flags. Nights are named by the person's place
-- among the targets (person_index) and a day number, not by strings: the kernels group by integers, and every
-- column read costs its share of the sort and of the copy into Arrow.
-- $first_target_night / $last_target_night: the targets' overall span (for skipping row groups).
with

targets as (
    -- dates, not timestamps: comparing night_date with a DATE keeps the filter on the column itself
    select person_id, person_index, first_night::date as first_night, last_night::date as last_night
    from signal_targets
),

runs_before as (
    -- the short-sleep run stored for the night before each person's first target (final: nothing before the
    -- targets changed); a run that was going then continues from it, however long it is
    select s.person_id, s.short_sleep_run_nights as run_before_targets
    from night_signals s
    join targets t on s.person_id = t.person_id and s.night_date = t.first_night - 1
    where s.night_date between $first_target_night - 1 and $last_target_night
)

select t.person_index, (t.first_night - date '2000-01-01')::integer as first_target_day,
    (f.night_date - date '2000-01-01')::integer as day_number,
    f.night_date >= t.first_night as is_target,
    f.away_from_home or f.tag_travel as travel_tonight,
    f.valid_night, f.day_sleep, f.free_day, f.tag_illness, f.tag_travel, f.tag_on_call,
    f.tst_min, f.efficiency_pct, f.waso_min, f.onset_latency_min, f.awakenings_count::double as awakenings_count,
    f.resting_hr_bpm, f.ln_rmssd, f.rmssd_ms, f.breathing_rate_brpm, f.spo2_avg_pct, f.bedtime_min, f.midsleep_min,
    f.sleep_source, f.resting_hr_source, f.hrv_source, f.breathing_rate_source, f.spo2_source,
    coalesce(r.run_before_targets, 0) as run_before_targets
from nightly_features f
join targets t on f.person_id = t.person_id
    and f.night_date between t.first_night - $read_from_days and t.last_night
left join runs_before r on r.person_id = f.person_id
-- the same span as constants, so DuckDB skips row groups by their min/max
where f.night_date between $first_target_night - $read_from_days and $last_target_night
order by t.person_index, f.night_date
