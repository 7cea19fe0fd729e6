"""CLI commands for the signals area, registered on the main `emberwatch` app by pipelines/cli.py:
`tag`, `tag list`, `features export`, `backtest` and `rebuild`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer


from pipelines import validate
from pipelines.cli_common import person_store, refuse
from pipelines.cli_common import settings as _settings


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
        from features.tags import TAGS, add_tag, list_tags

        if words[0] == "list":
            if len(words) != 2 or from_ or to:
                refuse("Use `emberwatch tag list PERSON`.")
            with person_store(words[1]) as (store, person):
                tags = list_tags(store, person.person_id)
            if not tags:
                typer.echo(f"{words[1]} has no tags.")
            for t in tags:
                typer.echo(f"{t.tag:<12} {t.first_night} .. {t.last_night}")
            return
        if len(words) != 2:
            refuse(f"Use `emberwatch tag PERSON --from YYYY-MM-DD --to YYYY-MM-DD KIND` (KIND: {', '.join(TAGS)}).")
        person_id, kind = validate.person_id(words[0]), validate.tag_kind(words[1])
        first = validate.iso_date(from_, "--from")
        last = validate.iso_date(to, "--to") if to else first
        validate.night_range(first, last)
        with person_store(person_id) as (store, _):
            run = add_tag(store, person_id, kind, first, last)
        typer.echo(f"Tagged {person_id} {kind} from {first} to {last}; recomputed {run.signal_rows} nights.")

    @features_app.command("export")
    def features_export(
        out: Path = typer.Option(..., "--out", help="A .csv or .parquet file."),
    ) -> None:
        """One row per person-night: every nightly feature, the rolling features, the flags and `alert`
        (columns: docs/signals.md)."""
        from alerts.features_export import export_features
        from storage.store import Store

        out = validate.features_file(out)
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
