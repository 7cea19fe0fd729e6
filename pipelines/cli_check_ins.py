"""CLI commands for people's own reports, registered on the main `emberwatch` app by pipelines/cli.py:
`import check-ins` and `validate`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from pipelines import validate
from pipelines.cli_common import person_store, retention_sentence
from pipelines.cli_common import settings as _settings


def register(app: typer.Typer, person_app: typer.Typer) -> None:
    """Add this area's commands: `validate` on `app`, `check-ins` on its `import` group."""
    import_app = next(g.typer_instance for g in app.registered_groups if g.name == "import")

    @import_app.command("check-ins")
    def import_check_ins_cmd(
        path: Path = typer.Argument(..., help="A PMsys wellness.csv, or a CSV with the header date,scale,value."),
        person_id: str = typer.Option(..., "--person", help="The enrolled person who made these reports."),
        fmt: str = typer.Option("pmsys", "--format", help="pmsys (wellness.csv) or csv (date,scale,value)."),
    ) -> None:
        """Import a person's own morning reports (how they felt), to check the signals against them with
        `emberwatch validate`. The file is archived as received; a row that cannot be read is quarantined with
        its reason and the rest is imported. Importing the same file again changes nothing."""
        from pipelines.import_check_ins import import_check_ins

        fmt = validate.check_in_format(fmt)
        path = validate.check_in_file(path, fmt)
        with person_store(person_id) as (store, person):
            result = import_check_ins(store, person, path, fmt)
        typer.echo(f"Imported {result.answers} answers from {path.name} for {person.person_id}"
                   + (f" ({result.skipped_unanswered} unanswered question(s) not stored)"
                      if result.skipped_unanswered else "")
                   + ("" if result.new_file else "; this file was imported before, so nothing changed") + ".")
        if result.dates is not None and result.arrived_on is not None:
            typer.echo(retention_sentence(result.dates.first, result.dates.last, result.arrived_on)
                       .replace("these nights", "these reports"))
        if result.rejected:
            typer.echo(f"{len(result.rejected)} answer(s) or row(s) could not be read and were quarantined; "
                       "everything else was imported:")
            for r in result.rejected:
                typer.echo(f"  {r.locator or 'the file'}: {r.reason}")

    @app.command("validate")
    def validate_cmd(
        as_json: bool = typer.Option(False, "--json", help="Print everything as JSON."),
        people: Optional[List[str]] = typer.Option(None, "--person", help="Only these people (repeatable)."),
    ) -> None:
        """Check the flags against how people said they felt: within each person, how much worse (in their own
        SD) their mornings after flagged nights were, with bootstrap intervals over people, and the AUROC of each
        rule for a worse-than-usual morning within 3 nights."""
        from alerts.validation import MORNING_SOURCES, format_report, validate as run_validation
        from storage.store import Store

        pids = [validate.person_id(p) for p in people or []]
        db_path = _settings().db_path
        if not db_path.exists():
            raise validate.InputError(validate.unknown_person(pids[0]) if pids else validate.no_check_ins([]))
        with Store(db_path) as store:
            for pid in pids:
                validate.enrolled_person(store, pid)
            with_reports = {r[0] for r in store.query_rows(
                "SELECT DISTINCT person_id FROM check_ins WHERE list_contains(?, source)", [list(MORNING_SOURCES)])}
            if missing := [p for p in pids if p not in with_reports] or ([] if with_reports else [""]):
                raise validate.InputError(validate.no_check_ins([p for p in missing if p]))
            report = run_validation(store, pids or None)
        typer.echo(json.dumps(report.to_json(), indent=2) if as_json else format_report(report))
