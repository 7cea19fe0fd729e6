"""Small builders for hand-made records, so feature tests can state their inputs in a few lines."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from connectors.records import (DailyRestingHeartRate, NightlyHrv, SleepSession, StageSegment,
                                night_date_of_wake)


def local(tz: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz)).astimezone(timezone.utc)


def session(person: str, start_utc: datetime, stages: list[tuple[str, int]], tz: str = "Europe/London",
            sid: str | None = None, main: bool = True) -> SleepSession:
    """A stage-log session from (stage, minutes) pairs laid end to end from `start_utc`."""
    segs, t = [], start_utc
    for stage, minutes in stages:
        segs.append(StageSegment(start_utc=t, duration_s=minutes * 60, stage=stage))
        t += timedelta(minutes=minutes)
    asleep = sum(m for s, m in stages if s not in ("wake", "awake", "restless"))
    in_bed = sum(m for _, m in stages)
    return SleepSession(
        person_id=person, source="test", source_session_id=sid or start_utc.isoformat(),
        night_date=night_date_of_wake(t, tz), start_utc=start_utc, end_utc=t, tz_name=tz, is_main_sleep=main,
        log_type="stages", minutes_asleep=asleep, minutes_awake=in_bed - asleep, time_in_bed_min=in_bed,
        segments=tuple(segs),
    )


def calm_history(person: str, first: date, nights: int, *, tst_min: int = 420, rhr: float = 60.0,
                 rmssd: float = 45.0, tz: str = "Europe/London", jitter=None) -> list:
    """`nights` ordinary nights: 23:00 local bedtime, 10 min to fall asleep, one 6-min wake, rhr and HRV."""
    out: list = []
    for i in range(nights):
        d = first + timedelta(days=i)
        j = jitter(i) if jitter else (0, 0.0, 0.0)
        start = local(tz, (d - timedelta(days=1)).year, (d - timedelta(days=1)).month, (d - timedelta(days=1)).day,
                      23, 0)
        half = (tst_min + j[0]) // 2
        out.append(session(person, start, [("wake", 10), ("light", half), ("wake", 6),
                                           ("deep", tst_min + j[0] - half)], tz=tz, sid=f"{person}-{d}"))
        out.append(DailyRestingHeartRate(person_id=person, source="test", day=d, resting_hr_bpm=rhr + j[1]))
        out.append(NightlyHrv(person_id=person, source="test", night_date=d, rmssd_ms=rmssd * (1 + j[2])))
    return out
