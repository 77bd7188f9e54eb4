"""The trade log: autotrader decisions, trades, orders and every order state change.

Natural keys make every write idempotent: a decision per signal, a trade per signal (its id is
derived from the signal id), an order per order_link_id, an order event per (order, status, time).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from quantcore.model.trading import Order

TRADE_NAMESPACE = uuid.UUID("5d0c7d64-8f0b-4a39-9d55-2a6b2f1f7c11")
OPEN_TRADE_STATUSES = ("pending", "open")


def trade_id_for(signal_id: uuid.UUID) -> uuid.UUID:
    """One trade per signal, whichever replica or retry writes it."""
    return uuid.uuid5(TRADE_NAMESPACE, str(signal_id))


def order_link_id_for(signal_id: uuid.UUID, ladder_index: int | None = None) -> str:
    """The order_link_id (≤ 36 chars, the venue's client order id): the signal id's 32 hex digits, 'e' for entry, the rung."""
    return f"{signal_id.hex}e{ladder_index or 0:02d}"


# --- decisions ---------------------------------------------------------------------------------------


async def decision_of(conn: AsyncConnection[Any], signal_id: uuid.UUID) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT * FROM autotrader_decisions WHERE signal_id = %s", (signal_id,))
    return await cur.fetchone()


async def record_decision(
    conn: AsyncConnection[Any],
    *,
    signal_id: uuid.UUID,
    agent: str,
    agent_version: str,
    instance: str,
    decision: str,
    reason: str | None,
    symbol: str,
    venue: str,
    trade_id: uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Returns False when the signal already had a decision (the first one stands; the
    signal's status stays the one that decision gave it)."""
    cur = await conn.execute(
        """
        INSERT INTO autotrader_decisions (signal_id, agent, agent_version, instance, decision, reason,
                                          trade_id, symbol, venue, detail)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (signal_id) DO NOTHING
        """,
        (signal_id, agent, agent_version, instance, decision, reason, trade_id, symbol, venue,
         Jsonb(detail or {})),
    )  # fmt: skip
    if cur.rowcount != 1:
        return False
    await conn.execute(
        "UPDATE signals SET status = %s, status_reason = %s WHERE signal_id = %s",
        (decision if decision != "refused" else "rejected", reason, signal_id),
    )
    return True


async def heatmap_age_s(conn: AsyncConnection[Any], symbol: str) -> float | None:
    """Seconds since the OLDEST timeframe of a coin was refreshed (None: never)."""
    cur = await conn.execute(
        "SELECT extract(epoch FROM now() - min(refreshed_at))::float8 FROM liquidation_refreshes "
        "WHERE symbol = %s",
        (symbol,),
    )
    row = await cur.fetchone()
    return None if row is None or row[0] is None else float(row[0])


# --- risk state ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exposure:
    open_symbols: frozenset[str]
    used_margin: float
    realised_today: float


async def exposure(conn: AsyncConnection[Any], venue: str, day_start: datetime) -> Exposure:
    cur = await conn.execute(
        """
        SELECT coalesce(array_agg(DISTINCT symbol) FILTER (WHERE status IN ('pending', 'open')), '{}'),
               coalesce(sum(margin) FILTER (WHERE status IN ('pending', 'open')), 0)::float8,
               coalesce(sum(pnl_quote) FILTER (WHERE status = 'closed' AND closed_at >= %s), 0)::float8
        FROM trades WHERE venue = %s AND vertical = 'perps'
          AND (status IN ('pending', 'open') OR closed_at >= %s)
        """,
        (day_start, venue, day_start),
    )
    row = await cur.fetchone()
    assert row is not None
    return Exposure(frozenset(row[0]), float(row[1]), float(row[2]))


async def exposure_unless_decided(
    conn: AsyncConnection[Any], signal_id: uuid.UUID, venue: str, day_start: datetime
) -> Exposure | str:
    """`exposure`, or the signal's earlier decision ('traded', 'refused', …) when it already has
    one — one statement, so the autotrader's shared risk lock is held for one round trip less
    and a new signal needs no separate "decided yet?" read."""
    cur = await conn.execute(
        """
        SELECT coalesce(array_agg(DISTINCT symbol) FILTER (WHERE status IN ('pending', 'open')), '{}'),
               coalesce(sum(margin) FILTER (WHERE status IN ('pending', 'open')), 0)::float8,
               coalesce(sum(pnl_quote) FILTER (WHERE status = 'closed' AND closed_at >= %s), 0)::float8,
               (SELECT decision FROM autotrader_decisions WHERE signal_id = %s)
        FROM trades WHERE venue = %s AND vertical = 'perps'
          AND (status IN ('pending', 'open') OR closed_at >= %s)
        """,
        (day_start, signal_id, venue, day_start),
    )
    row = await cur.fetchone()
    assert row is not None
    if row[3] is not None:
        return str(row[3])
    return Exposure(frozenset(row[0]), float(row[1]), float(row[2]))


# --- trades and orders --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeldTrade:
    trade_id: uuid.UUID
    scanner: str | None
    direction: str
    margin: float
    status: str = "open"  # 'pending' (entry not filled yet) or 'open'


async def held_trade(conn: AsyncConnection[Any], venue: str, symbol: str) -> HeldTrade | None:
    """The pending or open trade on a coin (one position per coin), if any."""
    cur = await conn.execute(
        "SELECT trade_id, scanner, direction, coalesce(margin, 0)::float8, status FROM trades "
        "WHERE venue = %s AND vertical = 'perps' AND symbol = %s AND status IN ('pending', 'open') "
        "ORDER BY created_at DESC LIMIT 1",
        (venue, symbol),
    )
    row = await cur.fetchone()
    return None if row is None else HeldTrade(row[0], row[1], row[2], float(row[3]), row[4])


async def set_trade_levels(
    conn: AsyncConnection[Any], trade_id: uuid.UUID, stop_loss: Decimal | None,
    take_profit: Decimal | None,
) -> None:  # fmt: skip
    """Stop and target set after the fill (a plug-in's levels are distances from the fill)."""
    await conn.execute(
        "UPDATE trades SET stop_loss = %s, initial_stop_loss = %s, take_profit = %s, "
        "updated_at = now() WHERE trade_id = %s",
        (stop_loss, stop_loss, take_profit, trade_id),
    )


async def insert_pending_trade(conn: AsyncConnection[Any], row: dict[str, Any]) -> bool:
    """Insert a trade in 'pending' (entry orders not filled yet); False when it exists."""
    cols = list(row)
    values = [Jsonb(v) if isinstance(v, dict) else v for v in row.values()]
    cur = await conn.execute(
        f"INSERT INTO trades ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))}) "
        "ON CONFLICT DO NOTHING",
        values,
    )
    return cur.rowcount == 1


ORDER_COLUMNS = (
    "order_link_id", "venue", "signal_id", "trade_id", "symbol", "side", "order_type", "qty", "price",
    "time_in_force", "reduce_only", "ladder_index", "stop_loss", "take_profit", "status", "agent",
)  # fmt: skip


async def insert_created_orders(conn: AsyncConnection[Any], rows: Sequence[Sequence[Any]]) -> None:
    """Orders in state 'submitting' — written BEFORE the venue call, so a crash after the venue
    accepted them leaves a row to reconcile, never an orphan."""
    await conn.cursor().executemany(
        f"INSERT INTO orders ({', '.join(ORDER_COLUMNS)}) VALUES ({', '.join(['%s'] * len(ORDER_COLUMNS))}) "
        "ON CONFLICT (order_link_id) DO NOTHING",
        rows,
    )


async def apply_venue_order(conn: AsyncConnection[Any], o: Order, agent: str) -> bool:
    """Bring our row of an order to the venue's state; record the change in order_events.
    Returns whether the status or fill changed. One statement (one round trip)."""
    return await _changed(await _apply_venue_order(conn, o, agent))


async def apply_venue_orders(
    conn: AsyncConnection[Any], orders: Sequence[Order], agent: str
) -> list[bool]:
    """`apply_venue_order` for each; on a connection in pipeline mode, all in one round trip."""
    cursors = [await _apply_venue_order(conn, o, agent) for o in orders]
    return [await _changed(cur) for cur in cursors]


async def _changed(cur: AsyncCursor[Any]) -> bool:
    row = await cur.fetchone()
    return bool(row and row[0])


async def _apply_venue_order(conn: AsyncConnection[Any], o: Order, agent: str) -> AsyncCursor[Any]:
    return await conn.execute(
        """
        WITH changed AS (
            UPDATE orders SET venue_order_id = %(vid)s, status = %(st)s, filled_qty = %(fq)s,
                   avg_fill_price = %(avg)s, fee = %(fee)s,
                   reject_reason = coalesce(%(rr)s, reject_reason), updated_at = now()
            WHERE order_link_id = %(link)s AND (status IS DISTINCT FROM %(st)s
                  OR filled_qty IS DISTINCT FROM %(fq)s OR venue_order_id IS DISTINCT FROM %(vid)s)
            RETURNING order_link_id
        ), event AS (
            INSERT INTO order_events (time, order_link_id, status, venue_order_id, filled_qty,
                                      avg_fill_price, fee, agent, detail)
            SELECT %(at)s::timestamptz, order_link_id, %(st)s::text, %(vid)s::text,
                   %(fq)s::numeric, %(avg)s::numeric, %(fee)s::numeric, %(agent)s::text,
                   %(detail)s::jsonb
            FROM changed ON CONFLICT DO NOTHING
        )
        SELECT count(*) FROM changed
        """,
        {"vid": o.venue_order_id, "st": o.status, "fq": o.filled_qty, "avg": o.avg_fill_price,
         "fee": o.fee, "rr": o.reject_reason, "link": o.order_link_id, "at": o.updated_at,
         "agent": agent, "detail": Jsonb({"reject_reason": o.reject_reason, "duplicate": o.duplicate})},
    )  # fmt: skip


async def orders_in(
    conn: AsyncConnection[Any], venue: str, statuses: Sequence[str]
) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT * FROM orders WHERE venue = %s AND vertical = 'perps' AND status = ANY(%s) "
        "ORDER BY created_at",
        (venue, list(statuses)),
    )
    return await cur.fetchall()


async def open_trades(conn: AsyncConnection[Any], venue: str) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT * FROM trades WHERE venue = %s AND vertical = 'perps' "
        "AND status IN ('pending', 'open') ORDER BY created_at",
        (venue,),
    )
    return await cur.fetchall()
