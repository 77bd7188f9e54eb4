"""db.copy_rows_per_s: quantcore.db.copy_rows into market_snapshots vs raw psycopg binary COPY.

200,000 market_snapshots rows (500 symbols × 400 minutes, random walks; numeric columns as
Decimal with venue-like precision, timestamptz as aware datetimes, source 'sim'), generated
once and written by both sides. Each run: TRUNCATE + commit (untimed), then time the COPY and
its COMMIT on one psycopg AsyncConnection. Runs alternate quantcore / raw, 3 each, best kept.
The raw baseline is the same async psycopg API by hand: cursor.copy("... FORMAT BINARY"),
set_types with the literal column types, write_row loop.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection

from quantcore.db import conninfo, copy_rows
from quantcore.testing import Sandbox
from scripts.benchmarks.report import Group, Metric, load_note

TABLE = "market_snapshots"
N_SYMBOLS = 500
N_MINUTES = 400  # 500 × 400 = 200,000 rows
RUNS = 3

COLUMNS = (
    "time",
    "symbol",
    "price",
    "mark_price",
    "index_price",
    "bid_price",
    "ask_price",
    "open_interest",
    "open_interest_value",
    "volume_24h",
    "turnover_24h",
    "high_24h",
    "low_24h",
    "price_change_24h_pct",
    "funding_rate_pct",
    "next_funding_at",
    "source",
)
# What the raw baseline passes to set_types, by hand (db/migrations/0002_perps_schema.sql).
RAW_TYPES = ["timestamptz", "text", *["numeric"] * 13, "timestamptz", "text"]

_MAJORS = "BTC ETH SOL XRP DOGE BNB ADA AVAX LINK DOT TON SUI APT ARB OP NEAR LTC BCH ATOM FIL"


def _symbols() -> list[str]:
    majors = [f"{b}USDT" for b in _MAJORS.split()]
    return majors + [f"C{i:03d}USDT" for i in range(N_SYMBOLS - len(majors))]


def _dec(x: float, decimals: int) -> Decimal:
    """x rounded to `decimals` places, as the exact Decimal a venue would send."""
    return Decimal(round(x * _SCALE[decimals])).scaleb(-decimals)


_SCALE = [10**d for d in range(16)]


@dataclass
class _Coin:
    symbol: str
    price: float
    decimals: int
    oi: float
    volume: float
    open_24h: float


def snapshot_market(
    symbols: list[str], minutes: int, seed: int
) -> Iterator[tuple[datetime, datetime, list[tuple[str, tuple[Decimal, ...]]]]]:
    """A random-walk market, minute by minute: (minute, next funding time, [(symbol, the 13
    numeric market_snapshots values as the exact Decimals a venue would send)])."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    state = []
    for sym in symbols:
        price = 10 ** rng.uniform(-4, 4.8)  # 0.0001 .. ~60,000
        oi = rng.uniform(1e5, 1e9) / price
        state.append(
            _Coin(
                symbol=sym,
                price=price,
                decimals=max(0, 5 - math.floor(math.log10(price))),  # 6 significant digits
                oi=oi,
                volume=rng.uniform(0.5, 3) * oi,
                open_24h=price,
            )
        )
    funding = [Decimal(v) for v in ("0.010000", "0.005000", "-0.002500", "0.012500")]
    for m in range(minutes):
        t = start + timedelta(minutes=m)
        next_funding = start + timedelta(hours=8 * (m // 480 + 1))
        batch: list[tuple[str, tuple[Decimal, ...]]] = []
        for c in state:
            c.price = price = c.price * (1 + rng.gauss(0, 0.001))
            c.oi = oi = c.oi * (1 + rng.gauss(0, 0.0005))
            c.volume = vol = c.volume * (1 + abs(rng.gauss(0, 0.0003)))
            d, open_24h = c.decimals, c.open_24h
            tick = price * 0.0001
            hi, lo = max(price, open_24h) * 1.01, min(price, open_24h) * 0.99
            values = (
                _dec(price, d),
                _dec(price + tick * (rng.random() - 0.5), d),
                _dec(price + tick * (rng.random() - 0.5), d),
                _dec(price - tick, d),
                _dec(price + tick, d),
                _dec(oi, 3),
                _dec(oi * price, 2),
                _dec(vol, 3),
                _dec(vol * price, 2),
                _dec(hi, d),
                _dec(lo, d),
                _dec((price / open_24h - 1) * 100, 4),
                funding[m % len(funding)],
            )
            batch.append((c.symbol, values))
        yield t, next_funding, batch


def make_rows(seed: int = 7) -> list[tuple[Any, ...]]:
    """500 symbols × 400 one-minute snapshots with venue-like values."""
    return [
        (t, sym, *values, next_funding, "sim")
        for t, next_funding, batch in snapshot_market(_symbols(), N_MINUTES, seed)
        for sym, values in batch
    ]


async def _truncate(conn: AsyncConnection[Any]) -> None:
    await conn.execute(f"TRUNCATE {TABLE}")
    await conn.commit()


async def _count(conn: AsyncConnection[Any]) -> int:
    cur = await conn.execute(f"SELECT count(*) FROM {TABLE}")
    row = await cur.fetchone()
    await conn.commit()
    return int(row[0]) if row else 0


async def _quantcore(conn: AsyncConnection[Any], rows: list[tuple[Any, ...]]) -> None:
    await copy_rows(conn, TABLE, COLUMNS, rows)


async def _raw(conn: AsyncConnection[Any], rows: list[tuple[Any, ...]]) -> None:
    cols = ", ".join(COLUMNS)
    async with (
        conn.cursor() as cur,
        cur.copy(f"COPY {TABLE} ({cols}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(RAW_TYPES)
        for row in rows:
            await copy.write_row(row)


async def run(box: Sandbox) -> dict[str, Metric]:
    rows = make_rows()
    n = len(rows)
    best = {"quantcore": 0.0, "raw": 0.0}
    writers = {"quantcore": _quantcore, "raw": _raw}
    async with await AsyncConnection.connect(conninfo(box.settings)) as conn:
        cur = await conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
        )
        row = await cur.fetchone()
        timescale = bool(row and row[0])
        await conn.commit()
        for _ in range(RUNS):
            for kind, write in writers.items():
                await _truncate(conn)
                started = time.perf_counter()
                await write(conn, rows)
                await conn.commit()
                elapsed = time.perf_counter() - started
                written = await _count(conn)
                if written != n:
                    raise RuntimeError(f"{kind}: {written} rows in {TABLE}, expected {n}")
                best[kind] = max(best[kind], n / elapsed)
        await _truncate(conn)
    note = (
        f"{n // 1000}k {TABLE} rows ({N_SYMBOLS} symbols × {N_MINUTES} min, 17 cols, Decimal "
        f"numerics), COPY + COMMIT, best of {RUNS} alternating runs, truncated between; "
        f"{'hypertable' if timescale else 'plain table (no TimescaleDB)'}; baseline: "
        f"psycopg async cursor.copy FORMAT BINARY, set_types by hand, write_row loop; {load_note()}"
    )
    return {
        "db.copy_rows_per_s": Metric.measured(
            best["quantcore"], "rows/s", best["raw"], "higher", note
        )
    }


GROUP = Group("db", ("db.copy_rows_per_s",), run)
