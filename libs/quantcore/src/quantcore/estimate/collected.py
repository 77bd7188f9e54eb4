"""The estimate's inputs the market collector gathers from the venue's public REST (no key):
the long/short account ratio (5-minute periods for the recent days, 4-hour ones for the year,
as far back as the venue keeps them) and the risk-limit tiers (maintenance margin per tier).
Resumable: each coin's ratios continue from the newest stored one, so a restart costs one
page per period. The taker flow comes from the trade stream (the collector's live part).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from psycopg import AsyncConnection

from quantcore.model.market import AccountRatio, RiskTier
from quantcore.store.heatmap_inputs import last_account_ratios, write_account_ratios, write_tiers

DAY = 86_400
# (Bybit account-ratio period, seconds, history kept): the periods the estimate's intervals use
RATIO_SERIES = (("4h", 14_400, 366 * DAY), ("5min", 300, 3 * DAY))


class PublicInputs(Protocol):
    async def account_ratio(
        self, symbol: str, start: datetime, end: datetime, period: str = "5min"
    ) -> list[AccountRatio]: ...

    async def risk_limits(self, symbol: str) -> list[RiskTier]: ...


@dataclass(frozen=True)
class Collected:
    ratios: int  # account ratios written
    tiers: int  # risk-limit tiers written
    errors: tuple[str, ...] = ()  # what could not be fetched (what is stored stays in use)
    empty: tuple[str, ...] = ()  # what the venue answered with nothing


async def sync_account_ratios(
    client: PublicInputs, conn: AsyncConnection[Any], symbol: str, now: datetime, source: str
) -> Collected:
    """The account ratios of `symbol` not stored yet, up to `now` (the first call backfills)."""
    written = 0
    errors: list[str] = []
    empty: list[str] = []
    for period, period_s, keep in RATIO_SERIES:
        last = (await last_account_ratios(conn, [symbol], period_s)).get(symbol)
        start = now - timedelta(seconds=keep)
        if last is not None:
            start = max(start, last + timedelta(seconds=period_s))
        if now - start < timedelta(seconds=period_s):
            continue  # nothing new can exist yet
        try:
            ratios = await client.account_ratio(symbol, start, now, period)
        except Exception as exc:  # the venue failing must not stop the rest
            errors.append(f"account ratio {period}: {str(exc)[:200]}")
            continue
        if not ratios:
            empty.append(f"account ratio {period}")
            continue
        written += await write_account_ratios(conn, ratios, source)
    return Collected(written, 0, tuple(errors), tuple(empty))


async def sync_risk_tiers(
    client: PublicInputs, conn: AsyncConnection[Any], symbol: str, source: str
) -> Collected:
    """Replace the coin's risk-limit tiers with the venue's current ladder (kept as they were
    when the venue fails or answers with none: never an empty ladder)."""
    try:
        tiers = await client.risk_limits(symbol)
    except Exception as exc:
        return Collected(0, 0, errors=(f"risk limit: {str(exc)[:200]}",))
    if not tiers:
        return Collected(0, 0, empty=("risk limit",))
    return Collected(0, await write_tiers(conn, tiers, source))


async def sync_collected(
    client: PublicInputs, conn: AsyncConnection[Any], symbol: str, now: datetime, source: str,
    tiers: bool = True,
) -> Collected:  # fmt: skip
    """Both of the above for one coin."""
    a = await sync_account_ratios(client, conn, symbol, now, source)
    if not tiers:
        return a
    b = await sync_risk_tiers(client, conn, symbol, source)
    return Collected(a.ratios, b.tiers, a.errors + b.errors, a.empty + b.empty)
