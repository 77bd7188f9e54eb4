"""Polymarket-shaped endpoints over the synthetic world of quantcore.sim.poly, in the real wire
formats (shared/api/README.md §4): Gamma under /gamma, CLOB public reads under /clob, the
Data API (v2 routes + v1 leaderboard and holders) under /data.

Gamma markets alternate the two versions (v1 JSON-encoded strings, v2 `positionIds`); Data API
v2 replies are snake_case inside `{data, pagination}` with opaque, expiring cursors. Ground
truth (each wallet's kind, the planted clusters) is served at /sim/poly/truth for tests only.
Faults: POST /sim/poly/faults {"html": n, "expire_cursors": m} makes the next n replies a
Cloudflare-style HTML page and the next m cursors stale.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from quantcore.model.poly import PolyTrade
from quantcore.sim.poly import PolyWorld, SimMarket, build_world
from svc_simulator import polymarket_clob

WORLD = web.AppKey("poly_world", PolyWorld)
FAULTS = web.AppKey("poly_faults", dict)
CURSOR_TTL_S = 600.0
HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>cf</body></html>"
)
Handler = Callable[[web.Request], Awaitable[web.Response]]


def _world(request: web.Request) -> PolyWorld:
    return request.app[WORLD]


def _cursor(offset: int, filters: str) -> str:
    raw = json.dumps({"o": offset, "f": filters, "at": time.time()}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _offset(request: web.Request, cursor: str | None, filters: str) -> int:
    if not cursor:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset, f, at = int(data["o"]), str(data["f"]), float(data["at"])
    except (ValueError, KeyError, TypeError) as exc:
        raise web.HTTPBadRequest(
            text='{"error":"invalid cursor"}', content_type="application/json"
        ) from exc
    faults = request.app[FAULTS]
    if faults.get("expire_cursors", 0) > 0:
        faults["expire_cursors"] -= 1
        raise web.HTTPBadRequest(text='{"error":"cursor expired"}', content_type="application/json")
    if f != filters or time.time() - at > CURSOR_TTL_S:
        raise web.HTTPBadRequest(text='{"error":"cursor expired"}', content_type="application/json")
    return offset


def _guard(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.Response:
        faults = request.app[FAULTS]
        if faults.get("html", 0) > 0:
            faults["html"] -= 1
            return web.Response(status=200, text=HTML_PAGE, content_type="text/html")
        return await handler(request)

    return wrapped


# --- Gamma ------------------------------------------------------------------------------------


def gamma_market(world: PolyWorld, m: SimMarket) -> dict[str, Any]:
    model = world.model(m)
    prices = [str(o.price) for o in model.outcomes]
    _, bid, ask = world.book(m.token_ids[0])
    row: dict[str, Any] = {
        "id": m.market_id, "question": m.question, "conditionId": m.condition_id,
        "slug": model.slug, "endDate": model.end_date.isoformat().replace("+00:00", "Z") if model.end_date else None,
        "liquidity": f"{m.liquidity_usd:.4f}", "liquidityNum": m.liquidity_usd,
        "volume": f"{m.liquidity_usd * 3:.4f}", "volumeNum": m.liquidity_usd * 3,
        "outcomes": json.dumps(["Yes", "No"]), "outcomePrices": json.dumps(prices),
        "active": model.active, "closed": model.closed, "archived": False,
        "acceptingOrders": model.active, "enableOrderBook": True, "orderPriceMinTickSize": 0.01,
        "orderMinSize": 5, "negRisk": False, "category": m.category, "bestBid": bid, "bestAsk": ask,
        "version": m.version,
        "events": [{"id": f"e{m.market_id}", "title": m.question, "tags": [{"id": "1", "label": m.category, "slug": m.category.lower()}]}],
    }  # fmt: skip
    if m.version == "v2":
        row["positionIds"] = list(m.token_ids)
    else:
        row["clobTokenIds"] = json.dumps(list(m.token_ids))
    return row


async def markets_keyset(request: web.Request) -> web.Response:
    world = _world(request)
    q = request.query
    limit = min(int(q.get("limit", "100")), 100)
    closed = q.get("closed")
    markets = [
        m for m in world.markets if closed is None or world.model(m).closed == (closed == "true")
    ]
    filters = f"closed={closed}"
    start = _offset(request, q.get("after_cursor"), filters)
    page = markets[start : start + limit]
    body: dict[str, Any] = {"markets": [gamma_market(world, m) for m in page]}
    if start + limit < len(markets):
        body["next_cursor"] = _cursor(start + limit, filters)
    return web.json_response(body)


async def market_by_id(request: web.Request) -> web.Response:
    world = _world(request)
    for m in world.markets:
        if m.market_id == request.match_info["id"]:
            return web.json_response(gamma_market(world, m))
    return web.json_response({"error": "market not found"}, status=404)


# --- CLOB -------------------------------------------------------------------------------------


def _token(request: web.Request) -> str:
    token = request.query.get("token_id") or request.query.get("market")
    if not token:
        raise web.HTTPBadRequest(
            text='{"error":"token_id is required"}', content_type="application/json"
        )
    return token


def book_levels(
    world: PolyWorld, token: str
) -> tuple[SimMarket, list[dict[str, str]], list[dict[str, str]]]:
    """(market, bids best first, asks best first) of a token: three levels a side around the
    world's price. /book serves them (worst first, as the CLOB lays them out) and the CLOB
    order endpoints match against them. KeyError: no such token."""
    m, bid, ask = world.book(token)
    depth = m.liquidity_usd / 10
    bids = [
        {"price": f"{max(bid - 0.01 * i, 0.01):.2f}", "size": f"{depth / max(bid, 0.01):.2f}"}
        for i in range(3)
    ]
    asks = [
        {"price": f"{min(ask + 0.01 * i, 0.99):.2f}", "size": f"{depth / max(ask, 0.01):.2f}"}
        for i in range(3)
    ]
    return m, bids, asks


async def book(request: web.Request) -> web.Response:
    world = _world(request)
    token = _token(request)
    try:
        m, bids, asks = book_levels(world, token)
    except KeyError:
        return web.json_response(
            {"error": "No orderbook exists for the requested token id"}, status=404
        )
    _, bid, ask = world.book(token)
    return web.json_response({
        "market": m.condition_id, "asset_id": token, "timestamp": str(int(world.now * 1000)),
        "hash": "sim", "bids": bids[::-1], "asks": asks[::-1], "min_order_size": "5", "tick_size": "0.01",
        "neg_risk": False, "last_trade_price": f"{(bid + ask) / 2:.3f}",
    })  # fmt: skip


async def midpoint(request: web.Request) -> web.Response:
    _, bid, ask = _world(request).book(_token(request))
    return web.json_response({"mid": f"{(bid + ask) / 2:.3f}"})


async def price(request: web.Request) -> web.Response:
    _, bid, ask = _world(request).book(_token(request))
    return web.json_response({"price": f"{ask if request.query.get('side') == 'BUY' else bid:.2f}"})


async def fee_rate(request: web.Request) -> web.Response:
    return web.json_response({"base_fee": int(_world(request).fee_rate_bps)})


async def tick_size(request: web.Request) -> web.Response:
    return web.json_response({"minimum_tick_size": 0.01})


async def prices_history(request: web.Request) -> web.Response:
    world = _world(request)
    token = _token(request)
    m, _, _ = world.book(token)
    start = int(request.query.get("startTs", int(m.start)))
    end = int(request.query.get("endTs", int(world.now)))
    step = max(int(request.query.get("fidelity", "60")), 1) * 60
    outcome = m.token_ids.index(token)
    history = [
        {"t": t, "p": round(m.price(outcome, t, world.coin), 4)}
        for t in range(max(start, int(m.start)), min(end, int(m.end), int(world.now)) + 1, step)
    ]
    return web.json_response({"history": history})


# --- Data API ---------------------------------------------------------------------------------


def v2_trade(t: PolyTrade) -> dict[str, Any]:
    return {
        "proxy_wallet": t.wallet, "side": t.side, "token_id": t.token_id, "condition_id": t.condition_id,
        "size": t.size, "price": t.price, "timestamp": int(t.time.timestamp()), "title": t.title,
        "outcome": t.outcome, "outcome_index": t.outcome_index, "transaction_hash": t.tx_hash,
    }  # fmt: skip


def _v2_page(
    request: web.Request, rows: list[Any], filters: str, default_limit: int, max_limit: int
) -> web.Response:
    q = request.query
    start = _offset(request, q.get("cursor"), filters)
    limit = min(int(q.get("limit", str(default_limit))), max_limit)
    page = rows[start : start + limit]
    more = start + limit < len(rows)
    return web.json_response({
        "data": page,
        "pagination": {"limit": limit, "has_more": more, "next_cursor": _cursor(start + limit, filters) if more else None},
    })  # fmt: skip


async def trades(request: web.Request) -> web.Response:
    world = _world(request)
    q = request.query
    user = (q.get("user") or "").lower() or None
    conds = set(filter(None, (q.get("condition") or "").split(",")))
    if len(conds) > 20:
        return web.json_response({"error": "at most 20 condition ids"}, status=400)
    now = world.now
    rows = [
        v2_trade(t) for t in reversed(world.trades)  # newest first
        if t.time.timestamp() <= now and (user is None or t.wallet == user) and (not conds or t.condition_id in conds)
    ]  # fmt: skip
    return _v2_page(request, rows, f"trades:{user}:{sorted(conds)}", 100, 10_000)


async def positions(request: web.Request) -> web.Response:
    world = _world(request)
    user = (request.query.get("user") or "").lower()
    if not user:
        return web.json_response({"error": "user is required"}, status=400)
    status = request.query.get("status")
    rows = [
        {
            "proxy_wallet": p.wallet, "condition_id": p.condition_id, "token_id": p.token_id, "outcome": p.outcome,
            "outcome_index": p.outcome_index, "status": p.status, "current_size": p.size, "avg_price": p.avg_price,
            "entry_cost_usdc": p.cost_usd, "current_value": None, "realized_pnl": p.realized_pnl_usd,
            "unrealized_pnl": p.unrealized_pnl_usd,
            "end_date": p.end_date.isoformat().replace("+00:00", "Z") if p.end_date else None,
            "redeemable": p.status.startswith("REDEEMABLE"), "mergeable": False,
        }
        for p in world.positions(user)
        if status is None or p.status == status
    ]  # fmt: skip
    return _v2_page(request, rows, f"positions:{user}:{status}", 100, 500)


async def leaderboard(request: web.Request) -> web.Response:
    world = _world(request)
    q = request.query
    period = q.get("timePeriod", "DAY")
    if period not in ("DAY", "WEEK", "MONTH", "ALL"):
        return web.json_response({"error": "invalid timePeriod"}, status=400)
    offset, limit = int(q.get("offset", "0")), min(int(q.get("limit", "25")), 50)
    board = world.leaderboard_all  # realised PnL; the sim serves it for every window
    rows = [
        {
            "rank": str(offset + i + 1),
            "proxyWallet": w,
            "userName": f"sim{w[2:8]}",
            "vol": 0.0,
            "pnl": round(pnl, 2),
        }
        for i, (w, pnl) in enumerate(board[offset : offset + limit])
    ]
    return web.json_response(rows)


async def holders(request: web.Request) -> web.Response:
    world = _world(request)
    conds = set(filter(None, (request.query.get("market") or "").split(",")))
    limit = min(int(request.query.get("limit", "20")), 20)
    out = []
    for m in world.markets:
        if m.condition_id not in conds:
            continue
        for i, token in enumerate(m.token_ids):
            amounts: dict[str, float] = {}
            for t in world.trades:
                if t.token_id == token:
                    amounts[t.wallet] = amounts.get(t.wallet, 0.0) + (
                        t.size if t.side == "BUY" else -t.size
                    )
            top = sorted(((w, a) for w, a in amounts.items() if a > 0), key=lambda kv: -kv[1])[
                :limit
            ]
            out.append(
                {
                    "token": token,
                    "holders": [
                        {"proxyWallet": w, "amount": round(a, 2), "outcomeIndex": i, "name": ""}
                        for w, a in top
                    ],
                }
            )
    return web.json_response(out)


# --- hooks (tests only) ------------------------------------------------------------------------


async def truth(request: web.Request) -> web.Response:
    world = _world(request)
    return web.json_response(
        {"kinds": world.kinds, "clusters": [list(c) for c in world.clusters], "now": world.now}
    )


async def set_faults(request: web.Request) -> web.Response:
    body = await request.json()
    request.app[FAULTS].update({k: v for k, v in body.items() if k in ("html", "expire_cursors")})
    return web.json_response(request.app[FAULTS])


def add_routes(app: web.Application, world: PolyWorld | None = None) -> None:
    app[WORLD] = world or build_world(now=datetime.now(UTC).timestamp())
    app[FAULTS] = {}
    g = _guard
    app.router.add_get("/gamma/markets/keyset", g(markets_keyset))
    app.router.add_get("/gamma/markets/{id}", g(market_by_id))
    app.router.add_get("/clob/book", g(book))
    app.router.add_get("/clob/midpoint", g(midpoint))
    app.router.add_get("/clob/price", g(price))
    app.router.add_get("/clob/fee-rate", g(fee_rate))
    app.router.add_get("/clob/tick-size", g(tick_size))
    app.router.add_get("/clob/prices-history", g(prices_history))
    app.router.add_get("/data/v2/trades", g(trades))
    app.router.add_get("/data/v2/positions", g(positions))
    app.router.add_get("/data/v1/leaderboard", g(leaderboard))
    app.router.add_get("/data/holders", g(holders))
    app.router.add_get("/sim/poly/truth", truth)
    polymarket_clob.add_routes(app)
    app.router.add_post("/sim/poly/faults", set_faults)
