"""The demo's wearers of other devices: an Apple Watch, an Oura ring, and a Fitbit swapped for a ring half-way.

Their nights are drawn like everyone's (nights.py), then labelled with the device worn that night and changed the
way that device measures: the records carry the device's source name (the one its importer or connector gives),
so features choose among them and baselines restart at a switch exactly as for real data. They travel in the
synthetic JSON payload, not in each device's own documented shapes: those are exercised by the Oura fake server
and the Apple Health fixtures in tests/.
"""

from __future__ import annotations

from datetime import date, timedelta

from connectors.records import AnyRecord, DailyRestingHeartRate, NightlyHrv, NightlyVitals

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
OURA_RESTING_HR_OFFSET_BPM = -3.0


def device_dates(wearer: tuple[tuple[float, str], ...], first_night: date,
                 n_nights: int) -> tuple[tuple[date, str], ...]:
    """(first night, source) of each device a wearer wears over a history of `n_nights`."""
    return tuple((first_night + timedelta(days=int(share * n_nights)), source) for share, source in wearer)


def device_on(devices: tuple[tuple[date, str], ...], day: date) -> str:
    return [source for since, source in devices if since <= day][-1]


def as_worn(records: list[AnyRecord], devices: tuple[tuple[date, str], ...], civil_date) -> list[AnyRecord]:
    """The records as the device worn on their date delivers them (dropped where it measures nothing usable)."""
    worn = []
    for record in records:
        source = device_on(devices, civil_date(record))
        update: dict[str, object] = {"source": source}
        if source == "apple-health":
            if isinstance(record, NightlyHrv):
                continue  # Apple's HRV is SDNN, never stored as RMSSD
            if isinstance(record, NightlyVitals):
                update["skin_temp_deviation_c"] = None  # wrist temperature is absolute: not imported
        elif source == "oura":
            if isinstance(record, NightlyHrv):
                update["rmssd_ms"] = record.rmssd_ms * OURA_RMSSD_FACTOR
            elif isinstance(record, DailyRestingHeartRate):
                update["resting_hr_bpm"] = record.resting_hr_bpm + OURA_RESTING_HR_OFFSET_BPM
        worn.append(record.model_copy(update=update))
    return worn
