"""Position monitor writes: trades opened/closed, stop moves, outcome learning, equity."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from quantcore.model.trading import EntryOrder, OrderStatus
from quantcore.trading.stats import track_record


async def mark_open(
    conn: AsyncConnection[Any], trade_id: uuid.UUID, entry: Decimal, qty: Decimal, at: datetime
) -> bool:
    """pending → open with the venue's average entry and size; False when already open."""
    cur = await conn.execute(
        """
        UPDATE trades SET status = 'open', entry_price = %s, qty = %s, opened_at = %s,
               margin = %s * %s / coalesce(leverage, 1), updated_at = now()
        WHERE trade_id = %s AND status = 'pending'
        """,
        (entry, qty, at, entry, qty, trade_id),
    )
    return cur.rowcount == 1


async def update_open(
    conn: AsyncConnection[Any],
    trade_id: uuid.UUID,
    entry: Decimal,
    qty: Decimal,
    favorable_pct: float,
    adverse_pct: float,
) -> None:
    """Ladder rungs that fill later grow the position; excursions only widen."""
    await conn.execute(
        """
        UPDATE trades SET entry_price = %s, qty = %s, margin = %s * %s / coalesce(leverage, 1),
               max_favorable_pct = greatest(coalesce(max_favorable_pct, %s), %s),
               max_adverse_pct = least(coalesce(max_adverse_pct, %s), %s), updated_at = now()
        WHERE trade_id = %s AND status = 'open'
        """,
        (entry, qty, entry, qty, favorable_pct, favorable_pct, adverse_pct, adverse_pct, trade_id),
    )


async def move_stop(conn: AsyncConnection[Any], trade_id: uuid.UUID, stop: Decimal) -> None:
    await conn.execute(
        "UPDATE trades SET stop_loss = %s, updated_at = now() WHERE trade_id = %s", (stop, trade_id)
    )


async def mark_closed(
    conn: AsyncConnection[Any],
    trade_id: uuid.UUID,
    *,
    exit_price: Decimal,
    reason: str,
    pnl_quote: Decimal,
    pnl_pct_price: float,
    pnl_pct_margin: float,
    fees: Decimal | None,
    at: datetime,
    qty: Decimal | None = None,
) -> bool:
    cur = await conn.execute(
        """
        UPDATE trades SET status = 'closed', exit_price = %s, close_reason = %s, pnl_quote = %s,
               pnl_pct_price = %s, pnl_pct_margin = %s, fees = %s, closed_at = %s,
               qty = coalesce(%s, qty), updated_at = now()
        WHERE trade_id = %s AND status = 'open'
        """,
        (exit_price, reason, pnl_quote, pnl_pct_price, pnl_pct_margin, fees, at, qty, trade_id),
    )
    return cur.rowcount == 1


async def log_action(
    conn: AsyncConnection[Any],
    *,
    at: datetime,
    trade: dict[str, Any],
    action: str,
    agent: str,
    price: float | None = None,
    old_stop: Decimal | None = None,
    new_stop: Decimal | None = None,
    profit_pct: float | None = None,
    profit_basis: str | None = None,
    ladder_step: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        """
        INSERT INTO position_monitor_logs (time, trade_id, symbol, action, old_stop, new_stop, price,
            profit_pct, profit_basis, ladder_step, agent, venue, correlation_id, detail)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
        """,
        (at, trade["trade_id"], trade["symbol"], action, old_stop, new_stop, price, profit_pct,
         profit_basis, ladder_step, agent, trade["venue"], trade.get("correlation_id"),
         Jsonb(detail or {})),
    )  # fmt: skip


async def learn_outcome(
    conn: AsyncConnection[Any], trade: dict[str, Any], won: bool, agent: str
) -> None:
    """Count a closed trade in its coin × target timeframe (the ranker's success rate)."""
    if trade.get("signal_id") is None:
        return
    cur = await conn.execute(
        "SELECT inputs->'ranking'->'target'->>'timeframe' FROM signals WHERE signal_id = %s LIMIT 1",
        (trade["signal_id"],),
    )
    row = await cur.fetchone()
    timeframe = row[0] if row else None
    if timeframe is None:
        return
    await conn.execute(
        """
        INSERT INTO coin_liquidation_patterns (symbol, timeframe, trade_wins, trade_losses, agent)
        VALUES (%s, %s, %s, %s, %s)
        ON CONFLICT (symbol, timeframe) DO UPDATE SET
            trade_wins = coin_liquidation_patterns.trade_wins + EXCLUDED.trade_wins,
            trade_losses = coin_liquidation_patterns.trade_losses + EXCLUDED.trade_losses,
            updated_at = now()
        """,
        (trade["symbol"], timeframe, int(won), int(not won), agent),
    )


async def refresh_scanner_stats(
    conn: AsyncConnection[Any], scanner: str, version: str, venue: str
) -> None:
    """Recompute one scanner version's track record from all its closed trades (idempotent)."""
    cur = await conn.execute(
        """
        SELECT pnl_pct_margin::float8, coalesce(pnl_quote, 0)::float8 FROM trades
        WHERE scanner = %s AND scanner_version = %s AND venue = %s AND status = 'closed'
              AND pnl_pct_margin IS NOT NULL
        ORDER BY closed_at
        """,
        (scanner, version, venue),
    )
    rows = await cur.fetchall()
    r = track_record([float(x[0]) for x in rows])
    await conn.execute(
        """
        INSERT INTO scanner_stats (scanner, scanner_version, venue, trades, wins, losses, win_rate,
            avg_win_pct, avg_loss_pct, reward_risk, total_pnl_pct, pnl_quote, max_drawdown_pct, updated_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
        ON CONFLICT (scanner, scanner_version, venue) DO UPDATE SET
            trades = EXCLUDED.trades, wins = EXCLUDED.wins, losses = EXCLUDED.losses,
            win_rate = EXCLUDED.win_rate, avg_win_pct = EXCLUDED.avg_win_pct,
            avg_loss_pct = EXCLUDED.avg_loss_pct, reward_risk = EXCLUDED.reward_risk,
            total_pnl_pct = EXCLUDED.total_pnl_pct, pnl_quote = EXCLUDED.pnl_quote,
            max_drawdown_pct = EXCLUDED.max_drawdown_pct, updated_at = now()
        """,
        (scanner, version, venue, r.trades, r.wins, r.losses, r.win_rate, r.avg_win_pct,
         r.avg_loss_pct, r.reward_risk, r.total_pnl_pct, sum(x[1] for x in rows), r.max_drawdown_pct),
    )  # fmt: skip


async def import_manual(
    conn: AsyncConnection[Any], *, venue: str, symbol: str, direction: str, entry: Decimal, qty: Decimal,
    leverage: Decimal | None, stop: Decimal | None, take_profit: Decimal | None, external_id: str,
    at: datetime,
) -> uuid.UUID | None:  # fmt: skip
    """A position the owner opened on the exchange: tracked as agent 'manual' so PnL is complete."""
    cur = await conn.execute(
        """
        INSERT INTO trades (agent, source, venue, symbol, direction, leverage, qty, margin, entry_price,
                            stop_loss, take_profit, initial_stop_loss, status, opened_at, external_id, notes)
        VALUES ('manual', 'manual', %s, %s, %s, %s, %s, %s * %s / %s, %s, %s, %s, %s, 'open', %s, %s,
                'imported from the venue')
        ON CONFLICT DO NOTHING RETURNING trade_id
        """,
        (venue, symbol, direction, leverage, qty, entry, qty, leverage, entry, stop, take_profit,
         stop, at, external_id),
    )  # fmt: skip
    row = await cur.fetchone()
    return row[0] if row else None


async def write_equity(
    conn: AsyncConnection[Any], *, at: datetime, venue: str, agent: str, equity: Decimal,
    balance: Decimal | None, unrealised: Decimal | None, start_equity: Decimal, open_positions: int,
    vertical: str = "perps",
) -> None:  # fmt: skip
    pct = (equity / start_equity - 1) * 100 if start_equity > 0 else None
    await conn.execute(
        """
        INSERT INTO equity_snapshots (time, venue, agent, equity, balance, unrealized_pnl, start_equity,
                                      pnl_pct_from_start, open_positions, vertical)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
        """,
        (at, venue, agent, equity, balance, unrealised, start_equity, pct, open_positions, vertical),
    )  # fmt: skip


async def start_equity(conn: AsyncConnection[Any], venue: str, agent: str) -> Decimal | None:
    cur = await conn.execute(
        "SELECT start_equity FROM equity_snapshots WHERE venue = %s AND agent = %s "
        "ORDER BY time LIMIT 1",
        (venue, agent),
    )
    row = await cur.fetchone()
    return None if row is None or row[0] is None else Decimal(row[0])


async def cancel_pending(conn: AsyncConnection[Any], trade_id: uuid.UUID, note: str) -> bool:
    """A pending trade whose entry never filled → cancelled; False when it was not pending."""
    cur = await conn.execute(
        "UPDATE trades SET status = 'cancelled', close_reason = 'cancelled', notes = %s, "
        "updated_at = now() WHERE trade_id = %s AND status = 'pending'",
        (note, trade_id),
    )
    return cur.rowcount == 1


async def entry_orders(conn: AsyncConnection[Any], trade_id: uuid.UUID) -> list[EntryOrder]:
    """The trade's entry orders (not the reduce-only ones) as we last recorded them."""
    cur = await conn.execute(
        "SELECT order_link_id, status, filled_qty, avg_fill_price FROM orders "
        "WHERE trade_id = %s AND NOT reduce_only ORDER BY ladder_index NULLS FIRST",
        (trade_id,),
    )
    return [EntryOrder(r[0], OrderStatus(r[1]), r[2], r[3]) for r in await cur.fetchall()]


@dataclass(frozen=True)
class AgentBook:
    agent: str
    realised: Decimal  # closed trades' PnL, quote
    open_trades: int
    open_symbols: frozenset[str]


async def agent_books(conn: AsyncConnection[Any], venue: str) -> list[AgentBook]:
    """Each agent's realised PnL and open trades on the venue (for its equity snapshot)."""
    cur = await conn.execute(
        """
        SELECT agent, coalesce(sum(pnl_quote) FILTER (WHERE status = 'closed'), 0),
               count(*) FILTER (WHERE status = 'open'),
               coalesce(array_agg(DISTINCT symbol) FILTER (WHERE status = 'open'), '{}')
        FROM trades WHERE venue = %s AND vertical = 'perps' GROUP BY agent ORDER BY agent
        """,
        (venue,),
    )
    return [
        AgentBook(r[0], Decimal(r[1]), int(r[2]), frozenset(r[3])) for r in await cur.fetchall()
    ]
