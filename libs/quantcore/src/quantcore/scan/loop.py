"""Cycle plumbing of the scanners: run a body every interval, aligned so replicas agree on
the cycle number. Per-coin work is split with quantcore.partition.split_work."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from quantcore.collect.cycles import cycle_of, cycle_start, sleep_until


def start_delay(interval_s: float) -> float:
    """Seconds after the cycle boundary a scan starts: the minute's candle and snapshot are
    written by then (the collector flushes every 2 s, snapshots land ~1 s after the minute)."""
    return min(5.0, interval_s / 4)


async def every(
    interval_s: float,
    stop: asyncio.Event,
    body: Callable[[int], Awaitable[None]],
    log: Any,
    what: str,
    delay_s: float | None = None,
    keep_going: Callable[[], bool] = lambda: True,
) -> None:
    """Call body(cycle) once per cycle, `delay_s` after its start, until stop (or keep_going()
    turns false). A failed cycle is logged; the next one runs anyway."""
    delay = start_delay(interval_s) if delay_s is None else delay_s
    while not stop.is_set() and keep_going():
        cycle = cycle_of(interval_s)
        if not await sleep_until(cycle_start(cycle, interval_s) + delay, stop):
            return
        if not keep_going():
            return
        try:
            await body(cycle)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(f"{what} failed; the next cycle retries", cycle=cycle, error=str(exc)[:300])
        if not await sleep_until(cycle_start(cycle + 1, interval_s), stop):
            return
