"""Ingestion benchmark: one nightly fetch for many people against a local fake API with injected latency and 429s.

Usage:  .venv/bin/python benchmarks/ingestion.py [--people 1000] [--fitbit] [--latency-ms 100] [--rate-429 0.01]
                                                 [--retry-after-s 1] [--concurrency N] [--prefect] [--seed 7]

What it does (all on loopback, in a temp folder, stops what it started):
 1. starts the fake server (tests/fake_google_health.py, or tests/fake_fitbit_api.py with --fitbit) in a child
    process, so its handler threads do not share this process's GIL with the clients being measured;
 2. enrols N synthetic people through the real consent path (PKCE, loopback redirect, encrypted tokens), then
    turns on the latency (every API answer waits --latency-ms) and the seeded 429s (Retry-After --retry-after-s);
 3. runs one nightly fetch for everyone through the real fetch path: pipelines.steps.fetch_person per person on a
    bounded pool of Settings.max_workers (or --concurrency) threads, as the nightly flow's task runner does; with
    --prefect, the real nightly Prefect flow instead (its task runner has 4 workers);
 4. prints people, requests, requests per person-night, 429s, wall time, the bound (requests x latency /
    concurrency, the best any client could do) and wall / bound (the goal is <= 1.5).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


# ---------------------------------------------------------------------------------------------- the server


def serve(kind: str, seed: int) -> None:
    """The child process: a fake API holding one synthetic person's nights (every token sees the same person),
    driven over stdin: `faults <latency_s> <rate_429> <retry_after>`, `stats`, `quit`."""
    from connectors.synthetic import SyntheticCohort

    cohort = SyntheticCohort(n_people=1, n_nights=30, seed=seed)
    person = cohort.people[0]
    records = cohort.records(person.person_id)
    if kind == "google-health":
        from tests.fake_google_health import FakeGoogleHealth, load_records

        fake = FakeGoogleHealth(seed=seed)
        fake.timezone_name = person.tz_name
        load_records(fake, records)
    else:
        from tests.fake_fitbit_api import FakeFitbit

        fake = FakeFitbit(tz_name=person.tz_name, seed=seed, quota_per_token=True)  # Fitbit counts per user
        fake.load_records(records)
    fake.server.request_queue_size = 128
    with fake:
        print(json.dumps({"base_url": fake.base_url, "night": cohort.nights[-1].isoformat(),
                          "tz": person.tz_name}), flush=True)
        for line in sys.stdin:
            command, *values = line.split()
            if command == "faults":
                fake.requests.clear()
                fake.throttled = 0
                fake.api_span_s.clear()
                fake.latency_s, fake.rate_429, fake.retry_after_429 = float(values[0]), float(values[1]), values[2]
            elif command == "stats":
                span = fake.api_span_s
                print(json.dumps({"requests": len(fake.requests), "throttled": fake.throttled,
                                  "api_span_s": span[1] - span[0] if span else 0.0}), flush=True)
            elif command == "quit":
                break


class ServerProcess:
    def __init__(self, kind: str, seed: int) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--seed", str(seed)], cwd=REPO,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = json.loads(self._line())

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the fake server process did not start; see its error above")
        return line

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def stats(self) -> dict[str, int]:
        self.send("stats")
        return json.loads(self._line())

    def stop(self) -> None:
        try:
            self.send("quit")
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.terminate()
            self.proc.wait(timeout=30)


# ---------------------------------------------------------------------------------------------- the client


def config_for(kind: str, base: str) -> dict[str, str]:
    if kind == "google-health":
        return {"api_base": base, "authorize_url": base + "/o/oauth2/v2/auth", "token_url": base + "/token"}
    return {"api_base": base, "authorize_url": base + "/oauth2/authorize", "token_url": base + "/oauth2/token"}


def enrol_all(store, kind: str, base: str, tz: str, people: int) -> list[str]:
    import requests

    from pipelines.cli_connectors import enroll_person

    ids = [f"b{i:04d}" for i in range(people)]
    for person_id in ids:
        store.add_person(person_id, f"{person_id}@example.org", tz, kind, config_for(kind, base))
        enroll_person(store, person_id, kind, lambda url: requests.get(url, timeout=30), timeout_s=60)
    return ids


def fetch_all(store, night, refetch_nights: int, concurrency: int) -> tuple[int, list[str], float, float]:
    """The nightly flow's fetch stage without Prefect: one task per person on a bounded pool, then the one writer
    (archive, parse, upsert). Returns people, failures, and the seconds fetching and the writer took."""
    from pipelines import steps
    from pipelines.sources import source_for

    started = time.perf_counter()
    people = store.people()

    def fetch(person):
        return steps.fetch_person(person, source_for(person, store), night, refetch_nights)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(fetch, p) for p in people]
    failed = [p.person_id for p, f in zip(people, futures) if f.exception() is not None]
    fetched = [f.result() for f in futures if f.exception() is None]
    fetch_s = time.perf_counter() - started
    steps.ingest(store, fetched)
    return len(people), failed, fetch_s, time.perf_counter() - started - fetch_s


def run_prefect(night, server: ServerProcess, people: int, latency_s: float) -> tuple[int, list[str], float, float]:
    """The whole nightly flow; its own stage timings give the fetch stage (features, alerts, delivery excluded).
    Should a later stage fail, the fetch stage is timed by the server: first API call to last answer."""
    from pipelines import flows

    try:
        report = flows.nightly(flows.NightlyParams(night_date=night))
    except Exception as exc:  # a later stage's failure is not what this measures; say so and go on
        print(f"note: the nightly flow failed after fetching ({type(exc).__name__}: {str(exc)[:120]}); "
              "the fetch stage is timed by the server instead", file=sys.stderr)
        return people, ["(unknown: the flow did not finish)"], server.stats()["api_span_s"] + latency_s, 0.0
    return (len(report.people), report.failures, report.stage_seconds.get("fetch", 0.0),
            report.stage_seconds.get("store", 0.0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=1000)
    ap.add_argument("--fitbit", action="store_true", help="the legacy Fitbit Web API instead of Google Health v4")
    ap.add_argument("--latency-ms", type=float, default=100.0)
    ap.add_argument("--rate-429", type=float, default=0.01, help="share of API answers that are 429")
    ap.add_argument("--retry-after-s", default="1")
    ap.add_argument("--concurrency", type=int, default=None, help="default: Settings.max_workers")
    ap.add_argument("--refetch-nights", type=int, default=None, help="default: Settings.refetch_nights")
    ap.add_argument("--prefect", action="store_true", help="run the real nightly Prefect flow (4 workers)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (database, Prefect home)")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.seed)
        return

    work = Path(tempfile.mkdtemp(prefix="ew-ingest-"))
    os.environ.update({"EMBERWATCH_HOME": str(work / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                       "PREFECT_LOGGING_LEVEL": "WARNING"})
    for prefix in ("GOOGLE", "FITBIT"):
        os.environ.setdefault(f"EMBERWATCH_{prefix}_CLIENT_ID", f"bench-{prefix.lower()}")
        os.environ.setdefault(f"EMBERWATCH_{prefix}_CLIENT_SECRET", f"bench-{prefix.lower()}-secret")
    if "EMBERWATCH_SECRET_KEY" not in os.environ:
        from cryptography.fernet import Fernet

        os.environ["EMBERWATCH_SECRET_KEY"] = Fernet.generate_key().decode()
    from datetime import date

    from storage.store import Store
    from pipelines.settings import load_settings

    settings = load_settings()
    kind = "fitbit-web" if args.fitbit else "google-health"
    concurrency = 4 if args.prefect else (args.concurrency or settings.max_workers)
    refetch = settings.refetch_nights if args.refetch_nights is None else args.refetch_nights
    latency_s = args.latency_ms / 1000

    server = ServerProcess(kind, args.seed)
    try:
        night = date.fromisoformat(server.info["night"])
        started = time.perf_counter()
        with Store(settings.db_path) as store:
            enrol_all(store, kind, server.info["base_url"], server.info["tz"], args.people)
        enrol_s = time.perf_counter() - started
        server.send(f"faults {latency_s} {args.rate_429} {args.retry_after_s}")
        server.stats()  # the command above is applied before this answers

        # The bound is about fetching: the writer's time (archive, parse, upsert) is shown on its own.
        if args.prefect:
            people, failed, wall_s, store_s = run_prefect(night, server, args.people, latency_s)
        else:
            with Store(settings.db_path) as store:
                people, failed, wall_s, store_s = fetch_all(store, night, refetch, concurrency)
        stats = server.stats()
    finally:
        server.stop()

    requests_made, throttled = stats["requests"], stats["throttled"]
    bound_s = requests_made * latency_s / concurrency
    print(f"source                      {kind}{' (nightly Prefect flow)' if args.prefect else ''}")
    print(f"people                      {people} ({len(failed)} failed)")
    print(f"nights per fetch            {refetch + 1} (the night and {refetch} re-fetched)")
    print(f"concurrency                 {concurrency}")
    print(f"latency per request         {args.latency_ms:g} ms; 429 share {args.rate_429:g} "
          f"(Retry-After {args.retry_after_s} s)")
    print(f"enrolment (not timed below) {enrol_s:.1f} s")
    print(f"requests made               {requests_made}")
    print(f"requests per person-night   {requests_made / max(people, 1):.2f}")
    print(f"429s seen                   {throttled}")
    print(f"wall time                   {wall_s:.1f} s (fetching; then the writer took {store_s:.1f} s)")
    print(f"bound                       {bound_s:.1f} s (requests x latency / concurrency)")
    print(f"wall / bound                {wall_s / bound_s:.2f}  (goal <= 1.5)" if bound_s else "wall / bound  -")
    print(f"threads left                {threading.active_count()}")
    if args.keep:
        print(f"work folder                 {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
