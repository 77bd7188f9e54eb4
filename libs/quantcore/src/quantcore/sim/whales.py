"""Whales: the actors the strategy hunts with.

A hunt: build open interest quietly (BUILD), push price towards the largest mature
liquidation cluster on the heavy side of the book (the side the strategy's imbalance points
to) with a burst of volume (PUSH), take profit 0.5–1 % before the cluster and let price
reverse (EXIT). Whales go where the liquidity is: a coin's chance of a campaign grows with how
lopsided its book is (`appetite`), and the burst that opens a push beats the coin's own 5-min
noise (the strategy's trigger judges it against the coin's history). A fake pump: a short build and a fast push towards a young cluster
(levels of the last 24 h) that stalls halfway and dumps below where it started (FAIL) — the
12h/24h trap of the owner's notes.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]

IDLE, BUILD, PUSH, EXIT, FAKE_PUSH, FAIL = range(6)
PHASE_NAMES = ("idle", "build", "push", "exit", "fake_push", "fail")
FAKE_SHARE = 0.3  # share of campaigns that are fake pumps
MEAN_IDLE_S = 10 * 3600.0  # mean wait between campaigns on an alt of average appetite
MAJOR_IDLE_FACTOR = 3.0  # BTC/ETH see fewer campaigns
BURST_S = 300  # the push opens with a burst this long (the strategy's 5-min trigger)
BURST_MIN_MOVE = 0.02  # the burst moves price at least this much (log) in BURST_S …
BURST_NOISE_SIGMAS = 3.5  # … and at least this many of the coin's 5-min σ
BURST_MAX_SHARE = 0.5  # … but covers at most this share of the way to take-profit, …
STAND_OUT_MAX_SHARE = 0.8  # … or this share when that is what beating the coin's bars takes
DAY_S = 86_400.0
STAND_OUT = 1.5  # a hunt's OI build and burst beat the coin's own recent p95 by this factor
BURST_VOLUME = 3.5  # the burst's volume (1 + the whales' own, in base volumes) at least …
BURST_VOLUME_PER_BAR = 2.5  # … and this × the coin's p95 5-min volume ratio
MAX_BURST_VOLUME = 10.0
MAX_GOAL = 0.35  # a whale's position is at most this share of the coin's open interest
CampaignKind = Literal["hunt", "fake"]


@dataclass(frozen=True)
class Target:
    """A liquidation cluster a whale goes for."""

    price: float
    value: float
    direction: int  # +1: price goes up to liquidate shorts; -1: down to liquidate longs
    timeframe: str  # the shortest heatmap timeframe that holds the cluster's levels
    # the coin's own recent bars (p95 of its 15-min OI changes, |5-min moves|, 5-min volume
    # ratios): a hunt beats them so it stands out on this coin, not only on an average one
    oi_bar: float = 0.0
    move_bar: float = 0.0
    volume_bar: float = 0.0


TargetFinder = Callable[[int, CampaignKind], Target | None]


@dataclass
class Campaign:
    """One whale campaign, kept for inspection (ground truth for backtests and tests)."""

    coin: int
    kind: CampaignKind
    direction: int
    started: int
    origin: float
    target: float
    target_value: float
    take_profit: float
    timeframe: str
    push_started: int | None = None
    ended: int | None = None
    outcome: str | None = None  # take_profit, timeout, failed, replanned
    best: float | None = None  # furthest price reached in the campaign's direction


@dataclass(frozen=True)
class WhaleEffect:
    drift: F64  # log-price drift per second
    volume: F64  # 1 + the whales' own volume in units of the coin's base volume
    long_flow: F64  # multiplier of new long positions (followers)
    short_flow: F64
    notional: F64  # whale position (USD), part of open interest


class WhaleDesk:
    """Campaign state of every coin; `step` runs once per block."""

    def __init__(
        self,
        rng: np.random.Generator,
        majors: NDArray[np.bool_],
        enabled: bool = True,
        daily_vol: F64 | None = None,
    ):
        n = majors.size
        self.rng = rng
        self.enabled = enabled
        self.mean_idle = np.where(majors, MEAN_IDLE_S * MAJOR_IDLE_FACTOR, MEAN_IDLE_S)
        vol = np.zeros(n) if daily_vol is None else np.asarray(daily_vol, dtype=np.float64)
        self.burst_move = np.maximum(
            BURST_MIN_MOVE, BURST_NOISE_SIGMAS * vol * math.sqrt(BURST_S / DAY_S)
        )
        self.phase = np.zeros(n, np.int64)
        self.direction = np.zeros(n, np.int64)
        self.phase_end = np.zeros(n, np.int64)
        self.burst_end = np.zeros(n, np.int64)
        self.speed = np.zeros(n)  # |drift| of the current phase (log/s)
        self.burst_speed = np.zeros(n)
        self.campaign_burst = np.zeros(n)  # the current push's burst move (log) and volume
        self.burst_volume = np.full(n, BURST_VOLUME)
        self.tp_log = np.zeros(n)
        self.origin_log = np.zeros(n)
        self.notional = np.zeros(n)
        self.notional_rate = np.zeros(n)  # USD/s, + while building, − while unwinding
        self.notional_goal = np.zeros(n)
        self.planned_push_s = np.zeros(n)
        self.active: list[Campaign | None] = [None] * n
        self.log: deque[Campaign] = deque(maxlen=10_000)

    def phase_of(self, coin: int) -> str:
        return PHASE_NAMES[int(self.phase[coin])]

    def step(
        self,
        now: int,
        seconds: float,
        logp: F64,
        oi_usd: F64,
        find: TargetFinder,
        appetite: F64 | None = None,
    ) -> WhaleEffect:
        """One block: phase changes, new campaigns (chance per coin × `appetite`), the effect."""
        n = logp.size
        if self.enabled:
            for c in np.nonzero(self.phase != IDLE)[0]:
                self._transition(int(c), now, float(logp[c]))
            idle = self.phase == IDLE
            chance = -np.expm1(-seconds / self.mean_idle)
            if appetite is not None:
                chance = chance * appetite
            start = idle & (self.rng.random(n) < chance)
            for c in np.nonzero(start)[0]:
                self._begin(int(c), now, float(logp[c]), float(oi_usd[c]), find)
        return self._effect(now, seconds)

    def plant(
        self, c: int, now: int, logp: float, oi: float, find: TargetFinder, push_at: int
    ) -> Campaign | None:
        """Start a hunt on coin c now whose push begins at `push_at` (a scenario, or the hunts
        under way when the live market opens). None when the coin is busy or has no target."""
        if not self.enabled or self.phase[c] != IDLE or push_at <= now:
            return None
        return self._begin(c, now, logp, oi, find, kind="hunt", build_s=float(push_at - now))

    def replan(
        self, c: int, now: int, logp: float, oi: float, find: TargetFinder, push_at: int
    ) -> Campaign | None:
        """Like `plant`, but a campaign under way on the coin is given up for the new hunt (its
        position is kept and built on). None, and nothing changed, when the book has no target."""
        if not self.enabled or push_at <= now:
            return None
        if self.phase[c] == IDLE:
            return self.plant(c, now, logp, oi, find, push_at)
        held, old = float(self.notional[c]), self.active[c]
        phase = int(self.phase[c])
        self.phase[c] = IDLE
        campaign = self.plant(c, now, logp, oi, find, push_at)
        if campaign is None:
            self.phase[c] = phase
            self.active[c] = old
            return None
        if old is not None:
            old.ended, old.outcome = now, old.outcome or "replanned"
        self.notional[c] = held
        self.notional_goal[c] += held
        return campaign

    # --- state machine --------------------------------------------------------------------------
    def _begin(
        self,
        c: int,
        now: int,
        logp: float,
        oi: float,
        find: TargetFinder,
        kind: CampaignKind | None = None,
        build_s: float | None = None,
    ) -> Campaign | None:
        rng = self.rng
        if kind is None:
            kind = "fake" if rng.random() < FAKE_SHARE else "hunt"
        target = find(c, kind)
        if target is None or target.value < 0.002 * oi:
            return None
        d = target.direction
        cluster_log = math.log(target.price)
        front_run = rng.uniform(0.005, 0.01)
        tp_log = cluster_log - d * front_run
        distance = d * (tp_log - logp)
        if distance <= 0.004:
            return None
        self.direction[c] = d
        self.origin_log[c] = logp
        self.tp_log[c] = tp_log
        if kind == "hunt":
            build_s = rng.uniform(10, 25) * 60 if build_s is None else build_s
            # the 15-min OI change at the push is about goal × 15 min / build: above the bar
            stand_out = STAND_OUT * target.oi_bar * max(1.0, build_s / 900)
            goal = max(rng.uniform(0.06, 0.14), min(stand_out, MAX_GOAL)) * oi
            self.planned_push_s[c] = rng.uniform(0.5, 4.0) * 3600
        else:
            build_s = rng.uniform(5, 12) * 60 if build_s is None else build_s
            goal = rng.uniform(0.04, 0.10) * oi
            self.planned_push_s[c] = rng.uniform(5, 15) * 60
        self.phase[c] = BUILD
        self.phase_end[c] = now + int(build_s)
        self.notional_goal[c] = goal
        self.notional_rate[c] = goal / build_s
        self.speed[c] = 0.1 * distance / self.planned_push_s[c]
        self.campaign_burst[c] = max(float(self.burst_move[c]), STAND_OUT * target.move_bar)
        self.burst_volume[c] = min(
            max(BURST_VOLUME, 1 + BURST_VOLUME_PER_BAR * target.volume_bar), MAX_BURST_VOLUME
        )
        campaign = Campaign(
            coin=c,
            kind=kind,
            direction=d,
            started=now,
            origin=math.exp(logp),
            target=target.price,
            target_value=target.value,
            take_profit=math.exp(tp_log),
            timeframe=target.timeframe,
            best=math.exp(logp),
        )
        self.active[c] = campaign
        self.log.append(campaign)
        return campaign

    def _transition(self, c: int, now: int, logp: float) -> None:
        rng = self.rng
        d = int(self.direction[c])
        campaign = self.active[c]
        if campaign is not None and campaign.best is not None:
            price = math.exp(logp)
            campaign.best = max(campaign.best, price) if d > 0 else min(campaign.best, price)
        phase = int(self.phase[c])
        if phase == BUILD and now >= self.phase_end[c]:
            distance = max(d * (self.tp_log[c] - logp), 0.002)
            push_s = float(self.planned_push_s[c])
            self.notional_rate[c] = 0.0
            if campaign is not None:
                campaign.push_started = now
            if campaign is not None and campaign.kind == "fake":
                cover = rng.uniform(0.4, 0.7) * distance
                self.phase[c] = FAKE_PUSH
                self.speed[c] = cover / push_s
                self.burst_speed[c] = self.speed[c]
                self.phase_end[c] = now + int(push_s)
            else:
                self.phase[c] = PUSH
                self.speed[c] = distance / push_s
                # Open with a burst beyond the coin's own 5-min noise (and > 2 %): at most
                # half the way left, or up to STAND_OUT_MAX_SHARE of it when the coin's bars
                # need that much (the price may have come closer while the whale built).
                burst = float(self.campaign_burst[c])
                cap = max(BURST_MAX_SHARE * distance, min(burst, STAND_OUT_MAX_SHARE * distance))
                self.burst_speed[c] = min(max(3 * self.speed[c], burst / BURST_S), cap / BURST_S)
                self.phase_end[c] = now + int(2 * push_s)
            self.burst_end[c] = now + BURST_S
        elif phase == PUSH:
            if d * (logp - self.tp_log[c]) >= 0:
                self._exit(c, now, logp, "take_profit")
            elif now >= self.phase_end[c]:
                self._exit(c, now, logp, "timeout")
        elif phase == FAKE_PUSH and now >= self.phase_end[c]:
            fail_s = rng.uniform(20, 60) * 60
            undershoot = rng.uniform(0.01, 0.03)
            drop = d * (logp - self.origin_log[c]) + undershoot
            self.phase[c] = FAIL
            self.speed[c] = max(drop, 0.0) / fail_s
            self.phase_end[c] = now + int(fail_s)
            self.notional_rate[c] = -self.notional[c] / (10 * 60)
            if campaign is not None:
                campaign.outcome = "failed"
        elif phase in (EXIT, FAIL) and now >= self.phase_end[c]:
            self.phase[c] = IDLE
            self.speed[c] = 0.0
            self.notional[c] = 0.0
            self.notional_rate[c] = 0.0
            if campaign is not None:
                campaign.ended = now
            self.active[c] = None

    def _exit(self, c: int, now: int, logp: float, outcome: str) -> None:
        rng = self.rng
        exit_s = rng.uniform(1.0, 3.0) * 3600
        moved = abs(logp - self.origin_log[c])
        self.phase[c] = EXIT
        self.speed[c] = rng.uniform(0.3, 0.6) * moved / exit_s
        self.phase_end[c] = now + int(exit_s)
        self.notional_rate[c] = -self.notional[c] / (20 * 60)
        campaign = self.active[c]
        if campaign is not None:
            campaign.outcome = outcome

    # --- what the whales do to the market in this block ------------------------------------------
    def _effect(self, now: int, seconds: float) -> WhaleEffect:
        phase, d = self.phase, self.direction.astype(np.float64)
        in_burst = now < self.burst_end
        speed = np.where(in_burst & (phase == PUSH), self.burst_speed, self.speed)
        sign = np.where((phase == EXIT) | (phase == FAIL), -d, d)
        drift = np.where(phase == IDLE, 0.0, sign * speed)
        self.notional = np.clip(
            self.notional + self.notional_rate * seconds, 0.0, self.notional_goal
        )
        volume = np.ones(phase.size)
        volume[phase == BUILD] = 1.6
        push = phase == PUSH
        volume[push] = np.where(in_burst[push], self.burst_volume[push], 1.8)
        volume[phase == FAKE_PUSH] = 3.0
        volume[phase == EXIT] = np.where(self.notional[phase == EXIT] > 0, 2.0, 1.2)
        volume[phase == FAIL] = 1.6
        pushing = (phase == PUSH) | (phase == FAKE_PUSH)
        long_flow = np.where(pushing & (d > 0), 2.5, 1.0)
        short_flow = np.where(pushing & (d < 0), 2.5, 1.0)
        return WhaleEffect(drift, volume, long_flow, short_flow, self.notional.copy())
