"""The venue TRADING_MODE asks for: paper (default), Bybit testnet or Bybit live."""

from __future__ import annotations

from quantcore.adapters.bybit.execution import make_bybit_venue
from quantcore.adapters.bybit.rest import BybitMarketData
from quantcore.config import ConfigError, Settings
from quantcore.venues.base import Venue
from quantcore.venues.paper import PaperBook, PaperFees, PaperVenue
from quantcore.venues.prices import TickerPrices


def make_venue(settings: Settings, paper_book: PaperBook, market: BybitMarketData) -> Venue:
    """`paper_book`: the paper account's books (quantcore.store.paper_venue.PaperBooks, wired by
    the service), used only when TRADING_MODE=paper. `market`: the process's market data; a
    Bybit venue calls through its client when it is the same host (`make_bybit_client`)."""
    if settings.trading_mode == "paper":
        fees = PaperFees(
            taker_pct=settings.paper_taker_fee_pct,
            maker_pct=settings.paper_maker_fee_pct,
            slippage_pct=settings.paper_slippage_pct,
            default_leverage=settings.trade_leverage,
        )
        return PaperVenue(paper_book, TickerPrices(market), fees)
    if settings.trading_mode in ("testnet", "live"):
        return make_bybit_venue(settings, settings.trading_mode, http=market.http)
    raise ConfigError(f"TRADING_MODE: no venue called {settings.trading_mode!r}")
