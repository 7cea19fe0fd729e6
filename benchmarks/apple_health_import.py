"""Apple Health import benchmark: a large generated `export.xml`, imported into a fresh DuckDB.

Usage:  .venv/bin/python benchmarks/apple_health_import.py [--mb 200] [--zip] [--seed 7]
        (--mb 1000 for the issue's 1 GB)

What it does (in a temp folder, removed afterwards):
 1. writes an `export.xml` of about --mb megabytes for one person in Europe/Oslo, shaped as the research note
    describes (shared/research/google-health-oura.md §5): per day ~30 staged sleep segments from the watch and the
    phone's in-bed record, steps from the watch (every 10 min while awake) and the phone (every 15 min), heart rate
    every 5 minutes and active energy (types emberwatch does not read, which make up most of a real export),
    resting heart rate, SpO2, respiratory rate and SDNN readings (with their beat-to-beat children);
 2. with --zip, packs it as `apple_health_export/export.xml` in the zip the Health app hands out;
 3. imports it in a child process (`pipelines.import_apple_health.import_apple_health`: stream, archive in chunks,
    parse, quarantine, upsert, features) and prints MB/s and the child's peak RSS (`resource.getrusage`) against
    the issue's goals (>= 30 MB/s, <= 300 MB peak RSS).
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
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
GOAL_MB_S = 30.0
GOAL_RSS_MB = 300.0

WATCH = ('sourceName="Ana’s Apple Watch" sourceVersion="10.3" device="&lt;&lt;HKDevice: 0x283f1c0a0&gt;, '
         'name:Apple Watch, manufacturer:Apple Inc., model:Watch, hardware:Watch6,1, software:10.3&gt;"')
PHONE = ('sourceName="Ana’s iPhone" sourceVersion="17.3" device="&lt;&lt;HKDevice: 0x283f1c1b0&gt;, '
         'name:iPhone, manufacturer:Apple Inc., model:iPhone, hardware:iPhone14,2, software:17.3&gt;"')
HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE HealthData [\n<!ELEMENT HealthData (ExportDate,Me,'
        '(Record|Correlation|Workout|ActivitySummary|ClinicalRecord)*)>\n]>\n<HealthData locale="en_GB">\n'
        ' <ExportDate value="2026-12-01 09:00:00 +0100"/>\n <Me HKCharacteristicTypeIdentifierDateOfBirth=""/>\n')


def stamp(t: datetime) -> str:
    return t.astimezone(TZ).strftime("%Y-%m-%d %H:%M:%S %z")


def record(kind: str, who: str, start: datetime, end: datetime, value: str, unit: str = "",
           children: str = "") -> str:
    u = f' unit="{unit}"' if unit else ""
    head = (f' <Record type="{kind}" {who}{u} creationDate="{stamp(end)}" startDate="{stamp(start)}" '
            f'endDate="{stamp(end)}" value="{value}"')
    return head + (f">\n{children}\n </Record>\n" if children else "/>\n")


def day_records(day: date, rng: random.Random) -> str:
    """Grouped by type as Apple writes them is not needed: one day's records, all types, in one block."""
    out = []
    # Arithmetic in UTC: wall-clock arithmetic would write impossible times across a clock change.
    bed = (datetime(day.year, day.month, day.day, 23, rng.randint(0, 40), tzinfo=TZ) - timedelta(days=1)).astimezone(timezone.utc)
    out.append(record("HKCategoryTypeIdentifierSleepAnalysis", PHONE, bed - timedelta(minutes=15),
                      bed + timedelta(hours=8), "HKCategoryValueSleepAnalysisInBed"))
    t = bed
    for _ in range(rng.randint(26, 34)):
        stage = rng.choice(["AsleepCore", "AsleepCore", "AsleepDeep", "AsleepREM", "Awake"])
        end = t + timedelta(minutes=rng.randint(4, 25))
        out.append(record("HKCategoryTypeIdentifierSleepAnalysis", WATCH, t, end,
                          f"HKCategoryValueSleepAnalysis{stage}"))
        t = end
    wake = t
    morning = datetime(day.year, day.month, day.day, 0, 0, tzinfo=TZ).astimezone(timezone.utc)
    for minute in range(0, 24 * 60, 5):  # heart rate, every 5 min (not read)
        at = morning + timedelta(minutes=minute)
        out.append(record("HKQuantityTypeIdentifierHeartRate", WATCH, at, at, str(rng.randint(48, 110)),
                          "count/min", '  <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="0"/>'))
    for minute in range(7 * 60, 23 * 60, 4):  # active energy (not read)
        at = morning + timedelta(minutes=minute)
        out.append(record("HKQuantityTypeIdentifierActiveEnergyBurned", WATCH, at, at + timedelta(minutes=4),
                          f"{rng.uniform(0.1, 9):.3f}", "kcal"))
    for minute in range(7 * 60, 23 * 60, 10):
        at = morning + timedelta(minutes=minute)
        out.append(record("HKQuantityTypeIdentifierStepCount", WATCH, at, at + timedelta(minutes=10),
                          str(rng.randint(0, 900)), "count"))
    for minute in range(7 * 60, 23 * 60, 15):
        at = morning + timedelta(minutes=minute)
        out.append(record("HKQuantityTypeIdentifierStepCount", PHONE, at, at + timedelta(minutes=15),
                          str(rng.randint(0, 1200)), "count"))
    out.append(record("HKQuantityTypeIdentifierRestingHeartRate", WATCH, morning, morning + timedelta(hours=23),
                      str(rng.randint(50, 62)), "count/min"))
    for i in range(12):
        at = bed + timedelta(minutes=30 * i + 5)
        if at < wake:
            out.append(record("HKQuantityTypeIdentifierOxygenSaturation", WATCH, at, at,
                              f"{rng.uniform(0.93, 0.99):.2f}", "%"))
            out.append(record("HKQuantityTypeIdentifierRespiratoryRate", WATCH, at, at,
                              f"{rng.uniform(12, 17):.1f}", "count/min"))
    for i in range(5):
        at = morning + timedelta(hours=2 + 4 * i)
        beats = "\n".join(f'   <InstantaneousBeatsPerMinute bpm="{rng.randint(50, 90)}" time="{i}:00:{s:02d}.00 AM"/>'
                          for s in range(0, 60, 2))
        out.append(record("HKQuantityTypeIdentifierHeartRateVariabilitySDNN", WATCH, at,
                          at + timedelta(minutes=1), f"{rng.uniform(20, 90):.1f}", "ms",
                          f"  <HeartRateVariabilityMetadataList>\n{beats}\n  </HeartRateVariabilityMetadataList>"))
    return "".join(out)


def generate(path: Path, megabytes: float, seed: int) -> int:
    rng = random.Random(seed)
    day, days, target = date(2020, 1, 1), 0, megabytes * 1e6
    with open(path, "w", encoding="utf-8") as out:
        out.write(HEAD)
        while out.tell() < target:
            out.write(day_records(day, rng))
            day += timedelta(days=1)
            days += 1
        out.write("</HealthData>\n")
    return days


def run_import(path: Path, db: Path) -> None:
    """In the child: the import alone, as `emberwatch import apple-health` runs it (kernels interpreted unless
    EMBERWATCH_KERNELS says otherwise: features/kernels.py), then its figures on one line."""
    from features.kernels import run_interpreted
    from pipelines.import_apple_health import import_apple_health
    from storage.store import Store

    kernels = "interpreted" if run_interpreted() else "compiled"

    size = path.stat().st_size if path.suffix == ".xml" else zipfile.ZipFile(path).getinfo(
        "apple_health_export/export.xml").file_size
    with Store(db) as store:
        store.add_person("b1", "b1@example.org", "Europe/Oslo", "apple-health")
        base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the libraries and the store, loaded
        t0, cpu0 = time.perf_counter(), time.process_time()
        result = import_apple_health(store, store.person("b1"), path)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        counts = store.table_counts()
        reasons = [row[0] for row in store.query_rows("SELECT reason FROM quarantine LIMIT 3")]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes
    rows = ", ".join(f"{t}={counts[t]}" for t in ("raw_payloads", "sleep_sessions", "sleep_segments",
                                                   "daily_activity", "daily_resting_hr", "nightly_vitals", "nightly_hrv",
                                                   "nightly_features", "quarantine"))
    mb_s = size / 1e6 / wall
    print(f"import of {size / 1e6:.0f} MB export.xml{' (in the .zip)' if path.suffix == '.zip' else ''}: "
          f"{wall:.1f} s wall, {cpu:.1f} s CPU, {mb_s:.1f} MB/s (goal >= {GOAL_MB_S:.0f}: "
          f"{'met' if mb_s >= GOAL_MB_S else 'NOT met'}), peak RSS {peak_mb:.0f} MB (goal <= {GOAL_RSS_MB:.0f}: "
          f"{'met' if peak_mb <= GOAL_RSS_MB else 'NOT met'}; {base_mb:.0f} MB before the import began); {result.sync.records} records, "
          f"{result.sync.rejected} quarantined; kernels {kernels}")
    print(f"rows: {rows}")
    for reason in reasons:
        print(f"quarantined: {reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=200.0, help="size of export.xml to generate (default 200)")
    parser.add_argument("--zip", action="store_true", help="import the zip rather than the bare export.xml")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)  # the child: import this file
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_import(args.run, args.db)
        return
    with tempfile.TemporaryDirectory(prefix="emberwatch-apple-bench-") as tmp:
        tmp_path = Path(tmp)
        xml = tmp_path / "export.xml"
        t0 = time.perf_counter()
        days = generate(xml, args.mb, args.seed)
        path = xml
        if args.zip:
            path = tmp_path / "export.zip"
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.write(xml, "apple_health_export/export.xml")
            xml.unlink()
        print(f"generated {days} days in {time.perf_counter() - t0:.1f} s: {args.mb:.0f} MB export.xml"
              + (f", zip {path.stat().st_size / 1e6:.1f} MB" if args.zip else ""))
        subprocess.run([sys.executable, __file__, "--run", str(path), "--db", str(tmp_path / "emberwatch.duckdb")],
                       check=True)


if __name__ == "__main__":
    main()
