"""The scanners' building blocks: math helpers added for them, rows → arrays, binary COPY
reads, the scanner registry (provenance) and the leader lease."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from quantcore.leader import LeaderLease
from quantcore.math import spikes
from quantcore.math.grid import ffill, minute_grid, padded
from quantcore.math.universe import evaluate
from quantcore.store.arrays import fetch_packed, packed, unpack
from quantcore.store.scanners import params_hash, register, scanner_version

# --- math helpers -------------------------------------------------------------------------------


def test_volume_windows_are_the_ratio_parts() -> None:
    vol = np.full((1, 60), 10.0)
    vol[0, -5:] = 40.0
    last5, hour5 = spikes.volume_windows(vol)
    assert last5[0] == 200.0 and hour5[0] == pytest.approx((55 * 10 + 5 * 40) / 60 * 5)
    assert spikes.volume_ratio(vol)[0] == pytest.approx(last5[0] / hour5[0])


@given(st.floats(0.5, 8), st.integers(0, 2**31))
def test_z_threshold_is_where_the_z_score_reaches_the_bar(z: float, seed: int) -> None:
    hist = np.random.default_rng(seed).normal(0.1, 0.5, (1, 200))
    up = spikes.z_threshold(hist, z)
    down = spikes.z_threshold(hist, z, -1.0)
    assert spikes.robust_z(up, hist)[0] == pytest.approx(z)
    assert spikes.robust_z(down, hist)[0] == pytest.approx(-z)


def test_percent_rank_and_abs_percentiles() -> None:
    hist = np.array([[1.0, 2, 3, 4, np.nan], [np.nan] * 5])
    assert spikes.percent_rank([3.5, 1.0], hist).tolist()[0] == 75.0
    assert np.isnan(spikes.percent_rank([3.5, 1.0], hist)[1])
    pct = spikes.abs_percentiles(np.array([[-4.0, 1, 2, 3]]), [50, 100])
    assert pct.shape == (1, 2) and pct[0].tolist() == [2.5, 4.0]


def test_movers_flags_say_which_window_crossed() -> None:
    close = np.full((1, 120), 100.0) * (1 + np.random.default_rng(1).normal(0, 1e-4, 120))
    close[0, -1] = close[0, -2] * 1.025
    f = spikes.fast_movers(close)
    assert (bool(f.fixed_1m[0]), bool(f.fixed_5m[0])) == (True, False)
    assert f.specific_1m[0] and f.percentile_1m[0] == 100.0
    assert 0 < f.specific_threshold_1m_pct[0] < 2.5  # for this calm coin far less than 2.5 %


def test_evaluate_uses_the_target_timeframes_success_rate() -> None:
    nan = np.nan
    prices = np.array([[[101, 99, nan], [110, 90, 95]]])
    values = np.array([[[10, 1, 0], [100, 1, 1]]], dtype=float)
    success = np.array([[0.2, 0.9]])  # the biggest cluster on the bias side is in timeframe 1
    ev = evaluate(["AUSDT"], prices, values, [100], [1, 1], [50], success)
    assert ev.target_timeframe[0] == 1 and ev.success[0] == 0.9
    assert ev.shorts_above.tolist() == [[10, 100]] and ev.longs_below.tolist() == [[1, 2]]
    flat = evaluate(["AUSDT"], prices, values, [100], [1, 1], [50], [0.4])
    assert flat.success[0] == 0.4 and ev.score[0] - flat.score[0] == pytest.approx(0.5 * 20)


# --- rows → arrays ------------------------------------------------------------------------------


def test_minute_grid_and_ffill() -> None:
    g = minute_grid(
        [0, 0, 1, 1, 5], [100, 103, 101, 98, 100], [1, 4, 2, 9, 7], 2, end_minute=103, width=4
    )
    assert np.array_equal(g, [[1, nan, nan, 4], [nan, 2, nan, nan]], equal_nan=True)
    assert np.array_equal(ffill(g, 1), [[1, 1, nan, 4], [nan, 2, 2, nan]], equal_nan=True)
    assert np.array_equal(ffill(g, 5), [[1, 1, 1, 4], [nan, 2, 2, 2]], equal_nan=True)


nan = np.nan


def test_padded_groups_and_sorts_levels() -> None:
    p, v = padded([1, 0, 0, 1], [0, 1, 1, 0], [5.0, 3.0, 1.0, 4.0], [1, 2, 3, 4], n_coins=2, n_tf=2)
    assert p.shape == (2, 2, 2)
    assert np.array_equal(p[0, 1], [1.0, 3.0]) and np.array_equal(v[0, 1], [3, 2])
    assert np.array_equal(p[1, 0], [4.0, 5.0]) and np.isnan(p[0, 0]).all() and (v[0, 0] == 0).all()


async def test_fetch_packed_reads_groups_into_flat_numpy_columns(pool: AsyncConnectionPool) -> None:
    query = f"""
        SELECT g.k, x.a, x.b FROM (VALUES (7), (3), (5)) AS g(k)
        CROSS JOIN LATERAL (
            SELECT {packed("v * g.k", "int8", "v")} AS a,
                   {packed("CASE WHEN v = 2 THEN NULL ELSE v / 4.0 END", "float8", "v")} AS b
            FROM generate_series(1, g.k % 4) AS v
        ) x WHERE x.a IS NOT NULL"""
    async with pool.connection() as conn:
        cols = await fetch_packed(
            conn, query, None, keys=("k",), columns=[("a", "int8"), ("b", "float8")]
        )
        empty = await fetch_packed(
            conn, query + " AND false", None, keys=("k",), columns=[("a", "int8")]
        )
    # k=7: v = 1..3; k=3: v = 1..3; k=5: v = 1 — in row order
    assert cols["k"].tolist() == [7, 7, 7, 3, 3, 3, 5]
    assert cols["a"].tolist() == [7, 14, 21, 3, 6, 9, 5] and cols["a"].dtype == np.int64
    assert np.array_equal(cols["b"], [0.25, nan, 0.75, 0.25, nan, 0.75, 0.25], equal_nan=True)
    assert empty["k"].size == 0 and empty["a"].size == 0
    with pytest.raises(ValueError, match="values for"):
        unpack([(1, b"\x00" * 8, b"\x00" * 16)], ("k",), [("a", "int8"), ("b", "float8")])


# --- provenance ---------------------------------------------------------------------------------


async def test_registry_version_follows_the_parameters(pool: AsyncConnectionPool) -> None:
    params: dict[str, Any] = {
        "z": 4.0,
        "modes": ["fixed", "coin_specific"],
        "nested": {"b": 1, "a": 2},
    }
    reordered = {"nested": {"a": 2, "b": 1}, "modes": ["fixed", "coin_specific"], "z": 4.0}
    assert params_hash(params) == params_hash(reordered)  # canonical JSON
    async with pool.connection() as conn:
        v1 = await register(conn, "unit_scanner", "2.1.0", params, "a test scanner")
        v1b = await register(conn, "unit_scanner", "2.1.0", reordered, "a test scanner")
        v2 = await register(conn, "unit_scanner", "2.1.0", {**params, "z": 3.5}, "a test scanner")
        cur = await conn.execute(
            "SELECT version, params_hash, params->>'z' FROM scanners WHERE name = 'unit_scanner' ORDER BY registered_at"
        )
        got = await cur.fetchall()
    assert v1 == v1b == scanner_version("2.1.0", params) == f"2.1.0+{params_hash(params)[:8]}"
    assert v2 != v1
    assert [(r[0], r[2]) for r in got] == [(v1, "4.0"), (v2, "3.5")]


# --- leader lease -------------------------------------------------------------------------------


async def test_lease_is_exclusive_renewable_and_expires(redis: Redis, settings: Any) -> None:
    ns = settings.bus_namespace
    a = LeaderLease(redis, ns, "unit", "a", lease_s=1.0)
    b = LeaderLease(redis, ns, "unit", "b", lease_s=1.0)
    assert await a.try_acquire() and a.held
    assert not await b.try_acquire() and not b.held
    assert await a.renew()
    assert not await b.renew()  # b never held it: renewing does not steal
    await asyncio.sleep(1.2)  # a stops renewing (as if dead)
    assert not a.held
    assert await b.try_acquire()
    assert not await a.renew() and not a.held  # the old leader learns it lost
    await a.release()  # not its key any more: nothing happens
    assert await b.current() == "b"
    await b.release()
    assert await b.current() is None


async def test_standby_takes_over_and_the_old_leader_stops_at_once(
    redis: Redis, settings: Any
) -> None:
    ns = settings.bus_namespace
    lease_s = 1.0
    leading: dict[str, float] = {}
    stopped: dict[str, float] = {}

    def worker(name: str) -> Any:
        async def lead(lost: asyncio.Event) -> None:
            leading[name] = time.monotonic()
            try:
                await lost.wait()
            finally:
                stopped[name] = time.monotonic()

        return lead

    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    a = LeaderLease(redis, ns, "takeover", "a", lease_s)
    b = LeaderLease(redis, ns, "takeover", "b", lease_s)
    ta = asyncio.create_task(a.run(stop_a, worker("a")))
    await asyncio.sleep(0.3)
    tb = asyncio.create_task(b.run(stop_b, worker("b")))
    await asyncio.sleep(1.5)
    assert set(leading) == {"a"}  # b stands by while a renews
    # a dies without a word (no release): b takes over once the lease runs out
    t0 = time.monotonic()
    ta.cancel()
    while "b" not in leading and time.monotonic() - t0 < 5:
        await asyncio.sleep(0.02)
    assert "b" in leading and leading["b"] - t0 < lease_s + 0.5
    # someone else takes the key from b: b stops acting at its next renewal (lease/3)
    t1 = time.monotonic()
    await redis.set(b.key, "intruder", px=3000)
    while "b" not in stopped and time.monotonic() - t1 < 3:
        await asyncio.sleep(0.02)
    assert "b" in stopped and stopped["b"] - t1 < lease_s / 3 + 0.3
    await redis.delete(b.key)
    stop_b.set()
    await tb
    with contextlib.suppress(asyncio.CancelledError):
        await ta
    assert await b.current() is None


# --- ranking edge cases -------------------------------------------------------------------------


def _inputs(price: list[float], levels: tuple[list[int], list[float], list[float]]) -> Any:
    from quantcore.model.market import TIMEFRAMES
    from quantcore.scan import ranking
    from quantcore.store.levels import LatestLevels

    n = len(price)
    coins, lv_prices, lv_values = levels
    p, v = padded(coins, [0] * len(coins), lv_prices, lv_values, n, len(TIMEFRAMES))
    grid = np.full((n, len(TIMEFRAMES)), np.nan)
    symbols = [f"C{i}USDT" for i in range(n)]
    return ranking.RankInputs(
        LatestLevels(symbols, list(TIMEFRAMES), p, v, {}), np.array(price, dtype=float),
        [None] * n, np.full(n, np.nan), grid, grid, grid,
    )  # fmt: skip


def test_ranking_an_empty_universe_or_unpriced_coins_ranks_nothing(settings: Any) -> None:
    from quantcore.scan import ranking

    params = ranking.RankParams.from_settings(settings)
    assert ranking.top(ranking.rank(_inputs([], ([], [], [])), params), 10) == []
    # the same heatmap with and without a price: without one, it must not look like all longs
    levels = ([0, 0, 1, 1], [99.0, 101.0, 99.0, 101.0], [1.0, 2.0, 1.0, 2.0])
    ev = ranking.rank(_inputs([100.0, np.nan], levels), params)
    assert ev.direction == ["long", "neutral"]
    assert ranking.top(ev, 10) == [0]


def test_heatmap_source_names_the_model_for_estimated_levels() -> None:
    from quantcore.model.market import heatmap_source

    assert heatmap_source("estimate") == "model"
    assert heatmap_source("coinglass") == "coinglass"
    assert heatmap_source("sim") == "sim"
    assert heatmap_source("bybit") is None  # not a heatmap's source: unknown, never a guess
