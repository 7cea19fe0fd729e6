"""The scheduled deployments `emberwatch serve` registers: nightly and weekly, in the configured time zone.

Each person's night is their own local wake date, so one nightly schedule serves people in every zone; the
schedule's zone only decides when the run starts. Both deployments allow one run at a time (the database
has one writer; a manual run started meanwhile waits for the store, see storage.store.Store).
"""

from __future__ import annotations

from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from pipelines import flows
from pipelines.settings import Settings


def build_deployments(settings: Settings) -> list[RunnerDeployment]:
    declared = (
        (flows.nightly, "nightly", settings.nightly_cron,
         "Sync everyone, update features, decide and deliver (per person: their own local night)."),
        (flows.weekly, "weekly", settings.weekly_cron, "Queue and deliver each person's weekly check-in."),
        (flows.deliver_due, "deliver", settings.deliver_cron,
         "Send queued email that is due inside each person's own delivery window."),
    )
    return [
        flow.to_deployment(name=name, schedules=[Cron(cron, timezone=settings.timezone)], concurrency_limit=1,
                           description=description, tags=["emberwatch"])
        for flow, name, cron, description in declared
    ]
