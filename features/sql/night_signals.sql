-- night_signals: each night's rolling features, its comparison with the person's own usual, and the domain flags.
-- The last stage of the signal step (features/engine.py) for `signal_targets(person_id, person_index, first_night,
-- last_night)`: `night_windows` holds, for each target night (by person_index and night_date), what
-- features/windows.py computed from the nights read by night_signal_inputs.sql: the travel context and short-sleep
-- run, the rolling windows, the HRV week and the baseline statistics (how each is defined: below and in
-- windows.py). Only target rows are computed and kept. The rules that look back at earlier nights' results
-- (resting HR on consecutive nights, domain and illness flags) read the nights before a person's first target from
-- night_signals, where they are already final.
-- $first_target_night / $last_target_night: the targets' overall span (for skipping row groups).
--
-- Baseline (ours; Oura's long-term baseline is ~2 months): the usable nights of the same kind (night sleep /
--   daytime shift sleep) in the 60 days that end a week before the night (days -66 .. -7), median
--   and MAD. Usable = valid, not travel or jet-lag, not tagged illness / travel / on-call. Leaving out the last
--   week keeps a rough patch from becoming its own baseline while it builds. "Warming up" until the baseline
--   holds >= $warmup_nights usable nights. One device, one baseline: a value's baseline holds only nights from the
--   source (device) it came from (each data type's *_source), so a person who switches devices starts a fresh
--   baseline, warming up again, for what the new one measures (RMSSD, resting HR and sleep staging differ between
--   devices and algorithms), and a second device's nights never shift the first one's usual.
-- Rolling windows (calendar days ending at the night): 14 nights for variability (SD of sleep time and bedtime,
--   >= $var_min_nights valid nights) and the SRI (mean day-pair agreement, >= $sri_min_pairs pairs); 28 for social
--   jet lag (median mid-sleep of free vs work nights) and the timing EWMA; 7 for the continuity counts and, per
--   kind of sleep and device like the baseline it meets, the HRV week (Plews 2014).
-- Robust z = (value - median) / max(1.4826 * MAD, floor); floors are ours (features/catalog.py).
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
    select person_id, person_index, first_night::date as first_night, last_night::date as last_night
    from signal_targets
),

baselines as (
    -- each target night's features beside its context, windows and baseline statistics (features/windows.py,
    -- which names a person by their place among the targets)
    select f.* exclude (sleep_state_bits), t.person_index, t.first_night as first_target,
        w.* exclude (person_index, night_date)
    from nightly_features f
    join targets t on f.person_id = t.person_id and f.night_date between t.first_night and t.last_night
    join night_windows w on w.person_index = t.person_index and w.night_date = f.night_date
    where f.night_date between $first_target_night and $last_target_night
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
        (ln_sdnn - lnsdnn_med) / greatest(1.4826 * lnsdnn_mad, $floor_ln_sdnn) as ln_sdnn_z,
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
            as continuity_flag
    from baselines
),

-- Nights before a person's first target keep their stored signals: nothing before the first target night
-- changed (every window looks back only), and their own baselines reach further back than this read. The
-- rules below that look at earlier nights (resting HR on consecutive nights, domain and illness flags) read
-- them from night_signals, as far back as the lookback allows row windows over comparable nights to reach
-- ($flag_reach_days: Thresholds.flag_reach_days); a rebuild has none.
stored_before as (
    select t.person_index, s.night_date, t.first_night as first_target, s.resting_hr_delta_bpm,
        s.valid_night and not s.travel_context and not s.warming_up as comparable,
        s.sleep_deviates, s.recovery_deviates, s.illness_deviates,
        (coalesce(f.skin_temp_deviation_c >= $skin_temp_delta_c, false)::int
         + coalesce(s.breathing_rate_delta_brpm >= $br_delta_brpm, false)::int
         + coalesce(s.spo2_delta_pct <= -$spo2_drop_pct, false)::int) >= 2 as illness_two_signs,
        f.tag_illness
    from night_signals s
    join targets t on t.person_id = s.person_id and s.night_date < t.first_night
        and s.night_date >= t.first_night - $flag_reach_days
    join nightly_features f on f.person_id = s.person_id and f.night_date = s.night_date
        and f.night_date between $first_target_night - $flag_reach_days and $last_target_night
    where s.night_date between $first_target_night - $flag_reach_days and $last_target_night
),

rhr_chain as (
    -- the night before's resting-HR rule, whether that night is a target or stored; of the stored nights only the
    -- one before the first target can be it (an older one is not the night before: it reads as no night)
    select person_index, night_date,
        lag(resting_hr_delta_bpm >= $rhr_delta_bpm) over by_night as prev_rhr_elevated,
        lag(night_date) over by_night as prev_night,
        is_target
    from (
        select person_index, night_date, resting_hr_delta_bpm, true as is_target from scored
        union all
        select person_index, night_date, resting_hr_delta_bpm, false from stored_before
        where night_date = first_target - 1
    )
    window by_night as (partition by person_index order by night_date)
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
    join rhr_chain using (person_index, night_date)
),

calibration_spans as (
    -- each widening of a person's sleep threshold and the nights it holds for: from its first night until the
    -- next widening (one row per person and applies_from: the table's key)
    select person_id, applies_from, z_sleep_extra,
        lead(applies_from, 1, date '9999-12-31') over (partition by person_id order by applies_from) as applies_until
    from sleep_calibration
),

calibrated as (
    -- the person's sleep threshold on this night: the default, widened where their own check-ins repeatedly
    -- disagreed with it (features/calibration.py), from the first night the widening applies to. A join on the
    -- spans, not an ASOF join: that sorted every target night (0.23 s of a 1k x 365 rebuild) for a table of a
    -- few rows.
    select b.*, $z_sleep + coalesce(c.z_sleep_extra, 0) as z_sleep_person
    from banded b
    left join calibration_spans c on c.person_id = b.person_id
        and b.night_date >= c.applies_from and b.night_date < c.applies_until
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
        -- recovery is measured only where the source delivers HRV (an HRV baseline exists): a vendor's
        -- daily resting HR alone is a day's value, not the overnight RHR the +4 bpm rule was made for (NightSignal),
        -- and on PMData it did not go with how people said they felt (issue 16, benchmarks/signals_diagnosis.py).
        -- HRV is RMSSD, or SDNN from an Apple Watch, each against its own baseline with the same z rule (a fall in
        -- vagal HRV against one's own usual; Apple Watch SDNN tracked stress in health-care workers, Hirten 2021);
        -- the 7-night band is Plews's for lnRMSSD and stays RMSSD's only.
        case when usable and not warming_up and (lnrmssd_med is not null or lnsdnn_med is not null)
                  and (resting_hr_delta_bpm is not null or ln_rmssd_z is not null or ln_sdnn_z is not null) then
            coalesce(rhr_elevated_2n, false) or coalesce(ln_rmssd_z <= -$z_hrv, false)
            or coalesce(ln_sdnn_z <= -$z_hrv, false) or coalesce(hrv_below_band, false)
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
    select person_index, night_date, first_target, comparable, sleep_deviates, recovery_deviates, illness_deviates,
        illness_two_signs, tag_illness
    from deviations
    union all
    select person_index, night_date, first_target, comparable, sleep_deviates, recovery_deviates, illness_deviates,
        illness_two_signs, tag_illness
    from stored_before
),

flags as (
    select person_index, night_date,
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
        last_n as (partition by person_index order by night_date rows between $flag_window_nights - 1 preceding and current row),
        last_strong as (partition by person_index order by night_date
                        rows between $strong_window_nights - 1 preceding and current row)
),

illness as (
    -- (stored nights older than a window of days before the first target are in no target's window)
    select person_index, night_date,
        sum(coalesce(illness_deviates, false)::int) over last_illness >= $illness_min_nights
            or bool_or(illness_two_signs or tag_illness) over last_illness as illness_flag
    from flag_rows
    where night_date > first_target - $illness_window_days
    window last_illness as (partition by person_index order by night_date
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
        coalesce(i.illness_flag, false) as illness_flag,
        d.ln_sdnn_z
    from deviations d
    left join flags f using (person_index, night_date)
    left join illness i using (person_index, night_date)
)

select * from final
