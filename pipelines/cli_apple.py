"""`emberwatch import apple-health PATH --person P`."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines import validate
from pipelines.cli_common import person_store, retention_sentence


def import_apple_health(
    path: Path = typer.Argument(..., help="export.zip as the Health app exports it, or its export.xml."),
    person_id: str = typer.Option(..., "--person", help="The enrolled person this export belongs to."),
) -> None:
    """Import an Apple Health export: stream export.xml, archive what is read in chunks, parse, quarantine what is
    malformed, compute features. Retention counts from the day of the import."""
    from pipelines.import_apple_health import import_apple_health as run

    path = validate.apple_health_path(path)
    with person_store(person_id) as (store, person):
        result = run(store, validate.apple_person(person), path)
    typer.echo(f"Imported {result.sync.records} records from {result.sync.payloads} chunks "
               f"({result.new_payloads} new); {result.features.feature_rows} nights of features.")
    if result.sleep_origin:
        typer.echo("Sleep, one writer a night and never a sum: "
                   + ", ".join(f"{n} nights from {origin}" for origin, n in result.sleep_origin) + ".")
    if result.steps_origin:
        typer.echo("Steps, one writer a day and never a sum: "
                   + ", ".join(f"{n} days from {origin}" for origin, n in result.steps_origin) + ".")
    for skipped in result.skipped:
        typer.echo(f"Skipped {skipped.folder}: {skipped.reason}")
    if result.nights is not None:
        typer.echo(retention_sentence(result.nights.first, result.nights.last, result.arrived_on))
    if result.sync.rejected:
        typer.echo(f"{result.sync.rejected} item(s) could not be read and were quarantined with a reason; "
                   "`emberwatch status` shows them. Everything else was imported.")
