-- night_signals: each night's rolling features, its comparison with the person's own usual, and the domain flags.
-- Reads nightly_features for `signal_targets(person_id, first_night, last_night)` plus the lookback the windows
-- need ($read_from_days = Thresholds.signal_lookback_days); only rows inside the targets are computed and kept.
-- The rules that look back at earlier nights' results (resting HR on consecutive nights, domain and illness
-- flags) read the nights before a person's first target from night_signals, where they are already final.
-- $first_target_night / $last_target_night: the targets' overall span (for skipping row groups);
-- $baseline_by_window: how baselines are computed (same values either way, see "Baseline" below).
--
-- Layers (top to bottom): context (travel, tags, SRI day pairs) -> rolling/variability features -> baselines
-- (narrow) -> robust z -> per-night deviations -> domain flags (with the stored nights before the targets).
--
-- Baseline (ours; Oura's long-term baseline is ~2 months): the usable nights of the same kind (night sleep /
--   daytime shift sleep) in the 60 days that end a week before the night (RANGE 66 .. 7 days preceding), median
--   and MAD. Usable = valid, not travel or jet-lag, not tagged illness / travel / on-call. Leaving out the last
--   week keeps a rough patch from becoming its own baseline while it builds. "Warming up" until the baseline
--   holds >= $warmup_nights usable nights. A value's baseline holds only nights from the same source (device):
--   a switch of device starts afresh.
-- Robust z = (value - median) / max(1.4826 * MAD, floor); floors are ours (features/catalog.py).
--
-- Columns: what each one means, its unit and its source are in features/catalog.py (rendered into docs/signals.md);
-- tests/test_catalog.py holds the migrated table to that list. How the deviations and flags are decided:
--
-- Per-night deviation, worse direction only (comparable nights: usable and past warm-up):
--   sleep:    (z_sleep_person = $z_sleep, widened per person by sleep_calibration: features/calibration.py)
--             TST z <= -$z_sleep, or TST z <= -$fragmented_tst_z (no longer than usual) and >= 2 of
--             {efficiency z <= -$z_sleep, WASO z >= $z_sleep, onset z >= $z_sleep, awakenings z >= $z_sleep}
--   recovery: rhr_elevated_2n (NightSignal), or lnRMSSD z <= -$z_hrv, or hrv_below_band (Plews 2014); only where
--             the baseline holds overnight HRV: without it the domain is not measured (NULL), whatever the resting HR
--   illness:  skin temperature deviation >= $skin_temp_delta_c, breathing rate >= baseline + $br_delta_brpm,
--             SpO2 <= baseline - $spo2_drop_pct, or a night tagged illness. Illness never triggers an alert.
-- Domain flag: the night itself deviates ($flag_needs_tonight) and >= $flag_min_nights of the last
--   $flag_window_nights comparable nights deviate (ours, no published source: features/thresholds.py).
-- Strong flag: the night deviates and >= $strong_min_nights of the last $strong_window_nights comparable nights do
--   ("one domain for longer"; the alert for a source without HRV rests on it, alerts.rules.AlertRules).
-- Illness flag: >= $illness_min_nights illness deviations in the last $illness_window_days days, or in them a night
--   with two signs at once or tagged illness (it holds an alert back).
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
        row_number() over by_night as row_in_read,
        -- short-sleep runs: islands of consecutive calendar nights with valid main sleep under the cut-off; an
        -- island starts at every night that is not short, and wherever a calendar night is missing. Its row
        -- number here lets `rolling` count a run's nights as a difference of row numbers (a window partitioned
        -- by island was one tiny partition per night)
        case when coalesce(f.valid_night and f.tst_min < $short_sleep_min
                           and lag(f.night_date) over by_night = f.night_date - 1
                           and coalesce(lag(f.valid_night and f.tst_min < $short_sleep_min) over by_night, false),
                           false)
             then null else row_number() over by_night end as island_start_row
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
        valid_night and not (travel_context or tag_illness or tag_travel or tag_on_call) as in_baseline
    from features
),

base_values as (
    select *,
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
        case when valid_night and not day_sleep and not free_day then midsleep_min end as v_mid_work
    from history
),

islands as (
    -- the latest short-sleep island start up to each night, over everything read (a run can be long)
    select person_id, night_date, max(island_start_row) over (partition by person_id order by night_date
                                                              rows unbounded preceding) as island_start_row_now
    from features
),

rolling as (
    -- every rolling window over a person's calendar nights in one pass: they share partition and order, so
    -- DuckDB sorts the rows once for all of them. Only targets are scored, so only their last 28 days are read
    -- (the widest of these windows); the longer read serves the baselines and the islands.
    select *,
        count(v_tst) over last_14 as var_nights,
        stddev_samp(v_tst) over last_14 as tst_sd_raw,
        stddev_samp(v_bed) over last_14 as bed_sd_raw,
        count(pair_agreement) over last_14 as sri_pairs,
        avg(pair_agreement) over last_14 as sri_agreement,
        count(v_mid_free) over last_28 as free_nights,
        count(v_mid_work) over last_28 as work_nights,
        median(v_mid_free) over last_28 as mid_free_med,
        median(v_mid_work) over last_28 as mid_work_med,
        count(case when valid_night and waso_min >= $continuity_long_min then 1 end) over last_7 as waso_long_nights_7n,
        count(case when valid_night and onset_latency_min >= $continuity_long_min then 1 end) over last_7
            as onset_long_nights_7n,
        list(case when valid_night then [bedtime_min, midsleep_min, (night_date - date '2000-01-01')::double] end)
            over last_ewma as ewma_items,
        case when valid_night and tst_min < $short_sleep_min
             then row_in_read - island_start_row_now + 1 else 0 end as short_sleep_run_nights
    from base_values
    join islands using (person_id, night_date)
    where night_date >= first_target - greatest(27, $ewma_span_days - 1)
    window
        last_7 as (partition by person_id order by night_date range between 6 preceding and current row),
        last_14 as (partition by person_id order by night_date range between 13 preceding and current row),
        last_28 as (partition by person_id order by night_date range between 27 preceding and current row),
        last_ewma as (partition by person_id order by night_date
                      range between $ewma_span_days - 1 preceding and current row)
),

hrv_rolling as (
    -- HRV windows hold one kind of sleep (night / daytime shift sleep) from one device, like the baseline they
    -- meet; a narrow pass (own partition) joined back by key
    select person_id, night_date,
        count(v_rmssd) over last_7_kind as hrv_nights,
        avg(v_lnrmssd) over last_7_kind as lnrmssd_7n_raw,
        100 * stddev_samp(v_rmssd) over last_7_kind / avg(v_rmssd) over last_7_kind as rmssd_cv_raw
    from base_values
    where night_date >= first_target - greatest(27, $ewma_span_days - 1)
    window last_7_kind as (partition by person_id, day_sleep, coalesce(hrv_source, sleep_source)
                           order by night_date range between 6 preceding and current row)
),

-- Baseline: median and MAD of the usable nights of the same kind in the days [night - $baseline_end_days -
-- $baseline_span_days + 1, night - $baseline_end_days], for the target nights. Windowed medians are the dearest
-- step of the engine; two ways to the same numbers, the engine picks one ($baseline_by_window):
-- * many target nights (a rebuild): a window. DuckDB evaluates it about twice as fast over a fixed ROWS frame as
--   over a RANGE of dates, so each (person, kind) gets one row per calendar day from its first night to its last
--   (missing days hold NULLs, which median, MAD and count skip): on that grid "N rows before" is exactly "N days
--   before". The grid is narrow (only the baseline inputs), so the sort moves little data.
-- * a few target nights (a nightly run): a window would compute every night read, ~95 a person, to keep one;
--   instead each target night's frame is gathered by a join and aggregated.
-- Nights with no kind (no main sleep) are never in a baseline and are left out: their baseline is empty.
-- One device, one baseline: a value joins only the baselines of the source it came from (each data type's
-- *_source), so a person who switches devices starts a fresh baseline, warming up again, for what the new one
-- measures (RMSSD, resting HR and sleep staging differ between devices and algorithms), and a second device's
-- nights never shift the first one's usual. Each night gives one input row per source it holds values from.
baseline_inputs as (
    select person_id, day_sleep, night_date, baseline_source,
        case when sleep_source = baseline_source then b_tst end as b_tst,
        case when sleep_source = baseline_source then b_eff end as b_eff,
        case when sleep_source = baseline_source then b_waso end as b_waso,
        case when sleep_source = baseline_source then b_onset end as b_onset,
        case when sleep_source = baseline_source then b_awak end as b_awak,
        case when resting_hr_source = baseline_source then b_rhr end as b_rhr,
        case when hrv_source = baseline_source then b_lnrmssd end as b_lnrmssd,
        case when breathing_rate_source = baseline_source then b_br end as b_br,
        case when spo2_source = baseline_source then b_spo2 end as b_spo2,
        case when sleep_source = baseline_source then b_bed end as b_bed,
        case when sleep_source = baseline_source then b_mid end as b_mid
    from (
        select *, unnest(list_distinct([sleep_source, resting_hr_source, hrv_source, breathing_rate_source,
                                        spo2_source])) as baseline_source
        from base_values
        where day_sleep is not null
    )
),

baseline_calendar as (
    select person_id, day_sleep, baseline_source,
        unnest(generate_series(min(night_date), max(night_date), interval 1 day))::date as night_date
    from baseline_inputs
    where $baseline_by_window
    group by person_id, day_sleep, baseline_source
),

baseline_grid as (
    select c.person_id, c.day_sleep, c.baseline_source, c.night_date,
        i.* exclude (person_id, day_sleep, baseline_source, night_date)
    from baseline_calendar c
    left join baseline_inputs i using (person_id, day_sleep, baseline_source, night_date)
),

baseline_by_day as (
    select person_id, day_sleep, baseline_source, night_date,
        count(b_tst) over w as baseline_valid_nights,
        median(b_tst) over w as tst_med, mad(b_tst) over w as tst_mad,
        median(b_eff) over w as eff_med, mad(b_eff) over w as eff_mad,
        median(b_waso) over w as waso_med, mad(b_waso) over w as waso_mad,
        median(b_onset) over w as onset_med, mad(b_onset) over w as onset_mad,
        median(b_awak) over w as awak_med, mad(b_awak) over w as awak_mad,
        median(b_rhr) over w as rhr_med,
        median(b_lnrmssd) over w as lnrmssd_med, mad(b_lnrmssd) over w as lnrmssd_mad,
        median(b_br) over w as br_med,
        median(b_spo2) over w as spo2_med,
        median(b_bed) over w as bed_med,
        median(b_mid) over w as mid_med
    from baseline_grid
    window w as (
        partition by person_id, day_sleep, baseline_source order by night_date
        rows between $baseline_end_days + $baseline_span_days - 1 preceding and $baseline_end_days preceding
    )
),

baseline_by_join as (
    select t.person_id, t.day_sleep, i.baseline_source, t.night_date,
        count(i.b_tst) as baseline_valid_nights,
        median(i.b_tst) as tst_med, mad(i.b_tst) as tst_mad,
        median(i.b_eff) as eff_med, mad(i.b_eff) as eff_mad,
        median(i.b_waso) as waso_med, mad(i.b_waso) as waso_mad,
        median(i.b_onset) as onset_med, mad(i.b_onset) as onset_mad,
        median(i.b_awak) as awak_med, mad(i.b_awak) as awak_mad,
        median(i.b_rhr) as rhr_med,
        median(i.b_lnrmssd) as lnrmssd_med, mad(i.b_lnrmssd) as lnrmssd_mad,
        median(i.b_br) as br_med,
        median(i.b_spo2) as spo2_med,
        median(i.b_bed) as bed_med,
        median(i.b_mid) as mid_med
    from base_values t
    join baseline_inputs i on i.person_id = t.person_id and i.day_sleep = t.day_sleep
        and i.night_date between t.night_date - ($baseline_end_days + $baseline_span_days - 1)
                             and t.night_date - $baseline_end_days
    where not $baseline_by_window and t.night_date >= t.first_target
    group by t.person_id, t.day_sleep, i.baseline_source, t.night_date
),

baseline_for_targets as (
    select * from baseline_by_day
    union all by name
    select * from baseline_by_join
),

baselines as (
    -- each statistic from the baseline of the source that gave tonight's value, or, with no value tonight, of
    -- the device whose sleep counts (baseline_valid_nights and warm-up follow the sleep source)
    select r.*, h.* exclude (person_id, night_date),
        coalesce(b.baseline_valid_nights, 0) as baseline_valid_nights,
        b.tst_med, b.tst_mad, b.eff_med, b.eff_mad, b.waso_med, b.waso_mad, b.onset_med, b.onset_mad,
        b.awak_med, b.awak_mad, b.bed_med, b.mid_med,
        rhr_base.rhr_med, hrv_base.lnrmssd_med, hrv_base.lnrmssd_mad, br_base.br_med, spo2_base.spo2_med
    from rolling r
    join hrv_rolling h using (person_id, night_date)
    left join baseline_for_targets b on b.person_id = r.person_id and b.day_sleep = r.day_sleep
        and b.night_date = r.night_date and b.baseline_source = r.sleep_source
    left join baseline_for_targets rhr_base on rhr_base.person_id = r.person_id
        and rhr_base.day_sleep = r.day_sleep and rhr_base.night_date = r.night_date
        and rhr_base.baseline_source = coalesce(r.resting_hr_source, r.sleep_source)
    left join baseline_for_targets hrv_base on hrv_base.person_id = r.person_id
        and hrv_base.day_sleep = r.day_sleep and hrv_base.night_date = r.night_date
        and hrv_base.baseline_source = coalesce(r.hrv_source, r.sleep_source)
    left join baseline_for_targets br_base on br_base.person_id = r.person_id
        and br_base.day_sleep = r.day_sleep and br_base.night_date = r.night_date
        and br_base.baseline_source = coalesce(r.breathing_rate_source, r.sleep_source)
    left join baseline_for_targets spo2_base on spo2_base.person_id = r.person_id
        and spo2_base.day_sleep = r.day_sleep and spo2_base.night_date = r.night_date
        and spo2_base.baseline_source = coalesce(r.spo2_source, r.sleep_source)
    where r.night_date >= r.first_target
),

scored as (
    select *,
        baseline_valid_nights < $warmup_nights as warming_up,
        (tst_min - tst_med) / greatest(1.4826 * tst_mad, $floor_tst_min) as tst_z,
        (efficiency_pct - eff_med) / greatest(1.4826 * eff_mad, $floor_efficiency_pct) as efficiency_z,
        (waso_min - waso_med) / greatest(1.4826 * waso_mad, $floor_waso_min) as waso_z,
        (onset_latency_min - onset_med) / greatest(1.4826 * onset_mad, $floor_onset_latency_min) as onset_latency_z,
        (awakenings_count - awak_med) / greatest(1.4826 * awak_mad, $floor_awakenings_count) as awakenings_z,
        resting_hr_bpm - rhr_med as resting_hr_delta_bpm,
        (ln_rmssd - lnrmssd_med) / greatest(1.4826 * lnrmssd_mad, $floor_ln_rmssd) as ln_rmssd_z,
        breathing_rate_brpm - br_med as breathing_rate_delta_brpm,
        spo2_avg_pct - spo2_med as spo2_delta_pct,
        case when var_nights >= $var_min_nights then tst_sd_raw end as tst_sd_14n_min,
        case when var_nights >= $var_min_nights then bed_sd_raw end as onset_sd_14n_min,
        case when sri_pairs >= $sri_min_pairs then -100 + 200 * sri_agreement end as sri_14n,
        case when free_nights >= 2 and work_nights >= 4 then abs(mid_free_med - mid_work_med) end
            as social_jetlag_28n_min,
        case when hrv_nights >= $hrv_min_nights then lnrmssd_7n_raw end as ln_rmssd_7n_mean,
        hrv_nights as ln_rmssd_7n_nights,
        case when hrv_nights >= $hrv_min_nights then rmssd_cv_raw end as rmssd_cv_7n_pct,
        (waso_long_nights_7n >= $continuity_min_nights or onset_long_nights_7n >= $continuity_min_nights)
            as continuity_flag,
        -- EWMA over the window's valid nights, weight (1 - lambda)^(age in days), normalised
        list_sum(list_transform(ewma_items, lambda x: x[1] * pow(1 - $ewma_lambda, (night_date - date '2000-01-01') - x[3])))
            / nullif(list_sum(list_transform(ewma_items, lambda x: pow(1 - $ewma_lambda, (night_date - date '2000-01-01') - x[3]))), 0)
            as bedtime_ewma_min,
        list_sum(list_transform(ewma_items, lambda x: x[2] * pow(1 - $ewma_lambda, (night_date - date '2000-01-01') - x[3])))
            / nullif(list_sum(list_transform(ewma_items, lambda x: pow(1 - $ewma_lambda, (night_date - date '2000-01-01') - x[3]))), 0)
            as midsleep_ewma_min
    from baselines
),

-- Nights before a person's first target keep their stored signals: nothing before the first target night
-- changed (every window looks back only), and their own baselines reach further back than this read. The
-- rules below that look at earlier nights (resting HR on consecutive nights, domain and illness flags) read
-- them from night_signals, as far back as the lookback allows row windows over comparable nights to reach
-- ($read_from_days less the baseline's span: Thresholds.signal_lookback_days); a rebuild has none.
stored_before as (
    select s.person_id, s.night_date, s.resting_hr_delta_bpm,
        s.valid_night and not s.travel_context and not s.warming_up as comparable,
        s.sleep_deviates, s.recovery_deviates, s.illness_deviates,
        (coalesce(f.skin_temp_deviation_c >= $skin_temp_delta_c, false)::int
         + coalesce(s.breathing_rate_delta_brpm >= $br_delta_brpm, false)::int
         + coalesce(s.spo2_delta_pct <= -$spo2_drop_pct, false)::int) >= 2 as illness_two_signs,
        f.tag_illness
    from night_signals s
    join features f on f.person_id = s.person_id and f.night_date = s.night_date and s.night_date < f.first_target
        and s.night_date >= f.first_target - ($read_from_days - $baseline_end_days - $baseline_span_days)
    where s.night_date between $first_target_night - $read_from_days and $last_target_night
),

rhr_chain as (
    -- the night before's resting-HR rule, whether that night is a target or stored
    select person_id, night_date,
        lag(resting_hr_delta_bpm >= $rhr_delta_bpm) over by_night as prev_rhr_elevated,
        lag(night_date) over by_night as prev_night,
        is_target
    from (
        select person_id, night_date, resting_hr_delta_bpm, true as is_target from scored
        union all
        select person_id, night_date, resting_hr_delta_bpm, false from stored_before
    )
    window by_night as (partition by person_id order by night_date)
    qualify is_target
),

banded as (
    select *,
        case when tst_sd_14n_min is null then null when tst_sd_14n_min < 60 then 0 when tst_sd_14n_min < 90 then 1
             when tst_sd_14n_min < 120 then 2 else 3 end as tst_sd_band,
        case when onset_sd_14n_min is null then null when onset_sd_14n_min < 30 then 0
             when onset_sd_14n_min < 60 then 1 when onset_sd_14n_min < 90 then 2 else 3 end as onset_sd_band,
        resting_hr_delta_bpm >= $rhr_delta_bpm
            and ($rhr_consecutive_nights < 2 or (prev_rhr_elevated and prev_night = night_date - 1))
            as rhr_elevated_2n,
        ln_rmssd_7n_mean < lnrmssd_med - $hrv_band_sd * greatest(1.4826 * lnrmssd_mad, $floor_ln_rmssd) as hrv_below_band,
        bedtime_ewma_min - bed_med as bedtime_drift_min,
        midsleep_ewma_min - mid_med as midsleep_drift_min
    from scored
    join rhr_chain using (person_id, night_date)
),

calibrated as (
    -- the person's sleep threshold on this night: the default, widened where their own check-ins repeatedly
    -- disagreed with it (features/calibration.py), from the first night the widening applies to
    select b.*, $z_sleep + coalesce(c.z_sleep_extra, 0) as z_sleep_person
    from banded b
    asof left join sleep_calibration c on c.person_id = b.person_id and b.night_date >= c.applies_from
),

deviations as (
    select *,
        usable and not warming_up as comparable,
        case when usable and not warming_up then
            coalesce(tst_z <= -z_sleep_person, false)
            or (coalesce(tst_z <= -$fragmented_tst_z, false)
                and (coalesce(efficiency_z <= -z_sleep_person, false)::int
                     + coalesce(waso_z >= z_sleep_person, false)::int
                     + coalesce(onset_latency_z >= z_sleep_person, false)::int
                     + coalesce(awakenings_z >= z_sleep_person, false)::int) >= 2)
        end as sleep_deviates,
        -- recovery is measured only where the source delivers overnight HRV (an HRV baseline exists): a vendor's
        -- daily resting HR alone is a day's value, not the overnight RHR the +4 bpm rule was made for (NightSignal),
        -- and on PMData it did not go with how people said they felt (issue 16, benchmarks/signals_diagnosis.py)
        case when usable and not warming_up and lnrmssd_med is not null
                  and (resting_hr_delta_bpm is not null or ln_rmssd_z is not null) then
            coalesce(rhr_elevated_2n, false) or coalesce(ln_rmssd_z <= -$z_hrv, false)
            or coalesce(hrv_below_band, false)
        end as recovery_deviates,
        case when valid_night or tag_illness then
            tag_illness
            or coalesce(skin_temp_deviation_c >= $skin_temp_delta_c, false)
            or coalesce(breathing_rate_delta_brpm >= $br_delta_brpm, false)
            or coalesce(spo2_delta_pct <= -$spo2_drop_pct, false)
        end as illness_deviates,
        -- two signs on one night (e.g. temperature and breathing rate up together) are rare by chance
        (coalesce(skin_temp_deviation_c >= $skin_temp_delta_c, false)::int
         + coalesce(breathing_rate_delta_brpm >= $br_delta_brpm, false)::int
         + coalesce(spo2_delta_pct <= -$spo2_drop_pct, false)::int) >= 2 as illness_two_signs
    from calibrated
),

flag_rows as (
    select person_id, night_date, comparable, sleep_deviates, recovery_deviates, illness_deviates, illness_two_signs,
        tag_illness
    from deviations
    union all
    select person_id, night_date, comparable, sleep_deviates, recovery_deviates, illness_deviates, illness_two_signs,
        tag_illness
    from stored_before
),

flags as (
    select person_id, night_date,
        -- a flag marks the present: the night itself deviates, and did on >= $flag_min_nights of the last
        -- $flag_window_nights (with $flag_needs_tonight; without it a night back in range stays flagged)
        (not $flag_needs_tonight or coalesce(sleep_deviates, false))
            and sum(coalesce(sleep_deviates, false)::int) over last_n >= $flag_min_nights as sleep_flag,
        (not $flag_needs_tonight or coalesce(recovery_deviates, false))
            and sum(coalesce(recovery_deviates, false)::int) over last_n >= $flag_min_nights as recovery_flag,
        (not $flag_needs_tonight or coalesce(sleep_deviates, false))
            and sum(coalesce(sleep_deviates, false)::int) over last_strong >= $strong_min_nights as sleep_strong_flag,
        (not $flag_needs_tonight or coalesce(recovery_deviates, false))
            and sum(coalesce(recovery_deviates, false)::int) over last_strong >= $strong_min_nights
            as recovery_strong_flag
    from flag_rows
    where comparable
    window
        last_n as (partition by person_id order by night_date rows between $flag_window_nights - 1 preceding and current row),
        last_strong as (partition by person_id order by night_date
                        rows between $strong_window_nights - 1 preceding and current row)
),

illness as (
    select person_id, night_date,
        sum(coalesce(illness_deviates, false)::int) over last_illness >= $illness_min_nights
            or bool_or(illness_two_signs or tag_illness) over last_illness as illness_flag
    from flag_rows
    window last_illness as (partition by person_id order by night_date
                            range between $illness_window_days - 1 preceding and current row)
),

final as (
    select d.person_id, d.night_date, d.valid_night, d.travel_context, d.baseline_excluded,
        d.baseline_valid_nights, d.warming_up,
        d.tst_z, d.efficiency_z, d.waso_z, d.onset_latency_z, d.awakenings_z, d.resting_hr_delta_bpm, d.ln_rmssd_z,
        d.breathing_rate_delta_brpm, d.spo2_delta_pct,
        d.tst_sd_14n_min, d.tst_sd_band, d.onset_sd_14n_min, d.onset_sd_band, d.sri_14n, d.social_jetlag_28n_min,
        d.short_sleep_run_nights::integer as short_sleep_run_nights,
        d.waso_long_nights_7n::integer as waso_long_nights_7n, d.onset_long_nights_7n::integer as onset_long_nights_7n,
        d.continuity_flag, coalesce(d.rhr_elevated_2n, false) as rhr_elevated_2n,
        d.ln_rmssd_7n_mean, d.ln_rmssd_7n_nights::integer as ln_rmssd_7n_nights, d.hrv_below_band, d.rmssd_cv_7n_pct,
        d.bedtime_ewma_min, d.bedtime_drift_min, d.midsleep_ewma_min, d.midsleep_drift_min,
        d.sleep_deviates, d.recovery_deviates, d.illness_deviates,
        coalesce(f.sleep_flag, false) as sleep_flag,
        coalesce(f.recovery_flag, false) as recovery_flag,
        coalesce(f.sleep_strong_flag, false) as sleep_strong_flag,
        coalesce(f.recovery_strong_flag, false) as recovery_strong_flag,
        coalesce(i.illness_flag, false) as illness_flag
    from deviations d
    left join flags f using (person_id, night_date)
    left join illness i using (person_id, night_date)
    join targets t on d.person_id = t.person_id and d.night_date between t.first_night and t.last_night
)

select * from final
