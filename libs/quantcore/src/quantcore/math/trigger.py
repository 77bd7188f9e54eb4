"""The ranker's trade trigger (SPEC §4) in two modes, judged side by side:

- fixed: OI up > 3 % in 15 min AND 5-min volume > 1.5 × its 1-h average AND price moved
  > 1 % in 5 min in the bias direction (the SPEC numbers, settings);
- coin: each threshold is a percentile of the coin's own history of that measure (its 15-min
  OI changes, its 5-min volume ratios, its |5-min moves|), never below the fixed number: a
  2 % move that is noise on a wild coin does not fire there, and no coin fires on less than
  the SPEC asks. A coin with too little history is judged on the fixed numbers.

Inputs are (coins, minutes) arrays, oldest first, newest last; NaN where a minute is missing.
The current value of each measure is the newest column's; the history is every earlier one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from quantcore.math.spikes import move_history, pct_change, volume_ratio

F = NDArray[np.float64]
TriggerMode = Literal["coin", "fixed"]
OI_MINUTES = 15
MOVE_MINUTES = 5
VOLUME_MINUTES = 5
HOUR_MINUTES = 60


@dataclass(frozen=True)
class Thresholds:
    """Per coin (arrays of shape (coins,)): OI growth %, volume ratio, |move| %."""

    oi_pct: F
    volume_ratio: F
    move_pct: F


@dataclass(frozen=True)
class TriggerEvaluation:
    """Both modes' thresholds and verdicts for every coin, and what the coin mode rested on."""

    oi_15m_pct: F  # current measures (NaN where unknown)
    volume_ratio_5m: F
    move_5m_pct: F
    fixed: Thresholds
    coin: Thresholds
    samples: NDArray[np.int64]  # (coins, 3): history samples behind oi, volume, move
    percentile: float
    min_samples: int

    def fires(
        self, mode: TriggerMode, direction: NDArray[np.str_] | list[str]
    ) -> NDArray[np.bool_]:
        t = self.coin if mode == "coin" else self.fixed
        return fires(self.oi_15m_pct, self.volume_ratio_5m, self.move_5m_pct, direction, t)


def rolling_volume_ratio(volume_1m: ArrayLike) -> F:
    """The 5-min volume ratio at every minute that has an hour behind it: the last 5 minutes'
    volume over the average 5 minutes of the last hour (quantcore.math.spikes.volume_ratio at
    each minute), shape (coins, n − 59); NaN where the hour has no volume."""
    v = np.asarray(volume_1m, dtype=np.float64)
    n = v.shape[-1]
    if n < HOUR_MINUTES:
        return np.empty((*v.shape[:-1], 0))
    known = np.isfinite(v)
    zero = np.zeros((*v.shape[:-1], 1))
    cum = np.concatenate((zero, np.cumsum(np.where(known, v, 0.0), axis=-1)), axis=-1)
    cnt = np.concatenate((zero, np.cumsum(known, axis=-1)), axis=-1)
    end = np.arange(HOUR_MINUTES, n + 1)
    last5 = cum[..., end] - cum[..., end - VOLUME_MINUTES]
    hour_sum = cum[..., end] - cum[..., end - HOUR_MINUTES]
    hour_n = cnt[..., end] - cnt[..., end - HOUR_MINUTES]
    with np.errstate(invalid="ignore", divide="ignore"):
        hour5 = np.where(hour_n > 0, hour_sum / np.maximum(hour_n, 1) * VOLUME_MINUTES, np.nan)
        return np.asarray(np.where(hour5 > 0, last5 / hour5, np.nan))


def _percentile(history: F, q: float, min_samples: int) -> tuple[F, NDArray[np.int64]]:
    """Percentile q of each coin's history (NaN below min_samples) and the sample counts."""
    finite = np.isfinite(history)
    samples = finite.sum(axis=-1).astype(np.int64)
    if history.shape[-1] == 0:
        return np.full(history.shape[:-1], np.nan), samples
    # rows without a gap in one vectorised pass (nanpercentile goes row by row in Python when
    # any NaN is present; on a row without NaN both give the same number)
    value = np.full(history.shape[:-1], np.nan)
    full = finite.all(axis=-1)
    if full.any():
        value[full] = np.percentile(history[full], q, axis=-1)
    gaps = ~full & (samples > 0)
    if gaps.any():
        value[gaps] = np.nanpercentile(history[gaps], q, axis=-1)
    return np.asarray(np.where(samples >= min_samples, value, np.nan)), samples


def coin_thresholds(
    open_interest_1m: ArrayLike,
    volume_1m: ArrayLike,
    close_1m: ArrayLike,
    floors: tuple[float, float, float],
    percentile: float = 95.0,
    min_samples: int = 60,
) -> tuple[Thresholds, NDArray[np.int64]]:
    """The coin mode's thresholds: percentile `percentile` of the coin's own 15-min OI changes,
    5-min volume ratios and |5-min moves| (the current minute excluded), each at least its
    floor (oi %, volume ratio, move %); the floor alone where fewer than `min_samples`
    samples are known. Also returns the sample counts (coins, 3)."""
    oi_floor, vol_floor, move_floor = floors
    oi = np.asarray(open_interest_1m, dtype=np.float64)
    close = np.asarray(close_1m, dtype=np.float64)
    oi_hist = move_history(oi, OI_MINUTES) if oi.shape[-1] > OI_MINUTES else oi[..., :0]
    move_hist = (
        np.abs(move_history(close, MOVE_MINUTES))
        if close.shape[-1] > MOVE_MINUTES
        else close[..., :0]
    )
    vol_hist = rolling_volume_ratio(volume_1m)[..., :-1]
    out, counts = [], []
    for hist, floor in ((oi_hist, oi_floor), (vol_hist, vol_floor), (move_hist, move_floor)):
        value, n = _percentile(hist, percentile, min_samples)
        out.append(np.asarray(np.fmax(value, floor)))  # fmax: NaN (no history) → the floor
        counts.append(n)
    return Thresholds(*out), np.stack(counts, axis=-1)


def fires(
    oi_15m_pct: ArrayLike,
    volume_ratio_5m: ArrayLike,
    move_5m_pct: ArrayLike,
    direction: ArrayLike,
    t: Thresholds,
) -> NDArray[np.bool_]:
    """All three measures beyond their thresholds, the move in the bias direction ("long" up,
    "short" down; anything else never fires). An unknown (NaN) measure never fires."""
    oi = np.asarray(oi_15m_pct, dtype=np.float64)
    vr = np.asarray(volume_ratio_5m, dtype=np.float64)
    mv = np.asarray(move_5m_pct, dtype=np.float64)
    d = np.asarray(direction)
    with np.errstate(invalid="ignore"):
        moving = np.where(
            d == "long", mv > t.move_pct, np.where(d == "short", -mv > t.move_pct, False)
        )
        return np.asarray(moving & (oi > t.oi_pct) & (vr > t.volume_ratio), dtype=np.bool_)


def evaluate(
    open_interest_1m: ArrayLike,
    volume_1m: ArrayLike,
    close_1m: ArrayLike,
    floors: tuple[float, float, float],
    percentile: float = 95.0,
    min_samples: int = 60,
) -> TriggerEvaluation:
    """The current measures (as quantcore.math.spikes computes them) and both modes' thresholds."""
    oi = np.asarray(open_interest_1m, dtype=np.float64)
    vol = np.asarray(volume_1m, dtype=np.float64)
    close = np.asarray(close_1m, dtype=np.float64)
    coins = oi.shape[:-1]
    coin, samples = coin_thresholds(oi, vol, close, floors, percentile, min_samples)
    fixed = Thresholds(*(np.full(coins, float(f)) for f in floors))
    return TriggerEvaluation(
        oi_15m_pct=pct_change(oi, OI_MINUTES), volume_ratio_5m=volume_ratio(vol),
        move_5m_pct=pct_change(close, MOVE_MINUTES), fixed=fixed, coin=coin, samples=samples,
        percentile=percentile, min_samples=min_samples,
    )  # fmt: skip
