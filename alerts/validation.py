"""`emberwatch validate`: do the nights emberwatch flags answer to how people said they felt the next morning?

Everything is within person. Each report is z-scored on that person's own reports of that scale (mean and SD;
a person-scale with fewer than 10 reports or an SD of 0 is left out), oriented so that higher is better. A
morning belongs to the night that ends on it (a report's local date equals that night's `night_date`).

For each rule and scale:

- **same morning, worse by (SD)**: mean z on the person's other mornings minus mean z on mornings after a flagged
  night (positive = flagged mornings were worse than the person's other mornings, the sign of issue 16's table);
- **within 3 nights, worse by (SD)**: the same with a morning counted as flagged when its own night or one of the
  two before it was flagged;
- **the mornings after, worse by (SD)**: the same for the morning 1 and 2 nights after a flagged night whose own
  night was not flagged (`after_flag`). It separates what a flag says about the morning it ends on from what it
  says about the days after: a sleep-quality report speaks of the night just slept, while fatigue carries over
  (sleep debt accumulates and is repaid over more than one night: Van Dongen 2003, Banks 2010), so the two need
  not move together after a flag. Nothing is tuned on it; it explains the "within 3 nights" figure;
- **AUROC** for "a worse-than-usual morning (z <= -0.5)", with "flagged within 3 nights" as the score; the
  mornings of everyone are pooled (labels are already within person). The score is 0/1, so the Mann-Whitney
  AUROC equals (sensitivity + specificity) / 2.

Averaging: the point estimate is the **mean over people** of each person's own difference, not a mean over
pooled mornings. Each person counts once however often they reported, so one prolific reporter cannot carry the
figure, and the bootstrap (which resamples people, the independent units) estimates the spread of exactly that
number. A person whose mornings are all flagged, or none, has no difference and is left out of that cell. The
pooled-mornings difference is in the JSON too (`pooled_worse_by`), for comparison with figures computed that way.

Only morning reports count (sources `pmsys` and `csv`; the weekly email's answers speak of a week). Every
reported morning is counted for every rule, whether or not the watch recorded its night: a missing night
sends no note, so for the person it is an unflagged night. Flags are read as stored (as `features export` shows
them); alerts are replayed night by night through `alerts.backtest.replay_person` (via `backtest`), and alerts
per person-month use the backtest's person-months.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from alerts.backtest import backtest
from alerts.rules import AlertRules
from storage.check_ins import SCALES, load_check_ins
from storage.store import Store

MIN_REPORTS = 10  # fewer reports than this on a scale: the person's own mean and SD mean little
WORSE_Z = -0.5  # a "worse than usual" morning: half the person's own SD below their mean
WITHIN_NIGHTS = 3  # the morning's own night and the two before it
AFTER_NIGHTS = (1, 2)  # the mornings after a flagged night shown on their own (its own night unflagged)
NAIVE_SHORT_SLEEP_MIN = 60.0  # naive baseline: total sleep < personal median - 60 min
NAIVE_RHR_UP_BPM = 4.0  # naive baseline: resting HR >= personal median + 4 bpm (the NightSignal step, one night)
RESAMPLES = 2000
SEED = 16
SHOWN_SCALES = ("fatigue", "stress", "sleep_quality")  # the text table; JSON has every scale with reports


@dataclass(frozen=True)
class Rule:
    name: str
    label: str  # for the text table
    uses_reports: bool = False  # "yesterday's report": flagged from the previous morning's report, per scale


RULES = (
    Rule("flags_today", "flags today (sleep or recovery flag, or alert)"),
    Rule("recovery_flag", "recovery_flag alone"),
    Rule("sleep_flag", "sleep_flag alone"),
    Rule("sleep_deviates", "sleep_deviates (single night)"),
    Rule("alert", "alert"),
    Rule("naive_short_sleep", "naive: sleep < own median - 60 min"),
    Rule("naive_rhr_up", "naive: resting HR >= own median + 4"),
    Rule("yesterday_report", "yesterday's report worse (z <= -0.5)", uses_reports=True),
)


# --- the statistics: plain functions ----------------------------------------------------------------------------


def within_person_z(reports: pd.DataFrame, min_reports: int = MIN_REPORTS) -> pd.DataFrame:
    """Columns person_id, report_date, scale, value -> the same rows plus `z` (higher = better), dropping
    person-scales with fewer than `min_reports` reports or an SD of 0. SD is the sample SD (ddof 1)."""
    if reports.empty:
        return reports.assign(z=pd.Series(dtype=float))
    grouped = reports.groupby(["person_id", "scale"])["value"]
    n, mean, sd = grouped.transform("count"), grouped.transform("mean"), grouped.transform("std")
    keep = (n >= min_reports) & (sd > 0)
    out = reports.loc[keep].copy()
    z = (out["value"] - mean[keep]) / sd[keep]
    better_up = out["scale"].map(lambda s: SCALES[s].higher_is_better if s in SCALES else True)
    out["z"] = np.where(better_up, z, -z)
    return out.reset_index(drop=True)


def worse_by(z: Sequence[float], flagged: Sequence[bool]) -> float | None:
    """Mean z on unflagged mornings minus mean z on flagged ones (positive = flagged mornings were worse).
    None when either group is empty."""
    z_arr, f_arr = np.asarray(z, dtype=float), np.asarray(flagged, dtype=bool)
    if f_arr.all() or not f_arr.any():
        return None
    return float(z_arr[~f_arr].mean() - z_arr[f_arr].mean())


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Mann-Whitney AUROC: the chance a positive scores above a negative, ties counting one half. None without
    both classes."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return None
    ranks = pd.Series(np.concatenate([pos, neg])).rank(method="average").to_numpy()
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def binary_auroc(true_pos: float, positives: float, false_pos: float, negatives: float) -> float | None:
    """AUROC of a 0/1 score from counts: (sensitivity + specificity) / 2, equal to `auroc` for such a score."""
    if positives <= 0 or negatives <= 0:
        return None
    return float((true_pos / positives + 1 - false_pos / negatives) / 2)


def bootstrap_mean(values: Sequence[float], resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, float]:
    """95 % percentile interval of the mean, resampling the values (people) with replacement."""
    v = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(resamples, len(v)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def bootstrap_binary_auroc(counts: Sequence[tuple[int, int, int, int]], resamples: int = RESAMPLES,
                           seed: int = SEED) -> tuple[float, float] | None:
    """95 % interval of the pooled AUROC, resampling people (each a row: TP, P, FP, N) with replacement."""
    c = np.asarray(counts, dtype=float).reshape(-1, 4)
    if len(c) == 0:
        return None
    rng = np.random.default_rng(seed)
    sums = c[rng.integers(0, len(c), size=(resamples, len(c)))].sum(axis=1)
    ok = (sums[:, 1] > 0) & (sums[:, 3] > 0)
    if not ok.any():
        return None
    s = sums[ok]
    values = (s[:, 0] / s[:, 1] + 1 - s[:, 2] / s[:, 3]) / 2
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def flagged_within(flag_on: Callable[[date], bool], morning: date, nights: int = WITHIN_NIGHTS) -> bool:
    return any(flag_on(morning - timedelta(days=k)) for k in range(nights))


def morning_after_a_flag(flag_on: Callable[[date], bool], morning: date, nights: int) -> bool:
    """The morning `nights` after a flagged night, its own night not flagged (so not the flag's own morning)."""
    return flag_on(morning - timedelta(days=nights)) and not flag_on(morning)


# --- flags per night ---------------------------------------------------------------------------------------------


def night_rule_flags(nights: pd.DataFrame, alert_nights: dict[str, Iterable[date]]) -> pd.DataFrame:
    """One row per person-night: a boolean column per rule that reads the watch (all but "yesterday's report").
    `nights` has person_id, night_date, tst_min, resting_hr_bpm, sleep_flag, recovery_flag, sleep_deviates.
    Not enough data (NA) is not a flag: no note goes out on it."""
    df = nights[["person_id", "night_date"]].copy()
    df["night_date"] = pd.to_datetime(df["night_date"]).dt.date

    def flag(col: str) -> pd.Series:
        return nights[col].astype("boolean").fillna(False).astype(bool).to_numpy()

    alerts = {(p, pd.Timestamp(d).date()) for p, ds in alert_nights.items() for d in ds}
    df["sleep_flag"], df["recovery_flag"], df["sleep_deviates"] = (
        flag("sleep_flag"), flag("recovery_flag"), flag("sleep_deviates"))
    df["alert"] = [(p, d) in alerts for p, d in zip(df["person_id"], df["night_date"])]
    df["flags_today"] = df["sleep_flag"] | df["recovery_flag"] | df["alert"]
    tst = pd.to_numeric(nights["tst_min"], errors="coerce")
    rhr = pd.to_numeric(nights["resting_hr_bpm"], errors="coerce")
    tst_median = tst.groupby(nights["person_id"]).transform("median")
    rhr_median = rhr.groupby(nights["person_id"]).transform("median")
    df["naive_short_sleep"] = (tst < tst_median - NAIVE_SHORT_SLEEP_MIN).fillna(False).astype(bool).to_numpy()
    df["naive_rhr_up"] = (rhr >= rhr_median + NAIVE_RHR_UP_BPM).fillna(False).astype(bool).to_numpy()
    return df


# --- the report --------------------------------------------------------------------------------------------------


@dataclass
class Cell:
    """One rule on one scale."""

    same_morning: dict[str, Any]
    within_3_nights: dict[str, Any]
    auroc: dict[str, Any]
    after_flag: dict[str, dict[str, Any]] = field(default_factory=dict)  # "1" | "2" nights after -> summary


@dataclass
class ValidationReport:
    people: list[str]
    reports: dict[str, int]  # scale -> reported mornings used (after the within-person filter)
    flagged_nights: dict[str, dict[str, Any]]  # all | with_a_report -> rule -> count (yesterday: scale -> count)
    cells: dict[str, dict[str, Cell]]  # rule -> scale -> cell
    alerts_per_person_month: float
    alerts: int
    person_months: float
    per_person: list[dict[str, Any]] = field(default_factory=list)
    resamples: int = RESAMPLES
    seed: int = SEED

    def to_json(self) -> dict[str, Any]:
        return {
            "people": self.people,
            "method": {"z": "within person, per scale, sample SD; higher = better",
                       "worse_by": "mean z on other mornings minus mean z on flagged mornings (positive = worse)",
                       "averaging": "mean over people of each person's difference",
                       "interval": f"bootstrap over people, {self.resamples} resamples, seed {self.seed}, 95 % "
                                   "percentile", "worse_morning_z": WORSE_Z, "within_nights": WITHIN_NIGHTS,
                       "after_flag": "the morning k nights after a flagged night whose own night was not flagged",
                       "min_reports": MIN_REPORTS},
            "reported_mornings": self.reports,
            "alerts": self.alerts, "person_months": round(self.person_months, 2),
            "alerts_per_person_month": round(self.alerts_per_person_month, 3),
            "rules": [{"rule": r.name, "label": r.label, "flagged_nights": self.flagged_nights["all"].get(r.name),
                       "flagged_nights_with_a_report": self.flagged_nights["with_a_report"].get(r.name),
                       "scales": {s: vars(c) for s, c in self.cells.get(r.name, {}).items()}} for r in RULES],
            "per_person": self.per_person,
        }


def _difference_summary(diffs: list[float], pooled: float | None, resamples: int, seed: int) -> dict[str, Any]:
    if not diffs:
        return {"worse_by": None, "ci95": None, "people": 0, "pooled_worse_by": pooled}
    lo, hi = bootstrap_mean(diffs, resamples, seed)
    return {"worse_by": round(float(np.mean(diffs)), 3), "ci95": [round(lo, 3), round(hi, 3)],
            "people": len(diffs), "pooled_worse_by": None if pooled is None else round(pooled, 3)}


def compare(z_reports: pd.DataFrame, night_flags: pd.DataFrame, resamples: int = RESAMPLES,
            seed: int = SEED) -> tuple[dict[str, Any], dict[str, dict[str, Cell]]]:
    """The statistics for every rule and scale, from z-scored reports (`within_person_z`) and night flags
    (`night_rule_flags`). Returns ({"all": flagged nights per rule, "with_a_report": those whose morning has a
    report}, rule -> scale -> Cell). For "yesterday's report" both count, per scale, the worse mornings."""
    flagged: dict[str, Any] = {r.name: int(night_flags[r.name].sum()) for r in RULES if not r.uses_reports
                               and r.name in night_flags}
    flag_sets = {r.name: {(p, d) for p, d, f in zip(night_flags["person_id"], night_flags["night_date"],
                                                    night_flags[r.name]) if f}
                 for r in RULES if not r.uses_reports and r.name in night_flags}
    reported = {(p, pd.Timestamp(d).date()) for p, d in zip(z_reports["person_id"], z_reports["report_date"])}
    flagged_reported: dict[str, Any] = {name: sum(1 for key in keys if key in reported)
                                        for name, keys in flag_sets.items()}
    cells: dict[str, dict[str, Cell]] = {r.name: {} for r in RULES}
    yesterday_counts: dict[str, int] = {}
    for scale, on_scale in z_reports.groupby("scale", sort=True):
        people = sorted(on_scale["person_id"].unique())
        per_rule: dict[str, dict[str, list]] = {r.name: {"same": [], "within": [], "counts": [], "z": [],
                                                          "f_same": []} | {f"after{k}": [] for k in AFTER_NIGHTS}
                                                for r in RULES}
        for person in people:
            mine = on_scale[on_scale["person_id"] == person].sort_values("report_date")
            days = [pd.Timestamp(d).date() for d in mine["report_date"]]
            z = mine["z"].to_numpy(dtype=float)
            worse_days = {d for d, zz in zip(days, z) if zz <= WORSE_Z}
            labels = z <= WORSE_Z
            for rule in RULES:
                if rule.uses_reports:
                    # A night is flagged when the morning before it was reported worse than usual.
                    def on(night: date, _w=worse_days) -> bool:
                        return night - timedelta(days=1) in _w
                    yesterday_counts[scale] = yesterday_counts.get(scale, 0) + len(worse_days)
                elif rule.name in flag_sets:
                    def on(night: date, _s=flag_sets[rule.name], _p=person) -> bool:
                        return (_p, night) in _s
                else:
                    continue
                same = np.array([on(d) for d in days])
                within = np.array([flagged_within(on, d) for d in days])
                bucket = per_rule[rule.name]
                after = [(f"after{k}", np.array([morning_after_a_flag(on, d, k) for d in days]))
                         for k in AFTER_NIGHTS]
                for key, f in (("same", same), ("within", within), *after):
                    diff = worse_by(z, f)
                    if diff is not None:
                        bucket[key].append(diff)
                bucket["z"].append(z)
                bucket["f_same"].append(same)
                bucket["counts"].append((int((within & labels).sum()), int(labels.sum()),
                                         int((within & ~labels).sum()), int((~labels).sum())))
                bucket.setdefault("scores", []).append(within)
                bucket.setdefault("labels", []).append(labels)
                bucket.setdefault("f_within", []).append(within)
        for rule in RULES:
            bucket = per_rule[rule.name]
            if not bucket["z"]:
                continue
            all_z = np.concatenate(bucket["z"])
            pooled_same = worse_by(all_z, np.concatenate(bucket["f_same"]))
            pooled_within = worse_by(all_z, np.concatenate(bucket["f_within"]))
            scores, labels_all = np.concatenate(bucket["scores"]), np.concatenate(bucket["labels"])
            value = auroc(scores.astype(float), labels_all)
            ci = bootstrap_binary_auroc(bucket["counts"], resamples, seed)
            tp, p, fp, n = (int(x) for x in np.sum(bucket["counts"], axis=0))
            cells[rule.name][scale] = Cell(
                same_morning=_difference_summary(bucket["same"], pooled_same, resamples, seed),
                within_3_nights=_difference_summary(bucket["within"], pooled_within, resamples, seed),
                auroc={"value": None if value is None else round(value, 3),
                       "ci95": None if ci is None else [round(ci[0], 3), round(ci[1], 3)],
                       "worse_mornings": p, "other_mornings": n, "worse_flagged": tp, "other_flagged": fp},
                after_flag={str(k): _difference_summary(bucket[f"after{k}"], None, resamples, seed)
                            for k in AFTER_NIGHTS})
    flagged["yesterday_report"] = yesterday_counts
    flagged_reported["yesterday_report"] = yesterday_counts
    return {"all": flagged, "with_a_report": flagged_reported}, cells


def load_nights(store: Store, people: Sequence[str]) -> pd.DataFrame:
    return store.query_df(
        "SELECT f.person_id, f.night_date, f.tst_min, f.resting_hr_bpm, s.sleep_flag, s.recovery_flag, "
        "s.sleep_deviates FROM nightly_features f LEFT JOIN night_signals s USING (person_id, night_date) "
        "WHERE list_contains(?, f.person_id) ORDER BY f.person_id, f.night_date", [list(people)])


# Morning reports only: the weekly email's answers speak of a whole week, not of the night before a morning.
MORNING_SOURCES = ("pmsys", "csv")


def latest_reports(store: Store, people: Sequence[str] | None = None) -> pd.DataFrame:
    """One value per person, morning and scale: the latest recorded when two sources hold the same morning."""
    df = load_check_ins(store)
    df = df[df["source"].isin(MORNING_SOURCES)]
    if people is not None:
        df = df[df["person_id"].isin(list(people))]
    df = df.sort_values(["recorded_at"]).groupby(["person_id", "report_date", "scale"], as_index=False).last()
    return df[["person_id", "report_date", "scale", "value"]].reset_index(drop=True)


def validate(store: Store, people: Sequence[str] | None = None, rules: AlertRules = AlertRules(),
             resamples: int = RESAMPLES, seed: int = SEED) -> ValidationReport:
    """Everyone with check-ins (or `people`), against their own reports."""
    reports = latest_reports(store, people)
    who = sorted(reports["person_id"].unique())
    z = within_person_z(reports)
    run = backtest(store, rules)
    replayed = {p.person_id: p for p in run.people if p.person_id in who}
    nights = load_nights(store, who)
    flags = night_rule_flags(nights, {p: r.alerts for p, r in replayed.items()})
    flagged, cells = compare(z, flags, resamples, seed)
    months = sum(p.months for p in replayed.values())
    alerts = sum(len(p.alerts) for p in replayed.values())
    per_person = [{"person_id": p, "reported_mornings": int(z[z.person_id == p]["report_date"].nunique()),
                   "nights": int((flags.person_id == p).sum()),
                   "alerts": len(replayed[p].alerts) if p in replayed else 0,
                   "alerts_per_person_month": round(replayed[p].alerts_per_month, 3) if p in replayed else None}
                  for p in who]
    return ValidationReport(
        people=list(who), reports={s: int(n) for s, n in z.groupby("scale").size().items()},
        flagged_nights=flagged, cells=cells, alerts_per_person_month=alerts / months if months else 0.0,
        alerts=alerts, person_months=months, per_person=per_person, resamples=resamples, seed=seed)


# --- text ----------------------------------------------------------------------------------------------------------

_SHORT = {"fatigue": "fatigue", "stress": "stress", "sleep_quality": "sleep q."}


def _num(v: float | None) -> str:
    return "—" if v is None else f"{v:+.2f}"


def format_report(report: ValidationReport, scales: Sequence[str] = SHOWN_SCALES) -> str:
    scales = [s for s in scales if s in report.reports]
    w, label = 9, 47
    groups = ("same morning, worse by (SD)", "within 3 nights, worse by", "AUROC, worse morning")
    width = w * len(scales)

    def count(kind: str, rule: Rule) -> str:
        n = report.flagged_nights[kind].get(rule.name)
        return "—" if n is None else str(n.get("fatigue", "—") if isinstance(n, dict) else n)

    def people(rule: Rule) -> str:
        cell = report.cells.get(rule.name, {}).get(scales[0]) if scales else None
        return str(cell.same_morning["people"]) if cell else "0"

    lines = [
        f"{len(report.people)} people ({', '.join(report.people)}); reported mornings: "
        + ", ".join(f"{s} {n}" for s, n in report.reports.items() if s in scales) + ".",
        "z within person; worse by = the person's other mornings minus flagged mornings, in their own SD "
        "(positive = worse);",
        "mean over people of each person's difference; 'people' = those with both flagged and other mornings.",
        "",
        (f"{'':<{label}}{'flagged nights':>15}{'people':>7}  " + "  ".join(f"{g:<{width}}" for g in groups)).rstrip(),
        f"{'rule':<{label}}{'all':>7}{'report':>8}{'':>7}  "
        + "  ".join("".join(f"{_SHORT.get(s, s[:8]):>{w}}" for s in scales) for _ in groups),
    ]
    for rule in RULES:
        cells = report.cells.get(rule.name, {})
        row = f"{rule.label:<{label}}{count('all', rule):>7}{count('with_a_report', rule):>8}{people(rule):>7}  "
        parts = []
        for key in ("same_morning", "within_3_nights"):
            parts.append("".join(f"{_num(getattr(cells[s], key)['worse_by']) if s in cells else '—':>{w}}"
                                 for s in scales))
        aurocs = [cells[s].auroc["value"] if s in cells else None for s in scales]
        parts.append("".join(f"{'—' if a is None else format(a, '.2f'):>{w}}" for a in aurocs))
        lines.append((row + "  ".join(parts)).rstrip())
    lines += ["", f"95 % intervals (bootstrap over people, {report.resamples} resamples, seed {report.seed}), "
                  + ", ".join(_SHORT.get(s, s) for s in scales) + ":",
              f"{'rule':<{label}}{'same morning':<{3 * 14}}{'within 3 nights':<{3 * 14}}AUROC"]

    def ci(v: list[float] | None, signed: bool = True) -> str:
        if v is None:
            return "—"
        return f"{v[0]:+.2f}..{v[1]:+.2f}" if signed else f"{v[0]:.2f}..{v[1]:.2f}"

    for rule in RULES:
        cells = report.cells.get(rule.name, {})
        row = f"{rule.label:<{label}}"
        for key in ("same_morning", "within_3_nights"):
            row += "".join(f"{ci(getattr(cells[s], key)['ci95']) if s in cells else '—':<14}" for s in scales)
        row += "".join(f"{ci(cells[s].auroc['ci95'], False) if s in cells else '—':<12}" for s in scales)
        lines.append(row.rstrip())
    lines += ["", "the mornings after a flagged night (its own night not flagged), worse by (SD), "
                  + ", ".join(_SHORT.get(s, s) for s in scales) + ":",
              (f"{'rule':<{label}}" + "".join(f"{f'{k} night(s) after':<{w * len(scales) + 2}}"
                                               for k in AFTER_NIGHTS)).rstrip()]
    for rule in RULES:
        cells = report.cells.get(rule.name, {})
        row = f"{rule.label:<{label}}"
        for k in AFTER_NIGHTS:
            row += "".join(f"{_num(cells[s].after_flag[str(k)]['worse_by']) if s in cells else '—':>{w}}"
                           for s in scales) + "  "
        lines.append(row.rstrip())
    lines += ["", "flagged nights: all nights of these people / those whose morning has a report; for yesterday's "
                  "report, worse fatigue mornings.",
              f"alerts: {report.alerts} over {report.person_months:.1f} person-months = "
              f"{report.alerts_per_person_month:.3f} per person-month (the backtest's person-months)."]
    return "\n".join(lines)
