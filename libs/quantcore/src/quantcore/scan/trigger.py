"""The trade trigger of the ranker's watched coins, per coin: both modes (quantcore.math.trigger)
evaluated on the same series, the active one (TRIGGER_MODE) deciding, both recorded on the
signal so they can be compared. Pure: the ranker reads the series, a backtest can call this."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quantcore.config import Settings
from quantcore.math import trigger as tm
from quantcore.math.spikes import HOUR_MINUTES, volume_windows
from quantcore.math.values import clean, num
from quantcore.store.series import MinuteSeries


@dataclass(frozen=True)
class TriggerParams:
    mode: tm.TriggerMode
    oi_pct: float  # the fixed mode's numbers, the coin mode's floors
    volume_ratio: float
    move_pct: float
    percentile: float
    history_minutes: int
    min_samples: int

    @classmethod
    def from_settings(cls, s: Settings) -> TriggerParams:
        return cls(
            mode=s.trigger_mode, oi_pct=s.trigger_oi_pct, volume_ratio=s.trigger_volume_ratio,
            move_pct=s.trigger_move_pct, percentile=s.trigger_percentile,
            history_minutes=s.trigger_history_min, min_samples=s.trigger_min_samples,
        )  # fmt: skip

    @property
    def floors(self) -> tuple[float, float, float]:
        return (self.oi_pct, self.volume_ratio, self.move_pct)

    @property
    def candle_minutes(self) -> int:
        """Candles to read: the history, and at least the hour the volume ratio needs + 1."""
        return max(self.history_minutes, HOUR_MINUTES + 1)

    @property
    def oi_minutes(self) -> int:
        return max(self.history_minutes, tm.OI_MINUTES + 1)


@dataclass(frozen=True)
class TriggerCheck:
    """One coin's trigger: the measures, both modes' thresholds and verdicts."""

    symbol: str
    direction: str
    mode: tm.TriggerMode
    oi_15m_pct: float | None
    volume_ratio_5m: float | None
    price_change_5m_pct: float | None
    fired: dict[str, bool]  # mode → verdict
    thresholds: dict[str, dict[str, float | None]]  # mode → {oi_pct, volume_ratio, move_pct}
    detail: dict[str, Any]

    @property
    def fires(self) -> bool:
        return self.fired[self.mode]

    def inputs(self) -> dict[str, Any]:
        """What the signal records under inputs.trigger: enough to compare the two modes."""
        out: dict[str, Any] = clean({
            "mode": self.mode, "oi_change_15m_pct": self.oi_15m_pct,
            "volume_ratio_5m": self.volume_ratio_5m, "price_change_5m_pct": self.price_change_5m_pct,
            **self.detail,
            "thresholds": self.thresholds[self.mode],
            "modes": {m: {"thresholds": self.thresholds[m], "fires": self.fired[m]}
                      for m in ("fixed", "coin")},
        })  # fmt: skip
        return out


def check(
    candles: MinuteSeries, oi: MinuteSeries, directions: dict[str, str], p: TriggerParams
) -> dict[str, TriggerCheck]:
    """The trigger of every coin in `candles.symbols` (same order in `oi`), in its direction."""
    close, volume, o = candles.series["close"], candles.series["volume"], oi.series["oi"]
    ev = tm.evaluate(o, volume, close, p.floors, p.percentile, p.min_samples)
    dirs = [directions.get(s, "neutral") for s in candles.symbols]
    verdict = {m: ev.fires(m, dirs) for m in ("fixed", "coin")}
    last5, hour5 = volume_windows(volume)
    out: dict[str, TriggerCheck] = {}
    for i, symbol in enumerate(candles.symbols):
        thresholds = {
            name: {"oi_pct": num(t.oi_pct[i]), "volume_ratio": num(t.volume_ratio[i]),
                   "move_pct": num(t.move_pct[i])}
            for name, t in (("fixed", ev.fixed), ("coin", ev.coin))
        }  # fmt: skip
        detail = clean({
            "oi_now": o[i, -1], "oi_15m_ago": o[i, -16] if o.shape[-1] > 15 else None,
            "oi_time": oi.end_time, "close_now": close[i, -1],
            "close_5m_ago": close[i, -6] if close.shape[-1] > 5 else None,
            "candle_time": candles.end_time, "volume_5m": last5[i], "volume_1h_avg_5m": hour5[i],
            "coin_history": {
                "percentile": ev.percentile, "min_samples": ev.min_samples,
                "samples": dict(zip(("oi", "volume", "move"), ev.samples[i].tolist(), strict=True)),
                "since": candles.start_time,
            },
        })  # fmt: skip
        out[symbol] = TriggerCheck(
            symbol=symbol, direction=dirs[i], mode=p.mode, oi_15m_pct=num(ev.oi_15m_pct[i]),
            volume_ratio_5m=num(ev.volume_ratio_5m[i]), price_change_5m_pct=num(ev.move_5m_pct[i]),
            fired={m: bool(v[i]) for m, v in verdict.items()}, thresholds=thresholds, detail=detail,
        )  # fmt: skip
    return out


def params_registry(p: TriggerParams) -> dict[str, Any]:
    out: dict[str, Any] = clean({f"trigger_{k}": v for k, v in p.__dict__.items()})
    return out
