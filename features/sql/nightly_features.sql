-- nightly_features: one row per person-night. The night is the local date of waking (Fitbit's dateOfSleep).
-- Reads the normalized tables for the nights listed in `feature_targets(person_id, first_night, last_night)`;
-- the caller deletes and re-inserts exactly those nights, so re-running is idempotent.
--
-- column                 definition                                                            source
-- tst_min                minutes asleep in the main sleep                                      SIGNALS.md (TST)
-- time_in_bed_min        minutes from start to end of the main sleep log
-- efficiency_pct         100 * tst_min / time_in_bed_min (one formula for every source;        SIGNALS.md; <85 % is a
--                        Fitbit's own stage-log "efficiency" uses another and is not used)     common clinical cut-off
-- waso_min               wake minutes between the first and last sleep segment                 SIGNALS.md (WASO)
--                        (no segments: the log's minutes_awake)
-- onset_latency_min      minutes from the start of the log to the first sleep segment          SIGNALS.md
--                        (no segments: the log's minutes_to_fall_asleep)
-- awakenings_count       wake segments of >= 5 min after sleep onset (segment logs only)       SIGNALS.md
-- bedtime_min            local start, minutes from the midnight that begins the wake date      circular-safe: a
-- wake_min               local end, same origin                                                23:30 bedtime is -30
-- midsleep_min           (bedtime_min + wake_min) / 2
-- nap_min                minutes asleep in other logs attributed to the same date              naps kept apart
-- resting_hr_bpm         the source's daily resting HR for the wake date                       Fitbit/Google daily RHR
-- ln_rmssd               natural log of the night's RMSSD (ms)                                 Plews 2014 (lnRMSSD)
-- day_sleep              the main sleep's middle falls between 10:00 and 18:00 local           ours: shift work
--                        (a night-shift worker's daytime sleep is compared only with their other daytime sleep)
-- away_from_home         the main sleep was in another zone than the person's home zone        SIGNALS.md: travel
--                        (travel nights, and the jet-lag nights after, are kept out of comparisons: night_signals)
-- valid_night            a main sleep of >= 3 h exists                                         SIGNALS.md (validity)
with

targets as (
    select person_id, first_night, last_night from feature_targets
),

sessions as (
    select s.*,
        row_number() over (
            partition by s.person_id, s.night_date
            order by s.is_main_sleep desc, s.time_in_bed_min desc, s.source_session_id
        ) as rank_in_night
    from sleep_sessions s
    join targets t on s.person_id = t.person_id and s.night_date between t.first_night and t.last_night
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

resting_hr as (
    select r.person_id, r.day as night_date, avg(r.resting_hr_bpm) as resting_hr_bpm
    from daily_resting_hr r
    join targets t on r.person_id = t.person_id and r.day between t.first_night and t.last_night
    group by r.person_id, r.day
),

hrv as (
    select h.person_id, h.night_date, ln(avg(h.rmssd_ms)) as ln_rmssd
    from nightly_hrv h
    join targets t on h.person_id = t.person_id and h.night_date between t.first_night and t.last_night
    group by h.person_id, h.night_date
),

vitals as (
    select v.person_id, v.night_date,
        avg(v.breathing_rate_brpm) as breathing_rate_brpm,
        avg(v.skin_temp_deviation_c) as skin_temp_deviation_c,
        avg(v.spo2_avg_pct) as spo2_avg_pct
    from nightly_vitals v
    join targets t on v.person_id = t.person_id and v.night_date between t.first_night and t.last_night
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
),

final as (
    select
        n.person_id,
        n.night_date,
        m.source,
        m.log_type,
        m.minutes_asleep::double as tst_min,
        m.time_in_bed_min::double as time_in_bed_min,
        100.0 * m.minutes_asleep / nullif(m.time_in_bed_min, 0) as efficiency_pct,
        case when c.person_id is not null then coalesce(c.waso_min, 0.0) else m.minutes_awake::double end as waso_min,
        coalesce(c.onset_latency_min, m.minutes_to_fall_asleep::double) as onset_latency_min,
        c.awakenings_count::integer as awakenings_count,
        epoch((m.start_utc + to_minutes(m.start_utc_offset_min)) - n.night_date::timestamp) / 60.0 as bedtime_min,
        epoch((m.end_utc + to_minutes(m.end_utc_offset_min)) - n.night_date::timestamp) / 60.0 as wake_min,
        (epoch((m.start_utc + to_minutes(m.start_utc_offset_min)) - n.night_date::timestamp)
         + epoch((m.end_utc + to_minutes(m.end_utc_offset_min)) - n.night_date::timestamp)) / 120.0 as midsleep_min,
        coalesce(naps.nap_min, 0)::double as nap_min,
        r.resting_hr_bpm,
        h.ln_rmssd,
        v.breathing_rate_brpm,
        v.skin_temp_deviation_c,
        v.spo2_avg_pct,
        (epoch((m.start_utc + to_minutes(m.start_utc_offset_min)) - n.night_date::timestamp)
         + epoch((m.end_utc + to_minutes(m.end_utc_offset_min)) - n.night_date::timestamp)) / 120.0
            between $day_sleep_from_min and $day_sleep_to_min as day_sleep,
        coalesce(m.tz_name <> home.home_tz_name, false) as away_from_home,
        coalesce(m.time_in_bed_min >= $min_main_sleep_min, false) as valid_night
    from nights n
    left join main_sleep m using (person_id, night_date)
    left join continuity c using (person_id, night_date)
    left join naps using (person_id, night_date)
    left join resting_hr r using (person_id, night_date)
    left join hrv h using (person_id, night_date)
    left join vitals v using (person_id, night_date)
    left join home using (person_id)
)

select * from final
