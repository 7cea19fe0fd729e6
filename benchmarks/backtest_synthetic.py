"""Acceptance benchmark for issue 4: synthetic cohorts (>= 50 people x 180 nights, several seeds) imported
through the real ingest step, features rebuilt, then alerts replayed night by night by `alerts.backtest`.

    .venv/bin/python benchmarks/backtest_synthetic.py [--people 50] [--nights 180] [--seeds 7 11 23]

Prints, per seed and pooled: recall of scripted rough patches within 7 days of onset, median lead time,
alerts per person-month among calm people, and how many illness patches produced an alert.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.base import PersonContext  # noqa: E402
from connectors.synthetic import SyntheticCohort, SyntheticSource  # noqa: E402
from alerts.backtest import backtest  # noqa: E402
from features.engine import rebuild_all  # noqa: E402
from storage.store import Store  # noqa: E402
from features.thresholds import Thresholds  # noqa: E402
from alerts.rules import AlertRules  # noqa: E402
from pipelines import steps  # noqa: E402


def _overrides(pairs: list[str]) -> tuple[Thresholds, AlertRules]:
    t, r = Thresholds(), AlertRules()
    for pair in pairs:
        name, _, text = pair.partition("=")
        target = t if hasattr(t, name) else r
        current = getattr(target, name)
        value = text.lower() in ("1", "true", "yes") if isinstance(current, bool) else type(current)(text)
        if target is t:
            t = replace(t, **{name: value})
        else:
            r = replace(r, **{name: value})
    return t, r


def run_seed(people: int, nights: int, seed: int, workdir: Path, thresholds: Thresholds = Thresholds(),
             rules: AlertRules = AlertRules()):
    # the three wearers of other devices (an Apple Watch, an Oura ring, a Fitbit then a ring) come after `people`
    cohort = SyntheticCohort(n_people=people, n_nights=nights, seed=seed, device_wearers=True)
    source = SyntheticSource(cohort)
    with Store(workdir / f"bench-{seed}.duckdb") as store:
        cfg = {"n_people": people, "n_nights": nights, "seed": seed, "device_wearers": True}
        for p in cohort.people:
            store.add_person(p.person_id, p.email, p.tz_name, "synthetic", cfg)
            for _, device in p.devices:
                store.add_source(p.person_id, device)
        fetched = [steps.Fetched(PersonContext(p.person_id, p.tz_name), source,
                                 list(source.fetch(PersonContext(p.person_id, p.tz_name), cohort.nights[0],
                                                   cohort.nights[-1])))
                   for p in cohort.people]
        steps.ingest(store, fetched)
        rebuild_all(store, thresholds)
        return backtest(store, rules), {p.person_id: " then ".join(d for _, d in p.devices)
                                        for p in cohort.people if p.devices}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=50)
    ap.add_argument("--nights", type=int, default=180)
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 11, 23])
    ap.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                    help="override a Thresholds or AlertRules setting, e.g. --set illness_window_days=3")
    args = ap.parse_args()
    thresholds, rules = _overrides(args.set)
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            t0 = time.monotonic()
            report, wearers = run_seed(args.people, args.nights, seed, Path(tmp), thresholds, rules)
            reports.append(report)
            s = report.summary()
            print(f"seed {seed}: {args.people} people x {args.nights} nights ({time.monotonic() - t0:.0f} s)  "
                  f"recall<=7d {s['rough_recall_within_7d']:.0%} of {s['rough_patches']} rough patches, "
                  f"median lead {s['median_lead_days']} d, calm {s['calm_alerts_per_person_month']:.3f} "
                  f"alerts/person-month ({s['calm_alerts']} alerts, {s['calm_people']} people), "
                  f"illness patches alerted {s['illness_patches_alerted']}/{s['illness_patches']}, "
                  f"all people {s['alerts_per_person_month']:.3f}/person-month", flush=True)
            for person in (p for p in report.people if p.person_id in wearers):
                patch = next((p for p in report.patches if p.person_id == person.person_id), None)
                caught = "" if patch is None else (f", {patch.kind} patch alerted after {patch.lead_days} d"
                                                   if patch.lead_days is not None else f", {patch.kind} patch missed")
                print(f"  {person.person_id} ({wearers[person.person_id]}, {person.profile}): "
                      f"{len(person.alerts)} alert(s){caught}", flush=True)
    rough = [p for r in reports for p in r.patches if p.kind == "rough"]
    caught = [p for p in rough if p.lead_days is not None and p.lead_days <= 7]
    ill = [p for r in reports for p in r.patches if p.kind == "illness"]
    calm = [p for r in reports for p in r.people if p.profile == "calm"]
    calm_months = sum(p.months for p in calm)
    print("pooled:")
    print(f"  rough patches alerted within 7 days of onset: {len(caught)}/{len(rough)} = {len(caught) / len(rough):.1%}")
    print(f"  median lead time onset -> alert: {statistics.median(p.lead_days for p in caught)} days "
          f"(mean {statistics.mean(p.lead_days for p in caught):.1f})")
    print(f"  calm people: {sum(len(p.alerts) for p in calm)} alerts in {calm_months:.1f} person-months = "
          f"{sum(len(p.alerts) for p in calm) / calm_months:.3f} per person-month")
    print(f"  illness-like patches that produced an alert: {sum(1 for p in ill if p.first_alert)}/{len(ill)}")
    missed = [f"{p.person_id}@{p.onset_night}" for r in reports for p in r.patches
              if p.kind == "rough" and (p.lead_days is None or p.lead_days > 7)]
    if missed:
        print(f"  missed or late: {len(missed)}")


if __name__ == "__main__":
    main()
