"""CLI commands for the clinician's door, registered on the main `emberwatch` app by pipelines/cli.py:
`emberwatch web` (serve it), `emberwatch invite PERSON` (the welcome email with the link to connect), and
`emberwatch person list` / `person show PERSON` (what the operator sees, as text or JSON)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import typer


def now() -> datetime:
    """The CLI's clock (UTC): one place for tests to hold it at a chosen hour, since what `invite` does depends on
    the time of day where the person lives."""
    return datetime.now(timezone.utc)


def _person_json(store, person_id: str) -> dict:
    from pipelines.people import overview

    person = store.person(person_id)
    o = overview(store, person_id, datetime.now(timezone.utc))
    # What the operator needs to run the service; no health value (counts of nights are not one).
    return {"person_id": person.person_id, "email": person.email, "timezone": person.tz_name,
            "source": person.source, "emails": o.emails,
            "paused_until": o.paused_until.isoformat() if o.paused_until else None,
            "detail": o.detail_level, "window": o.window, "days": o.days,
            "needs_reconnect": o.needs_reconnect,
            "last_night": o.last_night.isoformat() if o.last_night else None,
            "valid_nights": o.valid_nights, "warming_up": o.warming_up}


def register(app: typer.Typer, person_app: typer.Typer) -> None:
    @app.command()
    def web(host: str = typer.Option("127.0.0.1", help="Address to listen on (put HTTPS in front: README)."),
            port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on.")) -> None:
        """Serve the clinician's door: the pages every email links to (EMBERWATCH_PUBLIC_URL)."""
        import uvicorn

        from pipelines.settings import load_settings
        from web.app import create_app

        settings = load_settings()
        typer.echo(f"Serving the clinician's door on http://{host}:{port} (emails link to {settings.public_url}).")
        # No access log: every path holds a signed link, which is the key to a person's page.
        uvicorn.run(create_app(settings), host=host, port=port, access_log=False, log_level="warning",
                    proxy_headers=True, forwarded_allow_ips="127.0.0.1")

    @app.command()
    def invite(person_id: str = typer.Argument(..., help="The person to welcome.")) -> None:
        """Email a person the welcome note with their link: to connect their watch (live sources) or to their page."""
        from alerts.schedule import zone
        from pipelines import validate
        from pipelines.cli_common import person_store
        from pipelines.settings import load_settings
        from pipelines.sources import LIVE_SOURCES
        from pipelines.steps import apply_recorded_choices, deliver_queued, queue_door_note, transport_for

        validate.person_id(person_id)
        settings = load_settings()
        now_utc = now()
        with person_store(person_id) as (store, person):
            queued = queue_door_note(store, person, "invite", now_utc.date().isoformat(), settings, now_utc,
                                     to_connect=person.source in LIVE_SOURCES, deliver_now=True)
            apply_recorded_choices(store, settings, now_utc)
            result = deliver_queued(store, transport_for(settings), now_utc)
            [(goes_out,)] = store.query_rows(
                "SELECT deliver_after_utc FROM email_ledger WHERE person_id = ? AND kind = 'invite' "
                "AND period_key = ? AND status = 'queued'", [person_id, now_utc.date().isoformat()]) or [(None,)]
        if not queued:
            typer.echo(f"{person_id} was already invited today; nothing new was sent.")
        elif result.sent:
            typer.echo(f"Invited {person_id}: the welcome email with their link is sent.")
        else:
            # it is night where they live (or sending failed for now): the next `deliver` run from then sends it
            local = f" at {goes_out.replace(tzinfo=timezone.utc).astimezone(zone(person.tz_name)):%a %H:%M} " \
                f"their time ({person.tz_name})" if goes_out else ""
            typer.echo(f"Invited {person_id}: the welcome email with their link is queued and goes out{local} "
                       f"with the next `emberwatch deliver`.")

    @person_app.command("list")
    def person_list(as_json: bool = typer.Option(False, "--json", help="One JSON array of objects.")) -> None:
        """Everyone enrolled: id, address, zone, source, and whether their emails are active, paused or stopped."""
        from pipelines.settings import load_settings
        from storage.store import Store

        with Store(load_settings().db_path, wait_s=10) as store:
            people = [_person_json(store, p.person_id) for p in store.people(active_only=False)]
        if as_json:
            typer.echo(json.dumps(people, indent=2))
            return
        for p in people:
            typer.echo(f"{p['person_id']:<12}{p['emails']:<9}{p['source']:<15}{p['timezone']:<22}{p['email']}")

    @person_app.command("show")
    def person_show(person_id: str = typer.Argument(...),
                    as_json: bool = typer.Option(False, "--json", help="One JSON object.")) -> None:
        """One person's enrolment and email choices (no health value)."""
        from pipelines.cli_common import person_store

        with person_store(person_id, wait_s=10) as (store, person):
            data = _person_json(store, person.person_id)
        if as_json:
            typer.echo(json.dumps(data, indent=2))
            return
        for key, value in data.items():
            typer.echo(f"{key:<16}{value if value is not None else '-'}")
