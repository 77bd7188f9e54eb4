"""Outcome learning against the real schema: a closed trade counts in its coin × target
timeframe success rate (what the ranker reads) and in its scanner's track record."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from quantcore.store import positions as pstore
from quantcore.store.rankings import pattern_arrays


async def _signal(conn, symbol: str, timeframe: str) -> uuid.UUID:
    sid = uuid.uuid4()
    await conn.execute(
        "INSERT INTO signals (time, signal_id, symbol, direction, scanner, scanner_version, agent, inputs) "
        "VALUES (now(), %s, %s, 'long', 'ranker', 'v1', 'ranker', %s)",
        (sid, symbol, Jsonb({"ranking": {"target": {"timeframe": timeframe}}})),
    )
    return sid


async def _closed_trade(conn, sid: uuid.UUID, symbol: str, pnl_pct: float, at: datetime) -> dict:
    cur = await conn.execute(
        "INSERT INTO trades (signal_id, agent, scanner, scanner_version, venue, symbol, direction, status, "
        "pnl_pct_margin, pnl_quote, closed_at) VALUES (%s, 'liquidation_hunter', 'ranker', 'v1', 'paper', %s, "
        "'long', 'closed', %s, %s, %s) RETURNING trade_id",
        (sid, symbol, pnl_pct, pnl_pct, at),
    )
    row = await cur.fetchone()
    return {"trade_id": row[0], "signal_id": sid, "symbol": symbol}


async def test_closed_trades_feed_success_rate_and_scanner_stats(
    fresh_pool: AsyncConnectionPool,
) -> None:
    t0 = datetime.now(UTC) - timedelta(hours=1)
    async with fresh_pool.connection() as conn:
        # the history scanner saw 4 samples, 1 reached: 25 %
        await conn.execute(
            "INSERT INTO coin_liquidation_patterns (symbol, timeframe, success_rate, samples, wins, losses, agent) "
            "VALUES ('SOLUSDT', '3d', 0.25, 4, 1, 3, 'cluster_scanner')"
        )
        for k, pnl in enumerate([12.0, -4.0, 20.0, 8.0]):
            sid = await _signal(conn, "SOLUSDT", "3d")
            trade = await _closed_trade(conn, sid, "SOLUSDT", pnl, t0 + timedelta(minutes=k))
            await pstore.learn_outcome(conn, trade, pnl > 0, "position_monitor")
        await pstore.refresh_scanner_stats(conn, "ranker", "v1", "paper")
        success, _, _ = await pattern_arrays(conn, ["SOLUSDT"], ["3d", "1y"])
        stats = await (await conn.execute(
            "SELECT trades, wins, losses, win_rate::float8, avg_win_pct::float8, avg_loss_pct::float8, "
            "reward_risk::float8, max_drawdown_pct::float8 FROM scanner_stats"
        )).fetchall()  # fmt: skip
    # (1 historical win + 3 trade wins) / (4 samples + 4 trades)
    assert success[0, 0] == pytest.approx(4 / 8)
    assert np.isnan(success[0, 1])
    assert stats == [
        (4, 3, 1, 0.75, pytest.approx(40 / 3), -4.0, pytest.approx(40 / 3 / 4), pytest.approx(4.0))
    ]


async def test_a_trade_without_signal_or_timeframe_learns_nothing(
    fresh_pool: AsyncConnectionPool,
) -> None:
    async with fresh_pool.connection() as conn:
        await pstore.learn_outcome(
            conn, {"trade_id": uuid.uuid4(), "signal_id": None, "symbol": "X"}, True, "m"
        )
        count = await (
            await conn.execute("SELECT count(*) FROM coin_liquidation_patterns")
        ).fetchone()
    assert count == (0,)
