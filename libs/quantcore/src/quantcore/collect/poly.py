"""The poly_collector's jobs as functions: markets (resumable keyset crawl), books of open
markets, the trade feed, candidate wallets (leaderboard + holders) and wallet histories.

Walks save their cursor after every page in poly_backfill, so a restart resumes; an expired
cursor restarts that walk from the beginning (writes are idempotent, nothing is duplicated).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from psycopg_pool import AsyncConnectionPool
from tqdm import tqdm

from quantcore.adapters.polymarket.parse import Page
from quantcore.adapters.polymarket.rest import CursorExpired, PolymarketClient
from quantcore.errors import BadPayload, ExternalError
from quantcore.logging import get_logger
from quantcore.model.poly import PolyBook
from quantcore.store import poly as store

T = TypeVar("T")
log = get_logger(component="poly_collect")


async def walk_resumable(
    pool: AsyncConnectionPool,
    task: str,
    fetch: Callable[[str | None], Awaitable[Page[T]]],
    write: Callable[[Any, list[T]], Awaitable[int]],
    *,
    restart: bool = False,
    max_pages: int = 10_000,
    progress_bar: bool = False,
) -> store.Progress:
    """Walk a cursor-paged endpoint from the saved cursor, writing and saving after each page."""
    async with pool.connection() as conn:
        prog = await store.progress(conn, task)
    if restart or prog.done:
        prog = store.Progress(task, None, 0, 0, False)
    bar = tqdm(desc=task, unit="page", disable=not progress_bar, initial=prog.pages)
    try:
        for _ in range(max_pages):
            try:
                page = await fetch(prog.cursor)
            except CursorExpired:
                log.warning("cursor expired, restarting the walk", task=task, pages=prog.pages)
                prog = store.Progress(task, None, 0, 0, False)
                page = await fetch(None)
            stuck = page.next_cursor is not None and page.next_cursor == prog.cursor
            if stuck:  # the API ignored the cursor (seen on Gamma keyset, Polymarket/agents#227)
                log.warning("cursor did not advance, walk ended", task=task, pages=prog.pages)
            async with pool.connection() as conn:
                written = await write(conn, page.items)
                prog.pages += 1
                prog.rows += written
                prog.cursor = None if stuck else page.next_cursor
                prog.done = prog.cursor is None
                await store.save_progress(conn, prog)
            bar.update(1)
            if prog.done:
                break
    finally:
        bar.close()
    return prog


async def collect_markets(
    pool: AsyncConnectionPool, client: PolymarketClient, now: datetime, **kw: Any
) -> store.Progress:
    async def write(conn: Any, items: list[Any]) -> int:
        return await store.upsert_markets(conn, items, now)

    return await walk_resumable(pool, "markets", lambda c: client.markets_page(c), write, **kw)


async def collect_books(pool: AsyncConnectionPool, client: PolymarketClient) -> int:
    """Book (best bid / ask, depth, mid) of every outcome of every open market."""
    async with pool.connection() as conn:
        tokens = await store.open_tokens(conn)
    books: list[PolyBook] = []
    for _cond, token in tokens:
        try:
            books.append(await client.book(token))
        except BadPayload:
            continue  # already dead-lettered by the client
        except ExternalError as exc:
            log.warning("book not fetched", token=token[:20], error=str(exc)[:200])
    async with pool.connection() as conn:
        return await store.write_books(conn, books, client.source)


async def collect_feed(
    pool: AsyncConnectionPool, client: PolymarketClient, max_pages: int = 50
) -> int:
    """The global trade feed, newest first, until a page holds only fills we already have."""
    total = 0
    cursor: str | None = None
    for _ in range(max_pages):
        page = await client.trades_page(cursor)
        async with pool.connection() as conn:
            new = await store.write_trades(conn, page.items)
        total += new
        if page.next_cursor is None or (page.items and new == 0):
            break
        cursor = page.next_cursor
    return total


async def discover_wallets(
    pool: AsyncConnectionPool,
    client: PolymarketClient,
    leaderboard_pages: int = 4,
    holder_markets: int = 20,
) -> int:
    """Candidates: the ALL-time leaderboard (realised PnL; finite windows include unrealised
    PnL, so they are not used to judge) and the top holders of open markets."""
    found = 0
    for i in range(leaderboard_pages):
        rows = await client.leaderboard("ALL", offset=i * 50, limit=50)
        async with pool.connection() as conn:
            await store.add_wallets(
                conn,
                [(r.wallet, r.name, r.pnl_usd) for r in rows],
                "leaderboard:ALL",
                client.source,
            )
        found += len(rows)
        if len(rows) < 50:
            break
    async with pool.connection() as conn:
        conds = sorted({c for c, _ in await store.open_tokens(conn)})[:holder_markets]
    for k in range(0, len(conds), 20):
        holders = await client.holders(conds[k : k + 20])
        async with pool.connection() as conn:
            await store.add_wallets(
                conn, [(h.wallet, h.name, None) for h in holders], "holders", client.source
            )
        found += len(holders)
    return found


async def sync_wallet(
    pool: AsyncConnectionPool, client: PolymarketClient, wallet: str, now: datetime
) -> tuple[int, int]:
    """A wallet's whole record: every position (open and closed) and its fills."""
    n_pos = n_tr = 0
    async for page, _ in client.walk(lambda c: client.positions_page(wallet, c)):
        async with pool.connection() as conn:
            n_pos += await store.upsert_positions(conn, page.items, now)
    async for tpage, _ in client.walk(lambda c: client.trades_page(c, user=wallet)):
        async with pool.connection() as conn:
            n_tr += await store.write_trades(conn, tpage.items)
    if n_pos == 0:
        log.info("wallet has no positions yet: nothing to score", wallet=wallet)
    async with pool.connection() as conn:
        await store.mark_synced(conn, wallet, now)
    return n_pos, n_tr


async def sync_wallets(
    pool: AsyncConnectionPool,
    client: PolymarketClient,
    now: datetime,
    batch: int,
    resync: timedelta,
) -> int:
    async with pool.connection() as conn:
        wallets = await store.wallets_to_sync(conn, now - resync, batch)
    done = 0
    for w in wallets:
        try:
            await sync_wallet(pool, client, w, now)
            done += 1
        except ExternalError as exc:
            log.warning("wallet history not fetched", wallet=w, error=str(exc)[:200])
    return done
