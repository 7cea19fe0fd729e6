"""The `emberwatch` command line."""

from __future__ import annotations

import logging
import os
import sys
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="emberwatch: gentle early warning on the physical signals of burnout.", no_args_is_help=True)
person_app = typer.Typer(help="Enrol people and set their preferences.", no_args_is_help=True)
import_app = typer.Typer(help="Import data from files.", no_args_is_help=True)
app.add_typer(person_app, name="person")
app.add_typer(import_app, name="import")


def _quiet_prefect() -> None:
    # Offline by default: no telemetry, and only warnings from Prefect itself on the terminal.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # Our own loggers go through Prefect's handlers: into each run's log (UI, API) and onto the terminal.
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "emberwatch")


def _settings():
    from pipelines.settings import load_settings

    return load_settings()


def _fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


@app.command()
def demo(
    people: int = typer.Option(12, help="Synthetic clinicians."),
    nights: int = typer.Option(120, help="Nights of history to replay."),
    seed: int = typer.Option(7, help="Seed of the synthetic cohort."),
) -> None:
    """Run the real nightly and weekly flows night by night over a synthetic cohort, into EMBERWATCH_HOME."""
    _quiet_prefect()
    # Measured: in Prefect's throwaway local server (SQLite), the task-run recorder competes with flow-run
    # creation for the database and each collision costs a 2 s client retry (half the demo's nights). The
    # demo's server is discarded at exit, so it records flow runs only. A real server keeps its own settings.
    os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED", "false")
    from storage.store import Store
    from pipelines.demo import DemoCohort, run_demo, summary_rows

    settings = _settings()
    spec = DemoCohort(people, nights, seed)
    started = datetime.now(timezone.utc)
    typer.echo(f"emberwatch demo: {people} synthetic clinicians x {nights} nights into {settings.home.resolve()}")

    def progress(night: date) -> None:
        if night.day == 1:
            typer.echo(f"  ... nightly runs reached {night}")

    cohort = run_demo(settings, spec, progress)
    with Store(settings.db_path) as store:
        rows = summary_rows(store, cohort)
        counts = store.table_counts()
    elapsed = (datetime.now(timezone.utc) - started).total_seconds()
    typer.echo("")
    typer.echo(f"{'person':<8}{'profile':<9}{'valid nights':>13}{'sleep flag':>12}{'recov. flag':>12}"
               f"{'alerts':>8}{'digests':>9}")
    for r in rows:
        typer.echo(f"{r['person_id']:<8}{r['profile']:<9}{r['valid_nights']:>13}{r['sleep_flag_nights']:>12}"
                   f"{r['recovery_flag_nights']:>12}{r['alerts']:>8}{r['digests']:>9}")
    typer.echo("")
    typer.echo("rows: " + ", ".join(f"{k}={v}" for k, v in counts.items() if k != "schema_version"))
    typer.echo(f"outbox: {settings.outbox_dir.resolve()}  (open the .html files in a browser)")
    typer.echo(f"done in {elapsed:.0f} s")


@person_app.command("add")
def person_add(
    person_id: str = typer.Argument(..., help="An opaque id, e.g. c01. Not a name."),
    email: str = typer.Option(..., "--email", help="Where this person's own emails go."),
    timezone_name: str = typer.Option(..., "--timezone", help="IANA zone, e.g. Europe/Oslo."),
    source: str = typer.Option("fitbit-export", help="Where their data comes from."),
) -> None:
    """Enrol a person (or update their address and zone)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from storage.store import Store

    try:
        ZoneInfo(timezone_name)
    except (ZoneInfoNotFoundError, ValueError):
        _fail(f"'{timezone_name}' is not an IANA time zone name (for example Europe/Oslo or America/New_York).")
    if "@" not in email:
        _fail("That email address has no '@'; please check it.")
    from pipelines.shards import for_person

    settings = for_person(_settings(), person_id)
    with Store(settings.db_path) as store:
        store.add_person(person_id, email, timezone_name, source)
    where = "" if settings.shard is None else f" in shard {settings.shard}"
    typer.echo(f"Enrolled {person_id} ({timezone_name}, source {source}){where}.")


@person_app.command("set")
def person_set(
    person_id: str = typer.Argument(...),
    detail: Optional[str] = typer.Option(None, help="minimal (default: directions only), numbers, or charts."),
    pause: bool = typer.Option(False, "--pause", help="Pause emails; data keeps syncing."),
    resume: bool = typer.Option(False, "--resume", help="Resume emails."),
    stop: bool = typer.Option(False, "--stop", help="Stop emails and syncing (data stays until `forget`)."),
    window: Optional[str] = typer.Option(None, "--window", help="Delivery window, local time, e.g. 07:30-08:30."),
    days: Optional[str] = typer.Option(None, "--days", help="Working days for email, e.g. Mon-Fri or Sun-Thu."),
) -> None:
    """Change a person's preferences."""
    from alerts.schedule import ScheduleError
    from storage.store import Store, StoreError
    from pipelines.cli_email import set_delivery

    if detail is not None and detail not in ("minimal", "numbers", "charts"):
        _fail("--detail takes minimal, numbers or charts.")
    if sum((pause, resume, stop)) > 1:
        _fail("Choose one of --pause, --resume and --stop.")
    status = "paused" if pause else "active" if resume else "stopped" if stop else None
    with Store(_settings().db_path) as store:
        try:
            when, on_days, _ = set_delivery(store, person_id, window, days)  # checks before anything changes
            p = store.set_person(person_id, status=status, detail_level=detail)
        except (StoreError, ScheduleError) as exc:
            _fail(str(exc))
    typer.echo(f"{p.person_id}: emails {p.status}, detail {p.detail_level}, delivered {when} on {on_days} "
               f"({p.tz_name}).")


@app.command()
def forget(
    person_id: str = typer.Argument(...),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete everything held about a person: records, raw archive, features, alerts, ledger and outbox files."""
    from storage.store import Store, StoreError
    from pipelines.people import forget as forget_person

    if not yes:
        typer.confirm(f"Delete all data about {person_id}? This cannot be undone.", abort=True)
    settings = _settings()
    with Store(settings.db_path) as store:
        try:
            rows, files = forget_person(store, person_id, settings.outbox_dir)
        except StoreError as exc:
            _fail(str(exc))
    typer.echo(f"Deleted {rows} rows and {files} outbox files about {person_id}. Only the fact of a deletion is kept.")


@app.command("export")
def export(
    person_id: str = typer.Argument(...),
    out: Path = typer.Option(..., "--out", help="Folder to write into (created, owner-only)."),
) -> None:
    """Everything held about a person, as Parquet and CSV files with a README of what each file is."""
    from storage.store import Store, StoreError
    from pipelines.people import export_person

    with Store(_settings().db_path, wait_s=10) as store:
        try:
            files = export_person(store, person_id, out)
        except StoreError as exc:
            _fail(str(exc))
    typer.echo(f"Wrote {len(files)} files about {person_id} to {out} (start with README.md).")


@import_app.command("fitbit-export")
def import_fitbit_export(
    path: Path = typer.Argument(..., exists=True, file_okay=False, help="A Fitbit export folder (…/fitbit)."),
    person_id: str = typer.Option(..., "--person", help="The enrolled person this export belongs to."),
) -> None:
    """Import a Fitbit account export: archive every file, parse, quarantine what is malformed, compute features."""
    from storage.store import Store, StoreError
    from pipelines.import_fitbit_export import import_export

    with Store(_settings().db_path) as store:
        try:
            person = store.person(person_id)
        except StoreError as exc:
            _fail(str(exc))
        result = import_export(store, person, path)
    typer.echo(f"Imported {result.sync.records} records from {result.sync.payloads} files "
               f"({result.new_payloads} new); {result.features.feature_rows} nights of features.")
    if result.sync.rejected:
        typer.echo(f"{result.sync.rejected} item(s) could not be read and were quarantined with a reason; "
                   "`emberwatch status` shows them. Everything else was imported.")


@app.command()
def nightly(night: Optional[str] = typer.Option(None, "--date", help="Night (wake date) YYYY-MM-DD; default yesterday.")) -> None:
    """Sync everyone, update features, decide alerts and deliver (the scheduled nightly job)."""
    _quiet_prefect()
    from storage.store import StoreError
    from pipelines.flows import NightlyParams
    from pipelines.flows import nightly as nightly_flow

    try:
        report = nightly_flow(NightlyParams(night_date=date.fromisoformat(night) if night else None))
    except StoreError as exc:
        _fail(str(exc))  # the database is busy: a sentence and exit code 1, not a traceback
    records = sum(p.records for p in report.people.values())
    quarantined = sum(p.quarantined for p in report.people.values())
    typer.echo(f"night {report.period}: {len(report.people) - len(report.failures)}/{len(report.people)} people "
               f"synced, {records} records, {quarantined} quarantined, {report.alerts_queued} alert(s) queued, "
               f"{report.sent} sent" + (f"; failures: {', '.join(report.failures)}" if report.failures else ""))
    for person_id in report.failures:
        line = report.people[person_id]
        typer.echo(f"  {person_id} ({line.failed_stage}): {line.reason or 'see the run log'}", err=True)
    if report.failures:
        raise typer.Exit(code=2)


@app.command()
def weekly(run_date: Optional[str] = typer.Option(None, "--date", help="Run date YYYY-MM-DD; the week before it.")) -> None:
    """Queue and deliver the weekly check-in for the last complete week."""
    _quiet_prefect()
    from storage.store import StoreError
    from pipelines.flows import WeeklyParams
    from pipelines.flows import weekly as weekly_flow

    try:
        report = weekly_flow(WeeklyParams(run_date=date.fromisoformat(run_date) if run_date else None))
    except StoreError as exc:
        _fail(str(exc))
    typer.echo(f"week {report.period}: {report.digests_queued} check-in(s) queued, {report.sent} sent")


@app.command()
def serve() -> None:
    """Register and serve the scheduled `nightly` and `weekly` deployments (needs a Prefect server: see README)."""
    _quiet_prefect()
    from prefect import serve as prefect_serve

    from pipelines.deployments import build_deployments

    settings = _settings()
    deployments = build_deployments(settings)
    typer.echo(f"Serving nightly ({settings.nightly_cron}), weekly ({settings.weekly_cron}) and deliver "
               f"({settings.deliver_cron}) in {settings.timezone}.")
    prefect_serve(*deployments, limit=settings.max_workers)


@app.command()
def status() -> None:
    """Per person: source, last night synced, valid nights, warm-up, last alert (no health values)."""
    from pipelines.status import status_rows
    from storage.store import Store

    with Store(_settings().db_path) as store:
        rows = status_rows(store)
    typer.echo(f"{'person':<10}{'source':<15}{'status':<9}{'last night':<12}{'valid':>6}  {'warm-up':<9}"
               f"{'last alert':<12}{'quarantined':>11}")
    for r in rows:
        typer.echo(f"{r.person_id:<10}{r.source:<15}{r.status:<9}{str(r.last_night or '-'):<12}{r.valid_nights:>6}  "
                   f"{'yes' if r.warming_up else 'no':<9}{str(r.last_alert or '-'):<12}{r.quarantined:>11}")


def _register_areas() -> None:
    from pipelines import cli_connectors, cli_email, cli_signals, cli_web

    for area in (cli_connectors, cli_email, cli_signals, cli_web):
        area.register(app, person_app)


_register_areas()


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
