"""Prefect flows: each reads like a table of contents of steps (pipelines.steps holds the logic).

Tasks turn result persistence and caching off: their inputs and outputs are health data or have side effects.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from typing import ParamSpec, TypeVar
from zoneinfo import ZoneInfo

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run
from prefect.settings import PREFECT_LOGGING_LEVEL
from prefect.states import Failed, State
from pydantic import BaseModel
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from alerts.digest import period_key, week_of
from connectors.base import TransientSourceError
from storage.crash_points import crash_point
from storage.retention import apply_retention
from storage.store import DatabaseBusy, Person, Store, StoreError
from features.thresholds import Thresholds
from pipelines import steps
from pipelines.run_report import RunReport, artifact_key
from pipelines.settings import Settings, load_settings
from pipelines.shards import for_shard
from pipelines.sources import StoreSnapshot, sources_for

log = logging.getLogger("emberwatch")
# Our loggers follow Prefect's level, so a DEBUG run shows ours too; with PREFECT_LOGGING_EXTRA_LOGGERS=emberwatch
# (the CLI sets it) they also reach each run's log in the Prefect UI. Ids and counts only, never values.
log.setLevel(PREFECT_LOGGING_LEVEL.value())

P, R = ParamSpec("P"), TypeVar("R")
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
def fetch_person(person: Person, night: date, refetch_nights: int,
                 store: StoreSnapshot | None = None) -> list[steps.Fetched]:
    # What was read from the store before it was let go (tokens' file, bookmarks): the fetch never opens it.
    # None for data that arrives by import; one each for a watch and a ring.
    return [steps.fetch_person(person, source, night, refetch_nights) for source in sources_for(person, store)]


@task(name="store_payloads", **_TASK_OPTIONS)
def store_payloads(store: Store, fetched: list[steps.Fetched]) -> steps.IngestReport:
    return steps.ingest(store, fetched)


@task(name="compute_features", **_TASK_OPTIONS)
def compute_features(store: Store, results: list[steps.SyncResult]):
    return steps.update_features(store, results, Thresholds())


@task(name="decide_alerts", **_TASK_OPTIONS)
def decide_alerts(store: Store, people: list[Person], night: date, settings: Settings, now_utc: datetime):
    steps.queue_no_data_notes(store, people, night, settings, now_utc)
    return steps.queue_alerts(store, people, night, settings, now_utc)


@task(name="queue_digests", **_TASK_OPTIONS)
def queue_digests(store: Store, people: list[Person], week_start: date, settings: Settings, now_utc: datetime):
    return steps.queue_digests(store, people, week_start, settings, now_utc)


@task(name="apply_retention", **_TASK_OPTIONS)
def retention(store: Store, settings: Settings, now_utc: datetime):
    return apply_retention(store, now_utc, settings.retention_raw_days, settings.retention_features_days)


@task(name="deliver", **_TASK_OPTIONS)
def deliver(store: Store, settings: Settings, now_utc: datetime) -> steps.DeliveryResult:
    steps.apply_recorded_choices(store, settings, now_utc)  # a click made during the run counts for this send
    return steps.deliver_queued(store, steps.transport_for(settings), now_utc)


class NightlyParams(BaseModel):
    """Which night to process (the wake date), and the clock to act on; both default to the run's own time."""

    night_date: date | None = None
    now_utc: datetime | None = None
    shard: int | None = None  # with EMBERWATCH_SHARD_COUNT > 1: which people's database (docs/scaling.md)


class WeeklyParams(BaseModel):
    """The run date (the week before it is summarised), and the clock to act on."""

    run_date: date | None = None
    now_utc: datetime | None = None
    shard: int | None = None


def busy_database(exc: StoreError) -> State:
    """Another process holds the database past the configured wait: the run ends Failed with the sentence as its
    message (shown by Prefect and the CLI), not with a traceback for what is an operator's matter. Calling the
    flow still raises the StoreError, so the CLI can print it and exit non-zero."""
    return Failed(message=str(exc), data=exc)


def open_store(settings: Settings) -> Store:
    """The database, waited for as configured. Flows hold it only while they read or write (docs/architecture.md)."""
    return Store(settings.db_path, wait_s=settings.writer_wait_s)


def fails_when_busy(run: Callable[P, R]) -> Callable[P, R]:
    """A flow that could not get the database (open_store, at any of its stages) ends as busy_database says."""
    @functools.wraps(run)
    def flow_body(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return run(*args, **kwargs)
        except DatabaseBusy as exc:
            return busy_database(exc)  # type: ignore[return-value]

    return flow_body


def run_time_utc() -> datetime:
    """A scheduled run acts as of its scheduled time (a late start still processes the right night)."""
    scheduled = flow_run.scheduled_start_time
    if scheduled is not None and flow_run.id is not None:
        return datetime.fromtimestamp(scheduled.timestamp(), timezone.utc)
    return datetime.now(timezone.utc)


def default_night(settings: Settings, now_utc: datetime) -> date:
    """The most recent night that has ended everywhere we care about: yesterday's wake date, local to the schedule."""
    return now_utc.astimezone(ZoneInfo(settings.timezone)).date() - timedelta(days=1)


# Prefect fixes a flow's task runner when the flow is declared, so the bound is read then (EMBERWATCH_MAX_WORKERS).
@flow(name="nightly", persist_result=False,
      task_runner=ThreadPoolTaskRunner(max_workers=load_settings().max_workers))
@fails_when_busy
def nightly(params: NightlyParams = NightlyParams()) -> RunReport:
    settings = for_shard(load_settings(), params.shard)
    now_utc = params.now_utc or run_time_utc()
    night = params.night_date or default_night(settings, now_utc)
    report = RunReport("nightly", night.isoformat() + ("" if params.shard is None else f"-shard-{params.shard}"))
    with open_store(settings) as store:  # read what fetching needs, then let go of the database
        people = [p for p in store.people(active_only=False) if p.status != "stopped"]  # paused: sync, no email
        snapshot = StoreSnapshot.read(store)
    with report.stage("fetch"):
        # Fetching is concurrent and touches no database (others may write meanwhile); one writer stores it all.
        futures = [fetch_person.submit(p, night, settings.refetch_nights, snapshot) for p in people]
        fetched, failed = [], {}
        for person, future in zip(people, futures):
            outcome = future.result(raise_on_failure=False)
            lost = None if isinstance(outcome, BaseException) else next(
                (f.consent_lost for f in outcome if f.consent_lost is not None), None)
            if isinstance(outcome, BaseException) or lost is not None:
                # One person's failure is recorded and never stops the others.
                failed[person.person_id] = outcome if isinstance(outcome, BaseException) else lost
                report.line(person.person_id).failed_stage = "fetch"
                # The sentence, beside Prefect's own traceback of the task: it is what the operator acts on.
                report.line(person.person_id).reason = steps.failure_text(failed[person.person_id])
                log.warning("Person %s was not fetched this run: %s", person.person_id,
                            report.line(person.person_id).reason)
            else:
                report.line(person.person_id)
            if not isinstance(outcome, BaseException):
                fetched.extend(outcome)  # a lost consent too: the writer acts on it
    with open_store(settings) as store:
        for person_id, exc in failed.items():
            steps.record_failure(store, f"nightly {night}", person_id, "fetch", exc)
        with report.stage("store"):
            ingested = store_payloads(store, fetched)
            for pid, result in ingested.people.items():
                report.line(pid).records, report.line(pid).quarantined = result.records, result.rejected
        with report.stage("features"):
            report.nights_updated = compute_features(store, list(ingested.people.values())).feature_rows
        ok_people = [p for p in people if not report.line(p.person_id).failed_stage]
        with report.stage("decide"):
            decided = decide_alerts(store, ok_people, night, settings, now_utc)
            report.alerts_queued = decided.queued
            for pid, outcome in decided.outcomes.items():
                report.line(pid).outcome = outcome.value
        with report.stage("deliver"):
            delivered = deliver(store, settings, now_utc)
        report.sent, report.deferred, report.failed_sends = delivered.sent, delivered.deferred, delivered.failed
        with report.stage("retention"):
            crash_point("retention")
            retention(store, settings, now_utc)
    create_markdown_artifact(key=artifact_key("nightly", report.period), markdown=report.markdown(),
                             description="emberwatch nightly run (person ids only)")
    return report


@flow(name="weekly", persist_result=False)
@fails_when_busy
def weekly(params: WeeklyParams = WeeklyParams()) -> RunReport:
    settings = for_shard(load_settings(), params.shard)
    now_utc = params.now_utc or run_time_utc()
    week_start, _ = week_of(params.run_date or now_utc.astimezone(ZoneInfo(settings.timezone)).date())
    report = RunReport("weekly", period_key(week_start) + ("" if params.shard is None else f"-shard-{params.shard}"))
    with open_store(settings) as store:
        with report.stage("digests"):
            report.digests_queued = queue_digests(store, store.people(), week_start, settings, now_utc)
        with report.stage("deliver"):
            delivered = deliver(store, settings, now_utc)
        report.sent, report.deferred, report.failed_sends = delivered.sent, delivered.deferred, delivered.failed
    create_markdown_artifact(key=artifact_key("weekly", report.period), markdown=report.markdown(),
                             description="emberwatch weekly check-ins (person ids only)")
    return report


class DeliverParams(BaseModel):
    """The clock to act on (defaults to the run's own time), and the shard."""

    now_utc: datetime | None = None
    shard: int | None = None


@flow(name="deliver", persist_result=False)
@fails_when_busy
def deliver_due(params: DeliverParams = DeliverParams()) -> RunReport:
    """Send what is due: each person's mail waits for their own window, so this runs every 15 minutes."""
    settings = for_shard(load_settings(), params.shard)
    now_utc = params.now_utc or run_time_utc()
    report = RunReport("deliver", now_utc.strftime("%Y-%m-%dT%H%M"))
    with open_store(settings) as store:
        with report.stage("deliver"):
            delivered = deliver(store, settings, now_utc)
    report.sent, report.deferred, report.failed_sends = delivered.sent, delivered.deferred, delivered.failed
    return report


def morning_of(day: date, settings: Settings) -> datetime:
    """07:30 in the schedule's zone on `day`: the default delivery time used when replaying history."""
    return datetime.combine(day, time(7, 30), ZoneInfo(settings.timezone)).astimezone(timezone.utc)
