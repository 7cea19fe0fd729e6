"""The run report each flow publishes as a Prefect artifact: counts and timings, person ids only.

No names, addresses or health values: an operator sees that a run worked, not what anyone's night was like.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Iterator


@dataclass
class PersonLine:
    person_id: str
    records: int = 0
    quarantined: int = 0
    outcome: str = ""  # the alert rule's outcome, e.g. "warming up", "alert"
    failed_stage: str = ""
    reason: str = ""  # the failure as a sentence (no tokens, addresses or health values: errors never carry them)


@dataclass
class RunReport:
    flow: str
    period: str  # the night, or the week
    people: dict[str, PersonLine] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    nights_updated: int = 0
    alerts_queued: int = 0
    digests_queued: int = 0
    sent: int = 0
    deferred: int = 0
    failed_sends: int = 0

    def line(self, person_id: str) -> PersonLine:
        return self.people.setdefault(person_id, PersonLine(person_id))

    @property
    def failures(self) -> list[str]:
        return sorted(p.person_id for p in self.people.values() if p.failed_stage)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + time.perf_counter() - started

    def markdown(self) -> str:
        out = [
            f"## emberwatch {self.flow} run for {self.period}",
            "",
            f"People: {len(self.people)} · failures: {len(self.failures)} · nights updated: {self.nights_updated} · "
            f"alerts queued: {self.alerts_queued} · check-ins queued: {self.digests_queued} · sent: {self.sent} · "
            f"deferred: {self.deferred} · failed sends: {self.failed_sends}",
            "",
        ]
        if self.people:
            out += ["| person | records | quarantined | outcome | failed at |", "|---|---:|---:|---|---|"]
            out += [f"| {p.person_id} | {p.records} | {p.quarantined} | {p.outcome or '-'} | {p.failed_stage or '-'} |"
                    for p in sorted(self.people.values(), key=lambda p: p.person_id)]
            out.append("")
        out += ["| stage | seconds |", "|---|---:|"]
        out += [f"| {name} | {seconds:.2f} |" for name, seconds in self.stage_seconds.items()]
        return "\n".join(out) + "\n"


def artifact_key(flow: str, period: date | str) -> str:
    # Prefect artifact keys: lowercase letters, digits and dashes only.
    return f"emberwatch-{flow}-{str(period).lower()}".replace("_", "-")
