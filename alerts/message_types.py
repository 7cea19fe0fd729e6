"""What the decision layer hands to message composition: explanations, never raw tables.

Composition turns these into words; it never reads the database. Values here may be health values: they
only reach an email body when the person chose the `numbers` or `charts` detail level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from alerts.signed_links import PersonLinks

DetailLevel = Literal["minimal", "numbers", "charts"]
Domain = Literal["sleep", "recovery"]
Direction = Literal["up", "down"]


@dataclass(frozen=True)
class Recipient:
    person_id: str
    email: str
    tz_name: str
    detail_level: DetailLevel = "minimal"
    # Signed links to the person's page (alerts.signed_links); every email the pipeline sends carries them.
    links: PersonLinks | None = None


@dataclass(frozen=True)
class FeatureMove:
    """How one feature moved over the recent window, compared with the person's own baseline."""

    feature: str  # a column of nightly_features, e.g. "tst_min", "resting_hr_bpm", "ln_rmssd"
    direction: Direction
    worse: bool  # True when the move is in the direction features/catalog.py calls worse
    robust_z: float  # (recent median - baseline median) / (1.4826 * baseline MAD), sign as measured
    baseline_median: float
    recent_median: float
    unit: str  # "min", "%", "bpm", "ln(ms)", "count", "min after midnight"


@dataclass(frozen=True)
class AlertExplanation:
    """Why an alert fired: which features moved, how far, against which baseline, over which nights."""

    person_id: str
    night_date: date  # the night whose run raised the alert
    domains: tuple[Domain, ...]
    window_nights: tuple[date, ...]  # the valid nights looked at (last 5)
    flagged_nights: tuple[date, ...]  # of those, the ones that deviated
    moves: tuple[FeatureMove, ...]
    baseline_nights: int  # valid nights in the baseline
    persisting_nights: int  # how many nights in a row at least one domain has been flagged
    strategy: str = ""  # key into alerts.strategies, chosen by alerts.rules


@dataclass(frozen=True)
class WeekSummary:
    """One person's week (Monday..Sunday, local nights) compared with their usual, for the weekly digest."""

    person_id: str
    week_start: date
    week_end: date
    warming_up: bool
    valid_nights_total: int  # valid nights stored so far (for the warm-up line)
    nights_until_comparisons: int  # 0 once past warm-up
    valid_nights_this_week: int
    moves: tuple[FeatureMove, ...] = ()  # this week's medians against the baseline
    went_well: tuple[str, ...] = ()  # feature names that moved in the better direction or stayed steady
    sleep_flag_nights: int = 0
    recovery_flag_nights: int = 0
    # illness signs (temperature, breathing rate, SpO2, or an illness tag) on nights whose sleep or recovery was
    # worse: the week is told as the body fighting something off, not as a heavy week (SIGNALS.md: they explain)
    illness_explains_week: bool = False
    # an earlier weekly check-in exists: "Welcome" belongs to the first one only, not to every week of warm-up
    # (or to the weeks after a change of device, which start a fresh usual)
    had_check_in_before: bool = False
    alert_sent_this_week: bool = False
    strategy: str = ""
    # What the person told us about the week before, in the weekly question's scales: (("week_drained", 4.0), …)
    told_us: tuple[tuple[str, float], ...] = ()
    # False where the source gives no overnight HRV: recovery is then not measured, and the words must not claim it.
    recovery_measured: bool = True
    # The person's sleep threshold changed this week (features/calibration.py): the widening now in force
    # (0.5 = widened, 0.0 = back to the default), or None when it did not change.
    sleep_calibration_now: float | None = None


@dataclass(frozen=True)
class MessageSettings:
    from_address: str = "emberwatch <no-reply@emberwatch.local>"
    support_resource: str = "your employee assistance programme, your GP, or a trusted colleague"


@dataclass(frozen=True)
class ComposedEmail:
    """A rendered email plus the HTML body alone (kept for the outbox's viewable copy)."""

    subject: str
    text: str
    html: str
    images: dict[str, bytes] = field(default_factory=dict)  # content-id -> PNG bytes
