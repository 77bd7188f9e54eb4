"""The simulator's HTTP + WebSocket server (aiohttp, one port) and its background loops:
the clock that advances the market, and the WebSocket publisher."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from quantcore.logging import get_logger
from quantcore.sim import Market
from quantcore.sim.exchange import SimExchange
from svc_simulator import bybit_private, bybit_rest, coinglass, hooks, polymarket
from svc_simulator.bybit_ws import PUSH_INTERVAL_S, Hub
from svc_simulator.clock import SimClock
from svc_simulator.faults import Faults
from svc_simulator.state import STATE, SimState

TICK_S = 0.2  # how often the clock loop looks at the time
SLICE_S = 60  # simulated seconds advanced between yields to the event loop
BYBIT_PREFIXES = ("/v5/market/", *bybit_private.PRIVATE_PREFIXES)
COINGLASS_PREFIX = "/api/"
BAD_GATEWAY = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>openresty</center>\r\n</body>\r\n</html>\r\n"
)

# The simulator's own test credentials (the SIM_API_KEY / SIM_API_SECRET defaults): not
# secrets, they open nothing but this offline simulator.
DEFAULT_ACCOUNTS = {"sim-public-test-key": "sim-public-test-secret"}

log = get_logger(component="simulator")


@web.middleware
async def count_and_inject(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Count every API request; answer some with the configured faults instead."""
    state = request.app[STATE]
    state.count(request)
    path = request.path
    if path.startswith((*BYBIT_PREFIXES, COINGLASS_PREFIX)):
        if state.draw_slow():
            await asyncio.sleep(state.faults.slow_s)
        fault = state.draw_fault()
        if fault == "http_429":
            if path.startswith(COINGLASS_PREFIX):
                return coinglass.too_many_requests(state)
            # Mostly the per-UID limit reply (HTTP 200, retCode 10006); now and then the
            # system-level HTTP 429.
            status = 429 if state.fault_rng.random() < 0.2 else 200
            return bybit_rest.rate_limited(state, status)
        if fault == "http_5xx":
            if state.fault_rng.random() < 0.5:
                return web.Response(status=502, text=BAD_GATEWAY, content_type="text/html")
            return web.Response(status=503, body=b"")
    return await handler(request)


class SimServer:
    """Serves one Market; `start()` binds and starts the loops, `stop()` undoes it."""

    def __init__(
        self,
        market: Market,
        *,
        speed: float,
        faults: Faults,
        seed: int,
        host: str,
        port: int,
        clock: SimClock | None = None,
        accounts: Mapping[str, str] | None = None,
        exchange: SimExchange | None = None,
    ) -> None:
        """`accounts`: API key → secret of the private API (default: the simulator's public
        test key); `exchange`: fees and starting wallets (default: Bybit's standard fees)."""
        self.market = market
        self.host = host
        self.port = port
        self.state = SimState(market, clock or SimClock(market.now, speed), faults, seed)
        self.state.api_secrets = dict(accounts if accounts is not None else DEFAULT_ACCOUNTS)
        self.state.exchange = exchange or bybit_private.build_exchange(market.coins)
        self.hub = Hub(self.state)
        app = web.Application(middlewares=[count_and_inject])
        app[STATE] = self.state
        app[hooks.HUB] = self.hub
        bybit_rest.add_routes(app)
        bybit_private.add_routes(app)
        coinglass.add_routes(app)
        polymarket.add_routes(app)
        hooks.add_routes(app)
        app.router.add_get("/v5/public/linear", self.hub.handle)
        self.app = app
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                self.port = int(address[1])
                break
        self._tasks = [
            asyncio.create_task(self._advance_loop(), name="sim-clock"),
            asyncio.create_task(self._publish_loop(), name="sim-ws"),
        ]
        log.info("simulator listening", host=self.host, port=self.port, coins=self.market.n)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.hub.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _advance_loop(self) -> None:
        market, clock = self.market, self.state.clock
        while True:
            target = int(clock.now_s())
            while market.now < target:
                market.advance_to(min(target, market.now + SLICE_S))
                bybit_private.sync(self.state)  # fills and TP/SL on what the market did
                await asyncio.sleep(0)  # let requests in between slices
            await asyncio.sleep(TICK_S)

    async def _publish_loop(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.hub.publish_once()
            except Exception:
                log.exception("websocket publish failed")
            await asyncio.sleep(max(0.0, PUSH_INTERVAL_S - (time.monotonic() - started)))
