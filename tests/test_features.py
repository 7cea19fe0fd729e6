"""Nightly features and signals, checked by hand on small cases, against a real DuckDB file."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone

import pytest

from connectors.records import DailyRestingHeartRate, NightlyHrv, night_date_of_wake
from features.engine import compute_features, rebuild_all
from storage.store import NightRange
from tests.helpers import calm_history, local, session


def features_of(store, person, night):
    df = store.query_df("SELECT * FROM nightly_features WHERE person_id = ? AND night_date = ?", [person, night])
    assert len(df) == 1, f"expected one feature row for {person} {night}, got {len(df)}"
    return df.iloc[0]


def test_continuity_features_by_hand(store):
    # 22:40 local bedtime; 15 min awake first; sleep; a 7-min and a 3-min wake; sleep; 5 min awake at the end.
    s = session("a", local("Europe/London", 2026, 1, 9, 22, 40),
                [("wake", 15), ("light", 120), ("wake", 7), ("deep", 90), ("wake", 3), ("rem", 200), ("wake", 5)])
    store.upsert_records([s])
    compute_features(store, {"a": NightRange(s.night_date, s.night_date)})
    f = features_of(store, "a", date(2026, 1, 10))
    assert f.tst_min == 410  # 120 + 90 + 200
    assert f.time_in_bed_min == 440
    assert f.efficiency_pct == pytest.approx(100 * 410 / 440)
    assert f.onset_latency_min == 15
    assert f.waso_min == 10  # 7 + 3; the final 5 min after the last sleep is not WASO
    assert f.awakenings_count == 1  # only the 7-min wake is >= 5 min inside the sleep period
    assert f.bedtime_min == -80  # 22:40 is 80 min before the midnight that begins the wake date
    assert f.wake_min == -80 + 440  # 06:00
    assert f.midsleep_min == pytest.approx((-80 + 360) / 2)
    assert bool(f.valid_night) is True


def test_short_main_sleep_is_not_a_valid_night_and_naps_are_kept_apart(store):
    main = session("a", local("Europe/London", 2026, 1, 10, 3, 0), [("light", 150)], sid="main")
    nap = session("a", local("Europe/London", 2026, 1, 10, 14, 0), [("light", 40)], sid="nap", main=False)
    store.upsert_records([main, nap])
    compute_features(store, {"a": NightRange(date(2026, 1, 10), date(2026, 1, 10))})
    f = features_of(store, "a", date(2026, 1, 10))
    assert f.tst_min == 150
    assert f.nap_min == 40
    assert bool(f.valid_night) is False  # main sleep under 3 h (docs/signals.md: validity)


def test_dst_night_counts_real_minutes_and_local_clock_times(store):
    # Europe/London springs forward at 01:00 GMT on 2026-03-29: a night from 23:00 GMT to 07:00 BST is 7 h.
    s = session("a", local("Europe/London", 2026, 3, 28, 23, 0), [("light", 420)])
    assert s.night_date == date(2026, 3, 29)
    store.upsert_records([s])
    compute_features(store, {"a": NightRange(s.night_date, s.night_date)})
    f = features_of(store, "a", date(2026, 3, 29))
    assert f.tst_min == 420
    assert f.bedtime_min == -60  # 23:00 local (GMT)
    assert f.wake_min == 7 * 60  # 07:00 local (BST): the clock moved, the night did not grow


def test_travel_night_lands_on_the_local_wake_date():
    # Flying London -> New York: the night ends 2026-06-02 03:30 UTC, which is still 1 June in New York.
    end_utc = local("UTC", 2026, 6, 2, 3, 30)
    assert night_date_of_wake(end_utc, "Europe/London") == date(2026, 6, 2)
    assert night_date_of_wake(end_utc, "America/New_York") == date(2026, 6, 1)


def test_night_shift_daytime_sleep_belongs_to_the_day_of_waking(store):
    s = session("n", local("Europe/Oslo", 2026, 2, 3, 8, 30), [("wake", 5), ("light", 400)], tz="Europe/Oslo")
    assert s.night_date == date(2026, 2, 3)
    store.upsert_records([s])
    compute_features(store, {"n": NightRange(s.night_date, s.night_date)})
    f = features_of(store, "n", date(2026, 2, 3))
    assert f.bedtime_min == 8 * 60 + 30  # after midnight of the wake date: positive, no wrap-around
    assert bool(f.valid_night) is True


def test_baseline_warm_up_needs_fourteen_valid_nights_a_week_earlier(store):
    recs = calm_history("w", date(2026, 1, 1), 30)
    touched = store.upsert_records(recs)
    compute_features(store, touched)
    sig = store.query_df("SELECT night_date, baseline_valid_nights, warming_up FROM night_signals "
                         "WHERE person_id = 'w' ORDER BY night_date")
    # Night k (0-based) sees nights 0..k-7 in its baseline: 14 valid nights first at k = 20.
    assert list(sig.baseline_valid_nights[:3]) == [0, 0, 0]
    assert sig.baseline_valid_nights[20] == 14
    assert bool(sig.warming_up[19]) is True and bool(sig.warming_up[20]) is False


def test_one_night_without_sleep_does_not_read_as_learning_the_usual_again(store):
    """A night with no main sleep (the watch left on the charger) has no baseline of its own; the person's status
    and page go by their latest valid night, not by it."""
    from pipelines.people import overview
    from pipelines.status import status_rows

    store.add_person("w", "w@example.org", "Europe/London", "test")
    recs = calm_history("w", date(2026, 1, 1), 30)
    missed = date(2026, 1, 31)  # resting HR and HRV, but no sleep log
    recs += [r for r in calm_history("w", missed, 1) if not hasattr(r, "source_session_id")]
    compute_features(store, store.upsert_records(recs))
    [(valid, warming)] = store.query_rows(
        "SELECT valid_night, warming_up FROM night_signals WHERE person_id = 'w' AND night_date = ?", [missed])
    assert (valid, warming) == (False, True)  # the night itself carries no baseline
    assert [r.warming_up for r in status_rows(store)] == [False]
    seen = overview(store, "w", datetime(2026, 2, 1, 12, tzinfo=timezone.utc))
    assert (seen.warming_up, seen.nights_until_comparisons) == (False, 0)


def _jitter(i: int):
    # deterministic small noise: tst +-12 min, rhr +-1 bpm, rmssd +-6 %
    return (int(12 * math.sin(i * 1.7)), math.sin(i * 2.3), 0.06 * math.sin(i * 0.9))


def test_rough_patch_raises_both_domain_flags_and_calm_stays_quiet(store):
    calm = calm_history("c", date(2026, 1, 1), 70, jitter=_jitter)
    rough = calm_history("r", date(2026, 1, 1), 60, jitter=_jitter)
    # ten rough nights: 90 min less sleep, +6 bpm resting HR, -35 % RMSSD
    rough += calm_history("r", date(2026, 3, 2), 10, tst_min=330, rhr=66.0, rmssd=29.0, jitter=_jitter)
    compute_features(store, store.upsert_records(calm + rough))
    flags = store.query_df("SELECT person_id, night_date, sleep_flag, recovery_flag FROM night_signals "
                           "WHERE sleep_flag OR recovery_flag ORDER BY night_date")
    assert set(flags.person_id) == {"r"}
    first_both = flags[(flags.sleep_flag) & (flags.recovery_flag)].night_date.min().date()
    assert first_both == date(2026, 3, 3)  # second rough night: 2 of the last 3 deviate


def test_incremental_runs_equal_a_full_rebuild(store, tmp_path):
    from storage.store import Store

    recs = calm_history("i", date(2026, 1, 1), 50, jitter=_jitter) + \
        calm_history("i", date(2026, 2, 20), 12, tst_min=330, rhr=66.0, rmssd=29.0, jitter=_jitter)
    # night by night, as the nightly flow does (each run re-sends the last three nights)
    by_night: dict[date, list] = {}
    for r in recs:
        by_night.setdefault(getattr(r, "night_date", None) or r.day, []).append(r)
    nights = sorted(by_night)
    for k, night in enumerate(nights):
        window = [r for d in nights[max(0, k - 3):k + 1] for r in by_night[d]]
        compute_features(store, store.upsert_records(window))
    incremental = store.query_df("SELECT * FROM night_signals ORDER BY night_date")
    inc_features = store.query_df("SELECT * FROM nightly_features ORDER BY night_date")
    with Store(tmp_path / "full.duckdb") as full:
        full.upsert_records(recs)
        rebuild_all(full)
        assert full.query_df("SELECT * FROM night_signals ORDER BY night_date").equals(incremental)
        assert full.query_df("SELECT * FROM nightly_features ORDER BY night_date").equals(inc_features)
    assert incremental.sleep_flag.any()  # the comparison covers flagged nights, not only quiet ones


def test_resting_hr_without_sleep_still_gets_a_row_marked_invalid(store):
    store.upsert_records([DailyRestingHeartRate(person_id="x", source="test", day=date(2026, 1, 5),
                                                resting_hr_bpm=58.0)])
    compute_features(store, {"x": NightRange(date(2026, 1, 5), date(2026, 1, 5))})
    f = features_of(store, "x", date(2026, 1, 5))
    assert f.resting_hr_bpm == 58.0 and bool(f.valid_night) is False and math.isnan(f.tst_min)


def test_night_shift_daytime_sleep_is_compared_with_other_daytime_sleep(store):
    # Three nights on, four off: daytime sleep after shifts is 2 h shorter with +5 bpm resting HR, every week.
    recs = []
    for i in range(84):
        d = date(2026, 1, 1) + timedelta(days=i)
        on_shift = i % 7 < 3
        if on_shift:
            start = local("Europe/Oslo", d.year, d.month, d.day, 8, 30)
            s = session("n", start, [("wake", 10), ("light", 150), ("wake", 8), ("deep", 150)], tz="Europe/Oslo",
                        sid=f"n-{d}")
        else:
            y = d - timedelta(days=1)
            s = session("n", local("Europe/Oslo", y.year, y.month, y.day, 23, 0),
                        [("wake", 10), ("light", 220), ("wake", 5), ("deep", 220)], tz="Europe/Oslo", sid=f"n-{d}")
        recs += [s, DailyRestingHeartRate(person_id="n", source="test", day=d, resting_hr_bpm=60 + 5 * on_shift),
                 NightlyHrv(person_id="n", source="test", night_date=d, rmssd_ms=45 - 8 * on_shift)]
    compute_features(store, store.upsert_records(recs))
    sig = store.query_df("SELECT f.day_sleep, s.* FROM night_signals s JOIN nightly_features f "
                         "USING (person_id, night_date) WHERE NOT s.warming_up")
    assert len(sig) > 20 and sig.day_sleep.any() and (~sig.day_sleep).any()
    assert not sig.sleep_deviates.any() and not sig.recovery_deviates.any()
    assert not sig.sleep_flag.any() and not sig.recovery_flag.any()


def test_travel_and_jet_lag_nights_are_not_compared_or_used_as_baseline(store):
    store.add_person("t", "t@example.org", "Europe/London", "test")
    recs = calm_history("t", date(2026, 1, 1), 60, jitter=_jitter)
    # a week in New York with short sleep and high resting HR, then three rough jet-lag nights at home
    recs += calm_history("t", date(2026, 3, 2), 7, tst_min=320, rhr=67.0, rmssd=30.0, tz="America/New_York",
                         jitter=_jitter)
    recs += calm_history("t", date(2026, 3, 9), 3, tst_min=320, rhr=67.0, rmssd=30.0, jitter=_jitter)
    recs += calm_history("t", date(2026, 3, 12), 20, jitter=_jitter)
    compute_features(store, store.upsert_records(recs))
    sig = store.query_df("SELECT night_date, travel_context, sleep_deviates, recovery_deviates, sleep_flag, "
                         "recovery_flag FROM night_signals ORDER BY night_date")
    travel = sig[sig.travel_context]
    assert [d.date() for d in travel.night_date] == [date(2026, 3, 2) + timedelta(days=i) for i in range(10)]
    assert travel.sleep_deviates.isna().all()  # not compared at all
    assert not sig.sleep_flag.any() and not sig.recovery_flag.any()
