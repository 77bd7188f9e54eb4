"""Simulator: the embedded default market.

Builds the simulated market (history included), then serves it on SIM_BIND_HOST:SIM_PORT as
Bybit v5 public REST + WebSocket and CoinGlass heatmaps, advancing it SIM_SPEED simulated
seconds per real second. The fleet's real Bybit and CoinGlass adapters consume it unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from datetime import UTC, datetime
from typing import ClassVar

from quantcore.config import ConfigError, Settings
from quantcore.service import Service
from quantcore.sim import BuildCancelled, Market, MarketConfig
from svc_simulator.bybit_private import build_exchange
from svc_simulator.clock import SimClock
from svc_simulator.faults import parse_faults
from svc_simulator.scenario import parse_scenario
from svc_simulator.server import SimServer

STATUS_EVERY_S = 5.0


def sim_accounts(settings: Settings) -> dict[str, str]:
    """API key → secret of the private API: SIM_API_KEY / SIM_API_SECRET plus
    SIM_EXTRA_API_KEYS ("key:secret,key2:secret2")."""
    accounts = {settings.sim_api_key: settings.sim_api_secret}
    for raw in settings.sim_extra_api_keys.split(","):
        item = raw.strip()
        if not item:
            continue
        key, sep, secret = item.partition(":")
        if not sep or not key.strip() or not secret.strip():
            raise ConfigError(
                f"SIM_EXTRA_API_KEYS: expected key:secret, got {item.split(':')[0]!r}:…"
            )
        accounts[key.strip()] = secret.strip()
    return accounts


class SimulatorService(Service):
    name: ClassVar[str] = "simulator"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = "simulated market → Bybit v5 REST/WS and CoinGlass heatmap APIs"

    @classmethod
    def check_settings(cls, settings: Settings) -> None:
        parse_faults(settings.sim_faults)  # raises ConfigError naming SIM_FAULTS
        parse_scenario(settings.sim_scenario)  # raises ConfigError naming SIM_SCENARIO
        sim_accounts(settings)  # raises ConfigError naming SIM_EXTRA_API_KEYS

    async def run(self, stop: asyncio.Event) -> None:
        s = self.ctx.settings
        faults = parse_faults(s.sim_faults)
        self.status = "starting"
        anchor = time.monotonic()
        scenario = parse_scenario(s.sim_scenario)
        config = MarketConfig(
            seed=s.sim_seed, coins=s.sim_coins, history_days=s.sim_history_days,
            opening_hunts=scenario.opening_hunts, hunt_symbols=scenario.hunt_symbols,
        )  # fmt: skip
        self.log.info(
            "building the simulated market",
            coins=config.coins,
            history_days=config.history_days,
            seed=config.seed,
            scenario=s.sim_scenario or "default",
        )
        cancel = threading.Event()
        watcher = asyncio.create_task(self._cancel_on(stop, cancel))
        try:
            market = await asyncio.to_thread(Market, config, cancel.is_set)
        except BuildCancelled:
            self.log.info("stopped while building the market")
            return
        except ValueError as exc:  # e.g. SIM_SCENARIO names a coin this market does not have
            raise ConfigError(f"SIM_SCENARIO / SIM_COINS: {exc}") from exc
        finally:
            watcher.cancel()
        built_s = time.monotonic() - anchor
        self.log.info(
            "market built",
            seconds=round(built_s, 2),
            memory_mb=round(market.memory_bytes() / 1e6, 1),
            campaigns_under_way=[
                f"{market.coins[c.coin].symbol} {c.kind} {'up' if c.direction > 0 else 'down'} "
                f"({market.whales.phase_of(c.coin)})"
                for c in market.campaigns() if c.ended is None and c.outcome is None
            ],
        )  # fmt: skip
        server = SimServer(
            market,
            speed=s.sim_speed,
            faults=faults,
            seed=s.sim_seed,
            host=s.sim_bind_host,
            port=s.sim_port,
            clock=SimClock(market.start, s.sim_speed, anchor),
            accounts=sim_accounts(s),
            exchange=build_exchange(
                market.coins,
                taker=s.sim_taker_fee,
                maker=s.sim_maker_fee,
                slippage=s.sim_slippage,
                wallet=s.sim_wallet_usdt,
            ),
        )
        await server.start()
        self.status = "ok"
        self.log.info(
            "serving",
            url=f"http://{s.sim_bind_host}:{server.port}",
            faults=str(faults),
            speed=s.sim_speed,
        )
        try:
            while not stop.is_set():
                self.status_info = {
                    "sim_time": datetime.fromtimestamp(market.now, UTC).isoformat(),
                    "coins": market.n,
                    "speed": s.sim_speed,
                    "port": server.port,
                    "requests": sum(server.state.requests.values()),
                    "ws_connections": len(server.hub.connections),
                    "liquidations": market.liquidations_total,
                }
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=STATUS_EVERY_S)
        finally:
            await server.stop()
            self.log.info("simulator stopped")

    @staticmethod
    async def _cancel_on(stop: asyncio.Event, cancel: threading.Event) -> None:
        await stop.wait()
        cancel.set()
