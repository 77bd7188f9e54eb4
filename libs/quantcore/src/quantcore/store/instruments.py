"""The `instruments` table: the venue's price and quantity grid of every coin, written by the
market collector when it discovers the universe and read by the ranker, which plans signals on
that grid (the autotrader re-plans on the venue's own answer: the same instruments-info)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from quantcore.model.market import Instrument
from quantcore.model.plan import InstrumentRules


async def write_instruments(
    conn: AsyncConnection[Any], instruments: Sequence[Instrument], source: str, at: datetime
) -> int:
    """Insert or overwrite one row per coin (idempotent on the symbol)."""
    if not instruments:
        return 0
    async with conn.cursor() as cur:
        await cur.executemany(
            """
            INSERT INTO instruments (symbol, base_coin, quote_coin, status, tick_size, qty_step,
                                     min_qty, max_leverage, source, updated_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (symbol) DO UPDATE SET
                base_coin = EXCLUDED.base_coin, quote_coin = EXCLUDED.quote_coin,
                status = EXCLUDED.status, tick_size = EXCLUDED.tick_size,
                qty_step = EXCLUDED.qty_step, min_qty = EXCLUDED.min_qty,
                max_leverage = EXCLUDED.max_leverage, source = EXCLUDED.source,
                updated_at = EXCLUDED.updated_at
            """,
            [
                (i.symbol, i.base_coin, i.quote_coin, i.status, i.tick_size, i.qty_step,
                 i.min_qty, i.max_leverage, source, at)
                for i in instruments
            ],
        )  # fmt: skip
    return len(instruments)


async def instrument_rules(
    conn: AsyncConnection[Any], symbols: Sequence[str]
) -> dict[str, InstrumentRules]:
    """The grid of each of `symbols` that has a row (a coin never discovered is left out)."""
    cur = await conn.execute(
        "SELECT symbol, tick_size, qty_step, min_qty FROM instruments WHERE symbol = ANY(%s)",
        (list(symbols),),
    )
    return {
        symbol: InstrumentRules(tick_size=tick, qty_step=step, min_qty=min_qty)
        for symbol, tick, step, min_qty in await cur.fetchall()
    }
