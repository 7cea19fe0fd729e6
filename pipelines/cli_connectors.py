"""CLI commands for the connectors area (`emberwatch enroll`, `emberwatch backfill`), registered on the main app
by pipelines/cli.py. The work is in plain functions (`enroll_person`, `backfill_person`) that tests call."""

from __future__ import annotations

import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import typer

from connectors.base import PersonContext
from storage.store import NightRange, Store
from pipelines.sources import LIVE_SOURCES, NEEDS_RECONSENT, live_source

BACKFILL_SLICE_DAYS = 90  # one checkpoint per slice; also the longest window most data types accept


@dataclass
class Enrolled:
    person_id: str
    source: str
    granted_scopes: tuple[str, ...]
    tz_name: str


def oauth_app(source: str, source_config: dict):
    if source == "google-health":
        from connectors.google_health import GoogleHealthConfig

        return GoogleHealthConfig.from_env(source_config).oauth_app()
    if source == "oura":
        from connectors.oura import OuraConfig

        return OuraConfig.from_env(source_config).oauth_app()
    from connectors.fitbit_web import FitbitWebConfig

    return FitbitWebConfig.from_env(source_config).oauth_app()


def enroll_person(store: Store, person_id: str, source: str, open_url: Callable[[str], object],
                  port: int = 0, timeout_s: float = 300.0) -> Enrolled:
    """Consent (PKCE) through a loopback redirect, then store the tokens encrypted with the granted scopes."""
    from connectors.oauth import Consent, LoopbackRedirect
    from connectors.token_vault import TokenCipher
    from storage.tokens import DbTokenStore

    if source not in LIVE_SOURCES:
        raise ValueError(f"'{source}' is not a live source; choose one of: {', '.join(LIVE_SOURCES)}.")
    person = store.person(person_id)
    cipher = TokenCipher()  # fail before the person signs in if there is no key
    redirect = LoopbackRedirect(port)
    consent = Consent(oauth_app(source, person.config_for(source)), redirect.redirect_uri)
    opener = threading.Thread(target=open_url, args=(consent.url,), daemon=True)
    opener.start()
    token, scopes = consent.exchange(redirect.wait(timeout_s))
    DbTokenStore(store, cipher).save(person_id, source, token, scopes, new_consent=True)

    from pipelines.people import connected

    enrolled_person = connected(store, person_id, source)
    src = live_source(enrolled_person, store)
    tz_name = person.tz_name
    try:  # the person's own zone, where the source tells it (Google: settings.readonly)
        tz_name = src.time_zone(person_id) or tz_name
        ZoneInfo(tz_name)
    except Exception as exc:  # the zone is a convenience: enrolment stands without it
        import logging

        logging.getLogger("emberwatch").warning("Could not read the person's time zone (%s); kept %s.",
                                                type(exc).__name__, person.tz_name)
        tz_name = person.tz_name
    if tz_name != person.tz_name:
        store.add_person(person_id, person.email, tz_name, source, person.source_config)
    return Enrolled(person_id, source, scopes, tz_name)


@dataclass
class BackfillReport:
    person_id: str
    first: date
    last: date
    slices: int = 0
    records: int = 0
    requests: int = 0
    resumed_from: date | None = None


def backfill_person(store: Store, person_id: str, days: int, today: date | None = None,
                    progress: Callable[[int], None] | None = None) -> BackfillReport:
    """Fetch the last `days` nights newest first in slices, archiving and upserting each slice and checkpointing
    after it, so an interrupted backfill resumes where it stopped. Features are rebuilt over the range at the
    end."""
    from storage.sync_state import SyncState
    from pipelines import steps

    person = store.person(person_id)
    source = live_source(person, store)
    state = SyncState(store)
    ctx = PersonContext(person.person_id, person.tz_name)
    last = today or (datetime.now(timezone.utc).astimezone(ZoneInfo(person.tz_name)).date() - timedelta(days=1))
    first = last - timedelta(days=days - 1)
    report = BackfillReport(person_id, first, last)
    checkpoint = state.backfilled_from(person_id, person.source)
    end = last
    if checkpoint is not None and first < checkpoint <= last:
        end = checkpoint - timedelta(days=1)
        report.resumed_from = checkpoint
        if progress:
            progress((last - end).days)
    elif checkpoint is not None and checkpoint <= first:
        return report  # already done
    touched = None
    while end >= first:
        slice_days = getattr(source, "backfill_slice_days", BACKFILL_SLICE_DAYS)
        start = max(first, end - timedelta(days=slice_days - 1))
        ingested = steps.ingest(store, [steps.fetch_window(source, ctx, start, end)])
        ingested.raise_consent_lost()  # acted on by the writer (marked, one email); the operator is told
        result = ingested.people[person_id]
        report.records += result.records
        if result.touched is not None:
            touched = result.touched.union(touched)
        state.mark_backfilled(person_id, person.source, start)
        report.slices += 1
        if progress:
            progress((end - start).days + 1)
        end = start - timedelta(days=1)
    report.requests = getattr(source, "requests_sent", 0)
    if report.slices:
        from storage.retention import record_arrival

        # Fetched today in bulk: retention counts these nights from today, like an imported export.
        record_arrival(store, person_id, NightRange(first, last), datetime.now(timezone.utc).date())
    if touched is not None:
        # The whole range, not only this run's slices: an interrupted run stored slices without features.
        steps.update_features(store, [steps.SyncResult(person_id, touched=NightRange(first, last).union(touched))])
    return report


def register(app: typer.Typer, person_app: typer.Typer) -> None:
    """Add this area's commands to `app` (top level) or `person_app` (`emberwatch person …`)."""

    @app.command()
    def enroll(
        person_id: str = typer.Argument(..., help="An enrolled person (`emberwatch person add`)."),
        source: str = typer.Option(..., "--source", help="google-health, oura or fitbit-web"),
        port: int = typer.Option(0, "--port", help="Loopback port for the redirect (0: any free port). It must "
                                 "match a redirect URI registered for the OAuth client."),
        no_browser: bool = typer.Option(False, "--no-browser", help="Print the consent URL instead of opening it."),
    ) -> None:
        """Connect a person's watch: open the consent page, catch the redirect, store tokens encrypted."""
        from pipelines import validate
        from pipelines.cli_common import person_store

        source = validate.live_source(source)
        port = validate.count(port, "--port", 0, 65535)

        def show(url: str) -> None:
            typer.echo("Open this address in the person's browser to connect their watch:\n" + url)
            if not no_browser:
                webbrowser.open(url)

        with person_store(person_id) as (store, _):
            try:
                done = enroll_person(store, person_id, source, show, port)
            except Exception as exc:  # errors here are sentences meant for the operator
                typer.echo(f"Enrolment did not finish: {exc}", err=True)
                raise typer.Exit(1)
        typer.echo(f"{person_id} is connected to {source} ({len(done.granted_scopes)} permission(s) granted; "
                   f"time zone {done.tz_name}).")

    @app.command("rotate-key")
    def rotate_key() -> None:
        """Re-encrypt every stored token with the first key in EMBERWATCH_SECRET_KEY ("new,old")."""
        from connectors.token_vault import MissingSecretKey, TokenCipher
        from storage.tokens import DbTokenStore
        from pipelines.settings import load_settings

        try:
            cipher = TokenCipher()
            with Store(load_settings().db_path) as store:
                count = DbTokenStore(store, cipher).reseal_all()
        except MissingSecretKey as exc:
            typer.echo(f"Nothing was changed: {exc}", err=True)
            raise typer.Exit(1)
        if cipher.key_count > 1:
            typer.echo(f"Re-encrypted {count} token(s) with the new key. Now remove the old key(s) from "
                       "EMBERWATCH_SECRET_KEY (or the Prefect Secret) so only the new one remains.")
        else:
            typer.echo(f"Re-encrypted {count} token(s). To rotate, set EMBERWATCH_SECRET_KEY to 'NEW,OLD' first.")

    @app.command()
    def backfill(
        person_id: str = typer.Argument(...),
        days: int = typer.Option(365, "--days", help="How many nights back from yesterday (1 to 3650)."),
    ) -> None:
        """Fetch a person's history (resumable: a second run continues from the last checkpoint)."""
        from pipelines import validate
        from pipelines.cli_common import person_store, retention_sentence

        days = validate.count(days, "--days", 1, 3650)
        with person_store(person_id) as (store, person):
            validate.live_person(person)
            with typer.progressbar(length=days, label="Backfilling") as bar:
                report = backfill_person(store, person_id, days, progress=bar.update)
        typer.echo(f"Backfilled {report.first}..{report.last} for {person_id}: {report.records} records, "
                   f"{report.requests} requests.")
        if report.slices:
            typer.echo(retention_sentence(report.first, report.last, datetime.now(timezone.utc).date()))
