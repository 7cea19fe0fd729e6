"""CLI commands for the signals area, registered on the main `emberwatch` app by pipelines/cli.py:
`tag`, `tag list`, `features export`, `backtest` and `rebuild`."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import List, Optional

import typer


def _settings():
    from pipelines.settings import load_settings

    return load_settings()


def _fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _day(text: Optional[str], option: str) -> date:
    if not text:
        _fail(f"{option} is needed, as a date YYYY-MM-DD (the local date you woke up).")
    try:
        return date.fromisoformat(text)  # type: ignore[arg-type]
    except ValueError:
        _fail(f"{option} '{text}' is not a date; write it as YYYY-MM-DD, for example 2026-03-14.")
        raise


def register(app: typer.Typer, person_app: typer.Typer) -> None:
    """Add this area's commands to `app` (top level) or `person_app` (`emberwatch person …`)."""
    features_app = typer.Typer(help="Feature tables: export them.", no_args_is_help=True)
    app.add_typer(features_app, name="features")

    @app.command("tag")
    def tag(
        words: List[str] = typer.Argument(..., help="PERSON KIND to tag nights, or `list PERSON` to list tags. "
                                                    "KIND: illness, travel, on-call, night-shift, day-off."),
        from_: Optional[str] = typer.Option(None, "--from", help="First night (wake date) YYYY-MM-DD."),
        to: Optional[str] = typer.Option(None, "--to", help="Last night (wake date) YYYY-MM-DD; default --from."),
    ) -> None:
        """Tag nights with context (`emberwatch tag PERSON --from D --to D KIND`), or list a person's tags
        (`emberwatch tag list PERSON`). Tagged illness/travel/on-call nights stay out of baselines."""
        from storage.store import Store, StoreError
        from features.tags import TAGS, TagError, add_tag, list_tags

        with Store(_settings().db_path) as store:
            try:
                if words[0] == "list":
                    if len(words) != 2:
                        _fail("Use `emberwatch tag list PERSON`.")
                    tags = list_tags(store, words[1])
                    if not tags:
                        typer.echo(f"{words[1]} has no tags.")
                    for t in tags:
                        typer.echo(f"{t.tag:<12} {t.first_night} .. {t.last_night}")
                    return
                if len(words) != 2:
                    _fail(f"Use `emberwatch tag PERSON --from YYYY-MM-DD --to YYYY-MM-DD KIND` "
                          f"(KIND: {', '.join(TAGS)}).")
                person_id, kind = words
                first = _day(from_, "--from")
                last = _day(to, "--to") if to else first
                run = add_tag(store, person_id, kind, first, last)
            except (StoreError, TagError) as exc:
                _fail(str(exc))
                return
        typer.echo(f"Tagged {person_id} {kind} from {first} to {last}; recomputed {run.signal_rows} nights.")

    @features_app.command("export")
    def features_export(
        out: Path = typer.Option(..., "--out", help="A .csv or .parquet file."),
    ) -> None:
        """One row per person-night: every nightly feature, the rolling features, the flags and `alert`
        (columns: docs/signals.md)."""
        from alerts.features_export import export_features
        from storage.store import Store

        if out.suffix.lower() not in (".csv", ".parquet"):
            _fail(f"'{out.name}' should end in .csv or .parquet; those are the formats the export writes.")
        with Store(_settings().db_path) as store:
            rows = export_features(store, out)
        typer.echo(f"Wrote {rows} person-nights to {out}.")

    @app.command("backtest")
    def backtest_cmd(
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Replay the stored history night by night through the alert rule; report alerts per person-month,
        time flagged, and on synthetic data recall of scripted rough patches and lead time."""
        from alerts.backtest import backtest, format_report
        from storage.store import Store

        with Store(_settings().db_path) as store:
            report = backtest(store)
        if as_json:
            typer.echo(json.dumps(report.to_json(), indent=2))
        else:
            typer.echo(format_report(report))

    @app.command("rebuild")
    def rebuild() -> None:
        """Recompute every night's features and signals from the normalized tables (after an upgrade, or
        after changing thresholds)."""
        from features.engine import rebuild_all
        from storage.store import Store

        with Store(_settings().db_path) as store:
            run = rebuild_all(store)
        typer.echo(f"Rebuilt {run.feature_rows} nights of features and {run.signal_rows} nights of signals "
                   f"for {run.people} people.")
