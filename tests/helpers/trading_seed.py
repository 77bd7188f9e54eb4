"""SYNTHETIC paper-trading history for the dashboard tests, written straight into the trading
tables (trades, orders, position_monitor_logs, equity_snapshots, broadcasts, agent_logs).

Stand-in for a real autotrader + position monitor run until those services exist: the rows
follow the schema's meaning (PnL % on price and on margin consistent with entry/exit, side and
leverage; equity = start + realised + unrealised; stop moves along the trailing ladder), so the
dashboards' SQL sees what the real services will write. Deterministic for a given seed.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

AGENT = "liquidation_hunter"
ALL_TABLES = frozenset(
    {"trades", "orders", "position_monitor_logs", "equity_snapshots", "broadcasts", "agent_logs"}
)
START_EQUITY = 10_000.0
FEE_PCT = 0.055  # taker, percent of notional per side


@dataclass(frozen=True)
class SeededTrading:
    closed: int
    open: int
    stop_moves: int
    equity_rows: int


def _pnl_pct_price(direction: str, entry: float, exit_: float) -> float:
    sign = 1 if direction == "long" else -1
    return (exit_ / entry - 1) * 100 * sign


async def seed_paper_trading(
    conn: AsyncConnection[Any],
    prices: dict[str, float],
    now: datetime,
    scanner: tuple[str, str],
    closed: int = 24,
    open_: int = 3,
    hours: int = 48,
    seed: int = 11,
    tables: frozenset[str] = ALL_TABLES,
) -> SeededTrading:
    """`closed` trades spread over the last `hours` (some today), `open_` still open, equity
    every minute for the account and the agent, and the broadcasts / logs around them."""
    rng = random.Random(seed)
    symbols = sorted(prices)
    venue = "paper"
    start = now - timedelta(hours=hours)
    realised: list[tuple[datetime, float]] = []
    trade_rows: list[tuple[Any, ...]] = []
    order_rows: list[tuple[Any, ...]] = []
    monitor_rows: list[tuple[Any, ...]] = []
    broadcast_rows: list[tuple[Any, ...]] = []
    log_rows: list[tuple[Any, ...]] = []
    stop_moves = 0

    def add_broadcast(at: datetime, event_type: str, text: str, fail: bool) -> None:
        for channel in ("telegram", "email"):
            failed = fail and channel == "email"
            broadcast_rows.append(
                (at, uuid.uuid4(), uuid.uuid4(), event_type, channel,
                 "failed" if failed else "sent", None if failed else str(rng.randint(1, 10**6)),
                 "SMTP 451: try again later" if failed else None, 3 if failed else 1, text,
                 "broadcaster", "perps")
            )  # fmt: skip

    for k in range(closed + open_):
        is_open = k >= closed
        symbol = symbols[k % len(symbols)]
        direction = "long" if rng.random() < 0.6 else "short"
        leverage = rng.choice([3.0, 5.0, 10.0])
        margin = 100.0
        manual = k % 9 == 8 and not is_open
        if is_open:
            opened = now - timedelta(minutes=rng.randint(10, 180))
            entry = prices[symbol] * (1 - rng.uniform(-0.01, 0.01))
        else:
            # the first closed trades are today, the rest spread over the window
            span = hours * 60 - 60
            opened = now - timedelta(minutes=30 + k * 7 if k < 4 else rng.randint(60, span))
            entry = prices[symbol] * rng.uniform(0.9, 1.1)
        qty = margin * leverage / entry
        stop = entry * (0.97 if direction == "long" else 1.03)
        tp = entry * (1.06 if direction == "long" else 0.94)
        trade_id = uuid.uuid4()
        exit_price = closed_at = reason = pnl_quote = pnl_price = pnl_margin = fees = None
        if not is_open:
            win = rng.random() < 0.55
            move = rng.uniform(0.5, 6.0) if win else -rng.uniform(0.5, 3.0)
            sign = 1 if direction == "long" else -1
            exit_price = entry * (1 + sign * move / 100)
            closed_at = min(opened + timedelta(minutes=rng.randint(5, 50)), now)
            reason = "tp" if move > 4 else ("trailing_sl" if win else "sl")
            pnl_price = _pnl_pct_price(direction, entry, exit_price)
            fees = margin * leverage * FEE_PCT / 100 * 2
            pnl_quote = margin * leverage * pnl_price / 100 - fees
            pnl_margin = pnl_quote / margin * 100
            realised.append((closed_at, pnl_quote))
            add_broadcast(
                closed_at, "exit", f"{symbol} closed {pnl_margin:+.2f} %", fail=k % 5 == 0
            )
        agent = "manual" if manual else AGENT
        trade_rows.append(
            (trade_id, agent, None if manual else "1.0.0",
             None if manual else scanner[0], None if manual else scanner[1],
             "manual" if manual else "auto", venue, symbol, direction,
             None if manual else "conservative", leverage, qty, margin, entry, exit_price, stop, tp,
             stop, "open" if is_open else "closed", reason, pnl_quote, pnl_price, pnl_margin, fees,
             opened, closed_at, Jsonb({"synthetic": True}))
        )  # fmt: skip
        side = "buy" if direction == "long" else "sell"
        order_rows.append(
            (f"seed-{trade_id.hex[:24]}-e", venue, trade_id, symbol, side, "limit", qty, entry,
             "filled", qty, entry, margin * leverage * FEE_PCT / 100, opened, opened, agent)
        )  # fmt: skip
        if not is_open:
            order_rows.append(
                (f"seed-{trade_id.hex[:24]}-x", venue, trade_id, symbol,
                 "sell" if side == "buy" else "buy", "market", qty, None, "filled", qty, exit_price,
                 margin * leverage * FEE_PCT / 100, closed_at, closed_at, agent)
            )  # fmt: skip
        add_broadcast(opened, "entry", f"{symbol} {direction} at {entry:.4f}", fail=False)
        # the trailing ladder: breakeven after a good run (profit on margin)
        if (is_open or (pnl_margin or 0) > 10) and k % 2 == 0:
            moved = opened + timedelta(minutes=4)
            monitor_rows.append(
                (moved, trade_id, symbol, "stop_moved", stop, entry,
                 entry * (1.02 if direction == "long" else 0.98), 10.0, "margin", 1,
                 "position_monitor", venue, Jsonb({"synthetic": True}))
            )  # fmt: skip
            stop_moves += 1
        if not is_open:
            monitor_rows.append(
                (closed_at, trade_id, symbol, "closed", None, None, exit_price, pnl_margin,
                 "margin", None, "position_monitor", venue, Jsonb({"synthetic": True}))
            )  # fmt: skip

    # equity every minute: start + realised so far + a little unrealised noise
    realised.sort()
    equity_rows: list[tuple[Any, ...]] = []
    t = start.replace(second=0, microsecond=0)
    done = 0.0
    j = 0
    while t <= now:
        while j < len(realised) and realised[j][0] <= t:
            done += realised[j][1]
            j += 1
        unreal = rng.uniform(-15, 15)
        for agent in ("account", AGENT):
            eq = START_EQUITY + done + unreal
            equity_rows.append(
                (t, venue, agent, eq, START_EQUITY + done, unreal, START_EQUITY,
                 (eq / START_EQUITY - 1) * 100, open_)
            )  # fmt: skip
        t += timedelta(minutes=1)

    for i in range(6):
        at = now - timedelta(minutes=20 * i + 3)
        level = "error" if i % 3 == 0 else "warning"
        log_rows.append(
            (at, uuid.uuid4(), "autotrader", AGENT, "seed", "perps", level, "order_rejected",
             f"synthetic {level}: venue rejected an order", symbols[i % len(symbols)],
             Jsonb({"synthetic": True}))
        )  # fmt: skip

    async with conn.cursor() as cur:
        if "trades" in tables:
            await cur.executemany(
                """INSERT INTO trades (trade_id, agent, agent_version, scanner, scanner_version, source,
                   venue, symbol, direction, entry_mode, leverage, qty, margin, entry_price,
                   exit_price, stop_loss, take_profit, initial_stop_loss, status, close_reason,
                   pnl_quote, pnl_pct_price, pnl_pct_margin, fees, opened_at, closed_at, metadata)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                       %s, %s, %s, %s, %s, %s, %s, %s)""",
                trade_rows,
            )
        if "orders" in tables:
            await cur.executemany(
                """INSERT INTO orders (order_link_id, venue, trade_id, symbol, side, order_type, qty,
                   price, status, filled_qty, avg_fill_price, fee, created_at, updated_at, agent)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                order_rows,
            )
        if "position_monitor_logs" in tables:
            await cur.executemany(
                """INSERT INTO position_monitor_logs (time, trade_id, symbol, action, old_stop,
                   new_stop, price, profit_pct, profit_basis, ladder_step, agent, venue, detail)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                monitor_rows,
            )
        if "equity_snapshots" in tables:
            await cur.executemany(
                """INSERT INTO equity_snapshots (time, venue, agent, equity, balance, unrealized_pnl,
                   start_equity, pnl_pct_from_start, open_positions)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                equity_rows,
            )
        if "broadcasts" in tables:
            await cur.executemany(
                """INSERT INTO broadcasts (time, broadcast_id, event_id, event_type, channel, status,
                   provider_message_id, error, attempts, text, agent, vertical)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                broadcast_rows,
            )
        if "agent_logs" in tables:
            await cur.executemany(
                """INSERT INTO agent_logs (time, event_id, service, agent, instance, vertical, level,
                   event_type, message, symbol, detail)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                log_rows,
            )
    return SeededTrading(closed, open_, stop_moves, len(equity_rows))


def latest_prices(rows: Sequence[tuple[str, Any]]) -> dict[str, float]:
    return {str(sym): float(price) for sym, price in rows}
