"""Wire facts of the Polymarket public APIs (shared/api/README.md §4; docs.polymarket.com
api-reference/rate-limits, migrate/data-api-v1-to-v2, migrate/polymarket-v2/api-integrations).

Hosts: Gamma (markets, events, tags), CLOB (books, prices, midpoints, tick size, fee rate,
price history; public reads need no key), Data API (trades, positions, holders, leaderboard,
activity). Data API v1 routes are camelCase with bare arrays and offset paging (offset stops at
10,000); v2 routes (`/v2/...`) are snake_case inside `{"data": [...], "pagination":
{"next_cursor", "has_more"}}` and page by opaque cursor only (`next_cursor` null = done).
Gamma markets carry `version`: "v1" markets list `clobTokenIds`/`outcomes`/`outcomePrices` as
JSON-encoded strings, "v2" (Protocol V2) markets a real `positionIds` array.
"""

from __future__ import annotations

GAMMA_URL = "https://gamma-api.polymarket.com"
DATA_URL = "https://data-api.polymarket.com"
CLOB_URL = "https://clob.polymarket.com"

# CLOB /markets cursor paging: "MA==" is the first page, "LTE=" means no more pages.
CLOB_FIRST_CURSOR = "MA=="
CLOB_END_CURSOR = "LTE="

# Documented limits per 10 s window (Cloudflare throttles rather than rejects; we stay under).
RATE_WINDOW_S = 10.0
RATE_LIMITS: dict[str, int] = {
    "gamma": 4_000,
    "gamma:/markets": 300,
    "gamma:/events": 500,
    "data": 1_000,
    "data:/trades": 200,
    "data:/v2/trades": 200,
    "data:/positions": 150,
    "data:/v2/positions": 150,
    "clob": 9_000,
    "clob:/book": 1_500,
    "clob:/price": 1_500,
    "clob:/midpoint": 1_500,
    "clob:/prices-history": 1_000,
}

# Page sizes (the documented maxima).
GAMMA_PAGE = 500
DATA_TRADES_PAGE = 500
DATA_POSITIONS_PAGE = 500
DATA_CLOSED_POSITIONS_PAGE = 50
LEADERBOARD_PAGE = 50
LEADERBOARD_MAX_OFFSET = 1_000
HOLDERS_PER_TOKEN = 20
V2_MAX_CONDITIONS = 20
LEADERBOARD_PERIODS = ("DAY", "WEEK", "MONTH", "ALL")
