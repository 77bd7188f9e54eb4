"""Reading what a ranking needs for some coins (the ranker every cycle for all of them, the
autotrader for one coin after a pre-trade refresh): one implementation of the read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from psycopg_pool import AsyncConnectionPool

from quantcore.model.market import TIMEFRAMES
from quantcore.scan.ranking import RankInputs
from quantcore.store import rankings as store
from quantcore.store.levels import latest_snapshots, read_levels_parallel
from quantcore.store.poly import hybrid_symbols
from quantcore.store.series import latest_prices, price_array


async def read_rank_inputs(
    pool: AsyncConnectionPool[Any],
    symbols: Sequence[str],
    at: datetime,
    slices: int = 1,
    hybrid_window: timedelta | None = None,
) -> RankInputs:
    """The latest levels (all timeframes), prices, typical sizes, success rates and wicks; with
    `hybrid_window`, which coins had a hybrid Polymarket signal within it before `at`."""
    symbols = list(symbols)
    async with pool.connection() as conn:
        snaps = await latest_snapshots(conn, symbols)
    levels = await read_levels_parallel(pool, symbols, snaps, slices)
    async with pool.connection() as conn:
        prices = await latest_prices(conn, symbols)
        typical = await store.typical_sizes(conn, symbols)
        success, up, down = await store.pattern_arrays(conn, symbols, TIMEFRAMES)
        hybrid = await hybrid_symbols(conn, at - hybrid_window, at) if hybrid_window else set()
    return RankInputs(
        levels=levels, price=price_array(prices, symbols, at),
        price_time=[prices[s].time if s in prices else None for s in symbols],
        typical=typical, success=success, wick_up=up, wick_down=down,
        hybrid=np.array([s in hybrid for s in symbols], dtype=np.bool_),
    )  # fmt: skip
