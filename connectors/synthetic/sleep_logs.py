"""Lays one sleep log out in 30-second epochs: stage cycles or classic minutes, broken by wake bouts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from connectors.records import SleepStage
from connectors.synthetic.profiles import Usual

# Fitbit computes sleep stages (and so HRV) only for sleep of at least 3 hours; shorter logs are classic.
STAGES_MIN_SLEEP_MIN = 180
EPOCH_S = 30  # stage logs come in 30-second epochs


def _split(total: int, weights: np.ndarray | list[float] | tuple[float, ...]) -> list[int]:
    """Non-negative integers proportional to `weights` that sum to exactly `total`."""
    w = [max(0.0, float(x)) for x in weights]
    norm = sum(w)
    if norm <= 0:
        w, norm = [1.0] * len(w), float(len(w))
    parts: list[int] = []
    cumulative = 0.0
    previous_cut = 0
    for x in w:
        cumulative += x
        cut = round(cumulative / norm * total)
        parts.append(cut - previous_cut)
        previous_cut = cut
    parts[-1] += total - previous_cut
    return parts


def _insert_wakes(
    timeline: list[tuple[SleepStage, int]], inserts: list[tuple[int, int]], wake: SleepStage
) -> list[tuple[SleepStage, int]]:
    """Insert wake bouts (position in asleep epochs, length in epochs) into a timeline of (stage, epochs)."""
    out: list[tuple[SleepStage, int]] = []
    j = 0
    position = 0
    for stage, n in timeline:
        cursor, end = position, position + n
        while j < len(inserts) and inserts[j][0] < end:
            at, length = inserts[j]
            if at > cursor:
                out.append((stage, at - cursor))
                cursor = at
            out.append((wake, length))
            j += 1
        if end > cursor:
            out.append((stage, end - cursor))
        position = end
    out.extend((wake, length) for _, length in inserts[j:])
    return out


def _merge(timeline: list[tuple[SleepStage, int]]) -> list[tuple[SleepStage, int]]:
    merged: list[tuple[SleepStage, int]] = []
    for stage, n in timeline:
        if n <= 0:
            continue
        if merged and merged[-1][0] == stage:
            merged[-1] = (stage, merged[-1][1] + n)
        else:
            merged.append((stage, n))
    return merged


def _stage_cycles(
    rng: np.random.Generator, asleep_epochs: int, usual: Usual
) -> list[tuple[SleepStage, int]]:
    """~90-minute cycles: deep sleep early in the night, REM growing towards morning."""
    n_cycles = max(1, round(asleep_epochs * EPOCH_S / 60 / usual.cycle_min))
    timeline: list[tuple[SleepStage, int]] = []
    for i, cycle_epochs in enumerate(_split(asleep_epochs, rng.uniform(0.8, 1.2, n_cycles))):
        f = i / (n_cycles - 1) if n_cycles > 1 else 0.0
        deep = usual.deep_scale * 0.36 * (1 - f) ** 1.3 * rng.uniform(0.75, 1.25)
        rem = (0.08 + 0.30 * f) * rng.uniform(0.8, 1.2) * (0.5 if i == 0 else 1.0)
        light = max(0.3, 1 - deep - rem)
        parts = (
            (SleepStage.LIGHT, light * 0.55),
            (SleepStage.DEEP, deep),
            (SleepStage.LIGHT, light * 0.45),
            (SleepStage.REM, rem),
        )
        lengths = _split(cycle_epochs, [w for _, w in parts])
        timeline.extend((stage, n) for (stage, _), n in zip(parts, lengths, strict=True))
    return _merge(timeline)


def _classic_body(rng: np.random.Generator, asleep_epochs: int) -> list[tuple[SleepStage, int]]:
    """Asleep with restless bouts (whole minutes, as classic logs are minute-by-minute)."""
    minutes = asleep_epochs // 2
    n_restless = int(rng.poisson(minutes / 40)) if minutes > 10 else 0
    marks = np.zeros(minutes, dtype=bool)
    for start, length in zip(
        rng.integers(0, max(1, minutes), n_restless), rng.integers(1, 4, n_restless), strict=True
    ):
        marks[start : start + length] = True
    timeline = [(SleepStage.RESTLESS if m else SleepStage.ASLEEP, 2) for m in marks]
    return _merge(timeline)


@dataclass(frozen=True)
class SleepShape:
    """What one log should look like before it is laid out in epochs (all minutes)."""

    asleep_min: int
    sol_min: int
    trailing_min: int
    inner_wakes_epochs: tuple[int, ...]

    @property
    def in_bed_epochs(self) -> int:
        return 2 * (self.asleep_min + self.sol_min + self.trailing_min) + sum(self.inner_wakes_epochs)


def wake_bouts(rng: np.random.Generator, waso_min: float, long_wakes: int, classic: bool) -> tuple[int, ...]:
    """WASO as a few long awakenings (>= 5 min) and many brief ones, in epochs; the total is whole minutes."""
    bouts = [int(x) for x in rng.integers(10, 31, long_wakes)]  # 5-15 min
    remaining = max(0.0, waso_min * 2 - sum(bouts))
    if remaining > 0:
        brief = rng.integers(1, 8, int(remaining) // 2 + 4)  # 30 s to 3.5 min
        cut = int(np.searchsorted(np.cumsum(brief), remaining)) + 1
        bouts.extend(int(x) for x in brief[:cut])
    if classic:  # minute resolution
        bouts = [b + (b % 2) for b in bouts]
    elif sum(bouts) % 2 and bouts:
        i = int(np.argmax(bouts))
        bouts[i] += 1
    return tuple(bouts)


def layout(
    rng: np.random.Generator, shape: SleepShape, classic: bool, usual: Usual
) -> list[tuple[SleepStage, int]]:
    asleep_epochs = 2 * shape.asleep_min
    body = _classic_body(rng, asleep_epochs) if classic else _stage_cycles(rng, asleep_epochs, usual)
    wake = SleepStage.AWAKE if classic else SleepStage.WAKE
    if shape.inner_wakes_epochs:
        # Not in the first 10 minutes of sleep nor the last 5, so onset latency and final wake stay separate.
        low, high = min(20, asleep_epochs), max(min(20, asleep_epochs), asleep_epochs - 10)
        positions = np.sort(rng.integers(low, high + 1, len(shape.inner_wakes_epochs)))
        if classic:
            positions = positions - positions % 2
        body = _insert_wakes(body, list(zip(positions.tolist(), shape.inner_wakes_epochs, strict=True)), wake)
    return _merge([(wake, 2 * shape.sol_min), *body, (wake, 2 * shape.trailing_min)])

