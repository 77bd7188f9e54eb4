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
    unrealised: float = 0.0  # quote currency, open positions now (included in `equity`)


@dataclass(frozen=True)
class DayLoss:
    """Today's PnL against the daily loss limit: realised since midnight (owner's time zone)
    plus the unrealised PnL of the open positions now. Conservative: a position opened before
    midnight counts its whole unrealised PnL."""

    start_equity: float  # equity at the start of the day: now minus today's PnL
    pnl: float  # realised today + unrealised now
    pct: float  # pnl as % of start_equity (negative: a loss); 0 without a start equity
    limit_pct: float

    @property
    def breached(self) -> bool:
        return self.start_equity > 0 and -self.pnl >= self.start_equity * self.limit_pct / 100

    def reason(self) -> str:
        return (
            f"daily loss limit: lost {-self.pct:.2f} % today, realised + unrealised "
            f"(limit {self.limit_pct:g} %)"
        )


def day_loss(equity: float, realised_today: float, unrealised: float, limit_pct: float) -> DayLoss:
    """`equity` is the venue's equity, unrealised PnL included (Bybit totalEquity, paper)."""
    pnl = realised_today + unrealised
    start = equity - pnl
    pct = pnl / start * 100 if start > 0 else 0.0
    return DayLoss(start_equity=start, pnl=pnl, pct=pct, limit_pct=limit_pct)


def refusal(state: RiskState, limits: RiskLimits, symbol: str, margin: float) -> str | None:
    """Why this entry must not be placed, or None when every guard passes."""
    if state.kill_switch is not None:
        return f"kill switch engaged: {state.kill_switch}"
    if state.equity <= 0:
        return f"no equity to trade with ({state.equity:.2f})"
    today = day_loss(
        state.equity, state.realised_today, state.unrealised, limits.daily_loss_limit_pct
    )
    if today.breached:
        return today.reason()
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
