"""Trade signals for end-to-end runs: published on the bus the way the ranker publishes them,
with target clusters placed around the simulator's current price so a short run sees entries
fill, stops trail and positions close."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
from redis.asyncio import Redis

from quantcore.bus import Bus
from quantcore.model.events import STREAM_SIGNALS, TradeSignalled
from quantcore.testing import Sandbox
from tests.e2e.harness import RunningFleet

TIGHT = {  # distances of a few tenths of a percent: the simulated market crosses them in seconds
    "SIM_COINS": "8",
    "SIM_HISTORY_DAYS": "0.05",
    "SIM_SPEED": "20",
    "HEATMAP_REFRESH_INTERVAL_S": "30",
    "HEATMAP_MAX_AGE_S": "3600",
    "ENTRY_BEYOND_PCT": "0.1",
    "TAKE_PROFIT_FRONT_RUN_PCT": "0.05",
    "STOP_DEFAULT_WICK_PCT": "0.5",
    "MIN_REWARD_RISK": "0.2",  # these plans have reward:risk ≈ 0.4 (TP 0.2 %, stop 0.5 % away)
    "TRAILING_BASIS": "price",
    "TRAILING_LADDER": "0.1:0,0.2:0.1,0.3:0.2",
    "POSITION_MONITOR_INTERVAL_S": "0.5",
    "EQUITY_SNAPSHOT_INTERVAL_S": "2",
    "MAX_OPEN_POSITIONS": "20",
    "MAX_TRADE_EQUITY_PCT": "10",  # tight stops would size every trade to the margin cap
    "MAX_TOTAL_EQUITY_PCT": "100",
    "BUS_CLAIM_IDLE_MS": "1500",
}


def tickers(fleet: RunningFleet) -> dict[str, float]:
    r = httpx.get(fleet.sim_url + "/v5/market/tickers", params={"category": "linear"}, timeout=10)
    return {t["symbol"]: float(t["lastPrice"]) for t in r.json()["result"]["list"]}


def make_signal(symbol: str, price: float, direction: str, width: float = 0.003) -> TradeSignalled:
    """A target cluster just beyond the price: the conservative entry (0.1 % beyond its edge)
    crosses the price and fills at once; TP ≈ 0.4 % away, stop 0.5 % from the entry."""
    side = 1 if direction == "long" else -1
    low, high = sorted((price * (1 + side * width), price * (1 + side * 2 * width)))
    return TradeSignalled(
        signal_id=uuid.uuid4(), time=datetime.now(UTC), cycle_id="e2e", symbol=symbol,
        direction=direction, rank=1, score=90.0, entry_mode="conservative", entry_price=price,
        stop_loss=price * (1 - side * 0.005), take_profit=(low + high) / 2, target_price=(low + high) / 2,
        target_low=low, target_high=high, price=price, imbalance=0.7, cluster_size_pct=150,
        success_rate=0.6, oi_change_15m_pct=4, volume_ratio_5m=2, price_change_5m_pct=1.2,
        scanner="ranker", scanner_version="e2e-1",
    )  # fmt: skip


def publish(box: Sandbox, events: list[TradeSignalled]) -> None:
    async def go() -> None:
        redis = Redis.from_url(box.settings.redis_url())
        bus = Bus(redis, box.settings.bus_namespace, source="ranker@e2e")
        for e in events:
            await bus.publish(STREAM_SIGNALS, e, correlation_id=str(e.signal_id))  # as the ranker
        await redis.aclose()

    asyncio.run(go())
