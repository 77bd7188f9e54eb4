"""Test hooks, not part of any real API: request counts, faults at runtime, socket drops."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from quantcore.config import ConfigError
from quantcore.sim.exchange import SimAccount
from svc_simulator import bybit_private
from svc_simulator.bybit_ws import Hub
from svc_simulator.faults import parse_faults
from svc_simulator.state import STATE

HUB: web.AppKey[Hub] = web.AppKey("sim_hub", Hub)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


async def get_stats(request: web.Request) -> web.Response:
    stats = request.app[STATE].stats()
    stats["ws"] = request.app[HUB].stats()
    return _json(stats)


async def reset_stats(request: web.Request) -> web.Response:
    request.app[STATE].reset_stats()
    return _json({"reset": True})


async def get_faults(request: web.Request) -> web.Response:
    return _json({"faults": request.app[STATE].faults.as_dict()})


async def set_faults(request: web.Request) -> web.Response:
    """Body: the SIM_FAULTS syntax as text, or {"faults": "..."}."""
    text = (await request.text()).strip()
    if text.startswith("{"):
        try:
            text = str(json.loads(text).get("faults", ""))
        except (ValueError, AttributeError):
            return _json({"error": 'expected {"faults": "key=value,..."}'}, 400)
    try:
        faults = parse_faults(text)
    except ConfigError as exc:
        return _json({"error": str(exc)}, 400)
    request.app[STATE].faults = faults
    return _json({"faults": faults.as_dict()})


async def drop_sockets(request: web.Request) -> web.Response:
    return _json({"dropped": request.app[HUB].drop_all()})


async def get_state(request: web.Request) -> web.Response:
    state = request.app[STATE]
    market = state.market
    now = market.now
    return _json(
        {
            "sim_time_ms": state.now_ms(),
            "sim_time": datetime.fromtimestamp(now, UTC).isoformat(),
            "started_at": datetime.fromtimestamp(market.start, UTC).isoformat(),
            "history_start": datetime.fromtimestamp(market.history_start, UTC).isoformat(),
            "speed": state.clock.speed,
            "seed": state.seed,
            "coins": market.n,
            "symbols": [c.symbol for c in market.coins],
            "faults": state.faults.as_dict(),
            "liquidations": market.liquidations_total,
            "whale_campaigns": len(market.whales.log),
            "memory_bytes": market.memory_bytes(),
        }
    )


async def advance(request: web.Request) -> web.Response:
    """Jump the simulated clock forward: {"seconds": N} (for gap-repair tests)."""
    try:
        body = await request.json()
        seconds = float(body["seconds"])
    except (ValueError, KeyError, TypeError):
        return _json({"error": 'expected {"seconds": N}'}, 400)
    if not 0 <= seconds <= 7 * 86_400:
        return _json({"error": "seconds must be between 0 and 604800"}, 400)
    state = request.app[STATE]
    state.clock.jump(seconds)
    return _json({"sim_time_ms": state.now_ms(), "target_ms": int(state.clock.now_s() * 1000)})


async def move_price(request: web.Request) -> web.Response:
    """Jump a coin's price now: {"symbol": "BTCUSDT", "price": 61000} (fills, TP/SL follow)."""
    state = request.app[STATE]
    try:
        body = await request.json()
        symbol, price = str(body["symbol"]), float(body["price"])
    except (ValueError, KeyError, TypeError):
        return _json({"error": 'expected {"symbol": "...", "price": N}'}, 400)
    index = state.market.symbol_index(symbol)
    if index is None:
        return _json({"error": f"unknown symbol {symbol}"}, 400)
    if not 0 < price < 1e12:
        return _json({"error": "price must be positive"}, 400)
    bybit_private.sync(state, [symbol])  # what happened before the jump is matched first
    new = state.market.move_price(index, price)
    bybit_private.sync(state, [symbol])
    return _json({"symbol": symbol, "price": new, "sim_time_ms": state.now_ms()})


async def plant_hunt(request: web.Request) -> web.Response:
    """Plant a whale hunt now: {"symbol": "SOLUSDT", "push_in_s": 120} — open interest builds
    from now, the push (a burst of volume and price towards the heavy side's largest mature
    cluster) starts in push_in_s simulated seconds (default 120, 30..3600). A campaign under
    way on the coin is re-planned into this one."""
    state = request.app[STATE]
    try:
        body = await request.json()
        symbol, push_in_s = str(body["symbol"]), int(body.get("push_in_s", 120))
    except (ValueError, KeyError, TypeError):
        return _json({"error": 'expected {"symbol": "...", "push_in_s": N}'}, 400)
    index = state.market.symbol_index(symbol)
    if index is None:
        return _json({"error": f"unknown symbol {symbol}"}, 400)
    if not 30 <= push_in_s <= 3600:
        return _json({"error": "push_in_s must be between 30 and 3600"}, 400)
    campaign = state.market.plant_hunt(index, push_in_s)
    if campaign is None:
        return _json({"error": f"{symbol}: its book has no cluster to hunt"}, 409)
    return _json({
        "symbol": symbol, "direction": "up" if campaign.direction > 0 else "down",
        "target": campaign.target, "take_profit": campaign.take_profit,
        "push_at_ms": (state.market.now + push_in_s) * 1000, "sim_time_ms": state.now_ms(),
    })  # fmt: skip


async def add_account(request: web.Request) -> web.Response:
    """Open another private-API account: {"key": "...", "secret": "...", "wallet": 1000}
    (wallet optional); an existing key is reset to a fresh wallet."""
    state = request.app[STATE]
    exchange = state.exchange
    if exchange is None:
        return _json({"error": "the private API is off"}, 400)
    try:
        body = await request.json()
        key, secret = str(body["key"]), str(body["secret"])
        wallet = Decimal(str(body.get("wallet", exchange.starting_wallet)))
    except (ValueError, KeyError, TypeError, ArithmeticError):
        return _json({"error": 'expected {"key": "...", "secret": "...", "wallet": N}'}, 400)
    if not key or not secret or not wallet.is_finite() or wallet < 0:
        return _json({"error": "key and secret must be non-empty, wallet >= 0"}, 400)
    state.api_secrets[key] = secret
    exchange.accounts[key] = SimAccount(key, wallet)
    return _json({"key": key, "wallet": str(wallet)})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/sim/stats", get_stats)
    app.router.add_post("/sim/stats/reset", reset_stats)
    app.router.add_get("/sim/faults", get_faults)
    app.router.add_post("/sim/faults", set_faults)
    app.router.add_post("/sim/ws/drop", drop_sockets)
    app.router.add_get("/sim/state", get_state)
    app.router.add_post("/sim/advance", advance)
    app.router.add_post("/sim/price", move_price)
    app.router.add_post("/sim/accounts", add_account)
    app.router.add_post("/sim/hunt", plant_hunt)
