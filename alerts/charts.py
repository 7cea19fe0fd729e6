"""Small PNG charts for the `charts` detail level: a few weeks of one feature against the person's usual band.

Drawn by matplotlib (Agg, no display) from alerts.chart_data series. Each image comes with alt text that says in
words what the picture shows, so a screen reader or an email client with images off loses nothing.
Calm slate blue and grey only (docs/messages.md, "Words": no red/green, no grades), and no dates: the x axis
counts weeks back.
"""

from __future__ import annotations

import io
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import matplotlib

matplotlib.use("Agg")  # before any pyplot import anywhere: no display, safe in worker threads

from matplotlib.figure import Figure  # noqa: E402  (after choosing the backend)

from alerts.chart_data import ChartSeries  # noqa: E402

WIDTH_PX, HEIGHT_PX, DPI = 560, 200, 100  # 560 px fits the 600 px email column with its padding
LINE = "#2b3a55"  # the templates' heading colour
BAND = "#d5dce8"
BAND_EDGE = "#9aa8bf"
TEXT = "#3d434b"
RECENT_NIGHTS = 7


@dataclass(frozen=True)
class ChartImage:
    png: bytes
    alt: str


@dataclass(frozen=True)
class FeatureView:
    cid: str
    title: str  # drawn on the chart
    spoken: str  # the same, as it reads inside a sentence of alt text
    unit_label: str
    to_display: Callable[[float], float]
    describe: Callable[[float], str]  # a display value in words, for alt text


def _hours(minutes: float) -> float:
    return minutes / 60.0


def _hours_text(hours: float) -> str:
    total = int(round(hours * 60 / 5) * 5)
    return f"{total // 60} h {total % 60:02d} min"


VIEWS: dict[str, FeatureView] = {
    "tst_min": FeatureView("chart-sleep@emberwatch.local", "Sleep each night", "your sleep each night", "hours", _hours, _hours_text),
    "resting_hr_bpm": FeatureView(
        "chart-resting-heart-rate@emberwatch.local", "Resting heart rate", "your resting heart rate", "bpm", float, lambda v: f"{round(v)} bpm"
    ),
    "ln_rmssd": FeatureView(
        "chart-heart-rate-variability@emberwatch.local",
        "Heart-rate variability, a sign of overnight recovery",
        "your heart-rate variability (a sign of overnight recovery)",
        "ms",
        math.exp,  # people know HRV in milliseconds from their watch apps, not as a natural log
        lambda v: f"{round(v)} ms",
    ),
}
# an Apple Watch's HRV (SDNN): the same words, as its Health app calls it plain "heart rate variability"
VIEWS["ln_sdnn"] = replace(VIEWS["ln_rmssd"], cid="chart-heart-rate-variability-sdnn@emberwatch.local")


def render_series(series: ChartSeries) -> tuple[str, ChartImage]:
    """(content-id, image) for one series."""
    view = VIEWS[series.feature]
    days_back = [(series.last_night - night).days for night in series.nights]
    x = [-d / 7 for d in days_back]  # weeks before the last night
    y = [view.to_display(v) for v in series.values]

    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    ax = fig.add_subplot()
    weeks = (series.last_night - series.first_night).days / 7
    if series.band_low is not None and series.band_high is not None:
        low, high = sorted((view.to_display(series.band_low), view.to_display(series.band_high)))
        ax.axhspan(low, high, color=BAND, zorder=0, label="your usual range")
        ax.axhline(view.to_display(series.band_mid or 0.0), color=BAND_EDGE, linewidth=1, zorder=1)
    ax.plot(x, y, color=LINE, linewidth=1.6, marker="o", markersize=2.5, zorder=2)
    ax.set_xlim(-weeks - 0.1, 0.35)
    ticks = sorted(-t for t in range(0, int(weeks) + 1, 2))
    ax.set_xticks(ticks, [("latest" if t == 0 else f"{-t} wk ago") for t in ticks])
    ax.set_title(view.title, loc="left", fontsize=11, color=LINE)
    ax.set_ylabel(view.unit_label, color=TEXT, fontsize=9)
    ax.tick_params(colors=TEXT, labelsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout(pad=0.6)
    buffer = io.BytesIO()
    # No metadata: the same data gives the same bytes (composition stays deterministic).
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return view.cid, ChartImage(buffer.getvalue(), alt_text(series))


def alt_text(series: ChartSeries) -> str:
    view = VIEWS[series.feature]
    weeks_text = _weeks_in_words(round(((series.last_night - series.first_night).days + 1) / 7))
    text = f"A line chart of {view.spoken} over the last {weeks_text}"
    if series.band_low is None or series.band_high is None or series.band_mid is None:
        return text + ". Your usual range is not drawn yet: emberwatch is still learning it."
    low, high = sorted((view.to_display(series.band_low), view.to_display(series.band_high)))
    recent = statistics.median(view.to_display(v) for v in series.values[-RECENT_NIGHTS:])
    where = "below" if recent < low else "above" if recent > high else "within"
    return (
        f"{text}, with your usual range shaded (about {view.describe(low)} to {view.describe(high)}). "
        f"Over the last week the nights sit mostly {where} that range."
    )


def _weeks_in_words(weeks: int) -> str:
    words = {4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}
    return f"{words.get(weeks, str(weeks))} weeks"


def render_charts(series: Sequence[ChartSeries]) -> dict[str, ChartImage]:
    return dict(render_series(s) for s in series)
