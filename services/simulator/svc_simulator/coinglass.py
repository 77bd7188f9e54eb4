"""CoinGlass-shaped liquidation heatmaps (v4 paths), from the simulated levels.

Envelope {"code": "0", "msg": "success", "data": {...}} with `code` a string. The data: y_axis
(prices), liquidation_leverage_data [[x, y, value]] where x indexes price_candlesticks
[[ts_seconds, "o", "h", "l", "c", "volume_usd"]] and y indexes y_axis. A level that exists now
fills its row from the candle in which it formed through the latest candle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from aiohttp import web

from quantcore.model.market import TIMEFRAMES
from quantcore.sim import MODELS, CoinSpec, HeatmapGrid
from quantcore.sim.rings import CLOSE, HIGH, LOW, OPEN, TURNOVER
from svc_simulator import formatting as fmt
from svc_simulator.state import STATE, Handler, SimState

EXCHANGES = {"binance", "okx", "bybit", "bitget", "gate", "hyperliquid", "htx", "bingx", "mexc"}
PLAN_LIMIT_PER_MIN = 1200  # Professional plan


class CoinGlassError(Exception):
    def __init__(self, message: str, code: str = "400") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def usage_headers(state: SimState) -> dict[str, str]:
    return {
        "API-KEY-MAX-LIMIT": str(PLAN_LIMIT_PER_MIN),
        "API-KEY-USE-LIMIT": str(min(state.window_count * 12, PLAN_LIMIT_PER_MIN)),
    }


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "msg": message}


def too_many_requests(state: SimState) -> web.Response:
    return web.json_response(
        error_body("429", "Too Many Requests"),
        status=429,
        headers=usage_headers(state),
        dumps=fmt.compact,
    )


def heatmap_data(coin: CoinSpec, grid: HeatmapGrid) -> dict[str, Any]:
    decimals = coin.price_decimals
    y_axis = np.round(grid.y_axis, decimals).tolist()
    cells = [
        [x, y, v]
        for x, y, v in zip(
            grid.x.tolist(), grid.y.tolist(), np.round(grid.value, 2).tolist(), strict=True
        )
    ]
    c = grid.candles
    candles = [
        [
            int(grid.candle_starts[k]),
            fmt.price(coin, float(c[OPEN, k])),
            fmt.price(coin, float(c[HIGH, k])),
            fmt.price(coin, float(c[LOW, k])),
            fmt.price(coin, float(c[CLOSE, k])),
            fmt.money(float(c[TURNOVER, k])),
        ]
        for k in range(grid.candle_starts.size)
    ]
    return {"y_axis": y_axis, "liquidation_leverage_data": cells, "price_candlesticks": candles}


def _range(request: web.Request) -> str:
    value = request.query.get("range")
    if not value:
        raise CoinGlassError("range is required")
    if value not in TIMEFRAMES:
        raise CoinGlassError(f"range is invalid, supported: {', '.join(TIMEFRAMES)}")
    return value


async def _respond(request: web.Request, coin_index: int) -> web.Response:
    state = request.app[STATE]
    timeframe = _range(request)
    model = request.match_info["model"]
    market = state.market
    grid = market.heatmap(coin_index, timeframe, model)
    body = {"code": "0", "msg": "success", "data": heatmap_data(market.coins[coin_index], grid)}
    return web.json_response(body, headers=usage_headers(state), dumps=fmt.compact)


async def aggregated_heatmap(request: web.Request) -> web.Response:
    """GET /api/futures/liquidation/aggregated-heatmap/{model}?symbol=BTC&range=3d"""
    coin = request.query.get("symbol")
    if not coin:
        raise CoinGlassError("symbol is required")
    index = request.app[STATE].market.symbol_index(f"{coin.upper()}USDT")
    if index is None or coin != coin.upper():
        raise CoinGlassError(f"symbol {coin} is not supported")
    return await _respond(request, index)


async def pair_heatmap(request: web.Request) -> web.Response:
    """GET /api/futures/liquidation/heatmap/{model}?exchange=Bybit&symbol=BTCUSDT&range=3d"""
    exchange = request.query.get("exchange")
    symbol = request.query.get("symbol")
    if not exchange:
        raise CoinGlassError("exchange is required")
    if exchange.lower() not in EXCHANGES:
        raise CoinGlassError(f"exchange {exchange} is not supported")
    if not symbol:
        raise CoinGlassError("symbol is required")
    index = request.app[STATE].market.symbol_index(symbol)
    if index is None:
        raise CoinGlassError(f"symbol {symbol} is not supported on {exchange}")
    return await _respond(request, index)


def _guard(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.Response:
        state = request.app[STATE]
        try:
            return await handler(request)
        except CoinGlassError as exc:
            return web.json_response(
                error_body(exc.code, exc.message), headers=usage_headers(state), dumps=fmt.compact
            )

    return wrapped


def add_routes(app: web.Application) -> None:
    models = "|".join(MODELS)
    app.router.add_get(
        f"/api/futures/liquidation/aggregated-heatmap/{{model:{models}}}",
        _guard(aggregated_heatmap),
    )
    app.router.add_get(f"/api/futures/liquidation/heatmap/{{model:{models}}}", _guard(pair_heatmap))
