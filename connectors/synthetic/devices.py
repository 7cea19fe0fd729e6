"""The demo's wearers of other devices: an Apple Watch, an Oura ring, and a Fitbit swapped for a ring half-way.

Their nights are drawn like everyone's (nights.py), then labelled with the device worn that night and changed to
what that device measures and can say: the records carry the device's source name (the one its importer or
connector gives), so features choose among them and baselines restart at a switch exactly as for real data. The
Apple and Oura nights then travel in each device's own documented shapes (shapes.py: Oura API v2 documents, an
Apple Health export.xml) and are read back by that device's own parser; the Fitbit half travels in the synthetic
JSON payload like everyone else's nights.
"""
from __future__ import annotations

from datetime import date, timedelta

from connectors.records import (AnyRecord, DailyActivity, DailyRestingHeartRate, NightlyHrv, NightlyVitals,
                                SleepSession)

# Each wearer: (share of the history after which a device is worn, its source). One wearer each, in this order.
DEVICE_WEARERS: tuple[tuple[tuple[float, str], ...], ...] = (
    ((0.0, "apple-health"),),
    ((0.0, "oura"),),
    ((0.0, "fitbit-web"), (0.5, "oura")),
)
WORN_DEVICES = frozenset(source for wearer in DEVICE_WEARERS for _, source in wearer)

# A ring reads the whole night's RMSSD, higher than a wrist's, and the night's lowest heart rate (ours, to make a
# switch visible: a baseline that mixed devices would see recovery change on the night of the switch).
OURA_RMSSD_FACTOR = 1.3
# An Apple Watch gives SDNN from ~1-minute readings, which also holds slower swings than beat-to-beat RMSSD, so it
# reads higher (ours: a plain factor, enough for the demo to carry the other metric; never compared with RMSSD).
APPLE_SDNN_FACTOR = 1.2
OURA_RESTING_HR_OFFSET_BPM = -3.0


def device_dates(wearer: tuple[tuple[float, str], ...], first_night: date,
                 n_nights: int) -> tuple[tuple[date, str], ...]:
    """(first night, source) of each device a wearer wears over a history of `n_nights`."""
    return tuple((first_night + timedelta(days=int(share * n_nights)), source) for share, source in wearer)


def device_on(devices: tuple[tuple[date, str], ...], day: date) -> str:
    return [source for since, source in devices if since <= day][-1]


def as_worn(records: list[AnyRecord], devices: tuple[tuple[date, str], ...], civil_date) -> list[AnyRecord]:
    """The records as the device worn on their date delivers them (dropped where it measures nothing usable)."""
    main_nights = {r.night_date for r in records if isinstance(r, SleepSession) and r.is_main_sleep}
    # Apple's importer calls a night's longest sleep its main one, a lone nap included.
    longest: dict[date, SleepSession] = {}
    for r in records:
        if isinstance(r, SleepSession):
            kept = longest.get(r.night_date)
            if kept is None or (r.time_in_bed_min, r.start_utc) > (kept.time_in_bed_min, kept.start_utc):
                longest[r.night_date] = r
    worn = []
    for record in records:
        source = device_on(devices, civil_date(record))
        update: dict[str, object] = {"source": source}
        if source == "apple-health":
            if isinstance(record, NightlyHrv):
                # Apple's HRV is SDNN, never stored as RMSSD
                update.update(sdnn_ms=round(record.rmssd_ms * APPLE_SDNN_FACTOR, 2), rmssd_ms=None,
                              deep_rmssd_ms=None)
            elif isinstance(record, SleepSession):
                update["is_main_sleep"] = record is longest[record.night_date]
            elif isinstance(record, NightlyVitals):
                # Apple's wrist temperature is absolute, made a deviation on import against the 30 days before;
                # the demo replays a few nights at a time, too few for that baseline, so its watch has none
                update["skin_temp_deviation_c"] = None
            elif isinstance(record, DailyActivity):
                if not record.steps:
                    continue  # a day off the wrist: the watch writes no steps at all
                # the export's steps only (activity minutes are not read from it)
                update.update(sedentary_min=None, lightly_active_min=None, moderately_active_min=None,
                              very_active_min=None)
        elif source == "oura":
            # The ring's heart measures belong to the night's main sleep period: none without one.
            if isinstance(record, NightlyHrv):
                if record.night_date not in main_nights:
                    continue
                # the whole night's RMSSD, in whole ms; no deep-sleep RMSSD
                update.update(rmssd_ms=float(round(record.rmssd_ms * OURA_RMSSD_FACTOR)), deep_rmssd_ms=None)
            elif isinstance(record, DailyRestingHeartRate):
                if record.day not in main_nights:
                    continue
                update["resting_hr_bpm"] = record.resting_hr_bpm + OURA_RESTING_HR_OFFSET_BPM
            elif isinstance(record, NightlyVitals) and record.night_date not in main_nights:
                update["breathing_rate_brpm"] = None
        worn.append(record.model_copy(update=update))
    return worn
