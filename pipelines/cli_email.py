"""CLI commands for the email area, registered on the main `emberwatch` app by pipelines/cli.py.

- `emberwatch deliver`: send the queued mail that is due now. Schedule it every 15 minutes so each person's mail
  goes out inside their window (the nightly and weekly flows also deliver what is due when they run).
- `emberwatch person set PERSON --window 07:30-08:30 --days Mon-Fri` (the options live on `person set` in
  pipelines/cli.py; the work is done by `set_delivery` here).
"""

from __future__ import annotations

from datetime import datetime, timezone

import typer


def set_delivery(store, person_id: str, window: str | None, days: str | None,
                 now_utc: datetime | None = None) -> tuple[str, str, int]:
    """Check and store a person's delivery window and working days; move their queued mail to the new window.

    Returns (window, days, queued emails moved). Raises alerts.schedule.ScheduleError with a sentence to show.
    """
    from alerts.ledger import reschedule
    from alerts.schedule import next_delivery_utc, parse_window, parse_working_days

    current_window, current_days = store.delivery_preferences(person_id)
    if window is not None:
        start, end = parse_window(window)
        window = f"{start:%H:%M}-{end:%H:%M}"
    if days is not None:
        parse_working_days(days)
        days = days.replace(" ", "")
    store.set_delivery_preferences(person_id, window=window, days=days)
    window, days = window or current_window, days or current_days
    person = store.person(person_id)
    moved = reschedule(store, person_id, next_delivery_utc(now_utc or datetime.now(timezone.utc), person.tz_name,
                                                           window, working_days=days))
    return window, days, moved


def register(app: typer.Typer, person_app: typer.Typer) -> None:
    """Add this area's commands to `app` (top level) or `person_app` (`emberwatch person …`)."""

    @app.command()
    def deliver() -> None:
        """Send queued emails that are due now (inside each person's window); schedule it every 15 minutes."""
        from storage.store import Store, StoreError
        from pipelines.settings import load_settings
        from pipelines.steps import apply_recorded_choices, deliver_queued, transport_for

        settings = load_settings()
        try:
            store = Store(settings.db_path, wait_s=settings.writer_wait_s)  # a nightly run may hold it: wait
        except StoreError as exc:
            typer.secho(str(exc), fg=typer.colors.RED, err=True)  # a sentence, not a traceback
            raise typer.Exit(code=1)
        with store:
            now_utc = datetime.now(timezone.utc)
            apply_recorded_choices(store, settings, now_utc)
            result = deliver_queued(store, transport_for(settings), now_utc)
        typer.echo(f"{result.sent} sent, {result.deferred} deferred (will retry), {result.failed} failed, "
                   f"{result.waiting} waiting for their window")
        if result.failed:
            raise typer.Exit(code=2)
