"""Fixed-size ring buffers of candles for every coin at once: memory stays bounded however long
the market runs.

Bucket `b` (time // interval) lives in slot `b % capacity`. Prices are float32 (exact enough:
fewer than 1e6 ticks per price, rounded to the tick when served); volume, turnover and open
interest are float64, since they are served with more significant digits than float32 holds.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

OPEN, HIGH, LOW, CLOSE, VOLUME, TURNOVER, OI = range(7)
FIELDS = 7
PRICE_FIELDS = 4  # OPEN..CLOSE live in the float32 block, the rest in the float64 block

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


class CandleRing:
    """Candles of one interval for all coins; `first..last` are the buckets held (last may be open)."""

    def __init__(self, coins: int, capacity: int, interval_s: int) -> None:
        if capacity < 1:
            raise ValueError("ring capacity must be positive")
        self.coins = coins
        self.capacity = capacity
        self.interval_s = interval_s
        self.prices = np.zeros((PRICE_FIELDS, coins, capacity), dtype=np.float32)
        self.flows = np.zeros((FIELDS - PRICE_FIELDS, coins, capacity), dtype=np.float64)
        self.first = -1
        self.last = -1

    @property
    def nbytes(self) -> int:
        return int(self.prices.nbytes + self.flows.nbytes)

    def slot(self, bucket: int) -> int:
        return bucket % self.capacity

    def _block(self, field: int) -> tuple[NDArray[np.floating], int]:
        if field < PRICE_FIELDS:
            return self.prices, field
        return self.flows, field - PRICE_FIELDS

    def _advance_to(self, bucket: int) -> None:
        if self.last >= 0 and bucket not in (self.last, self.last + 1):
            raise ValueError(f"ring buckets must be contiguous: {self.last} then {bucket}")
        self.last = bucket
        if self.first < 0:
            self.first = bucket
        self.first = max(self.first, bucket - self.capacity + 1)

    def begin(self, bucket: int, price: F64, oi: F64) -> None:
        """Open bucket `bucket` at `price` (the previous close) for every coin."""
        self._advance_to(bucket)
        s = self.slot(bucket)
        self.prices[:, :, s] = price
        self.flows[VOLUME - PRICE_FIELDS, :, s] = 0.0
        self.flows[TURNOVER - PRICE_FIELDS, :, s] = 0.0
        self.flows[OI - PRICE_FIELDS, :, s] = oi

    def update(
        self, bucket: int, high: F64, low: F64, close: F64, volume: F64, turnover: F64, oi: F64
    ) -> None:
        """Fold new prices into the open bucket; volume and turnover are the bucket's totals so far."""
        if bucket != self.last:
            raise ValueError(f"bucket {bucket} is not the open one ({self.last})")
        s = self.slot(bucket)
        p = self.prices
        np.maximum(p[HIGH, :, s], high, out=p[HIGH, :, s], casting="unsafe")
        np.minimum(p[LOW, :, s], low, out=p[LOW, :, s], casting="unsafe")
        p[CLOSE, :, s] = close
        self.flows[VOLUME - PRICE_FIELDS, :, s] = volume
        self.flows[TURNOVER - PRICE_FIELDS, :, s] = turnover
        self.flows[OI - PRICE_FIELDS, :, s] = oi

    def write(self, bucket: int, values: F64) -> None:
        """Write a whole closed bucket: `values` is [FIELDS, coins]."""
        self._advance_to(bucket)
        s = self.slot(bucket)
        self.prices[:, :, s] = values[:PRICE_FIELDS]
        self.flows[:, :, s] = values[PRICE_FIELDS:]

    def window(self, b0: int, b1: int) -> tuple[int, int]:
        """The held part of buckets [b0, b1] (may be empty: lo > hi)."""
        return max(b0, self.first), min(b1, self.last)

    def read(self, coin: int, b0: int, b1: int) -> tuple[I64, F64]:
        """Buckets [b0, b1] ∩ held for one coin: (bucket numbers, [FIELDS, n] values)."""
        lo, hi = self.window(b0, b1)
        if self.first < 0 or lo > hi:
            return np.empty(0, np.int64), np.empty((FIELDS, 0))
        buckets = np.arange(lo, hi + 1, dtype=np.int64)
        slots = buckets % self.capacity
        out = np.empty((FIELDS, buckets.size))
        out[:PRICE_FIELDS] = self.prices[:, coin, slots]
        out[PRICE_FIELDS:] = self.flows[:, coin, slots]
        return buckets, out

    def column(self, field: int, bucket: int) -> F64:
        """One field of one bucket for every coin."""
        block, row = self._block(field)
        out: F64 = block[row, :, self.slot(bucket)].astype(np.float64)
        return out

    def span(self, field: int, b0: int, b1: int) -> NDArray[np.floating]:
        """[coins, n] of one field over held buckets [b0, b1]."""
        lo, hi = self.window(b0, b1)
        if self.first < 0 or lo > hi:
            return np.empty((self.coins, 0))
        block, row = self._block(field)
        out: NDArray[np.floating] = block[row][:, np.arange(lo, hi + 1) % self.capacity]
        return out

    def value_at(self, field: int, coin: int, buckets: I64) -> F64:
        block, row = self._block(field)
        out: F64 = block[row, coin, buckets % self.capacity].astype(np.float64)
        return out


class RateRing:
    """One value per coin per interval (funding rates, account ratios), same ring rules as
    CandleRing."""

    def __init__(
        self, coins: int, capacity: int, interval_s: int, dtype: type[np.floating] = np.float64
    ) -> None:
        self.coins = coins
        self.capacity = capacity
        self.interval_s = interval_s
        self.data = np.zeros((coins, capacity), dtype=dtype)
        self.first = -1
        self.last = -1

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)

    def write(self, bucket: int, values: F64) -> None:
        if self.last >= 0 and bucket != self.last + 1:
            raise ValueError(f"rate buckets must be contiguous: {self.last} then {bucket}")
        self.last = bucket
        if self.first < 0:
            self.first = bucket
        self.first = max(self.first, bucket - self.capacity + 1)
        self.data[:, bucket % self.capacity] = values

    def read(self, coin: int, b0: int, b1: int) -> tuple[I64, F64]:
        lo, hi = max(b0, self.first), min(b1, self.last)
        if self.first < 0 or lo > hi:
            return np.empty(0, np.int64), np.empty(0)
        buckets = np.arange(lo, hi + 1, dtype=np.int64)
        return buckets, self.data[coin, buckets % self.capacity].astype(np.float64)
