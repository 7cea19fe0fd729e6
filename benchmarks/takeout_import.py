"""Google Takeout import benchmark: a year of one person's Takeout (both layouts), imported into a fresh DuckDB.

Usage:  .venv/bin/python benchmarks/takeout_import.py [--days 365] [--zip] [--seed 7]

What it does (in a temp folder, removed afterwards):
 1. writes a year of Takeout for one person in Europe/Oslo, shaped as the research note describes
    (shared/research/google-takeout-health-export.md): layout A `Global Export Data/sleep-YYYY-MM-01.json` (one
    stage log a night, ~30 segments, a nap a week) and `steps-YYYY-MM-01.json` (one entry per minute, 525,600 for a
    year, `MM/dd/yy HH:mm:ss`), layout B `Sleep Score/sleep_score.csv` (one row a night) and
    `Physical Activity_GoogleData/Steps/steps_YYYY-MM-01.csv` (the tracker every 5 minutes, the phone every hour),
    and the vital-sign folders as tests/fixtures/google_takeout/SOURCE.md describes them: a nightly HRV, breathing
    and SpO2 summary file a day, a monthly Computed Temperature file, and the 5-minute HRV detail and per-minute
    SpO2 files real archives carry beside them (not read, but listed and skipped);
 2. with --zip, packs it as the .zip Google hands out;
 3. times `pipelines.import_google_takeout.import_takeout` (read, archive raw, parse, quarantine, upsert, features)
    and prints the wall time against the issue's goal (<= 10 s), with the rows it wrote.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
import zipfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TZ = ZoneInfo("Europe/Oslo")
GOAL_S = 10.0


def sleep_log(log_id: int, start: datetime, rng: random.Random, nap: bool = False) -> dict:
    levels = ["asleep", "restless"] if nap else ["light", "deep", "light", "rem"]
    data, t = [], start
    count = 3 if nap else rng.randint(24, 36)
    if not nap:
        data.append({"dateTime": t.strftime("%Y-%m-%dT%H:%M:%S.000"), "level": "wake", "seconds": 600})
        t += timedelta(seconds=600)
    for i in range(count):
        seconds = rng.randint(5, 25) * 60 if not nap else 600
        data.append({"dateTime": t.strftime("%Y-%m-%dT%H:%M:%S.000"), "level": levels[i % len(levels)],
                     "seconds": seconds})
        t += timedelta(seconds=seconds)
    total = int((t - start).total_seconds() // 60)
    awake = 10 if not nap else 0
    # The watch's segments run on one clock; the end time is read on the wall clock, so a night across a clock
    # change ends an hour later or earlier on the wall than its segments' sum (as real exports do).
    t = (start.replace(tzinfo=TZ).astimezone(timezone.utc) + timedelta(minutes=total)).astimezone(TZ).replace(
        tzinfo=None)
    return {"logId": log_id, "dateOfSleep": t.date().isoformat(), "startTime": start.strftime("%Y-%m-%dT%H:%M:%S.000"),
            "endTime": t.strftime("%Y-%m-%dT%H:%M:%S.000"), "duration": total * 60000, "minutesToFallAsleep": 0,
            "minutesAsleep": total - awake, "minutesAwake": awake, "minutesAfterWakeup": 0, "timeInBed": total,
            "efficiency": 95, "type": "classic" if nap else "stages", "infoCode": 0, "logType": "auto_detected",
            "levels": {"summary": {}, "data": data}, "mainSleep": not nap}


def write_vitals(hrv: Path, spo2: Path, day: date, start: datetime, log: dict, rng: random.Random) -> None:
    """One night's files in the vital-sign folders: the summaries emberwatch reads and the detail it skips."""
    (hrv / f"Daily Heart Rate Variability Summary - {day:%Y-%m}-({day.day}).csv").write_text(
        f"timestamp,rmssd,nremhr,entropy\n{day}T00:00:00,{rng.uniform(25, 60):.3f},{rng.uniform(48, 62):.3f},2.7\n")
    (hrv / f"Daily Respiratory Rate Summary - {day}.csv").write_text(
        f"timestamp,daily_respiratory_rate\n{day}T00:00:00,{rng.uniform(13, 17):.1f}\n")
    minutes = log["timeInBed"]
    detail = "".join(f"{(start + timedelta(minutes=m)):%Y-%m-%dT%H:%M:%S},{rng.uniform(20, 70):.3f},0.9,600,350\n"
                     for m in range(0, minutes, 5))
    (hrv / f"Heart Rate Variability Details - {day}.csv").write_text(
        "timestamp,rmssd,coverage,low_frequency,high_frequency\n" + detail)
    begin_utc = start.replace(tzinfo=TZ).astimezone(timezone.utc)
    per_minute = "".join(f"{(begin_utc + timedelta(minutes=m)):%Y-%m-%dT%H:%M:%SZ},{rng.uniform(92, 99):.1f}\n"
                         for m in range(minutes))
    (spo2 / f"Minute SpO2 - {day}.csv").write_text("timestamp,value\n" + per_minute)


def generate(root: Path, first: date, days: int, seed: int) -> None:
    rng = random.Random(seed)
    a = root / "Takeout/Fitbit/Global Export Data"
    b = root / "Takeout/Fitbit/Physical Activity_GoogleData/Steps"
    score = root / "Takeout/Fitbit/Sleep Score"
    hrv = root / "Takeout/Fitbit/Heart Rate Variability"
    spo2 = root / "Takeout/Fitbit/Oxygen Saturation (SpO2)"
    temperature = root / "Takeout/Fitbit/Temperature"
    for folder in (a, b, score, hrv, spo2, temperature):
        folder.mkdir(parents=True, exist_ok=True)
    months: dict[date, dict[str, list]] = {}
    score_rows = []
    spo2_rows = []
    for n in range(days):
        day = first + timedelta(days=n)
        month = months.setdefault(day.replace(day=1), {"sleep": [], "steps": [], "tracker": [], "phone": []})
        start = datetime.combine(day, datetime.min.time()) - timedelta(minutes=rng.randint(20, 120))
        log = sleep_log(10_000 + n * 2, start, rng)
        month["sleep"].append(log)
        if day.weekday() == 6:
            month["sleep"].append(sleep_log(10_001 + n * 2, datetime.combine(day, datetime.min.time())
                                            + timedelta(hours=14), rng, nap=True))
        wake_utc = datetime.fromisoformat(log["endTime"]).replace(tzinfo=TZ).astimezone(timezone.utc)
        score_rows.append([log["logId"], wake_utc.strftime("%Y-%m-%dT%H:%M:%SZ"), 80, 20, 18, 40, 70,
                           rng.randint(50, 60), 0.07])
        write_vitals(hrv, spo2, day, start, log, rng)
        spo2_rows.append([f"{day}T00:00:00Z", round(rng.uniform(94, 98), 1), 91.0, 99.5])
        samples = rng.randint(400, 520)
        month.setdefault("temperature", []).append(
            ["IDT", start.strftime("%Y-%m-%dT%H:%M:%S"), log["endTime"][:19], samples, round(rng.uniform(33, 35), 2),
             round(samples * rng.uniform(-0.5, 0.5), 3), 40.0, 0.2, 0.2])
        mdy = day.strftime("%m/%d/%y")
        for minute in range(1440):
            value = rng.randint(0, 40) if 420 <= minute < 1320 else 0
            month["steps"].append({"dateTime": f"{mdy} {minute // 60:02d}:{minute % 60:02d}:00", "value": str(value)})
        midnight_utc = datetime.combine(day, datetime.min.time()).replace(tzinfo=TZ).astimezone(timezone.utc)
        for five in range(288):
            stamp = midnight_utc + timedelta(minutes=5 * five)
            month["tracker"].append([stamp.strftime("%Y-%m-%dT%H:%M:%SZ"), rng.randint(0, 200), "Google Fitbit Air"])
        for hour in range(24):
            stamp = midnight_utc + timedelta(hours=hour)
            month["phone"].append([stamp.strftime("%Y-%m-%dT%H:%M:%SZ"), rng.randint(0, 1500), "Phone Health Kit"])
    for month, data in months.items():
        (a / f"sleep-{month}.json").write_text(json.dumps(data["sleep"]))
        (a / f"steps-{month}.json").write_text(json.dumps(data["steps"]))
        with open(b / f"steps_{month}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["timestamp", "steps", "data source"])
            writer.writerows(data["tracker"] + data["phone"])
        with open(temperature / f"Computed Temperature - {month}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["type", "sleep_start", "sleep_end", "temperature_samples", "nightly_temperature",
                             "baseline_relative_sample_sum", "baseline_relative_sample_sum_of_squares",
                             "baseline_relative_nightly_standard_deviation",
                             "baseline_relative_sample_standard_deviation"])
            writer.writerows(data["temperature"])
    # Daily SpO2 comes in ~100-day files named by the range they cover.
    for chunk in range(0, len(spo2_rows), 100):
        rows = spo2_rows[chunk:chunk + 100]
        with open(spo2 / f"Daily SpO2 - {rows[0][0][:10]}-{rows[-1][0][:10]}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["timestamp", "average_value", "lower_bound", "upper_bound"])
            writer.writerows(rows)
    with open(score / "sleep_score.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sleep_log_entry_id", "timestamp", "overall_score", "composition_score",
                         "revitalization_score", "duration_score", "deep_sleep_in_minutes", "resting_heart_rate",
                         "restlessness"])
        writer.writerows(score_rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--zip", action="store_true", help="import the archive as a .zip, not the folder")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from pipelines.import_google_takeout import import_takeout
    from storage.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        folder = tmp_path / "takeout"
        t0 = time.perf_counter()
        generate(folder, date(2025, 11, 1), args.days, args.seed)
        path = folder
        if args.zip:
            path = tmp_path / "takeout-20261101T000000Z-001.zip"
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
                for file in sorted(folder.rglob("*")):
                    if file.is_file():
                        archive.write(file, file.relative_to(folder).as_posix())
        size_mb = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6
        print(f"generated {args.days} days in {time.perf_counter() - t0:.1f} s: {size_mb:.1f} MB of files"
              + (f", zip {path.stat().st_size / 1e6:.1f} MB" if args.zip else ""))
        with Store(tmp_path / "emberwatch.duckdb") as store:
            store.add_person("b1", "b1@example.org", "Europe/Oslo", "google-takeout")
            t0 = time.perf_counter()
            cpu0 = time.process_time()
            result = import_takeout(store, store.person("b1"), path)
            wall = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            counts = store.table_counts()
        rows = ", ".join(f"{t}={counts[t]}" for t in ("sleep_sessions", "sleep_segments", "daily_activity",
                                                       "daily_resting_hr", "nightly_hrv", "nightly_vitals",
                                                       "nightly_features", "quarantine"))
        print(f"import of {'the .zip' if args.zip else 'the folder'}: {wall:.2f} s wall, {cpu:.2f} s CPU "
              f"({result.sync.records} records, {result.sync.rejected} quarantined); goal <= {GOAL_S:.0f} s: "
              f"{'met' if wall <= GOAL_S else 'NOT met'}")
        print(f"rows: {rows}")


if __name__ == "__main__":
    main()
