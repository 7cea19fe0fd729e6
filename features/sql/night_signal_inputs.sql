-- night_signal_inputs: the first of the signal step's three stages (features/engine.py), kept as a temporary
-- table `signal_inputs`: each night read for `signal_targets(person_id, first_night, last_night)`, with its
-- context (travel, SRI day pairs, short-sleep runs) and the values the windows read, marked by what counts
-- where. Stage two (features/windows.py) computes the rolling windows and baselines from it in compiled
-- kernels; stage three (night_signals.sql) scores the target nights and decides the flags.
-- Reads nightly_features from $read_from_days before each person's first target night (Thresholds.
-- signal_lookback_days: the first target's baseline reaches 66 days back, and those nights' travel context 3 more);
-- what lies further back is already final in night_signals and is read from there (a short-sleep run's length).
-- $first_target_night / $last_target_night: the targets' overall span (for skipping row groups).
with

targets as (
    -- dates, not timestamps: comparing night_date with a DATE keeps the filter on the column itself
    select person_id, first_night::date as first_night, last_night::date as last_night from signal_targets
),

features as (
    select f.*, t.first_night as first_target,
        -- away from home, or back for fewer than $jet_lag_nights nights: travel explains the sleep, so these
        -- nights neither count toward a flag nor shape the baseline (ours: travel nights stay out of baselines)
        bool_or(f.away_from_home or f.tag_travel) over by_night_since_jet_lag as travel_context,
        -- SRI input: agreement of this night's noon-to-noon sleep state with the calendar night before's, computed
        -- here while the 1,440-bit strings are at hand, so no later window has to carry them
        case when f.sleep_state_bits is not null and lag(f.sleep_state_bits) over by_night is not null
                  and lag(f.night_date) over by_night = f.night_date - 1
             then 1.0 - bit_count(xor(f.sleep_state_bits, lag(f.sleep_state_bits) over by_night)) / 1440.0
        end as pair_agreement,
        -- short-sleep runs: islands of consecutive calendar nights with valid main sleep under the cut-off; an
        -- island starts at every night that is not short, and wherever a calendar night is missing
        case when coalesce(f.valid_night and f.tst_min < $short_sleep_min
                           and lag(f.night_date) over by_night = f.night_date - 1
                           and coalesce(lag(f.valid_night and f.tst_min < $short_sleep_min) over by_night, false),
                           false)
             then null else f.night_date end as island_start
    from nightly_features f
    join targets t on f.person_id = t.person_id
        and f.night_date between t.first_night - $read_from_days and t.last_night
    -- the same span as constants, so DuckDB skips row groups by their min/max
    where f.night_date between $first_target_night - $read_from_days and $last_target_night
    -- integer day offsets on the DATE column (not intervals, which cast every date to a timestamp): windows
    -- with the same partition and order then share one sort
    window
        by_night as (partition by f.person_id order by f.night_date),
        by_night_since_jet_lag as (partition by f.person_id order by f.night_date
                                   range between $jet_lag_nights preceding and current row)
),

history as (
    select * exclude (sleep_state_bits),
        valid_night and not travel_context as usable,
        travel_context or tag_illness or tag_travel or tag_on_call as baseline_excluded,
        valid_night and not (travel_context or tag_illness or tag_travel or tag_on_call) as in_baseline,
        -- the latest short-sleep island start up to each night: its run's first night, within the read
        max(island_start) over (partition by person_id order by night_date rows unbounded preceding)
            as island_start_now
    from features
),

runs_before as (
    -- the short-sleep run stored for the night before each person's first target (final: nothing before the
    -- targets changed)
    select s.person_id, s.short_sleep_run_nights as run_before_targets
    from night_signals s
    join targets t on s.person_id = t.person_id and s.night_date = t.first_night - 1
    where s.night_date between $first_target_night - 1 and $last_target_night
)

select * exclude (island_start, island_start_now, run_before_targets),
    -- a plain integer name for the row: the windows computed from these rows (features/windows.py) come back
    -- keyed by it
    row_number() over (order by person_id, night_date) as input_row,
    night_date >= first_target as is_target,
    (night_date - date '2000-01-01')::integer as day_number,
    -- a run's nights are consecutive calendar nights, so its length is a difference of dates; a run that was
    -- going before the first target began where the stored run of the night before says (a run can be
    -- longer than the read)
    case when valid_night and tst_min < $short_sleep_min then
        (night_date - case when island_start_now < first_target and run_before_targets > 0
                           then first_target - run_before_targets
                           else island_start_now end)::integer + 1
    else 0 end as short_sleep_run_nights,
    -- what each window reads (NULL: does not count)
    case when in_baseline then tst_min end as b_tst,
    case when in_baseline then efficiency_pct end as b_eff,
    case when in_baseline then waso_min end as b_waso,
    case when in_baseline then onset_latency_min end as b_onset,
    case when in_baseline then awakenings_count end as b_awak,
    case when in_baseline then resting_hr_bpm end as b_rhr,
    case when in_baseline then ln_rmssd end as b_lnrmssd,
    case when in_baseline then breathing_rate_brpm end as b_br,
    case when in_baseline then spo2_avg_pct end as b_spo2,
    case when in_baseline then bedtime_min end as b_bed,
    case when in_baseline then midsleep_min end as b_mid,
    case when valid_night then tst_min end as v_tst,
    case when valid_night then bedtime_min end as v_bed,
    case when usable then rmssd_ms end as v_rmssd,  -- travel nights would drag the 7-night mean
    case when usable then ln_rmssd end as v_lnrmssd,
    case when valid_night and not day_sleep and free_day then midsleep_min end as v_mid_free,
    case when valid_night and not day_sleep and not free_day then midsleep_min end as v_mid_work,
    coalesce(valid_night and waso_min >= $continuity_long_min, false)::tinyint as waso_long,
    coalesce(valid_night and onset_latency_min >= $continuity_long_min, false)::tinyint as onset_long
from history
left join runs_before using (person_id)
