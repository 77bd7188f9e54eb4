"""trade.signal_to_ack_p50_ms / trade.signal_to_ack_p99_ms: a trade signal published on the bus →
the order accepted by the paper venue, through the real autotrader service.

Arrangement:
- the simulator service (SIM_COINS=COINS) and the autotrader service run as subprocesses,
  TRADING_MODE=paper (prices and instruments from the simulator's Bybit REST);
- every signal carries the ranker's market view read just now (and every coin's heatmaps
  are marked fresh), so no pre-trade refresh wait is measured;
- ROUNDS rounds of one signal per coin, paced at RATE signals/s on an absolute schedule; latency
  = paper_orders.created_at (stamped by the venue inside the autotrader when it accepted the
  order: once it holds its lock and has read what the order needs, one round trip, before its
  writes and COMMIT) − the wall-clock time just before the publish (same machine, same
  clock). Between
  rounds the paper books and trades are reset, so every signal passes the risk guards
  (one position per coin) and reaches the venue;
- baseline: quantcore's bus round trip (publish → handler entered) at the same rate in this
  process, measured in the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from redis.asyncio import Redis

from quantcore.bus import Bus, Delivery
from quantcore.db import conninfo
from quantcore.model.events import STREAM_SIGNALS, AgentLogRecorded, TradeSignalled
from quantcore.model.plan import MarketView, PriceRange
from quantcore.testing import Sandbox
from scripts.benchmarks.collect import free_port, simulator, wait_ready
from scripts.benchmarks.report import Group, Metric, load_note

COINS = 60
RATE = 50.0  # signals per second
ROUNDS = 5
WARMUP = COINS  # the first round: caches fill and each coin's leverage is set (once per process)
DONE_TIMEOUT_S = 20.0


def _signal(symbol: str, price: float) -> TradeSignalled:
    """As the ranker publishes it: with the decision's market view (data just read). The
    target 2–3 % above: the conservative entry rests just below the price (TP is ahead)."""
    low, high = price * 1.02, price * 1.03
    view = MarketView(symbol=symbol, direction="long", price=price,
                      target=PriceRange(low=low, high=high), data_time=datetime.now(UTC))  # fmt: skip
    return TradeSignalled(
        signal_id=uuid.uuid4(), time=datetime.now(UTC), cycle_id="bench", symbol=symbol,
        direction="long", rank=1, score=90, entry_mode="conservative", entry_price=price,
        stop_loss=price * 0.99, take_profit=high, target_price=(low + high) / 2, target_low=low,
        target_high=high, price=price, imbalance=0.7, cluster_size_pct=150, success_rate=0.5,
        oi_change_15m_pct=4, volume_ratio_5m=2, price_change_5m_pct=1.2, scanner="bench",
        scanner_version="1", market=view,
    )  # fmt: skip


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextlib.contextmanager
def _autotrader(box: Sandbox, port: int) -> Any:
    env = {
        **os.environ, **box.env, "SIM_HOST": "127.0.0.1", "SIM_PORT": str(port), "LOG_LEVEL": "WARNING",
        "SERVICE_INSTANCE": "bench-autotrader", "HEATMAP_MAX_AGE_S": "86400",
        "MAX_OPEN_POSITIONS": "1000", "MAX_TRADE_EQUITY_PCT": "0.5", "MAX_TOTAL_EQUITY_PCT": "100",
        "TRADE_MAJORS": "", "BUS_BATCH_SIZE": "20", "MIN_REWARD_RISK": "0",
    }  # fmt: skip
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, "-m", "quantcore.cli", "run", "autotrader"], env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            yield proc, log
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


def _profile(pid: int) -> subprocess.Popen[bytes] | None:
    """BENCH_PYSPY=out.svg (or .txt for raw): sample the autotrader with py-spy while it runs."""
    out = os.environ.get("BENCH_PYSPY")
    if not out:
        return None
    fmt = "raw" if out.endswith(".txt") else "flamegraph"
    return subprocess.Popen(["uvx", "py-spy", "record", "-p", str(pid), "-o", out, "-f", fmt,
                             "-r", "200", "--nonblocking"])  # fmt: skip


def _reset_books(dsn: str, symbols: list[str]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE trades SET status = 'cancelled' WHERE status IN ('pending', 'open')")
        conn.execute("DELETE FROM paper_positions")
        conn.execute(
            "UPDATE paper_orders SET status = 'cancelled' WHERE status IN ('new', 'partially_filled')"
        )
        conn.execute("UPDATE paper_account SET balance = start_equity")
        conn.execute(
            "INSERT INTO liquidation_refreshes (symbol, timeframe, source, refreshed_at, level_count) "
            "SELECT s, '12h', 'sim', now(), 1 FROM unnest(%s::text[]) s "
            "ON CONFLICT (symbol, timeframe, source) DO UPDATE SET refreshed_at = now()",
            (symbols,),
        )


def _durable_commit_ms(dsn: str, n: int = 50) -> float:
    """p50 of one small durable transaction (WAL flush) now: the shared disk's state, for context."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_commit_probe (x int)")
        took = []
        for _ in range(n):
            t = time.perf_counter()
            with conn.transaction():
                conn.execute("INSERT INTO bench_commit_probe VALUES (1)")
            took.append((time.perf_counter() - t) * 1000)
        conn.execute("DROP TABLE bench_commit_probe")
    return _percentile(took, 0.5)


async def _bus_baseline(box: Sandbox, n: int) -> list[float]:
    """Bus round trip at RATE in this process: publish → handler entered (ms)."""
    redis = Redis.from_url(box.settings.redis_url())
    bus = Bus(redis, box.settings.bus_namespace, source="bench")
    lat: list[float] = []
    stop = asyncio.Event()

    async def handler(ds: list[Delivery]) -> None:
        now = time.time()
        for d in ds:
            assert isinstance(d.event, AgentLogRecorded)
            lat.append((now - float(d.event.detail["t"])) * 1000)
        if len(lat) >= n:
            stop.set()

    consumer = bus.consumer("bench.baseline", "bench", "c1", handler)
    await consumer.ensure_group()
    task = asyncio.create_task(consumer.run(stop))
    t0 = time.monotonic()
    for j in range(n):
        await asyncio.sleep(max(0.0, t0 + j / RATE - time.monotonic()))
        await bus.publish("bench.baseline", AgentLogRecorded(
            agent="bench", event_type="bench", message="probe", detail={"t": time.time()}))  # fmt: skip
    await asyncio.wait_for(task, DONE_TIMEOUT_S)
    await redis.aclose()
    return lat


async def run(box: Sandbox) -> dict[str, Metric]:
    port = free_port()
    dsn = conninfo(box.settings)
    with simulator(box, port, coins=COINS) as sim:
        await wait_ready(sim)

        async with httpx.AsyncClient(timeout=10) as client:
            reply = await client.get(sim.url + "/v5/market/tickers", params={"category": "linear"})
        prices = {t["symbol"]: float(t["lastPrice"]) for t in reply.json()["result"]["list"]}
        symbols = sorted(prices)
        _reset_books(dsn, symbols)
        redis = Redis.from_url(box.settings.redis_url())
        bus = Bus(redis, box.settings.bus_namespace, source="ranker@bench")
        sent: dict[str, float] = {}
        with _autotrader(box, port) as (proc, log):
            await asyncio.sleep(3.0)  # the service connects and joins the consumer group
            spy = _profile(proc.pid)
            for _round in range(ROUNDS):
                _reset_books(dsn, symbols)
                t0 = time.monotonic()
                for j, sym in enumerate(symbols):
                    await asyncio.sleep(max(0.0, t0 + j / RATE - time.monotonic()))
                    sig = _signal(sym, prices[sym])
                    sent[sig.signal_id.hex] = time.time()
                    await bus.publish(STREAM_SIGNALS, sig)
                deadline = time.monotonic() + DONE_TIMEOUT_S
                while time.monotonic() < deadline:
                    with psycopg.connect(dsn) as conn:
                        done = conn.execute("SELECT count(*) FROM autotrader_decisions").fetchone()
                    if done and done[0] >= len(sent):
                        break
                    if proc.poll() is not None:
                        log.seek(0)
                        raise RuntimeError(f"autotrader exited:\n{log.read().decode()[-2000:]}")
                    await asyncio.sleep(0.2)
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its report on SIGINT
                spy.wait(30)
            if keep := os.environ.get("BENCH_AUTOTRADER_LOG"):  # the service's log, to look at
                log.seek(0)
                await asyncio.to_thread(Path(keep).write_bytes, log.read())
        await redis.aclose()
        with psycopg.connect(dsn) as conn:
            rows = conn.execute(
                "SELECT left(order_link_id, 32), extract(epoch FROM created_at)::float8 FROM paper_orders"
            ).fetchall()
            refused = conn.execute(
                "SELECT left(reason, 120), count(*) FROM autotrader_decisions "
                "WHERE decision <> 'traded' GROUP BY 1 ORDER BY 2 DESC LIMIT 3"
            ).fetchall()
    accepted = {k: t for k, t in rows}
    lat = [(accepted[k] - t) * 1000 for k, t in sent.items() if k in accepted]
    lat = lat[WARMUP:]
    if len(lat) < len(sent) // 2:
        raise RuntimeError(
            f"only {len(lat)} of {len(sent)} signals reached the venue (refused: {refused})"
        )
    base = await _bus_baseline(box, len(lat))
    commit_ms = _durable_commit_ms(dsn)
    note = (
        f"{len(lat)} signals ({ROUNDS} rounds x {len(symbols)} coins, first round discarded) at "
        f"{RATE:.0f}/s through the "
        f"autotrader service (paper venue, simulator prices) → paper_orders.created_at; "
        f"baseline: bus publish → handler at the same rate; context: one durable INSERT+COMMIT "
        f"p50 {commit_ms:.1f} ms on this disk now; {load_note()}"
    )
    return {
        "trade.signal_to_ack_p50_ms": Metric.measured(
            _percentile(lat, 0.5), "ms", _percentile(base, 0.5), "lower", note
        ),
        "trade.signal_to_ack_p99_ms": Metric.measured(
            _percentile(lat, 0.99), "ms", _percentile(base, 0.99), "lower", note
        ),
    }


GROUP = Group("trade", ("trade.signal_to_ack_p50_ms", "trade.signal_to_ack_p99_ms"), run)
