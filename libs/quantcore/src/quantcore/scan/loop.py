"""Cycle plumbing of the scanners: run a body every interval (aligned, so replicas agree on
the cycle number), and split per-coin work between replicas with per-cycle claims plus a
sweep of coins whose owner died (same scheme as the liquidation collector)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from quantcore.collect.cycles import cycle_of, cycle_start, sleep_until
from quantcore.partition import WorkSplit

SWEEP_AT = 0.3  # share of the cycle after which coins nobody claimed are taken over


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


@dataclass
class WorkDone:
    """What one replica did in a cycle: coins, summed figures, seconds spent working (the
    wait for the sweep not counted)."""

    coins: list[str] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, coins: list[str], figures: dict[str, int], seconds: float) -> None:
        self.coins += coins
        self.seconds += seconds
        for k, v in figures.items():
            self.totals[k] = self.totals.get(k, 0) + v


async def split_work(
    split: WorkSplit,
    job: str,
    cycle: int,
    interval_s: float,
    universe: Sequence[str],
    stop: asyncio.Event,
    work: Callable[[list[str]], Awaitable[dict[str, int]]],
) -> WorkDone:
    """Do `work` on this replica's coins for the cycle (each coin claimed once per cycle),
    then, SWEEP_AT into the cycle, on coins nobody claimed."""
    ttl = interval_s * 2
    done = WorkDone()

    async def run(coins: list[str]) -> None:
        started = time.monotonic()
        figures = await work(coins)
        done.add(coins, figures, time.monotonic() - started)

    mine = await split.mine(universe)
    won = await split.claim(job, cycle, mine, ttl_s=ttl)
    if won:
        await run(won)
    if await sleep_until(cycle_start(cycle, interval_s) + interval_s * SWEEP_AT, stop):
        orphans = await split.unclaimed(job, cycle, list(universe))
        taken = await split.claim(job, cycle, orphans, ttl_s=ttl)
        if taken:
            await run(taken)
    return done
