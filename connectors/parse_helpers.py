"""Small coercions every parser shares: a value shown in a reason, a record added or rejected, one field checked
on its own, and the wire's numbers, instants, offsets and dates read with a reason naming source and field.

Each takes the source's name, so a quarantine reason says which source wrote the bad item.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, timedelta, timezone
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from connectors.base import ParseResult, PersonContext, Rejected
from connectors.records import (EARLIEST_PLAUSIBLE_DATE, LATEST_PLAUSIBLE_DATE, Record, RecordError, build_record,
                                is_iana_zone)

MINUTES_PER_DAY = 1440
T = TypeVar("T")


def kind(value: Any) -> str:
    """What a JSON value is, in words, for a reason a person reads ("holds a string")."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number")


def shown(value: Any) -> str:
    """A value for a reason sentence: its repr, cut short so a huge corrupt field cannot flood quarantine."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def bad(source: str, locator: str, problem: str) -> RecordError:
    return RecordError(f"{source} at {locator}: {problem}")


def add(source: str, result: ParseResult, model: type[Record], data: dict[str, Any], locator: str) -> None:
    """A record into `result`, or its reason into `result.rejected`."""
    try:
        result.records.append(build_record(model, {"source": source, **data}, source=source, locator=locator))
    except RecordError as exc:
        result.rejected.append(Rejected(locator, str(exc)))


def zone_unknown(source: str, person: PersonContext, result: ParseResult, consequence: str,
                 locator: str = "sleep", again: str = "re-parse") -> bool:
    """True, with the whole payload at `locator` rejected, when the person's zone is no IANA name (local times
    cannot be placed in time without it)."""
    if is_iana_zone(person.tz_name):
        return False
    result.rejected.append(Rejected(locator, (
        f"{source}: the person's time zone {shown(person.tz_name)} is not an IANA zone name, so {consequence}; "
        f"nothing was imported. Correct the person's zone and {again}.")))
    return True


def one_field(source: str, model: type[Record], field: str, value: Any, base: dict[str, Any], locator: str) -> Any:
    """`value` validated as `field` of `model` on its own, so that a bad value costs only its own field (as in
    the export's activity files) and never the other measures of the same day."""
    return getattr(build_record(model, {"source": source, **base, field: value}, source=source,
                                locator=locator), field)


class FieldsByDay:
    """Measures of one record per day gathered from several data types, each checked on its own at its own
    locator (a bad SpO2 costs only that night's SpO2), then added as one record per day."""

    def __init__(self, source: str, model: type[Record], person_id: str, day_field: str) -> None:
        self.source, self.model, self.person_id, self.day_field = source, model, person_id, day_field
        self.by_day: dict[date, dict[str, Any]] = {}

    def keep(self, result: ParseResult, day: date, field: str, value: Any, locator: str) -> None:
        try:
            checked = one_field(self.source, self.model, field, value,
                                {"person_id": self.person_id, self.day_field: day}, locator)
        except RecordError as exc:
            result.rejected.append(Rejected(locator, str(exc)))
            return
        self.by_day.setdefault(day, {})[field] = checked

    def add_all(self, result: ParseResult, what: str, skip: Any = None) -> None:
        for day in sorted(self.by_day):
            fields = self.by_day[day]
            if fields and not (skip and skip(fields)):
                add(self.source, result, self.model, {"person_id": self.person_id, self.day_field: day, **fields},
                    f"{what} ({day})")


def not_worn(fields: dict[str, Any]) -> bool:
    # A Fitbit day the watch was not worn reads as 1,440 sedentary minutes and no activity (223 of 2,396
    # person-days in PMData; 127 of the 128 such days of people with a resting-HR file have no resting HR either).
    # That is a gap, not a sedentary day: recording it would tell the features the person sat still for 24 hours.
    return fields.get("sedentary_min") == MINUTES_PER_DAY and not any(
        minutes for field, minutes in fields.items() if field != "sedentary_min"
    )


def json_object_field(source: str, value: Any, locator: str, field: str) -> dict[str, Any]:
    """A nested object ({} when absent, as proto3 omits empty ones), or a RecordError naming the field."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad(source, locator, f"field '{field}' should be an object, found {shown(value)}")
    return value


# RFC 3339 fraction: only the digits right after the dot (the offset's digits are not part of it).
_FRACTION = re.compile(r"\.(\d+)")
# The widest UTC offsets in use are -12:00 and +14:00; protobuf and RFC 3339 allow up to 18 hours.
MAX_UTC_OFFSET = timedelta(hours=18)


def rfc3339_instant(source: str, value: Any, locator: str, field: str) -> datetime:
    if not isinstance(value, str):
        raise bad(source, locator, f"field '{field}' is missing")
    # RFC 3339 allows nanoseconds; Python reads at most microseconds. Cutting the digits of the fraction only
    # keeps the offset: "00.5+01:00" once lost its "+01:00" to the cut and was read an hour off.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value.replace("Z", "+00:00"), count=1)
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise bad(source, locator, f"field '{field}' is not an RFC 3339 instant: {shown(value)}") from None
    if instant.tzinfo is None:
        # Without an offset astimezone() would read it in this machine's zone: RFC 3339 requires one.
        raise bad(source, locator, f"field '{field}' has no UTC offset: {shown(value)}")
    # Checked before conversion: year 1 at +01:00 overflows when moved to UTC.
    if not EARLIEST_PLAUSIBLE_DATE <= instant.date() <= LATEST_PLAUSIBLE_DATE:
        raise bad(source, locator, f"field '{field}' is outside the plausible dates {EARLIEST_PLAUSIBLE_DATE} to "
                                   f"{LATEST_PLAUSIBLE_DATE}: {shown(value)}")
    return instant.astimezone(timezone.utc)


def duration_offset(source: str, value: Any, locator: str, field: str) -> timedelta | None:
    """A google.protobuf.Duration string like "-14400s"; None when absent. A malformed or impossible offset is
    refused rather than ignored: it is the one clue to the wake date when the watch was in another zone."""
    if value is None:
        return None
    try:
        if not isinstance(value, str) or not value.endswith("s"):
            raise ValueError
        seconds = float(value[:-1])
        if not math.isfinite(seconds) or abs(seconds) > MAX_UTC_OFFSET.total_seconds():
            raise ValueError
        return timedelta(seconds=seconds)
    except ValueError:
        raise bad(source, locator, f"field '{field}' is not a UTC offset like '-14400s' within 18 hours: "
                                   f"{shown(value)}") from None


def int64(source: str, value: Any, locator: str, field: str, default: int | None = 0) -> int | None:
    """int64 arrives as a JSON string; proto3 omits zero, so absent means 0 where the parent is present."""
    if value is None:
        return default
    # bool is an int in Python, and int(float("inf")) raises OverflowError: both are refused with a reason.
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise bad(source, locator, f"field '{field}' is not a whole number: {shown(value)}")
    try:
        return int(value)
    except ValueError:
        raise bad(source, locator, f"field '{field}' is not a whole number: {shown(value)}") from None


def finite_number(source: str, value: Any, locator: str, field: str) -> float:
    """A JSON number (a double on the wire), or a RecordError naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad(source, locator, f"field '{field}' is not a finite number: {shown(value)}")
    return float(value)


def whole_number_text(source: str, value: Any, locator: str) -> Any:
    """A daily value ("1234" on the wire) as a number for the record to range-check. Fitbit writes whole
    numbers; a fraction is truncated as before. Text that is no finite number is refused naming the field
    (int(float("inf")) would raise OverflowError, not a reason)."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise bad(source, locator, f"field 'value' is not a number: {shown(value)}") from None
        if not math.isfinite(number):
            raise bad(source, locator, f"field 'value' is not a finite number: {shown(value)}")
        return int(number)
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if value is None:
        raise bad(source, locator, "field 'value' is missing")
    return value  # ints pass; any other type is refused by the record with the field's name


def ymd_date(source: str, value: Any, locator: str, field: str = "date") -> date:
    """A google.type.Date {year, month, day}."""
    if not isinstance(value, dict):
        raise bad(source, locator, f"field '{field}' is missing")
    try:
        parts = [value[part] for part in ("year", "month", "day")]
        # google.type.Date parts are JSON integers; int(True) or int(float("inf")) must not slip through.
        if any(isinstance(part, bool) or not isinstance(part, int) for part in parts):
            raise TypeError
        return date(*parts)
    except (KeyError, ValueError, TypeError, OverflowError):  # OverflowError: a year beyond a C long
        raise bad(source, locator, f"field '{field}' is not a valid {{year, month, day}}: {shown(value)}") from None


def iso_day(source: str, item: Any, locator: str) -> date:
    """An item's `dateTime` ("yyyy-MM-dd", maybe with a time after it) as a civil date."""
    try:
        return date.fromisoformat(str(item["dateTime"])[:10])
    except (KeyError, TypeError, ValueError):
        raise bad(source, locator, "field 'dateTime' is missing or not yyyy-MM-dd") from None


def valid(result: ParseResult, items: Iterable[tuple[str, Any]],
          check: Callable[[str, Any], T]) -> Iterator[tuple[str, T]]:
    """(locator, check(locator, item)) for each (locator, item) that passes; each one that does not is rejected
    with its reason, and the rest go on."""
    for locator, item in items:
        try:
            checked = check(locator, item)
        except RecordError as exc:
            result.rejected.append(Rejected(locator, str(exc)))
            continue
        yield locator, checked


def load_json_list(body: bytes | str, file_name: str, what: str, result: ParseResult) -> list[Any] | None:
    """The file's top-level list, or None after rejecting the whole file with a reason a person can act on."""
    try:
        data = json.loads(body)
    except RecursionError:
        # Nesting deeper than Python's recursion limit: no export file is shaped like that.
        result.rejected.append(Rejected(file_name, (
            f"{file_name} is nested too deeply to be a Fitbit export file; nothing from it was imported."
        )))
        return None
    except json.JSONDecodeError as exc:
        # A file that opens a list or object but does not close it was cut off mid-copy.
        text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
        text = text.strip()
        cut_off = text[:1] in ("[", "{") and text[-1:] not in ("]", "}") and not exc.msg.startswith("Extra data")
        hint = "the file is empty" if not text else (
            "the file looks cut off (truncated)" if cut_off else "the file looks damaged"
        )
        result.rejected.append(Rejected(file_name, (
            f"{file_name} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} — {hint}; "
            "nothing from it was imported. Download the export again and re-import it."
        )))
        return None
    except UnicodeDecodeError:  # bytes that are not UTF-8 text at all
        result.rejected.append(Rejected(file_name, (
            f"{file_name} is not UTF-8 text, so it cannot be a Fitbit export file; "
            "nothing from it was imported."
        )))
        return None
    except ValueError as exc:  # valid JSON syntax Python still refuses, e.g. an integer of over 4,300 digits
        result.rejected.append(Rejected(file_name, (
            f"{file_name} could not be read ({exc}); nothing from it was imported."
        )))
        return None
    if not isinstance(data, list):
        result.rejected.append(Rejected(file_name, (
            f"{file_name} should hold a list of {what} but holds {kind(data)}; nothing from it was imported."
        )))
        return None
    return data


# --- sleep ------------------------------------------------------------------------------------------------
