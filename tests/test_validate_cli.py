"""`emberwatch validate` as a user runs it: a real PMsys excerpt imported through the CLI into a real DuckDB file,
nights whose short ones are known, and the figures checked against a hand computation from the file itself."""

from __future__ import annotations

import csv
import json
import statistics
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from features.engine import compute_features
from pipelines.cli import app
from storage.store import Store
from tests.helpers import calm_history

FIXTURE = Path(__file__).parent / "fixtures" / "pmdata_p01_pmsys_excerpt" / "wellness.csv"
SHORT_NIGHTS = {date(2020, 3, d) for d in (6, 9, 15, 16, 19)}


def fixture_reports(scale: str) -> dict[date, float]:
    """The file read by hand: each report on its Oslo date (the excerpt has one report per date)."""
    with FIXTURE.open() as f:
        return {datetime.fromisoformat(r["effective_time_frame"].replace("Z", "+00:00")).astimezone(
            ZoneInfo("Europe/Oslo")).date(): float(r[scale]) for r in csv.DictReader(f)}


@pytest.fixture
def home(ew_home):
    runner = CliRunner()
    done = runner.invoke(app, ["person", "add", "p01", "--email", "p01@example.org", "--timezone", "Europe/Oslo"])
    assert done.exit_code == 0, done.output
    first = date(2020, 1, 20)
    # 72 ordinary nights of 7 h with 5 nights of 5 h on known dates (120 min under the median: the naive rule).
    jitter = (lambda i: (-120, 0.0, 0.0) if first + timedelta(days=i) in SHORT_NIGHTS else (0, 0.0, 0.0))
    with Store(ew_home / "emberwatch.duckdb") as store:
        compute_features(store, store.upsert_records(calm_history("p01", first, 72, tz="Europe/Oslo",
                                                                  jitter=jitter)))
    done = runner.invoke(app, ["import", "check-ins", str(FIXTURE), "--person", "p01", "--format", "pmsys"])
    assert done.exit_code == 0, done.output
    assert "Imported 168 answers from wellness.csv for p01." in done.output
    return ew_home


def test_validate_through_the_cli_gives_the_figures_a_hand_computation_gives(home):
    result = CliRunner().invoke(app, ["validate", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["people"] == ["p01"]
    # mood is 3 on all but two mornings: kept (SD > 0); every scale has its 28 reports.
    assert report["reported_mornings"]["fatigue"] == 28
    rules = {r["rule"]: r for r in report["rules"]}
    assert rules["naive_short_sleep"]["flagged_nights"] == 5
    assert rules["naive_short_sleep"]["flagged_nights_with_a_report"] == 5

    fatigue = fixture_reports("fatigue")
    mean, sd = statistics.mean(fatigue.values()), statistics.stdev(fatigue.values())
    z = {d: (v - mean) / sd for d, v in fatigue.items()}
    flagged = [z[d] for d in z if d in SHORT_NIGHTS]
    other = [z[d] for d in z if d not in SHORT_NIGHTS]
    expected = statistics.mean(other) - statistics.mean(flagged)
    cell = rules["naive_short_sleep"]["scales"]["fatigue"]
    assert cell["same_morning"]["worse_by"] == pytest.approx(expected, abs=1e-3)
    assert expected > 0.5  # the short nights were put before four of the 2s: those mornings were worse
    assert cell["same_morning"]["people"] == 1
    # One person: every bootstrap resample is that person, so the interval is the point.
    assert cell["same_morning"]["ci95"] == pytest.approx([expected, expected], abs=1e-3)

    worse = {d for d, v in z.items() if v <= -0.5}
    within = {d for d in z if any(d - timedelta(days=k) in SHORT_NIGHTS for k in range(3))}
    tpr = len(worse & within) / len(worse)
    tnr = len((set(z) - worse) - within) / len(set(z) - worse)
    assert cell["auroc"]["value"] == pytest.approx((tpr + tnr) / 2, abs=1e-3)
    # Calm nights otherwise: emberwatch's own flags stay down, so they have no difference to report.
    assert rules["recovery_flag"]["flagged_nights"] == 0
    assert rules["recovery_flag"]["scales"]["fatigue"]["same_morning"]["worse_by"] is None


def test_the_text_table_names_each_rule_with_its_figures(home):
    result = CliRunner().invoke(app, ["validate", "--person", "p01"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert text.startswith("1 people (p01); reported mornings: fatigue 28, sleep_quality 28, stress 28.")
    row = next(line for line in text.splitlines() if line.startswith("naive: sleep < own median - 60 min"))
    assert row.split()[8:10] == ["5", "5"]
    for label in ("flags today", "recovery_flag alone", "sleep_flag alone", "sleep_deviates", "alert",
                  "naive: resting HR", "yesterday's report"):
        assert label in text
    assert "alerts: 0 over" in text and "95 % intervals (bootstrap over people, 2000 resamples, seed 16)" in text


def test_importing_the_same_reports_again_says_so_and_changes_nothing(home):
    with Store(home / "emberwatch.duckdb") as store:
        before = store.query_rows("SELECT * FROM check_ins ORDER BY ALL")
    done = CliRunner().invoke(app, ["import", "check-ins", str(FIXTURE), "--person", "p01"])
    assert done.exit_code == 0 and "imported before, so nothing changed" in done.output
    with Store(home / "emberwatch.duckdb") as store:
        assert store.query_rows("SELECT * FROM check_ins ORDER BY ALL") == before
