"""A seeded synthetic cohort of clinicians' wearable nights, and the Source that serves it to the pipeline.

The cohort exists so that the demo, the tests and the backtest can run the real flows on data that looks
like a Fitbit's: a weekday/weekend rhythm, night shifts, time zones with a DST change and trips across
zones, missing nights, naps, classic and stage logs, HRV only where Fitbit computes it, and scripted "rough"
and "illness" patches with known dates (`SyntheticCohort.ground_truth`) so detection can be scored. Calm
people get noise only.

Who is calm, rough or ill, on night shifts or travelling is a fixed template of ten slots that repeats, so
every cohort of at least 8 people has each kind the tests and the demo need; everything else comes from each
person's own seeded random streams, so a cohort is the same every time it is built.

    profiles.py    who the people are: template, zones, trips, each one's usual, scripted patches (ground truth)
    nights.py      one person's nights drawn from their plan: sleep, naps, heart, vitals, movement
    sleep_logs.py  one sleep log laid out in 30-second epochs (stage cycles or classic minutes, wake bouts)
    payloads.py    values rendered as records, and a fetch window as one JSON payload
    devices.py     the demo's Apple, Oura and switching wearers: each night as the device worn measures it
    shapes.py      those wearers' nights as Oura API v2 documents and Apple Health export.xml, parsed by the
                   Oura and Apple connectors themselves
    source.py      SyntheticCohort and SyntheticSource, what the pipeline, tests and benchmarks use
"""

from connectors.synthetic.payloads import RESOURCE, SOURCE_NAME
from connectors.synthetic.profiles import (
    PATCH_EARLIEST_NIGHT,
    SHIFT_BLOCK,
    SHIFT_CYCLE_DAYS,
    TRIP_NIGHTS,
    Patch,
    PatchKind,
    Profile,
    SyntheticPerson,
    Trip,
)
from connectors.synthetic.sleep_logs import EPOCH_S, STAGES_MIN_SLEEP_MIN
from connectors.synthetic.source import SyntheticCohort, SyntheticSource, record_civil_date

__all__ = [
    "EPOCH_S",
    "PATCH_EARLIEST_NIGHT",
    "RESOURCE",
    "SHIFT_BLOCK",
    "SHIFT_CYCLE_DAYS",
    "SOURCE_NAME",
    "STAGES_MIN_SLEEP_MIN",
    "TRIP_NIGHTS",
    "Patch",
    "PatchKind",
    "Profile",
    "SyntheticCohort",
    "SyntheticPerson",
    "SyntheticSource",
    "Trip",
    "record_civil_date",
]
