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

A strategy that trades like the services (limit-order entries, its own stop / target /
leverage / trailing ladder) also returns `plans` (`OrderPlan`s) on its frame; one that reads
heatmaps may say which refreshes it reads (`heatmap_refreshes`) so a lazy tape computes only
those (`prefetch` asks the tape's source for every coin at once).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from quantcore.model.market import Side

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


class HeatmapSource(Protocol):
    """Where a lazy tape's heatmaps come from (the sim tape replays its market): `fetch`
    makes the wanted refreshes of each coin readable (None: every refresh)."""

    def fetch(self, wanted: Mapping[str, I64 | None]) -> None: ...


@dataclass(frozen=True)
class HeatmapLevels:
    """Liquidation levels as of each heatmap refresh (stamped at the refresh time).

    Without `timeframes` each refresh is one level set (1-D prices / values). With
    `timeframes` (e.g. the nine of SPEC §4) each refresh is a (timeframes, levels) pair of
    arrays, NaN-padded prices and 0-padded values, one row per timeframe, as the liquidation
    collector stores them. A lazy tape (`source` set) computes refreshes on `fetch` only:
    reading one that was not fetched raises KeyError."""

    refreshed_s: I64  # refresh times, ascending
    prices: Sequence[F]  # per refresh: level prices
    values: Sequence[F]  # per refresh: level sizes (USD)
    timeframes: tuple[str, ...] = ()
    source: HeatmapSource | None = None

    def index_asof(self, t_s: int) -> int | None:
        """The newest refresh at or before t (None before the first)."""
        k = int(np.searchsorted(self.refreshed_s, t_s, side="right")) - 1
        return k if k >= 0 else None

    def indices_asof(self, t_s: I64) -> I64:
        """index_asof for many times at once (−1 before the first refresh)."""
        out: I64 = np.searchsorted(self.refreshed_s, t_s, side="right").astype(np.int64) - 1
        return out

    def levels(self, k: int) -> tuple[F, F]:
        """(prices, values) of refresh k."""
        return self.prices[k], self.values[k]

    def until(self, t_s: int) -> HeatmapLevels:
        """Only the refreshes stamped at or before t (the same indices; later ones are not
        there): what a live decision at t may read, whatever the strategy asks for."""
        m = int(np.searchsorted(self.refreshed_s, t_s, side="right"))
        return (
            self if m == self.refreshed_s.size else replace(self, refreshed_s=self.refreshed_s[:m])
        )


def prefetch(strategy: Strategy[Any], tape: Sequence[Bars]) -> None:
    """Make the heatmap refreshes the strategy will read readable, for every coin at once
    (one replay of a lazy tape's source for all of them)."""
    if "heatmap" not in strategy.needs:
        return
    sources: dict[int, HeatmapSource] = {}
    wanted: dict[str, I64 | None] = {}
    for bars in tape:
        hm = bars.heatmap
        if hm is None or hm.source is None:
            continue
        sources[id(hm.source)] = hm.source
        wanted[bars.symbol] = strategy.heatmap_refreshes(bars)
    for src in sources.values():
        src.fetch(wanted)


@dataclass(frozen=True)
class WhaleHunt:
    """Ground truth of one whale campaign on a simulated tape (the simulator's own record,
    `quantcore.sim.whales.Campaign`, in our words). `kind` 'hunt' pushes to a liquidation
    cluster and takes profit before it; 'fake' is the fake pump that stalls and dumps.
    `direction`: the whale's side ('long' pushes price up into the shorts' liquidations).
    Times are epoch seconds; `push_started_s` None: it never pushed, `ended_s` None: still
    under way at the tape's end. For scoring a run only — a strategy never sees it."""

    symbol: str
    kind: Literal["hunt", "fake"]
    direction: Side
    started_s: int
    push_started_s: int | None
    ended_s: int | None
    origin: float  # price when the campaign started
    target: float  # the liquidation cluster it went for
    take_profit: float
    outcome: str | None  # take_profit, timeout, failed, replanned; None while under way
    timeframe: str  # the shortest heatmap timeframe holding the cluster

    def pushing_at(self, t_s: int) -> bool:
        """Inside the push and what follows it: push start ≤ t ≤ end (open-ended while under way)."""
        if self.push_started_s is None or t_s < self.push_started_s:
            return False
        return self.ended_s is None or t_s <= self.ended_s


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
    tick_size: float | None = None  # the venue's price grid, when the tape knows it
    # the simulator's whale campaigns on this coin that overlap the tape (ground truth, sim
    # tape only; None: the tape has none). The backtester hides it from the strategy.
    hunts: tuple[WhaleHunt, ...] | None = None

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
class OrderPlan:
    """An entry through limit orders, decided at bar `bar`'s close (a trade decision's plan,
    quantcore.trading.decision): working from the next bar until filled or `expire_s` after
    that bar's open; the position then lives under the plan's stop, take-profit, leverage
    (liquidation) and trailing ladder until one of them closes it."""

    bar: int
    side: int  # +1 long, −1 short
    prices: F  # limit prices, nearest to the market first
    qty_per_equity: F  # base quantity of each order per unit of account equity
    stop_loss: float
    take_profit: float
    leverage: float
    expire_s: float
    trailing: tuple[tuple[float, float], ...] = ()  # PROFIT:LOCK steps, percent
    trailing_basis: Literal["price", "margin"] = "margin"
    tick: float = 0.0  # price grid of trailing stops (0: none)


@dataclass(frozen=True)
class SignalFrame:
    """Per-bar decisions taken at each bar's close. `entry`: +1 long, −1 short, 0 none.
    `exit`: close the open position (any side) at the next open. `sl_pct` / `tp_pct`: stop and
    target distances in percent of the fill price for an entry on that bar (NaN: none).
    `plans`: limit-order entries with their own stop, target, leverage and trailing ladder
    (the liquidation hunter's); when given, the engine trades these instead of `entry`."""

    entry: I8
    exit: B | None = None
    sl_pct: F | None = None
    tp_pct: F | None = None
    reason: str = ""
    plans: tuple[OrderPlan, ...] | None = None

    def __len__(self) -> int:
        return int(self.entry.shape[0])


class SignalPlan(BaseModel):
    """An OrderPlan on a live Signal (JSON-friendly): the entries, stop, target, leverage and
    trailing ladder the strategy decided, sizes as base quantity per unit of equity."""

    model_config = ConfigDict(frozen=True)

    entries: list[float]
    qty_per_equity: list[float]
    stop_loss: float
    take_profit: float
    leverage: float
    expire_s: float
    trailing: list[tuple[float, float]] = Field(default_factory=list)
    trailing_basis: Literal["price", "margin"] = "margin"

    @classmethod
    def of(cls, plan: OrderPlan) -> SignalPlan:
        return cls(
            entries=plan.prices.tolist(), qty_per_equity=plan.qty_per_equity.tolist(),
            stop_loss=plan.stop_loss, take_profit=plan.take_profit, leverage=plan.leverage,
            expire_s=plan.expire_s, trailing=list(plan.trailing),
            trailing_basis=plan.trailing_basis,
        )  # fmt: skip


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
    plan: SignalPlan | None = None  # the newest bar's OrderPlan, for a strategy that plans


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

    def heatmap_refreshes(self, bars: Bars, since: int = 0) -> I64 | None:
        """The heatmap refreshes `signals` will read (indices into bars.heatmap) for its
        decisions at bars `since` and later (the bars before are history), so a lazy tape
        computes only those; None: every refresh."""
        return None

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
            plan=next((SignalPlan.of(p) for p in frame.plans or () if p.bar == len(bars) - 1), None),
        )  # fmt: skip
