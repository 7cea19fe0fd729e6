"""The feature catalogue is the one description of the feature tables: the migrated tables match it exactly."""

from __future__ import annotations

import pytest

from features.catalog import COLUMNS, FEATURES, INTERNAL_COLUMNS, TABLE_COLUMNS
from storage.store import Store


def table_columns(store: Store, table: str) -> list[tuple[str, str]]:
    """(name, DuckDB type with NOT NULL where it applies) of a table as the store has it, in order."""
    rows = store.query_rows(
        "SELECT column_name, data_type, is_nullable FROM duckdb_columns() WHERE table_name = ? "
        "ORDER BY column_index", [table])
    return [(name, data_type if nullable else f"{data_type} NOT NULL") for name, data_type, nullable in rows]


def export_columns(store: Store) -> list[str]:
    """The export's columns as the store's tables give them: the night's features, its signals, the alert."""
    nightly = [name for name, _ in table_columns(store, "nightly_features") if name not in INTERNAL_COLUMNS]
    signals = [name for name, _ in table_columns(store, "night_signals") if name not in nightly]
    return nightly + signals + ["alert"]


@pytest.mark.parametrize("table", sorted(TABLE_COLUMNS))
def test_the_migrated_feature_tables_have_exactly_the_catalogued_columns(store, table):
    # A migration that adds, drops, renames, retypes or reorders a column without the catalogue fails here.
    assert table_columns(store, table) == [(name, COLUMNS[name].sql_type) for name in TABLE_COLUMNS[table]]


def test_every_catalogued_column_is_in_a_table_or_the_export_alone():
    in_tables = {name for names in TABLE_COLUMNS.values() for name in names}
    export_only = {c.name for c in COLUMNS.values() if c.table == "export"}
    assert set(COLUMNS) == in_tables | export_only and not in_tables & export_only
    assert all(COLUMNS[name].table in TABLE_COLUMNS for name in in_tables)


def test_the_compared_features_are_nightly_feature_columns():
    assert all(COLUMNS[name].table == "nightly_features" for name in FEATURES)
    assert all(name in COLUMNS for name in INTERNAL_COLUMNS)
