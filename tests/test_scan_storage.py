"""The scanners' fast storage paths (real PostgreSQL): heatmap levels packed in their
liquidation_refreshes rows, read back exactly as from liquidation_levels; cluster rows written
by one binary COPY exactly as the row-by-row upsert writes them."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from psycopg_pool import AsyncConnectionPool

from quantcore.model.market import TIMEFRAMES, Heatmap, HeatmapLevel
from quantcore.scan import clusters
from quantcore.store import clusters as cluster_store
from quantcore.store.arrays import copy_binary
from quantcore.store.heatmaps import write_heatmaps
from quantcore.store.levels import (
    LatestLevels,
    latest_snapshots,
    read_levels,
    read_levels_parallel,
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
PRICES = {"PKAUSDT": 0.30000000000000004, "PKBUSDT": 61234.56789012345, "PKCUSDT": 0.0001234}


def heatmap(symbol: str, tf: str, at: datetime, seed: int) -> Heatmap:
    """~60 levels within ± 8 % of the price, awkward floats (17 significant digits), one price
    twice (summed into one row), zero values (not read by the scanners)."""
    rng = np.random.default_rng(seed)
    price = PRICES[symbol]
    raw = price * (1 + rng.uniform(-0.08, 0.08, 60))
    values = rng.lognormal(math.log(3e5), 1.2, 60) / 3
    values[::13] = 0.0
    levels = [HeatmapLevel(price=float(p), value_usd=float(v)) for p, v in zip(raw, values, strict=True)]  # fmt: skip
    levels.append(HeatmapLevel(price=float(raw[5]), value_usd=1234.5678901234567))
    return Heatmap(symbol=symbol, timeframe=tf, time=at, source="sim", price=price, levels=tuple(levels))  # type: ignore[arg-type]  # fmt: skip


async def write(pool: AsyncConnectionPool, symbol: str, at: datetime, seed: int) -> None:
    async with pool.connection() as conn:
        maps = [heatmap(symbol, tf, at, seed + k) for k, tf in enumerate(TIMEFRAMES)]
        await write_heatmaps(conn, maps, at, "schedule", "tests", 1)


def assert_same(a: LatestLevels, b: LatestLevels) -> None:
    assert a.symbols == b.symbols and a.snapshots == b.snapshots
    assert a.prices.shape == b.prices.shape
    assert np.array_equal(a.prices, b.prices, equal_nan=True)  # exact, order included
    assert np.array_equal(a.values, b.values)


async def unpack_all(pool: AsyncConnectionPool, symbols: list[str]) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE liquidation_refreshes SET level_prices = NULL, level_values = NULL "
            "WHERE symbol = ANY(%s)",
            (symbols,),
        )


async def test_packed_refreshes_read_exactly_as_the_levels(pool: AsyncConnectionPool) -> None:
    syms = sorted(PRICES)
    for k, sym in enumerate(syms):
        await write(pool, sym, T0, seed=100 * k)
    async with pool.connection() as conn:
        snaps = await latest_snapshots(conn, syms)
        packed_count = await conn.execute(
            "SELECT count(*) FROM liquidation_refreshes WHERE symbol = ANY(%s) "
            "AND level_prices IS NOT NULL AND length(level_prices) = length(level_values) "
            "AND length(level_prices) > 0",
            (syms,),
        )
        assert (await packed_count.fetchone()) == (len(syms) * len(TIMEFRAMES),)
        from_packs = await read_levels(conn, syms, snaps)
    from_packs_parallel = await read_levels_parallel(pool, syms, snaps, slices=3)

    # one coin not packed (NULL: rows from before migration 0005): read from liquidation_levels
    await unpack_all(pool, syms[1:2])
    async with pool.connection() as conn:
        mixed = await read_levels(conn, syms, snaps)
    mixed_parallel = await read_levels_parallel(pool, syms, snaps, slices=2)
    await unpack_all(pool, syms)
    async with pool.connection() as conn:
        from_levels = await read_levels(conn, syms, snaps)
        stored = await conn.execute(
            "SELECT count(*) FROM liquidation_levels WHERE symbol = ANY(%s) AND value_usd > 0",
            (syms,),
        )
        n_stored = (await stored.fetchone() or (0,))[0]

    assert int(np.isfinite(from_levels.prices).sum()) == n_stored > 0
    # the duplicate price is one level, the zero values are not read
    assert (from_levels.values > 0).sum() == n_stored
    for other in (from_packs, from_packs_parallel, mixed, mixed_parallel):
        assert_same(other, from_levels)


async def test_a_newer_refresh_leaves_an_older_snapshot_to_the_levels_table(
    pool: AsyncConnectionPool,
) -> None:
    sym = "PKAUSDT"
    at1, at2 = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    await write(pool, sym, at1, seed=7)
    async with pool.connection() as conn:
        old = await latest_snapshots(conn, [sym])
        old_levels = await read_levels(conn, [sym], old)
    await write(pool, sym, at2, seed=8)  # the refresh row now packs the newer snapshot
    async with pool.connection() as conn:
        again = await read_levels(conn, [sym], old)
        new = await latest_snapshots(conn, [sym])
        new_levels = await read_levels(conn, [sym], new)
    assert {s.time for s in old} == {at1} and {s.time for s in new} == {at2}
    assert_same(again, old_levels)
    assert not np.array_equal(new_levels.prices, old_levels.prices, equal_nan=True)
    await unpack_all(pool, [sym])
    async with pool.connection() as conn:
        assert_same(await read_levels(conn, [sym], new), new_levels)


async def test_insert_clusters_stores_what_the_row_upsert_stores(pool: AsyncConnectionPool) -> None:
    syms = ["PKDUSDT", "PKEUSDT", "PKFUSDT"]
    PRICES.update({"PKDUSDT": 2.5, "PKEUSDT": 0.07, "PKFUSDT": 1900.0})
    for k, sym in enumerate(syms):
        await write(pool, sym, T0, seed=300 + k)
    async with pool.connection() as conn:
        snaps = await latest_snapshots(conn, syms)
        levels = await read_levels(conn, syms, snaps)
    price = np.array([PRICES[s] for s in syms])
    scan = clusters.scan(levels, price, merge_pct=0.5)
    typical = np.array([4e5, np.nan, 0.0])  # NULL size_pct_of_typical for the last two coins
    at1, at2 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    values = clusters.cluster_values(scan, typical)
    rows = clusters.cluster_rows(scan, at2, typical, "clusters_test", "1")
    assert len(values) == len(rows) == len(scan.clusters) > 100
    async with pool.connection() as conn:
        assert await cluster_store.insert_clusters(conn, values, at1, "clusters_test", "1") == len(
            rows
        )
        assert await cluster_store.write_clusters(conn, rows) == len(rows)
        # the same scan time again (a retried cycle): upserted, not duplicated, no error
        assert await cluster_store.insert_clusters(conn, values, at1, "clusters_test", "1") == len(
            rows
        )

    async def stored(at: datetime) -> list[tuple[Any, ...]]:
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT symbol, timeframe, side, price_low, price_high, center, value_usd, "
                "level_count, ref_price, distance_pct, size_pct_of_typical, source, levels_time, "
                "scanner, scanner_version FROM liquidation_clusters WHERE time = %s "
                "ORDER BY symbol, timeframe, side, center",
                (at,),
            )
            return await cur.fetchall()

    # the scanner writes a scan in slices of coins (ClusterValues.of_symbols), one per transaction
    at3 = T0 + timedelta(minutes=3)
    parts = [values.of_symbols({syms[0], syms[2]}), values.of_symbols({syms[1]})]
    assert sum(len(p) for p in parts) == len(values) and all(len(p) for p in parts)
    async with pool.connection() as conn:
        for part in parts:
            await cluster_store.insert_clusters(conn, part, at3, "clusters_test", "1")

    fast, slow, sliced = await stored(at1), await stored(at2), await stored(at3)
    assert fast == slow == sliced and len(fast) == len(rows)
    assert {r[0] for r in fast if r[10] is None} == {"PKEUSDT", "PKFUSDT"}
    assert all(r[10] is not None for r in fast if r[0] == "PKDUSDT")


@pytest.mark.parametrize("n", [0, 1, 1000])
async def test_copy_binary_round_trips_fixed_width_columns(
    pool: AsyncConnectionPool, n: int
) -> None:
    rng = np.random.default_rng(n)
    cols: list[tuple[Any, Any]] = [
        ("int2", rng.integers(-30000, 30000, n)), ("int4", rng.integers(-(2**31), 2**31 - 1, n)),
        ("int8", rng.integers(-(2**62), 2**62, n)), ("float8", rng.normal(0, 1e12, n)),
    ]  # fmt: skip
    if n:
        cols[3][1][0] = np.nan
        cols[3][1][-1] = -0.0
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("CREATE TEMP TABLE cb (a int2, b int4, c int8, d float8) ON COMMIT DROP")
        async with conn.cursor() as cur, cur.copy("COPY cb FROM STDIN (FORMAT BINARY)") as copy:
            await copy.write(copy_binary(cols))
        cur = await conn.execute("SELECT a, b, c, d FROM cb")
        back = await cur.fetchall()
    assert len(back) == n
    for j, (_, a) in enumerate(cols):
        got = np.array([r[j] for r in back], dtype=np.float64 if j == 3 else np.int64)
        assert np.array_equal(got, a, equal_nan=True)
    if n:
        assert math.copysign(1.0, back[-1][3]) == -1.0
    with pytest.raises(ValueError, match="different lengths"):
        copy_binary([("int4", np.zeros(3)), ("float8", np.zeros(2))])
