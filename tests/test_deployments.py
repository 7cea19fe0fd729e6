"""`emberwatch serve` builds the right deployments, schedules and time zones (no clock is waited for)."""

from __future__ import annotations

from datetime import datetime, timezone

from pipelines.deployments import build_deployments
from pipelines.settings import Settings


def test_nightly_and_weekly_deployments_with_cron_in_the_configured_zone():
    deployments = {d.name: d for d in build_deployments(Settings(timezone="Europe/Oslo"))}
    assert set(deployments) == {"nightly", "weekly", "deliver"}
    assert deployments["deliver"].schedules[0].schedule.cron == "*/15 * * * *"
    nightly = deployments["nightly"].schedules[0].schedule
    weekly = deployments["weekly"].schedules[0].schedule
    assert (nightly.cron, nightly.timezone) == ("0 3 * * *", "Europe/Oslo")
    assert (weekly.cron, weekly.timezone) == ("0 6 * * 1", "Europe/Oslo")
    assert deployments["nightly"].concurrency_limit == 1
    # parameters are pydantic models, exposed in the deployment's schema
    assert "params" in deployments["nightly"]._parameter_openapi_schema.properties


def test_nightly_schedule_fires_at_three_local_across_the_dst_change():
    import asyncio

    from prefect.server.schemas.schedules import CronSchedule

    client_schedule = build_deployments(Settings(timezone="Europe/London"))[0].schedules[0].schedule
    # The server computes run times from the same cron and zone the deployment registers.
    server_schedule = CronSchedule(cron=client_schedule.cron, timezone=client_schedule.timezone)
    runs = asyncio.run(server_schedule.get_dates(n=4, start=datetime(2026, 10, 23, 12, tzinfo=timezone.utc)))
    # clocks go back at 02:00 BST on 25 October: from that morning 03:00 local is 03:00 UTC
    assert [r.astimezone(timezone.utc).hour for r in runs] == [2, 3, 3, 3]
    assert [r.astimezone(timezone.utc).day for r in runs] == [24, 25, 26, 27]
