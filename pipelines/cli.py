"""The `emberwatch` command line."""

from __future__ import annotations

import os
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Optional

import typer

from pipelines import validate
from pipelines.cli_common import RefusingGroup, echo_import, person_store, refuse
from pipelines.cli_common import settings as _settings

app = typer.Typer(help="emberwatch: gentle early warning on the physical signals of burnout.", no_args_is_help=True,
                  cls=RefusingGroup)
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
    # Measured: in Prefect's throwaway local server (SQLite), the task-run recorder competes with flow-run
    # creation for the database (each collision costs a 2 s client retry) and, when the server stops at exit,
    # logs "Error flushing N events" at ERROR after a good run. That server records flow runs only; a real
    # server (PREFECT_API_URL) runs in its own process with its own settings, untouched by this.
    os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED", "false")


def _today_utc() -> date:
    # A wake date can be "tomorrow" in UTC for zones east of it: one day of slack.
    return datetime.now(timezone.utc).date() + timedelta(days=1)


@app.command()
def demo(
    people: int = typer.Option(12, help="Synthetic clinicians."),
    nights: int = typer.Option(120, help="Nights of history to replay."),
    seed: int = typer.Option(7, help="Seed of the synthetic cohort."),
) -> None:
    """Run the real nightly and weekly flows night by night over a synthetic cohort, into EMBERWATCH_HOME."""
    validate.count(people, "--people", 1, 1000)
    validate.count(nights, "--nights", 1, 3650)
    validate.count(seed, "--seed", 0, 2**32 - 1)  # numpy's seed range
    _refuse_demo_over_real_people(people)
    _quiet_prefect()
    from storage.store import Store
    from pipelines.demo import DemoCohort, run_demo, summary_rows

    settings = _settings()
    spec = DemoCohort(people, nights, seed)
    started = datetime.now(timezone.utc)
    typer.echo(f"emberwatch demo: {people} synthetic clinicians (and 3 wearing other devices) x {nights} nights "
               f"into {settings.home.resolve()}")

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
               f"{'alerts':>8}{'digests':>9}  devices")
    for r in rows:
        typer.echo(f"{r['person_id']:<8}{r['profile']:<9}{r['valid_nights']:>13}{r['sleep_flag_nights']:>12}"
                   f"{r['recovery_flag_nights']:>12}{r['alerts']:>8}{r['digests']:>9}  {r['devices']}".rstrip())
    typer.echo("")
    typer.echo("rows: " + ", ".join(f"{k}={v}" for k, v in counts.items() if k != "schema_version"))
    typer.echo(f"outbox: {settings.outbox_dir.resolve()}  (open the .html files in a browser)")
    typer.echo(f"done in {elapsed:.0f} s")


def _refuse_demo_over_real_people(people: int) -> None:
    """The demo enrols c01..cNN: in a home where those ids are real people it would take over their records."""
    from connectors.synthetic import SyntheticCohort
    from storage.store import Store

    db_path = _settings().db_path
    if not db_path.exists():
        return
    demo_ids = {p.person_id for p in SyntheticCohort(n_people=people, n_nights=1, device_wearers=True).people}
    with Store(db_path) as store:
        taken = [p.person_id for p in store.people(active_only=False)
                 if p.person_id in demo_ids and p.source != "synthetic"]
    if taken:
        raise validate.InputError(
            f"{db_path.parent} already holds {', '.join(taken)} with real data, and the demo would take over those "
            "ids. Run the demo in its own folder: `EMBERWATCH_HOME=demo-data emberwatch demo`.")


@person_app.command("add")
def person_add(
    person_id: str = typer.Argument(..., help="An opaque id, e.g. c01. Not a name."),
    email: str = typer.Option(..., "--email", help="Where this person's own emails go."),
    timezone_name: str = typer.Option(..., "--timezone", help="IANA zone, e.g. Europe/Oslo."),
    source: str = typer.Option("fitbit-export", help="Where their data comes from: fitbit-export, google-takeout, "
                               "apple-health, google-health, oura or fitbit-web."),
) -> None:
    """Enrol a new person. Ids: 1-40 letters, digits, '-' or '_'. Change an enrolled person with `person set`."""
    from storage.store import Store
    from pipelines.shards import for_person

    person_id = validate.person_id(person_id)
    email = validate.email_address(email)
    timezone_name = validate.time_zone(timezone_name)
    source = validate.source(source)
    settings = for_person(_settings(), person_id)
    with Store(settings.db_path) as store:
        validate.new_person(store, person_id)  # re-adding must not quietly send someone's emails elsewhere
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
    email: Optional[str] = typer.Option(None, "--email", help="A new address for this person's emails."),
    timezone_name: Optional[str] = typer.Option(None, "--timezone", help="A new IANA zone, e.g. Europe/Oslo."),
) -> None:
    """Change a person's preferences, address or zone (each change is said back)."""
    from pipelines.people import EmailChoices, change_emails

    # Every value is checked before anything is stored: a refusal changes nothing.
    detail = None if detail is None else validate.detail_level(detail)
    window = None if window is None else validate.delivery_window(window)
    days = None if days is None else validate.working_days(days)
    email = None if email is None else validate.email_address(email)
    timezone_name = None if timezone_name is None else validate.time_zone(timezone_name)
    if sum((pause, resume, stop)) > 1:
        refuse("Choose one of --pause, --resume and --stop.")
    status = "paused" if pause else "active" if resume else "stopped" if stop else None
    with person_store(person_id) as (store, before):
        store.set_person(before.person_id, email=email, tz_name=timezone_name)
        # The same change a click on the person's page makes: queued mail moves to the new window.
        p = change_emails(store, before.person_id, EmailChoices(detail, window, days, status), _settings())
        when, on_days = store.delivery_preferences(p.person_id)
    if p.email != before.email:
        typer.echo(f"{p.person_id}'s emails now go to {p.email} (until now: {before.email}).")
    if p.tz_name != before.tz_name:
        typer.echo(f"{p.person_id}'s time zone is now {p.tz_name} (until now: {before.tz_name}).")
    typer.echo(f"{p.person_id}: emails {p.status}, detail {p.detail_level}, delivered {when} on {on_days} "
               f"({p.tz_name}).")


@person_app.command("add-source")
def person_add_source(
    person_id: str = typer.Argument(...),
    source: str = typer.Option(..., "--source", help="Their other device or export: fitbit-export, google-takeout, "
                               "apple-health, google-health, oura or fitbit-web."),
    endpoints: str = typer.Option("", "--endpoints", help="A live source's own URLs, where they are not the "
                                  "environment's: a JSON object of api_base, authorize_url, token_url."),
) -> None:
    """Give a person a second device (a watch and a ring) or a new brand: imports and connections from it are
    accepted, and for each kind of data one device counts (README, "Several devices")."""
    from pipelines.people import add_source

    source = validate.source(source)
    settings = validate.endpoint_settings(source, endpoints) if endpoints else None
    with person_store(person_id) as (store, person):
        added = add_source(store, person.person_id, source, settings)
        sources = store.person(person.person_id).sources
    said = "now has" if added else "already had"
    own = f" ({source} reaches its own {', '.join(settings)})" if settings else ""
    typer.echo(f"{person_id} {said} {source}{own}; their sources: {', '.join(sources)}.")


@person_app.command("prefer")
def person_prefer(
    person_id: str = typer.Argument(...),
    data: str = typer.Option(..., "--data", help="sleep, resting_hr, hrv, breathing_rate, spo2, skin_temp or steps."),
    source: str = typer.Option(..., "--source", help="One of the person's own sources."),
) -> None:
    """Choose which of a person's devices counts for one kind of data (the same choice as on their page); their
    nights are worked out again at once."""
    from pipelines.people import choose_sources

    data = validate.data_type(data)
    with person_store(person_id) as (store, person):
        choose_sources(store, person.person_id, {data: validate.source_of_person(person, source)})
    typer.echo(f"{person_id}: {data} now counts from {source}; their nights were worked out again.")


@app.command()
def forget(
    person_id: str = typer.Argument(...),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete everything held about a person: records, raw archive, features, alerts, ledger and outbox files."""
    from pipelines.people import forget as forget_person

    with person_store(person_id):
        pass  # an unknown id is refused before anyone is asked to confirm
    if not yes:
        typer.confirm(f"Delete all data about {person_id}? This cannot be undone.", abort=True)
    with person_store(person_id) as (store, _):
        rows, files = forget_person(store, person_id, _settings().outbox_dir)
    typer.echo(f"Deleted {rows} rows and {files} outbox files about {person_id}. Only the fact of a deletion is kept.")


@app.command("export")
def export(
    person_id: str = typer.Argument(...),
    out: Path = typer.Option(..., "--out", help="Folder to write into (created, owner-only)."),
) -> None:
    """Everything held about a person, as Parquet and CSV files with a README of what each file is."""
    from pipelines.people import export_person

    out = validate.new_export_folder(out)
    with person_store(person_id, wait_s=10) as (store, _):
        files = export_person(store, person_id, out)
    typer.echo(f"Wrote {len(files)} files about {person_id} to {out} (start with README.md).")


@import_app.command("fitbit-export")
def import_fitbit_export(
    path: Path = typer.Argument(..., help="A Fitbit export folder (…/fitbit)."),
    person_id: str = typer.Option(..., "--person", help="The enrolled person this export belongs to."),
) -> None:
    """Import a Fitbit account export: archive every file, parse, quarantine what is malformed, compute features.
    Retention keeps imported nights for EMBERWATCH_RETENTION_FEATURES_DAYS counted from the day of the import."""
    from pipelines.import_fitbit_export import import_export
    from features.kernels import run_interpreted

    run_interpreted()  # one person's nights, then the process ends: no numba or LLVM to load (features/kernels.py)

    path = validate.fitbit_export_folder(path)
    with person_store(person_id) as (store, person):
        result = import_export(store, validate.export_person(person), path)
    echo_import(result, "files")


from pipelines.cli_takeout import import_google_takeout  # noqa: E402

import_app.command("google-takeout")(import_google_takeout)

from pipelines.cli_apple import import_apple_health  # noqa: E402

import_app.command("apple-health")(import_apple_health)


def _run_flow(name: str, **params: object):
    """A nightly or weekly flow run from the terminal. A busy database (StoreError) becomes a sentence and exit 1
    in RefusingGroup."""
    _quiet_prefect()  # before Prefect is first imported: it reads its logging settings once, at import
    from pipelines import flows

    flow, params_model = {"nightly": (flows.nightly, flows.NightlyParams),
                          "weekly": (flows.weekly, flows.WeeklyParams)}[name]
    return flow(params_model(**params))


@app.command()
def nightly(night: Optional[str] = typer.Option(None, "--date", help="Night (wake date) YYYY-MM-DD; default yesterday.")) -> None:
    """Sync everyone, update features, decide alerts and deliver (the scheduled nightly job)."""
    night_date = None if night is None else validate.iso_date(night, "--date", latest=_today_utc())
    report = _run_flow("nightly", night_date=night_date)
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
    day = None if run_date is None else validate.iso_date(run_date, "--date", latest=_today_utc())
    report = _run_flow("weekly", run_date=day)
    typer.echo(f"week {report.period}: {report.digests_queued} check-in(s) queued, {report.sent} sent")


@app.command()
def serve() -> None:
    """Register and serve the scheduled `nightly`, `weekly` and `deliver` deployments (needs a Prefect server: see
    README)."""
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
    """Per person: devices and exports, last night synced, valid nights, warm-up, last alert (no health values)."""
    from pipelines.status import status_rows
    from storage.store import Store

    with Store(_settings().db_path) as store:
        rows = status_rows(store)
    width = max([len("sources")] + [len(r.sources) for r in rows]) + 2
    typer.echo(f"{'person':<10}{'sources':<{width}}{'status':<9}{'last night':<12}{'valid':>6}  {'warm-up':<9}"
               f"{'last alert':<12}{'quarantined':>11}")
    for r in rows:
        typer.echo(f"{r.person_id:<10}{r.sources:<{width}}{r.status:<9}{str(r.last_night or '-'):<12}"
                   f"{r.valid_nights:>6}  {'yes' if r.warming_up else 'no':<9}{str(r.last_alert or '-'):<12}"
                   f"{r.quarantined:>11}")


def _register_areas() -> None:
    from pipelines import cli_check_ins, cli_connectors, cli_email, cli_signals, cli_web

    for area in (cli_connectors, cli_email, cli_signals, cli_web, cli_check_ins):
        area.register(app, person_app)


_register_areas()


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
