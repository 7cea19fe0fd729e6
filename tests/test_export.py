"""`features export`: one row per person-night, the documented columns, and a data dictionary that is current."""

from __future__ import annotations

from datetime import date

import pandas as pd
from typer.testing import CliRunner

from alerts.data_dictionary import DOC, render
from alerts.features_export import export_features
from features.catalog import EXPORT_ORDER
from features.engine import compute_features
from tests.helpers import calm_history
from tests.test_catalog import export_columns


def test_the_data_dictionary_page_is_generated_from_the_catalog_and_current():
    assert DOC.read_text(encoding="utf-8") == render(), "run `python -m alerts.data_dictionary` to refresh docs/signals.md"


def test_every_exported_column_is_documented_in_order(store):
    assert export_columns(store) == list(EXPORT_ORDER)


def test_export_csv_and_parquet_have_one_row_per_person_night(store, tmp_path):
    compute_features(store, store.upsert_records(calm_history("e", date(2026, 1, 1), 25)))
    n = export_features(store, tmp_path / "f.csv")
    df = pd.read_csv(tmp_path / "f.csv")
    assert n == len(df) == 25 and list(df.columns) == list(EXPORT_ORDER)
    assert not df.duplicated(["person_id", "night_date"]).any()
    assert df.warming_up.iloc[0] and not df.warming_up.iloc[-1]
    assert pd.isna(df.tst_sd_14n_min.iloc[0])  # not enough nights yet: empty, not zero
    export_features(store, tmp_path / "f.parquet")
    pq = pd.read_parquet(tmp_path / "f.parquet")
    assert len(pq) == 25 and list(pq.columns) == list(EXPORT_ORDER) and pq.alert.dtype == bool


def test_export_command_refuses_other_formats(ew_home, tmp_path):
    from pipelines.cli import app

    result = CliRunner().invoke(app, ["features", "export", "--out", str(tmp_path / "f.xlsx")])
    assert result.exit_code == 1 and ".csv or .parquet" in result.output
