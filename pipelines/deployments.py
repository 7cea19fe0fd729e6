"""The scheduled deployments `emberwatch serve` registers: nightly and weekly, in the configured time zone.

Each person's night is their own local wake date, so one nightly schedule serves people in every zone; the
schedule's zone only decides when the run starts. Both deployments allow one run at a time (the database
has one writer; a manual run started meanwhile waits for the store, see features.store.Store).
"""

from __future__ import annotations

from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from pipelines import flows
from pipelines.settings import Settings


def build_deployments(settings: Settings) -> list[RunnerDeployment]:
    nightly = flows.nightly.to_deployment(
        name="nightly",
        schedules=[Cron(settings.nightly_cron, timezone=settings.timezone)],
        concurrency_limit=1,
        description="Sync everyone, update features, decide and deliver (per person: their own local night).",
        tags=["emberwatch"],
    )
    weekly = flows.weekly.to_deployment(
        name="weekly",
        schedules=[Cron(settings.weekly_cron, timezone=settings.timezone)],
        concurrency_limit=1,
        description="Queue and deliver each person's weekly check-in.",
        tags=["emberwatch"],
    )
    deliver = flows.deliver_due.to_deployment(
        name="deliver",
        schedules=[Cron(settings.deliver_cron, timezone=settings.timezone)],
        concurrency_limit=1,
        description="Send queued email that is due inside each person's own delivery window.",
        tags=["emberwatch"],
    )
    return [nightly, weekly, deliver]
