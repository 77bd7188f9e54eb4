"""Bus events → broadcast messages: which kind of message, its de-duplication key, its score
and the values the templates may use (raw, unescaped; the renderer escapes per channel)."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from quantcore.config import Settings
from quantcore.model.events import (
    Event,
    HybridSignalFired,
    PolyPositionChanged,
    PolySignalFired,
    PositionClosed,
    PositionOpened,
    PositionStopMoved,
    TradeSignalled,
)

Channel = Literal["telegram", "x", "email", "sms"]
CHANNELS: tuple[Channel, ...] = ("telegram", "x", "email", "sms")
Kind = Literal[
    "signal", "entry", "stop_moved", "exit", "daily", "poly_signal", "hybrid", "poly_trade"
]
KINDS: tuple[Kind, ...] = (
    "signal",
    "entry",
    "stop_moved",
    "exit",
    "daily",
    "poly_signal",
    "hybrid",
    "poly_trade",
)

# every template may use these; each kind adds its own (KIND_FIELDS)
COMMON_FIELDS = frozenset({"mode", "affiliate", "time"})
KIND_FIELDS: dict[str, frozenset[str]] = {
    "signal": frozenset({
        "symbol", "direction", "direction_upper", "arrow", "score", "rank", "entry", "stop_loss",
        "take_profit", "target", "entry_mode", "scanner", "scanner_version", "price",
        "imbalance_pct", "success_pct", "oi_change_pct", "volume_ratio", "move_pct",
        "avg_entry", "orders", "reward_risk",
    }),
    "entry": frozenset({
        "symbol", "direction", "direction_upper", "arrow", "score", "entry", "stop_loss",
        "take_profit", "qty", "leverage", "venue", "scanner", "scanner_version",
    }),
    "stop_moved": frozenset({
        "symbol", "direction", "direction_upper", "arrow", "score", "old_stop", "new_stop",
        "price", "profit_pct", "profit_basis", "ladder_step", "venue", "scanner",
        "scanner_version",
    }),
    "exit": frozenset({
        "symbol", "direction", "direction_upper", "arrow", "score", "entry", "exit",
        "close_reason", "pnl_pct", "pnl_pct_margin", "pnl_quote", "result", "leverage",
        "venue", "scanner", "scanner_version", "held",
    }),
    "daily": frozenset({
        "date", "signals", "trades_closed", "wins", "losses", "win_rate", "pnl_quote",
        "pnl_pct_margin", "open_positions", "best", "worst",
    }),
    "digest": frozenset({"count", "lines", "kinds"}),
    "poly_signal": frozenset({
        "question", "outcome", "price", "implied", "edge", "criteria", "passed", "smart_wallets",
        "size", "scanner", "scanner_version",
    }),
    "hybrid": frozenset({
        "question", "outcome", "symbol", "reasons", "perp_rank", "edge", "criteria", "scanner",
        "scanner_version",
    }),
    "poly_trade": frozenset({
        "action", "icon", "question", "outcome", "shares", "price", "cost", "held", "pnl",
        "pnl_pct", "reason", "venue", "result",
    }),
}  # fmt: skip


@dataclass(frozen=True)
class Message:
    """One message to broadcast, before routing to channels."""

    kind: Kind
    dedup_key: str
    event_id: uuid.UUID
    score: float | None
    fields: dict[str, str]
    correlation_id: str | None = None
    vertical: str = "perps"


def fmt_price(value: float | None) -> str:
    """Prices with about 6 significant digits and never in exponent notation."""
    if value is None or not math.isfinite(value):
        return "-"
    if value == 0:
        return "0"
    digits = 6 - math.floor(math.log10(abs(value))) - 1
    text = f"{value:,.{min(max(digits, 2), 12)}f}"
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    return f"{whole}.{frac.ljust(2, '0')}"


def fmt_plan_price(value: Decimal, tick: float | None) -> str:
    """A price of the plan: on the venue's grid (`tick` known) every digit of it — the order the
    venue holds, not a 6-digit rounding of it; off the grid as `fmt_price`."""
    if tick is None or not value.is_finite():
        return fmt_price(float(value))
    whole, _, frac = f"{value:,f}".partition(".")
    return f"{whole}.{frac.rstrip('0').ljust(2, '0')}"


def fmt_pct(value: float | None, signed: bool = True) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:+.2f}%" if signed else f"{value:.2f}%"


def fmt_num(value: float | None, places: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{places}f}"


def mode_banner(trading_mode: str, data_source: str) -> str:
    """Empty only for live trading on real data; otherwise says what is not real."""
    parts = []
    if trading_mode != "live":
        parts.append(trading_mode.upper())
    if data_source == "sim":
        parts.append("SIMULATED DATA")
    return " · ".join(parts)


def _direction(direction: str) -> dict[str, str]:
    return {
        "direction": direction,
        "direction_upper": direction.upper(),
        "arrow": "🟢" if direction == "long" else "🔴",
    }


def _time(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _provenance(scanner: str | None, version: str | None) -> dict[str, str]:
    return {"scanner": scanner or "manual", "scanner_version": version or "-"}


def plan_fields(event: TradeSignalled) -> dict[str, str]:
    """The entry ladder, SL and TP of the plan the signal carries — the plan the autotrader
    trades (it re-runs the same decision on the same view) — so a message never announces one
    plan while the venue gets another. Its prices are on the venue's grid (the ranker plans on
    it) and shown to the tick. A hand-made signal without a plan: its own numbers."""
    plan = event.plan
    if plan is None:
        return {
            "entry": fmt_price(event.entry_price), "avg_entry": fmt_price(event.entry_price),
            "orders": "1", "stop_loss": fmt_price(event.stop_loss),
            "take_profit": fmt_price(event.take_profit), "entry_mode": event.entry_mode,
            "reward_risk": "-",
        }  # fmt: skip
    return {
        "entry": " / ".join(fmt_plan_price(p, plan.tick_size) for p in plan.entries),
        "avg_entry": fmt_price(plan.avg_entry), "orders": str(len(plan.orders)),
        "stop_loss": fmt_plan_price(plan.stop_loss, plan.tick_size),
        "take_profit": fmt_plan_price(plan.take_profit, plan.tick_size), "entry_mode": plan.mode,
        "reward_risk": fmt_num(plan.reward_risk, 2),
    }  # fmt: skip


def from_event(event: Event, event_id: uuid.UUID, settings: Settings) -> Message | None:
    """The message an event asks for, or None for events the broadcaster does not carry."""
    data_source = settings.data_source
    if isinstance(event, TradeSignalled):
        fields = {
            **_direction(event.direction), **_provenance(event.scanner, event.scanner_version),
            "symbol": event.symbol, "score": fmt_num(event.score), "rank": str(event.rank),
            **plan_fields(event), "target": fmt_price(event.target_price),
            "price": fmt_price(event.price),
            "imbalance_pct": fmt_pct(event.imbalance * 100, signed=False),
            "success_pct": fmt_pct(event.success_rate * 100, signed=False),
            "oi_change_pct": fmt_pct(event.oi_change_15m_pct),
            "volume_ratio": fmt_num(event.volume_ratio_5m, 2),
            "move_pct": fmt_pct(event.price_change_5m_pct), "time": _time(event.time),
            "mode": mode_banner(settings.trading_mode, data_source),
        }  # fmt: skip
        return Message("signal", f"signal:{event.signal_id}", event_id, event.score, fields,
                       str(event.signal_id))  # fmt: skip
    if isinstance(event, PositionOpened | PositionStopMoved | PositionClosed):
        common = {
            **_direction(event.direction), **_provenance(event.scanner, event.scanner_version),
            "symbol": event.symbol, "score": fmt_num(event.score), "venue": event.venue,
            "time": _time(event.time), "mode": mode_banner(event.venue, data_source),
        }  # fmt: skip
        cid = str(event.signal_id) if event.signal_id else str(event.trade_id)
        if isinstance(event, PositionOpened):
            fields = {
                **common, "entry": fmt_price(event.entry_price), "qty": f"{event.qty:g}",
                "leverage": f"{event.leverage:g}x", "stop_loss": fmt_price(event.stop_loss),
                "take_profit": fmt_price(event.take_profit),
            }  # fmt: skip
            return Message("entry", f"entry:{event.trade_id}", event_id, event.score, fields, cid)
        if isinstance(event, PositionStopMoved):
            fields = {
                **common, "old_stop": fmt_price(event.old_stop),
                "new_stop": fmt_price(event.new_stop), "price": fmt_price(event.price),
                "profit_pct": fmt_pct(event.profit_pct), "profit_basis": event.profit_basis,
                "ladder_step": str(event.ladder_step),
            }  # fmt: skip
            key = f"stop_moved:{event.trade_id}:{event.ladder_step}:{event.new_stop:.12g}"
            return Message("stop_moved", key, event_id, event.score, fields, cid)
        held = ""
        if event.opened_at is not None:
            minutes = max(int((event.time - event.opened_at).total_seconds() // 60), 0)
            held = f"{minutes // 60}h {minutes % 60:02d}m"
        fields = {
            **common, "entry": fmt_price(event.entry_price), "exit": fmt_price(event.exit_price),
            "close_reason": event.close_reason, "pnl_pct": fmt_pct(event.pnl_pct_price),
            "pnl_pct_margin": fmt_pct(event.pnl_pct_margin),
            "pnl_quote": f"{event.pnl_quote:+,.2f}",
            "result": "✅" if event.pnl_quote > 0 else "❌", "leverage": f"{event.leverage:g}x",
            "held": held or "-",
        }  # fmt: skip
        return Message("exit", f"exit:{event.trade_id}", event_id, event.score, fields, cid)
    if isinstance(event, PolySignalFired | HybridSignalFired):
        criteria = f"{event.criteria_met}/{event.criteria_total}"
        score = 100.0 * event.criteria_met / event.criteria_total
        base = {
            **_provenance(event.scanner, event.scanner_version), "question": event.question,
            "outcome": event.outcome, "edge": f"{event.edge * 100:+.1f} pts", "criteria": criteria,
            "time": _time(event.time), "mode": mode_banner(settings.trading_mode, data_source),
        }  # fmt: skip
        key = f"{event.condition_id}:{event.token_id}"
        if isinstance(event, PolySignalFired):
            fields = {
                **base, "price": f"{event.market_price:.3f}", "implied": f"{event.implied_prob:.2f}",
                "passed": ", ".join(event.passed), "smart_wallets": str(event.smart_wallets),
                "size": f"{event.suggested_size_usd:,.0f} USD",
            }  # fmt: skip
            sig_key = f"poly_signal:{key}:{event.time.isoformat()}"
            return Message(
                "poly_signal", sig_key, event_id, score, fields, sig_key, vertical="poly"
            )
        fields = {
            **base, "symbol": event.symbol, "reasons": ", ".join(event.reasons),
            "perp_rank": str(event.perp_rank) if event.perp_rank is not None else "-",
        }  # fmt: skip
        hyb_key = f"hybrid:{key}:{event.signal_time.isoformat()}:{event.symbol}"
        return Message("hybrid", hyb_key, event_id, score, fields, hyb_key, vertical="poly")
    if isinstance(event, PolyPositionChanged):
        actions = {"entry": ("copied", "📥"), "exit": ("stepped out", "📤"),
                   "resolution": ("resolved", "🏁")}  # fmt: skip
        action, icon = actions[event.kind]
        if event.kind == "resolution" and event.price is not None:  # redeemed at 1 or 0
            action = "resolved: won" if event.price >= 1 else "resolved: lost"
        fields = {
            "action": action, "icon": icon, "question": event.question or event.condition_id,
            "outcome": event.outcome or "-", "shares": f"{event.shares:,.2f}",
            "price": f"{event.price:.3f}" if event.price is not None else "-",
            "cost": f"{event.cost_usd:,.2f} USD", "held": f"{event.held_after:,.2f}",
            "pnl": f"{event.pnl_usd:+,.2f} USD" if event.pnl_usd is not None else "-",
            "pnl_pct": fmt_pct(event.pnl_pct), "reason": event.reason or "-",
            "venue": event.venue, "time": _time(event.time),
            "result": "" if event.pnl_usd is None else ("✅" if event.pnl_usd > 0 else "❌"),
            "mode": mode_banner(event.venue, data_source),
        }  # fmt: skip
        key = f"poly_trade:{event.kind}:{event.order_id or event.token_id}"
        return Message("poly_trade", key, event_id, None, fields, event.signal_key or key,
                       vertical="poly")  # fmt: skip
    return None


def daily_message(day: str, figures: dict[str, Any], settings: Settings) -> Message:
    """The daily digest of `day` (YYYY-MM-DD in the owner's time zone)."""
    fields = {k: str(v) for k, v in figures.items()}
    fields["date"] = day
    fields["mode"] = mode_banner(settings.trading_mode, settings.data_source)
    fields["time"] = day
    event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"whalestack:daily:{day}")
    return Message("daily", f"daily:{day}", event_id, None, fields, f"daily:{day}", "system")
