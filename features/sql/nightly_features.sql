-- nightly_features: one row per person-night. The night is the local date of waking (Fitbit's dateOfSleep).
-- Reads the normalized tables for the nights listed in `feature_targets(person_id, first_night, last_night)`;
-- the caller deletes and re-inserts exactly those nights, so re-running is idempotent.
-- $first_target_night / $last_target_night (the targets' overall span) repeat the targets as constants: DuckDB can
-- then skip whole row groups by their min/max (a nightly run reads the last few nights, not the history). The
-- segments are read before this statement (features/sleep_state.py, `sleep_log_detail`), with the same bounds.
--
-- Several devices: for each data type and night exactly one source counts (`chosen`, by the person's own choice
-- in `source_choices`, else the default order registered as `default_source_rank`: features/devices.py), and
-- every value is read from that source alone, so nothing is ever summed or averaged across devices. Each data
-- type's source is kept beside its values (sleep_source, hrv_source, ...).
--
-- Columns: what each one means, its unit and its source are in features/catalog.py (rendered into docs/signals.md);
-- tests/test_catalog.py holds the migrated table to that list.
with

targets as (
    -- dates, not timestamps: comparing night_date with a DATE keeps the filter on the column itself
    select person_id, first_night::date as first_night, last_night::date as last_night from feature_targets
),

candidates as (
    -- every source with a value for a data type on a target night; `complete`: a source whose sleep can make a
    -- main sleep, or whose activity has a step count, beats one that has only naps or only activity minutes
    select s.person_id, s.night_date, 'sleep' as data_type, s.source,
        bool_or(s.is_main_sleep or s.time_in_bed_min >= $min_main_sleep_min) as complete
    from sleep_sessions s
    join targets t on s.person_id = t.person_id and s.night_date between t.first_night and t.last_night
    where s.night_date between $first_target_night and $last_target_night
    group by all
    union all
    select r.person_id, r.day, 'resting_hr', r.source, true
    from daily_resting_hr r
    join targets t on r.person_id = t.person_id and r.day between t.first_night and t.last_night
    where r.day between $first_target_night and $last_target_night
    union all
    select h.person_id, h.night_date, 'hrv', h.source, true
    from nightly_hrv h
    join targets t on h.person_id = t.person_id and h.night_date between t.first_night and t.last_night
    where h.night_date between $first_target_night and $last_target_night
    union all
    select v.person_id, v.night_date, d.data_type, v.source, true
    from nightly_vitals v
    join targets t on v.person_id = t.person_id and v.night_date between t.first_night and t.last_night
    cross join (values ('breathing_rate'), ('spo2'), ('skin_temp')) d(data_type)
    where v.night_date between $first_target_night and $last_target_night
        and case d.data_type when 'breathing_rate' then v.breathing_rate_brpm is not null
                             when 'spo2' then v.spo2_avg_pct is not null
                             else v.skin_temp_deviation_c is not null end
    union all
    select a.person_id, a.day, 'steps', a.source, a.steps is not null
    from daily_activity a
    join targets t on a.person_id = t.person_id and a.day between t.first_night and t.last_night
    where a.day between $first_target_night and $last_target_night
),

chosen as (
    -- the one source that counts for each person, night and data type
    select c.person_id, c.night_date, c.data_type, c.source
    from candidates c
    left join source_choices p on p.person_id = c.person_id and p.data_type = c.data_type
    left join default_source_rank d on d.data_type = c.data_type and d.source = c.source
    qualify row_number() over (
        partition by c.person_id, c.night_date, c.data_type
        order by c.complete desc, p.source is not distinct from c.source desc, coalesce(d.rank, 1000), c.source
    ) = 1
),

sessions as (
    select s.*,
        row_number() over (
            partition by s.person_id, s.night_date
            order by s.is_main_sleep desc, s.time_in_bed_min desc, s.source_session_id
        ) as rank_in_night
    from sleep_sessions s
    join chosen k on k.person_id = s.person_id and k.night_date = s.night_date and k.data_type = 'sleep'
        and k.source = s.source
    where s.night_date between $first_target_night and $last_target_night
),

main_sleep as (
    -- a log not marked main can stand in for the night only if it is long enough to be one
    select * from sessions
    where rank_in_night = 1 and (is_main_sleep or time_in_bed_min >= $min_main_sleep_min)
),

naps as (
    select person_id, night_date, sum(minutes_asleep) as nap_min
    from sessions
    where not (rank_in_night = 1 and (is_main_sleep or time_in_bed_min >= $min_main_sleep_min))
    group by person_id, night_date
),

sleep_detail as (
    -- the main sleep's continuity (WASO, awakenings, onset latency) and its night's 1,440-minute noon-to-noon
    -- sleep state (SRI input), computed from the segments by features/sleep_state.py for every log of a target
    -- night and registered as `sleep_log_detail`: read once with an integer log key, not aggregated into lists
    -- and joined on the log's three strings twice (~75 % of this statement's time when done here). The state
    -- holds the asleep runs of the chosen source's logs of the night and of the night before; it is NULL when the
    -- main sleep is too short to open a window, all zeros when nothing in the window is asleep.
    select m.person_id, m.night_date, d.waso_min, d.awakenings_count, d.onset_latency_min,
        d.sleep_state_bytes::bit as sleep_state_bits
    from main_sleep m
    join sleep_log_detail d using (person_id, source, source_session_id)
),

activity as (
    select a.person_id, a.day as night_date, a.source as steps_source,
        a.steps as steps_count,
        (coalesce(a.moderately_active_min, 0) + coalesce(a.very_active_min, 0))::double as active_min,
        a.sedentary_min::double as sedentary_min
    from daily_activity a
    join chosen k on k.person_id = a.person_id and k.night_date = a.day and k.data_type = 'steps'
        and k.source = a.source
    where a.day between $first_target_night and $last_target_night
),

night_tags as (
    select t.person_id, g.night_date,
        bool_or(g.tag = 'illness') as tag_illness,
        bool_or(g.tag = 'travel') as tag_travel,
        bool_or(g.tag = 'on-call') as tag_on_call,
        bool_or(g.tag = 'night-shift') as tag_night_shift,
        bool_or(g.tag = 'day-off') as tag_day_off
    from targets t
    join (
        select person_id, tag, unnest(generate_series(first_night, last_night, interval 1 day))::date as night_date
        from tags
    ) g on g.person_id = t.person_id and g.night_date between t.first_night and t.last_night
    group by t.person_id, g.night_date
),

rosters as (
    -- a person who tags days off keeps a roster: their free days are those, not weekends
    select distinct person_id from tags where tag = 'day-off'
),

resting_hr as (
    select r.person_id, r.day as night_date, r.resting_hr_bpm, r.source as resting_hr_source
    from daily_resting_hr r
    join chosen k on k.person_id = r.person_id and k.night_date = r.day and k.data_type = 'resting_hr'
        and k.source = r.source
    where r.day between $first_target_night and $last_target_night
),

hrv as (
    -- the chosen source's metric: RMSSD, or SDNN from Apple; each in its own columns, never one for the other
    select h.person_id, h.night_date, ln(h.rmssd_ms) as ln_rmssd, h.rmssd_ms, ln(h.sdnn_ms) as ln_sdnn, h.sdnn_ms,
        h.source as hrv_source
    from nightly_hrv h
    join chosen k on k.person_id = h.person_id and k.night_date = h.night_date and k.data_type = 'hrv'
        and k.source = h.source
    where h.night_date between $first_target_night and $last_target_night
),

vitals as (
    -- one row per night; each vital from the source chosen for it (one device's breathing rate may sit beside
    -- another's SpO2, never averaged with it)
    select v.person_id, v.night_date,
        any_value(v.breathing_rate_brpm) filter (where k.data_type = 'breathing_rate') as breathing_rate_brpm,
        any_value(v.source) filter (where k.data_type = 'breathing_rate') as breathing_rate_source,
        any_value(v.skin_temp_deviation_c) filter (where k.data_type = 'skin_temp') as skin_temp_deviation_c,
        any_value(v.source) filter (where k.data_type = 'skin_temp') as skin_temp_source,
        any_value(v.spo2_avg_pct) filter (where k.data_type = 'spo2') as spo2_avg_pct,
        any_value(v.source) filter (where k.data_type = 'spo2') as spo2_source
    from nightly_vitals v
    join chosen k on k.person_id = v.person_id and k.night_date = v.night_date
        and k.data_type in ('breathing_rate', 'spo2', 'skin_temp') and k.source = v.source
    where v.night_date between $first_target_night and $last_target_night
    group by v.person_id, v.night_date
),

home as (
    select person_id, tz_name as home_tz_name from persons
),

nights as (
    select person_id, night_date from sessions
    union select person_id, night_date from resting_hr
    union select person_id, night_date from hrv
    union select person_id, night_date from vitals
    union select person_id, night_date from activity
),

timing as (
    select person_id, night_date,
        epoch((start_utc + to_minutes(start_utc_offset_min)) - night_date::timestamp) / 60.0 as bedtime_min,
        epoch((end_utc + to_minutes(end_utc_offset_min)) - night_date::timestamp) / 60.0 as wake_min
    from main_sleep
),

final as (
    select
        n.person_id,
        n.night_date,
        m.source as sleep_source,
        m.log_type,
        m.minutes_asleep::double as tst_min,
        m.time_in_bed_min::double as time_in_bed_min,
        -- one formula for every source: Fitbit's own stage-log "efficiency" uses another and is not used
        100.0 * m.minutes_asleep / nullif(m.time_in_bed_min, 0) as efficiency_pct,
        -- a log without segments (some exports) has only the source's own totals
        coalesce(sd.waso_min, m.minutes_awake::double) as waso_min,
        coalesce(sd.onset_latency_min, m.minutes_to_fall_asleep::double) as onset_latency_min,
        sd.awakenings_count::integer as awakenings_count,
        tm.bedtime_min,
        tm.wake_min,
        -- one continuous axis across midnight: averaging 23:50 and 00:10 gives 00:00, never noon
        (tm.bedtime_min + tm.wake_min) / 2 as midsleep_min,
        ((tm.bedtime_min + tm.wake_min) / 2 + 1440) % 1440 as midsleep_clock_min,
        coalesce(naps.nap_min, 0)::double as nap_min,
        r.resting_hr_bpm,
        h.ln_rmssd,
        h.rmssd_ms,
        h.ln_sdnn,
        h.sdnn_ms,
        v.breathing_rate_brpm,
        v.skin_temp_deviation_c,
        v.spo2_avg_pct,
        a.steps_count,
        a.active_min,
        a.sedentary_min,
        -- unknown (NULL) without a step count: some exports carry activity minutes but no steps. The 10 h wear
        -- rule (Troiano 2008) needs minute heart-rate data, which no connector delivers: steps part only
        case when a.steps_count is not null then
            a.steps_count >= $min_valid_steps and coalesce(a.sedentary_min, 0) < 1440
        end as valid_activity_day,
        sd.sleep_state_bits,
        coalesce(tg.tag_illness, false) as tag_illness,
        coalesce(tg.tag_travel, false) as tag_travel,
        coalesce(tg.tag_on_call, false) as tag_on_call,
        coalesce(tg.tag_night_shift, false) as tag_night_shift,
        coalesce(tg.tag_day_off, false) as tag_day_off,
        case when ro.person_id is not null then coalesce(tg.tag_day_off, false)
             else isodow(n.night_date) >= 6 end as free_day,
        case when coalesce(tg.tag_night_shift, false) and m.person_id is not null then true
             else (tm.bedtime_min + tm.wake_min) / 2 between $day_sleep_from_min and $day_sleep_to_min end as day_sleep,
        coalesce(m.tz_name <> home.home_tz_name, false) as away_from_home,
        coalesce(m.time_in_bed_min >= $min_main_sleep_min, false) as valid_night,
        r.resting_hr_source,
        h.hrv_source,
        v.breathing_rate_source,
        v.spo2_source,
        v.skin_temp_source,
        a.steps_source
    from nights n
    left join main_sleep m using (person_id, night_date)
    left join timing tm using (person_id, night_date)
    left join sleep_detail sd using (person_id, night_date)
    left join naps using (person_id, night_date)
    left join resting_hr r using (person_id, night_date)
    left join hrv h using (person_id, night_date)
    left join vitals v using (person_id, night_date)
    left join activity a using (person_id, night_date)
    left join night_tags tg using (person_id, night_date)
    left join rosters ro using (person_id)
    left join home using (person_id)
)

select * from final
