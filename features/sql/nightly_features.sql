-- nightly_features: one row per person-night. The night is the local date of waking (Fitbit's dateOfSleep).
-- Reads the normalized tables for the nights listed in `feature_targets(person_id, first_night, last_night)`;
-- the caller deletes and re-inserts exactly those nights, so re-running is idempotent.
-- $first_target_night / $last_target_night (the targets' overall span) and $segments_from_utc / $segments_to_utc (a
-- day before the earliest start and after the latest end of a log in it; a log's segments lie inside it) repeat
-- the targets as constants: DuckDB can then skip whole row groups by their min/max (a nightly run reads the last
-- few nights, not the history; a rebuild's window of dates, only that window's segments).
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

segments as (
    select g.person_id, m.night_date, g.seg_start_utc, g.duration_s,
        g.stage in ('wake', 'awake') as is_wake,
        g.stage <> 'restless' and g.stage not in ('wake', 'awake') as is_sleep,
        m.start_utc as session_start_utc
    from sleep_segments g
    join main_sleep m using (person_id, source, source_session_id)
    where g.seg_start_utc between $segments_from_utc and $segments_to_utc
),

sleep_bounds as (
    select person_id, night_date,
        min(seg_start_utc) filter (where is_sleep) as first_sleep_utc,
        max(seg_start_utc + to_seconds(duration_s)) filter (where is_sleep) as last_sleep_end_utc,
        any_value(session_start_utc) as session_start_utc
    from segments
    group by person_id, night_date
),

continuity as (
    select g.person_id, g.night_date,
        sum(g.duration_s) filter (
            where g.is_wake and g.seg_start_utc >= b.first_sleep_utc and g.seg_start_utc < b.last_sleep_end_utc
        ) / 60.0 as waso_min,
        count(*) filter (
            where g.is_wake and g.duration_s >= 300
              and g.seg_start_utc >= b.first_sleep_utc and g.seg_start_utc < b.last_sleep_end_utc
        ) as awakenings_count,
        epoch(any_value(b.first_sleep_utc) - any_value(b.session_start_utc)) / 60.0 as onset_latency_min
    from segments g
    join sleep_bounds b using (person_id, night_date)
    group by g.person_id, g.night_date
),

window_sessions as (
    -- every log that can fall in a night's noon-to-noon window: the night's own, and the night before's;
    -- log_key is a plain integer name for the log, so sorting its segments compares one number, not three strings
    select s.person_id, s.source, s.source_session_id, s.night_date, row_number() over () as log_key
    from sleep_sessions s
    join targets t on s.person_id = t.person_id and s.night_date between t.first_night - 1 and t.last_night
    where s.night_date between $first_target_night - 1 and $last_target_night
),

state_windows as (
    select person_id, night_date, source,
        (night_date - 1)::timestamp + interval 12 hour - to_minutes(end_utc_offset_min) as window_start_utc
    from main_sleep
    where time_in_bed_min >= $min_main_sleep_min
),

log_segments as (
    -- each log's segments as one list in time order (a 30-item sort per log: far cheaper than a window that
    -- sorts every segment of the cohort at once); log_key is a plain integer name for the log
    select ws.log_key,
        list_sort(list(struct_pack(start_utc := g.seg_start_utc,
                                   end_utc := g.seg_start_utc + to_seconds(g.duration_s),
                                   is_break := g.stage in ('wake', 'awake', 'restless')))) as segs
    from sleep_segments g
    join window_sessions ws using (person_id, source, source_session_id)
    where g.seg_start_utc between $segments_from_utc and $segments_to_utc
    group by ws.log_key
),

sleep_runs as (
    -- consecutive asleep segments of one log form one run (a log's segments tile it in time order), so the
    -- windows below meet a few runs a night instead of every segment. Runs by gaps and islands: the k-th asleep
    -- segment of a log at position p has p - k constant along a run of consecutive asleep segments.
    select log_key, min(segs[p].start_utc) as run_start_utc, max(segs[p].end_utc) as run_end_utc
    from (
        select log_key, segs, unnest(asleep_at) as p, unnest(range(1, len(asleep_at) + 1)) as k
        from (
            select log_key, segs, list_filter(range(1, len(segs) + 1), lambda i: not segs[i].is_break) as asleep_at
            from log_segments
        )
    )
    group by log_key, p - k
),

sleep_intervals as (
    -- asleep stretches as minute offsets into the window [s_min, e_min); a minute touched by sleep counts as
    -- asleep. A window holds the logs of its own night and of the night before: two equality joins on the
    -- date (one per night back) instead of a range condition, which paired every night of a person with all
    -- of that person's logs.
    select w.person_id, w.night_date,
        greatest(0, floor(epoch(r.run_start_utc - w.window_start_utc) / 60))::bigint as s_min,
        least(1440, ceil(epoch(r.run_end_utc - w.window_start_utc) / 60))::bigint as e_min
    from state_windows w
    cross join (values (0), (1)) back(days)
    join window_sessions ws on ws.person_id = w.person_id and ws.night_date = w.night_date - back.days
        and ws.source = w.source  -- the device whose sleep counts tonight
    join sleep_runs r using (log_key)
),

minute_masks as (
    -- for every minute m of a 1,440-minute window: ones from m to the end, and ones before m. A stretch
    -- [s_min, e_min) is then from_m[s_min] AND before_m[e_min], a bytewise AND of two looked-up bit strings
    -- (building a mask per stretch from characters or bit shifts costs ~1,440 steps each). The masks are the
    -- same every run: `minute_mask_bytes` holds them as bytes, built once per process (features/engine.py;
    -- spelled out here from characters, the 2,882 of them cost ~10-20 ms of every run's statement)
    select m, from_m::bit as from_m, before_m::bit as before_m
    from minute_mask_bytes
),

sleep_state as (
    -- a night's state is the OR of its stretches' masks: overlapping stretches need no merging and nothing is
    -- built character by character (string building made the rebuild 2x slower; one row per minute, 40x)
    select w.person_id, w.night_date,
        coalesce(bit_or(f.from_m & b.before_m), repeat('0', 1440)::bit) as sleep_state_bits
    from state_windows w
    left join (
        sleep_intervals i
        join minute_masks f on f.m = i.s_min
        join minute_masks b on b.m = i.e_min
    ) on i.person_id = w.person_id and i.night_date = w.night_date and i.e_min > i.s_min
    group by w.person_id, w.night_date
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
    select h.person_id, h.night_date, ln(h.rmssd_ms) as ln_rmssd, h.rmssd_ms, h.source as hrv_source
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
        case when c.person_id is not null then coalesce(c.waso_min, 0.0) else m.minutes_awake::double end as waso_min,
        coalesce(c.onset_latency_min, m.minutes_to_fall_asleep::double) as onset_latency_min,
        c.awakenings_count::integer as awakenings_count,
        tm.bedtime_min,
        tm.wake_min,
        -- one continuous axis across midnight: averaging 23:50 and 00:10 gives 00:00, never noon
        (tm.bedtime_min + tm.wake_min) / 2 as midsleep_min,
        ((tm.bedtime_min + tm.wake_min) / 2 + 1440) % 1440 as midsleep_clock_min,
        coalesce(naps.nap_min, 0)::double as nap_min,
        r.resting_hr_bpm,
        h.ln_rmssd,
        h.rmssd_ms,
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
        st.sleep_state_bits,
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
    left join continuity c using (person_id, night_date)
    left join naps using (person_id, night_date)
    left join resting_hr r using (person_id, night_date)
    left join hrv h using (person_id, night_date)
    left join vitals v using (person_id, night_date)
    left join activity a using (person_id, night_date)
    left join sleep_state st using (person_id, night_date)
    left join night_tags tg using (person_id, night_date)
    left join rosters ro using (person_id)
    left join home using (person_id)
)

select * from final
