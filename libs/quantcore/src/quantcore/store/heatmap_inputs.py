"""Inputs of the heatmap estimate (heatmap_inputs, risk_limit_tiers) in and out as NumPy.

Writes: one binary COPY of float8 columns (the symbol as an index into a list passed beside
it) into a temporary table, then an upsert: a re-fetched interval replaces the earlier one.
Reads: one packed row per coin (quantcore.store.arrays), in time order, right-aligned into
[coins, intervals] arrays for quantcore.math.liqmodel; a coin without rows is all NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg import AsyncConnection

from quantcore.math import liqmodel as lm
from quantcore.store.arrays import ColumnType, copy_binary, fetch_packed, packed

F = NDArray[np.float64]
_FLOATS = ("open", "high", "low", "close", "open_interest", "taker_buy", "taker_sell", "long_ratio")


@dataclass(frozen=True)
class InputRows:
    """Intervals of many coins: `coin` indexes `symbols`. NaN in the optional columns = unknown."""

    symbols: Sequence[str]
    coin: NDArray[np.int64]
    time_s: NDArray[np.int64]  # interval open, epoch seconds
    interval_s: NDArray[np.int64]
    open: F
    high: F
    low: F
    close: F
    open_interest: F  # base qty at the interval's end
    taker_buy: F
    taker_sell: F
    long_ratio: F


async def write_inputs(conn: AsyncConnection[Any], rows: InputRows, source: str) -> int:
    n = int(rows.coin.size)
    if n == 0:
        return 0
    payload = copy_binary(
        [("int4", rows.coin), ("int8", rows.time_s), ("int4", rows.interval_s)]
        + [("float8", getattr(rows, name)) for name in _FLOATS]
    )
    async with conn.transaction():
        await conn.execute(
            """
            CREATE TEMP TABLE IF NOT EXISTS heatmap_inputs_stage (
                coin int4, t int8, interval_s int4, open float8, high float8, low float8,
                close float8, open_interest float8, taker_buy float8, taker_sell float8,
                long_ratio float8
            ) ON COMMIT DELETE ROWS
            """
        )
        async with conn.cursor().copy(
            "COPY heatmap_inputs_stage FROM STDIN (FORMAT BINARY)"
        ) as copy:
            await copy.write(payload)
        nulls = ", ".join(f"nullif(s.{c}, 'NaN')" for c in _FLOATS[4:])
        cur = await conn.execute(
            f"""
            INSERT INTO heatmap_inputs (time, symbol, interval_s, open, high, low, close,
                                        open_interest, taker_buy, taker_sell, long_ratio, source)
            SELECT to_timestamp(s.t), sym.symbol, s.interval_s, s.open, s.high, s.low, s.close,
                   {nulls}, %s
            FROM heatmap_inputs_stage s
            JOIN unnest(%s::text[]) WITH ORDINALITY AS sym(symbol, k) ON sym.k = s.coin + 1
            ON CONFLICT (symbol, interval_s, time) DO UPDATE SET
                open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low,
                close = EXCLUDED.close,
                open_interest = coalesce(EXCLUDED.open_interest, heatmap_inputs.open_interest),
                taker_buy = coalesce(EXCLUDED.taker_buy, heatmap_inputs.taker_buy),
                taker_sell = coalesce(EXCLUDED.taker_sell, heatmap_inputs.taker_sell),
                long_ratio = coalesce(EXCLUDED.long_ratio, heatmap_inputs.long_ratio),
                source = EXCLUDED.source
            """,
            (source, list(rows.symbols)),
        )
        written = cur.rowcount
        coarse = np.unique(rows.coin[rows.interval_s == PACKED_INTERVAL_S])
        await repack(conn, [rows.symbols[int(c)] for c in coarse])
        return written


PACKED_INTERVAL_S = 14_400  # the 4-hour inputs are also kept packed (heatmap_input_packs)


async def repack(conn: AsyncConnection[Any], symbols: Sequence[str]) -> None:
    """Rebuild the 4-hour packs of `symbols` from heatmap_inputs (time order)."""
    if not symbols:
        return
    cols = ", ".join(
        ["string_agg(timestamptz_send(time), ''::bytea ORDER BY time)", packed("interval_s", "int4", "time")]
        + [packed(name, "float8", "time") for name in _FLOATS]
    )  # fmt: skip
    names = ", ".join(_FLOATS)
    await conn.execute(
        f"""
        INSERT INTO heatmap_input_packs (symbol, interval_s, intervals, last_time, t, w, {names})
        SELECT symbol, interval_s, count(*), max(time), {cols}
        FROM heatmap_inputs WHERE symbol = ANY(%s) AND interval_s = %s
        GROUP BY symbol, interval_s
        ON CONFLICT (symbol, interval_s) DO UPDATE SET
            intervals = EXCLUDED.intervals, last_time = EXCLUDED.last_time, t = EXCLUDED.t,
            w = EXCLUDED.w, {", ".join(f"{n} = EXCLUDED.{n}" for n in _FLOATS)}
        """,
        (list(symbols), PACKED_INTERVAL_S),
    )  # fmt: skip


async def write_risk_limits(
    conn: AsyncConnection[Any], symbol: str, limits: Sequence[float], mmr: Sequence[float],
    max_leverage: Sequence[float | None], source: str,
) -> None:  # fmt: skip
    """Replace a coin's risk-limit tiers (ascending limits)."""
    async with conn.transaction():
        await conn.execute("DELETE FROM risk_limit_tiers WHERE symbol = %s", (symbol,))
        for k, (lim, rate, lev) in enumerate(zip(limits, mmr, max_leverage, strict=True)):
            await conn.execute(
                """INSERT INTO risk_limit_tiers
                   (symbol, tier, risk_limit_value, maintenance_margin_rate, max_leverage, source)
                   VALUES (%s, %s, %s, %s, %s, %s)""",
                (symbol, k + 1, lim, rate, lev, source),
            )


async def first_tiers(conn: AsyncConnection[Any], symbols: Sequence[str]) -> tuple[F, F]:
    """(mmr of the first tier, highest max leverage) per coin; NaN where unknown."""
    cur = await conn.execute(
        """
        SELECT symbol, (array_agg(maintenance_margin_rate ORDER BY tier))[1], max(max_leverage)
        FROM risk_limit_tiers WHERE symbol = ANY(%s) GROUP BY symbol
        """,
        (list(symbols),),
    )
    found = {r[0]: (r[1], r[2]) for r in await cur.fetchall()}
    mmr = np.array([found.get(s, (None, None))[0] or np.nan for s in symbols], dtype=np.float64)
    lev = np.array([found.get(s, (None, None))[1] or np.nan for s in symbols], dtype=np.float64)
    return mmr, lev


# Per coin one packed bytea per column (quantcore.store.arrays), all aggregates of a group
# fed the rows in the same order; no ORDER BY in them (a sort per column was most of the
# read): sorted here by time. The time goes as PostgreSQL's own binary timestamptz
# (microseconds since 2000-01-01): extract(epoch) makes a numeric per row. (Concatenating a
# row's fields into one aggregate was slower; a binary COPY of the rows costs a libpq
# message, and a Python await, per row: 6× slower.)
_PG_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01 in Unix microseconds
_INT8: ColumnType = "int8"
_INT4: ColumnType = "int4"
_FLOAT8: ColumnType = "float8"
_COLUMNS: list[tuple[str, ColumnType]] = [("t", _INT8), ("w", _INT4)]
_COLUMNS += [(name, _FLOAT8) for name in _FLOATS]


async def read_inputs(
    conn: AsyncConnection[Any], symbols: Sequence[str], now: datetime,
    recent_s: int = 3 * 86_400, deep_s: int = 366 * 86_400,
) -> tuple[lm.ModelInputs, NDArray[np.int64]]:  # fmt: skip
    """The model's inputs of `symbols` as of `now` (nothing later is read): 4-hour intervals
    from `deep_s` back until the 5-minute ones start `recent_s` back. Also returns the number
    of intervals found per coin (0: nothing stored)."""
    now_s = int(now.timestamp())
    recent_from = (now_s - recent_s) // 14_400 * 14_400  # 4-h intervals end where 5-min begin
    cols = ", ".join(
        [
            "string_agg(timestamptz_send(h.time), ''::bytea)",
            packed("h.interval_s", "int4", None),
        ]
        + [packed(f"h.{name}", "float8", None) for name in _FLOATS]
    )
    recent = await fetch_packed(
        conn,
        f"""
        SELECT (k.k - 1)::int4, p.*
        FROM unnest(%s::text[]) WITH ORDINALITY AS k(symbol, k)
        CROSS JOIN LATERAL (
            SELECT {cols} FROM heatmap_inputs h
            WHERE h.symbol = k.symbol AND h.interval_s = 300
              AND h.time >= to_timestamp(%s) AND h.time <= to_timestamp(%s)
        ) p
        """,
        (list(symbols), recent_from, now_s - 300),
        keys=("coin",),
        columns=_COLUMNS,
    )  # fmt: skip
    old = await fetch_packed(
        conn,
        f"""
        SELECT (k.k - 1)::int4, p.t, p.w, {", ".join(f"p.{n}" for n in _FLOATS)}
        FROM unnest(%s::text[]) WITH ORDINALITY AS k(symbol, k)
        JOIN heatmap_input_packs p ON p.symbol = k.symbol AND p.interval_s = %s
        """,
        (list(symbols), PACKED_INTERVAL_S),
        keys=("coin",),
        columns=_COLUMNS,
    )  # fmt: skip
    old_t = (old["t"].astype(np.int64) + _PG_EPOCH_US) // 1_000_000
    keep = (old_t >= now_s - deep_s) & (old_t < recent_from)  # as of now: nothing later
    raw = {k: np.concatenate((old[k][keep], recent[k])) for k in old}
    t_s = (raw["t"].astype(np.int64) + _PG_EPOCH_US) // 1_000_000
    order = np.lexsort((t_s, raw["coin"]))
    got: dict[str, NDArray[Any]] = {"coin": raw["coin"][order], "t": t_s[order]}
    got["w"] = raw["w"][order].astype(np.int64)
    for name, col in zip(_FLOATS, ("open", "high", "low", "close", "oi", "buy", "sell", "ratio"), strict=True):  # fmt: skip
        got[col] = raw[name][order].astype(np.float64)
    c = len(symbols)
    counts = np.bincount(got["coin"], minlength=c).astype(np.int64)
    n = int(counts.max(initial=0))
    # right-align each coin's intervals: column n − count + i
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    pos = np.arange(got["coin"].size) - np.repeat(starts, counts) + np.repeat(n - counts, counts)

    def grid(values: NDArray[Any], fill: float = np.nan) -> F:
        out = np.full((c, n), fill)
        out[got["coin"], pos] = values
        return out

    t = grid(got["t"].astype(np.float64), 0.0)
    w = grid(got["w"].astype(np.float64), 0.0)
    close = grid(got["close"])
    buy, sell, ratio = grid(got["buy"]), grid(got["sell"]), grid(got["ratio"])
    flow = buy + sell
    share = np.where(flow > 0, buy / np.where(flow > 0, flow, 1.0), np.nan)
    share = np.where(np.isfinite(ratio), np.where(np.isfinite(share), (share + ratio) / 2, ratio), share)  # fmt: skip
    mmr, max_lev = await first_tiers(conn, symbols)
    last_close = np.array(
        [close[i, -1] if counts[i] else np.nan for i in range(c)], dtype=np.float64
    )
    inputs = lm.ModelInputs(
        end=t + w, width=w, open=grid(got["open"]), high=grid(got["high"]),
        low=grid(got["low"]), close=close, oi_usd=grid(got["oi"]) * close, long_share=share,
        price=last_close, now=float(now_s),
        mmr=np.where(np.isfinite(mmr), mmr, lm.DEFAULT_MMR),
        max_leverage=np.where(np.isfinite(max_lev), max_lev, np.inf),
    )  # fmt: skip
    return inputs, counts


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


async def last_input_times(conn: AsyncConnection[Any], symbol: str) -> dict[int, datetime]:
    """Newest stored interval start of `symbol` per interval width (resuming a backfill)."""
    cur = await conn.execute(
        """
        SELECT w, (SELECT max(time) FROM heatmap_inputs h WHERE h.symbol = %s AND h.interval_s = w)
        FROM unnest(ARRAY[300, 14400]) AS w
        """,
        (symbol,),
    )
    return {int(r[0]): r[1] for r in await cur.fetchall() if r[1] is not None}


async def mark_partial(
    conn: AsyncConnection[Any], symbol: str, source: str, at: datetime, partial: bool
) -> None:
    """Flag the refresh of `symbol` at `at` as made from incomplete inputs (or not)."""
    await conn.execute(
        """UPDATE liquidation_refreshes SET partial = %s
           WHERE symbol = %s AND source = %s AND refreshed_at = %s""",
        (partial, symbol, source, at),
    )
