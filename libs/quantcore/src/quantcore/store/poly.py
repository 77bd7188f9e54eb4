"""SQL of the Polymarket vertical: what the poly_collector writes (markets, trades, prices,
positions, wallets, backfill progress) and what the poly_scanner reads and writes (hunter
inputs as NumPy columns, wallet scores, clusters, signals, hybrid signals, perp links).

Every write is idempotent on the table's natural key; every row says vertical 'poly' (table
default) and its source.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from quantcore.db import copy_upsert
from quantcore.math.poly import PENDING_STATUSES, CopiedIn, PositionsIn, TradesIn, position_pnl
from quantcore.model.poly import PolyBook, PolyMarket, PolyPosition, PolySource, PolyTrade
from quantcore.store.arrays import packed, unpack

CLOSED_STATUSES = ("CLOSED", "REDEEMABLE", "REDEEMABLE_LOST")

# --- collector writes -------------------------------------------------------------------------

MARKET_COLUMNS = (
    "condition_id", "market_id", "question", "slug", "version", "outcomes", "token_ids",
    "outcome_prices", "category", "tags", "event_id", "volume_usd", "liquidity_usd", "end_date",
    "active", "closed", "resolved_outcome", "tick_size", "neg_risk", "source", "updated_at",
)  # fmt: skip


async def upsert_markets(
    conn: AsyncConnection[Any], markets: Sequence[PolyMarket], now: datetime
) -> int:
    rows = [
        (
            m.condition_id, m.market_id, m.question, m.slug, m.version,
            [o.name for o in m.outcomes], [o.token_id for o in m.outcomes],
            [o.price for o in m.outcomes] if all(o.price is not None for o in m.outcomes) else None,
            m.category, list(m.tags), m.event_id, m.volume_usd, m.liquidity_usd, m.end_date,
            m.active, m.closed, m.resolved_outcome, m.tick_size, m.neg_risk, m.source, now,
        )
        for m in markets
    ]  # fmt: skip
    return await copy_upsert(
        conn,
        "poly_markets",
        MARKET_COLUMNS,
        rows,
        conflict=("condition_id",),
        update=MARKET_COLUMNS[1:],
    )


TRADE_COLUMNS = (
    "time", "wallet", "condition_id", "token_id", "outcome_index", "side", "size", "price",
    "tx_hash", "source",
)  # fmt: skip


async def write_trades(conn: AsyncConnection[Any], trades: Sequence[PolyTrade]) -> int:
    """New fills only (a fill seen again from another walk is ignored)."""
    rows = [
        (t.time, t.wallet, t.condition_id, t.token_id, t.outcome_index, t.side, t.size, t.price, t.tx_hash or "", t.source)
        for t in trades
    ]  # fmt: skip
    return await copy_upsert(
        conn, "poly_trades", TRADE_COLUMNS, rows,
        conflict=("wallet", "time", "token_id", "side", "tx_hash", "size", "price"),
    )  # fmt: skip


PRICE_COLUMNS = (
    "time", "token_id", "condition_id", "price", "best_bid", "best_ask", "spread",
    "bid_depth_usd", "ask_depth_usd", "source",
)  # fmt: skip


async def write_books(
    conn: AsyncConnection[Any], books: Sequence[PolyBook], source: PolySource
) -> int:
    rows = []
    for b in books:
        price = b.mid if b.mid is not None else b.last_trade_price
        if price is None:
            continue  # an empty book without a last trade has no price: nothing to store
        rows.append((
            b.time, b.token_id, b.condition_id, price, b.best_bid, b.best_ask, b.spread,
            sum(lv.price * lv.size for lv in b.bids), sum(lv.price * lv.size for lv in b.asks), source,
        ))  # fmt: skip
    return await copy_upsert(
        conn,
        "poly_prices",
        PRICE_COLUMNS,
        rows,
        conflict=("token_id", "time"),
        update=PRICE_COLUMNS[2:],
    )


POSITION_COLUMNS = (
    "wallet", "token_id", "condition_id", "status", "size", "avg_price", "cost_usd",
    "realized_pnl_usd", "unrealized_pnl_usd", "end_date", "observed_at", "source",
)  # fmt: skip


async def upsert_positions(
    conn: AsyncConnection[Any], positions: Sequence[PolyPosition], now: datetime
) -> int:
    rows = [
        (
            p.wallet, p.token_id, p.condition_id, p.status, p.size, p.avg_price, p.cost_usd,
            p.realized_pnl_usd, p.unrealized_pnl_usd, p.end_date, now, p.source,
        )
        for p in positions
    ]  # fmt: skip
    return await copy_upsert(
        conn,
        "poly_positions",
        POSITION_COLUMNS,
        rows,
        conflict=("wallet", "token_id"),
        update=POSITION_COLUMNS[2:],
    )


async def add_wallets(
    conn: AsyncConnection[Any],
    wallets: Sequence[tuple[str, str | None, float | None]],
    found_via: str,
    source: PolySource,
) -> None:
    """Candidates (wallet, name, leaderboard PnL) and how they were found (kept as a set)."""
    async with conn.cursor() as cur:
        await cur.executemany(
            """
            INSERT INTO poly_wallets (wallet, name, found_via, leaderboard_pnl_usd, source)
            VALUES (%s, %s, ARRAY[%s::text], %s, %s)
            ON CONFLICT (wallet) DO UPDATE SET
                name = coalesce(EXCLUDED.name, poly_wallets.name),
                leaderboard_pnl_usd = coalesce(EXCLUDED.leaderboard_pnl_usd, poly_wallets.leaderboard_pnl_usd),
                found_via = CASE WHEN %s::text = ANY(poly_wallets.found_via) THEN poly_wallets.found_via
                                 ELSE array_append(poly_wallets.found_via, %s::text) END
            """,
            [(w, name, found_via, pnl, source, found_via, found_via) for w, name, pnl in wallets],
        )


async def wallets_to_sync(
    conn: AsyncConnection[Any], older_than: datetime, limit: int
) -> list[str]:
    cur = await conn.execute(
        """SELECT wallet FROM poly_wallets
           WHERE history_synced_at IS NULL OR history_synced_at < %s
           ORDER BY history_synced_at NULLS FIRST, wallet LIMIT %s""",
        (older_than, limit),
    )
    return [r[0] for r in await cur.fetchall()]


async def mark_synced(conn: AsyncConnection[Any], wallet: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE poly_wallets SET history_synced_at = %s WHERE wallet = %s", (at, wallet)
    )


async def open_tokens(conn: AsyncConnection[Any]) -> list[tuple[str, str]]:
    """(condition_id, token_id) of every open market, for the price refresh."""
    cur = await conn.execute(
        "SELECT condition_id, unnest(token_ids) FROM poly_markets WHERE NOT closed ORDER BY condition_id"
    )
    return [(r[0], r[1]) for r in await cur.fetchall()]


@dataclass
class Progress:
    task: str
    cursor: str | None
    pages: int
    rows: int
    done: bool


async def progress(conn: AsyncConnection[Any], task: str) -> Progress:
    cur = await conn.execute(
        "SELECT cursor, pages, rows, done FROM poly_backfill WHERE task = %s", (task,)
    )
    row = await cur.fetchone()
    return Progress(task, *row) if row else Progress(task, None, 0, 0, False)


async def save_progress(conn: AsyncConnection[Any], p: Progress) -> None:
    await conn.execute(
        """INSERT INTO poly_backfill (task, cursor, pages, rows, done, updated_at)
           VALUES (%s, %s, %s, %s, %s, now())
           ON CONFLICT (task) DO UPDATE SET cursor = EXCLUDED.cursor, pages = EXCLUDED.pages,
               rows = EXCLUDED.rows, done = EXCLUDED.done, updated_at = now()""",
        (p.task, p.cursor, p.pages, p.rows, p.done),
    )


# --- hunter inputs ----------------------------------------------------------------------------


@dataclass
class HunterData:
    wallets: list[str]
    positions: PositionsIn
    trades: TradesIn


def _hash64(expr: str) -> str:
    """A 64-bit integer code of a text id, computed by the server (dense codes are made in
    NumPy; 64 bits make a collision between two of a million ids a ~1e-7 event)."""
    return f"hashtextextended({expr}, 0)"


# one fixed-width record per fill, all fills in one bytea (a plain aggregate: no sort, no
# per-wallet hash table, one message): wallet, token, market as 64-bit hashes, buy, price, time
_FILL = np.dtype(
    [("w", ">i8"), ("tok", ">i8"), ("mk", ">i8"), ("buy", ">i4"), ("price", ">f8"), ("t", ">f8")]
)
_TRADES_SQL = f"""
SELECT string_agg(
    int8send({_hash64("wallet")}) || int8send({_hash64("token_id")}) || int8send({_hash64("condition_id")})
    || int4send((side = 'BUY')::int4) || float8send(price) || float8send(date_part('epoch', time)),
    ''::bytea)
FROM poly_trades WHERE time >= %s AND time < %s
"""
_TRADE_WALLETS_SQL = f"""
SELECT wallet, {_hash64("wallet")} FROM (SELECT DISTINCT wallet FROM poly_trades WHERE time >= %s AND time < %s) w
"""

_POSITIONS_SQL = f"""
SELECT {packed("cost_usd", "float8", None)} AS cost,
       {packed("realized_pnl_usd", "float8", None)} AS realized,
       {packed("coalesce(unrealized_pnl_usd, 0)", "float8", None)} AS unrealized,
       {packed("(status = ANY(%(pending)s))::int4", "int4", None)} AS pending,
       {packed("date_part('epoch', coalesce(end_date, observed_at))", "float8", None)} AS closed_at,
       wallet
FROM poly_positions
WHERE status = ANY(%(closed)s) AND coalesce(end_date, observed_at) >= %(since)s
GROUP BY wallet
"""


async def load_hunter_data(
    conn: AsyncConnection[Any], since: datetime, until: datetime
) -> HunterData:
    """Closed positions and fills of every wallet since `since`, as NumPy columns. The fills
    come back as one bytea of fixed-width records (not a row per fill); positions packed per
    wallet. Nothing is sorted by the server: the scoring sorts what needs an order itself."""
    async with conn.cursor(binary=True) as cur:
        await cur.execute(_TRADES_SQL, (since, until))
        blob = (await cur.fetchone() or (None,))[0]
        await cur.execute(_TRADE_WALLETS_SQL, (since, until))
        trade_wallets = await cur.fetchall()
        await cur.execute(
            _POSITIONS_SQL,
            {"pending": list(PENDING_STATUSES), "closed": list(CLOSED_STATUSES), "since": since},
        )
        pos_rows = await cur.fetchall()
    names = sorted({r[0] for r in trade_wallets} | {r[-1] for r in pos_rows})
    index = {w: i for i, w in enumerate(names)}
    fills = np.frombuffer(bytes(blob or b""), dtype=_FILL)
    hashes = np.array([r[1] for r in trade_wallets], dtype=np.int64)
    hash_index = np.array([index[r[0]] for r in trade_wallets], dtype=np.int64)
    order = np.argsort(hashes)
    wallet_of_fill = hash_index[order][np.searchsorted(hashes[order], fills["w"].astype(np.int64))]
    p = unpack(
        [(index[r[-1]], *r[:-1]) for r in pos_rows], ["w"],
        [("cost", "float8"), ("realized", "float8"), ("unrealized", "float8"), ("pending", "int4"), ("closed_at", "float8")],
    )  # fmt: skip
    trades = TradesIn(
        wallet=wallet_of_fill.astype(np.int64),
        token=np.unique(fills["tok"], return_inverse=True)[1].astype(np.int64),
        market=np.unique(fills["mk"], return_inverse=True)[1].astype(np.int64),
        buy=fills["buy"].astype(bool),
        price=fills["price"].astype(np.float64),
        time=fills["t"].astype(np.float64),
    )
    positions = PositionsIn(
        wallet=p["w"].astype(np.int64),
        cost=p["cost"].astype(np.float64),
        pnl=position_pnl(p["pending"].astype(bool), p["realized"], p["unrealized"]),
        closed_at=p["closed_at"].astype(np.float64),
    )
    return HunterData(names, positions, trades)


async def copy_returns(
    conn: AsyncConnection[Any], since: datetime, index: dict[str, int]
) -> CopiedIn:
    """Our copy trades closed since `since` (trades, vertical 'poly'), one row per wallet each
    followed, as the hunter's outcome input: the return is the trade's PnL % of its cost / 100.
    Wallets the hunter does not score (not in `index`) are left out."""
    cur = await conn.execute(
        """SELECT w, t.pnl_pct_margin::float8 / 100 FROM trades t, unnest(t.followed_wallets) w
           WHERE t.vertical = 'poly' AND t.status = 'closed' AND t.closed_at >= %s
                 AND t.pnl_pct_margin IS NOT NULL""",
        (since,),
    )
    rows = [(index[w], r) for w, r in await cur.fetchall() if w in index]
    return CopiedIn(
        wallet=np.array([w for w, _ in rows], dtype=np.int64),
        ret=np.array([r for _, r in rows], dtype=np.float64),
    )


SCORE_COLUMNS = (
    "time", "wallet", "closed_positions", "wins", "cost_usd", "pnl_usd", "roi", "shrunk_roi",
    "win_streak", "early_entries", "early_share", "trades_per_day", "two_sided_share", "label",
    "score", "is_smart", "scanner", "scanner_version", "inputs",
)  # fmt: skip


async def write_scores(conn: AsyncConnection[Any], rows: Sequence[tuple[Any, ...]]) -> int:
    return await copy_upsert(
        conn,
        "poly_wallet_scores",
        SCORE_COLUMNS,
        list(rows),
        conflict=("wallet", "time"),
        update=SCORE_COLUMNS[2:],
    )


@dataclass
class WalletScore:
    wallet: str
    label: str
    score: float
    shrunk_roi: float
    roi: float | None
    closed_positions: int
    is_smart: bool


async def latest_scores(conn: AsyncConnection[Any]) -> dict[str, WalletScore]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT wallet, label, score, shrunk_roi, roi, closed_positions, is_smart
           FROM poly_wallet_scores WHERE time = (SELECT max(time) FROM poly_wallet_scores)"""
    )
    return {r["wallet"]: WalletScore(**r) for r in await cur.fetchall()}


async def recent_fills(
    conn: AsyncConnection[Any], since: datetime, until: datetime, exclude_labels: Sequence[str] = ()
) -> list[tuple[str, str, bool, float, str, float]]:
    """(wallet, token, buy, epoch s, condition, price) of fills in the window, without the
    wallets whose latest label is in `exclude_labels` (bots and market makers)."""
    cur = await conn.execute(
        """
        SELECT t.wallet, t.token_id, t.side = 'BUY', extract(epoch FROM t.time)::float8, t.condition_id, t.price
        FROM poly_trades t
        WHERE t.time >= %s AND t.time < %s
          AND NOT EXISTS (
              SELECT 1 FROM poly_wallet_scores s
              WHERE s.wallet = t.wallet AND s.label = ANY(%s)
                AND s.time = (SELECT max(time) FROM poly_wallet_scores))
        ORDER BY t.time
        """,
        (since, until, list(exclude_labels)),
    )
    return [(r[0], r[1], bool(r[2]), float(r[3]), r[4], float(r[5])) for r in await cur.fetchall()]


async def write_clusters(
    conn: AsyncConnection[Any],
    time: datetime,
    clusters: Sequence[Any],
    scanner: str,
    version: str,
    inputs: dict[str, Any],
) -> int:
    rows = [
        (c.cluster_id, time, list(c.members), len(c.members), c.density, list(c.markets), scanner, version,
         Jsonb({**inputs, "edges": c.edges}))
        for c in clusters
    ]  # fmt: skip
    members = [(c.cluster_id, time, w) for c in clusters for w in c.members]
    n = await copy_upsert(
        conn, "poly_clusters",
        ("cluster_id", "time", "members", "size", "density", "markets", "scanner", "scanner_version", "inputs"),
        rows, conflict=("cluster_id", "time"),
    )  # fmt: skip
    await copy_upsert(
        conn,
        "poly_cluster_members",
        ("cluster_id", "time", "wallet"),
        members,
        conflict=("cluster_id", "time", "wallet"),
    )
    return n


async def latest_cluster_of(conn: AsyncConnection[Any]) -> dict[str, str]:
    """wallet → cluster id, from the latest cluster scan."""
    cur = await conn.execute(
        """SELECT wallet, cluster_id FROM poly_cluster_members
           WHERE time = (SELECT max(time) FROM poly_cluster_members)"""
    )
    return {r[0]: r[1] for r in await cur.fetchall()}


@dataclass
class OpenMarket:
    condition_id: str
    question: str
    outcomes: list[str]
    token_ids: list[str]
    liquidity_usd: float | None
    end_date: datetime | None
    category: str | None
    tags: list[str]
    source: str


async def open_markets(
    conn: AsyncConnection[Any], condition_ids: Sequence[str]
) -> dict[str, OpenMarket]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT condition_id, question, outcomes, token_ids, liquidity_usd, end_date, category, tags, source
           FROM poly_markets WHERE NOT closed AND condition_id = ANY(%s)""",
        (list(condition_ids),),
    )
    return {r["condition_id"]: OpenMarket(**r) for r in await cur.fetchall()}


async def latest_books(
    conn: AsyncConnection[Any], token_ids: Sequence[str]
) -> dict[str, tuple[float | None, float | None, datetime]]:
    """token → (best bid, best ask, time) of its latest stored book."""
    cur = await conn.execute(
        """SELECT DISTINCT ON (token_id) token_id, best_bid, best_ask, time FROM poly_prices
           WHERE token_id = ANY(%s) ORDER BY token_id, time DESC""",
        (list(token_ids),),
    )
    return {r[0]: (r[1], r[2], r[3]) for r in await cur.fetchall()}


SIGNAL_COLUMNS = (
    "time", "condition_id", "token_id", "outcome", "question", "market_price", "implied_prob", "edge",
    "criteria_met", "criteria_total", "checklist", "smart_wallets", "cluster_id", "suggested_size_usd",
    "scanner", "scanner_version", "source", "inputs",
)  # fmt: skip


async def write_signals(conn: AsyncConnection[Any], rows: Sequence[tuple[Any, ...]]) -> int:
    return await copy_upsert(
        conn,
        "poly_signals",
        SIGNAL_COLUMNS,
        list(rows),
        conflict=("condition_id", "token_id", "time"),
    )


async def recent_signal_exists(
    conn: AsyncConnection[Any], condition_id: str, token_id: str, since: datetime
) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM poly_signals WHERE condition_id = %s AND token_id = %s AND time >= %s LIMIT 1",
        (condition_id, token_id, since),
    )
    return await cur.fetchone() is not None


async def suggest_links(conn: AsyncConnection[Any], links: Sequence[tuple[str, str, str]]) -> None:
    """(condition_id, symbol, reason) suggestions; an owner's row is never overwritten."""
    async with conn.cursor() as cur:
        await cur.executemany(
            """INSERT INTO poly_perp_links (condition_id, symbol, origin, reason)
               VALUES (%s, %s, 'suggested', %s)
               ON CONFLICT (condition_id) DO UPDATE SET symbol = EXCLUDED.symbol, reason = EXCLUDED.reason,
                   updated_at = now()
               WHERE poly_perp_links.origin = 'suggested'""",
            list(links),
        )


async def unlinked_markets(
    conn: AsyncConnection[Any],
) -> list[tuple[str, str, str | None, list[str]]]:
    cur = await conn.execute(
        """SELECT m.condition_id, m.question, m.category, m.tags FROM poly_markets m
           WHERE NOT m.closed AND NOT EXISTS (SELECT 1 FROM poly_perp_links l WHERE l.condition_id = m.condition_id)"""
    )
    return [(r[0], r[1], r[2], list(r[3])) for r in await cur.fetchall()]


@dataclass
class StoredSignal:
    time: datetime
    condition_id: str
    token_id: str
    question: str
    outcome: str
    edge: float
    criteria_met: int
    criteria_total: int


async def recent_signals(conn: AsyncConnection[Any], since: datetime) -> list[StoredSignal]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT time, condition_id, token_id, question, outcome, edge, criteria_met, criteria_total
           FROM poly_signals WHERE time >= %s ORDER BY time""",
        (since,),
    )
    return [StoredSignal(**r) for r in await cur.fetchall()]


async def linked_symbol(conn: AsyncConnection[Any], condition_id: str) -> str | None:
    cur = await conn.execute(
        "SELECT symbol FROM poly_perp_links WHERE condition_id = %s AND enabled", (condition_id,)
    )
    row = await cur.fetchone()
    return row[0] if row else None


async def perp_activity(
    conn: AsyncConnection[Any], symbol: str, since: datetime, until: datetime, top_n: int
) -> tuple[list[str], int | None, dict[str, Any]]:
    """What the perps side says about `symbol` in the window: spike kinds from
    oi_volume_spikes, and its rank in the latest ranking cycle if within the top N."""
    cur = await conn.execute(
        """SELECT bool_or(is_oi_spike), bool_or(is_volume_spike), max(time)
           FROM oi_volume_spikes WHERE symbol = %s AND time >= %s AND time <= %s""",
        (symbol, since, until),
    )
    oi, vol, at = (await cur.fetchone()) or (None, None, None)
    cur = await conn.execute(
        """SELECT rank, time FROM coin_rankings
           WHERE symbol = %s AND time = (SELECT max(time) FROM coin_rankings WHERE time <= %s)""",
        (symbol, until),
    )
    ranked = await cur.fetchone()
    reasons = [r for r, ok in (("oi_spike", oi), ("volume_spike", vol)) if ok]
    rank = int(ranked[0]) if ranked and ranked[0] <= top_n else None
    if rank is not None:
        reasons.append("top10" if top_n == 10 else f"top{top_n}")
    inputs = {"spike_at": at.isoformat() if at else None, "rank": ranked[0] if ranked else None}
    return reasons, rank, inputs


HYBRID_COLUMNS = (
    "time", "condition_id", "token_id", "poly_signal_time", "symbol", "reasons", "perp_rank",
    "scanner", "scanner_version", "inputs",
)  # fmt: skip


async def write_hybrid(conn: AsyncConnection[Any], rows: Sequence[tuple[Any, ...]]) -> int:
    return await copy_upsert(
        conn,
        "hybrid_signals",
        HYBRID_COLUMNS,
        list(rows),
        conflict=("condition_id", "token_id", "poly_signal_time", "symbol"),
    )


async def hybrid_symbols(conn: AsyncConnection[Any], since: datetime, until: datetime) -> set[str]:
    """Perp symbols with a hybrid Polymarket signal stamped in [since, until]: the coins the
    ranker boosts by POLY_HYBRID_BOOST."""
    cur = await conn.execute(
        "SELECT DISTINCT symbol FROM hybrid_signals WHERE time >= %s AND time <= %s",
        (since, until),
    )
    return {row[0] for row in await cur.fetchall()}


def jsonb(value: Any) -> Jsonb:
    return Jsonb(json.loads(json.dumps(value, default=str)))
