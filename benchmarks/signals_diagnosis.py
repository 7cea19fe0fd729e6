"""Issue 16: do the sleep and recovery flags line up with how people say they felt? A reproducible diagnosis.

    .venv/bin/python benchmarks/signals_diagnosis.py --nights /tmp/sig/nights.parquet [--pmdata /work/shared/data/pmdata]

`--nights` is `emberwatch features export` of the 16 PMData people (loaded as a user would: `person add`, `import
fitbit-export`, `features export`). The morning reports (p01-p08 `pmsys/wellness.csv`) and training logs
(`pmsys/srpe.csv`) are read here with pandas. Nothing is fitted: every rule evaluated below is declared in
CANDIDATES before looking, and the 8 people are only used to check the direction of each.

Measure ("worse by (SD)", positive = worse): each report (fatigue, stress, sleep quality; 1-5, higher = better;
0/empty = missing) is z-scored on the person's own reports and its sign flipped. The report's local date
(Europe/Oslo) is the wake date of the night it describes.
* same morning: mean over flagged nights that have a report that morning;
* within 3 nights: mean over the reports of the flagged night's morning and the two after (pooled);
* per person: the within-3-nights figure averaged per person first, then over persons (a long episode of one
  person cannot dominate it).
"""

from __future__ import annotations

import argparse
import warnings
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
REPORTS = ["fatigue", "stress", "sleep_quality"]
REPORTERS = [f"p{i:02d}" for i in range(1, 9)]


def load_reports(pmdata: Path) -> pd.DataFrame:
    out = []
    for p in REPORTERS:
        w = pd.read_csv(pmdata / p / "pmsys" / "wellness.csv")
        local = pd.to_datetime(w.effective_time_frame, utc=True).dt.tz_convert("Europe/Oslo")
        w["date"] = pd.to_datetime(local.dt.date)
        for c in REPORTS:
            w[c] = pd.to_numeric(w[c], errors="coerce").replace(0, np.nan)
        w = w.groupby("date")[REPORTS].mean().reset_index()
        for c in REPORTS:
            w[c + "_w"] = -(w[c] - w[c].mean()) / w[c].std()
            w[c + "_sd"] = w[c].std()
        w["person_id"] = p
        out.append(w)
    return pd.concat(out, ignore_index=True)


def load_training(pmdata: Path) -> pd.DataFrame:
    out = []
    for p in REPORTERS:
        s = pd.read_csv(pmdata / p / "pmsys" / "srpe.csv")
        local = pd.to_datetime(s.end_date_time, utc=True).dt.tz_convert("Europe/Oslo")
        s["date"] = pd.to_datetime(local.dt.date)
        s["load"] = s.perceived_exertion * s.duration_min  # session RPE x minutes (Foster)
        s["person_id"] = p
        out.append(s.groupby(["person_id", "date"]).load.sum().reset_index())
    return pd.concat(out, ignore_index=True)


def load_sleep_score_rhr(pmdata: Path) -> pd.DataFrame:
    out = []
    for p in REPORTERS:
        s = pd.read_csv(pmdata / p / "fitbit" / "sleep_score.csv")
        s["date"] = pd.to_datetime(pd.to_datetime(s.timestamp, utc=True).dt.tz_convert("Europe/Oslo").dt.date)
        s["person_id"] = p
        out.append(s[s.resting_heart_rate > 0].groupby(["person_id", "date"]).resting_heart_rate.mean().reset_index())
    return pd.concat(out, ignore_index=True)


def effect(nights: pd.DataFrame, mask: pd.Series, reports: pd.DataFrame) -> dict:
    fl = nights.loc[mask.fillna(False).astype(bool), ["person_id", "night_date"]]
    fl8 = fl[fl.person_id.isin(REPORTERS)]
    same = fl8.merge(reports, left_on=["person_id", "night_date"], right_on=["person_id", "date"])
    parts = []
    for k in range(3):
        f = fl8.copy()
        f["date"] = f.night_date + timedelta(days=k)
        parts.append(f)
    within = pd.concat(parts).merge(reports, on=["person_id", "date"])
    cols = [c + "_w" for c in REPORTS]
    return {
        "n": len(same), "persons": same.person_id.nunique(),
        "same": same[cols].mean().values, "within3": within[cols].mean().values,
        "per_person": within.groupby("person_id")[cols].mean().mean().values,
    }


def person_bootstrap(nights: pd.DataFrame, mask: pd.Series, reports: pd.DataFrame, reps: int = 1000,
                     seed: int = 16) -> np.ndarray:
    """90 % interval of the pooled within-3-nights figures, resampling the 8 persons with replacement (nights of
    one person are not independent: one long episode can carry the pooled mean)."""
    fl = nights.loc[mask.fillna(False).astype(bool), ["person_id", "night_date"]]
    parts = []
    for k in range(3):
        f = fl.copy()
        f["date"] = f.night_date + timedelta(days=k)
        parts.append(f)
    within = pd.concat(parts).merge(reports, on=["person_id", "date"])
    cols = [c + "_w" for c in REPORTS]
    sums = within.groupby("person_id")[cols].sum().reindex(REPORTERS).fillna(0)
    counts = within.groupby("person_id")[cols].count().reindex(REPORTERS).fillna(0)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(reps):
        pick = rng.integers(0, len(REPORTERS), len(REPORTERS))
        c = counts.values[pick].sum(axis=0)
        out.append(np.where(c > 0, sums.values[pick].sum(axis=0) / np.maximum(c, 1), np.nan))
    return np.nanpercentile(np.array(out), [5, 95], axis=0)


def fmt(v) -> str:
    return " / ".join("  nan" if np.isnan(x) else f"{x:+.2f}" for x in v)


def table(rows: list[tuple[str, dict]]) -> None:
    print(f"| {'rule':58s} | {'n':>4s} | pers | same morning fat / str / sq | within 3 nights       | per person (3 nights) |")
    print(f"|{'-' * 60}|------|------|-----------------------------|-----------------------|-----------------------|")
    for name, e in rows:
        print(f"| {name:58s} | {e['n']:4d} | {e['persons']:4d} | {fmt(e['same']):27s} | {fmt(e['within3']):21s} | "
              f"{fmt(e['per_person']):21s} |")


def wcorr(df: pd.DataFrame, a: str, b: str) -> tuple[float, int]:
    """Within-person Pearson correlation (both centred on the person's own mean)."""
    d = df[["person_id", a, b]].dropna().copy()
    for c in (a, b):
        d[c] = d[c] - d.groupby("person_id")[c].transform("mean")
    return float(np.corrcoef(d[a], d[b])[0, 1]), len(d)


def shifted(nights: pd.DataFrame, col: str, days: int) -> pd.Series:
    """The value of `col` on the calendar night `days` later (negative: earlier), per person; NaN if absent."""
    s = nights[["person_id", "night_date", col]].copy()
    s["night_date"] = s.night_date - timedelta(days=days)
    return nights[["person_id", "night_date"]].merge(s, on=["person_id", "night_date"], how="left")[col].values


def comparable_window_count(nights: pd.DataFrame, col: str, window: int) -> pd.Series:
    """How many of the last `window` comparable nights (rows, as the SQL flags count) have `col` true."""
    out = pd.Series(np.nan, index=nights.index)
    comp = nights[nights.comparable]
    counts = (comp.assign(v=comp[col].fillna(False).astype(int))
              .groupby("person_id").v.transform(lambda s: s.rolling(window, min_periods=1).sum()))
    out.loc[comp.index] = counts
    return out


def replay_alerts(nights: pd.DataFrame, sleep_flag: pd.Series, recovery_flag: pd.Series,
                  sleep_alone: pd.Series | None = None) -> tuple[int, float, dict, pd.DataFrame]:
    """Replays the real alert function night by night (14-day cooldown, re-arm, illness hold) with the given flags.
    `sleep_alone`: nights where the sleep domain may alert alone (passed as sleep_strong_flag with
    single_domain_strong on)."""
    from alerts.backtest import replay_person
    from alerts.rules import AlertRules, NightSignal

    rules = AlertRules(single_domain_strong=sleep_alone is not None)
    total, months, per = 0, 0.0, {}
    alert_nights = []
    df = nights.assign(c_s=sleep_flag.fillna(False).astype(bool), c_r=recovery_flag.fillna(False).astype(bool),
                       c_a=(sleep_alone if sleep_alone is not None else pd.Series(False, index=nights.index))
                       .fillna(False).astype(bool))
    for pid, g in df.sort_values("night_date").groupby("person_id"):
        sig = [NightSignal(night_date=r.night_date.date(), valid_night=bool(r.valid_night), warming_up=bool(r.warming_up),
                           sleep_flag=r.c_s, recovery_flag=r.c_r, illness_flag=bool(r.illness_flag),
                           travel_context=bool(r.travel_context), sleep_strong_flag=r.c_a)
               for r in g.itertuples()]
        alerts, _ = replay_person(sig, rules)
        alert_nights += [(pid, pd.Timestamp(a)) for a in alerts]
        past = g[g.valid_night & ~g.warming_up.astype(bool)]
        m = ((past.night_date.max() - past.night_date.min()).days + 1) / 30.44 if len(past) else 0.0
        total += len(alerts)
        months += m
        per[pid] = len(alerts)
    return total, total / months if months else 0.0, per, pd.DataFrame(alert_nights, columns=["person_id", "night_date"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nights", default="/tmp/sig/nights.parquet")
    ap.add_argument("--pmdata", default="/work/shared/data/pmdata")
    args = ap.parse_args()
    pm = Path(args.pmdata)
    n = pd.read_parquet(args.nights)
    n["night_date"] = pd.to_datetime(n.night_date)
    n = n.sort_values(["person_id", "night_date"]).reset_index(drop=True)
    n["comparable"] = n.valid_night & ~n.travel_context.fillna(False) & ~n.warming_up.fillna(True)
    W = load_reports(pm)
    L = load_training(pm)
    n8 = n[n.person_id.isin(REPORTERS)]

    # ---------------------------------------------------------------- 1. the table of issue 16, today's rules
    print("# 1. The rules in this export, on p01-p08 (issue 16's table; 'worse by (SD)', positive = worse)\n")
    tmed = n[n.valid_night].groupby("person_id").tst_min.median()
    rmed = n.groupby("person_id").resting_hr_bpm.median()
    naive_tst = n.valid_night & (n.tst_min < n.person_id.map(tmed) - 60)
    naive_rhr = n.resting_hr_bpm >= n.person_id.map(rmed) + 4
    base = [
        ("flags today (sleep_flag or recovery_flag)", effect(n, n.sleep_flag | n.recovery_flag, W)),
        ("recovery_flag alone", effect(n, n.recovery_flag, W)),
        ("sleep_flag alone", effect(n, n.sleep_flag, W)),
        ("sleep_deviates (single night)", effect(n, n.sleep_deviates == True, W)),  # noqa: E712
        ("naive: TST < personal median - 60 min", effect(n, naive_tst, W)),
        ("naive: resting HR >= personal median + 4 bpm", effect(n, naive_rhr, W)),
    ]
    table(base)
    print("\n90 % intervals of 'within 3 nights', resampling persons (fatigue / stress / sleep quality):")
    for name, m in [("flags", n.sleep_flag | n.recovery_flag), ("naive TST", naive_tst), ("naive RHR", naive_rhr),
                    ("sleep_deviates", n.sleep_deviates == True)]:  # noqa: E712
        lo, hi = person_bootstrap(n, m, W)
        print(f"  {name:15s} " + "  ".join(f"[{a:+.2f}, {b:+.2f}]" for a, b in zip(lo, hi)))

    # ---------------------------------------------------------------- 2a. who the recovery flag is
    print("\n# 2a. Whose nights the recovery flag is\n")
    rf = n8[n8.recovery_flag]
    print(rf.groupby("person_id").night_date.agg(["min", "max", "count"]).to_string())
    p05 = n[(n.person_id == "p05") & (n.night_date >= "2020-02-25") & (n.night_date <= "2020-03-12")]
    print("\np05 around the step (daily resting HR, bpm):",
          ", ".join(f"{d:%m-%d} {v:.0f}" for d, v in zip(p05.night_date, p05.resting_hr_bpm) if not np.isnan(v)))
    w5 = W[W.person_id == "p05"]
    print("p05's reports: SD of fatigue %.2f, sleep quality %.2f (all 8: median SD %.2f, %.2f);"
          " share of p05's fatigue reports equal to 3: %.0f %%" % (
              w5.fatigue.std(), w5.sleep_quality.std(), W.groupby("person_id").fatigue.std().median(),
              W.groupby("person_id").sleep_quality.std().median(), 100 * (w5.fatigue == 3).mean()))
    print("p05 fatigue/sleep quality 3 is %+.2f / %+.2f SD 'worse' (i.e. better than their mean)" % (
        -(3 - w5.fatigue.mean()) / w5.fatigue.std(), -(3 - w5.sleep_quality.mean()) / w5.sleep_quality.std()))
    table([("recovery_flag, p05 left out", effect(n, n.recovery_flag & (n.person_id != "p05"), W)),
           ("recovery_flag, p05 only", effect(n, n.recovery_flag & (n.person_id == "p05"), W))])

    # ---------------------------------------------------------------- 2b. which day's resting HR belongs to a night
    print("\n# 2b. Attribution: which day's resting HR goes with night N (wake date D)?\n")
    ss = load_sleep_score_rhr(pm)
    R = n8[["person_id", "night_date", "resting_hr_bpm"]].dropna().rename(columns={"night_date": "date"})
    for k, lab in [(0, "D (wake date, today)"), (1, "D-1 (the day before the night)")]:
        r = R.copy()
        r["date"] = r.date + timedelta(days=k)
        m = ss.merge(r, on=["person_id", "date"])
        print(f"Fitbit's per-sleep resting HR (sleep_score.csv, sleep ending on D) vs daily resting HR of {lab}: "
              f"mean |diff| {np.mean(np.abs(m.resting_heart_rate - m.resting_hr_bpm)):.2f} bpm, "
              f"equal when rounded {100 * np.mean(np.round(m.resting_hr_bpm) == m.resting_heart_rate):.0f} % (n={len(m)})")
    n["rhr_delta_dm1"] = shifted(n, "resting_hr_delta_bpm", -1)
    n["rhr_delta_dp1"] = shifted(n, "resting_hr_delta_bpm", 1)
    F = W.merge(n[["person_id", "night_date", "resting_hr_delta_bpm", "rhr_delta_dm1", "rhr_delta_dp1", "tst_z"]]
                .rename(columns={"night_date": "date"}), on=["person_id", "date"], how="left")
    print("\nWithin-person correlation of the resting-HR delta (vs the 60-day baseline) with the morning report "
          "(positive = higher HR, worse report):")
    for col, lab in [("rhr_delta_dm1", "RHR of D-1"), ("resting_hr_delta_bpm", "RHR of D (today's pairing)"),
                     ("rhr_delta_dp1", "RHR of D+1"), ("tst_z", "for scale: -TST z")]:
        sign = -1 if col == "tst_z" else 1
        cs = [wcorr(F.assign(x=sign * F[col]), "x", c + "_w") for c in REPORTS]
        print(f"  {lab:28s} fatigue {cs[0][0]:+.2f}  stress {cs[1][0]:+.2f}  sleep quality {cs[2][0]:+.2f}  (n={cs[0][1]})")
    table([("RHR >= baseline + 4, single night, RHR of D-1", effect(n, n.rhr_delta_dm1 >= 4, W)),
           ("RHR >= baseline + 4, single night, RHR of D (today)", effect(n, n.resting_hr_delta_bpm >= 4, W)),
           ("RHR >= baseline + 4, single night, RHR of D+1", effect(n, n.rhr_delta_dp1 >= 4, W)),
           ("rhr_elevated_2n (today)", effect(n, n.rhr_elevated_2n, W))])

    # ---------------------------------------------------------------- 2c. training
    print("\n# 2c. Training (srpe.csv: session RPE x minutes, summed per local day)\n")
    T = n8[["person_id", "night_date", "resting_hr_delta_bpm"]].rename(columns={"night_date": "date"})
    for k, lab in [(1, "load_dm1"), (0, "load_d")]:
        l = L.copy()
        l["date"] = l.date + timedelta(days=k)
        T = T.merge(l.rename(columns={"load": lab}), on=["person_id", "date"], how="left")
    T[["load_dm1", "load_d"]] = T[["load_dm1", "load_d"]].fillna(0)
    T = T.merge(W, on=["person_id", "date"], how="left")
    T = T.sort_values(["person_id", "date"])
    T["load_7d"] = T.groupby("person_id").load_dm1.transform(lambda s: s.rolling(7, min_periods=4).sum())
    print("within-person r: load of D-1 vs RHR delta of D %+.2f; load of D vs RHR delta of D %+.2f; "
          "7-day load before D vs RHR delta of D %+.2f" % (
              wcorr(T, "load_dm1", "resting_hr_delta_bpm")[0], wcorr(T, "load_d", "resting_hr_delta_bpm")[0],
              wcorr(T, "load_7d", "resting_hr_delta_bpm")[0]))
    print("within-person r with the report of morning D (positive = more load, worse): "
          + "; ".join(f"{lab}: " + ", ".join(f"{c} {wcorr(T, col, c + '_w')[0]:+.2f}" for c in REPORTS)
                      for col, lab in [("load_dm1", "load D-1"), ("load_d", "load D (after the report)")]))
    hard = T.load_dm1 >= T.groupby("person_id").load_dm1.transform(lambda s: s[s > 0].quantile(0.75))
    print("RHR delta the day after a hard day (top quarter of the person's sessions): %+.2f bpm vs %+.2f otherwise"
          % (T[hard].resting_hr_delta_bpm.mean(), T[~hard].resting_hr_delta_bpm.mean()))

    # ---------------------------------------------------------------- 2d. persistence
    print("\n# 2d. Persistence: why 3 of 5 washes out the single-night signal\n")
    for c in REPORTS:
        w = W.sort_values(["person_id", "date"])
        nxt = w.groupby("person_id")[c + "_w"].shift(-1)
        ok = (w.groupby("person_id").date.shift(-1) == w.date + timedelta(days=1)) & nxt.notna() & w[c + "_w"].notna()
        print(f"lag-1 autocorrelation of {c:13s} reports (consecutive mornings): {np.corrcoef(w[c + '_w'][ok], nxt[ok])[0, 1]:+.2f}")
    n["sd_prev1"] = shifted(n, "sleep_deviates", -1)
    n["sd_next1"] = shifted(n, "sleep_deviates", 1)
    dev = n.sleep_deviates == True  # noqa: E712
    print("P(sleep deviates tomorrow | deviates tonight) = %.2f vs P(deviates) = %.2f (comparable nights, all 16)" % (
        (n[dev & n.comparable].sd_next1 == True).mean(), dev[n.comparable].mean()))  # noqa: E712
    table([("sleep_flag on a night that itself deviates", effect(n, n.sleep_flag & dev, W)),
           ("sleep_flag on a night that does not deviate", effect(n, n.sleep_flag & ~dev, W)),
           ("sleep_deviates, the night after is normal (isolated end)", effect(n, dev & (n.sd_next1 != True), W)),
           ("ceiling: same-morning fatigue and sleep quality >= 1 SD worse",
            effect(n, pd.Series(n[["person_id", "night_date"]].merge(
                W.assign(c=W[["fatigue_w", "sleep_quality_w"]].mean(axis=1)), how="left",
                left_on=["person_id", "night_date"], right_on=["person_id", "date"]).c.values >= 1, index=n.index), W))])

    # ---------------------------------------------------------------- 3. candidates declared before looking
    print("\n# 3. Candidates (declared from physiology before looking; thresholds are today's, none fitted)\n")
    n["sd_count3"] = comparable_window_count(n, "sleep_deviates", 3)
    n["sd_count5"] = comparable_window_count(n, "sleep_deviates", 5)
    # TST >= 60 min under the usual (anchors E: IHS). The baseline median is not exported: approximated here by
    # the median of the valid, non-excluded nights of the 60 days before (the engine's frame ends 7 days earlier)
    med60 = (n[n.valid_night & ~n.baseline_excluded.fillna(False)].set_index("night_date")
             .groupby("person_id").tst_min.transform(lambda s: s.rolling("60D").median().shift(1)))
    n["tst_med_rolling"] = np.nan
    n.loc[n.valid_night & ~n.baseline_excluded.fillna(False), "tst_med_rolling"] = med60.values
    n["tst_med_rolling"] = n.groupby("person_id").tst_med_rolling.ffill()
    n["short60"] = n.comparable & (n.tst_min <= n.tst_med_rolling - 60)
    n["short60_count5"] = comparable_window_count(n, "short60", 5)
    no_hrv = n.groupby("person_id").ln_rmssd.transform(lambda s: s.notna().sum() == 0)
    A = dev & (n.sd_count3 >= 2)  # tonight deviates and >= 2 of the last 3 comparable nights
    B = dev & (n.sd_count5 >= 3)  # tonight deviates and >= 3 of the last 5 (today's window, but only while it lasts)
    C = n.short60 & (n.short60_count5 >= 3)  # anchors E: TST >= 60 min under the usual on >= 3 of 5, tonight too
    cands = [
        ("A: deviates tonight and on >= 2 of the last 3 nights", A),
        ("B: deviates tonight and on >= 3 of the last 5 nights", B),
        ("C: TST >= 60 min under usual tonight and >= 3 of last 5", C),
        ("A or C", A | C),
    ]
    table([(name, effect(n, m, W)) for name, m in cands])

    print("\n# 4. Alerts on all 16 (replayed through alerts.rules with the 14-day budget)\n")
    tot, rate, per, _ = replay_alerts(n, n.sleep_flag, n.recovery_flag)
    print(f"today: {tot} alerts, {rate:.3f} per person-month")
    rows = []
    for name, m in cands[:2] + cands[3:]:
        tot, rate, per, an = replay_alerts(n, n.sleep_flag, n.recovery_flag, sleep_alone=m & no_hrv)
        print(f"no HRV -> sleep alone may alert on {name.split(':')[0]}: {tot} alerts, {rate:.3f} per person-month; "
              + ", ".join(f"{k} {v}" for k, v in per.items() if v))
        key = n.person_id + n.night_date.astype(str)
        rows.append((f"alert nights, sleep alone on {name.split(':')[0]}",
                     effect(n, key.isin(set(an.person_id + an.night_date.astype(str))), W)))
    table(rows)
    print("\nNights flagged (all 16) per candidate:", ", ".join(f"{name[:1]} {int(m.sum())}" for name, m in cands))


if __name__ == "__main__":
    main()
