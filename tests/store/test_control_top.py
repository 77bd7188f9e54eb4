"""The owner's `quant top` read: the latest ranking cycle, with the heatmap source behind each
coin (coinglass | model | sim)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from psycopg_pool import AsyncConnectionPool

from quantcore.db import conninfo
from quantcore.store import control
from quantcore.store.rankings import RANKING_COLUMNS, write_rankings
from quantcore.testing import Sandbox

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def own_pool(fresh: Sandbox) -> AsyncIterator[AsyncConnectionPool]:
    p = AsyncConnectionPool(conninfo(fresh.settings), min_size=1, max_size=2, open=False)
    await p.open(wait=True)
    yield p
    await p.close()


def _row(
    at: datetime, cycle: str, rank: int, symbol: str, source: str | None
) -> tuple[object, ...]:
    values = {
        "time": at, "cycle_id": cycle, "rank": rank, "symbol": symbol, "score": 90.0 - rank,
        "imbalance": 0.7, "imbalance_strength": 0.4, "direction": "long", "cluster_size_pct": 120.0,
        "success_rate": 0.5, "target_price": 105.0, "price": 100.0, "scanner": "ranker",
        "scanner_version": "1", "inputs": {}, "heatmap_source": source,
    }  # fmt: skip
    return tuple(values[c] for c in RANKING_COLUMNS)


async def test_top_is_the_latest_cycle_with_its_heatmap_source(
    own_pool: AsyncConnectionPool,
) -> None:
    async with own_pool.connection() as conn:
        await write_rankings(conn, [_row(T0, "1", 1, "OLDUSDT", "sim")])
        await write_rankings(conn, [
            _row(T0 + timedelta(minutes=1), "2", 1, "AUSDT", "model"),
            _row(T0 + timedelta(minutes=1), "2", 2, "BUSDT", "coinglass"),
        ])  # fmt: skip
        top = await control.top(conn, 10)
    assert [(r.rank, r.symbol, r.heatmap_source) for r in top] == [
        (1, "AUSDT", "model"), (2, "BUSDT", "coinglass"),
    ]  # fmt: skip
