"""A fake Bybit REST server for one coin: /v5/market/instruments-info and /v5/market/tickers
in the real wire format (Bybit's documented payloads with the coin, its price grid and price
swapped in). Enough for the autotrader, the paper venue's prices and the ranker's grid."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from aiohttp import web

from tests.fakes.http import FakeServer

SAMPLES = Path(__file__).parents[1] / "adapters" / "samples"
SYMBOL = "SOLUSDT"
PRICE = 100.0


class FakeBybit(FakeServer):
    """/v5/market/instruments-info and /v5/market/tickers for one coin (recorded payloads)."""

    def __init__(self, tick: str = "0.01") -> None:
        super().__init__()
        self.tick = tick
        self.app.router.add_get("/v5/market/instruments-info", self.instruments)
        self.app.router.add_get("/v5/market/tickers", self.tickers)

    async def instruments(self, request: web.Request) -> web.Response:
        body = json.loads((SAMPLES / "bybit_instruments_docs.json").read_text())
        item = copy.deepcopy(body["result"]["list"][0])
        item.update(symbol=SYMBOL, baseCoin="SOL")
        item["priceFilter"]["tickSize"] = self.tick
        body["result"]["list"] = [item]
        return web.json_response(body)

    async def tickers(self, request: web.Request) -> web.Response:
        body = json.loads((SAMPLES / "bybit_tickers_linear.json").read_text())
        item = copy.deepcopy(body["result"]["list"][0])
        item.update(symbol=SYMBOL, lastPrice=str(PRICE), markPrice=str(PRICE), bid1Price=str(PRICE),
                    ask1Price=str(PRICE), indexPrice=str(PRICE))  # fmt: skip
        body["result"]["list"] = [item]
        return web.json_response(body)
