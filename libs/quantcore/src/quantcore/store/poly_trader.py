"""SQL of the Polymarket copy trader (agent poly_copy): its decisions, its exit / redemption
steps, and what it reads of the intelligence (markets, the followed wallets' positions)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from quantcore.store.trades import trade_id_for
from quantcore.trading.stats import track_record
from quantcore.venues.poly import PolyOrder

Row = dict[str, Any]
COPY_LOCK = 0x9C0F_7A0E  # pg advisory lock: one cap decision at a time across replicas


@dataclass(frozen=True)
class MarketState:
    condition_id: str
    question: str
    closed: bool
    resolved_outcome: str | None
    end_date: datetime | None
    outcomes: list[str]
    token_ids: list[str]

    def outcome_of(self, token_id: str) -> str | None:
        return self.outcomes[self.token_ids.index(token_id)] if token_id in self.token_ids else None

    @property
    def winner_token(self) -> str | None:
        if self.resolved_outcome is None or self.resolved_outcome not in self.outcomes:
            return None
        return self.token_ids[self.outcomes.index(self.resolved_outcome)]


async def lock_caps(conn: AsyncConnection[Any]) -> None:
    """Inside a transaction: serialise exposure checks and orders across replicas."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (COPY_LOCK,))


async def decision_of(conn: AsyncConnection[Any], signal_key: str) -> Row | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT * FROM poly_copy_decisions WHERE signal_key = %s", (signal_key,))
    return await cur.fetchone()


async def record_decision(conn: AsyncConnection[Any], **row: Any) -> bool:
    """Insert a decision; False when the signal was already decided (the first one stands)."""
    cols = list(row)
    cur = await conn.execute(
        f"INSERT INTO poly_copy_decisions ({', '.join(cols)}) "
        f"VALUES ({', '.join(['%s'] * len(cols))}) ON CONFLICT (signal_key) DO NOTHING",
        [row[c] for c in cols],
    )
    return cur.rowcount == 1


async def settle_decision(
    conn: AsyncConnection[Any],
    signal_key: str,
    order_status: str,
    filled: Decimal,
    cost_usd: Decimal,
    reason: str | None,
) -> None:
    """The venue's answer; an order the venue rejected (rules, liquidity) makes it 'refused'."""
    await conn.execute(
        "UPDATE poly_copy_decisions SET order_status = %s, filled = %s, cost_usd = %s, "
        "reason = COALESCE(%s, reason), updated_at = now(), "
        "decision = CASE WHEN %s = 'rejected' THEN 'refused' ELSE decision END "
        "WHERE signal_key = %s",
        (order_status, filled, cost_usd, reason, order_status, signal_key),
    )


async def unsettled(conn: AsyncConnection[Any]) -> list[Row]:
    """Traded decisions whose venue answer was never recorded (a crash between the two)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT * FROM poly_copy_decisions WHERE decision = 'traded' AND order_status IS NULL "
        "ORDER BY created_at"
    )
    return await cur.fetchall()


async def reserved(conn: AsyncConnection[Any]) -> dict[str, Decimal]:
    """condition → the worst-case cost of entries decided but not yet answered by the venue
    (they count as exposure: another replica must not spend the same room meanwhile)."""
    cur = await conn.execute(
        "SELECT condition_id, sum(cost_usd) FROM poly_copy_decisions "
        "WHERE decision = 'traded' AND order_status IS NULL GROUP BY condition_id"
    )
    return {r[0]: Decimal(r[1]) for r in await cur.fetchall()}


async def market_state(conn: AsyncConnection[Any], condition_id: str) -> MarketState | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT condition_id, question, closed, resolved_outcome, end_date, outcomes, token_ids "
        "FROM poly_markets WHERE condition_id = %s",
        (condition_id,),
    )
    row = await cur.fetchone()
    return None if row is None else MarketState(**row)


async def followed(conn: AsyncConnection[Any], token_id: str) -> Row | None:
    """The latest traded decision of a token with the smart wallets its signal named."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT d.*, COALESCE(s.smart_wallets, '{}') AS wallets
           FROM poly_copy_decisions d
           LEFT JOIN poly_signals s ON s.condition_id = d.condition_id
                AND s.token_id = d.token_id AND s.time = d.signal_time
           WHERE d.token_id = %s AND d.decision = 'traded' AND d.filled > 0
           ORDER BY d.signal_time DESC LIMIT 1""",
        (token_id,),
    )
    return await cur.fetchone()


async def wallets_holding(conn: AsyncConnection[Any], token_id: str, wallets: list[str]) -> int:
    """How many of `wallets` still hold the token (their latest known position is open)."""
    cur = await conn.execute(
        "SELECT count(*) FROM poly_positions WHERE token_id = %s AND wallet = ANY(%s) "
        "AND status = 'OPEN' AND size > 0",
        (token_id, wallets),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def steps_taken(conn: AsyncConnection[Any], token_id: str, since: datetime) -> int:
    cur = await conn.execute(
        "SELECT count(*) FROM poly_copy_steps WHERE token_id = %s AND time >= %s",
        (token_id, since),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def record_step(conn: AsyncConnection[Any], **row: Any) -> bool:
    cols = list(row)
    cur = await conn.execute(
        f"INSERT INTO poly_copy_steps ({', '.join(cols)}) "
        f"VALUES ({', '.join(['%s'] * len(cols))}) ON CONFLICT (order_id) DO NOTHING",
        [row[c] for c in cols],
    )
    return cur.rowcount == 1


# --- records in the shared trade log (orders / trades with vertical 'poly') -------------------

POLY_SIGNAL_NAMESPACE = uuid.UUID("3f6c2a9e-51d4-4f0b-9a7e-6c1d2b8e4a57")


def signal_id_of(signal_key: str) -> uuid.UUID:
    """The uuid a poly signal has in the trade log (trades.signal_id, orders.signal_id): derived
    from its natural key, so every replica and every retry writes the same one."""
    return uuid.uuid5(POLY_SIGNAL_NAMESPACE, signal_key)


async def signal_wallets(
    conn: AsyncConnection[Any], condition_id: str, token_id: str, at: datetime
) -> list[str]:
    """The smart wallets a poly signal followed (poly_signals), [] when it is not stored."""
    cur = await conn.execute(
        "SELECT smart_wallets FROM poly_signals WHERE condition_id = %s AND token_id = %s "
        "AND time = %s",
        (condition_id, token_id, at),
    )
    row = await cur.fetchone()
    return list(row[0]) if row and row[0] else []


async def open_trade(conn: AsyncConnection[Any], venue: str, token_id: str) -> Row | None:
    """The open (or pending) poly trade of a token on the venue: at most one (unique index)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT * FROM trades WHERE vertical = 'poly' AND venue = %s AND symbol = %s "
        "AND status IN ('pending', 'open')",
        (venue, token_id),
    )
    return await cur.fetchone()


async def trade_of_order(conn: AsyncConnection[Any], order_id: str) -> uuid.UUID | None:
    cur = await conn.execute(
        "SELECT trade_id FROM orders WHERE order_link_id = %s AND vertical = 'poly'", (order_id,)
    )
    row = await cur.fetchone()
    return None if row is None else row[0]


@dataclass(frozen=True)
class EntryIntent:
    """A copy entry about to be placed: the rows written with its decision, before the venue."""

    signal_key: str
    condition_id: str
    token_id: str
    order_id: str
    limit: Decimal
    shares: Decimal
    wallets: list[str]
    scanner: str | None
    scanner_version: str | None
    question: str | None
    outcome: str | None
    agent: str
    agent_version: str
    venue: str


async def record_entry_intent(conn: AsyncConnection[Any], e: EntryIntent) -> uuid.UUID:
    """Inside the decision's transaction: the trade (a new one 'pending', or the token's open
    one, which gains the signal's wallets) and the order in 'submitting'. Returns the trade id.
    Idempotent: the trade id and the order id are derived from the signal."""
    sid = signal_id_of(e.signal_key)
    held = await open_trade(conn, e.venue, e.token_id)
    if held is not None:
        trade_id: uuid.UUID = held["trade_id"]
        await conn.execute(
            "UPDATE trades SET followed_wallets = ARRAY(SELECT DISTINCT unnest("
            "coalesce(followed_wallets, '{}') || %s::text[]) ORDER BY 1), updated_at = now() "
            "WHERE trade_id = %s",
            (e.wallets, trade_id),
        )
    else:
        trade_id = trade_id_for(sid)
        await conn.execute(
            """INSERT INTO trades (trade_id, signal_id, signal_key, agent, agent_version, scanner,
                   scanner_version, source, venue, vertical, symbol, condition_id, direction,
                   leverage, status, followed_wallets, notes, metadata)
               VALUES (%s, %s, %s, %s, %s, %s, %s, 'auto', %s, 'poly', %s, %s, 'long', 1,
                       'pending', %s, %s, %s)
               ON CONFLICT DO NOTHING""",
            (trade_id, sid, e.signal_key, e.agent, e.agent_version, e.scanner, e.scanner_version,
             e.venue, e.token_id, e.condition_id, sorted(set(e.wallets)),
             f"{e.question or e.condition_id}: {e.outcome or e.token_id}",
             Jsonb({"question": e.question, "outcome": e.outcome})),
        )  # fmt: skip
    await conn.execute(
        """INSERT INTO orders (order_link_id, venue, signal_id, signal_key, trade_id, symbol, side,
               order_type, qty, price, time_in_force, reduce_only, status, agent, vertical)
           VALUES (%s, %s, %s, %s, %s, %s, 'buy', 'limit', %s, %s, 'ioc', false, 'submitting',
                   %s, 'poly')
           ON CONFLICT (order_link_id) DO NOTHING""",
        (e.order_id, e.venue, sid, e.signal_key, trade_id, e.token_id, e.shares, e.limit,
         e.agent),
    )  # fmt: skip
    return trade_id


async def record_order(
    conn: AsyncConnection[Any],
    order: PolyOrder,
    *,
    venue: str,
    agent: str,
    trade_id: uuid.UUID | None,
    signal_key: str | None,
) -> bool:
    """Our row of a venue order brought to the venue's state (inserted when missing: an exit
    step, or an entry decided before the trade log held poly orders), and the change in
    order_events. Returns whether anything changed."""
    sid = signal_id_of(signal_key) if signal_key else None
    cur = await conn.execute(
        """INSERT INTO orders (order_link_id, venue_order_id, venue, signal_id, signal_key, trade_id,
               symbol, side, order_type, qty, price, time_in_force, reduce_only, status,
               filled_qty, avg_fill_price, fee, reject_reason, agent, vertical, created_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'limit', %s, %s, 'ioc', %s, %s, %s, %s, %s, %s,
                   %s, 'poly', %s)
           ON CONFLICT (order_link_id) DO UPDATE SET
               venue_order_id = EXCLUDED.venue_order_id, status = EXCLUDED.status,
               filled_qty = EXCLUDED.filled_qty, avg_fill_price = EXCLUDED.avg_fill_price,
               fee = EXCLUDED.fee, reject_reason = EXCLUDED.reject_reason,
               trade_id = coalesce(orders.trade_id, EXCLUDED.trade_id), updated_at = now()
           WHERE orders.status IS DISTINCT FROM EXCLUDED.status
              OR orders.filled_qty IS DISTINCT FROM EXCLUDED.filled_qty""",
        (order.order_id, order.order_id, venue, sid, signal_key, trade_id, order.token_id,
         order.side.value, order.shares, order.limit, order.side.value == "sell",
         order.status.value, order.filled, order.avg_price, order.fee, order.reason, agent,
         order.created_at),
    )  # fmt: skip
    if cur.rowcount == 0:
        return False
    await conn.execute(
        """INSERT INTO order_events (time, order_link_id, status, venue_order_id, filled_qty,
               avg_fill_price, fee, agent, detail)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
        (order.created_at, order.order_id, order.status.value, order.order_id, order.filled,
         order.avg_price, order.fee, agent,
         Jsonb({"reason": order.reason, "duplicate": order.duplicate, "vertical": "poly"})),
    )  # fmt: skip
    return True


async def trade_fills(conn: AsyncConnection[Any], trade_id: uuid.UUID, side: str) -> list[Row]:
    """The trade's orders on one side as the venue answered them (not the unanswered ones)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT order_link_id, status, filled_qty, avg_fill_price, fee, created_at FROM orders "
        "WHERE trade_id = %s AND side = %s AND status <> 'submitting' ORDER BY created_at",
        (trade_id, side),
    )
    return await cur.fetchall()


async def sell_orders_of(conn: AsyncConnection[Any], trade_id: uuid.UUID) -> int:
    """How many exit orders the trade placed (answered or not): the next step's number."""
    cur = await conn.execute(
        "SELECT count(*) FROM orders WHERE trade_id = %s AND side = 'sell'", (trade_id,)
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def has_unanswered_buys(conn: AsyncConnection[Any], trade_id: uuid.UUID) -> bool:
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM orders WHERE trade_id = %s AND side = 'buy' "
        "AND status = 'submitting')",
        (trade_id,),
    )
    row = await cur.fetchone()
    return bool(row and row[0])


async def update_trade_entry(
    conn: AsyncConnection[Any],
    trade_id: uuid.UUID,
    *,
    shares: Decimal,
    avg_price: Decimal | None,
    cost: Decimal,
    fees: Decimal,
    opened_at: datetime | None,
    cancelled: bool,
) -> None:
    """The trade's entry as its buys filled: open with the shares, or cancelled when no buy
    filled and none is still unanswered. A closed trade is left as it closed."""
    if cancelled:
        await conn.execute(
            "UPDATE trades SET status = 'cancelled', close_reason = 'cancelled', qty = 0, "
            "updated_at = now() WHERE trade_id = %s AND status = 'pending'",
            (trade_id,),
        )
        return
    await conn.execute(
        """UPDATE trades SET status = CASE WHEN %s > 0 THEN 'open' ELSE status END, qty = %s,
               entry_price = %s, margin = %s, fees = %s,
               opened_at = coalesce(opened_at, %s), updated_at = now()
           WHERE trade_id = %s AND status IN ('pending', 'open')""",
        (shares, shares, avg_price, cost, fees, opened_at, trade_id),
    )


async def trade_steps(conn: AsyncConnection[Any], trade_id: uuid.UUID) -> list[Row]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT kind, reason, shares, price, cost_usd, pnl_usd, time FROM poly_copy_steps "
        "WHERE trade_id = %s ORDER BY time, order_id",
        (trade_id,),
    )
    return await cur.fetchall()


async def close_trade(
    conn: AsyncConnection[Any],
    trade_id: uuid.UUID,
    *,
    exit_price: Decimal | None,
    reason: str,
    pnl_usd: Decimal,
    pnl_pct_price: float | None,
    pnl_pct_margin: float | None,
    fees: Decimal,
    at: datetime,
) -> Row | None:
    """Close the trade (once: a second call finds it closed and returns None)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """UPDATE trades SET status = 'closed', exit_price = %s, close_reason = %s, pnl_quote = %s,
               pnl_pct_price = %s, pnl_pct_margin = %s, fees = %s, closed_at = %s,
               updated_at = now()
           WHERE trade_id = %s AND status = 'open' RETURNING *""",
        (exit_price, reason, pnl_usd, pnl_pct_price, pnl_pct_margin, fees, at, trade_id),
    )
    return await cur.fetchone()


# --- outcome learning ----------------------------------------------------------------------------


async def refresh_wallet_copy_stats(
    conn: AsyncConnection[Any], wallets: Sequence[str], venue: str
) -> None:
    """Recompute each wallet's record as copied by us from every closed poly trade that
    followed it (quantcore.trading.stats.track_record, as the scanner leaderboard; idempotent)."""
    for wallet in sorted(set(wallets)):
        cur = await conn.execute(
            """SELECT pnl_pct_margin::float8, coalesce(pnl_quote, 0)::float8, closed_at FROM trades
               WHERE vertical = 'poly' AND venue = %s AND status = 'closed'
                     AND %s = ANY(followed_wallets) AND pnl_pct_margin IS NOT NULL
               ORDER BY closed_at""",
            (venue, wallet),
        )
        rows = await cur.fetchall()
        if not rows:
            continue
        r = track_record([float(x[0]) for x in rows])
        await conn.execute(
            """INSERT INTO poly_wallet_copy_stats (wallet, venue, trades, wins, losses, win_rate,
                   avg_win_pct, avg_loss_pct, reward_risk, total_pnl_pct, pnl_usd,
                   max_drawdown_pct, last_closed_at, updated_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
               ON CONFLICT (wallet, venue) DO UPDATE SET
                   trades = EXCLUDED.trades, wins = EXCLUDED.wins, losses = EXCLUDED.losses,
                   win_rate = EXCLUDED.win_rate, avg_win_pct = EXCLUDED.avg_win_pct,
                   avg_loss_pct = EXCLUDED.avg_loss_pct, reward_risk = EXCLUDED.reward_risk,
                   total_pnl_pct = EXCLUDED.total_pnl_pct, pnl_usd = EXCLUDED.pnl_usd,
                   max_drawdown_pct = EXCLUDED.max_drawdown_pct,
                   last_closed_at = EXCLUDED.last_closed_at, updated_at = now()""",
            (wallet, venue, r.trades, r.wins, r.losses, r.win_rate, r.avg_win_pct,
             r.avg_loss_pct, r.reward_risk, r.total_pnl_pct, sum(x[1] for x in rows),
             r.max_drawdown_pct, rows[-1][2]),
        )  # fmt: skip


async def record_exposure(
    conn: AsyncConnection[Any], *, at: datetime, venue: str, agent: str, equity: Decimal,
    exposure: Decimal, cap: Decimal, open_positions: int,
) -> None:  # fmt: skip
    """Exposure against the cap at a cap check (the dashboard's exposure vs cap)."""
    await conn.execute(
        "INSERT INTO poly_copy_exposure (time, venue, agent, equity, exposure, cap, open_positions) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (at, venue, agent, equity, exposure, cap, open_positions),
    )
