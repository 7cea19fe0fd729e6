"""Prefect flows: each reads like a table of contents of steps (pipelines.steps holds the logic).

Tasks turn result persistence and caching off: their inputs and outputs are health data or have side effects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from alerts.digest import week_of
from connectors.base import TransientSourceError
from features.store import Person, Store
from features.thresholds import Thresholds
from pipelines import steps
from pipelines.settings import Settings, load_settings
from pipelines.sources import source_for

log = logging.getLogger("emberwatch")

_TASK_OPTIONS = dict(persist_result=False, cache_policy=NO_CACHE, log_prints=False)


def is_transient(task, task_run, state) -> bool:
    """Retry only what may succeed soon: network trouble and a source's own transient errors. A bad
    configuration or a bug fails at once and is recorded for that person."""
    try:
        state.result()
    except (TransientSourceError, ConnectionError, TimeoutError):
        return True
    except Exception:
        return False
    return False


@task(name="fetch_person", retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=5),
      retry_jitter_factor=0.5, retry_condition_fn=is_transient, **_TASK_OPTIONS)
def fetch_person(person: Person, night: date, refetch_nights: int) -> steps.Fetched | None:
    source = source_for(person)
    if source is None:
        return None  # data arrives by import, nothing to fetch
    return steps.fetch_person(person, source, night, refetch_nights)


@task(name="store_payloads", **_TASK_OPTIONS)
def store_payloads(store: Store, fetched: list[steps.Fetched]) -> steps.IngestReport:
    return steps.ingest(store, fetched)


@task(name="compute_features", **_TASK_OPTIONS)
def compute_features(store: Store, results: list[steps.SyncResult]):
    return steps.update_features(store, results, Thresholds())


@task(name="decide_alerts", **_TASK_OPTIONS)
def decide_alerts(store: Store, people: list[Person], night: date, settings: Settings, now_utc: datetime):
    return steps.decide_and_queue_alerts(store, people, night, settings, now_utc)


@task(name="queue_digests", **_TASK_OPTIONS)
def queue_digests(store: Store, people: list[Person], week_start: date, settings: Settings, now_utc: datetime):
    return steps.queue_digests(store, people, week_start, settings, now_utc)


@task(name="deliver", **_TASK_OPTIONS)
def deliver(store: Store, settings: Settings, now_utc: datetime) -> steps.DeliveryResult:
    return steps.deliver_queued(store, steps.transport_for(settings), now_utc)


@dataclass
class NightlyReport:
    night: date
    people: int = 0
    synced: int = 0
    records: int = 0
    rejected: int = 0
    failures: list[str] = field(default_factory=list)  # person ids only
    alerts_queued: int = 0
    sent: int = 0
    deferred: int = 0


def default_night(settings: Settings, now_utc: datetime) -> date:
    """The most recent night that has ended everywhere we care about: yesterday's wake date, local to the schedule."""
    return now_utc.astimezone(ZoneInfo(settings.timezone)).date() - timedelta(days=1)


@flow(name="nightly", persist_result=False, task_runner=ThreadPoolTaskRunner(max_workers=4))
def nightly(night_date: date | None = None, now_utc: datetime | None = None) -> NightlyReport:
    settings = load_settings()
    now_utc = now_utc or datetime.now(timezone.utc)
    night = night_date or default_night(settings, now_utc)
    report = NightlyReport(night)
    with Store(settings.db_path) as store:
        people = [p for p in store.people(active_only=False) if p.status != "stopped"]  # paused: sync, no email
        report.people = len(people)
        # Fetching is concurrent and touches no database; one writer stores it all.
        futures = [fetch_person.submit(p, night, settings.refetch_nights) for p in people]
        fetched = []
        for person, future in zip(people, futures):
            outcome = future.result(raise_on_failure=False)
            if isinstance(outcome, BaseException):
                # One person's failure is recorded and never stops the others.
                steps.record_failure(store, f"nightly {night}", person.person_id, "fetch", outcome)
                report.failures.append(person.person_id)
            elif outcome is not None:
                fetched.append(outcome)
        ingested = store_payloads(store, fetched)
        results = list(ingested.people.values())
        report.synced = len(people) - len(report.failures)
        report.records = sum(r.records for r in results)
        report.rejected = sum(r.rejected for r in results)
        compute_features(store, results)
        ok_people = [p for p in people if p.person_id not in report.failures]
        report.alerts_queued = decide_alerts(store, ok_people, night, settings, now_utc).queued
        delivered = deliver(store, settings, now_utc)
        report.sent, report.deferred = delivered.sent, delivered.deferred
    return report


@dataclass
class WeeklyReport:
    week_start: date
    digests_queued: int = 0
    sent: int = 0


@flow(name="weekly", persist_result=False)
def weekly(run_date: date | None = None, now_utc: datetime | None = None) -> WeeklyReport:
    settings = load_settings()
    now_utc = now_utc or datetime.now(timezone.utc)
    week_start, _ = week_of(run_date or now_utc.astimezone(ZoneInfo(settings.timezone)).date())
    report = WeeklyReport(week_start)
    with Store(settings.db_path) as store:
        report.digests_queued = queue_digests(store, store.people(), week_start, settings, now_utc)
        report.sent = deliver(store, settings, now_utc).sent
    return report


def morning_of(day: date, settings: Settings) -> datetime:
    """07:30 in the schedule's zone on `day`: the default delivery time used when replaying history."""
    return datetime.combine(day, time(7, 30), ZoneInfo(settings.timezone)).astimezone(timezone.utc)
