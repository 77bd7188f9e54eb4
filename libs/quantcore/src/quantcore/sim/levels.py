"""Simulated leveraged positions, aggregated into liquidation levels.

A level is a slot: (side, price bucket, open time) with the remaining notional (USD) of the
positions that liquidate there. Buckets are log-spaced (BUCKET_WIDTH of price), so a level's
price never changes and heatmaps line up over time. Each coin has a fixed number of slots:
positions opened in the same hour and bucket merge into one slot; when a coin runs out of
slots, older slots merge by timeframe class, and the smallest are dropped (closed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from quantcore.model.market import TIMEFRAME_DURATION, TIMEFRAMES
from quantcore.sim.universe import FIRST_TIER_MMR

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

# A few low-leverage holders keep positions for months: they are what the long timeframes
# (90d to 1y) hold beyond the shorter ones.
LEVERAGE_TIERS = np.array([3.0, 5.0, 10.0, 25.0, 50.0, 100.0])
TIER_WEIGHTS = np.array([0.02, 0.30, 0.29, 0.20, 0.12, 0.07])  # share of new notional per tier
TIER_LIFETIME_S = np.array([120.0, 20.0, 7.0, 2.0, 0.5, 1.0 / 6.0]) * 86_400.0  # mean holding
MMR = FIRST_TIER_MMR  # maintenance margin rate of every position (the first tier's)
BUCKET_WIDTH = 0.0015  # relative width of a price level
LOG_STEP = math.log1p(BUCKET_WIDTH)
LONG, SHORT = 1, -1
MERGE_EPOCH_S = 3600
# Age classes used when slots must merge: the timeframe windows, so a merge never moves value
# between timeframes (apart from the rounding of the merged open time).
AGE_EDGES_S = np.array([TIMEFRAME_DURATION[tf].total_seconds() for tf in TIMEFRAMES])


@dataclass(frozen=True)
class Levels:
    """Levels of one coin, sorted by price."""

    price: F64
    value: F64  # remaining notional, USD
    opened: F64  # value-weighted open time, epoch seconds
    side: NDArray[np.int8]  # +1 long (liquidates below price), −1 short (above)
    bucket: I64

    @property
    def size(self) -> int:
        return int(self.price.size)


def liquidation_price(
    entry: F64 | float, leverage: F64 | float, side: NDArray[np.generic] | int, mmr: float = MMR
) -> F64:
    """Isolated-margin liquidation price: long entry·(1 − 1/lev + mmr), short entry·(1 + 1/lev − mmr)."""
    e = np.asarray(entry, dtype=np.float64)
    lev = np.asarray(leverage, dtype=np.float64)
    s = np.asarray(side)
    return np.where(s > 0, e * (1.0 - 1.0 / lev + mmr), e * (1.0 + 1.0 / lev - mmr))


def bucket_of(price: F64 | float) -> I64:
    return np.floor(np.log(np.asarray(price, dtype=np.float64)) / LOG_STEP).astype(np.int64)


def bucket_price(bucket: I64 | int) -> F64:
    return np.exp((np.asarray(bucket, dtype=np.float64) + 0.5) * LOG_STEP)


def age_class(age_s: F64) -> I64:
    return np.searchsorted(AGE_EDGES_S, age_s, side="right").astype(np.int64)


class LiquidationBook:
    """All coins' liquidation levels in fixed [coins, slots] arrays."""

    def __init__(self, coins: int, slots: int = 1024, merge_span: int = 512) -> None:
        self.coins = coins
        self.slots = slots
        self.span = merge_span
        shape = (coins, slots)
        self.price = np.zeros(shape, np.float64)
        self.value = np.zeros(shape, np.float64)  # remaining notional, USD; 0 = free
        self.opened = np.zeros(shape, np.float64)  # value-weighted open time (epoch s)
        self.hazard = np.zeros(shape, np.float32)  # rate of normal closing (1/s)
        self.bucket = np.zeros(shape, np.int64)
        self.side = np.zeros(shape, np.float64)  # +1 long, −1 short (float: fast row sums)
        self.used = np.zeros(coins, np.int64)  # slots [0, used) may hold levels
        self.merge_idx = np.full((coins, 2, merge_span), -1, np.int64)
        self.merge_anchor = np.zeros(coins, np.int64)
        self.merge_epoch = -1
        # Highest long and lowest short level per coin. They may lag behind closed levels (never
        # ahead of a live one): a stale bound only costs a scan of that coin's row.
        self.long_top = np.full(coins, -np.inf)
        self.short_bottom = np.full(coins, np.inf)
        self.long_total = np.zeros(coins)  # notional per coin and side
        self.short_total = np.zeros(coins)
        self.dropped_usd = 0.0  # value closed because slots ran out
        self.changes = 0  # bumped by everything but a clear (see snapshot)

    @property
    def nbytes(self) -> int:
        arrays = (self.price, self.value, self.opened, self.hazard, self.bucket, self.side)
        return sum(a.nbytes for a in arrays) + self.merge_idx.nbytes

    # --- opening ---------------------------------------------------------------------------
    def open(
        self, now: float, entry: F64, notional: F64, hazard: F64, side: F64, leverage: F64
    ) -> None:
        """Open positions: entry [C]; notional, hazard, side, leverage [C, M] (one per column)."""
        self.changes += 1
        epoch = int(now) // MERGE_EPOCH_S
        if epoch != self.merge_epoch:
            self.merge_epoch = epoch
            self.merge_idx.fill(-1)
            self.merge_anchor = bucket_of(entry) - self.span // 2
        liq = liquidation_price(entry[:, None], leverage, side)
        bucket = bucket_of(liq)
        live = notional > 0
        slot = self._lookup(bucket, side, live)
        need = live & (slot < 0)
        count = need.sum(axis=1)
        full = np.nonzero(self.used + count > self.slots)[0]
        if full.size:
            for c in full:
                self.compact(int(c), now)
            slot = self._lookup(bucket, side, live)
            need = live & (slot < 0)
            count = need.sum(axis=1)
        rows = np.broadcast_to(np.arange(self.coins)[:, None], bucket.shape)
        offsets = np.cumsum(need, axis=1) - 1
        slot = np.where(need, self.used[:, None] + offsets, slot)
        self.used += count
        # New slots start empty at the bucket's price.
        nr, ns = rows[need], slot[need]
        self.price[nr, ns] = bucket_price(bucket[need])
        self.bucket[nr, ns] = bucket[need]
        self.side[nr, ns] = side[need]
        self.value[nr, ns] = 0.0
        self.opened[nr, ns] = now
        self.hazard[nr, ns] = 0.0
        local = bucket - self.merge_anchor[:, None]
        inside = need & (local >= 0) & (local < self.span)
        self.merge_idx[rows[inside], (side[inside] < 0).astype(np.int64), local[inside]] = slot[
            inside
        ]
        # Merge the new notional into its slot (value-weighted open time and hazard).
        r, s, v = rows[live], slot[live], notional[live]
        old = self.value[r, s]
        total = old + v
        self.opened[r, s] = (self.opened[r, s] * old + now * v) / total
        self.hazard[r, s] = (self.hazard[r, s] * old + hazard[live] * v) / total
        self.value[r, s] = total
        longs = live & (side > 0)
        shorts = live & (side < 0)
        self.long_total += np.where(longs, notional, 0.0).sum(axis=1)
        self.short_total += np.where(shorts, notional, 0.0).sum(axis=1)
        level = bucket_price(bucket)
        self.long_top = np.maximum(self.long_top, np.where(longs, level, -np.inf).max(axis=1))
        self.short_bottom = np.minimum(
            self.short_bottom, np.where(shorts, level, np.inf).min(axis=1)
        )

    def _lookup(self, bucket: I64, side: F64, live: NDArray[np.bool_]) -> I64:
        local = bucket - self.merge_anchor[:, None]
        inside = live & (local >= 0) & (local < self.span)
        slot = np.full(bucket.shape, -1, np.int64)
        rows = np.broadcast_to(np.arange(self.coins)[:, None], bucket.shape)
        slot[inside] = self.merge_idx[
            rows[inside], (side[inside] < 0).astype(np.int64), local[inside]
        ]
        return slot

    def seed(self, coin: int, price: F64, value: F64, opened: F64, hazard: F64, side: F64) -> None:
        """Load pre-aggregated levels of one coin (the synthetic past); keeps the largest."""
        self.changes += 1
        keep = min(price.size, self.slots - self.slots // 4)
        order = np.argsort(-value, kind="stable")[:keep]
        n = order.size
        self.price[coin, :n] = bucket_price(bucket_of(price[order]))
        self.bucket[coin, :n] = bucket_of(price[order])
        self.value[coin, :n] = value[order]
        self.opened[coin, :n] = opened[order]
        self.hazard[coin, :n] = hazard[order]
        self.side[coin, :n] = side[order]
        self.value[coin, n:] = 0.0
        self.used[coin] = n
        self.dropped_usd += float(value.sum() - value[order].sum())
        self.recount(coin)

    # --- closing -------------------------------------------------------------------------------
    def decay(self, seconds: float) -> None:
        """Positions close normally at their hazard rate; tiny remainders free their slot."""
        if seconds <= 0:
            return
        self.changes += 1
        width = int(self.used.max(initial=0))
        if width == 0:
            return
        v = self.value[:, :width]
        v *= np.exp(-self.hazard[:, :width] * np.float32(seconds)).astype(np.float64)
        v[v < 1.0] = 0.0
        both = v.sum(axis=1)
        net = np.einsum("ij,ij->i", v, self.side[:, :width])
        self.long_total = (both + net) / 2
        self.short_total = (both - net) / 2

    def candidates(self, low: F64, high: F64) -> I64:
        """Coins where the price range [low, high] reached at least one level."""
        return np.nonzero((low <= self.long_top) | (high >= self.short_bottom))[0]

    def hits(self, coin: int, low: float, high: float) -> I64:
        n = int(self.used[coin])
        p = self.price[coin, :n]
        s = self.side[coin, :n]
        hit = (self.value[coin, :n] > 0) & (((s > 0) & (p >= low)) | ((s < 0) & (p <= high)))
        return np.nonzero(hit)[0]

    def clear(self, coin: int, slots: I64) -> None:
        self.value[coin, slots] = 0.0
        self.recount(coin)

    def recount(self, coin: int) -> None:
        """Exact bounds and totals of one coin."""
        n = int(self.used[coin])
        value = self.value[coin, :n]
        side = self.side[coin, :n]
        price = self.price[coin, :n]
        longs = (value > 0) & (side > 0)
        shorts = (value > 0) & (side < 0)
        self.long_top[coin] = price[longs].max() if longs.any() else -np.inf
        self.short_bottom[coin] = price[shorts].min() if shorts.any() else np.inf
        self.long_total[coin] = value[longs].sum()
        self.short_total[coin] = value[shorts].sum()

    # --- housekeeping ----------------------------------------------------------------------------
    def compact(self, coin: int, now: float) -> None:
        """Free a coin's slots: pack, merge by (side, bucket, age class), drop the smallest."""
        self.changes += 1
        n = int(self.used[coin])
        live = np.nonzero(self.value[coin, :n] > 0)[0]
        price = self.price[coin, live]
        value = self.value[coin, live]
        opened = self.opened[coin, live]
        hazard = self.hazard[coin, live].astype(np.float64)
        bucket = self.bucket[coin, live]
        side = self.side[coin, live]
        target = self.slots - self.slots // 4
        if live.size > target:
            cls = age_class(now - opened)
            key = (bucket - bucket.min()) * 2 * 16 + (side > 0) * 16 + cls
            uniq, inv = np.unique(key, return_inverse=True)
            value_sum = np.bincount(inv, weights=value, minlength=uniq.size)
            opened = np.bincount(inv, weights=opened * value, minlength=uniq.size) / value_sum
            hazard = np.bincount(inv, weights=hazard * value, minlength=uniq.size) / value_sum
            first = np.zeros(uniq.size, np.int64)
            first[inv[::-1]] = np.arange(inv.size)[::-1]
            price, bucket, side, value = price[first], bucket[first], side[first], value_sum
        if value.size > target:
            order = np.argsort(-value, kind="stable")
            self.dropped_usd += float(value[order[target:]].sum())
            order = order[:target]
            price, bucket, side = price[order], bucket[order], side[order]
            value, opened, hazard = value[order], opened[order], hazard[order]
        k = value.size
        self.price[coin, :k] = price
        self.value[coin, :k] = value
        self.opened[coin, :k] = opened
        self.hazard[coin, :k] = hazard
        self.bucket[coin, :k] = bucket
        self.side[coin, :k] = side
        self.value[coin, k:] = 0.0
        self.used[coin] = k
        self._reindex(coin)
        self.recount(coin)

    def _reindex(self, coin: int) -> None:
        """Point the current hour's merge index at this coin's slots again after a compaction."""
        self.merge_idx[coin].fill(-1)
        n = int(self.used[coin])
        epoch_start = self.merge_epoch * MERGE_EPOCH_S
        fresh = np.nonzero((self.value[coin, :n] > 0) & (self.opened[coin, :n] >= epoch_start))[0]
        local = self.bucket[coin, fresh] - self.merge_anchor[coin]
        ok = (local >= 0) & (local < self.span)
        sides = (self.side[coin, fresh[ok]] < 0).astype(np.int64)
        self.merge_idx[coin, sides, local[ok]] = fresh[ok]

    # --- queries -----------------------------------------------------------------------------------
    def levels(self, coin: int, since: float | None = None) -> Levels:
        """Active levels of one coin (opened at or after `since`), sorted by price."""
        n = int(self.used[coin])
        return levels_of(
            self.price[coin, :n], self.value[coin, :n], self.opened[coin, :n],
            self.side[coin, :n], self.bucket[coin, :n], since,
        )  # fmt: skip

    def snapshot(self, fixed: BookSnapshot | None = None) -> BookSnapshot:
        """A copy of the book now. Between two `open` / `decay` calls only values change (a
        liquidation clears a slot), so a snapshot taken since then (`fixed`) lends its other
        arrays and only the values are copied."""
        width = int(self.used.max(initial=0))
        if fixed is not None and fixed.epoch == self.changes:
            return replace(fixed, value=self.value[:, :width].copy())
        return BookSnapshot(
            price=self.price[:, :width].copy(), value=self.value[:, :width].copy(),
            opened=self.opened[:, :width].copy(), side=self.side[:, :width].copy(),
            bucket=self.bucket[:, :width].copy(), used=self.used.copy(), epoch=self.changes,
        )  # fmt: skip


def levels_of(
    price: F64, value: F64, opened: F64, side: F64, bucket: I64, since: float | None
) -> Levels:
    """The active levels among one coin's slots (opened at or after `since`), by price."""
    mask = value > 0
    if since is not None:
        mask &= opened >= since
    idx = np.nonzero(mask)[0]
    idx = idx[np.argsort(price[idx], kind="stable")]
    return Levels(
        price=price[idx], value=value[idx], opened=opened[idx],
        side=side[idx].astype(np.int8), bucket=bucket[idx],
    )  # fmt: skip


@dataclass(frozen=True)
class BookSnapshot:
    """A LiquidationBook's slots at one moment (read like the book)."""

    price: F64
    value: F64
    opened: F64
    side: F64
    bucket: I64
    used: I64
    epoch: int  # the book's change counter when price/opened/side/bucket were copied

    def levels(self, coin: int, since: float | None = None) -> Levels:
        n = min(int(self.used[coin]), self.value.shape[1])
        return levels_of(
            self.price[coin, :n], self.value[coin, :n], self.opened[coin, :n],
            self.side[coin, :n], self.bucket[coin, :n], since,
        )  # fmt: skip
