"""The simulator's Polymarket copies read through the real adapter: every endpoint the
collector uses parses into typed models without a rejected item."""

from __future__ import annotations

from quantcore.adapters.polymarket.rest import PolymarketClient
from tests.poly.conftest import PolySim


async def test_every_endpoint_parses(poly_sim: PolySim, poly_client: PolymarketClient) -> None:
    world = poly_sim.world
    pages = [p async for p, _ in poly_client.walk(lambda c: poly_client.markets_page(c, limit=30))]
    markets = [m for p in pages for m in p.items]
    assert len(pages) > 1 and not any(p.bad for p in pages)
    assert len(markets) == len(world.markets) and {m.version for m in markets} == {"v1", "v2"}
    resolved = [m for m in markets if m.closed]
    assert resolved and all(
        m.resolved_outcome == ("Yes" if world.market(m.condition_id).winner == 0 else "No")
        for m in resolved
    )

    target = next(m for m in world.markets if m.open_target)
    token = target.token_ids[0]
    book = await poly_client.book(token)
    assert book.best_bid is not None and book.best_ask is not None and book.best_bid < book.best_ask
    assert await poly_client.midpoint(token) == round((book.best_bid + book.best_ask) / 2, 3)
    assert await poly_client.price(token, "BUY") == book.best_ask
    assert await poly_client.tick_size(token) == 0.01
    assert await poly_client.fee_rate_bps(token) == 0.0
    history = await poly_client.price_history(
        token, int(target.start), int(world.now), fidelity_min=60
    )
    assert len(history) > 10 and all(0 <= p.price <= 1 for p in history)

    board = await poly_client.leaderboard("ALL", limit=10)
    assert [r.rank for r in board] == list(range(1, 11)) and not board[0].pnl_includes_unrealised
    holders = await poly_client.holders([target.condition_id])
    assert holders and {h.token_id for h in holders} <= set(target.token_ids)

    informed = next(
        t.wallet
        for t in world.trades
        if t.condition_id == target.condition_id and world.kinds[t.wallet] == "informed"
    )
    positions = [
        p
        async for page, _ in poly_client.walk(
            lambda c: poly_client.positions_page(informed, c, limit=5)
        )
        for p in page.items
    ]
    assert {p.status for p in positions} >= {"CLOSED", "OPEN"}
    closed = await poly_client.positions_page(informed, status="CLOSED")
    assert closed.items and all(p.status == "CLOSED" for p in closed.items)
