"""Backfill by hand, with progress bars: `uv run python -m svc_poly_collector.backfill
[--restart] [--wallets N]`. The market crawl resumes from its saved cursor (poly_backfill)
unless --restart; then candidates are discovered and up to N wallet histories fetched."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime, timedelta

from tqdm import tqdm

from quantcore.adapters.polymarket.rest import PolymarketClient, PolymarketUrls
from quantcore.collect import poly as collect
from quantcore.config import load_settings
from quantcore.db import open_pool
from quantcore.store import poly as store


async def main(restart: bool, wallets: int) -> None:
    s = load_settings()
    pool = await open_pool(s)
    client = PolymarketClient(
        PolymarketUrls.single(s.sim_http_url) if s.poly_sim else PolymarketUrls(),
        source="sim" if s.poly_sim else "polymarket", rate_scale=1.0 if s.poly_sim else s.poly_rate_scale,
    )  # fmt: skip
    now = datetime.now(UTC)
    try:
        prog = await collect.collect_markets(pool, client, now, restart=restart, progress_bar=True)
        print(f"markets: {prog.rows} rows in {prog.pages} pages, done={prog.done}")
        print(f"books: {await collect.collect_books(pool, client)}")
        print(f"candidates: {await collect.discover_wallets(pool, client)}")
        async with pool.connection() as conn:
            todo = await store.wallets_to_sync(
                conn, now - timedelta(hours=s.poly_wallet_resync_h), wallets
            )
        for w in tqdm(todo, desc="wallet histories", unit="wallet"):
            await collect.sync_wallet(pool, client, w, now)
    finally:
        await client.aclose()
        await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--restart", action="store_true", help="crawl the markets from the start")
    parser.add_argument("--wallets", type=int, default=1000, help="wallet histories to fetch")
    args = parser.parse_args()
    asyncio.run(main(args.restart, args.wallets))
