-- night_signals: each night compared with the person's own usual, and the per-domain flags.
-- Reads nightly_features for `signal_targets(person_id, first_night, last_night)` plus the lookback the
-- baselines need (the caller passes $read_from_days); the caller keeps only rows inside the targets.
--
-- Baseline (SIGNALS.md): the valid nights of the same kind (night sleep / daytime shift sleep) in the 60 days that end a week before the night
--   (RANGE 66 .. 7 days preceding), median and MAD. Leaving out the last week keeps a rough patch from
--   becoming its own baseline while it builds. "Warming up" until the baseline holds >= $warmup_nights valid nights.
-- Robust z = (value - median) / max(1.4826 * MAD, floor). The floors stop a very regular person's tiny MAD
--   from turning ordinary noise into large z (floors are our choice, not from a source; see features/catalog.py).
-- Per-night deviation, worse direction only:
--   sleep:    TST z <= -$z_sleep, or >= 2 of {efficiency z <= -$z_sleep, WASO z >= $z_sleep, onset z >= $z_sleep,
--             awakenings z >= $z_sleep}
--   recovery: resting HR >= baseline median + $rhr_delta_bpm (NightSignal, Alavi 2022), or lnRMSSD z <= -$z_hrv
--             (below the baseline band, Plews 2014)
--   illness:  skin temperature deviation >= $skin_temp_delta_c, or breathing rate >= baseline + $br_delta_brpm
-- Domain flag: >= $flag_min_nights of the last $flag_window_nights comparable nights deviate (SIGNALS.md).
-- Illness flag: any illness deviation in the last $illness_window_nights comparable nights.
with

targets as (
    select person_id, first_night, last_night from signal_targets
),

features as (
    select f.*,
        -- away from home, or back for fewer than $jet_lag_nights nights: travel explains the sleep, so these
        -- nights neither count toward a flag nor shape the baseline (SIGNALS.md excludes travel nights)
        bool_or(f.away_from_home) over (
            partition by f.person_id order by f.night_date
            range between to_days($jet_lag_nights) preceding and current row
        ) as travel_context
    from nightly_features f
    join targets t on f.person_id = t.person_id
        and f.night_date between t.first_night - to_days($read_from_days) and t.last_night
),

history as (
    select *,
        valid_night and not travel_context as usable,
        case when valid_night and not travel_context then tst_min end as v_tst,
        case when valid_night and not travel_context then efficiency_pct end as v_eff,
        case when valid_night and not travel_context then waso_min end as v_waso,
        case when valid_night and not travel_context then onset_latency_min end as v_onset,
        case when valid_night and not travel_context then awakenings_count end as v_awak,
        case when valid_night and not travel_context then resting_hr_bpm end as v_rhr,
        case when valid_night and not travel_context then ln_rmssd end as v_lnrmssd,
        case when valid_night and not travel_context then breathing_rate_brpm end as v_br
    from features
),

baselines as (
    select person_id, night_date, valid_night, day_sleep, usable, travel_context,
        tst_min, efficiency_pct, waso_min, onset_latency_min, awakenings_count, resting_hr_bpm, ln_rmssd,
        breathing_rate_brpm, skin_temp_deviation_c,
        count(v_tst) over w as baseline_valid_nights,
        median(v_tst) over w as tst_med, mad(v_tst) over w as tst_mad,
        median(v_eff) over w as eff_med, mad(v_eff) over w as eff_mad,
        median(v_waso) over w as waso_med, mad(v_waso) over w as waso_mad,
        median(v_onset) over w as onset_med, mad(v_onset) over w as onset_mad,
        median(v_awak) over w as awak_med, mad(v_awak) over w as awak_mad,
        median(v_rhr) over w as rhr_med,
        median(v_lnrmssd) over w as lnrmssd_med, mad(v_lnrmssd) over w as lnrmssd_mad,
        median(v_br) over w as br_med
    from history
    window w as (
        partition by person_id, day_sleep order by night_date
        range between to_days($baseline_end_days + $baseline_span_days - 1) preceding
              and to_days($baseline_end_days) preceding
    )
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
        breathing_rate_brpm - br_med as breathing_rate_delta_brpm
    from baselines
),

deviations as (
    select *,
        usable and not warming_up as comparable,
        case when usable and not warming_up then
            coalesce(tst_z <= -$z_sleep, false)
            or (coalesce(efficiency_z <= -$z_sleep, false)::int + coalesce(waso_z >= $z_sleep, false)::int
                + coalesce(onset_latency_z >= $z_sleep, false)::int + coalesce(awakenings_z >= $z_sleep, false)::int) >= 2
        end as sleep_deviates,
        case when usable and not warming_up and (resting_hr_delta_bpm is not null or ln_rmssd_z is not null) then
            coalesce(resting_hr_delta_bpm >= $rhr_delta_bpm, false) or coalesce(ln_rmssd_z <= -$z_hrv, false)
        end as recovery_deviates,
        case when valid_night then
            coalesce(skin_temp_deviation_c >= $skin_temp_delta_c, false)
            or coalesce(breathing_rate_delta_brpm >= $br_delta_brpm, false)
        end as illness_deviates
    from scored
),

flags as (
    select person_id, night_date,
        sum(coalesce(sleep_deviates, false)::int) over last_n >= $flag_min_nights as sleep_flag,
        sum(coalesce(recovery_deviates, false)::int) over last_n >= $flag_min_nights as recovery_flag,
        bool_or(coalesce(illness_deviates, false)) over last_illness as illness_flag
    from deviations
    where comparable
    window
        last_n as (partition by person_id order by night_date rows between $flag_window_nights - 1 preceding and current row),
        last_illness as (partition by person_id order by night_date
                         rows between $illness_window_nights - 1 preceding and current row)
),

final as (
    select d.person_id, d.night_date, d.valid_night, d.travel_context, d.baseline_valid_nights, d.warming_up,
        d.tst_z, d.efficiency_z, d.waso_z, d.onset_latency_z, d.awakenings_z, d.resting_hr_delta_bpm, d.ln_rmssd_z,
        d.sleep_deviates, d.recovery_deviates, d.illness_deviates,
        coalesce(f.sleep_flag, false) as sleep_flag,
        coalesce(f.recovery_flag, false) as recovery_flag,
        coalesce(f.illness_flag, false) as illness_flag
    from deviations d
    left join flags f using (person_id, night_date)
    join targets t on d.person_id = t.person_id and d.night_date between t.first_night and t.last_night
)

select * from final
