"""One spike scan of many coins: fast movers and OI / volume spikes in both modes (fixed and
coin-specific), the rows they become, and the coins' own percentiles (coin thresholds).

All numbers come from quantcore.math.spikes; this module only arranges them into rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from quantcore.math import spikes
from quantcore.math.spikes import MoverFlags, SpikeFlags, SpikeThresholds
from quantcore.math.values import clean, num
from quantcore.store.series import MinuteSeries
from quantcore.store.spikes import CoinPercentiles

Mode = Literal["fixed", "coin_specific"]
RefreshMode = Literal["fixed", "coin_specific", "both"]
MODES: tuple[Mode, ...] = ("fixed", "coin_specific")
PERCENTILES = (95.0, 99.0)


@dataclass(frozen=True)
class SpikeScan:
    symbols: list[str]
    at: datetime
    thresholds: SpikeThresholds
    candles: MinuteSeries
    oi: MinuteSeries
    movers: MoverFlags
    spikes: SpikeFlags

    def mover(self, mode: Mode) -> NDArray[np.bool_]:
        return self.movers.fixed if mode == "fixed" else self.movers.coin_specific

    def spike(self, mode: Mode) -> NDArray[np.bool_]:
        return self.spikes.fixed if mode == "fixed" else self.spikes.coin_specific

    def flagged(self, mode: Mode) -> NDArray[np.bool_]:
        return self.mover(mode) | self.spike(mode)

    def refresh_candidates(self, refresh: RefreshMode) -> list[str]:
        """Coins whose spike asks for a heatmap refresh under SPIKE_REFRESH_MODE."""
        modes: tuple[Mode, ...] = MODES if refresh == "both" else (refresh,)
        hit = np.zeros(len(self.symbols), dtype=bool)
        for mode in modes:
            hit |= self.flagged(mode)
        return [s for s, h in zip(self.symbols, hit, strict=True) if h]


def scan(candles: MinuteSeries, oi: MinuteSeries, at: datetime, t: SpikeThresholds) -> SpikeScan:
    if candles.symbols != oi.symbols:
        raise ValueError("candle and open-interest series must list the same coins")
    return SpikeScan(
        symbols=candles.symbols, at=at, thresholds=t, candles=candles, oi=oi,
        movers=spikes.fast_movers(candles.series["close"], t),
        spikes=spikes.oi_volume_spikes(oi.series["oi"], candles.series["volume"], t),
    )  # fmt: skip


def _window(fixed_1m: bool, fixed_5m: bool) -> str | None:
    if fixed_1m and fixed_5m:
        return "both"
    return "1m" if fixed_1m else ("5m" if fixed_5m else None)


def _last(series: NDArray[np.float64], i: int, n: int) -> list[Any]:
    return list(clean(series[i, -n:]))


def mover_rows(
    s: SpikeScan, refreshed: set[tuple[str, Mode]], scanner: str, version: str
) -> list[tuple[Any, ...]]:
    """fast_price_movers rows: one per coin and mode that flagged it as a fast mover."""
    m, t = s.movers, s.thresholds
    close = s.candles.series["close"]
    rows: list[tuple[Any, ...]] = []
    for i, symbol in enumerate(s.symbols):
        for mode in MODES:
            if not s.mover(mode)[i]:
                continue
            if mode == "fixed":
                w1, w5 = bool(m.fixed_1m[i]), bool(m.fixed_5m[i])
                thr1, thr5 = t.move_1m_pct, t.move_5m_pct
            else:
                w1, w5 = bool(m.specific_1m[i]), bool(m.specific_5m[i])
                thr1 = abs(num(m.specific_threshold_1m_pct[i]) or 0.0)
                thr5 = abs(num(m.specific_threshold_5m_pct[i]) or 0.0)
            move = m.move_5m_pct[i] if w5 else m.move_1m_pct[i]
            inputs = {
                "window_start": s.candles.start_time, "window_end": s.candles.end_time,
                "closes_last6": _last(close, i, 6),
                "samples": int(np.isfinite(close[i]).sum()),
                "fixed": {"flag": m.fixed[i], "w1m": m.fixed_1m[i], "w5m": m.fixed_5m[i],
                          "threshold_1m_pct": t.move_1m_pct, "threshold_5m_pct": t.move_5m_pct},
                "coin_specific": {"flag": m.coin_specific[i], "w1m": m.specific_1m[i],
                                  "w5m": m.specific_5m[i], "zscore": t.zscore,
                                  "threshold_1m_pct": m.specific_threshold_1m_pct[i],
                                  "threshold_5m_pct": m.specific_threshold_5m_pct[i]},
            }  # fmt: skip
            rows.append((
                s.at, symbol, mode, "up" if move > 0 else "down", num(close[i, -1]),
                num(m.move_1m_pct[i]), num(m.move_5m_pct[i]), num(thr1), num(thr5),
                _window(w1, w5), num(m.z_1m[i]), num(m.z_5m[i]), num(m.percentile_1m[i]),
                num(m.percentile_5m[i]), (symbol, mode) in refreshed, scanner, version, clean(inputs),
            ))  # fmt: skip
    return rows


def spike_rows(
    s: SpikeScan, refreshed: set[tuple[str, Mode]], scanner: str, version: str
) -> list[tuple[Any, ...]]:
    """oi_volume_spikes rows: one per coin and mode that flagged an OI or volume spike."""
    p, t = s.spikes, s.thresholds
    oi = s.oi.series["oi"]
    rows: list[tuple[Any, ...]] = []
    for i, symbol in enumerate(s.symbols):
        for mode in MODES:
            if not s.spike(mode)[i]:
                continue
            if mode == "fixed":
                is_oi, is_vol = bool(p.fixed_oi[i]), bool(p.fixed_vol[i])
                oi_thr, vol_thr = t.oi_15m_pct, t.volume_ratio
            else:
                is_oi, is_vol = bool(p.specific_oi[i]), bool(p.specific_vol[i])
                oi_thr = abs(num(p.specific_threshold_oi_pct[i]) or 0.0)
                vol_thr = num(p.specific_threshold_vol[i]) or 0.0
            inputs = {
                "window_start": s.oi.start_time, "window_end": s.oi.end_time,
                "oi_now": oi[i, -1], "oi_15m_ago": oi[i, -16] if oi.shape[-1] > 15 else None,
                "oi_samples": int(np.isfinite(oi[i]).sum()),
                "fixed": {"flag": p.fixed[i], "oi": p.fixed_oi[i], "volume": p.fixed_vol[i],
                          "oi_threshold_pct": t.oi_15m_pct, "volume_ratio_threshold": t.volume_ratio},
                "coin_specific": {"flag": p.coin_specific[i], "oi": p.specific_oi[i],
                                  "volume": p.specific_vol[i], "zscore": t.zscore,
                                  "oi_threshold_pct": p.specific_threshold_oi_pct[i],
                                  "volume_ratio_threshold": p.specific_threshold_vol[i]},
            }  # fmt: skip
            rows.append((
                s.at, symbol, mode, num(p.oi_15m_pct[i]), num(p.volume_5m[i]),
                num(p.volume_hour_avg_5m[i]), num(p.vol_ratio[i]), num(s.movers.move_5m_pct[i]),
                num(oi_thr), num(vol_thr), num(p.z_oi[i]), num(p.z_vol[i]),
                num(p.percentile_oi[i]), num(p.percentile_vol[i]), is_oi, is_vol,
                (symbol, mode) in refreshed, scanner, version, clean(inputs),
            ))  # fmt: skip
    return rows


def coin_percentiles(s: SpikeScan) -> list[CoinPercentiles]:
    close, oi = s.candles.series["close"], s.oi.series["oi"]
    hist = {
        "price_move_1m": spikes.move_history(close, 1),
        "price_move_5m": spikes.move_history(close, 5),
        "oi_change_15m": spikes.move_history(oi, 15),
        "volume_ratio_5m": spikes.volume_ratio_history(s.candles.series["volume"])[..., :-1],
    }
    pct = {name: spikes.abs_percentiles(h, PERCENTILES) for name, h in hist.items()}
    centre = {name: spikes.robust_scale(h) for name, h in hist.items()}
    samples = np.isfinite(hist["price_move_1m"]).sum(axis=-1)
    out: list[CoinPercentiles] = []
    for i, symbol in enumerate(s.symbols):
        if samples[i] == 0:
            continue
        values = {
            f"{name}_p{int(q)}": num(pct[name][i, k])
            for name in hist
            for k, q in enumerate(PERCENTILES)
        }
        stats = {
            name: {"median": num(centre[name][0][i]), "sigma": num(centre[name][1][i])}
            for name in hist
        }
        out.append(CoinPercentiles(symbol, values, int(samples[i]), stats))
    return out
