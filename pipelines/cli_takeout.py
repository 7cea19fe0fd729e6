"""`emberwatch import google-takeout PATH --person P`."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines import validate
from pipelines.cli_common import echo_import, person_store


def import_google_takeout(
    path: Path = typer.Argument(..., help="The Google Takeout folder, or its .zip / .tgz as downloaded."),
    person_id: str = typer.Option(..., "--person", help="The enrolled person this archive belongs to."),
) -> None:
    """Import a Google Takeout health export (today's Fitbit download): archive every file, parse, quarantine what
    is malformed, compute features. Retention counts from the day of the import."""
    from pipelines.import_google_takeout import import_takeout
    from features.kernels import run_interpreted

    run_interpreted()  # one person's nights, then the process ends: no numba or LLVM to load (features/kernels.py)

    path = validate.google_takeout_path(path)
    with person_store(person_id) as (store, person):
        result = import_takeout(store, validate.takeout_person(person), path)
    lines = ()
    if result.steps_origin:
        days = sum(n for _, n in result.steps_origin)
        lines = (f"Steps for {days} days, one source a day and never a sum: "
                 + ", ".join(f"{n} from {origin}" for origin, n in result.steps_origin) + ".",)
    echo_import(result, "bundles of files", lines)
