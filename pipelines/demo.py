"""`emberwatch demo`: the real nightly and weekly flows, night by night, over a synthetic cohort.

Replaying history through the scheduled flows is what makes the demo honest: each night only that night's
data (plus the usual late-sync window) arrives, features update incrementally, and alerts and digests go
through the same ledger as in production. Re-running it changes nothing and sends nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.task_runners import ThreadPoolTaskRunner

from connectors.synthetic import SyntheticCohort
from storage.store import Store
from pipelines import flows, steps
from pipelines.settings import Settings


@dataclass(frozen=True)
class DemoCohort:
    n_people: int = 12
    n_nights: int = 120
    seed: int = 7
    device_wearers: bool = True  # three more people: an Apple Watch, an Oura ring, a Fitbit swapped for a ring


def enrol_cohort(store: Store, spec: DemoCohort) -> SyntheticCohort:
    cohort = SyntheticCohort(n_people=spec.n_people, n_nights=spec.n_nights, seed=spec.seed,
                             device_wearers=spec.device_wearers)
    config = {"n_people": spec.n_people, "n_nights": spec.n_nights, "seed": spec.seed,
              "device_wearers": spec.device_wearers}
    for p in cohort.people:
        store.add_person(p.person_id, p.email, p.tz_name, "synthetic", config)
        for _, device in p.devices:  # the demo feed serves them; these are the devices the records come from
            store.add_source(p.person_id, device)
    return cohort


def run_demo(settings: Settings, spec: DemoCohort = DemoCohort(), progress=None) -> SyntheticCohort:
    with Store(settings.db_path) as store:
        cohort = enrol_cohort(store, spec)
    nightly = flows.nightly.with_options(task_runner=ThreadPoolTaskRunner(max_workers=settings.max_workers))
    # Heartbeats let a Prefect server notice a crashed long run; each short replayed run would otherwise
    # wait ~1 s for the heartbeat thread to stop. Production runs keep them on.
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        for night in cohort.nights:
            nightly(flows.NightlyParams(night_date=night, now_utc=flows.morning_of(night, settings)))
            if night.isoweekday() == 7:  # Sunday night done: the week's digest goes out on Monday
                monday = night + timedelta(days=1)
                flows.weekly(flows.WeeklyParams(run_date=monday, now_utc=weekly_run_time(monday, settings)))
            deliver_until(settings, flows.morning_of(night + timedelta(days=1), settings))
            if progress:
                progress(night)
    return cohort


def weekly_run_time(monday: date, settings: Settings) -> datetime:
    """When `serve` runs the weekly flow that Monday (EMBERWATCH_WEEKLY_CRON's hour and minute, in the schedules'
    zone), so each person's check-in is queued for that day's window as in production; 07:30 for a cron without
    a plain hour and minute."""
    minute, hour = settings.weekly_cron.split()[:2]
    if not (minute.isdigit() and hour.isdigit()):
        return flows.morning_of(monday, settings)
    local = datetime.combine(monday, time(int(hour), int(minute)), ZoneInfo(settings.timezone))
    return local.astimezone(timezone.utc)


def deliver_until(settings: Settings, until_utc: datetime) -> int:
    """What the 15-minute `deliver` schedule would have sent before `until_utc` (steps.deliver_until), with the
    page choices recorded meanwhile applied first, as `emberwatch deliver` does. Returns how many were sent."""
    with Store(settings.db_path) as store:
        return steps.deliver_until(store, steps.transport_for(settings), until_utc,
                                   before_each=lambda at: steps.apply_recorded_choices(store, settings, at)).sent


def summary_rows(store: Store, cohort: SyntheticCohort) -> list[dict[str, object]]:
    rows = store.query_df(
        """
        SELECT p.person_id,
            (SELECT count(*) FROM nightly_features f WHERE f.person_id = p.person_id AND f.valid_night) AS valid_nights,
            (SELECT count(*) FROM night_signals s WHERE s.person_id = p.person_id AND s.sleep_flag) AS sleep_flag_nights,
            (SELECT count(*) FROM night_signals s WHERE s.person_id = p.person_id AND s.recovery_flag) AS recovery_flag_nights,
            (SELECT count(*) FROM alerts a WHERE a.person_id = p.person_id) AS alerts,
            (SELECT count(*) FROM email_ledger e WHERE e.person_id = p.person_id AND e.kind = 'digest') AS digests
        FROM persons p ORDER BY p.person_id
        """
    ).to_dict("records")
    people = {p.person_id: p for p in cohort.people}
    for r in rows:
        person = people.get(str(r["person_id"]))
        r["profile"] = person.profile if person else ""
        r["devices"] = " then ".join(device for _, device in person.devices) if person and person.devices else ""
    return rows
