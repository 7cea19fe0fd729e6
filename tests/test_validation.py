"""The statistics behind `emberwatch validate`, on small hand-made data whose answers are known."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from alerts.validation import (auroc, binary_auroc, bootstrap_mean, compare, night_rule_flags, within_person_z,
                               worse_by)

D0 = date(2020, 1, 1)


def reports(person: str, scale: str, values: list[float], first: date = D0) -> pd.DataFrame:
    return pd.DataFrame({"person_id": person, "report_date": [first + timedelta(days=i) for i in range(len(values))],
                         "scale": scale, "value": values})


def test_z_is_within_person_and_scale_and_thin_or_flat_scales_are_left_out():
    df = pd.concat([reports("a", "fatigue", [1, 2, 3, 4, 5] * 2), reports("b", "fatigue", [3, 3, 3, 5, 5] * 2),
                    reports("a", "stress", [3] * 12), reports("a", "mood", [1, 5] * 4),
                    reports("a", "week_drained", [1, 2, 3, 4, 5] * 2)])
    z = within_person_z(df)
    assert set(zip(z.person_id, z.scale)) == {("a", "fatigue"), ("b", "fatigue"), ("a", "week_drained")}
    a = z[(z.person_id == "a") & (z.scale == "fatigue")].z.to_numpy()
    assert a.mean() == pytest.approx(0) and a.std(ddof=1) == pytest.approx(1)
    assert a[0] == pytest.approx(-2 / np.std([1, 2, 3, 4, 5] * 2, ddof=1))
    # "drained" is worse when higher: its z is turned so that higher is better, like every other scale.
    assert z[z.scale == "week_drained"].z.to_numpy()[0] == pytest.approx(-a[0])


def test_a_flag_on_exactly_the_bad_mornings_is_worse_by_the_gap_between_them():
    z = [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]
    assert worse_by(z, [True, True, False, False, False, False]) == pytest.approx(2.0)
    assert worse_by(z, [False, False, True, True, False, False]) == pytest.approx(-1.0)
    assert worse_by(z, [True] * 6) is None and worse_by(z, [False] * 6) is None


def test_auroc_is_one_for_a_perfect_flag_a_half_for_a_random_one_and_binary_counts_agree():
    labels = np.array([True, True, False, False, False])
    assert auroc(labels.astype(float), labels) == 1.0
    assert auroc((~labels).astype(float), labels) == 0.0
    assert auroc([0.5] * 5, labels) == 0.5
    rng = np.random.default_rng(1)
    y, s = rng.random(20000) < 0.3, (rng.random(20000) < 0.2).astype(float)
    assert auroc(s, y) == pytest.approx(0.5, abs=0.02)
    tp, fp = int((s[y] == 1).sum()), int((s[~y] == 1).sum())
    assert binary_auroc(tp, int(y.sum()), fp, int((~y).sum())) == pytest.approx(auroc(s, y))
    assert auroc([1.0, 0.0], [True, True]) is None


def test_the_bootstrap_interval_holds_the_estimate_and_narrows_with_more_people():
    rng = np.random.default_rng(3)
    few, many = rng.normal(0.3, 0.5, 8), rng.normal(0.3, 0.5, 200)
    for values in (few, many):
        lo, hi = bootstrap_mean(values, resamples=1000, seed=16)
        assert lo <= values.mean() <= hi
    assert np.diff(bootstrap_mean(many, 1000, 16)) < np.diff(bootstrap_mean(few, 1000, 16)) / 2
    assert bootstrap_mean(few, 1000, 16) == bootstrap_mean(few, 1000, 16)  # fixed seed: same answer


def nights(person: str, tst: list[float], rhr: list[float] | None = None, **flags: list) -> pd.DataFrame:
    n = len(tst)
    df = pd.DataFrame({"person_id": person, "night_date": [D0 + timedelta(days=i) for i in range(n)],
                       "tst_min": tst, "resting_hr_bpm": rhr or [60.0] * n})
    for col in ("sleep_flag", "recovery_flag", "sleep_deviates"):
        df[col] = pd.array(flags.get(col, [False] * n), dtype="boolean")
    return df


def test_naive_rules_read_the_persons_own_median_and_missing_is_no_flag():
    df = nights("a", [420, 420, 361, 359, None, 420], [60, 64, 63.9, None, 60, 60],
                sleep_deviates=[None, True, False, None, None, None])
    flags = night_rule_flags(df, {"a": [D0 + timedelta(days=5)]})
    assert flags.naive_short_sleep.tolist() == [False, False, False, True, False, False]
    assert flags.naive_rhr_up.tolist() == [False, True, False, False, False, False]
    assert flags.sleep_deviates.tolist() == [False, True, False, False, False, False]
    assert flags.alert.tolist() == flags.flags_today.tolist() == [False] * 5 + [True]


def test_compare_on_two_people_whose_flags_mark_exactly_their_bad_mornings():
    # Each person: 12 mornings, bad (value 1) on mornings 3 and 9, otherwise 3 or 4. The sleep flag sits on
    # exactly the nights before those mornings (a night's date is its morning's date).
    values = [3, 4, 1, 3, 4, 3, 4, 3, 1, 4, 3, 4]
    bad = [i for i, v in enumerate(values) if v == 1]
    rep = pd.concat([reports(p, "fatigue", values) for p in ("a", "b")])
    z = within_person_z(rep)
    flagged = [i in bad for i in range(12)]
    night = pd.concat([nights(p, [420.0] * 12, sleep_flag=flagged) for p in ("a", "b")])
    counts, cells = compare(z, night_rule_flags(night, {}), resamples=500, seed=1)
    za = z[z.person_id == "a"].z.to_numpy()
    expected = za[[i not in bad for i in range(12)]].mean() - za[bad].mean()
    cell = cells["sleep_flag"]["fatigue"]
    assert cell.same_morning["worse_by"] == pytest.approx(expected, abs=1e-3)
    assert cell.same_morning["ci95"] == pytest.approx([expected, expected], abs=1e-3)  # two identical people
    assert cell.same_morning["people"] == 2
    assert counts["all"]["sleep_flag"] == 4 and counts["all"]["flags_today"] == 4
    # Within 3 nights the flag also covers the two mornings after each bad one: sensitivity 1, specificity 6/10.
    assert cell.auroc["value"] == pytest.approx((1 + 6 / 10) / 2, abs=1e-3)
    # Yesterday's report flags the mornings after the bad ones; a rule that never fires has no difference.
    y = cells["yesterday_report"]["fatigue"].same_morning
    after_bad = [i - 1 in bad for i in range(12)]
    exp_y = za[[not f for f in after_bad]].mean() - za[after_bad].mean()
    assert y["worse_by"] == pytest.approx(exp_y, abs=1e-3)
    assert cells["alert"]["fatigue"].same_morning["worse_by"] is None


def test_the_mornings_after_a_flag_are_compared_on_their_own_and_never_include_a_flagged_night():
    # Flags on nights 2 and 3 (a run) and 8. One night after: mornings 4 and 9 (morning 3 is itself flagged, so it
    # is the run's own morning, not a morning after). Two nights after: mornings 4, 5 and 10 (4 follows night 2 by
    # two, 5 follows night 3). The values make the mornings after better than usual, as after a recovery night, and
    # the flagged mornings worse.
    values = [3, 3, 1, 1, 5, 5, 3, 3, 1, 5, 5, 3]
    flagged = [i in (2, 3, 8) for i in range(12)]
    rep = reports("a", "sleep_quality", values)
    z = within_person_z(rep)
    _, cells = compare(z, night_rule_flags(nights("a", [420.0] * 12, sleep_flag=flagged), {}), resamples=200, seed=1)
    za = z.z.to_numpy()

    def expected(mornings: list[int]) -> float:
        return za[[i not in mornings for i in range(12)]].mean() - za[mornings].mean()

    after = cells["sleep_flag"]["sleep_quality"].after_flag
    assert after["1"]["worse_by"] == pytest.approx(expected([4, 9]), abs=1e-3)
    assert after["2"]["worse_by"] == pytest.approx(expected([4, 5, 10]), abs=1e-3)
    assert after["1"]["worse_by"] < 0 < cells["sleep_flag"]["sleep_quality"].same_morning["worse_by"]
    assert cells["alert"]["sleep_quality"].after_flag["1"]["worse_by"] is None  # never fires: no difference


def test_only_morning_reports_are_compared_with_nights(store):
    from datetime import datetime

    from alerts.validation import latest_reports
    from storage.check_ins import CheckIn, upsert_check_ins

    store.add_person("a", "a@example.org", "Europe/Oslo", "fitbit-export")
    at = datetime(2020, 1, 2, 7)
    upsert_check_ins(store, [CheckIn("a", D0, "fatigue", 2, "pmsys", at), CheckIn("a", D0, "fatigue", 4, "csv",
                                                                                    datetime(2020, 1, 3)),
                             CheckIn("a", D0, "week_drained", 4, "weekly-email", at)])
    rows = latest_reports(store)
    assert list(zip(rows.scale, rows.value)) == [("fatigue", 4.0)]  # the later of two sources for one morning
