"""The one trade decision: a coin's market view (+ account and venue grid) → a sane
`TradePlan` or a `Refusal` with its reason. Pure: the ranker calls it to attach the plan to a
signal, the autotrader calls it again (on refreshed data when the signal's is stale) before
placing orders, a backtest calls it in replay.

The levels are SPEC §4's (quantcore.math.levels): entry conservative (beyond the target's
near edge) / aggressive (at the edge) / scaled (a ladder from the edge away from the market);
stop = the wider of the wick stop and the cluster stop; take-profit = the target's centre,
front-run. For a ladder the wick stop is measured from its farthest rung (the last fill).

Every plan returned is sane — for a long SL < every entry < TP (mirrored for a short), SL and
TP on the tick grid (when the venue's grid is known) and at least a tick beyond every entry,
reward:risk at least `min_reward_risk` — or the signal is refused with the reason. A target
cluster narrower than the front-run (e.g. a one-level cluster with an aggressive entry) puts
the front-run TP on the losing side of the entry: refused, never traded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from quantcore.config import Settings
from quantcore.math import levels
from quantcore.model.plan import (
    AccountState,
    Decision,
    EntryMode,
    InstrumentRules,
    MarketView,
    PlannedOrder,
    Refusal,
    RefusalCode,
    TradePlan,
)
from quantcore.trading import ladder, sizing


@dataclass(frozen=True)
class DecisionSettings:
    entry_mode: EntryMode = "conservative"
    entry_beyond_pct: float = 2.0
    ladder_orders: int = 5
    ladder_sizing: ladder.Sizing = "increasing"
    ladder_range_pct: float = 2.0
    stop_beyond_pct: float = 2.0
    stop_default_wick_pct: float = 5.0
    take_profit_front_run_pct: float = 0.5
    min_reward_risk: float = 1.0
    risk_per_trade_pct: float = 1.0
    leverage: float = 5.0
    max_trade_equity_pct: float = 20.0

    @classmethod
    def from_settings(cls, s: Settings) -> DecisionSettings:
        return cls(
            entry_mode=s.entry_mode, entry_beyond_pct=s.entry_beyond_pct,
            ladder_orders=s.ladder_orders, ladder_sizing=s.ladder_sizing,
            ladder_range_pct=s.ladder_range_pct, stop_beyond_pct=s.stop_beyond_pct,
            stop_default_wick_pct=s.stop_default_wick_pct,
            take_profit_front_run_pct=s.take_profit_front_run_pct,
            min_reward_risk=s.min_reward_risk, risk_per_trade_pct=s.risk_per_trade_pct,
            leverage=s.trade_leverage, max_trade_equity_pct=s.max_trade_equity_pct,
        )  # fmt: skip


def decide(
    view: MarketView,
    s: DecisionSettings,
    account: AccountState | None = None,
    rules: InstrumentRules | None = None,
) -> Decision:
    """The plan for `view`: on the venue's grid when `rules` are given (the ranker reads them
    from the instruments table, the autotrader from the venue), sized when `account` is given
    too (the autotrader). Without `rules` the prices are exact and the plan says so."""
    d, sym = view.direction, view.symbol
    low, high = view.target.low, view.target.high
    if not sizing.is_finite_positive(low, high, view.price) or low > high:
        return _refuse(
            sym, "bad_input", f"target {low}..{high} at price {view.price} is not a range"
        )
    sign = 1 if d == "long" else -1
    reasons: list[str] = []

    # entries, nearest to the market first
    if s.entry_mode == "scaled":
        edge = levels.entry_price(d, low, high, "aggressive")
        near, far = ladder.ladder_range(d, edge, s.ladder_range_pct)
        rungs = ladder.ladder(near, far, s.ladder_orders, s.ladder_sizing)
        reasons.append(f"entry: scaled, {len(rungs)} orders from the target's edge {edge:g} "
                       f"{s.ladder_range_pct:g} % away from the market ({s.ladder_sizing})")  # fmt: skip
    else:
        rungs = [
            ladder.Rung(levels.entry_price(d, low, high, s.entry_mode, s.entry_beyond_pct), 1.0)
        ]
        reasons.append(f"entry: {s.entry_mode} at {rungs[0].price:g} (target {low:g}..{high:g})")
    tick = rules.tick_size if rules is not None else None
    # On the grid, every level rounded the way that keeps the plan at least as safe as its rule
    # (sizing.safe_tick) — down for a long, up for a short: entries away from the target (never past the level the
    # mode asks for), the stop away from the entry (never tighter than the wick / cluster rule),
    # the take-profit towards the entry (reached sooner; refused below when that leaves it not
    # a tick beyond every entry)
    prices = [_on_grid(r.price, tick, d) for r in rungs]
    if tick is None:
        reasons.append("grid: the venue's tick is not known, prices are not on it")
    if min(prices) <= 0:
        return _refuse(sym, "bad_input", f"an entry rounds to zero on tick {tick}")
    worst = min(prices) if d == "long" else max(prices)  # the farthest rung from the market
    avg_entry = sum(float(p) * r.fraction for p, r in zip(prices, rungs, strict=True))

    # stop: the wider of the wick stop (from the farthest entry) and the cluster stop
    wick = view.wick_pct if view.wick_pct is not None and view.wick_pct > 0 else None
    wick_pct = wick if wick is not None else s.stop_default_wick_pct
    nxt = view.next_opposite
    far_edge = None if nxt is None else (nxt.low if d == "long" else nxt.high)
    stop = levels.stop_loss(d, float(worst), wick_pct, far_edge, s.stop_beyond_pct)
    reasons.append(
        f"stop: wick {wick_pct:g} % ({'coin history' if wick is not None else 'default'}) "
        f"from {worst} → {levels.wick_stop(d, float(worst), wick_pct):g}"
        + ("" if far_edge is None else
           f"; {s.stop_beyond_pct:g} % beyond the next cluster's edge {far_edge:g} → "
           f"{levels.cluster_stop(d, far_edge, s.stop_beyond_pct):g}; the wider")
    )  # fmt: skip
    tp = levels.take_profit(d, low, high, s.take_profit_front_run_pct)
    reasons.append(
        f"take-profit: centre {(low + high) / 2:g} front-run {s.take_profit_front_run_pct:g} % → {tp:g}"
    )
    if not sizing.is_finite_positive(stop, tp):
        return _refuse(sym, "bad_input", f"stop {stop:g} / take-profit {tp:g} not positive")
    sl_d = _on_grid(stop, tick, d)
    tp_d = _on_grid(tp, tick, d)
    if sl_d <= 0:
        return _refuse(sym, "stop_not_beyond_entry", f"stop {stop:g} rounds to zero on tick {tick}")

    # sanity: SL < every entry < TP for a long (mirrored), at least a tick apart
    gap = Decimal(str(tick)) if tick is not None else Decimal(0)
    nearest = max(prices) if d == "long" else min(prices)
    if sign * (tp_d - nearest) < gap or tp_d == nearest:
        return _refuse(
            sym, "take_profit_not_beyond_entry",
            f"take-profit {tp_d} is not beyond the entry {nearest} for a {d}: the target "
            f"{low:g}..{high:g} is too narrow for a {s.entry_mode} entry",
        )  # fmt: skip
    if sign * (worst - sl_d) < gap or sl_d == worst:
        return _refuse(sym, "stop_not_beyond_entry", f"stop {sl_d} is not beyond the entry {worst}")
    if sign * (Decimal(str(view.price)) - tp_d) >= 0:
        return _refuse(
            sym, "target_reached", f"price {view.price:g} is already at the take-profit {tp_d}"
        )
    reward = sign * (float(tp_d) - avg_entry)
    risk = sign * (avg_entry - float(sl_d))
    rr = reward / risk if risk > 0 else math.inf
    if rr < s.min_reward_risk:
        return _refuse(
            sym, "reward_risk_too_low",
            f"reward:risk {rr:.2f} below {s.min_reward_risk:g} (entry {avg_entry:g}, "
            f"stop {sl_d}, take-profit {tp_d})",
        )  # fmt: skip
    reasons.append(f"reward:risk {rr:.2f} (min {s.min_reward_risk:g})")

    if account is None or rules is None:
        orders = tuple(
            PlannedOrder(price=p, ladder_index=k if len(rungs) > 1 else None)
            for k, p in enumerate(prices)
        )
        return TradePlan(
            symbol=sym, direction=d, mode=s.entry_mode, orders=orders, stop_loss=sl_d,
            take_profit=tp_d, avg_entry=avg_entry, reward_risk=rr, tick_size=tick,
            leverage=s.leverage, reasons=tuple(reasons),
        )  # fmt: skip

    qty = sizing.risk_qty(account.equity, s.risk_per_trade_pct, avg_entry, float(sl_d))
    capped = sizing.capped_qty(qty, avg_entry, account.equity, s.leverage, s.max_trade_equity_pct)
    fractions = [r.fraction for r in rungs]
    total = sizing.floor_to_step(capped, rules.qty_step)
    parts = sizing.split_qty(total, fractions, rules.qty_step, rules.min_qty)
    # rungs below the min qty hand their share to others and prices sit on the grid: the loss
    # at the stop is checked on the orders themselves and the size shrunk until it fits
    budget = account.equity * s.risk_per_trade_pct / 100
    for _ in range(50):
        loss = sum(
            float(q) * abs(float(p) - float(sl_d)) for p, q in zip(prices, parts, strict=True)
        )
        if loss <= budget or total <= 0:
            break
        shrunk = sizing.floor_to_step(float(total) * budget / loss, rules.qty_step)
        total = shrunk if shrunk < total else total - Decimal(str(rules.qty_step))
        parts = sizing.split_qty(total, fractions, rules.qty_step, rules.min_qty)
    else:
        parts = [Decimal(0)] * len(parts)
    sized = tuple(
        PlannedOrder(price=p, qty=q, ladder_index=k if len(rungs) > 1 else None)
        for k, (p, q) in enumerate(zip(prices, parts, strict=True))
        if q > 0
    )
    placed = sum((o.qty or Decimal(0) for o in sized), Decimal(0))
    if not sized or placed <= 0:
        return _refuse(
            sym, "size_zero",
            f"{s.risk_per_trade_pct:g} % of equity {account.equity:g} at risk over a stop "
            f"distance of {risk:g} is {qty:g}, below the qty step {rules.qty_step:g}",
        )  # fmt: skip
    reasons.append(
        f"size: {s.risk_per_trade_pct:g} % of equity {account.equity:g} at risk → {qty:.6g}"
        + (
            f", capped at {s.max_trade_equity_pct:g} % margin → {capped:.6g}"
            if capped < qty
            else ""
        )
        + f", on the qty step → {placed}"
    )
    fill_avg = sum(float(o.price) * float(o.qty or 0) for o in sized) / float(placed)
    risk = sign * (fill_avg - float(sl_d))
    rr = sign * (float(tp_d) - fill_avg) / risk if risk > 0 else math.inf
    if rr < s.min_reward_risk:  # rungs below the min qty were dropped: the average moved
        return _refuse(sym, "reward_risk_too_low", f"reward:risk {rr:.2f} of the sized orders "
                       f"below {s.min_reward_risk:g}")  # fmt: skip
    return TradePlan(
        symbol=sym, direction=d, mode=s.entry_mode, orders=sized, stop_loss=sl_d,
        take_profit=tp_d, avg_entry=fill_avg, reward_risk=rr, tick_size=tick, qty=placed,
        margin=sizing.margin_of(float(placed), fill_avg, s.leverage), leverage=s.leverage,
        reasons=tuple(reasons),
    )  # fmt: skip


def _refuse(symbol: str, code: RefusalCode, reason: str) -> Refusal:
    return Refusal(symbol=symbol, code=code, reason=reason)


def _on_grid(value: float, tick: float | None, direction: str) -> Decimal:
    """`value` on the tick grid, the safe way for `direction`; exact when no grid is known."""
    if tick is None:
        return Decimal(repr(float(value)))
    return sizing.safe_tick(direction, value, tick)
