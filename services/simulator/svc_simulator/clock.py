"""The simulated clock: anchored to real UTC at start, running SIM_SPEED times as fast."""

from __future__ import annotations

import time


class SimClock:
    """sim time = start + (real time since the anchor) × speed (+ jumps)."""

    def __init__(self, start_s: float, speed: float, anchor_monotonic: float | None = None) -> None:
        self.start_s = start_s
        self.speed = speed
        self._anchor = time.monotonic() if anchor_monotonic is None else anchor_monotonic
        self.offset_s = 0.0  # jumps requested through /sim/advance

    def now_s(self) -> float:
        return self.start_s + (time.monotonic() - self._anchor) * self.speed + self.offset_s

    def jump(self, seconds: float) -> None:
        self.offset_s += seconds
