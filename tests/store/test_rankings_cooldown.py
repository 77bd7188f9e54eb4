"""The ranker's cooldown counts its own signals only: a plug-in's signal on the same coin and
side (the strategy_runner's scanner_oi, on by default) must not silence the ranker — it did, and
with every default the ranker's first signal never came."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from psycopg_pool import AsyncConnectionPool

from quantcore.store import rankings

AT = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def row(scanner: str, at: datetime, direction: str = "long") -> rankings.SignalRow:
    return rankings.SignalRow(
        time=at, signal_id=uuid.uuid4(), symbol="ENAUSDT", direction=direction,  # type: ignore[arg-type]
        scanner=scanner, scanner_version="1", agent=scanner, heatmap_source=None, inputs={},
        price=1.0,
    )  # fmt: skip


async def test_only_the_scanners_own_signals_start_its_cooldown(
    fresh_pool: AsyncConnectionPool,
) -> None:
    me = uuid.uuid4()
    async with fresh_pool.connection() as conn:
        await rankings.insert_signal(conn, row("scanner_oi", AT - timedelta(minutes=5)))
        assert not await rankings.in_cooldown(conn, "ENAUSDT", "long", AT, HOUR, me, "ranker")
        assert await rankings.in_cooldown(conn, "ENAUSDT", "long", AT, HOUR, me, "scanner_oi")
        await rankings.insert_signal(conn, row("ranker", AT - timedelta(minutes=10), "short"))
        assert not await rankings.in_cooldown(conn, "ENAUSDT", "long", AT, HOUR, me, "ranker")
        await rankings.insert_signal(conn, row("ranker", AT - timedelta(minutes=30)))
        assert await rankings.in_cooldown(conn, "ENAUSDT", "long", AT, HOUR, me, "ranker")
        assert not await rankings.in_cooldown(
            conn, "ENAUSDT", "long", AT + 2 * HOUR, HOUR, me, "ranker"
        )
