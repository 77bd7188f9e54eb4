"""The live strategy runner feeds a plug-in the heatmap levels it reads: `STRATEGIES=
liquidation_hunter` starts, reads the refreshes stored in the database (liquidation_levels,
stamped at the refresh time) through the `db` tape's reader, and signals what the backtester's
`db` tape decides on the same stored data, bar for bar; a refresh stamped after a bar's close
is not seen by the decision at that bar. Funding is fed too (the db tape's reader)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from quantcore.backtest.app import Options, load_tape
from quantcore.backtest.tapes import RawCandles, check_and_shape, sim_tape
from quantcore.bus import Bus
from quantcore.db import conninfo
from quantcore.model.market import TIMEFRAMES
from quantcore.service import ServiceContext
from quantcore.store.backtests import load_candles
from quantcore.strategies import Bars, prefetch
from quantcore.strategies.liquidation_hunter import LiquidationHunter, LiquidationHunterParams
from quantcore.testing import Sandbox
from svc_strategy_runner.service import StrategyRunner, configured

# settings under which the six simulated hours below give the hunter signals on two coins
LIVELY: dict[str, Any] = {
    "trigger_mode": "fixed", "min_reward_risk": 0.5, "cooldown_s": 0, "trigger_history_min": 61,
}  # fmt: skip
SPEC = "liquidation_hunter(" + ",".join(f"{k}={v}" for k, v in LIVELY.items()) + ")"
COINS = ("BTCUSDT", "SOLUSDT")
FROM = 100  # the runner decides bars FROM.. (the hunter's warm-up is 61 bars)
MID = 200  # the parity test's first look sees bars ..MID−1, its second all 360


def _dt(s: int) -> datetime:
    return datetime.fromtimestamp(int(s), UTC)


@pytest.fixture(scope="module")
def planted() -> list[Bars]:
    """Six hours of three simulated coins, with the heatmap refreshes the hunter reads."""
    hunter = LiquidationHunter(LiquidationHunterParams(**LIVELY))
    tape = [b for b in sim_tape(0.25, seed=42, coins=3, capture=hunter) if b.symbol in COINS]
    prefetch(hunter, tape)
    return tape


async def _level_rows(
    bars: Bars, ks: Sequence[int], at: dict[int, int] | None = None
) -> list[tuple[Any, ...]]:
    """liquidation_levels rows of refreshes `ks` (stamped at their refresh time, or `at[k]`),
    as the liquidation collector stores them: value > 0, longs below the price, shorts above."""
    hm = bars.heatmap
    assert hm is not None
    rows = []
    for k in ks:
        t = int(hm.refreshed_s[k])
        price = float(bars.close[int(np.searchsorted(bars.close_s, t))])
        prices, values = hm.levels(k)
        for row, tf in enumerate(hm.timeframes):
            for p, v in zip(prices[row].tolist(), values[row].tolist(), strict=True):
                if np.isfinite(p) and v > 0:
                    side = "long" if p < price else "short"
                    rows.append(((at or {}).get(k, t), bars.symbol, tf, "sim", side, p, v))
    return rows


async def _insert_levels(pool: AsyncConnectionPool, rows: list[tuple[Any, ...]]) -> None:
    async with pool.connection() as conn, conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO liquidation_levels (time, symbol, timeframe, source, side, price, "
            "value_usd) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [(_dt(r[0]), *r[1:]) for r in rows],
        )


async def _plant(pool: AsyncConnectionPool, tape: list[Bars], a: int = 0, b: int = 0) -> None:
    """Bars a..b−1 (default: all) as the collectors store them: candles, open interest
    stamped at each bar's close, and the heatmap refreshes the hunter reads stamped in
    (close of bar a−1, close of bar b−1]."""
    hunter = LiquidationHunter(LiquidationHunterParams(**LIVELY))
    async with pool.connection() as conn, conn.cursor() as cur:
        for bars in tape:
            x = bars.window(a, b or len(bars))
            cols = [x.start_s, x.open, x.high, x.low, x.close, x.volume]
            await cur.executemany(
                "INSERT INTO ohlcv (time, symbol, interval, open, high, low, close, volume, "
                "source) VALUES (%s, %s, '1m', %s, %s, %s, %s, %s, 'sim')",
                [
                    (_dt(r[0]), x.symbol, *r[1:])
                    for r in zip(*(c.tolist() for c in cols), strict=True)
                ],
            )
            assert x.open_interest is not None
            await cur.executemany(
                "INSERT INTO market_snapshots (time, symbol, price, open_interest, source) "
                "VALUES (%s, %s, %s, %s, 'sim')",
                [
                    (_dt(t), x.symbol, c, oi)
                    for t, c, oi in zip(
                        x.close_s.tolist(), x.close.tolist(), x.open_interest.tolist(), strict=True
                    )
                ],
            )
    for bars in tape:
        wanted = hunter.heatmap_refreshes(bars)
        assert wanted is not None and wanted.size > 0 and bars.heatmap is not None
        stamped = bars.heatmap.refreshed_s[wanted]
        lo = int(bars.close_s[a - 1]) if a else 0
        hi = int(bars.close_s[(b or len(bars)) - 1])
        ks = wanted[(stamped > lo) & (stamped <= hi)].tolist()
        await _insert_levels(pool, await _level_rows(bars, ks))


def _runner(fresh: Sandbox, pool: AsyncConnectionPool, redis: Redis, spec: str) -> StrategyRunner:
    update = {"service_instance": "strategy_runner-test", "strategies": spec,
              "strategy_window_min": 360, "strategy_symbols": ",".join(COINS)}  # fmt: skip
    settings = fresh.settings.model_copy(update=update)
    StrategyRunner.check_settings(settings)  # the start check: a heatmap plug-in is accepted
    bus = Bus(redis, settings.bus_namespace, source="strategy_runner@test")
    ctx = ServiceContext("strategy_runner", "strategy_runner", StrategyRunner.version, settings,
                         pool, redis, bus)  # fmt: skip
    return StrategyRunner(ctx)


async def _run(runner: StrategyRunner, tape: list[Bars]) -> None:
    """One look deciding every bar from FROM on (a live runner decides each as it closes)."""
    await runner.register()
    for b in tape:
        runner.cursors["liquidation_hunter"].decided[b.symbol] = int(b.close_s[FROM - 1])
    await runner.look()


async def _signals(pool: AsyncConnectionPool) -> dict[tuple[str, int], tuple[Any, ...]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT symbol, extract(epoch FROM time)::int8, direction, price::float8, "
            "(inputs->'strategy'->>'stop_loss_pct')::float8, "
            "(inputs->'strategy'->>'take_profit_pct')::float8, heatmap_source, scanner "
            "FROM signals ORDER BY symbol, time"
        )
        return {(r[0], r[1]): r[2:] for r in await cur.fetchall()}


@pytest.fixture
async def redis_fresh(fresh: Sandbox) -> AsyncIterator[Redis]:
    client = Redis.from_url(fresh.settings.redis_url())
    yield client
    await client.aclose()


def test_a_plugin_that_reads_heatmaps_is_accepted_at_start(fresh: Sandbox) -> None:
    """With its default settings (the coin trigger reads a day of history: the window must
    be longer than that)."""
    settings = fresh.settings.model_copy(
        update={"strategies": "liquidation_hunter", "strategy_window_min": 1500}
    )
    assert [s.name for s in configured(settings)] == ["liquidation_hunter"]


async def test_runner_signals_are_the_db_tapes_decisions_on_stored_heatmaps(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, redis_fresh: Redis, planted: list[Bars]
) -> None:
    # two looks, as the collectors store the bars: up to MID, then the rest (the second look
    # lists the refreshes stamped since the first and reads only the new ones)
    await _plant(fresh_pool, planted, 0, MID)
    runner = _runner(fresh, fresh_pool, redis_fresh, SPEC)
    await _run(runner, planted)
    await _plant(fresh_pool, planted, MID)
    assert await runner.look() > 0
    read = runner.status_info["heatmap_refreshes_read"]
    assert await runner.look() == 0  # nothing new: nothing decided, no refresh read again
    assert runner.status_info["heatmap_refreshes_read"] == read
    live = await _signals(fresh_pool)

    # the backtester's db tape on the same stored data, the same window
    hunter = LiquidationHunter(LiquidationHunterParams(**LIVELY))
    end = _dt(int(planted[0].close_s[-1]))
    opts = Options(strategy="liquidation_hunter", tape="db", days=0.25, settings=LIVELY,
                   symbols=list(COINS), end=end)  # fmt: skip
    tape = await load_tape(opts, conninfo(fresh.settings), hunter)
    expected = {}
    for b in tape:
        assert b.heatmap is not None and b.heatmap.timeframes == tuple(TIMEFRAMES)
        frame = hunter.signals(b)
        assert frame.sl_pct is not None and frame.tp_pct is not None
        for i in np.flatnonzero(frame.entry[FROM:]) + FROM:
            expected[(b.symbol, int(b.close_s[i]))] = (
                "long" if frame.entry[i] > 0 else "short", float(b.close[i]),
                float(frame.sl_pct[i]), float(frame.tp_pct[i]), "sim", "liquidation_hunter",
            )  # fmt: skip
    assert len({s for s, _ in expected}) == 2, "both coins signal in the planted hours"
    assert live.keys() == expected.keys()
    for key, row in expected.items():
        assert live[key][:2] == row[:2] and live[key][4:] == row[4:]
        assert live[key][2:4] == pytest.approx(row[2:4], rel=1e-9)
    # the stored levels are the simulator's (what the sim tape gave the hunter): same bars
    sim = {
        (b.symbol, int(b.close_s[i]))
        for b in planted
        for i in np.flatnonzero(hunter.signals(b).entry[FROM:]) + FROM
    }
    assert sim == expected.keys()
    # each refresh the hunter reads was read once
    reads = sum(hunter.heatmap_refreshes(b).size for b in tape)  # type: ignore[union-attr]
    assert runner.status_info["heatmap_refreshes_read"] == reads > 0


async def test_a_refresh_stamped_after_a_bar_is_not_seen_at_that_bar(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, redis_fresh: Redis, planted: list[Bars]
) -> None:
    """Signals on consecutive bars t and t+1 min; a refresh planted 1 s after t (its levels:
    the refresh of an hour later) changes the decision at t+1 min and not the one at t."""
    await _plant(fresh_pool, planted)
    runner = _runner(fresh, fresh_pool, redis_fresh, SPEC)
    await _run(runner, planted)
    before = await _signals(fresh_pool)
    sol = next(b for b in planted if b.symbol == "SOLUSDT")
    times = sorted(t for s, t in before if s == "SOLUSDT")
    # (a bar t + 1 min that is not itself a refresh time: it reads the planted refresh)
    t = next(a for a, b in itertools.pairwise(times) if b == a + 60 and b % 300)

    async with fresh_pool.connection() as conn:
        await conn.execute("DELETE FROM signals")
    hm = sol.heatmap
    assert hm is not None
    later = int(np.flatnonzero(hm.refreshed_s >= t + 3600)[0])
    hunter = LiquidationHunter(LiquidationHunterParams(**LIVELY))
    if later not in set(hunter.heatmap_refreshes(sol).tolist()):
        hm.source.fetch({sol.symbol: np.array([later])})  # type: ignore[union-attr]
    # an hour-later book, stamped 1 s after t (priced at the bar that closed then: t)
    rows = await _level_rows(sol, [later], at={later: t + 1})
    await _insert_levels(fresh_pool, rows)
    runner = _runner(fresh, fresh_pool, redis_fresh, SPEC)
    await _run(runner, planted)
    after = await _signals(fresh_pool)
    assert {k: v for k, v in after.items() if k[1] <= t} == {
        k: v for k, v in before.items() if k[1] <= t
    }
    # the planted refresh is read from the next bar on: its decision changed (or is gone)
    assert after.get(("SOLUSDT", t + 60)) != before[("SOLUSDT", t + 60)]


async def test_funding_is_the_rate_announced_last_before_each_settlement(
    fresh_pool: AsyncConnectionPool,
) -> None:
    """The runner and the db tape read funding from the snapshots (quantcore.store.backtests):
    a settlement at T pays the rate of the newest snapshot that announced T, on the bar that
    closes at T; no other bar pays."""
    t0 = 1_767_254_400 - 5 * 60  # 07:55, five bars before the 08:00 settlement
    async with fresh_pool.connection() as conn, conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO ohlcv (time, symbol, interval, open, high, low, close, volume, source) "
            "VALUES (%s, 'ETHUSDT', '1m', 10, 11, 9, 10, 1, 'sim')",
            [(_dt(t0 + 60 * i),) for i in range(10)],
        )
        await cur.executemany(
            "INSERT INTO market_snapshots (time, symbol, price, funding_rate_pct, "
            "next_funding_at, source) VALUES (%s, 'ETHUSDT', 10, %s, %s, 'sim')",
            [
                (_dt(t0 - 3600), 0.05, _dt(t0 + 300)),  # announced an hour before
                (_dt(t0 + 120), 0.01, _dt(t0 + 300)),  # the newest before 08:00: settles
                (_dt(t0 + 360), 0.03, _dt(t0 + 300 + 8 * 3600)),  # the next one: later
            ],
        )
        stored = await load_candles(conn, "ETHUSDT", _dt(t0), _dt(t0 + 600), None)
    s = stored
    raw = RawCandles("ETHUSDT", s.start_s, s.ohlcv, s.oi_time_s, s.oi, s.funding_time_s, s.funding)
    bars = check_and_shape(raw)
    assert bars.funding is not None
    assert bars.funding.tolist() == [0, 0, 0, 0, pytest.approx(0.0001), 0, 0, 0, 0, 0]
    assert int(bars.close_s[4]) == t0 + 300
