"""The strategy plug-in interface ("bring your own scanner").

A strategy is one file with one class:

    class SmaCross(Strategy[SmaCrossParams]):
        name = "sma_cross"            # how the CLI, the services and the leaderboard call it
        version = "1"                 # bump when the rule changes; signals carry name + version
        params_model = SmaCrossParams # a pydantic model: typed, ranged, defaults = live settings
        needs = frozenset()           # optional inputs it reads: "open_interest", "funding", "heatmap"

        def signals(self, bars: Bars) -> SignalFrame: ...

`signals` sees a whole series of bars and returns, for every bar, the decision taken **at that
bar's close** (+1 enter long, −1 enter short, 0 nothing; optional exit flags and SL/TP
distances). The rule it must keep: the decision at bar i depends on bars 0..i only. The
backtester enforces it by test (plant data after t, no decision at ≤ t may change) and fills
a decision at the **next** bar's open. Live, `decide(bars)` runs the same `signals` on the
recent window and keeps the last bar's decision as a typed `Signal`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

F = NDArray[np.float64]
I64 = NDArray[np.int64]
I8 = NDArray[np.int8]
B = NDArray[np.bool_]

Need = Literal["open_interest", "funding", "heatmap"]


class StrategyParams(BaseModel):
    """Base of every strategy's settings: frozen, unknown keys refused (a typo is an error,
    not a silently ignored setting). Use `Field(ge=…, le=…)` for ranges."""

    model_config = ConfigDict(frozen=True, extra="forbid")


P = TypeVar("P", bound=StrategyParams)


@dataclass(frozen=True)
class HeatmapLevels:
    """Liquidation levels as of each heatmap refresh (stamped at the refresh time)."""

    refreshed_s: I64  # refresh times, ascending
    prices: list[F]  # per refresh: level prices
    values: list[F]  # per refresh: level sizes (USD)

    def index_asof(self, t_s: int) -> int | None:
        """The newest refresh at or before t (None before the first)."""
        k = int(np.searchsorted(self.refreshed_s, t_s, side="right")) - 1
        return k if k >= 0 else None


@dataclass(frozen=True)
class Bars:
    """One coin's candles, oldest first, on a regular grid of `interval_s`. `start_s` is each
    candle's open time; a bar is known at its close (`start_s + interval_s`). Optional inputs
    are aligned to the bars (NaN where unknown): open interest as of the bar's close, funding
    as the rate settled at the bar's close (0 where none settled)."""

    symbol: str
    start_s: I64
    open: F
    high: F
    low: F
    close: F
    volume: F
    interval_s: int = 60
    open_interest: F | None = None
    funding: F | None = None
    heatmap: HeatmapLevels | None = None

    def __post_init__(self) -> None:
        n = self.start_s.shape[0]
        for name in ("open", "high", "low", "close", "volume"):
            if getattr(self, name).shape != (n,):
                raise ValueError(
                    f"bars {self.symbol}: {name} has shape {getattr(self, name).shape}, expected ({n},)"
                )
        for name in ("open_interest", "funding"):
            arr = getattr(self, name)
            if arr is not None and arr.shape != (n,):
                raise ValueError(
                    f"bars {self.symbol}: {name} has shape {arr.shape}, expected ({n},)"
                )

    def __len__(self) -> int:
        return int(self.start_s.shape[0])

    @property
    def close_s(self) -> I64:
        """When each bar becomes known: its close."""
        out: I64 = self.start_s + self.interval_s
        return out

    def window(self, a: int, b: int) -> Bars:
        """Bars a..b−1 (the heatmap keeps its refreshes; strategies read it as of a time)."""

        def cut(x: F | None) -> F | None:
            return None if x is None else x[a:b]

        return replace(
            self, start_s=self.start_s[a:b], open=self.open[a:b], high=self.high[a:b],
            low=self.low[a:b], close=self.close[a:b], volume=self.volume[a:b],
            open_interest=cut(self.open_interest), funding=cut(self.funding),
        )  # fmt: skip


@dataclass(frozen=True)
class SignalFrame:
    """Per-bar decisions taken at each bar's close. `entry`: +1 long, −1 short, 0 none.
    `exit`: close the open position (any side) at the next open. `sl_pct` / `tp_pct`: stop and
    target distances in percent of the fill price for an entry on that bar (NaN: none)."""

    entry: I8
    exit: B | None = None
    sl_pct: F | None = None
    tp_pct: F | None = None
    reason: str = ""

    def __len__(self) -> int:
        return int(self.entry.shape[0])


class Signal(BaseModel):
    """A typed signal for the live path: what `Strategy.decide` returns."""

    model_config = ConfigDict(frozen=True)

    strategy: str
    version: str
    symbol: str
    time: datetime  # the close of the bar the decision was taken on
    side: Literal["long", "short"]
    price: float  # that bar's close
    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    reason: str = ""


class Strategy(ABC, Generic[P]):
    """Base class of a strategy plug-in; see the module docstring."""

    name: ClassVar[str]
    version: ClassVar[str]
    params_model: ClassVar[type[StrategyParams]]
    needs: ClassVar[frozenset[Need]] = frozenset()
    description: ClassVar[str] = ""

    def __init__(self, params: P) -> None:
        self.params = params

    @classmethod
    def from_settings(cls, settings: dict[str, Any] | None = None) -> Strategy[P]:
        """Build from untyped settings (CLI, sweep grid); raises pydantic.ValidationError."""
        return cls(cls.params_model.model_validate(settings or {}))  # type: ignore[arg-type]

    @property
    def warmup(self) -> int:
        """Bars needed before the first decision can be meaningful (for walk-forward windows)."""
        return 0

    @abstractmethod
    def signals(self, bars: Bars) -> SignalFrame:
        """Decisions for every bar; bar i's may read bars 0..i only."""

    def decide(self, bars: Bars) -> Signal | None:
        """The live entry point: the decision at the newest bar's close, typed."""
        if len(bars) == 0:
            return None
        frame = self.signals(bars)
        side = int(frame.entry[-1])
        if side == 0:
            return None

        def last(x: F | None) -> float | None:
            return None if x is None or not np.isfinite(x[-1]) else float(x[-1])

        return Signal(
            strategy=self.name, version=self.version, symbol=bars.symbol,
            time=datetime.fromtimestamp(int(bars.close_s[-1]), UTC),
            side="long" if side > 0 else "short", price=float(bars.close[-1]),
            stop_loss_pct=last(frame.sl_pct), take_profit_pct=last(frame.tp_pct),
            params=self.params.model_dump(), reason=frame.reason,
        )  # fmt: skip
