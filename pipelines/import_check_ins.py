"""Import one file of a person's own morning reports: archive it as received, read it, quarantine what cannot be
read (with a sentence), upsert the rest into `check_ins`. Importing the same file again changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from connectors.base import RawPayload, Rejected
from connectors.check_in_files import read_check_ins
from pipelines.calibrate import recalibrate_history
from storage.check_ins import CheckIn, upsert_check_ins
from storage.retention import record_arrival
from storage.store import NightRange, Person, Store


@dataclass
class CheckInImport:
    answers: int  # answers written (after a later report on the same date replaced an earlier one)
    new_file: bool
    rejected: list[Rejected] = field(default_factory=list)
    skipped_unanswered: int = 0
    dates: NightRange | None = None
    arrived_on: date | None = None
    recalibrated_from: date | None = None  # the first night whose signals changed with the sleep calibration


def import_check_ins(store: Store, person: Person, path: Path, fmt: str,
                     arrived_on: date | None = None) -> CheckInImport:
    body = path.read_bytes()
    now = datetime.now(timezone.utc)
    raw = RawPayload(person.person_id, fmt, f"check-ins/{path.name}", body, now)
    new = store.archive([raw]) > 0
    # A file without time stamps is dated by when it was first archived, so importing it again changes nothing.
    first_seen = store.query_rows(
        "SELECT fetched_at FROM raw_payloads WHERE person_id = ? AND source = ? AND resource = ? "
        "AND payload_sha256 = ?", [raw.person_id, raw.source, raw.resource, raw.sha256])[0][0]
    read = read_check_ins(body, fmt, person.tz_name)
    rejected = list(read.rejected)
    check_ins: list[CheckIn] = []
    for answer in read.answers:
        try:
            check_ins.append(CheckIn(person.person_id, answer.report_date, answer.scale, answer.value, fmt,
                                     answer.recorded_at or first_seen))
        except ValueError as exc:
            where = f"row {answer.row}" if fmt == "csv" else f"row {answer.row}, {answer.scale}"
            rejected.append(Rejected(where, f"{exc} That answer was left out."))
    store.quarantine(raw, rejected)
    written = upsert_check_ins(store, check_ins)
    result = CheckInImport(written, new, rejected, read.skipped_unanswered)
    if check_ins:
        days = [c.report_date for c in check_ins]
        result.dates = NightRange(min(days), max(days))
        result.arrived_on = arrived_on or now.date()
        # Reports brought in to be used: retention counts from today, as for an imported export.
        record_arrival(store, person.person_id, result.dates, result.arrived_on)
        # reports about past mornings: the sleep calibration is decided again as the nightly run would have
        result.recalibrated_from = recalibrate_history(store, person.person_id)
    return result
