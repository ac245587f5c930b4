"""The figures `make bench` reports: a measured value of ours, its reference when it has
one, the target and whether it holds."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass
class Figure:
    name: str
    ours: float | None
    reference: float | None
    unit: str
    target: str  # e.g. "≥ 0.6" (a ratio) or "≤ 50 ms" (ours) or "reported"
    note: str = ""
    # the target applies to ours even though a reference is shown (fairness: on ≤ 1
    # job duration, with off, FIFO, measured alongside)
    target_on_ours: bool = False
    # (ours, reference) in each round, when paired; in results.json, to tell a slow
    # machine (both sides down) from a slow side
    round_values: tuple[tuple[float, float], ...] = ()

    @property
    def round_ratios(self) -> tuple[float, ...]:
        """Each round's ratio: the pair measured back to back shares the machine's mood,
        so the figure is the median of these rather than a ratio of two medians."""
        return tuple(mine / theirs for mine, theirs in self.round_values)

    @property
    def ratio(self) -> float | None:
        if self.round_ratios:
            return statistics.median(self.round_ratios)
        if self.ours is None or not self.reference:
            return None
        return self.ours / self.reference

    @property
    def passed(self) -> bool | None:
        if self.target == "reported":
            return None
        operator, bound = self.target.split()[:2]
        value = self.ours if self.reference is None or self.target_on_ours else self.ratio
        if value is None:
            return False
        return value >= float(bound) if operator == "≥" else value <= float(bound)


@dataclass(frozen=True)
class Rounds:
    """Alternating measurements of ours and a reference, one pair a round."""

    ours: tuple[float, ...]
    reference: tuple[float, ...]

    @property
    def ours_median(self) -> float:
        return statistics.median(self.ours)

    @property
    def reference_median(self) -> float:
        return statistics.median(self.reference)


def p99(values: list[float]) -> float:
    """The 99th percentile, nearest rank (the value below which 99 % of them lie)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
