"""SQL of the Polymarket copy trader (agent poly_copy): its decisions, its exit / redemption
steps, and what it reads of the intelligence (markets, the followed wallets' positions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

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
