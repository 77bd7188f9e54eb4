"""Risk guards: every entry passes them or is refused with a reason (logged and recorded)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RiskLimits:
    max_open_positions: int
    max_trade_equity_pct: float
    max_total_equity_pct: float
    daily_loss_limit_pct: float


@dataclass(frozen=True)
class RiskState:
    equity: float
    open_symbols: frozenset[str]  # coins with a pending or open trade
    used_margin: float  # margin of pending and open trades
    realised_today: float  # quote currency, closed trades since midnight (owner's time zone)
    kill_switch: str | None  # reason when engaged


def refusal(state: RiskState, limits: RiskLimits, symbol: str, margin: float) -> str | None:
    """Why this entry must not be placed, or None when every guard passes."""
    if state.kill_switch is not None:
        return f"kill switch engaged: {state.kill_switch}"
    if state.equity <= 0:
        return f"no equity to trade with ({state.equity:.2f})"
    start_of_day = state.equity - state.realised_today
    if (
        start_of_day > 0
        and -state.realised_today >= start_of_day * limits.daily_loss_limit_pct / 100
    ):
        loss_pct = -state.realised_today / start_of_day * 100
        return (
            f"daily loss limit: lost {loss_pct:.2f} % today (limit {limits.daily_loss_limit_pct} %)"
        )
    if symbol in state.open_symbols:
        return f"already a position in {symbol} (one per coin)"
    if len(state.open_symbols) >= limits.max_open_positions:
        return f"max open positions reached ({limits.max_open_positions})"
    if margin <= 0:
        return "position size rounds to zero"
    trade_pct = margin / state.equity * 100
    if trade_pct > limits.max_trade_equity_pct + 1e-9:
        return f"trade margin {trade_pct:.2f} % of equity > {limits.max_trade_equity_pct} %"
    total_pct = (state.used_margin + margin) / state.equity * 100
    if total_pct > limits.max_total_equity_pct + 1e-9:
        return (
            f"total margin would be {total_pct:.2f} % of equity > {limits.max_total_equity_pct} %"
        )
    return None
