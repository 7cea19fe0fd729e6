"""CLI commands for the email area, registered on the main `emberwatch` app by pipelines/cli.py."""

from __future__ import annotations

import typer


def register(app: typer.Typer, person_app: typer.Typer) -> None:
    """Add this area's commands to `app` (top level) or `person_app` (`emberwatch person …`)."""
