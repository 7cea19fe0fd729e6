"""Check-ins: stored once per person, day, scale and source; validated; covered by export, forget and retention."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from pipelines.people import export_person, forget
from storage.check_ins import CheckIn, load_check_ins, upsert_check_ins
from storage.retention import apply_retention

AT = datetime(2026, 12, 7, 7, 0)


def test_a_batch_with_a_repeated_key_keeps_the_last_and_a_second_import_changes_nothing(store):
    store.add_person("p01", "p01@example.org", "Europe/Oslo", "fitbit-export")
    batch = [CheckIn("p01", date(2020, 1, 1), "fatigue", 2, "pmsys", AT),
             CheckIn("p01", date(2020, 1, 1), "fatigue", 4, "pmsys", AT),
             CheckIn("p01", date(2020, 1, 1), "stress", 3, "pmsys", AT)]
    assert upsert_check_ins(store, batch) == 2
    assert upsert_check_ins(store, batch) == 2
    rows = load_check_ins(store, "p01")
    assert list(zip(rows.scale, rows.value)) == [("fatigue", 4.0), ("stress", 3.0)]


@pytest.mark.parametrize("bad", [dict(scale="happiness"), dict(value=6), dict(value=0), dict(source="phone")])
def test_a_report_off_its_scale_is_refused(bad):
    fields = dict(person_id="p01", report_date=date(2020, 1, 1), scale="fatigue", value=3, source="pmsys",
                  recorded_at=AT) | bad
    with pytest.raises(ValueError):
        CheckIn(**fields)


def test_check_ins_are_exported_forgotten_and_aged_out_like_the_rest(store, tmp_path):
    store.add_person("p01", "p01@example.org", "Europe/Oslo", "fitbit-export")
    store.add_person("p02", "p02@example.org", "Europe/Oslo", "fitbit-export")
    upsert_check_ins(store, [CheckIn("p01", date(2026, 12, 1), "mood", 4, "csv", AT),
                             CheckIn("p01", date(2020, 1, 1), "mood", 2, "csv", AT),
                             CheckIn("p02", date(2026, 12, 1), "mood", 3, "csv", AT)])
    files = export_person(store, "p01", tmp_path / "out")
    assert (tmp_path / "out" / "check_ins.csv") in files
    assert (tmp_path / "out" / "check_ins.csv").read_text().count("p01") == 2
    apply_retention(store, datetime(2026, 12, 7), raw_days=90, feature_days=730)
    assert sorted(load_check_ins(store).report_date.astype(str)) == ["2026-12-01", "2026-12-01"]
    forget(store, "p01", tmp_path / "outbox")
    assert list(load_check_ins(store).person_id) == ["p02"]
