"""CLI commands for the email area, registered on the main `emberwatch` app by pipelines/cli.py.

- `emberwatch deliver`: send the queued mail that is due now. Schedule it every 15 minutes so each person's mail
  goes out inside their window (the nightly and weekly flows also deliver what is due when they run).
"""

from __future__ import annotations

from datetime import datetime, timezone

import typer


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
