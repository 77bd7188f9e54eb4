"""Back-off with jitter and log-once-per-interval (quantcore.backoff)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from quantcore.backoff import Backoff, RepeatLog, full_jitter


@given(
    attempt=st.integers(min_value=-3, max_value=200),
    base=st.floats(min_value=0.001, max_value=10),
    cap=st.floats(min_value=0.001, max_value=600),
    draw=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_full_jitter_stays_within_the_exponential_cap(
    attempt: int, base: float, cap: float, draw: float
) -> None:
    delay = full_jitter(attempt, base, cap, lambda: draw)
    assert 0 <= delay <= min(cap, base * 2.0 ** (max(attempt, 1) - 1))


def test_backoff_never_goes_under_its_floor_and_resets() -> None:
    b = Backoff(base_s=1.0, max_s=8.0, floor_s=0.25, rng=lambda: 0.0)
    assert [b.delay() for _ in range(3)] == [0.25, 0.25, 0.25]
    top = Backoff(base_s=1.0, max_s=8.0, floor_s=0.25, rng=lambda: 0.999999)
    delays = [top.delay() for _ in range(6)]
    assert delays == sorted(delays)
    assert delays[-1] <= 8.0
    top.reset()
    assert top.delay() < 1.0


class _Logger:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, **kw: self.lines.append((level, event, kw))


def test_a_failure_repeated_8_times_a_second_for_a_minute_logs_once_per_interval() -> None:
    now = [0.0]
    logger = _Logger()
    rl = RepeatLog(logger, interval_s=10.0, clock=lambda: now[0])
    for _ in range(480):  # one minute of failures, eight a second
        rl.failure("poll", "poll failed", error="malformed")
        now[0] += 0.125
    assert len(logger.lines) == 6  # at 0 s, then every 10 s
    assert logger.lines[1][2]["suppressed"] == 79
    assert logger.lines[-1][2]["repeated"] == 401
    assert rl.recovered("poll", "poll works again")
    assert logger.lines[-1][0] == "info"
    assert not rl.recovered("poll", "poll works again")  # once
    assert rl.failure("poll", "poll failed")  # a new outage is logged at once
