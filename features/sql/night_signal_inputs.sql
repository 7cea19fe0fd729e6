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
),

devices as (
    -- every device named in the span read (each column's distinct values: a few ms): the nights carry each source
    -- as its place in this list (from 0; -1: none), a small integer instead of a string in every row the read sorts
    -- and hands over, and that the kernels compare
    select list(source order by source) as names
    from (
        select sleep_source as source from nightly_features
        where night_date between $first_target_night - $read_from_days and $last_target_night
        union select resting_hr_source from nightly_features
        where night_date between $first_target_night - $read_from_days and $last_target_night
        union select hrv_source from nightly_features
        where night_date between $first_target_night - $read_from_days and $last_target_night
        union select breathing_rate_source from nightly_features
        where night_date between $first_target_night - $read_from_days and $last_target_night
        union select spo2_source from nightly_features
        where night_date between $first_target_night - $read_from_days and $last_target_night
    )
    where source is not null
)

select t.person_index, (t.first_night - date '2000-01-01')::integer as first_target_day,
    (f.night_date - date '2000-01-01')::integer as day_number,
    f.night_date >= t.first_night as is_target,
    f.away_from_home or f.tag_travel as travel_tonight,
    f.valid_night, f.day_sleep, f.free_day, f.tag_illness, f.tag_travel, f.tag_on_call,
    -- measurements with NaN for NULL, what the kernels count as no value (Python has no NULLs to fill)
    coalesce(f.tst_min, 'nan') as tst_min, coalesce(f.efficiency_pct, 'nan') as efficiency_pct,
    coalesce(f.waso_min, 'nan') as waso_min, coalesce(f.onset_latency_min, 'nan') as onset_latency_min,
    coalesce(f.awakenings_count::double, 'nan') as awakenings_count,
    coalesce(f.resting_hr_bpm, 'nan') as resting_hr_bpm, coalesce(f.ln_rmssd, 'nan') as ln_rmssd,
    coalesce(f.rmssd_ms, 'nan') as rmssd_ms, coalesce(f.ln_sdnn, 'nan') as ln_sdnn,
    coalesce(f.breathing_rate_brpm, 'nan') as breathing_rate_brpm,
    coalesce(f.spo2_avg_pct, 'nan') as spo2_avg_pct, coalesce(f.bedtime_min, 'nan') as bedtime_min,
    coalesce(f.midsleep_min, 'nan') as midsleep_min,
    coalesce(list_position(d.names, f.sleep_source) - 1, -1)::smallint as sleep_source,
    coalesce(list_position(d.names, f.resting_hr_source) - 1, -1)::smallint as resting_hr_source,
    coalesce(list_position(d.names, f.hrv_source) - 1, -1)::smallint as hrv_source,
    coalesce(list_position(d.names, f.breathing_rate_source) - 1, -1)::smallint as breathing_rate_source,
    coalesce(list_position(d.names, f.spo2_source) - 1, -1)::smallint as spo2_source,
    coalesce(r.run_before_targets, 0) as run_before_targets
from nightly_features f
join targets t on f.person_id = t.person_id
    and f.night_date between t.first_night - $read_from_days and t.last_night
left join runs_before r on r.person_id = f.person_id
cross join devices d
-- the same span as constants, so DuckDB skips row groups by their min/max
where f.night_date between $first_target_night - $read_from_days and $last_target_night
order by t.person_index, f.night_date
