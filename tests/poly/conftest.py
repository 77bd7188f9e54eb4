"""The simulator's Polymarket endpoints on a local port, over a seeded world."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from aiohttp import web

from quantcore.adapters.polymarket.rest import PolymarketClient, PolymarketUrls
from quantcore.retry import RetryPolicy
from quantcore.sim.poly import PolyWorld, build_world
from svc_simulator import polymarket as sim_poly
from tests.adapters.conftest import bad, fake  # noqa: F401 (fixtures for tests/poly)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@dataclass
class PolySim:
    url: str
    world: PolyWorld
    app: web.Application


@pytest.fixture
async def poly_sim() -> AsyncIterator[PolySim]:
    world = build_world(seed=7, now=NOW.timestamp())
    app = web.Application()
    sim_poly.add_routes(app, world)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    yield PolySim(f"http://127.0.0.1:{port}", world, app)
    await runner.cleanup()


@pytest.fixture
async def poly_client(poly_sim: PolySim) -> AsyncIterator[PolymarketClient]:
    client = PolymarketClient(
        PolymarketUrls.single(poly_sim.url), source="sim", rate_scale=50.0,
        retry_policy=RetryPolicy(attempts=3, base_s=0.01, max_s=0.05),
    )  # fmt: skip
    yield client
    await client.aclose()
