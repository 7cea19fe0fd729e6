"""Read files of a person's own reports of how they felt (PMsys `wellness.csv`, or a plain `date,scale,value` CSV)
into dated answers; never raises for bad content: a row or cell that cannot be read becomes a `Rejected` with a
sentence, and everything else is kept.

Whether a value lies on its scale is checked where the scales live (`storage.check_ins.CheckIn`); this module only
reads the file.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from connectors.base import Rejected

FORMATS = ("pmsys", "csv")

# PMsys morning report (Thambawita et al. 2020, PMData). `sleep_duration_h` and `soreness_area` are left out on
# purpose: the first is a clock quantity the watch measures better, not a feeling; the second is a body map.
PMSYS_SCALES = ("fatigue", "mood", "readiness", "sleep_quality", "soreness", "stress")
PMSYS_TIME_COLUMN = "effective_time_frame"
CSV_COLUMNS = ("date", "scale", "value")


@dataclass(frozen=True)
class Answer:
    """One answered scale on one local date. `row` is the 1-based data row (header not counted) it came from."""

    report_date: date
    scale: str
    value: float
    recorded_at: datetime | None  # naive UTC; None when the file does not say when the report was made
    row: int


@dataclass
class ReadResult:
    answers: list[Answer] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    skipped_unanswered: int = 0  # PMsys cells left at 0 or empty: not answered, never stored as 0


def _rows(body: bytes) -> tuple[list[str], list[dict[str, str]]] | Rejected:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return Rejected("", "The file is not UTF-8 text; save it as CSV (UTF-8) and import it again.")
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    return header, list(reader)


def _records(body: bytes, fmt: str, expected: str, result: ReadResult) -> list[dict[str, str]] | None:
    """The file's rows, or None with the reason added to `result` (not UTF-8, or a column missing)."""
    rows = _rows(body)
    if isinstance(rows, Rejected):
        result.rejected.append(rows)
        return None
    header, records = rows
    if missing := missing_columns(header, fmt):
        result.rejected.append(Rejected("", f"The file has no column {', '.join(missing)}; {expected}."))
        return None
    return records


def missing_columns(header: list[str], fmt: str) -> list[str]:
    needed = (PMSYS_TIME_COLUMN, *PMSYS_SCALES) if fmt == "pmsys" else CSV_COLUMNS
    return [c for c in needed if c not in header]


def _utc_stamp(text: str) -> datetime | None:
    try:
        stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:  # PMsys stamps are UTC ("...Z"); one without a zone is ambiguous
        return None
    return stamp.astimezone(timezone.utc)


def read_pmsys(body: bytes, tz_name: str) -> ReadResult:
    """PMsys `wellness.csv`: `effective_time_frame` is the UTC moment of the morning report. Its local date in the
    person's zone is the morning after the night it describes, which is that night's `night_date` (wake date)."""
    result = ReadResult()
    records = _records(body, "pmsys", f"a PMsys wellness.csv starts with {PMSYS_TIME_COLUMN},"
                                      f"{','.join(PMSYS_SCALES)}", result)
    if records is None:
        return result
    zone = ZoneInfo(tz_name)
    for n, record in enumerate(records, start=1):
        raw_stamp = (record.get(PMSYS_TIME_COLUMN) or "").strip()
        stamp = _utc_stamp(raw_stamp)
        if stamp is None:
            result.rejected.append(Rejected(f"row {n}", f"'{raw_stamp}' is not a UTC time stamp such as "
                                                        "2019-11-01T08:31:40Z; the row was left out."))
            continue
        local_date = stamp.astimezone(zone).date()
        for scale in PMSYS_SCALES:
            cell = (record.get(scale) or "").strip()
            try:
                value = float(cell) if cell else 0.0
            except ValueError:
                result.rejected.append(Rejected(f"row {n}, {scale}", f"{scale} '{cell}' is not a number; that "
                                                                     "answer was left out."))
                continue
            if value == 0:  # PMsys stores an unanswered question as 0 or empty (PMData README)
                result.skipped_unanswered += 1
                continue
            result.answers.append(Answer(local_date, scale, value, stamp.replace(tzinfo=None), n))
    # Two reports on one local date: the later one wins, scale by scale (what someone answered last that morning
    # is what they meant). Sorting by the moment of the report lets "last one kept" downstream do exactly that.
    result.answers.sort(key=lambda a: (a.recorded_at or datetime.min, a.row))
    return result


def read_plain_csv(body: bytes) -> ReadResult:
    """A plain CSV with a header `date,scale,value`: an ISO date (the morning of the report, in the person's own
    day), a scale name and its value. A repeated date and scale: the later row wins."""
    result = ReadResult()
    records = _records(body, "csv", "the header should be date,scale,value", result)
    if records is None:
        return result
    for n, record in enumerate(records, start=1):
        day_text, scale, cell = ((record.get(c) or "").strip() for c in CSV_COLUMNS)
        try:
            day = date.fromisoformat(day_text)
            if len(day_text) != 10:
                raise ValueError
        except ValueError:
            result.rejected.append(Rejected(f"row {n}", f"'{day_text}' is not a date written YYYY-MM-DD; the row "
                                                        "was left out."))
            continue
        try:
            value = float(cell)
        except ValueError:
            result.rejected.append(Rejected(f"row {n}", f"value '{cell}' is not a number; the row was left out."))
            continue
        result.answers.append(Answer(day, scale, value, None, n))
    return result


def read_check_ins(body: bytes, fmt: str, tz_name: str) -> ReadResult:
    return read_pmsys(body, tz_name) if fmt == "pmsys" else read_plain_csv(body)


def header_of(body: bytes) -> list[str] | None:
    """The header of a CSV file, or None when it is not UTF-8 text."""
    rows = _rows(body)
    return None if isinstance(rows, Rejected) else rows[0]
