"""The venue's price and quantity grid of every coin (tick size, qty step, min qty), from the
public market-data adapter's instruments-info, kept for an hour: the autotrader sizes and prices
orders on it, the position monitor puts trailed stops on it. A coin not known is looked up again
at once (it may have been listed since) and is then a LookupError."""

from __future__ import annotations

import time

from quantcore.adapters.bybit.rest import BybitMarketData
from quantcore.model.plan import InstrumentRules

REFRESH_S = 3600.0


class InstrumentGrid:
    def __init__(self, market: BybitMarketData, refresh_s: float = REFRESH_S) -> None:
        self.market = market
        self.refresh_s = refresh_s
        self._rules: dict[str, InstrumentRules] = {}
        self._at: float | None = None

    async def rules(self, symbol: str) -> InstrumentRules:
        """The coin's grid; LookupError when the venue does not list it as a linear perp."""
        if (
            symbol not in self._rules
            or self._at is None
            or time.monotonic() - self._at > self.refresh_s
        ):
            self._rules = {
                i.symbol: InstrumentRules(
                    tick_size=i.tick_size, qty_step=i.qty_step, min_qty=i.min_qty
                )
                for i in await self.market.instruments()
            }
            self._at = time.monotonic()
        if symbol not in self._rules:
            raise LookupError(f"{symbol} is not a trading linear perpetual")
        return self._rules[symbol]
