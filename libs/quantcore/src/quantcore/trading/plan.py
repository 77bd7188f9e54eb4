"""From a trade signal to the orders to place: entry (conservative / aggressive / scaled), stop
(the wider of the wick stop and the cluster stop, for OUR average entry), take-profit (target
cluster centre front-run by 0.5 %) and size from the equity at risk.

The same quantcore.math.levels functions the ranker used to plan the signal are used here, so
a replay of a signal gives the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from quantcore.math import levels
from quantcore.model.events import TradeSignalled
from quantcore.model.trading import Side
from quantcore.trading import ladder, sizing

EntryMode = Literal["conservative", "aggressive", "scaled"]


@dataclass(frozen=True)
class PlanParams:
    entry_mode: EntryMode
    entry_beyond_pct: float
    ladder_orders: int
    ladder_sizing: ladder.Sizing
    ladder_range_pct: float
    stop_beyond_pct: float
    stop_default_wick_pct: float
    take_profit_front_run_pct: float
    risk_per_trade_pct: float
    leverage: float
    max_trade_equity_pct: float


@dataclass(frozen=True)
class InstrumentRules:
    tick_size: float
    qty_step: float
    min_qty: float


@dataclass(frozen=True)
class PlannedOrder:
    price: Decimal
    qty: Decimal
    ladder_index: int | None


@dataclass(frozen=True)
class EntryPlan:
    direction: Literal["long", "short"]
    side: Side
    mode: EntryMode
    orders: list[PlannedOrder]
    stop_loss: Decimal
    take_profit: Decimal
    avg_entry: float
    qty: Decimal
    margin: float
    leverage: float
    detail: dict[str, Any] = field(default_factory=dict)


def plan_entry(
    signal: TradeSignalled,
    trade_inputs: dict[str, Any],
    equity: float,
    rules: InstrumentRules,
    p: PlanParams,
) -> EntryPlan:
    """`trade_inputs` is the signal row's inputs->'trade' (wick and next-cluster numbers)."""
    d = signal.direction
    low, high = signal.target_low, signal.target_high
    if p.entry_mode == "scaled":
        edge = levels.entry_price(d, low, high, "aggressive")
        near, far = ladder.ladder_range(d, edge, p.ladder_range_pct)
        rungs = ladder.ladder(near, far, p.ladder_orders, p.ladder_sizing)
    else:
        rungs = [
            ladder.Rung(levels.entry_price(d, low, high, p.entry_mode, p.entry_beyond_pct), 1.0)
        ]
    avg_entry = ladder.average_price(rungs)

    wick_pct = _positive(trade_inputs.get("wick_pct")) or p.stop_default_wick_pct
    nxt = trade_inputs.get("next_cluster") or {}
    far_edge = _positive(nxt.get("low") if d == "long" else nxt.get("high"))
    stop = levels.stop_loss(d, avg_entry, wick_pct, far_edge, p.stop_beyond_pct)
    tp = levels.take_profit(d, low, high, p.take_profit_front_run_pct)

    qty = sizing.risk_qty(equity, p.risk_per_trade_pct, avg_entry, stop)
    qty = sizing.capped_qty(qty, avg_entry, equity, p.leverage, p.max_trade_equity_pct)
    total = sizing.floor_to_step(qty, rules.qty_step)
    parts = sizing.split_qty(total, [r.fraction for r in rungs], rules.qty_step, rules.min_qty)
    orders = [
        PlannedOrder(
            sizing.round_to_tick(r.price, rules.tick_size), q, k if len(rungs) > 1 else None
        )
        for k, (r, q) in enumerate(zip(rungs, parts, strict=True))
        if q > 0
    ]
    placed = sum((o.qty for o in orders), Decimal(0))
    return EntryPlan(
        direction=d,
        side=Side.opening(d),
        mode=p.entry_mode,
        orders=orders,
        stop_loss=sizing.round_to_tick(stop, rules.tick_size),
        take_profit=sizing.round_to_tick(tp, rules.tick_size),
        avg_entry=avg_entry,
        qty=placed,
        margin=sizing.margin_of(float(placed), avg_entry, p.leverage),
        leverage=p.leverage,
        detail={
            "entry_mode": p.entry_mode,
            "rungs": [{"price": r.price, "fraction": r.fraction} for r in rungs],
            "avg_entry": avg_entry,
            "wick_pct": wick_pct,
            "wick_stop": levels.wick_stop(d, avg_entry, wick_pct),
            "cluster_stop": None
            if far_edge is None
            else levels.cluster_stop(d, far_edge, p.stop_beyond_pct),
            "stop": stop,
            "take_profit": tp,
            "equity": equity,
            "risk_pct": p.risk_per_trade_pct,
            "risk_qty": qty,
            "leverage": p.leverage,
        },
    )


def _positive(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if v > 0 else None
