"""Fast movers and OI/volume spikes, in two modes recorded side by side:

- fixed: the SPEC thresholds (1-min move > 2 %, 5-min > 5 %, 15-min OI change > 3 %, 5-min
  volume > 1.5 × its 1-h average);
- coin_specific: the same measure judged against the coin's own history, as a robust
  z-score (median / MAD of that measure over the lookback): 2 % is noise on one coin and huge
  on another.

Inputs are (coins, minutes) arrays, oldest first, newest last; NaN where a minute is missing.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

F = NDArray[np.float64]
MAD_TO_SIGMA = 1.4826  # MAD × this estimates σ for a normal distribution


@dataclass(frozen=True)
class SpikeThresholds:
    move_1m_pct: float = 2.0
    move_5m_pct: float = 5.0
    oi_15m_pct: float = 3.0
    volume_ratio: float = 1.5
    zscore: float = 4.0  # coin-specific mode


def pct_change(series: ArrayLike, minutes: int) -> F:
    """Percent change over the last `minutes` for every coin: (last / value minutes ago − 1) × 100."""
    x = np.asarray(series, dtype=np.float64)
    if x.shape[-1] <= minutes:
        return np.full(x.shape[:-1], np.nan)
    now, then = x[..., -1], x[..., -1 - minutes]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(then > 0, (now / then - 1) * 100, np.nan))


def rolling_pct_changes(series: ArrayLike, minutes: int) -> F:
    """All overlapping `minutes`-changes in the window (coins, n − minutes): the coin's history."""
    x = np.asarray(series, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(
            np.where(
                x[..., :-minutes] > 0, (x[..., minutes:] / x[..., :-minutes] - 1) * 100, np.nan
            )
        )


VOLUME_MINUTES = 5
HOUR_MINUTES = 60


def volume_windows(volume_1m: ArrayLike) -> tuple[F, F]:
    """(volume of the last 5 minutes, average 5-minute volume of the last hour)."""
    v = np.asarray(volume_1m, dtype=np.float64)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN hour: NaN, no noise
        last5 = np.nansum(v[..., -VOLUME_MINUTES:], axis=-1)
        hour = np.nanmean(v[..., -HOUR_MINUTES:], axis=-1) * VOLUME_MINUTES
    return np.asarray(last5), np.asarray(hour)


def volume_ratio(volume_1m: ArrayLike) -> F:
    """Last 5 minutes' volume vs the average 5 minutes of the last hour."""
    last5, hour = volume_windows(volume_1m)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(hour > 0, last5 / hour, np.nan))


def volume_ratio_history(volume_1m: ArrayLike) -> F:
    """The coin's own history of 5-min volume ratios, the same measure as `volume_ratio` taken
    at every minute that has an hour behind it (the last 5 minutes' volume over the average
    5 minutes of the last hour), shape (coins, n − 59); NaN where the hour has no volume.
    The spike scanner's z-scores and percentiles and the trigger's coin thresholds read it."""
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


def robust_scale(history: ArrayLike) -> tuple[F, F]:
    """(median, 1.4826 × MAD) per coin of history (coins, samples): a robust mean and σ."""
    h = np.asarray(history, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a coin with no history: NaN
        med = np.nanmedian(h, axis=-1)
        mad = np.nanmedian(np.abs(h - med[..., None]), axis=-1) * MAD_TO_SIGMA
    return np.asarray(med), np.asarray(mad)


def robust_z(current: ArrayLike, history: ArrayLike) -> F:
    """(current − median) / (1.4826 × MAD) per coin; history is (coins, samples)."""
    med, mad = robust_scale(history)
    cur = np.asarray(current, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(mad > 0, (cur - med) / np.where(mad > 0, mad, 1.0), np.nan))


def z_threshold(history: ArrayLike, z: float, sign: ArrayLike = 1.0) -> F:
    """The measure at which the coin's robust z-score reaches ±z (sign picks the side): the
    coin-specific mode's threshold expressed in the measure's own unit."""
    med, mad = robust_scale(history)
    return np.asarray(med + np.sign(np.asarray(sign, dtype=np.float64)) * z * mad)


def percent_rank(current: ArrayLike, history: ArrayLike) -> F:
    """Share (percent, 0..100) of the coin's history strictly below `current`; NaN without history."""
    h = np.asarray(history, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)[..., None]
    valid = np.isfinite(h)
    n = valid.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        below = (valid & (h < cur)).sum(axis=-1)
        out = np.where((n > 0) & np.isfinite(cur[..., 0]), below / np.maximum(n, 1) * 100.0, np.nan)
    return np.asarray(out, dtype=np.float64)


def percentiles(history: ArrayLike, q: ArrayLike) -> F:
    """Percentiles q (0..100) of each coin's history, shape (coins, len(q)); NaN where a coin
    has no known sample. The one percentile rule behind coin thresholds. Rows without a gap go
    in one vectorised pass (nanpercentile goes row by row when any NaN is present; on a row
    without NaN both give the same number)."""
    h = np.asarray(history, dtype=np.float64)
    qs = np.atleast_1d(np.asarray(q, dtype=np.float64))
    rows = h.reshape(-1, h.shape[-1]) if h.ndim else h.reshape(1, 1)
    out = np.full((rows.shape[0], qs.size), np.nan)
    if rows.shape[-1]:
        finite = np.isfinite(rows)
        full = finite.all(axis=-1)
        if full.any():
            out[full] = np.moveaxis(np.percentile(rows[full], qs, axis=-1), 0, -1)
        gaps = ~full & finite.any(axis=-1)
        if gaps.any():
            out[gaps] = np.moveaxis(np.nanpercentile(rows[gaps], qs, axis=-1), 0, -1)
    return out.reshape((*h.shape[:-1], qs.size))


def abs_percentiles(history: ArrayLike, q: ArrayLike) -> F:
    """Percentiles q (0..100) of |history| per coin, shape (coins, len(q)): coin thresholds."""
    return percentiles(np.abs(np.asarray(history, dtype=np.float64)), q)


@dataclass(frozen=True)
class MoverFlags:
    """Per coin. `*_1m`/`*_5m` flags say which window crossed in each mode; thresholds of the
    coin-specific mode are expressed in percent (the move at which |z| reaches the bar, on the
    side of the current move); percentiles rank |move| in the coin's own |history| (0..100)."""

    move_1m_pct: F
    move_5m_pct: F
    fixed: NDArray[np.bool_]
    z_1m: F
    z_5m: F
    coin_specific: NDArray[np.bool_]
    fixed_1m: NDArray[np.bool_]
    fixed_5m: NDArray[np.bool_]
    specific_1m: NDArray[np.bool_]
    specific_5m: NDArray[np.bool_]
    specific_threshold_1m_pct: F
    specific_threshold_5m_pct: F
    percentile_1m: F
    percentile_5m: F


def move_history(close_1m: ArrayLike, minutes: int) -> F:
    """The coin's own history of `minutes`-changes in the window, the current one excluded."""
    return rolling_pct_changes(close_1m, minutes)[..., :-1]


def fast_movers(close_1m: ArrayLike, t: SpikeThresholds = SpikeThresholds()) -> MoverFlags:
    """Price movers from per-minute closes (the lookback window is the history)."""
    m1, m5 = pct_change(close_1m, 1), pct_change(close_1m, 5)
    hist1, hist5 = move_history(close_1m, 1), move_history(close_1m, 5)
    z1, z5 = robust_z(m1, hist1), robust_z(m5, hist5)
    with np.errstate(invalid="ignore"):
        fixed_1m, fixed_5m = np.abs(m1) > t.move_1m_pct, np.abs(m5) > t.move_5m_pct
        spec_1m, spec_5m = np.abs(z1) > t.zscore, np.abs(z5) > t.zscore
    return MoverFlags(
        move_1m_pct=m1, move_5m_pct=m5, fixed=fixed_1m | fixed_5m, z_1m=z1, z_5m=z5,
        coin_specific=spec_1m | spec_5m, fixed_1m=fixed_1m, fixed_5m=fixed_5m,
        specific_1m=spec_1m, specific_5m=spec_5m,
        specific_threshold_1m_pct=z_threshold(hist1, t.zscore, np.where(m1 < 0, -1.0, 1.0)),
        specific_threshold_5m_pct=z_threshold(hist5, t.zscore, np.where(m5 < 0, -1.0, 1.0)),
        percentile_1m=percent_rank(np.abs(m1), np.abs(hist1)),
        percentile_5m=percent_rank(np.abs(m5), np.abs(hist5)),
    )  # fmt: skip


@dataclass(frozen=True)
class SpikeFlags:
    """Per coin, like MoverFlags: which measure crossed in each mode, the coin-specific
    thresholds in the measures' own units, and percentile ranks in the coin's history."""

    oi_15m_pct: F
    vol_ratio: F
    fixed: NDArray[np.bool_]
    z_oi: F
    z_vol: F
    coin_specific: NDArray[np.bool_]
    fixed_oi: NDArray[np.bool_]
    fixed_vol: NDArray[np.bool_]
    specific_oi: NDArray[np.bool_]
    specific_vol: NDArray[np.bool_]
    volume_5m: F
    volume_hour_avg_5m: F
    specific_threshold_oi_pct: F
    specific_threshold_vol: F
    percentile_oi: F
    percentile_vol: F


def oi_volume_spikes(
    open_interest_1m: ArrayLike, volume_1m: ArrayLike, t: SpikeThresholds = SpikeThresholds()
) -> SpikeFlags:
    """OI change over 15 min and the 5-min volume ratio; either crossing its threshold is a spike."""
    oi = np.asarray(open_interest_1m, dtype=np.float64)
    vol = np.asarray(volume_1m, dtype=np.float64)
    oi15 = pct_change(oi, 15)
    last5, hour5 = volume_windows(vol)
    vr = volume_ratio(vol)
    hist_oi = move_history(oi, 15)
    hist_vol = volume_ratio_history(vol)[..., :-1]
    z_oi = robust_z(oi15, hist_oi)
    z_vol = robust_z(vr, hist_vol)
    with np.errstate(invalid="ignore"):
        fixed_oi, fixed_vol = np.abs(oi15) > t.oi_15m_pct, vr > t.volume_ratio
        spec_oi, spec_vol = np.abs(z_oi) > t.zscore, z_vol > t.zscore
    return SpikeFlags(
        oi_15m_pct=oi15, vol_ratio=vr, fixed=fixed_oi | fixed_vol, z_oi=z_oi, z_vol=z_vol,
        coin_specific=spec_oi | spec_vol, fixed_oi=fixed_oi, fixed_vol=fixed_vol,
        specific_oi=spec_oi, specific_vol=spec_vol, volume_5m=last5, volume_hour_avg_5m=hour5,
        specific_threshold_oi_pct=z_threshold(hist_oi, t.zscore, np.where(oi15 < 0, -1.0, 1.0)),
        specific_threshold_vol=z_threshold(hist_vol, t.zscore),
        percentile_oi=percent_rank(np.abs(oi15), np.abs(hist_oi)),
        percentile_vol=percent_rank(vr, hist_vol),
    )  # fmt: skip
