"""`emberwatch import apple-health PATH --person P`."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines import validate
from pipelines.cli_common import echo_import, person_store


def import_apple_health(
    path: Path = typer.Argument(..., help="export.zip as the Health app exports it, or its export.xml."),
    person_id: str = typer.Option(..., "--person", help="The enrolled person this export belongs to."),
) -> None:
    """Import an Apple Health export: stream export.xml, archive what is read in chunks, parse, quarantine what is
    malformed, compute features. Retention counts from the day of the import."""
    from pipelines.import_apple_health import import_apple_health as run
    from features.kernels import run_interpreted

    run_interpreted()  # one person's nights, then the process ends: no numba or LLVM to load (features/kernels.py)

    path = validate.apple_health_path(path)
    with person_store(person_id) as (store, person):
        result = run(store, validate.apple_person(person), path)
    lines = []
    if result.sleep_origin:
        lines.append("Sleep, one writer a night and never a sum: "
                     + ", ".join(f"{n} nights from {origin}" for origin, n in result.sleep_origin) + ".")
    if result.steps_origin:
        lines.append("Steps, one writer a day and never a sum: "
                     + ", ".join(f"{n} days from {origin}" for origin, n in result.steps_origin) + ".")
    echo_import(result, "chunks", tuple(lines))
