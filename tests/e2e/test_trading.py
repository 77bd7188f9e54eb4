"""Trading end to end against the simulator, as local processes (issue 5 acceptance).

Signals are published on the bus the way the ranker publishes them, with targets placed around
the simulator's current price so a one-minute run sees entries fill, stops trail and positions
close by TP or SL. The venue is the paper venue (prices from the simulator's Bybit tickers).
What each test prints (pytest -s) are the figures for the closing note.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from quantcore.adapters.bybit.execution import make_bybit_venue
from quantcore.model.events import STREAM_SIGNALS, Envelope
from quantcore.model.trading import OrderRequest
from quantcore.service import AGENT_LOG_STREAM
from quantcore.testing import Sandbox
from quantcore.trading.sizing import floor_to_step
from tests.conftest import ROOT, eventually
from tests.e2e.harness import RunningFleet, running_fleet
from tests.e2e.signals import TIGHT, make_signal, publish, tickers

pytestmark = pytest.mark.e2e


def wait_fresh_heatmaps(fleet: RunningFleet, coins: int) -> None:
    eventually(lambda: (fleet.scalar("SELECT count(DISTINCT symbol) FROM liquidation_refreshes") or 0) >= coins,
               timeout=90)  # fmt: skip


@contextmanager
def autotrader(
    box: Sandbox, fleet: RunningFleet, log: Path, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """One autotrader process outside the fleet (so a test can SIGKILL it)."""
    full = {**os.environ, **box.env, **TIGHT, "SIM_HOST": "127.0.0.1",
            "SIM_PORT": fleet.sim_url.rsplit(":", 1)[1], "HEARTBEAT_INTERVAL_S": "1", **env}  # fmt: skip
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "quantcore.cli", "run", "autotrader"],
                                stdout=out, stderr=subprocess.STDOUT, env=full, cwd=ROOT)  # fmt: skip
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


# testnet: the Bybit venue through pybit, pointed at the simulator's private endpoints (which
# check the real HMAC signature) with the simulator's own, public test credentials.
VENUES = {
    "paper": {},
    "testnet": {"TRADING_MODE": "testnet", "BYBIT_TESTNET_API_KEY": "sim-public-test-key",
                "BYBIT_TESTNET_API_SECRET": "sim-public-test-secret"},
}  # fmt: skip


@pytest.mark.parametrize("venue", sorted(VENUES))
def test_signals_become_trades_that_trail_and_close(
    box: Sandbox, tmp_path: Path, venue: str
) -> None:
    with running_fleet(
        box, ["simulator", "liquidation_collector", "autotrader", "position_monitor", "journal"],
        tmp_path / "fleet.log", env={**TIGHT, **VENUES[venue]},
    ) as fleet:  # fmt: skip
        wait_fresh_heatmaps(fleet, 8)
        prices = tickers(fleet)
        tradable = [s for s in sorted(prices) if s not in ("BTCUSDT", "ETHUSDT")][:6]
        majors = [s for s in sorted(prices) if s in ("BTCUSDT", "ETHUSDT")]
        sigs = [
            make_signal(s, prices[s], "long" if k % 2 == 0 else "short")
            for k, s in enumerate(tradable)
        ]
        sigs += [make_signal(s, prices[s], "long") for s in majors]
        publish(box, sigs)

        eventually(
            lambda: fleet.scalar("SELECT count(*) FROM autotrader_decisions") == len(sigs),
            timeout=60,
        )
        eventually(
            lambda: fleet.scalar("SELECT count(*) FROM trades WHERE status = 'closed'") >= 3,
            timeout=150,
        )
        eventually(lambda: fleet.scalar("SELECT count(*) FROM scanner_stats") >= 1, timeout=30)
        eventually(lambda: fleet.scalar("SELECT count(*) FROM equity_snapshots WHERE agent = 'liquidation_hunter'"),
                   timeout=30)  # fmt: skip

        decisions = dict(
            fleet.sql("SELECT decision, count(*) FROM autotrader_decisions GROUP BY 1")
        )
        reasons = fleet.sql("SELECT symbol, decision, reason FROM autotrader_decisions")
        assert decisions.get("traded") == len(tradable), reasons
        skipped = fleet.sql(
            "SELECT symbol, reason FROM autotrader_decisions WHERE decision = 'skipped'"
        )
        assert sorted(s for s, _ in skipped) == majors and all("major" in r for _, r in skipped)
        closed = fleet.sql(
            "SELECT symbol, direction, close_reason, entry_price, exit_price, pnl_quote, pnl_pct_price, "
            "pnl_pct_margin, leverage, scanner, scanner_version FROM trades WHERE status = 'closed'"
        )
        for (
            sym,
            d,
            reason,
            entry,
            exit_,
            _pnl,
            pct_price,
            pct_margin,
            lev,
            scanner,
            version,
        ) in closed:
            assert reason in ("tp", "sl", "trailing_sl"), (sym, reason)
            sign = 1 if d == "long" else -1
            assert float(pct_price) == pytest.approx(
                float((exit_ / entry - 1) * 100 * sign), rel=1e-6
            )
            assert (scanner, version) == ("ranker", "e2e-1")
            # on margin: PnL after fees over the margin (entry × qty / leverage)
            assert abs(float(pct_margin)) <= abs(float(pct_price)) * float(lev) + 1.0
        # the trade log has every state change: Created → New → Filled for each entry
        states = fleet.sql(
            "SELECT order_link_id, array_agg(status ORDER BY time) FROM order_events GROUP BY 1"
        )
        assert states and all(s[-1] == "filled" for _, s in states if "filled" in s)
        moves = fleet.scalar(
            "SELECT count(*) FROM position_monitor_logs WHERE action = 'stop_moved'"
        )
        # a stop moved at the venue is the stop recorded, and it never loosened
        for d, old, new in fleet.sql(
            "SELECT t.direction, l.old_stop, l.new_stop FROM position_monitor_logs l "
            "JOIN trades t USING (trade_id) WHERE l.action = 'stop_moved' AND l.old_stop IS NOT NULL"
        ):
            assert (new > old) if d == "long" else (new < old)
        stats = fleet.sql(
            "SELECT trades, wins, losses, win_rate FROM scanner_stats WHERE scanner = 'ranker'"
        )
        equity = fleet.sql(
            "SELECT agent, pnl_pct_from_start FROM equity_snapshots ORDER BY time DESC LIMIT 2"
        )
        entries = fleet.sql(
            "SELECT venue, venue_order_id FROM orders WHERE order_link_id NOT LIKE 'close-%%'"
        )
        assert len(entries) == len(tradable)  # one entry order per traded signal
        assert {v for v, _ in entries} == {venue} and all(oid for _, oid in entries)
        if venue == "paper":
            assert fleet.scalar("SELECT count(*) FROM paper_orders") == len(tradable)
        # one correlation id follows each signal: its order, trade, position events and the
        # log lines and journal entries of every service that touched it
        cid = fleet.scalar("SELECT correlation_id FROM trades WHERE status = 'closed' LIMIT 1")
        assert (
            cid
            and fleet.scalar("SELECT signal_id::text FROM trades WHERE correlation_id = %s", cid)
            == cid
        )
        services_logging = {
            m.group(1)
            for m in re.finditer(r"^(\w+)\.\d+\s*\|.*$", fleet.log(), re.M)
            if cid in m.group(0)
        }
        assert {"autotrader", "position_monitor"} <= services_logging, services_logging
        journaled = {
            a
            for (a,) in fleet.sql(
                "SELECT DISTINCT agent FROM agent_logs WHERE correlation_id = %s", cid
            )
        }
        assert {"autotrader", "position_monitor"} <= journaled, journaled
        assert (
            fleet.scalar(
                "SELECT count(*) FROM position_monitor_logs WHERE correlation_id = %s", cid
            )
            >= 2
        )
        print(f"\ntrading e2e ({venue}): decisions {decisions}, closed {[(c[0], c[2], round(float(c[7]), 3)) for c in closed]}, "
              f"stop moves {moves}, scanner stats {stats}, equity {equity}")  # fmt: skip


def test_crash_between_venue_accept_and_db_write(box: Sandbox, tmp_path: Path) -> None:
    """SIGKILL right after the venue accepted the order and before our write: after a restart
    exactly one order exists at the venue, one trade row, and the signal is acked once."""
    with running_fleet(
        box, ["simulator", "liquidation_collector"], tmp_path / "fleet.log", env=TIGHT
    ) as fleet:
        wait_fresh_heatmaps(fleet, 8)
        prices = tickers(fleet)
        sym = next(s for s in sorted(prices) if s not in ("BTCUSDT", "ETHUSDT"))
        sig = make_signal(sym, prices[sym], "long")
        log = tmp_path / "autotrader.log"
        with autotrader(box, fleet, log, AUTOTRADER_FAULT="kill_after_place") as proc:
            publish(box, [sig])
            assert proc.wait(timeout=60) == -signal.SIGKILL
        link = sig.signal_id.hex + "e00"
        assert fleet.scalar("SELECT count(*) FROM paper_orders WHERE order_link_id = %s", link) == 1
        assert (
            fleet.scalar("SELECT status FROM orders WHERE order_link_id = %s", link) == "submitting"
        )
        pending = _pending(box)
        assert pending == 1  # delivered to the dead consumer, never acked
        with autotrader(box, fleet, log):
            eventually(lambda: fleet.scalar("SELECT status FROM orders WHERE order_link_id = %s", link)
                       in ("new", "filled"), timeout=60)  # fmt: skip
            eventually(lambda: _pending(box) == 0, timeout=30)
        # counted at the venue (its own books, every order whatever its link id), not under a
        # key forbidding duplicates
        assert fleet.scalar("SELECT count(*) FROM paper_orders") == 1
        assert fleet.scalar("SELECT count(*) FROM paper_orders WHERE symbol = %s", sym) == 1
        assert fleet.scalar("SELECT count(*) FROM autotrader_decisions") == 1  # not lost
        assert "already" in log.read_text() or "duplicate" in log.read_text()
        print(f"\ncrash test: pending before restart {pending}, venue orders 1")


def _journaled(box: Sandbox, event_type: str) -> list[dict[str, Any]]:
    """The `detail` of every journal entry of this type on the agent_logs stream."""

    async def go() -> list[dict[str, Any]]:
        redis = Redis.from_url(box.settings.redis_url())
        key = f"{box.settings.bus_namespace}:stream:{AGENT_LOG_STREAM}"
        entries = await redis.xrange(key)
        await redis.aclose()
        payloads = [Envelope.model_validate_json(f[b"e"]).payload for _, f in entries]
        return [p["detail"] for p in payloads if p.get("event_type") == event_type]

    return asyncio.run(go())


def _pending(box: Sandbox) -> int:
    async def go() -> int:
        redis = Redis.from_url(box.settings.redis_url())
        key = f"{box.settings.bus_namespace}:stream:{STREAM_SIGNALS}"
        info = await redis.xpending(key, "autotrader")
        await redis.aclose()
        return int(info["pending"])

    return asyncio.run(go())


def test_two_replicas_one_hundred_signals(box: Sandbox, tmp_path: Path) -> None:
    """100 signals (each published twice) to two autotrader replicas: 100 decisions, one order
    per traded signal, never a second order for a signal or a second trade for a coin."""
    env = {**TIGHT, "SIM_COINS": "40", "MAX_OPEN_POSITIONS": "100", "MAX_TRADE_EQUITY_PCT": "2"}
    with running_fleet(
        box, ["simulator", "liquidation_collector"], tmp_path / "fleet.log", env=env
    ) as fleet:
        wait_fresh_heatmaps(fleet, 40)
        prices = tickers(fleet)
        coins = [s for s in sorted(prices) if s not in ("BTCUSDT", "ETHUSDT")]
        sigs = [
            make_signal(coins[k % len(coins)], prices[coins[k % len(coins)]], "long")
            for k in range(100)
        ]
        with autotrader(box, fleet, tmp_path / "a1.log", SIM_COINS="40", SERVICE_INSTANCE="a1",
                        MAX_OPEN_POSITIONS="100", MAX_TRADE_EQUITY_PCT="2"), \
             autotrader(box, fleet, tmp_path / "a2.log", SIM_COINS="40", SERVICE_INSTANCE="a2",
                        MAX_OPEN_POSITIONS="100", MAX_TRADE_EQUITY_PCT="2"):  # fmt: skip
            time.sleep(2)
            publish(box, sigs + sigs)
            eventually(
                lambda: fleet.scalar("SELECT count(*) FROM autotrader_decisions") == 100,
                timeout=120,
            )
            eventually(lambda: _pending(box) == 0, timeout=30)
        by_instance = dict(
            fleet.sql("SELECT instance, count(*) FROM autotrader_decisions GROUP BY 1")
        )
        decisions = dict(
            fleet.sql("SELECT decision, count(*) FROM autotrader_decisions GROUP BY 1")
        )
        traded = decisions.get("traded", 0)
        reasons = dict(fleet.sql("SELECT reason, count(*) FROM autotrader_decisions GROUP BY 1"))
        assert traded == len(coins), reasons  # one trade per coin; the rest refused "one per coin"
        # at the venue: one order per traded signal and never a second one for a coin
        assert fleet.scalar("SELECT count(*) FROM paper_orders") == traded
        assert (
            fleet.scalar(
                "SELECT max(n) FROM (SELECT count(*) AS n FROM paper_orders GROUP BY symbol) x"
            )
            == 1
        )
        planned = Counter(p["signal_id"] for p in _journaled(box, "entry_planned"))
        assert len(planned) == traded and max(planned.values()) == 1  # on the stream: once each
        assert set(by_instance) == {"a1", "a2"}
        print(f"\nreplicas: decisions {decisions}, by replica {by_instance}, venue orders {traded}")


def quant(box: Sandbox, fleet: RunningFleet, *args: str) -> str:
    env = {**os.environ, **box.env, "SIM_PORT": fleet.sim_url.rsplit(":", 1)[1]}
    done = subprocess.run([sys.executable, "-m", "quantcore.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return done.stdout


def test_kill_switch_manual_trade_import_and_close_command(box: Sandbox, tmp_path: Path) -> None:
    """`quant pause` refuses entries at once; a position the owner opened on the exchange is
    imported as a manual trade; `quant close` closes it at market (reason 'manual')."""
    # TIGHT's ladder (+0.1 %: stop to breakeven) could stop the imported position out on the
    # fast simulated market before `quant close` reaches it; the ladder is not under test here
    env = {**TIGHT, **VENUES["testnet"], "TRAILING_LADDER": "90:0"}
    fleet_services = ["simulator", "liquidation_collector", "autotrader", "position_monitor"]
    with running_fleet(box, fleet_services, tmp_path / "fleet.log", env=env) as fleet:
        wait_fresh_heatmaps(fleet, 8)
        prices = tickers(fleet)
        a, b = [s for s in sorted(prices) if s not in ("BTCUSDT", "ETHUSDT")][:2]
        assert "engaged" in quant(box, fleet, "pause", "--reason", "e2e pause")
        paused = make_signal(a, prices[a], "long")
        publish(box, [paused])
        eventually(lambda: fleet.scalar("SELECT count(*) FROM autotrader_decisions"), timeout=60)
        decision, reason = fleet.sql("SELECT decision, reason FROM autotrader_decisions")[0]
        assert decision == "refused" and "e2e pause" in reason
        assert "released" in quant(box, fleet, "resume")

        # the owner buys by hand on the exchange (pybit, same account)
        settings = box.settings.model_copy(update={
            "sim_port": int(fleet.sim_url.rsplit(":", 1)[1]), "trading_mode": "testnet",
            "bybit_testnet_api_key": SecretStr("sim-public-test-key"),
            "bybit_testnet_api_secret": SecretStr("sim-public-test-secret"),
        })  # fmt: skip
        venue = make_bybit_venue(settings, "testnet")
        info = httpx.get(fleet.sim_url + "/v5/market/instruments-info",
                         params={"category": "linear", "symbol": b}, timeout=10).json()  # fmt: skip
        lot = info["result"]["list"][0]["lotSizeFilter"]
        qty = max(
            floor_to_step(200 / prices[b], float(lot["qtyStep"])), Decimal(lot["minOrderQty"])
        )
        [manual] = asyncio.run(
            venue.place_orders([OrderRequest("owner-manual-1", b, "buy", "market", qty)])
        )
        assert manual.status == "filled", manual
        eventually(lambda: fleet.scalar("SELECT count(*) FROM trades WHERE agent = 'manual' AND status = 'open'"),
                   timeout=30)  # fmt: skip
        assert "requested" in quant(box, fleet, "close", b)
        eventually(lambda: fleet.scalar("SELECT close_reason FROM trades WHERE agent = 'manual'") == "manual",
                   timeout=30)  # fmt: skip
        row = fleet.sql(
            "SELECT symbol, source, direction, pnl_quote, exit_price FROM trades WHERE agent = 'manual'"
        )
        assert (
            row[0][:3] == (b, "manual", "long") and row[0][3] is not None and row[0][4] is not None
        )
        asyncio.run(venue.close())
        print(f"\nkill switch: refused {reason!r}; manual trade imported and closed: {row[0]}")
