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
from quantcore.model.market import AccountRatio, RiskTier, TakerFlow
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


async def write_tiers(conn: AsyncConnection[Any], tiers: Sequence[RiskTier], source: str) -> int:
    """Replace the risk-limit tiers of every coin in `tiers` (the venue's whole ladder)."""
    symbols = sorted({t.symbol for t in tiers})
    if not symbols:
        return 0
    async with conn.transaction():
        await conn.execute("DELETE FROM risk_limit_tiers WHERE symbol = ANY(%s)", (symbols,))
        async with conn.cursor() as cur:
            await cur.executemany(
                """INSERT INTO risk_limit_tiers (symbol, tier, risk_limit_value,
                       maintenance_margin_rate, initial_margin_rate, max_leverage, source)
                   VALUES (%s, %s, %s, %s, %s, %s, %s)""",
                [
                    (
                        t.symbol,
                        t.tier,
                        t.limit_usd,
                        t.maintenance_margin_rate,
                        t.initial_margin_rate,
                        t.max_leverage,
                        source,
                    )
                    for t in tiers
                ],
            )
    return len(tiers)


async def write_taker_flow(
    conn: AsyncConnection[Any], flows: Sequence[TakerFlow], source: str
) -> int:
    """Add taker volume to its coin × minute (a minute arrives in several messages)."""
    sums: dict[tuple[str, datetime], list[float]] = {}
    for f in flows:
        acc = sums.setdefault((f.symbol, f.minute), [0.0, 0.0, 0.0])
        acc[0] += f.buy_qty
        acc[1] += f.sell_qty
        acc[2] += f.trades
    if not sums:
        return 0
    keys = sorted(sums)
    async with conn.cursor() as cur:
        await cur.execute(
            """
            INSERT INTO taker_flow (time, symbol, buy_qty, sell_qty, trades, source)
            SELECT * FROM unnest(%s::timestamptz[], %s::text[], %s::float8[], %s::float8[],
                                 %s::int[], %s::text[])
            ON CONFLICT (symbol, time) DO UPDATE SET
                buy_qty = taker_flow.buy_qty + EXCLUDED.buy_qty,
                sell_qty = taker_flow.sell_qty + EXCLUDED.sell_qty,
                trades = taker_flow.trades + EXCLUDED.trades
            """,
            (
                [k[1] for k in keys], [k[0] for k in keys], [sums[k][0] for k in keys],
                [sums[k][1] for k in keys], [int(sums[k][2]) for k in keys], [source] * len(keys),
            ),
        )  # fmt: skip
    return len(keys)


async def write_account_ratios(
    conn: AsyncConnection[Any], ratios: Sequence[AccountRatio], source: str
) -> int:
    if not ratios:
        return 0
    async with conn.cursor() as cur:
        await cur.execute(
            """
            INSERT INTO account_ratios (time, symbol, period_s, long_ratio, source)
            SELECT * FROM unnest(%s::timestamptz[], %s::text[], %s::int[], %s::float8[],
                                 %s::text[])
            ON CONFLICT (symbol, period_s, time) DO UPDATE SET
                long_ratio = EXCLUDED.long_ratio, source = EXCLUDED.source
            """,
            (
                [r.time for r in ratios], [r.symbol for r in ratios],
                [r.period_s for r in ratios], [r.long_ratio for r in ratios],
                [source] * len(ratios),
            ),
        )  # fmt: skip
        return cur.rowcount


async def last_account_ratios(
    conn: AsyncConnection[Any], symbols: Sequence[str], period_s: int
) -> dict[str, datetime]:
    """Newest stored account ratio per coin of one period (resuming a backfill)."""
    cur = await conn.execute(
        """
        SELECT k.symbol, (SELECT max(time) FROM account_ratios a
                          WHERE a.symbol = k.symbol AND a.period_s = %s)
        FROM unnest(%s::text[]) AS k(symbol)
        """,
        (period_s, list(symbols)),
    )
    return {r[0]: r[1] for r in await cur.fetchall() if r[1] is not None}


# the account ratio folded into an interval: the newest one at or before its end, of the
# period matching its width, no older than one interval before it
_RATIO_PERIOD = {300: 300, PACKED_INTERVAL_S: PACKED_INTERVAL_S}


async def fold_collected(conn: AsyncConnection[Any], symbol: str, since: datetime) -> int:
    """Fill the taker flow and account ratio of `symbol`'s stored intervals from `since` on
    from what the market collector gathered (taker_flow, account_ratios): an interval's
    taker volume is the sum of its minutes (NULL when no minute of it was seen), its ratio
    the venue's latest at its end. Values already folded are replaced by fresher sums (a
    minute may have been flushed after the first fold). Rebuilds the 4-hour pack when any
    4-hour interval changed. Returns intervals updated."""
    updated = 0
    for width, period in _RATIO_PERIOD.items():
        cur = await conn.execute(
            """
            UPDATE heatmap_inputs h SET
                taker_buy = coalesce(f.buy, h.taker_buy),
                taker_sell = coalesce(f.sell, h.taker_sell),
                long_ratio = coalesce(r.ratio, h.long_ratio)
            FROM heatmap_inputs k
            LEFT JOIN LATERAL (
                SELECT sum(buy_qty) AS buy, sum(sell_qty) AS sell FROM taker_flow t
                WHERE t.symbol = k.symbol AND t.time >= k.time
                  AND t.time < k.time + make_interval(secs => k.interval_s)
                HAVING count(*) > 0
            ) f ON true
            LEFT JOIN LATERAL (
                SELECT long_ratio AS ratio FROM account_ratios a
                WHERE a.symbol = k.symbol AND a.period_s = %(period)s
                  AND a.time <= k.time + make_interval(secs => k.interval_s)
                  AND a.time > k.time - make_interval(secs => k.interval_s)
                ORDER BY a.time DESC LIMIT 1
            ) r ON true
            WHERE h.symbol = %(symbol)s AND h.interval_s = %(width)s AND h.time >= %(since)s
              AND k.symbol = h.symbol AND k.interval_s = h.interval_s AND k.time = h.time
              AND (f.buy IS NOT NULL OR r.ratio IS NOT NULL)
              AND (h.taker_buy, h.taker_sell, h.long_ratio)
                  IS DISTINCT FROM (coalesce(f.buy, h.taker_buy), coalesce(f.sell, h.taker_sell),
                                    coalesce(r.ratio, h.long_ratio))
            """,
            {"symbol": symbol, "width": width, "since": since, "period": period},
        )
        updated += cur.rowcount
        if width == PACKED_INTERVAL_S and cur.rowcount:
            await repack(conn, [symbol])
    return updated


async def risk_tiers(conn: AsyncConnection[Any], symbols: Sequence[str]) -> lm.RiskTiers:
    """Every stored risk-limit tier per coin, ascending limit ([C, K], NaN-padded; a coin
    with none stored gets one tier of lm.DEFAULT_MMR, any size)."""
    cur = await conn.execute(
        """
        SELECT symbol, array_agg(risk_limit_value ORDER BY tier),
               array_agg(maintenance_margin_rate ORDER BY tier),
               array_agg(max_leverage ORDER BY tier)
        FROM risk_limit_tiers WHERE symbol = ANY(%s) GROUP BY symbol
        """,
        (list(symbols),),
    )
    found = {r[0]: r[1:] for r in await cur.fetchall()}
    k = max((len(v[0]) for v in found.values()), default=1)
    lim, mmr, lev = (np.full((len(symbols), k), np.nan) for _ in range(3))
    lim[:, 0], mmr[:, 0] = np.inf, lm.DEFAULT_MMR
    for i, s in enumerate(symbols):
        if s in found:
            n = len(found[s][0])
            lim[i, :n] = [float(x) for x in found[s][0]]
            mmr[i, :n] = [float(x) for x in found[s][1]]
            lev[i, :n] = [np.nan if x is None else float(x) for x in found[s][2]]
    return lm.RiskTiers(limit=lim, mmr=mmr, max_leverage=lev)


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
    share = lm.long_share(grid(got["buy"]), grid(got["sell"]), grid(got["ratio"]))
    tiers = await risk_tiers(conn, symbols)
    caps = np.where(np.isfinite(tiers.max_leverage), tiers.max_leverage, -np.inf)
    max_lev = caps.max(axis=1)  # the first tier's, the loosest
    last_close = np.array(
        [close[i, -1] if counts[i] else np.nan for i in range(c)], dtype=np.float64
    )
    inputs = lm.ModelInputs(
        end=t + w, width=w, open=grid(got["open"]), high=grid(got["high"]),
        low=grid(got["low"]), close=close, oi_usd=grid(got["oi"]) * close, long_share=share,
        price=last_close, now=float(now_s),
        tiers=tiers,
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
