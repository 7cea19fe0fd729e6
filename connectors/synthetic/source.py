"""The SyntheticCohort (people, their nights, the ground truth) and the Source that serves it to the pipeline."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

from connectors.base import ParseResult, PersonContext, RawPayload, Rejected
from connectors.records import AnyRecord, NightlyHrv, NightlyVitals, RecordError, SleepSession, build_record
from connectors.synthetic.devices import DEVICE_WEARERS, as_worn, device_dates
from connectors.synthetic.nights import generate
from connectors.synthetic.payloads import MODELS, RESOURCE, SOURCE_NAME, window_body
from connectors.synthetic.profiles import (
    SHIFT_BLOCK,
    SHIFT_CYCLE_DAYS,
    Patch,
    Plan,
    SyntheticPerson,
    Trip,
    plan_person,
)
from connectors.synthetic.shapes import APPLE, OURA, SHAPED, apple_payloads, oura_payloads, parse_shaped


def record_civil_date(record: AnyRecord) -> date:
    """The civil date a record belongs to: the night (wake date) for sleep, HRV and vitals, else the day."""
    if isinstance(record, (SleepSession, NightlyHrv, NightlyVitals)):
        return record.night_date
    return record.day


class SyntheticCohort:
    """N clinicians x D nights of wearable records, reproducible from `seed`. With `device_wearers`, three more
    people after them wear other devices (devices.py: an Apple Watch, an Oura ring, a Fitbit then a ring); the
    first N are the same either way."""

    def __init__(
        self,
        n_people: int = 12,
        n_nights: int = 120,
        seed: int = 7,
        first_night: date = date(2026, 7, 1),
        device_wearers: bool = False,
    ) -> None:
        if n_people < 1:
            raise ValueError(f"A synthetic cohort needs at least one person; got n_people={n_people}.")
        if n_nights < 1:
            raise ValueError(f"A synthetic cohort needs at least one night; got n_nights={n_nights}.")
        self.n_people = n_people
        self.n_nights = n_nights
        self.seed = seed
        self.first_night = first_night
        self.nights: list[date] = [first_night + timedelta(days=i) for i in range(n_nights)]
        plans = [plan_person(seed, k, first_night, n_nights) for k in range(1, n_people + 1)]
        if device_wearers:
            for k, wearer in enumerate(DEVICE_WEARERS, start=n_people + 1):
                plan = plan_person(seed, k, first_night, n_nights)
                devices = device_dates(wearer, first_night, n_nights)
                plans.append(replace(plan, person=replace(plan.person, devices=devices)))
        self._plans = {plan.person.person_id: plan for plan in plans}
        self.people: list[SyntheticPerson] = [plan.person for plan in self._plans.values()]
        self.ground_truth: list[Patch] = [p.patch for p in self._plans.values() if p.patch is not None]
        self.trips: list[Trip] = [p.trip for p in self._plans.values() if p.trip is not None]
        self._records: dict[str, list[AnyRecord]] = {}

    def person(self, person_id: str) -> SyntheticPerson:
        return self._plan(person_id).person

    def shift_sleep_nights(self, person_id: str) -> list[date]:
        """Nights (wake dates) whose main sleep follows a night shift, in the day: the person's roster."""
        plan = self._plan(person_id)
        if not plan.person.night_shift:
            return []
        return [
            night
            for i, night in enumerate(self.nights)
            if 1 <= (i + plan.shift_phase) % SHIFT_CYCLE_DAYS <= SHIFT_BLOCK
        ]

    def records(self, person_id: str) -> list[AnyRecord]:
        """Every record of this person over the cohort's nights, in night order (generated once, cached)."""
        plan = self._plan(person_id)
        if person_id not in self._records:
            records = generate(plan, self.seed, self.nights)
            if plan.person.devices:
                records = as_worn(records, plan.person.devices, record_civil_date)
            self._records[person_id] = records
        return list(self._records[person_id])

    def _plan(self, person_id: str) -> Plan:
        try:
            return self._plans[person_id]
        except KeyError:
            raise KeyError(
                f"{person_id!r} is not in this synthetic cohort (people c01..c{self.n_people:02d})."
            ) from None


class SyntheticSource:
    """Serves a SyntheticCohort through the Source protocol: one JSON payload per fetch, like a sync would; the
    demo's Oura and Apple wearers' nights as that device's own payloads (shapes.py), parsed by its connector."""

    name = SOURCE_NAME

    def __init__(self, cohort: SyntheticCohort) -> None:
        self.cohort = cohort

    def fetch(self, person: PersonContext, start: date, end: date) -> Iterator[RawPayload]:
        if end < start:
            raise ValueError(f"The window ends ({end}) before it starts ({start}); pass start <= end.")
        in_window = [r for r in self.cohort.records(person.person_id) if start <= record_civil_date(r) <= end]
        fetched_at = datetime.now(timezone.utc)
        # The demo's Oura and Apple nights travel in their device's own shapes (shapes.py); the rest as JSON.
        oura = [r for r in in_window if r.source == OURA]
        apple = [r for r in in_window if r.source == APPLE]
        plain = [r for r in in_window if r.source not in SHAPED]
        if plain or not (oura or apple):
            body = window_body(person.person_id, start, end, plain)
            yield RawPayload(
                person_id=person.person_id,
                source=self.name,
                resource=RESOURCE,
                body=body,
                fetched_at=fetched_at,
                window_start=start,
                window_end=end,
            )
        if oura:
            yield from oura_payloads(person.person_id, oura, start, end, fetched_at)
        if apple:
            yield from apple_payloads(person, apple)

    def parse(self, raw: RawPayload, person: PersonContext) -> ParseResult:
        if raw.source in SHAPED:
            return parse_shaped(raw, person)
        result = ParseResult()
        where = f"The synthetic '{raw.resource}' payload for {person.person_id}"
        try:
            document = json.loads(raw.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            result.rejected.append(
                Rejected(
                    "payload",
                    f"{where} is not valid JSON ({exc}); it stays archived and can be parsed again.",
                )
            )
            return result
        if not isinstance(document, dict) or not isinstance(document.get(RESOURCE), list):
            result.rejected.append(
                Rejected(
                    "payload", f"{where} has no '{RESOURCE}' list; it stays archived and can be parsed again."
                )
            )
            return result
        if document.get("person_id") != person.person_id:
            result.rejected.append(
                Rejected(
                    "payload",
                    f"{where} belongs to {document.get('person_id')!r}; nothing was taken from it.",
                )
            )
            return result
        for i, item in enumerate(document[RESOURCE]):
            kind = item.get("kind") if isinstance(item, dict) else None
            locator = f"{RESOURCE}[{i}] (kind {kind})"
            model = MODELS.get(kind) if isinstance(kind, str) else None
            if model is None:
                result.rejected.append(
                    Rejected(locator, f"{self.name}: item {i} has an unknown kind {kind!r}; it was skipped.")
                )
                continue
            if item.get("person_id") != person.person_id:
                result.rejected.append(
                    Rejected(
                        locator,
                        f"{self.name}: item {i} belongs to {item.get('person_id')!r}; it was skipped.",
                    )
                )
                continue
            try:
                result.records.append(build_record(model, item, source=self.name, locator=locator))  # type: ignore[arg-type]
            except RecordError as exc:
                result.rejected.append(Rejected(locator, str(exc)))
        return result
