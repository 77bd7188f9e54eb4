"""The simulated perpetuals market: prices, volume, open interest, funding, liquidation levels
and whales for every coin, advanced in simulated seconds. No I/O; the wall clock is read only
to place the market when no start is given.

Time is split into blocks (10 s live, 5 min while generating history). At the start of a
block the market decides (regimes, whales, new positions, funding) and draws the block's
price path; the seconds of the block are then applied as they are reached (candles,
liquidations). Only block boundaries depend on the clock, so the market is identical whether
it is advanced one second at a time or an hour at once: same seed and start, same market.

History: a year of 4-hour candles before the 1-minute history (prices, funding, and the
positions that were opened then and have survived), then SIM_HISTORY_DAYS of 1-minute
history generated with the same engine at a coarser step, then live 1-second steps.
"""

from __future__ import annotations

import math
import time as _time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from quantcore.math.ranking import cluster_size_pct
from quantcore.math.ranking import score as ranker_score
from quantcore.model.market import TIMEFRAME_DURATION, TIMEFRAMES
from quantcore.sim import heatmap as hm
from quantcore.sim import klines as kl
from quantcore.sim.levels import (
    LEVERAGE_TIERS,
    LONG,
    SHORT,
    TIER_LIFETIME_S,
    TIER_WEIGHTS,
    BookSnapshot,
    Levels,
    LiquidationBook,
)
from quantcore.sim.past import COARSE_S, FUNDING_S, PastInputs, generate_past, surviving_levels
from quantcore.sim.price import REGIME_VOL, REGIME_VOLUME, PriceProcess
from quantcore.sim.rings import (
    CLOSE,
    FIELDS,
    HIGH,
    LOW,
    OI,
    OPEN,
    TURNOVER,
    VOLUME,
    CandleRing,
    RateRing,
)
from quantcore.sim.universe import CoinSpec, build_universe
from quantcore.sim.whales import Campaign, CampaignKind, Target, WhaleDesk

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

DAY = 86_400
DEEP_DAYS = 366  # the synthetic past: enough 4-h candles for the 1y heatmap
BOOK_SHARE = 0.8  # leveraged positions (the book) as a share of typical open interest
BOOK_LIFETIME_S = float((TIER_WEIGHTS * TIER_LIFETIME_S).sum())  # sets the opening flow
TURNOVER_PER_OI = 1.8  # daily turnover / open interest
CASCADE_IMPACT = 0.25  # price impact of liquidated notional, as a fraction of open interest
MAX_CASCADE = 0.015
CLUSTER_BIN = math.log1p(0.005)  # levels within 0.5 % form one cluster
OPENING_BUILD_S = 16 * 60  # opening hunts build open interest at least this long before start
OPENING_PUSH_S = (-90, -30)  # the first opening push starts this long around the start …
OPENING_GAP_S = 45  # … the next ones this many seconds apart
HEATMAP_BAND = math.log1p(hm.MAX_BAND)  # the heatmaps (what the strategy sees) stop here
TF_SECONDS = np.array([TIMEFRAME_DURATION[tf].total_seconds() for tf in TIMEFRAMES])
# --- public positioning data (issue 14: what the venue's account-ratio endpoint and trade
# stream show; derived from the book without random draws, so the market is unchanged) ---
RATIO_S = 300  # the account ratio is kept per 5 minutes (the venue's finest period)
RATIO_GAIN = 0.8  # accounts long vs the book's long notional share: 0.5 + gain · (share − 0.5)
TAKER_GAIN = 0.6  # taker buys vs the long share of newly opened notional, the same way
APPETITE_RANGE = (0.2, 8.0)  # campaign chance × (book imbalance / the median coin's)², clipped


class BuildCancelled(Exception):
    """History generation was asked to stop."""


@dataclass(frozen=True)
class MarketConfig:
    seed: int = 42
    coins: int = 60
    history_days: float = 2.0
    start: int | None = None  # epoch seconds the market starts at (default: now)
    whales: bool = True
    step_s: int = 1  # live price step
    block_s: int = 10  # live decision block
    history_step_s: int = 10
    history_block_s: int = 300
    level_slots: int = 1024  # liquidation-level slots per coin
    max_ring_days: float = 7.0  # cap of the 1-minute candle history
    # hunts under way when the live market opens: on the coins whose books the strategy likes
    # best, pushes starting in the first live minutes (0: the market opens as it happens to be)
    opening_hunts: int = 5
    hunt_symbols: tuple[str, ...] = ()  # scenario: a hunt planted on each of these coins first

    def __post_init__(self) -> None:
        for step, block in (
            (self.step_s, self.block_s),
            (self.history_step_s, self.history_block_s),
        ):
            if step < 1 or 60 % step or block % step or 3600 % block or (60 % block and block % 60):
                raise ValueError(
                    f"step {step}s must divide 60 and the block {block}s; the block must divide"
                    " 3600 and divide or be a multiple of 60"
                )
        if self.coins < 1:
            raise ValueError("coins must be at least 1")
        if self.history_days < 0:
            raise ValueError("history_days must not be negative")
        if self.opening_hunts < 0:
            raise ValueError("opening_hunts must not be negative")

    @property
    def ring_days(self) -> float:
        return min(max(self.history_days + 1.0, 1.0), self.max_ring_days)


@dataclass(frozen=True)
class Liquidation:
    """A forced liquidation. `side` is the side of the liquidated position."""

    time_ms: int
    coin: int
    symbol: str
    side: Literal["long", "short"]
    price: float
    qty: float
    value_usd: float


@dataclass(frozen=True)
class TickerTable:
    """Current state of every coin (index = coin)."""

    time: int
    last: F64
    prev_tick: F64
    mark: F64
    index: F64
    high24: F64
    low24: F64
    prev24: F64
    prev1h: F64
    volume24: F64
    turnover24: F64
    oi_qty: F64
    oi_usd: F64
    funding: F64
    next_funding_s: int


@dataclass
class _Block:
    start: int = 0
    end: int = 0
    step: int = 1
    prices: F64 = field(default_factory=lambda: np.empty((0, 0)))
    turnover: F64 = field(default_factory=lambda: np.empty((0, 0)))
    reach_up: F64 = field(default_factory=lambda: np.empty((0, 0)))  # [C, minutes], coarse steps
    reach_down: F64 = field(default_factory=lambda: np.empty((0, 0)))
    # Volume is summed from the block start (cumulative sums) plus what the bucket had before
    # the block, so totals do not depend on how the block's seconds were applied.
    cum_quote: F64 = field(default_factory=lambda: np.zeros((0, 1)))  # [C, steps + 1]
    cum_base: F64 = field(default_factory=lambda: np.zeros((0, 1)))
    carry: dict[str, F64] = field(default_factory=dict)  # open minute / 4-h bucket before the block
    forced: dict[tuple[str, int], F64] = field(default_factory=dict)  # liquidated notional


class Market:
    """Build with `Market(MarketConfig(...))`; move time with `advance(seconds)`."""

    def __init__(self, config: MarketConfig, cancel: Callable[[], bool] | None = None) -> None:
        self.config = config
        start = int(config.start if config.start is not None else _time.time())
        self.start = start
        self.coins: list[CoinSpec] = build_universe(config.coins, config.seed, start * 1000)
        self.index = {c.symbol: c.index for c in self.coins}
        n = self.n = len(self.coins)
        self.tick = np.array([c.tick for c in self.coins])
        self.daily_vol = np.array([c.daily_vol for c in self.coins])
        self.oi_target = np.array([c.oi_usd for c in self.coins])
        self.funding_cap = np.array([c.funding_cap for c in self.coins])
        majors = np.array([c.is_major for c in self.coins])
        allowed = LEVERAGE_TIERS[None, :] <= np.array([c.max_leverage for c in self.coins])[:, None]
        weights = np.where(allowed, TIER_WEIGHTS[None, :], 0.0)
        self.tier_weights = weights / weights.sum(axis=1, keepdims=True)
        self.inflow_per_s = BOOK_SHARE * self.oi_target / BOOK_LIFETIME_S
        self.turnover_per_s = TURNOVER_PER_OI * self.oi_target / DAY

        ring_minutes = math.ceil(config.ring_days * 1440) + COARSE_S // 60
        self.fine = CandleRing(n, ring_minutes, 60)
        coarse_len = DEEP_DAYS * 6 + math.ceil(config.ring_days * 6) + 12
        self.coarse = CandleRing(n, coarse_len, COARSE_S)
        self.funding = RateRing(n, coarse_len // 2 + 2, FUNDING_S)
        self.ratios = RateRing(n, ring_minutes * 60 // RATIO_S + 2, RATIO_S, np.float32)
        # the taker-buy share of each 5 minutes (what the trade stream showed then)
        self.taker_shares = RateRing(n, ring_minutes * 60 // RATIO_S + 2, RATIO_S, np.float32)
        self.opening_long_share = np.full(n, 0.5)  # of the current block's new notional
        self._taker_sum = np.zeros(n)  # the taker-buy shares of the minutes of the 5 under way
        self._taker_n = 0
        self.book = LiquidationBook(n, config.level_slots)

        self.rng = np.random.default_rng([config.seed, 3])
        self.price = PriceProcess(self.rng, np.log([c.price0 for c in self.coins]), self.daily_vol)
        self.majors = majors
        self.whales = WhaleDesk(
            np.random.default_rng([config.seed, 4]), majors, config.whales, self.daily_vol
        )
        unknown = [s for s in config.hunt_symbols if s not in self.index]
        if unknown:
            raise ValueError(f"hunt_symbols: unknown coin(s) {', '.join(unknown)}")

        self.now = 0
        self.last_price = np.zeros(n)
        self.prev_tick = np.zeros(n)
        self.oi_noise = np.zeros(n)
        self.whale_notional = np.zeros(n)
        self.oi_usd = self.oi_target.copy()
        self.funding_rate = np.full(n, 0.0001)
        self.ema_1h = np.zeros(n)
        self.ema_8h = np.zeros(n)
        self.cascade = np.zeros(n)
        self.block = _Block()
        self._step_s = config.history_step_s
        self._block_s = config.history_block_s
        self._last_decay: int | None = None
        self._record = False  # liquidation events are kept once the history is built
        self._events: deque[Liquidation] = deque(maxlen=50_000)
        self._event_seq = 0  # sequence number of the next event
        self._emitted: list[Liquidation] = []
        self._ticker_cache: TickerTable | None = None
        self.liquidations_total = 0
        self.liquidated_usd = 0.0
        self.history_start = 0
        # highest / lowest trade of each coin since the last take_range() (the exchange's fills)
        self.range_high = np.zeros(n)
        self.range_low = np.full(n, np.inf)

        self._build_history(cancel)

    # --- building ------------------------------------------------------------------------------
    def _build_history(self, cancel: Callable[[], bool] | None) -> None:
        cfg = self.config
        fine_days = min(cfg.history_days, cfg.ring_days)
        fine_start = (self.start - int(fine_days * DAY)) // COARSE_S * COARSE_S
        self.history_start = fine_start
        self._generate_deep(fine_start - DEEP_DAYS * DAY, fine_start)
        self.now = fine_start
        self.last_price = self._round(np.exp(self.price.logp))
        self.prev_tick = self.last_price.copy()
        self.ema_1h = self.price.logp.copy()
        self.ema_8h = self.price.logp.copy()
        self.block = _Block(start=fine_start, end=fine_start)
        steps = (self.start - fine_start) // cfg.history_block_s
        # the opening hunts start building at a history block this far before the live start
        plant_step = (self.start - OPENING_BUILD_S - fine_start) // cfg.history_block_s
        done = 0
        while done < steps:
            chunk = min(steps - done, 12)
            if done < plant_step < done + chunk:
                chunk = plant_step - done
            self._run_to(fine_start + (done + chunk) * cfg.history_block_s)
            done += chunk
            if done == plant_step:
                self._plant_opening()
            if cancel is not None and cancel():
                raise BuildCancelled
        self._step_s, self._block_s = cfg.step_s, cfg.block_s
        self._run_to(self.start)
        self._emitted.clear()
        self._events.clear()
        self._record = True
        self.range_high = self.last_price.copy()
        self.range_low = self.last_price.copy()

    def _generate_deep(self, deep_start: int, fine_start: int) -> None:
        """A year of 4-h candles and funding, and the positions of that year still open."""
        rng = np.random.default_rng([self.config.seed, 2])
        past = generate_past(
            rng,
            PastInputs(
                log_mean=self.price.log_mean,
                daily_vol=self.daily_vol,
                tick=self.tick,
                turnover_per_s=self.turnover_per_s,
                oi_usd=self.oi_target,
                funding_cap=self.funding_cap,
                start=deep_start,
                end=fine_start,
            ),
        )
        first_bucket = deep_start // COARSE_S
        for k in range(past.steps):
            self.coarse.write(first_bucket + k, past.candles[:, :, k])
        for t, rates in past.funding:
            self.funding.write(t // FUNDING_S, rates)
        self.price.set_price(past.log_close)
        self.oi_noise = past.oi_noise
        for coins, levels in surviving_levels(
            rng,
            past,
            inflow_per_s=self.inflow_per_s,
            tier_weights=self.tier_weights,
            until=fine_start,
            now=self.start,
        ):
            for k, c in enumerate(range(coins.start, coins.stop)):
                self.book.seed(c, *levels[k])

    # --- advancing ------------------------------------------------------------------------------
    def advance(self, seconds: int) -> list[Liquidation]:
        """Move the market `seconds` forward; returns the liquidations that happened."""
        return self.advance_to(self.now + int(seconds))

    def advance_to(self, t: int) -> list[Liquidation]:
        self._emitted = []
        self._run_to(int(t))
        out, self._emitted = self._emitted, []
        return out

    def _run_to(self, target: int) -> None:
        while self.now < target:
            if self.now >= self.block.end:
                self._start_block()
            b = self.block
            seg_end = min(target, b.end)
            seg_end = b.start + (seg_end - b.start) // b.step * b.step
            if seg_end <= self.now:
                break  # less than one step to go
            self._apply(self.now, seg_end)
            self.now = seg_end
            self._ticker_cache = None

    def _start_block(self) -> None:
        t, bs, dt = self.now, self._block_s, self._step_s
        if self._last_decay is None:
            self._last_decay = t
        elif t - self._last_decay >= 60:
            self.book.decay(t - self._last_decay)
            self._last_decay = t
        if t % FUNDING_S == 0:
            self.funding.write(t // FUNDING_S, self.funding_rate)
        self.price.switch_regimes(bs)
        long_total, short_total = self.book.long_total, self.book.short_total
        self.oi_usd = self._open_interest(long_total, short_total)
        effect = self.whales.step(
            t, bs, self.price.logp, self.oi_usd, self._find_target, self._appetite()
        )
        self.whale_notional = effect.notional
        self._open_positions(t, bs, effect.long_flow, effect.short_flow)
        self._update_funding(long_total, short_total, bs)
        drift = effect.drift + self.cascade / bs
        self.cascade[:] = 0.0
        logpath, shock = self.price.path(bs // dt, dt, drift)
        prices = self._round(np.exp(logpath))
        # the whales' own trading comes on top of the market's (whatever its regime)
        regime_volume = REGIME_VOLUME[self.price.regime] + (effect.volume - 1.0)
        noise = np.exp(self.rng.normal(-0.06, 0.35, prices.shape))
        turnover = (self.turnover_per_s * dt * regime_volume)[:, None] * (0.4 + 0.6 * shock) * noise
        reach_up = reach_down = np.zeros((self.n, 0))
        if dt > 1:  # coarse steps miss the extremes between them: drawn per minute of the block
            minutes = -(-bs // 60)
            reach = self.price.sigma_s * REGIME_VOL[self.price.regime] * math.sqrt(dt) * 0.5
            reach_up = np.abs(self.rng.standard_normal((self.n, minutes))) * reach[:, None]
            reach_down = np.abs(self.rng.standard_normal((self.n, minutes))) * reach[:, None]
        carry = self._carry()
        zero = np.zeros((self.n, 1))
        self.block = _Block(
            t,
            t + bs,
            dt,
            prices,
            turnover,
            reach_up,
            reach_down,
            np.concatenate((zero, np.cumsum(turnover, axis=1)), axis=1),
            np.concatenate((zero, np.cumsum(turnover / prices, axis=1)), axis=1),
            carry,
        )
        self.oi_noise += -self.oi_noise * bs / DAY + 0.05 * math.sqrt(
            2 * bs / DAY
        ) * self.rng.standard_normal(self.n)
        alpha1, alpha8 = -math.expm1(-bs / 3600), -math.expm1(-bs / (8 * 3600))
        self.ema_1h += (self.price.logp - self.ema_1h) * alpha1
        self.ema_8h += (self.price.logp - self.ema_8h) * alpha8

    def _carry(self) -> dict[str, F64]:
        """Volume already in the minute and 4-h bucket that continue into the next block."""
        blk, t = self.block, self.now
        carry: dict[str, F64] = {}
        if blk.prices.size == 0:
            return carry
        if t % 60:
            carry["m_quote"], carry["m_base"] = self._bucket_volume(blk, "m", 60, t)
        if t % COARSE_S:
            carry["c_quote"], carry["c_base"] = self._bucket_volume(blk, "c", COARSE_S, t)
        return carry

    def _bucket_volume(self, blk: _Block, kind: str, width: int, t: int) -> tuple[F64, F64]:
        """(quote, base) volume of the `width` bucket containing second t − 1, up to second t."""
        bucket = (t - 1) // width
        j1 = (t - blk.start) // blk.step
        j0 = max(0, (bucket * width - blk.start) // blk.step)
        quote = blk.cum_quote[:, j1] - blk.cum_quote[:, j0]
        base = blk.cum_base[:, j1] - blk.cum_base[:, j0]
        if bucket * width < blk.start and f"{kind}_quote" in blk.carry:
            quote = quote + blk.carry[f"{kind}_quote"]
            base = base + blk.carry[f"{kind}_base"]
        if (kind, bucket) in blk.forced:
            quote = quote + blk.forced[(kind, bucket)]
            base = base + blk.forced[(kind + "b", bucket)]
        return quote, base

    def _open_interest(self, long_total: F64, short_total: F64) -> F64:
        base = (1 - BOOK_SHARE / 2) * self.oi_target * np.exp(self.oi_noise)
        return base + 0.5 * (long_total + short_total) + self.whale_notional

    def _open_positions(self, t: int, seconds: int, long_flow: F64, short_flow: F64) -> None:
        n, tiers = self.n, LEVERAGE_TIERS.size
        hourly = self.daily_vol / math.sqrt(24.0)
        momentum = (self.price.logp - self.ema_1h) / hourly
        share = np.clip(
            0.5 + 0.15 * np.tanh(momentum) + 0.05 * self.rng.standard_normal(n), 0.25, 0.75
        )
        base = (self.inflow_per_s * seconds)[:, None] * self.tier_weights
        noise = np.exp(self.rng.normal(-0.08, 0.4, (n, tiers, 2)))
        longs = base * (share * long_flow)[:, None] * noise[:, :, 0]
        shorts = base * ((1 - share) * short_flow)[:, None] * noise[:, :, 1]
        notional = np.concatenate((longs, shorts), axis=1)
        opened = longs.sum(axis=1) + shorts.sum(axis=1)
        self.opening_long_share = np.where(
            opened > 0, longs.sum(axis=1) / np.where(opened > 0, opened, 1.0), 0.5
        )
        leverage = np.broadcast_to(np.tile(LEVERAGE_TIERS, 2), notional.shape)
        hazard = np.broadcast_to(np.tile(1.0 / TIER_LIFETIME_S, 2), notional.shape)
        side = np.broadcast_to(
            np.repeat(np.array([LONG, SHORT], np.float64), tiers), notional.shape
        )
        self.book.open(float(t), self.last_price, notional, hazard, side, leverage)

    def _update_funding(self, long_total: F64, short_total: F64, seconds: int) -> None:
        imbalance = (long_total - short_total) / np.maximum(long_total + short_total, 1.0)
        premium = self.price.logp - self.ema_8h
        target = 0.0001 + 0.0004 * imbalance + 0.02 * premium
        alpha = -math.expm1(-seconds / 3600)
        rate = self.funding_rate + (target - self.funding_rate) * alpha
        self.funding_rate = np.clip(rate, -self.funding_cap, self.funding_cap)

    def _apply(self, a: int, b: int) -> None:
        """Apply seconds [a, b) of the current block: liquidations, then candles."""
        blk = self.block
        dt = blk.step
        i0, i1 = (a - blk.start) // dt, (b - blk.start) // dt
        prices = blk.prices[:, i0:i1]
        self._liquidate(a, dt, prices)
        for m in range(a // 60, (b - 1) // 60 + 1):
            ta, tb = max(a, m * 60), min(b, m * 60 + 60)
            j0, j1 = (ta - a) // dt, (tb - a) // dt
            p = prices[:, j0:j1]
            if ta == m * 60:
                oi_qty = self.oi_usd / self.last_price
                self.fine.begin(m, self.last_price, oi_qty)
                if ta % RATIO_S == 0:
                    self.ratios.write(ta // RATIO_S, self._account_ratio())
                self._taker_sum += self.taker_buy_shares()  # each minute, as it starts
                self._taker_n += 1
                if (ta + 60) % RATIO_S == 0:  # the 5 minutes' last minute: their average
                    self.taker_shares.write(ta // RATIO_S, self._taker_sum / self._taker_n)
                    self._taker_sum[:] = 0.0
                    self._taker_n = 0
                if ta % COARSE_S == 0:
                    self.coarse.begin(ta // COARSE_S, self.last_price, oi_qty)
            high, low, close = p.max(axis=1), p.min(axis=1), p[:, -1]
            if dt > 1:
                k = m - blk.start // 60
                high = self._round(high * np.exp(blk.reach_up[:, k]))
                low = self._round(low * np.exp(-blk.reach_down[:, k]))
            oi_qty = (self.oi_usd / close).astype(np.float64)
            quote, base = self._bucket_volume(blk, "m", 60, tb)
            self.fine.update(m, high, low, close, base, quote, oi_qty)
            quote, base = self._bucket_volume(blk, "c", COARSE_S, tb)
            self.coarse.update(ta // COARSE_S, high, low, close, base, quote, oi_qty)
            self.prev_tick = np.where(close != self.last_price, self.last_price, self.prev_tick)
            self.last_price = close
            np.maximum(self.range_high, high, out=self.range_high)
            np.minimum(self.range_low, low, out=self.range_low)

    def _liquidate(self, a: int, dt: int, prices: F64) -> None:
        """Liquidate every level the prices reached (forced volume goes to the block's buckets)."""
        forced = self.block.forced
        total = 0.0
        low, high = prices.min(axis=1), prices.max(axis=1)
        candidates = self.book.candidates(low, high)
        book = self.book
        events: list[Liquidation] = []
        for ci in candidates:
            c = int(ci)
            slots = book.hits(c, float(low[c]), float(high[c]))
            if slots.size == 0:
                book.recount(c)  # the bounds were stale
                continue
            lp = book.price[c, slots]
            side = book.side[c, slots]
            value = book.value[c, slots]
            row = prices[c]
            crossed = np.where(
                side[:, None] > 0, row[None, :] <= lp[:, None], row[None, :] >= lp[:, None]
            )
            step = crossed.argmax(axis=1)
            ms = (a + step * dt) * 1000 + (slots * 7919) % (dt * 1000)
            coin = self.coins[c]
            for k in np.argsort(ms, kind="stable") if self._record else ():
                qty = round(float(value[k] / lp[k]) / coin.qty_step) * coin.qty_step
                if qty <= 0:
                    continue
                events.append(
                    Liquidation(
                        time_ms=int(ms[k]),
                        coin=c,
                        symbol=coin.symbol,
                        side="long" if side[k] > 0 else "short",
                        price=float(lp[k]),
                        qty=qty,
                        value_usd=float(value[k]),
                    )
                )
            for k in np.argsort(ms, kind="stable"):  # in time order: sums do not depend on batching
                second = int(ms[k]) // 1000
                for kind, width in (("m", 60), ("c", COARSE_S)):
                    key = second // width
                    forced.setdefault((kind, key), np.zeros(self.n))[c] += value[k]
                    forced.setdefault((kind + "b", key), np.zeros(self.n))[c] += value[k] / lp[k]
                total += float(value[k])
            longs = float(value[side > 0].sum())
            shorts = float(value[side < 0].sum())
            impact = -CASCADE_IMPACT * (longs - shorts) / max(float(self.oi_usd[c]), 1.0)
            self.cascade[c] = np.clip(self.cascade[c] + impact, -MAX_CASCADE, MAX_CASCADE)
            book.clear(c, slots)
        if events:
            events.sort(key=lambda e: e.time_ms)
            self._events.extend(events)
            self._emitted.extend(events)
            self._event_seq += len(events)
            self.liquidations_total += len(events)
        self.liquidated_usd += total

    def _account_ratio(self) -> F64:
        """Share of accounts holding a long, as the venue would publish it (4 decimals)."""
        long_total, short_total = self.book.long_total, self.book.short_total
        total = long_total + short_total
        share = np.where(total > 0, long_total / np.where(total > 0, total, 1.0), 0.5)
        return np.asarray(np.round(np.clip(0.5 + RATIO_GAIN * (share - 0.5), 0.01, 0.99), 4))

    def taker_buy_shares(self) -> F64:
        """Per coin, the share of the volume traded now that takers buy (the trade stream's
        split): positions are opened by taking, the rest of the volume is balanced."""
        return np.asarray(0.5 + TAKER_GAIN * (self.opening_long_share - 0.5))

    def taker_buy_share(self, coin: int) -> float:
        return float(self.taker_buy_shares()[coin])

    def taker_history(self, coin: int, start_s: int, end_s: int) -> tuple[I64, F64]:
        """The taker-buy share of each 5 minutes in [start_s, end_s] as the trade stream showed
        it then (what a collector listening since would have summed): (bucket start s, share)."""
        buckets, shares = self.taker_shares.read(coin, start_s // RATIO_S, end_s // RATIO_S)
        return buckets * RATIO_S, shares

    def account_ratio(
        self, coin: int, period_s: int, start_s: int | None, end_s: int | None, limit: int
    ) -> tuple[I64, F64, bool]:
        """Share of accounts long at period boundaries, newest first, as far back as the
        1-minute history goes; the flag says more are older."""
        ring = self.ratios
        if ring.first < 0:
            return np.empty(0, np.int64), np.empty(0), False
        last = (min(end_s, self.now) if end_s is not None else self.now) // period_s * period_s
        oldest = -(-ring.first * RATIO_S // period_s) * period_s
        if start_s is not None:
            oldest = max(oldest, -(-start_s // period_s) * period_s)
        last = min(last, ring.last * RATIO_S // period_s * period_s)
        if last < oldest:
            return np.empty(0, np.int64), np.empty(0), False
        count = min(limit, (last - oldest) // period_s + 1)
        times = last - np.arange(count, dtype=np.int64) * period_s
        _, values = ring.read(coin, ring.first, ring.last)
        values = values[(times // RATIO_S) - ring.first]
        return times, values, bool(times[-1] - period_s >= oldest)

    def _round(self, prices: F64) -> F64:
        tick = self.tick if prices.ndim == 1 else self.tick[:, None]
        rounded: F64 = np.maximum(np.round(prices / tick), 1.0) * tick
        return rounded

    # --- whales' view of the book ----------------------------------------------------------------
    def _imbalance(self) -> F64:
        """|shorts − longs| / (shorts + longs) of every coin's book: 0 balanced, 1 one-sided."""
        short, long = self.book.short_total, self.book.long_total
        out: F64 = np.abs(short - long) / np.maximum(short + long, 1.0)
        return out

    def _appetite(self) -> F64:
        """Whales go where the liquidity is: a campaign is likelier on a lopsided book."""
        strength = self._imbalance()
        typical = max(float(np.median(strength)), 1e-6)
        out: F64 = np.clip((strength / typical) ** 2, *APPETITE_RANGE)
        return out

    def bias(self, c: int) -> tuple[int, float]:
        """The side the strategy's imbalance points to on coin c's book, as the ranker weighs
        it (every heatmap timeframe counts the levels it holds): (+1 up / −1 down, the dominant
        share 0.5..1)."""
        lv = self.book.levels(c)
        if lv.size == 0:
            return 1, 0.5
        age = self.now - lv.opened
        held = (age[:, None] <= TF_SECONDS[None, :]).sum(axis=1)  # timeframes holding each level
        price = float(self.last_price[c])
        weight = np.where(np.abs(np.log(lv.price / price)) <= HEATMAP_BAND, lv.value * held, 0.0)
        shorts = float(weight[lv.price > price].sum())
        longs = float(weight[lv.price < price].sum())
        r = shorts / max(shorts + longs, 1.0)
        return (1 if r >= 0.5 else -1), max(r, 1 - r)

    def _find_target(self, c: int, kind: CampaignKind) -> Target | None:
        lv = self.book.levels(c)
        if lv.size == 0:
            return None
        price = float(self.last_price[c])
        vol = float(self.daily_vol[c])
        age = self.now - lv.opened
        sides: tuple[tuple[int, int], ...] = ((1, SHORT), (-1, LONG))
        if kind == "hunt":
            mature = age >= 3 * DAY
            near, far = max(0.015, 0.5 * vol), min(0.15, 2.5 * vol)
            # hunts go for the heavy side of the book, where the strategy's imbalance points
            sides = ((1, SHORT),) if self.bias(c)[0] > 0 else ((-1, LONG),)
        else:
            mature = age < DAY
            near, far = max(0.01, 0.3 * vol), min(0.08, 1.5 * vol)
        best: Target | None = None
        for direction, side in sides:
            dist = direction * (lv.price / price - 1.0)
            sel = mature & (lv.side == side) & (dist >= near) & (dist <= far)
            found = cluster(lv.price[sel], lv.value[sel], age[sel])
            if found is not None and (best is None or found[1] > best.value):
                best = Target(found[0], found[1], direction, found[2])
        if best is not None and kind == "hunt":
            oi_bar, move_bar, volume_bar = self._recent_bars(c)
            best = replace(best, oi_bar=oi_bar, move_bar=move_bar, volume_bar=volume_bar)
        return best

    def _recent_bars(self, c: int) -> tuple[float, float, float]:
        """p95 of coin c's 15-min OI changes and |5-min moves| (fractions) and 5-min volume
        ratios over its last day and its last 4 hours (the higher of the two): what is
        ordinary on this coin. Zeros without an hour of candles."""
        m = self.now // 60 - 1
        close = self.fine.span(CLOSE, m - 1440, m)[c].astype(np.float64)
        if close.size < 61:
            return 0.0, 0.0, 0.0
        oi = self.fine.span(OI, m - 1440, m)[c].astype(np.float64)
        quote = self.fine.span(TURNOVER, m - 1440, m)[c].astype(np.float64)
        cum = np.concatenate(([0.0], np.cumsum(quote)))
        end = np.arange(60, quote.size + 1)
        hour5 = (cum[end] - cum[end - 60]) / 12
        with np.errstate(invalid="ignore", divide="ignore"):
            series = (
                oi[15:] / oi[:-15] - 1,
                np.abs(close[5:] / close[:-5] - 1),
                (cum[end] - cum[end - 5]) / hour5,
            )
        bars = []
        for x in series:
            x = x[np.isfinite(x)]
            bars.append(max(float(np.percentile(x[-240:], 95)), float(np.percentile(x, 95)))
                        if x.size else 0.0)  # fmt: skip
        return bars[0], bars[1], bars[2]

    def appeal(self, c: int) -> float:
        """How much the strategy would like coin c's book, scored by the ranker's own rule
        (quantcore.math.ranking.score: the dominant share and the heavy-side cluster as % of
        the coin's median cluster, no success history); NaN when a hunt has no target there."""
        target = self._find_target(c, "hunt")
        lv = self.book.levels(c)
        if target is None or lv.size == 0:
            return math.nan
        bins = np.floor(np.log(lv.price) / CLUSTER_BIN).astype(np.int64)
        sums = np.bincount(bins - bins.min(), weights=lv.value)
        typical = float(np.median(sums[sums > 0]))
        dominant = self.bias(c)[1]
        size = cluster_size_pct(target.value, max(typical, 1.0))
        return float(ranker_score(dominant, size, 0.0))

    def plant_hunt(self, coin: int, push_in_s: int) -> Campaign | None:
        """A hunt on `coin` that builds open interest from now and pushes in `push_in_s`
        seconds (a scenario; /sim/hunt); a campaign under way there is re-planned into it.
        None when the coin's book has no target."""
        c = int(coin)
        return self.whales.replan(
            c, self.now, float(self.price.logp[c]), float(self.oi_usd[c]), self._find_target,
            self.now + int(push_in_s),
        )  # fmt: skip

    def _plant_opening(self) -> None:
        """Hunts under way when the live market opens: first on the scenario's coins, then on
        the `opening_hunts` coins (not majors) the strategy likes best (a campaign under way
        there is re-planned into the new hunt); pushes staggered from OPENING_PUSH_S around
        the start."""
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, 5])
        push = self.start + int(rng.integers(*OPENING_PUSH_S))
        for c in [self.index[s] for s in cfg.hunt_symbols]:
            if self.plant_hunt(c, push - self.now) is not None:
                push += OPENING_GAP_S
        if not cfg.opening_hunts:
            return
        appeal = np.array([self.appeal(c) for c in range(self.n)])
        planted = 0
        for c in np.argsort(-np.nan_to_num(appeal, nan=-np.inf)):
            if planted == cfg.opening_hunts or not np.isfinite(appeal[c]):
                break
            if self.majors[c]:
                continue
            campaign = self.whales.replan(
                int(c), self.now, float(self.price.logp[c]), float(self.oi_usd[c]),
                self._find_target, push,
            )  # fmt: skip
            if campaign is not None:
                planted += 1
                push += OPENING_GAP_S

    def move_price(self, coin: int, price: float) -> float:
        """Jump one coin's price to `price` now (a test hook: the simulator's /sim/price).

        The rest of the current block and the walk's state shift by the same factor, so the
        market carries on from the new level; the jump counts as traded (take_range).
        Returns the price after rounding to the tick."""
        if not price > 0:
            raise ValueError("price must be positive")
        old = float(self.last_price[coin])
        new = float(np.maximum(np.round(price / self.tick[coin]), 1.0) * self.tick[coin])
        factor = new / old
        blk = self.block
        if blk.prices.size and blk.end > self.now:
            j = (self.now - blk.start) // blk.step
            row = blk.prices[coin, j:] * factor
            blk.prices[coin, j:] = (
                np.maximum(np.round(row / self.tick[coin]), 1.0) * self.tick[coin]
            )
        self.price.logp[coin] += math.log(factor)
        self.prev_tick[coin] = old
        self.last_price[coin] = new
        self.range_high[coin] = max(float(self.range_high[coin]), new)
        self.range_low[coin] = min(float(self.range_low[coin]), new)
        self._ticker_cache = None
        return new

    def take_range(self) -> tuple[F64, F64]:
        """(high, low) of every coin's trades since the last call; starts a new range."""
        high, low = self.range_high, self.range_low
        self.range_high = self.last_price.copy()
        self.range_low = self.last_price.copy()
        return high, np.minimum(low, high)

    # --- queries ------------------------------------------------------------------------------------
    def symbol_index(self, symbol: str) -> int | None:
        return self.index.get(symbol)

    def tickers(self) -> TickerTable:
        if self._ticker_cache is not None:
            return self._ticker_cache
        m = self.now // 60
        if self.now % 60 == 0:
            m -= 1  # the minute starting now has no trade yet
        fine = self.fine
        last = self.last_price
        day_high = fine.span(HIGH, m - 1439, m)
        day_low = fine.span(LOW, m - 1439, m)
        high24 = np.maximum(day_high.max(axis=1), last) if day_high.size else last
        low24 = np.minimum(day_low.min(axis=1), last) if day_low.size else last
        volume24 = fine.span(VOLUME, m - 1439, m).sum(axis=1, dtype=np.float64)
        turnover24 = fine.span(TURNOVER, m - 1439, m).sum(axis=1, dtype=np.float64)
        prev24 = self._close_at(m - 1440)
        prev1h = self._close_at(m - 60)
        index = self._round(last * (1 - 0.5 * self.funding_rate))
        mark = self._round((last + index) / 2)
        table = TickerTable(
            time=self.now,
            last=last.copy(),
            prev_tick=self.prev_tick.copy(),
            mark=mark,
            index=index,
            high24=high24.astype(np.float64),
            low24=low24.astype(np.float64),
            prev24=prev24,
            prev1h=prev1h,
            volume24=volume24,
            turnover24=turnover24,
            oi_qty=self.oi_usd / last,
            oi_usd=self.oi_usd.copy(),
            funding=self.funding_rate.copy(),
            next_funding_s=(self.now // FUNDING_S + 1) * FUNDING_S,
        )
        self._ticker_cache = table
        return table

    def _close_at(self, minute: int) -> F64:
        fine = self.fine
        if minute >= fine.first:
            return fine.column(CLOSE, minute).astype(np.float64)
        return fine.column(OPEN, fine.first).astype(np.float64)

    def klines(
        self, coin: int, interval: str, start_s: int | None, end_s: int | None, limit: int
    ) -> tuple[I64, F64]:
        """Candles oldest first: (start seconds, [FIELDS, n])."""
        ring = kl.ring_for(interval, self.fine, self.coarse)
        return kl.candles(ring, coin, interval, self.now, start_s, end_s, limit)

    def open_interest(
        self, coin: int, interval_s: int, start_s: int | None, end_s: int | None, limit: int
    ) -> tuple[I64, F64, bool]:
        """OI (base qty) at interval boundaries, newest first; the flag says more are older."""
        ring = self.fine if interval_s < COARSE_S else self.coarse
        base = ring.interval_s
        last = (min(end_s, self.now) if end_s is not None else self.now) // interval_s * interval_s
        oldest = -(-(ring.first + 1) * base // interval_s) * interval_s
        if start_s is not None:
            oldest = max(oldest, -(-start_s // interval_s) * interval_s)
        if last < oldest:
            return np.empty(0, np.int64), np.empty(0), False
        count = min(limit, (last - oldest) // interval_s + 1)
        times = last - np.arange(count, dtype=np.int64) * interval_s
        values = ring.value_at(OI, coin, times // base - 1)
        return times, values, bool(times[-1] - interval_s >= oldest)

    def funding_history(
        self, coin: int, start_s: int | None, end_s: int | None, limit: int
    ) -> tuple[I64, F64]:
        """Settled funding rates, newest first: (settlement seconds, rates)."""
        ring = self.funding
        b1 = (min(end_s, self.now) if end_s is not None else self.now) // FUNDING_S
        b0 = -(-start_s // FUNDING_S) if start_s is not None else ring.first
        buckets, rates = ring.read(coin, max(b0, b1 - limit + 1), b1)
        return buckets[::-1] * FUNDING_S, rates[::-1]

    def levels(self, coin: int, timeframe: str = "1y") -> Levels:
        """Current liquidation levels of a coin opened within the timeframe, by price."""
        since = self.now - TIMEFRAME_DURATION[timeframe].total_seconds()
        return self.book.levels(coin, since)

    def heatmap(self, coin: int, timeframe: str, model: str = "model2") -> hm.HeatmapGrid:
        range_s = TIMEFRAME_DURATION[timeframe].total_seconds()
        width, first, count = hm.column_range(timeframe, range_s, self.now)
        starts = (first + np.arange(count, dtype=np.int64)) * width
        candles = self._column_candles(coin, width, starts)
        lv = self.book.levels(coin, self.now - range_s)
        return hm.build(
            price=float(self.last_price[coin]),
            level_price=lv.price,
            level_value=lv.value,
            level_opened=lv.opened,
            candle_starts=starts,
            candles=candles,
            model=model,
        )

    def collector_levels(
        self, coin: int, model: str = "model2", timeframes: tuple[str, ...] = tuple(TIMEFRAMES)
    ) -> tuple[F64, F64]:
        """What the liquidation collector stores for a coin now with HEATMAP_SOURCE=sim: the
        levels of each timeframe's heatmap (its latest column, hm.latest_levels), as
        (timeframes, levels) arrays by price, NaN / 0 padded."""
        return collector_levels_of(
            self.book, coin, float(self.last_price[coin]), self.now,
            self.coins[coin].price_decimals, model, timeframes,
        )  # fmt: skip

    def _column_candles(self, coin: int, width: int, starts: I64) -> F64:
        """OHLCV of each heatmap column, from the finest candles that cover it."""
        count = starts.size
        out = np.zeros((FIELDS, count))
        got = np.zeros(count, bool)
        end = int(starts[-1]) + width - 1
        coarse_width = width if width >= COARSE_S else COARSE_S
        c_starts, c_vals = kl.candles(
            self.coarse, coin, coarse_width, self.now, None, end, count + 1
        )
        if c_starts.size:
            pos = np.searchsorted(c_starts, starts // coarse_width * coarse_width)
            pos = np.clip(pos, 0, c_starts.size - 1)
            hit = c_starts[pos] == starts // coarse_width * coarse_width
            out[:, hit] = c_vals[:, pos[hit]]
            if width < COARSE_S:
                out[VOLUME, hit] *= width / COARSE_S
                out[TURNOVER, hit] *= width / COARSE_S
            got |= hit
        if width < COARSE_S:
            f_starts, f_vals = kl.candles(
                self.fine, coin, width, self.now, int(starts[0]), end, count
            )
            pos = np.searchsorted(starts, f_starts)
            out[:, pos] = f_vals
            got[pos] = True
        if not got.all():  # columns before any data: flat at the first known price
            known = np.nonzero(got)[0]
            fill = out[CLOSE, known[0]] if known.size else float(self.last_price[coin])
            for f in (OPEN, HIGH, LOW, CLOSE):
                out[f, ~got] = fill
        return out

    def liquidations_since(self, seq: int) -> tuple[list[Liquidation], int]:
        """Events after sequence number `seq` (as far as kept) and the next sequence number."""
        first = self._event_seq - len(self._events)
        skip = max(0, seq - first)
        return list(self._events)[skip:], self._event_seq

    @property
    def event_seq(self) -> int:
        return self._event_seq

    def campaigns(self) -> list[Campaign]:
        return list(self.whales.log)

    def memory_bytes(self) -> int:
        arrays = self.fine.nbytes + self.coarse.nbytes + self.funding.nbytes + self.book.nbytes
        arrays += self.ratios.nbytes + self.taker_shares.nbytes
        return int(arrays + self.block.prices.nbytes + self.block.turnover.nbytes)


def cluster(price: F64, value: F64, age: F64) -> tuple[float, float, str] | None:
    """The largest cluster (levels within 0.5 %): (centre, value, youngest timeframe holding it)."""
    if price.size == 0:
        return None
    bins = np.floor(np.log(price) / CLUSTER_BIN).astype(np.int64)
    offset = bins.min()
    sums = np.bincount(bins - offset, weights=value)
    best = int(sums.argmax())
    sel = bins - offset == best
    centre = float((price[sel] * value[sel]).sum() / value[sel].sum())
    mean_age = float((age[sel] * value[sel]).sum() / value[sel].sum())
    timeframe = next(
        (tf for tf in TIMEFRAMES if TIMEFRAME_DURATION[tf].total_seconds() >= mean_age),
        TIMEFRAMES[-1],
    )
    return centre, float(sums[best]), timeframe


def collector_levels_of(
    book: LiquidationBook | BookSnapshot, coin: int, price: float, now: int, decimals: int,
    model: str = "model2", timeframes: tuple[str, ...] = tuple(TIMEFRAMES),
) -> tuple[F64, F64]:  # fmt: skip
    """Market.collector_levels on a book (or a snapshot of it) at `now` and `price`."""
    longest = max(TIMEFRAME_DURATION[tf].total_seconds() for tf in timeframes)
    lv = book.levels(coin, now - longest)
    per_tf = []
    for tf in timeframes:
        sel = lv.opened >= now - TIMEFRAME_DURATION[tf].total_seconds()
        per_tf.append(
            hm.latest_levels(
                price=price,
                level_price=lv.price[sel],
                level_value=lv.value[sel],
                model=model,
                price_decimals=decimals,
            )
        )
    width = max((p.size for p, _ in per_tf), default=0)
    prices = np.full((len(timeframes), width), np.nan)
    values = np.zeros((len(timeframes), width))
    for k, (p, v) in enumerate(per_tf):
        prices[k, : p.size] = p
        values[k, : v.size] = v
    return prices, values
