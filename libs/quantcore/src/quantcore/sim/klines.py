"""Candles of any Bybit interval, aggregated from a ring of base candles (1-min or 4-h)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from quantcore.sim.rings import CLOSE, FIELDS, HIGH, LOW, OI, OPEN, TURNOVER, VOLUME, CandleRing

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

# Bybit kline intervals; "M" is a calendar month.
INTERVAL_MINUTES: dict[str, int] = {
    "1": 1,
    "3": 3,
    "5": 5,
    "15": 15,
    "30": 30,
    "60": 60,
    "120": 120,
    "240": 240,
    "360": 360,
    "720": 720,
    "D": 1440,
    "W": 10080,
    "M": 43200,  # nominal, for sizing a request only
}
WEEK_OFFSET_S = 4 * 86_400  # 1970-01-01 was a Thursday; weeks start on Monday
FINE_MAX_MINUTES = 360  # longer intervals come from the 4-h ring


Interval = str | int  # a Bybit interval, or a width in seconds aligned to the epoch


def group_ids(interval: Interval, starts_s: I64) -> I64:
    """The interval bucket each base candle (by start time, seconds) belongs to."""
    if isinstance(interval, int):
        return starts_s // interval
    if interval == "M":
        return starts_s.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
    if interval == "W":
        return (starts_s - WEEK_OFFSET_S) // 604_800
    return starts_s // (INTERVAL_MINUTES[interval] * 60)


def group_start_s(interval: Interval, gid: I64) -> I64:
    gid = np.asarray(gid, dtype=np.int64)
    if isinstance(interval, int):
        return gid * interval
    if interval == "M":
        return gid.astype("datetime64[M]").astype("datetime64[s]").astype(np.int64)
    if interval == "W":
        return gid * 604_800 + WEEK_OFFSET_S
    return gid * (INTERVAL_MINUTES[interval] * 60)


def aggregate(starts_s: I64, values: F64, interval: Interval) -> tuple[I64, F64]:
    """Group contiguous base candles into interval candles: (start seconds, [FIELDS, g])."""
    if starts_s.size == 0:
        return np.empty(0, np.int64), np.empty((FIELDS, 0))
    gid = group_ids(interval, starts_s)
    first = np.concatenate(([0], np.flatnonzero(np.diff(gid)) + 1))
    last = np.concatenate((first[1:], [gid.size])) - 1
    out = np.empty((FIELDS, first.size))
    out[OPEN] = values[OPEN, first]
    out[HIGH] = np.maximum.reduceat(values[HIGH], first)
    out[LOW] = np.minimum.reduceat(values[LOW], first)
    out[CLOSE] = values[CLOSE, last]
    out[VOLUME] = np.add.reduceat(values[VOLUME], first)
    out[TURNOVER] = np.add.reduceat(values[TURNOVER], first)
    out[OI] = values[OI, last]
    return group_start_s(interval, gid[first]), out


def candles(
    ring: CandleRing,
    coin: int,
    interval: Interval,
    now_s: int,
    start_s: int | None,
    end_s: int | None,
    limit: int,
) -> tuple[I64, F64]:
    """The latest `limit` candles whose start lies in [start_s, end_s], oldest first.

    Candles the ring holds only partly at its old end are left out rather than served
    incomplete; the newest candle may be open (its close is the last price).
    """
    base = ring.interval_s
    end = now_s if end_s is None else min(end_s, now_s)
    end = min(end, (ring.last + 1) * base - 1)  # a bucket that starts right now has no trade yet
    if ring.first < 0 or end < ring.first * base:
        return np.empty(0, np.int64), np.empty((FIELDS, 0))
    gid_end = int(group_ids(interval, np.array([end], np.int64))[0])
    from_s = int(group_start_s(interval, np.array([gid_end - limit + 1]))[0])
    if start_s is not None:
        from_s = max(from_s, start_s)
    upto_s = int(group_start_s(interval, np.array([gid_end + 1]))[0]) - 1
    buckets, values = ring.read(coin, from_s // base, upto_s // base)
    starts, out = aggregate(buckets * base, values, interval)
    if starts.size == 0:
        return starts, out
    complete_from = ring.first * base
    keep = (starts >= complete_from) & (starts <= end)
    if start_s is not None:
        keep &= starts >= start_s
    starts, out = starts[keep], out[:, keep]
    return starts[-limit:], out[:, -limit:]


def ring_for(interval: str, fine: CandleRing, coarse: CandleRing) -> CandleRing:
    return fine if INTERVAL_MINUTES[interval] <= FINE_MAX_MINUTES else coarse
