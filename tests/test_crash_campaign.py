"""The crash campaign in small: the real nightly flow in a subprocess, SIGKILLed at two named points, rerun,
and compared with a clean run (benchmarks/crash_campaign.py runs the long version: 30 trials)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import crash_campaign  # noqa: E402


@pytest.mark.flow
def test_killed_mid_upsert_and_between_send_and_commit_the_rerun_equals_a_clean_run():
    lines: list[str] = []
    result = crash_campaign.campaign(
        trials=2, seed=1, people=6, nights=60, echo=lines.append,
        plans=[("upsert:1", None), ("send:1", None)],
    )
    report = "\n".join(lines)
    assert result.trials == 2 and result.passed == 2, report
    # Killed after the server's 250 and before the ledger's commit: exactly one duplicate, and it was visible.
    assert result.edge_duplicates == 1, report
    assert "trial  2: point send:1" in report and "1 duplicate at the send/commit edge (logged)" in report


def test_table_differences_name_the_table_and_what_is_missing():
    expected = {"alerts": [("c01", "2026-08-21")], "email_ledger": [("c01", "alert"), ("c02", "digest")]}
    got = {"alerts": [("c01", "2026-08-21")], "email_ledger": [("c01", "alert"), ("c01", "alert")]}
    assert crash_campaign.differences(expected, got) == ["email_ledger: 2 rows vs 2 (1 missing, 0 unexpected)"]
    assert crash_campaign.differences(expected, expected) == []


def test_trial_plans_cover_every_crash_point_and_aim_random_kills_inside_the_flow():
    from storage.crash_points import POINTS

    plans = crash_campaign.plan_trials(24, seed=1, flow_from_s=1.5, flow_to_s=6.0, sends=11)
    named = {p.split(":")[0] for p, _ in plans if p}
    assert named == set(POINTS)
    moments = [t for p, t in plans if p is None]
    assert len(moments) == 12 and all(1.5 <= t <= 6.0 for t in moments)
    assert plans == crash_campaign.plan_trials(24, seed=1, flow_from_s=1.5, flow_to_s=6.0, sends=11)  # seeded
