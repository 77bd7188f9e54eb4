"""Read-only queries behind the control surface (Telegram, `quant`) and the daily digest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from quantcore.db import fetch_all
from quantcore.store.series import latest_prices
from quantcore.trading.trailing import profit_pct


@dataclass(frozen=True)
class Heartbeat:
    service: str
    instance: str
    status: str
    beat_at: datetime
    version: str | None
    started_at: datetime


async def heartbeats(conn: AsyncConnection[Any]) -> list[Heartbeat]:
    return await fetch_all(
        conn,
        """SELECT service, instance, status, beat_at, version, started_at FROM service_heartbeats
           ORDER BY service, instance""",
        None,
        Heartbeat,
    )


@dataclass(frozen=True)
class Ranked:
    rank: int
    symbol: str
    score: float
    direction: str | None
    price: float | None
    target_price: float | None
    time: datetime
    heatmap_source: str | None = None  # coinglass | model | sim (None: ranked before it was kept)


async def top(conn: AsyncConnection[Any], n: int = 10) -> list[Ranked]:
    """The latest ranking cycle's top n."""
    return await fetch_all(
        conn,
        """SELECT rank, symbol, score::float8 AS score, direction, price::float8 AS price,
                  target_price::float8 AS target_price, time, heatmap_source
           FROM coin_rankings
           WHERE time = (SELECT max(time) FROM coin_rankings)
           ORDER BY rank LIMIT %s""",
        (n,),
        Ranked,
    )


@dataclass(frozen=True)
class OpenPosition:
    symbol: str
    direction: str
    entry_price: float | None
    leverage: float | None
    stop_loss: float | None
    take_profit: float | None
    venue: str
    scanner: str | None
    opened_at: datetime | None
    price: float | None = None

    @property
    def pnl_pct(self) -> float | None:
        """Unrealised PnL in percent on price, signed by direction."""
        if self.price is None or not self.entry_price:
            return None
        return profit_pct(self.direction, self.entry_price, self.price, 1.0, "price")

    @property
    def pnl_pct_margin(self) -> float | None:
        if self.price is None or not self.entry_price:
            return None
        return profit_pct(
            self.direction, self.entry_price, self.price, self.leverage or 1.0, "margin"
        )


async def open_positions(conn: AsyncConnection[Any]) -> list[OpenPosition]:
    rows = await fetch_all(
        conn,
        """SELECT symbol, direction, entry_price::float8 AS entry_price,
                  leverage::float8 AS leverage, stop_loss::float8 AS stop_loss,
                  take_profit::float8 AS take_profit, venue, scanner, opened_at
           FROM trades WHERE status = 'open' AND vertical = 'perps'
           ORDER BY opened_at NULLS LAST, symbol""",
        None,
        OpenPosition,
    )
    prices = await latest_prices(conn, sorted({r.symbol for r in rows}))
    return [
        OpenPosition(
            **{**r.__dict__, "price": prices[r.symbol].price if r.symbol in prices else None}
        )
        for r in rows
    ]


async def has_open_position(conn: AsyncConnection[Any], symbol: str) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM trades WHERE symbol = %s AND vertical = 'perps' "
        "AND status IN ('pending', 'open') LIMIT 1",
        (symbol,),
    )
    return await cur.fetchone() is not None


@dataclass(frozen=True)
class PnlSummary:
    trades: int
    wins: int
    losses: int
    pnl_quote: float
    avg_pnl_pct: float | None  # percent on price, mean per trade
    sum_pnl_pct_margin: float
    best_symbol: str | None
    best_pct: float | None
    worst_symbol: str | None
    worst_pct: float | None

    @property
    def win_rate_pct(self) -> float | None:
        return self.wins / self.trades * 100.0 if self.trades else None


async def pnl(
    conn: AsyncConnection[Any], since: datetime | None, until: datetime | None = None
) -> PnlSummary:
    """Closed perps trades (the Polymarket copy trades, vertical 'poly', have their own panels
    and the Trading dashboard's perps / poly / combined total)."""
    rows = await fetch_all(
        conn,
        """
        WITH closed AS (
            SELECT symbol, pnl_quote::float8 AS q, pnl_pct_price::float8 AS p,
                   pnl_pct_margin::float8 AS m
            FROM trades WHERE status = 'closed' AND vertical = 'perps'
              AND (%(since)s::timestamptz IS NULL OR closed_at >= %(since)s)
              AND (%(until)s::timestamptz IS NULL OR closed_at < %(until)s)
        )
        SELECT count(*)::int AS trades,
               count(*) FILTER (WHERE q > 0)::int AS wins,
               count(*) FILTER (WHERE q <= 0)::int AS losses,
               coalesce(sum(q), 0)::float8 AS pnl_quote,
               avg(p)::float8 AS avg_pnl_pct,
               coalesce(sum(m), 0)::float8 AS sum_pnl_pct_margin,
               (SELECT symbol FROM closed ORDER BY p DESC NULLS LAST LIMIT 1) AS best_symbol,
               max(p)::float8 AS best_pct,
               (SELECT symbol FROM closed ORDER BY p ASC NULLS LAST LIMIT 1) AS worst_symbol,
               min(p)::float8 AS worst_pct
        FROM closed
        """,
        {"since": since, "until": until},
        PnlSummary,
    )
    return rows[0]


@dataclass(frozen=True)
class EquityChange:
    start: float
    end: float

    @property
    def pct(self) -> float | None:
        return (self.end / self.start - 1.0) * 100.0 if self.start else None


async def equity_change(
    conn: AsyncConnection[Any], venue: str, since: datetime | None
) -> EquityChange | None:
    """Account equity at the first and last snapshot since `since` (None: no snapshots)."""
    cur = await conn.execute(
        """
        SELECT (SELECT equity::float8 FROM equity_snapshots
                WHERE venue = %(v)s AND agent = 'account'
                  AND (%(s)s::timestamptz IS NULL OR time >= %(s)s) ORDER BY time LIMIT 1),
               (SELECT equity::float8 FROM equity_snapshots
                WHERE venue = %(v)s AND agent = 'account' ORDER BY time DESC LIMIT 1)
        """,
        {"v": venue, "s": since},
    )
    row = await cur.fetchone()
    if row is None or row[0] is None or row[1] is None:
        return None
    return EquityChange(float(row[0]), float(row[1]))


def leaderboard_sql(since: str, until: str, limit: str) -> str:
    """THE scanner leaderboard (one definition): per scanner and version, its live / paper
    signals and closed trades in [since, until) beside its strategy's headline backtest
    (`backtest_headline`: the latest walk-forward out-of-sample result, else the latest single
    run), matched on name and code version (a live version is `code+params`, migrations 0005).
    A backtest with no live record yet is a row of its own. `since` / `until` / `limit` are SQL
    expressions: psycopg parameters here, Grafana's time macros in scripts/gen_dashboards.py,
    which renders this same text into the Scanners dashboard."""
    return f"""
        WITH t AS (
            SELECT coalesce(scanner, 'manual') AS scanner, coalesce(scanner_version, '') AS scanner_version,
                   count(*) AS trades, count(*) FILTER (WHERE pnl_quote > 0) AS wins,
                   sum(pnl_pct_margin) AS pnl_pct_margin, avg(pnl_pct_price) AS avg_pnl_pct,
                   avg(pnl_pct_margin) FILTER (WHERE pnl_quote > 0) AS avg_win_pct,
                   avg(pnl_pct_margin) FILTER (WHERE pnl_quote <= 0) AS avg_loss_pct,
                   sum(pnl_quote) AS pnl_quote
            FROM trades
            WHERE status = 'closed'
              AND ({since} IS NULL OR closed_at >= {since}) AND ({until} IS NULL OR closed_at < {until})
            GROUP BY 1, 2
        ), s AS (
            SELECT scanner, scanner_version, count(*) AS signals,
                   string_agg(DISTINCT heatmap_source, ', ') AS heatmap_sources
            FROM (
                SELECT scanner, scanner_version, time, coalesce(heatmap_source, '?') AS heatmap_source
                FROM signals
                UNION ALL SELECT scanner, scanner_version, time, NULL FROM poly_signals
            ) x
            WHERE ({since} IS NULL OR time >= {since}) AND ({until} IS NULL OR time < {until})
            GROUP BY 1, 2
        ), live AS (
            SELECT coalesce(t.scanner, s.scanner) AS scanner,
                   coalesce(t.scanner_version, s.scanner_version) AS version,
                   coalesce(s.signals, 0) AS signals, s.heatmap_sources,
                   coalesce(t.trades, 0) AS trades, coalesce(t.wins, 0) AS wins, t.pnl_pct_margin, t.avg_pnl_pct, t.avg_win_pct,
                   t.avg_loss_pct, t.pnl_quote
            FROM t
            FULL JOIN s ON s.scanner = t.scanner AND s.scanner_version = t.scanner_version
        )
        SELECT coalesce(l.scanner, b.strategy) AS scanner, coalesce(l.version, b.version) AS version,
               coalesce(l.signals, 0)::int AS signals, l.heatmap_sources,
               coalesce(l.trades, 0)::int AS trades,
               coalesce(l.wins, 0)::int AS wins,
               (100.0 * l.wins / nullif(l.trades, 0))::float8 AS win_rate_pct,
               l.pnl_pct_margin::float8 AS pnl_pct_margin, l.avg_pnl_pct::float8 AS avg_pnl_pct,
               l.avg_win_pct::float8 AS avg_win_pct, l.avg_loss_pct::float8 AS avg_loss_pct,
               (l.avg_win_pct / nullif(abs(l.avg_loss_pct), 0))::float8 AS reward_risk,
               coalesce(l.pnl_quote, 0)::float8 AS pnl_quote,
               b.out_of_sample AS bt_out_of_sample, b.pnl_pct AS bt_pnl_pct,
               b.win_rate_pct AS bt_win_rate_pct, b.profit_factor AS bt_profit_factor,
               b.sharpe AS bt_sharpe, b.trades AS bt_trades, b.days AS bt_days,
               b.created_at AS bt_at, r.description
        FROM live l
        FULL JOIN backtest_headline b
               ON b.strategy = l.scanner AND b.version = split_part(l.version, '+', 1)
        LEFT JOIN scanners r ON r.name = l.scanner AND r.version = l.version
        ORDER BY l.pnl_pct_margin DESC NULLS LAST, coalesce(l.pnl_quote, 0) DESC,
                 coalesce(l.signals, 0) DESC, b.pnl_pct DESC NULLS LAST, 1, 2
        LIMIT {limit}
        """


LEADERBOARD_SQL = leaderboard_sql("%(since)s::timestamptz", "%(until)s::timestamptz", "%(limit)s")


@dataclass(frozen=True)
class ScannerScore:
    """A leaderboard row: live / paper figures, then the headline backtest (bt_*; None when
    the scanner has none — only strategy plug-ins are backtested)."""

    scanner: str
    version: str
    signals: int
    heatmap_sources: str | None  # the heatmap sources behind its signals (coinglass, model, sim)
    trades: int
    wins: int
    win_rate_pct: float | None
    pnl_pct_margin: float | None  # sum over the closed trades
    avg_pnl_pct: float | None  # percent on price, mean per trade
    avg_win_pct: float | None
    avg_loss_pct: float | None
    reward_risk: float | None
    pnl_quote: float
    bt_out_of_sample: bool | None
    bt_pnl_pct: float | None
    bt_win_rate_pct: float | None
    bt_profit_factor: float | None
    bt_sharpe: float | None
    bt_trades: int | None
    bt_days: float | None
    bt_at: datetime | None
    description: str | None

    @property
    def backtested(self) -> bool:
        return self.bt_out_of_sample is not None


async def scanner_leaderboard(
    conn: AsyncConnection[Any], limit: int = 15, since: datetime | None = None,
    until: datetime | None = None,
) -> list[ScannerScore]:  # fmt: skip
    return await fetch_all(
        conn, LEADERBOARD_SQL, {"since": since, "until": until, "limit": limit}, ScannerScore
    )


async def signal_count(conn: AsyncConnection[Any], since: datetime, until: datetime) -> int:
    cur = await conn.execute(
        "SELECT count(*) FROM signals WHERE time >= %s AND time < %s", (since, until)
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def open_count(conn: AsyncConnection[Any]) -> int:
    cur = await conn.execute(
        "SELECT count(*) FROM trades WHERE status = 'open' AND vertical = 'perps'"
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


def period_start(period: str, now: datetime, day_start: datetime) -> datetime | None:
    """Start of /pnl's period: today (owner's midnight), 7d, 30d or all (None)."""
    if period == "today":
        return day_start
    if period == "all":
        return None
    return now - timedelta(days=int(period.rstrip("d")))
