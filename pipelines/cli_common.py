"""What every `emberwatch` command shares: the settings, opening the database for a person without creating it
by mistake, and the one place a refusal becomes a sentence and exit status 1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import typer
from typer.core import TyperGroup


def settings():
    from pipelines.settings import load_settings

    return load_settings()


def refuse(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


class RefusingGroup(TyperGroup):
    """The root command group. Every command runs inside it, so a wrong input (`InputError`), a store's refusal
    (`StoreError`: an unknown id, a busy database) or settings that cannot be used (`SettingsError`) ends here as
    its sentence in red and exit status 1, never as a traceback. All are raised before anything is written."""

    def invoke(self, ctx: Any) -> Any:
        from pipelines.settings import SettingsError
        from pipelines.validate import InputError
        from storage.store import StoreError

        try:
            return super().invoke(ctx)
        except (InputError, StoreError, SettingsError) as exc:
            refuse(str(exc))


@contextmanager
def person_store(person_id: str, wait_s: float = 0.0) -> Iterator[tuple[Any, Any]]:
    """(store, person) for an enrolled person. The id is checked before the database is opened, and a database
    that does not exist yet is not created by a mistyped id."""
    from pipelines import validate
    from storage.store import Store

    pid = validate.person_id(person_id)
    db_path = settings().db_path
    if not db_path.exists():
        raise validate.InputError(validate.unknown_person(pid))
    with Store(db_path, wait_s=wait_s) as store:
        yield store, validate.enrolled_person(store, pid)


def retention_sentence(first: date, last: date, arrived_on: date) -> str:
    """Said when history arrives, while the person can still choose otherwise (docs/privacy.md)."""
    from storage.retention import kept_until

    config = settings()
    nights_until = kept_until(arrived_on, config.retention_features_days)
    files_until = kept_until(arrived_on, config.retention_raw_days)
    kept = (f"until {nights_until} ({config.retention_features_days} days from today, "
            "EMBERWATCH_RETENTION_FEATURES_DAYS)" if nights_until else "until the person is forgotten")
    files = (f"the raw files as received until {files_until} (EMBERWATCH_RETENTION_RAW_DAYS)" if files_until
             else "the raw files until the person is forgotten")
    return (f"Retention keeps these nights ({first} to {last}) {kept}, and {files}; nightly runs remove "
            "nothing sooner.")


def echo_import(result: Any, payloads: str, origin_lines: tuple[str, ...] = ()) -> None:
    """What an import did, the same way for every kind of export: counts, which writer each night or day came
    from, what was skipped and why, what retention keeps, and what was quarantined."""
    typer.echo(f"Imported {result.sync.records} records from {result.sync.payloads} {payloads} "
               f"({result.new_payloads} new); {result.features.feature_rows} nights of features.")
    for line in origin_lines:
        typer.echo(line)
    for skipped in getattr(result, "skipped", ()):
        typer.echo(f"Skipped {skipped.folder}: {skipped.reason}")
    if result.nights is not None:
        typer.echo(retention_sentence(result.nights.first, result.nights.last, result.arrived_on))
    if result.sync.rejected:
        typer.echo(f"{result.sync.rejected} item(s) could not be read and were quarantined with a reason; "
                   "`emberwatch status` shows them. Everything else was imported.")
