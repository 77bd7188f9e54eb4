"""The venue TRADING_MODE asks for: paper (default), Bybit testnet or Bybit live."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from quantcore.adapters.bybit.execution import make_bybit_venue
from quantcore.adapters.bybit.rest import BybitMarketData
from quantcore.config import ConfigError, Settings
from quantcore.venues.base import Venue
from quantcore.venues.paper import PaperFees, PaperVenue
from quantcore.venues.prices import TickerPrices


def make_venue(
    settings: Settings, pool: AsyncConnectionPool[AsyncConnection[Any]], market: BybitMarketData
) -> Venue:
    if settings.trading_mode == "paper":
        fees = PaperFees(
            taker_pct=settings.paper_taker_fee_pct,
            maker_pct=settings.paper_maker_fee_pct,
            slippage_pct=settings.paper_slippage_pct,
            default_leverage=settings.trade_leverage,
        )
        return PaperVenue(pool, TickerPrices(market), settings.paper_start_equity, fees)
    if settings.trading_mode in ("testnet", "live"):
        return make_bybit_venue(settings, settings.trading_mode)
    raise ConfigError(f"TRADING_MODE: no venue called {settings.trading_mode!r}")
