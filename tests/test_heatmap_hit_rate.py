"""The live hit rate of each heatmap source against the liquidations recorded after its
heatmaps (quantcore.estimate.hit_rate → heatmap_hit_rates), on a database of its own: a model
heatmap whose nearer cluster price reached and liquidations confirmed, a simulator heatmap
nobody's price reached (nothing to score: NULL, never a zero)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from psycopg_pool import AsyncConnectionPool

from quantcore.db import conninfo
from quantcore.estimate.hit_rate import hit_rates
from quantcore.model.market import Candle, Heatmap, HeatmapLevel, LiquidationEvent
from quantcore.store.heatmap_eval import write_hit_rates
from quantcore.store.heatmaps import write_heatmaps
from quantcore.store.market import write_candles, write_liquidations
from quantcore.testing import Sandbox

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def own_pool(fresh: Sandbox) -> AsyncIterator[AsyncConnectionPool]:
    p = AsyncConnectionPool(conninfo(fresh.settings), min_size=1, max_size=2, open=False)
    await p.open(wait=True)
    yield p
    await p.close()


def _candles(symbol: str, low_at_30: float) -> list[Candle]:
    return [
        Candle(symbol=symbol, start=T0 + timedelta(minutes=m), open=100, high=100.5,
               low=low_at_30 if m == 30 else 99.5, close=100, volume=1)
        for m in range(-1, 90)
    ]  # fmt: skip


async def test_each_source_scored_against_the_liquidations_after_its_heatmaps(
    own_pool: AsyncConnectionPool,
) -> None:
    model = Heatmap(
        symbol="HRAUSDT", timeframe="1y", time=T0, source="estimate", price=100.0,
        levels=(HeatmapLevel(price=95.0, value_usd=5e6), HeatmapLevel(price=110.0, value_usd=3e6)),
    )  # fmt: skip
    sim = Heatmap(
        symbol="HRBUSDT", timeframe="1y", time=T0, source="sim", price=100.0,
        levels=(HeatmapLevel(price=80.0, value_usd=5e6),),
    )  # fmt: skip
    liqs = [
        LiquidationEvent(symbol="HRAUSDT", time=T0 + timedelta(minutes=31), side="long",
                         price=95.2, qty=1000, source="sim", event_key="hr-1"),
        LiquidationEvent(symbol="HRAUSDT", time=T0 + timedelta(minutes=40), side="long",
                         price=99.0, qty=100, source="sim", event_key="hr-2"),
        # after the window: not this evaluation's
        LiquidationEvent(symbol="HRAUSDT", time=T0 + timedelta(minutes=75), side="long",
                         price=95.0, qty=1000, source="sim", event_key="hr-3"),
    ]  # fmt: skip
    now = T0 + timedelta(minutes=60, seconds=30)
    async with own_pool.connection() as conn:
        await write_heatmaps(conn, [model, sim], T0, "test", "test", 1)
        await write_candles(conn, _candles("HRAUSDT", 94.5) + _candles("HRBUSDT", 99.0), "sim")
        await write_liquidations(conn, liqs)
        rates = {r.heatmap_source: r for r in await hit_rates(conn, now, window_min=60)}
        assert await write_hit_rates(conn, [r.row() for r in rates.values()]) == 2
        await write_hit_rates(conn, [r.row() for r in rates.values()])  # a repeat: kept once
        cur = await conn.execute(
            "SELECT heatmap_source, coins, clusters, reached, hit, liq_value_usd, precision_pct,"
            " recall_pct, window_min, predicted_at FROM heatmap_hit_rates ORDER BY 1"
        )
        stored = await cur.fetchall()
    assert set(rates) == {"model", "sim"}
    m = rates["model"].scored
    assert (m.coins, m.clusters, m.realised.reached, m.realised.hit) == (1, 2, 1, 1)
    recall = 100.0 * 95.2 * 1000 / (95.2 * 1000 + 99.0 * 100)
    assert m.realised.recall_pct == pytest.approx(recall)
    start = now - timedelta(minutes=60)
    assert stored == [
        ("model", 1, 2, 1, 1, pytest.approx(95.2 * 1000 + 99.0 * 100), 100.0,
         pytest.approx(recall), 60, start),
        ("sim", 1, 1, 0, 0, 0.0, None, None, 60, start),  # nothing reached, nothing liquidated
    ]  # fmt: skip


async def test_no_heatmaps_no_rows(own_pool: AsyncConnectionPool) -> None:
    async with own_pool.connection() as conn:
        assert await hit_rates(conn, T0) == []
