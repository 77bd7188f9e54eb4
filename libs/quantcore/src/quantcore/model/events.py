"""Bus events: a versioned envelope around a typed payload.

Each payload model names its `TYPE` and `VERSION`; `EVENT_TYPES` maps type → model so a
consumer validates what it reads. Events are immutable once built (frozen models). Adding a
field with a default is compatible; anything else bumps VERSION.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from quantcore.model.market import HeatmapSource
from quantcore.model.plan import MarketView, TradePlan


class Event(BaseModel):
    """Base of every bus payload. NaN and infinities are refused (JSON has none; a NaN that
    got in would end up in a row and spoil every average)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1


class Envelope(BaseModel):
    """What travels on a stream: id, type, schema version, time, source, correlation id, payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    version: int = Field(ge=1)
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    source: str
    correlation_id: str
    payload: dict[str, Any]


EVENT_TYPES: dict[str, type[Event]] = {}


def register(model: type[Event]) -> type[Event]:
    if model.TYPE in EVENT_TYPES and EVENT_TYPES[model.TYPE] is not model:
        raise ValueError(f"event type {model.TYPE!r} registered twice")
    EVENT_TYPES[model.TYPE] = model
    return model


LogLevel = Literal["debug", "info", "warning", "error", "critical"]


@register
class AgentLogRecorded(Event):
    """A decision or incident a service wants kept in `agent_logs` (and visible in Grafana)."""

    TYPE: ClassVar[str] = "agent_log.recorded"
    agent: str = Field(min_length=1, max_length=100)
    level: LogLevel = "info"
    event_type: str = Field(min_length=1, max_length=100)
    message: str = Field(min_length=1, max_length=4000)
    vertical: Literal["perps", "poly", "system"] = "system"
    symbol: str | None = Field(None, max_length=40)
    detail: dict[str, Any] = Field(default_factory=dict)


# --- market data (collectors) -------------------------------------------------------------------

STREAM_SNAPSHOTS = "market.snapshots"
STREAM_REFRESH_REQUESTS = "heatmap.refresh_requests"
STREAM_HEATMAPS_REFRESHED = "heatmap.refreshed"


@register
class MarketSnapshotted(Event):
    """The per-minute state of the coins one collector replica owns (one event per minute)."""

    TYPE: ClassVar[str] = "market.snapshotted"
    time: datetime
    source: str
    symbols: list[str] = Field(min_length=1)
    prices: list[float]
    open_interest_values: list[float | None]
    turnovers_24h: list[float | None]


@register
class HeatmapRefreshRequested(Event):
    """Ask the liquidation collector to refresh one coin now (spike scanner, autotrader)."""

    TYPE: ClassVar[str] = "heatmap.refresh_requested"
    symbol: str = Field(pattern=r"^[A-Z0-9]{2,30}$")
    reason: Literal["spike", "pre_trade", "manual"] = "manual"
    requested_by: str = Field(min_length=1, max_length=100)
    timeframes: list[str] | None = None  # None = all nine


@register
class HeatmapsRefreshed(Event):
    """Heatmaps of one coin were written (the autotrader waits for this before a trade)."""

    TYPE: ClassVar[str] = "heatmap.refreshed"
    symbol: str
    source: str
    time: datetime
    timeframes: list[str]
    level_count: int = Field(ge=0)
    trigger: str


# --- strategy (scanners, ranker) ---------------------------------------------------------------

STREAM_SIGNALS = "signals"


@register
class TradeSignalled(Event):
    """A trade signal of the ranker's trigger, with every number of the decision. The row in
    `signals` (same signal_id, with the full inputs) is written before this is published."""

    TYPE: ClassVar[str] = "signal.trade"
    signal_id: uuid.UUID
    time: datetime
    cycle_id: str
    symbol: str = Field(pattern=r"^[A-Z0-9]{2,30}$")
    direction: Literal["long", "short"]
    rank: int = Field(ge=1)
    score: float
    entry_mode: Literal["conservative", "aggressive", "scaled"]
    entry_price: float = Field(gt=0)
    stop_loss: float = Field(gt=0)
    take_profit: float = Field(gt=0)
    target_price: float = Field(gt=0)
    target_low: float = Field(gt=0)
    target_high: float = Field(gt=0)
    price: float = Field(gt=0)
    imbalance: float = Field(ge=0, le=1)
    cluster_size_pct: float = Field(ge=0)
    success_rate: float = Field(ge=0, le=1)
    oi_change_15m_pct: float
    volume_ratio_5m: float
    price_change_5m_pct: float
    scanner: str
    scanner_version: str
    # which heatmap the ranking behind it came from (None: not known, e.g. an older event)
    heatmap_source: HeatmapSource | None = None
    # the decision's inputs and its plan (quantcore.trading.decision), typed: the autotrader
    # re-runs the same decision on them (or on refreshed data) and never reads `signals.inputs`
    market: MarketView | None = None
    plan: TradePlan | None = None


@register
class StrategySignalled(Event):
    """A strategy plug-in's decision at a closed bar (services/strategy_runner): enter `direction`
    at the market. Same stream as the ranker's signals; `scanner` is the plug-in's name and
    `scanner_version` its registry version (plug-in version + hash of its settings), so the
    leaderboard, the autotrader and the journal tell the plug-ins apart. The `signals` row
    (same signal_id) is written before this is published. Stop and target are distances in
    percent of the fill (the backtester's rule: levels are set from the fill price)."""

    TYPE: ClassVar[str] = "signal.strategy"
    signal_id: uuid.UUID
    time: datetime  # the close of the bar the decision was taken on
    symbol: str = Field(pattern=r"^[A-Z0-9]{2,30}$")
    direction: Literal["long", "short"]
    price: float = Field(gt=0)  # that bar's close
    strategy: str = Field(min_length=1, max_length=100)
    strategy_version: str = Field(min_length=1, max_length=40)
    scanner: str
    scanner_version: str
    stop_loss_pct: float | None = Field(None, gt=0)
    take_profit_pct: float | None = Field(None, gt=0)
    reason: str = ""


# --- Polymarket (poly_scanner) ------------------------------------------------------------------

STREAM_POLY_SIGNALS = "poly.signals"


@register
class PolySignalFired(Event):
    """The signal oracle fired for a market outcome (the `poly_signals` row, with every input,
    is written before this is published)."""

    TYPE: ClassVar[str] = "poly.signal"
    time: datetime
    condition_id: str
    token_id: str
    question: str
    outcome: str
    market_price: float = Field(ge=0, le=1)
    implied_prob: float = Field(ge=0, le=1)
    edge: float
    criteria_met: int = Field(ge=0)
    criteria_total: int = Field(ge=1)
    passed: list[str]
    smart_wallets: int = Field(ge=0)
    suggested_size_usd: float = Field(ge=0)
    scanner: str
    scanner_version: str

    @property
    def conviction(self) -> float:
        """0..100: share of the checklist that held (routing compares it with min scores)."""
        return 100.0 * self.criteria_met / self.criteria_total


@register
class HybridSignalFired(Event):
    """A poly signal whose linked perp spiked or ranks top 10 (`hybrid_signals` row written)."""

    TYPE: ClassVar[str] = "poly.hybrid"
    time: datetime
    signal_time: datetime
    condition_id: str
    token_id: str
    question: str
    outcome: str
    symbol: str = Field(pattern=r"^[A-Z0-9]{2,30}$")
    reasons: list[str]
    perp_rank: int | None = None
    edge: float
    criteria_met: int = Field(ge=0)
    criteria_total: int = Field(ge=1)
    scanner: str
    scanner_version: str


STREAM_POLY_POSITIONS = "poly.positions"


@register
class PolyPositionChanged(Event):
    """The copy trader (agent poly_copy) entered, stepped out of, or redeemed a Polymarket
    position: what the broadcaster announces as entry / exit / resolution (vertical 'poly')."""

    TYPE: ClassVar[str] = "poly.position"
    kind: Literal["entry", "exit", "resolution"]
    time: datetime
    agent: str = Field(min_length=1, max_length=100)
    venue: Literal["paper", "live"]
    vertical: Literal["poly"] = "poly"
    condition_id: str
    token_id: str
    question: str | None = None
    outcome: str | None = None
    order_id: str | None = None
    signal_key: str | None = None
    shares: float = Field(ge=0)  # traded in this step
    price: float | None = Field(None, ge=0, le=1)
    held_after: float = Field(ge=0)
    cost_usd: float  # of the shares traded (entry) / taken out (exit, resolution)
    pnl_usd: float | None = None
    pnl_pct: float | None = None  # percent of the cost taken out
    reason: str | None = None  # exit reason / resolution outcome


# --- trading (autotrader, position monitor) ----------------------------------------------------

STREAM_POSITIONS = "positions"

Direction = Literal["long", "short"]
VenueName = Literal["paper", "testnet", "live"]
CloseReason = Literal["tp", "sl", "trailing_sl", "liquidation", "manual", "cancelled", "signal"]


class _PositionEvent(Event):
    """Fields every position event carries (the broadcaster renders them)."""

    trade_id: uuid.UUID
    time: datetime
    symbol: str = Field(pattern=r"^[A-Z0-9]{2,30}$")
    direction: Direction
    venue: VenueName
    agent: str = Field(min_length=1, max_length=100)
    signal_id: uuid.UUID | None = None  # None for manual trades
    scanner: str | None = None
    scanner_version: str | None = None
    score: float | None = None  # the signal's score, for conviction routing


@register
class PositionOpened(_PositionEvent):
    """The entry filled (first fill of a trade): the autotrader's or an imported manual trade."""

    TYPE: ClassVar[str] = "position.opened"
    entry_price: float = Field(gt=0)
    qty: float = Field(gt=0)
    leverage: float = Field(ge=1)
    stop_loss: float | None = Field(None, gt=0)
    take_profit: float | None = Field(None, gt=0)
    entry_mode: Literal["conservative", "aggressive", "scaled"] | None = None


@register
class PositionStopMoved(_PositionEvent):
    """The position monitor moved the stop (trailing ladder); a stop never loosens."""

    TYPE: ClassVar[str] = "position.stop_moved"
    old_stop: float | None = Field(None, gt=0)
    new_stop: float = Field(gt=0)
    price: float = Field(gt=0)
    profit_pct: float  # percent, on profit_basis
    profit_basis: Literal["price", "margin"]
    ladder_step: int = Field(ge=1)


@register
class PositionClosed(_PositionEvent):
    """A position closed (TP, SL, trailing stop, liquidation, manual) with its result."""

    TYPE: ClassVar[str] = "position.closed"
    entry_price: float = Field(gt=0)
    exit_price: float = Field(gt=0)
    qty: float = Field(gt=0)
    leverage: float = Field(ge=1)
    close_reason: CloseReason
    pnl_quote: float
    pnl_pct_price: float  # percent, signed by direction
    pnl_pct_margin: float  # percent, net of fees
    opened_at: datetime | None = None


STREAM_TRADE_COMMANDS = "trade.commands"


@register
class PositionCloseRequested(Event):
    """Close the open position of one coin at market (Telegram `/close SYMBOL`, `quant close`).
    The position monitor acts on it and answers with `position.closed` (reason 'manual')."""

    TYPE: ClassVar[str] = "position.close_requested"
    symbol: str = Field(pattern=r"^[A-Z0-9]{2,30}$")
    requested_by: str = Field(min_length=1, max_length=100)
    reason: str = Field("manual close", max_length=200)


# --- risk (autotrader → broadcaster: the admin hears of it) -------------------------------------

STREAM_RISK = "risk.alerts"


@register
class KillSwitchEngaged(Event):
    """A risk guard engaged the fleet-wide kill switch (today: the daily loss limit). New
    entries stop at once; the broadcaster tells the admin on Telegram."""

    TYPE: ClassVar[str] = "risk.kill_switch_engaged"
    reason: str = Field(min_length=1, max_length=500)
    engaged_by: str = Field(min_length=1, max_length=100)
    day_pnl: float  # quote currency: realised today + unrealised now
    day_pnl_pct: float  # of the equity at the start of the day
    limit_pct: float = Field(gt=0)
    start_equity: float
