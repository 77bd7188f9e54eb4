"""Cluster scanner tables: liquidation_clusters, cluster_targets (sampled targets and their
outcome), coin_thresholds.typical_cluster_usd and coin_liquidation_patterns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg import AsyncConnection, sql
from psycopg.errors import UniqueViolation
from psycopg.types.json import Jsonb

from quantcore.db import copy_upsert
from quantcore.math.grid import F, I
from quantcore.store.arrays import copy_binary, fetch_packed, packed
from quantcore.store.levels import Snapshot

CLUSTER_COLUMNS = (
    "time", "symbol", "timeframe", "side", "price_low", "price_high", "center", "value_usd",
    "level_count", "ref_price", "distance_pct", "size_pct_of_typical", "source", "levels_time",
    "scanner", "scanner_version", "heatmap_source",
)  # fmt: skip


@dataclass(frozen=True)
class ClusterValues:
    """The numbers of a scan's liquidation_clusters rows, column by column (NaN = NULL)."""

    snapshots: list[Snapshot]  # the heatmaps clustered
    group: I  # per cluster, the index into snapshots of the heatmap it came from
    side: NDArray[np.int8]  # +1 short, −1 long (SIDE_NAME)
    price_low: F
    price_high: F
    center: F
    value: F
    level_count: I
    ref_price: F
    distance_pct: F
    size_pct: F  # NaN where the coin has no typical size

    def __len__(self) -> int:
        return int(self.group.size)

    def of_symbols(self, symbols: set[str]) -> ClusterValues:
        """The clusters of these coins only (their heatmaps renumbered)."""
        keep_snap = np.array([sn.symbol in symbols for sn in self.snapshots], dtype=bool)
        kept = np.flatnonzero(keep_snap)
        mask = keep_snap[self.group] if self.group.size else np.zeros(0, dtype=bool)
        return ClusterValues(
            snapshots=[self.snapshots[k] for k in kept.tolist()],
            group=np.searchsorted(kept, self.group[mask]).astype(np.int64),
            side=self.side[mask], price_low=self.price_low[mask],
            price_high=self.price_high[mask], center=self.center[mask], value=self.value[mask],
            level_count=self.level_count[mask], ref_price=self.ref_price[mask],
            distance_pct=self.distance_pct[mask], size_pct=self.size_pct[mask],
        )  # fmt: skip


TARGET_COLUMNS = (
    "time", "symbol", "timeframe", "scan_time", "levels_time", "side", "price_low", "price_high",
    "value_usd", "ref_price", "edge", "imbalance", "scanner", "scanner_version", "heatmap_source",
)  # fmt: skip


async def write_clusters(conn: AsyncConnection[Any], rows: Sequence[tuple[Any, ...]]) -> int:
    return await copy_upsert(
        conn, "liquidation_clusters", CLUSTER_COLUMNS, list(rows),
        conflict=("symbol", "timeframe", "time", "side", "center"), update=CLUSTER_COLUMNS[5:],
    )  # fmt: skip


_STAGE = "_stage_cluster_values"
_STAGED = (
    "price_low", "price_high", "center", "value_usd", "level_count", "ref_price", "distance_pct",
    "size_pct_of_typical",
)  # fmt: skip


async def insert_clusters(
    conn: AsyncConnection[Any], v: ClusterValues, at: datetime, scanner: str, version: str
) -> int:
    """A scan's clusters into liquidation_clusters — the rows of cluster_rows, stored the same
    way (non-finite optional numbers → NULL, DO UPDATE on a repeated key) — without a Python
    object per value: the arrays go to a temp table in one binary COPY built by NumPy, the
    text columns come from one row per heatmap, joined in the INSERT. A scan writes new keys
    (its own time), so the INSERT has no ON CONFLICT (a third of its cost); only if the same
    scan time is written again does it roll back to a savepoint and upsert."""
    if not len(v):
        return 0

    def finite(x: Any) -> Any:
        return np.where(np.isfinite(x), x, np.nan)  # NaN → NULL below (num() does the same)

    payload = copy_binary([
        ("int4", v.group), ("int2", v.side), ("float8", v.price_low), ("float8", v.price_high),
        ("float8", v.center), ("float8", v.value), ("int4", v.level_count),
        ("float8", finite(v.ref_price)), ("float8", finite(v.distance_pct)),
        ("float8", finite(v.size_pct)),
    ])  # fmt: skip
    params = {
        "at": at, "scanner": scanner, "version": version,
        "symbol": [s.symbol for s in v.snapshots], "timeframe": [s.timeframe for s in v.snapshots],
        "source": [s.source for s in v.snapshots], "levels_time": [s.time for s in v.snapshots],
        "heatmap_source": [s.heatmap_source for s in v.snapshots],
    }  # fmt: skip
    insert = sql.SQL(
        f"""
        INSERT INTO liquidation_clusters ({{cols}})
        SELECT %(at)s, m.symbol, m.timeframe, CASE WHEN s.side > 0 THEN 'short' ELSE 'long' END,
               s.price_low, s.price_high, s.center, s.value_usd, s.level_count,
               nullif(s.ref_price, 'NaN'), nullif(s.distance_pct, 'NaN'),
               nullif(s.size_pct_of_typical, 'NaN'), m.source, m.levels_time, %(scanner)s,
               %(version)s, m.heatmap_source
        FROM {_STAGE} s
        JOIN unnest(%(symbol)s::text[], %(timeframe)s::text[], %(source)s::text[],
                    %(levels_time)s::timestamptz[], %(heatmap_source)s::text[]) WITH ORDINALITY
             AS m(symbol, timeframe, source, levels_time, heatmap_source, g) ON m.g = s.g + 1
        """
    ).format(cols=sql.SQL(", ").join(map(sql.Identifier, CLUSTER_COLUMNS)))
    upsert = insert + sql.SQL(
        " ON CONFLICT (symbol, timeframe, time, side, center) DO UPDATE SET {}"
    ).format(
        sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in CLUSTER_COLUMNS[5:]
        )
    )
    async with conn.transaction():
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (g int4, side int2, "
            f"{', '.join(c + (' int4' if c == 'level_count' else ' float8') for c in _STAGED)})"
            " ON COMMIT DROP"
        )
        await conn.execute(f"TRUNCATE {_STAGE}")
        async with (
            conn.cursor() as cur,
            cur.copy(f"COPY {_STAGE} FROM STDIN (FORMAT BINARY)") as copy,
        ):
            await copy.write(payload)
        try:
            async with conn.transaction():
                cur = await conn.execute(insert, params)
        except UniqueViolation:
            cur = await conn.execute(upsert, params)
    return cur.rowcount


async def write_targets(conn: AsyncConnection[Any], rows: Sequence[tuple[Any, ...]]) -> int:
    """The first scan of a sample bucket wins (DO NOTHING): one target per bucket."""
    return await copy_upsert(
        conn, "cluster_targets", TARGET_COLUMNS, list(rows),
        conflict=("symbol", "timeframe", "time"),
    )  # fmt: skip


@dataclass(frozen=True)
class TypicalHistory:
    median_usd: float
    samples: int


async def typical_history(
    conn: AsyncConnection[Any], symbols: Sequence[str], since: datetime
) -> dict[str, TypicalHistory]:
    """Median over past sample buckets of the coin's largest target (over its timeframes)."""
    cur = await conn.execute(
        """
        SELECT symbol, percentile_cont(0.5) WITHIN GROUP (ORDER BY v)::float8, count(*)::int
        FROM (
            SELECT symbol, time, max(value_usd) AS v FROM cluster_targets
            WHERE symbol = ANY(%s) AND time >= %s GROUP BY symbol, time
        ) per_bucket
        GROUP BY symbol
        """,
        (list(symbols), since),
    )
    return {r[0]: TypicalHistory(float(r[1]), int(r[2])) for r in await cur.fetchall()}


async def upsert_typical(
    conn: AsyncConnection[Any],
    typical: dict[str, tuple[float, str, int]],
    scanner: str,
    version: str,
) -> None:
    """symbol → (typical USD, basis 'history' | 'snapshot', samples); other columns kept."""
    if not typical:
        return
    async with conn.cursor() as cur:
        await cur.executemany(
            """
            INSERT INTO coin_thresholds (symbol, typical_cluster_usd, stats, updated_at, scanner,
                                         scanner_version)
            VALUES (%s, %s, %s, now(), %s, %s)
            ON CONFLICT (symbol) DO UPDATE SET
                typical_cluster_usd = EXCLUDED.typical_cluster_usd,
                stats = coin_thresholds.stats || EXCLUDED.stats, updated_at = now(),
                scanner = EXCLUDED.scanner, scanner_version = EXCLUDED.scanner_version
            """,
            [
                (sym, usd, Jsonb({"typical_cluster": {
                    "basis": basis, "samples": n, "scanner_version": version}}), scanner, version)
                for sym, (usd, basis, n) in typical.items()
            ],
        )  # fmt: skip


# --- history: wicks and outcomes ---------------------------------------------------------------


async def wick_candles(
    conn: AsyncConnection[Any], symbols: Sequence[str], since: datetime, candle_min: int
) -> dict[str, Any]:
    """1-min candles since `since` aggregated into `candle_min`-minute candles per coin:
    coin index, bucket (epoch minutes), open, high, low, close — one query, one pass."""
    cols = ", ".join(
        f"{packed(c, 'float8' if c != 'bucket' else 'int8', 'bucket')} AS {c}"
        for c in ("bucket", "o", "h", "l", "c")
    )
    return await fetch_packed(
        conn,
        f"""
        SELECT s.i - 1, k.bucket, k.o, k.h, k.l, k.c
        FROM unnest(%(symbols)s::text[]) WITH ORDINALITY AS s(symbol, i)
        CROSS JOIN LATERAL (
            SELECT {cols} FROM (
                SELECT extract(epoch FROM time)::int8 / 60 / %(m)s * %(m)s AS bucket,
                       (array_agg(open ORDER BY time))[1] AS o, max(high) AS h, min(low) AS l,
                       (array_agg(close ORDER BY time DESC))[1] AS c
                FROM ohlcv
                WHERE ohlcv.symbol = s.symbol AND interval = '1m' AND time >= %(since)s
                GROUP BY 1
            ) b
        ) k
        WHERE k.bucket IS NOT NULL
        """,
        {"symbols": list(symbols), "since": since, "m": candle_min},
        keys=("coin",),
        columns=[("bucket", "int8"), ("open", "float8"), ("high", "float8"), ("low", "float8"),
                 ("close", "float8")],
    )  # fmt: skip


async def judge_targets(
    conn: AsyncConnection[Any],
    symbols: Sequence[str],
    horizon: timedelta,
    since: datetime,
    now: datetime,
    min_coverage: float = 0.9,
) -> int:
    """Give every matured target (scan older than the horizon) its outcome: win when a 1-min
    candle within the horizon touched the near edge (high ≥ edge above, low ≤ edge below).
    Bounded: only pending targets since `since`, each read over its own horizon window once.
    A window with fewer than `min_coverage` of its candles stored stays pending (a collector
    outage is not a loss)."""
    cur = await conn.execute(
        """
        WITH judged AS (
            SELECT t.symbol, t.timeframe, t.time, w.first_hit, w.candles
            FROM cluster_targets t
            CROSS JOIN LATERAL (
                SELECT min(o.time) FILTER (WHERE CASE WHEN t.side = 'short'
                                                 THEN o.high >= t.edge ELSE o.low <= t.edge END)
                           AS first_hit,
                       count(*) AS candles
                FROM ohlcv o
                WHERE o.symbol = t.symbol AND o.interval = '1m'
                  AND o.time >= date_trunc('minute', t.scan_time)
                  AND o.time < t.scan_time + %(horizon)s
            ) w
            WHERE t.symbol = ANY(%(symbols)s) AND t.outcome IS NULL
              AND t.time >= %(since)s AND t.scan_time <= %(now)s - %(horizon)s
        )
        UPDATE cluster_targets t SET
            outcome = CASE WHEN j.first_hit IS NULL THEN 'loss' ELSE 'win' END,
            reached_at = j.first_hit, horizon_s = %(horizon_s)s, judged_at = %(now)s
        FROM judged j
        WHERE t.symbol = j.symbol AND t.timeframe = j.timeframe AND t.time = j.time
          AND (j.first_hit IS NOT NULL OR j.candles >= %(needed)s)
        """,
        {
            "symbols": list(symbols), "since": since, "now": now, "horizon": horizon,
            "horizon_s": int(horizon.total_seconds()),
            "needed": int(horizon.total_seconds() / 60 * min_coverage),
        },
    )  # fmt: skip
    return cur.rowcount


@dataclass(frozen=True)
class Outcomes:
    samples: int
    wins: int
    avg_time_to_target_s: float | None


async def outcome_stats(
    conn: AsyncConnection[Any], symbols: Sequence[str], since: datetime
) -> dict[tuple[str, str], Outcomes]:
    cur = await conn.execute(
        """
        SELECT symbol, timeframe, count(*)::int, (count(*) FILTER (WHERE outcome = 'win'))::int,
               (avg(extract(epoch FROM reached_at - scan_time))
                   FILTER (WHERE outcome = 'win'))::float8
        FROM cluster_targets
        WHERE symbol = ANY(%s) AND time >= %s AND outcome IS NOT NULL
        GROUP BY symbol, timeframe
        """,
        (list(symbols), since),
    )
    return {(r[0], r[1]): Outcomes(r[2], r[3], r[4]) for r in await cur.fetchall()}


PATTERN_COLUMNS = (
    "symbol", "timeframe", "success_rate", "samples", "wins", "losses", "horizon_s",
    "avg_time_to_target_s", "max_wick_up_pct", "max_wick_down_pct", "wick_p50_up", "wick_p95_up",
    "wick_p50_down", "wick_p95_down", "updated_at", "agent", "agent_version",
)  # fmt: skip


async def upsert_patterns(conn: AsyncConnection[Any], rows: Sequence[tuple[Any, ...]]) -> int:
    return await copy_upsert(
        conn, "coin_liquidation_patterns", PATTERN_COLUMNS, list(rows),
        conflict=("symbol", "timeframe"), update=PATTERN_COLUMNS[2:],
    )  # fmt: skip
