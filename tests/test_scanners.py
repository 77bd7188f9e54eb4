"""Scanner and ranker steps on a seeded database (real PostgreSQL + Redis): each service's
compute + write step is run directly on a market whose numbers are known (helpers.strategy_seed).

What the tests print (pytest -s) are the figures for the closing note."""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from quantcore.bus import Bus, stream_key
from quantcore.collect.cycles import cycle_of, cycle_start
from quantcore.db import conninfo
from quantcore.model.events import (
    STREAM_REFRESH_REQUESTS,
    STREAM_SIGNALS,
    Envelope,
    TradeSignalled,
)
from quantcore.model.market import TIMEFRAMES, Candle, Instrument
from quantcore.service import Service, ServiceContext
from quantcore.store.instruments import write_instruments
from quantcore.store.market import write_candles
from quantcore.testing import Infra, Sandbox, sandbox
from svc_cluster_scanner.service import ClusterScanner
from svc_ranker.service import Ranker
from svc_spike_scanner.service import SpikeScanner
from tests.helpers.strategy_seed import base, seed_market, symbols, write_heatmaps_for

S = TypeVar("S", bound=Service)
COINS = symbols(12)
SPIKY = COINS[10]  # leans long, second strongest lean: ranks 2nd (coin 11 leans short, 1st)


@pytest.fixture(scope="module")
def sbox(infra: Infra) -> Iterator[Sandbox]:
    with sandbox(infra, "scan") as sb:
        yield sb


@pytest.fixture(scope="module")
async def spool(sbox: Sandbox) -> AsyncIterator[AsyncConnectionPool]:
    p = AsyncConnectionPool(conninfo(sbox.settings), min_size=1, max_size=6, open=False)
    await p.open(wait=True)
    yield p
    await p.close()


@pytest.fixture
async def sredis(sbox: Sandbox) -> AsyncIterator[Redis]:
    client = Redis.from_url(sbox.settings.redis_url())
    yield client
    await client.aclose()


def make(
    cls: type[S], sbox: Sandbox, pool: AsyncConnectionPool, redis: Redis, **overrides: Any
) -> S:
    settings = sbox.settings.model_copy(
        update={"service_instance": f"{cls.name}-test", **overrides}
    )
    bus = Bus(redis, settings.bus_namespace, source=f"{cls.name}@test")
    return cls(ServiceContext(cls.name, cls.name, cls.version, settings, pool, redis, bus))


async def rows(pool: AsyncConnectionPool, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    async with pool.connection() as conn:
        cur = await conn.execute(sql, params)
        return await cur.fetchall()


async def stream(redis: Redis, ns: str, name: str) -> list[Envelope]:
    entries = await redis.xrange(stream_key(ns, name))
    return [Envelope.model_validate_json(fields[b"e"]) for _, fields in entries]


# the seeded market's clock: everything is relative to AT (a scan 5 s into a minute)
AT = datetime.fromtimestamp((time.time() // 60 - 5) * 60 + 5, UTC)


@pytest.fixture(scope="module")
async def seeded(spool: AsyncConnectionPool) -> list[str]:
    async with spool.connection() as conn, conn.transaction():
        await seed_market(conn, COINS, AT, minutes=240, spiky=[SPIKY])
    return COINS


# --- spike scanner --------------------------------------------------------------------------------


async def test_spike_scan_flags_the_spike_in_both_modes_and_requests_one_refresh(
    sbox: Sandbox, spool: AsyncConnectionPool, sredis: Redis, seeded: list[str]
) -> None:
    svc = make(SpikeScanner, sbox, spool, sredis)
    await svc.register()
    started = time.perf_counter()
    figures = await svc.scan_coins(seeded, AT)
    took = time.perf_counter() - started
    print(f"\nspike scan of {len(seeded)} coins x 240 min: {took * 1000:.0f} ms, {figures}")
    movers = await rows(spool, "SELECT symbol, mode, direction, price_change_1m_pct, price_change_5m_pct, "
                        "trigger_window, zscore_1m, refresh_requested, scanner_version FROM fast_price_movers "
                        "WHERE time = %s ORDER BY symbol, mode", AT)  # fmt: skip
    assert {(r[0], r[1]) for r in movers} == {(SPIKY, "fixed"), (SPIKY, "coin_specific")}
    fixed = next(r for r in movers if r[1] == "fixed")
    assert fixed[2] == "up" and float(fixed[3]) == pytest.approx(3.0, abs=0.1)
    assert fixed[5] == "1m"  # +3 % crosses the 1-min bar (2 %), not the 5-min one (5 %)
    specific = next(r for r in movers if r[1] == "coin_specific")
    assert float(specific[6]) > 4  # for this calm coin +3 % is far beyond its own noise
    assert all(r[7] for r in movers)  # SPIKE_REFRESH_MODE=both: both rows asked for the refresh
    assert all(r[8] == svc.scanner_version for r in movers)
    spikes = await rows(spool, "SELECT symbol, mode, oi_change_15m_pct, volume_ratio, is_oi_spike, "
                        "is_volume_spike, inputs FROM oi_volume_spikes WHERE time = %s", AT)  # fmt: skip
    fixed_spike = next(r for r in spikes if r[1] == "fixed")
    assert fixed_spike[0] == SPIKY and fixed_spike[4] and fixed_spike[5]
    assert float(fixed_spike[2]) == pytest.approx(6.0, abs=0.01)
    assert float(fixed_spike[3]) > 1.5
    assert {r[0] for r in spikes} == {SPIKY}
    requests = [e for e in await stream(sredis, sbox.namespace, STREAM_REFRESH_REQUESTS)]
    assert [(e.payload["symbol"], e.payload["reason"]) for e in requests] == [(SPIKY, "spike")]
    thresholds = await rows(
        spool, "SELECT symbol, price_move_1m_p95_pct, samples, stats FROM coin_thresholds"
    )
    assert len(thresholds) == len(seeded)
    assert all(r[1] is not None and r[2] >= 200 for r in thresholds)
    assert "spikes" in thresholds[0][3]

    # a second scan of the same minute: rows replaced, not doubled; the cooldown holds the refresh
    await svc.scan_coins(seeded, AT)
    again = await rows(spool, "SELECT count(*) FROM fast_price_movers WHERE time = %s", AT)
    assert again[0][0] == 2
    assert len(await stream(sredis, sbox.namespace, STREAM_REFRESH_REQUESTS)) == 1
    flags = await rows(
        spool, "SELECT bool_or(refresh_requested) FROM fast_price_movers WHERE time = %s", AT
    )
    assert flags[0][0] is False  # the re-scan published nothing, and says so


async def test_refresh_mode_fixed_marks_only_fixed_rows(
    sbox: Sandbox, spool: AsyncConnectionPool, sredis: Redis, seeded: list[str]
) -> None:
    svc = make(
        SpikeScanner, sbox, spool, sredis, spike_refresh_mode="fixed", spike_refresh_cooldown_s=0
    )
    await svc.register()
    at = AT + timedelta(seconds=1)  # another scan time, same data
    await svc.scan_coins(seeded, at)
    marked = dict(
        await rows(
            spool, "SELECT mode, refresh_requested FROM fast_price_movers WHERE time = %s", at
        )
    )
    assert marked == {"fixed": True, "coin_specific": False}
    versions = await rows(
        spool, "SELECT version FROM scanners WHERE name = 'spike_scanner' ORDER BY version"
    )
    assert len(versions) == 2  # another parameter set, another registry row


# --- cluster scanner ---------------------------------------------------------------------------------


async def test_cluster_scan_writes_clusters_targets_and_typical(
    sbox: Sandbox, spool: AsyncConnectionPool, sredis: Redis, seeded: list[str]
) -> None:
    svc = make(ClusterScanner, sbox, spool, sredis)
    await svc.register()
    started = time.perf_counter()
    figures = await svc.cluster_coins(seeded, AT)
    took = time.perf_counter() - started
    print(f"\ncluster scan of {len(seeded)} coins x 9 timeframes: {took * 1000:.0f} ms, {figures}")
    # 10 levels 1 % apart per side; the 3 target levels merge with the one at 3 %: 20 clusters
    assert figures == {"coins": 12, "clusters": 12 * 9 * 20, "targets": 12 * 9}
    conserved = await rows(spool, """
        SELECT c.symbol, c.timeframe, c.v, l.v FROM
          (SELECT symbol, timeframe, sum(value_usd) v FROM liquidation_clusters WHERE time = %s GROUP BY 1, 2) c
        JOIN (SELECT symbol, timeframe, sum(value_usd) v FROM liquidation_levels GROUP BY 1, 2) l
          USING (symbol, timeframe)""", AT)  # fmt: skip
    assert len(conserved) == 12 * 9 and all(
        float(a) == pytest.approx(float(b)) for _, _, a, b in conserved
    )
    target = await rows(spool, "SELECT side, price_low, price_high, edge, value_usd, ref_price FROM cluster_targets "
                        "WHERE symbol = %s AND timeframe = '12h'", seeded[2])  # fmt: skip
    side, low, high, edge, value, ref = target[0]
    assert float(value) == pytest.approx(10 * 1e6 * (2.0 + 2 / 4))  # 10 × strong, 12h unit
    assert side == "short"  # coin 2 leans long: its target is the shorts cluster above
    assert (float(low), float(high), float(edge)) == pytest.approx(
        (base(2) * 1.03, base(2) * 1.034, base(2) * 1.03)
    )
    assert float(ref) == base(2)
    typical = await rows(spool, "SELECT typical_cluster_usd, stats->'typical_cluster'->>'basis', scanner_version "
                         "FROM coin_thresholds WHERE symbol = %s", seeded[2])  # fmt: skip
    assert typical[0][1] == "snapshot" and float(typical[0][0]) > 0
    sized = await rows(spool, "SELECT size_pct_of_typical, distance_pct FROM liquidation_clusters WHERE symbol = %s "
                       "AND timeframe = '12h' AND price_low = %s", seeded[2], low)  # fmt: skip
    assert float(sized[0][1]) == pytest.approx(3.2, abs=0.01)  # centre 1.032 × price
    # the same snapshots are not clustered twice
    assert (await svc.cluster_coins(seeded, AT + timedelta(minutes=1)))["clusters"] == 0


async def test_patterns_judge_past_targets_and_measure_wicks(
    sbox: Sandbox, spool: AsyncConnectionPool, sredis: Redis
) -> None:
    """Two coins scanned 30 h ago; one reaches its target 2 h later, one never does."""
    svc = make(ClusterScanner, sbox, spool, sredis, pattern_horizon_h=24.0)
    await svc.register()
    win, loss = symbols(2, prefix="P")
    t0 = AT - timedelta(hours=30)
    async with spool.connection() as conn, conn.transaction():
        await seed_market(conn, [win, loss], t0, minutes=60)
    await svc.cluster_coins([win, loss], t0)
    # 30 h of candles after the scan: the winner's price touches +3 % at minute 120
    candles = []
    for k, sym in enumerate((win, loss)):
        for m in range(30 * 60):
            c = base(k) * (1.031 if sym == win and m == 120 else 1.0)
            wick = m == 600  # one 5 % wick away from each coin's target: down on the winner
            low = c * (0.95 if wick and sym == win else 0.999)
            high = c * (1.05 if wick and sym == loss else 1.0005)
            candles.append(Candle(symbol=sym, start=t0.replace(second=0) + timedelta(minutes=m),
                                  open=base(k), high=high, low=low, close=base(k), volume=1,
                                  turnover=base(k)))  # fmt: skip
    async with spool.connection() as conn, conn.transaction():
        await write_candles(conn, candles, "sim")
    figures = await svc.pattern_coins([win, loss], AT)
    print(f"\npatterns: {figures}")
    judged = dict(await rows(spool, "SELECT symbol, array_agg(DISTINCT outcome) FROM cluster_targets "
                             "WHERE symbol = ANY(%s) GROUP BY symbol", [win, loss]))  # fmt: skip
    assert judged == {win: ["win"], loss: ["loss"]}
    pat = {r[0]: r[1:] for r in await rows(
        spool, "SELECT symbol, success_rate, samples, wins, losses, avg_time_to_target_s, max_wick_down_pct "
        "FROM coin_liquidation_patterns WHERE timeframe = '24h' AND symbol = ANY(%s)", [win, loss])}  # fmt: skip
    assert pat[win][:4] == (1, 1, 1, 0) and pat[loss][:4] == (0, 1, 0, 1)
    assert float(pat[win][4]) == pytest.approx(120 * 60 - 5, abs=60)  # 2 h after the scan
    assert float(pat[win][5]) == pytest.approx(5.0, abs=0.01)  # the 5 % wick, in the 24h window
    up = await rows(spool, "SELECT max_wick_up_pct FROM coin_liquidation_patterns WHERE symbol = %s AND "
                    "timeframe = '24h'", loss)  # fmt: skip
    assert float(up[0][0]) == pytest.approx(5.0, abs=0.01)
    # judged once: a second update changes nothing
    assert (await svc.pattern_coins([win, loss], AT))["judged"] == 0


# --- ranker -----------------------------------------------------------------------------------------------


async def test_ranker_writes_top10_and_one_signal_with_provenance(
    sbox: Sandbox, spool: AsyncConnectionPool, sredis: Redis, seeded: list[str]
) -> None:
    interval = 60.0
    cycle = cycle_of(interval, AT.timestamp())
    assert cycle_start(cycle, interval) == AT.timestamp() - 5
    # SPEC geometry here: reward:risk ≈ 0.35 (refused at the default minimum of 1.0, see below)
    svc = make(Ranker, sbox, spool, sredis, rank_interval_s=interval, min_reward_risk=0.3)
    await svc.register()
    assert await svc.lease.try_acquire()
    # the spiky coin's grid, as the market collector stores it (fine enough for the approx
    # checks below); the ranker plans its signal on it
    b = base(COINS.index(SPIKY))
    tick = float(f"1e{math.floor(math.log10(b)) - 7}")
    async with spool.connection() as conn:
        await write_instruments(conn, [Instrument(
            symbol=SPIKY, base_coin=SPIKY.removesuffix("USDT"), quote_coin="USDT",
            status="Trading", tick_size=tick, qty_step=0.001, min_qty=0.001, max_leverage=50,
        )], "sim", AT)  # fmt: skip
    started = time.perf_counter()
    figures = await svc.rank_cycle(cycle)
    took = time.perf_counter() - started
    print(f"\nranking cycle of {len(seeded)} coins: {took * 1000:.0f} ms, {figures}")
    ranked = await rows(spool, "SELECT rank, symbol, direction, score, imbalance, cluster_size_pct, target_price, "
                        "price, inputs FROM coin_rankings WHERE cycle_id = %s ORDER BY rank", str(cycle))  # fmt: skip
    assert [r[0] for r in ranked] == list(range(1, 11))
    for r in ranked:  # the inputs replay the score
        parts = r[8]["score_parts"]
        assert float(r[3]) == pytest.approx(
            parts["imbalance"] + parts["cluster"] + parts["success"]
        )
        assert r[8]["levels"].keys() == set(TIMEFRAMES)
    k = seeded.index(ranked[0][1])
    assert ranked[0][2] == ("long" if k % 2 == 0 else "short")
    signals = await rows(spool, "SELECT symbol, direction, entry_price, stop_loss, take_profit, target_price "
                         "FROM signals WHERE cycle_id = %s", str(cycle))  # fmt: skip
    top3 = [r[1] for r in ranked[:3]]
    print(f"top 3: {top3}; signals: {signals}")
    if SPIKY in top3:
        assert [s[0] for s in signals] == [SPIKY]
        _, direction, entry, stop, tp, target = signals[0]
        b = base(COINS.index(SPIKY))
        assert direction == "long"
        assert float(entry) == pytest.approx(b * 1.03 * 0.98)  # conservative: 2 % below the edge
        assert float(target) == pytest.approx(b * 1.032)  # the target cluster's centre
        assert float(tp) == pytest.approx(b * 1.032 * 0.995)  # centre, front-run 0.5 %
        # stop: wider of 5 % default wick below entry and 2 % below the next long cluster (−1 %)
        assert float(stop) == pytest.approx(min(float(entry) * 0.95, b * 0.99 * 0.98))
        events = await stream(sredis, sbox.namespace, STREAM_SIGNALS)
        assert len(events) == 1 and events[0].payload["symbol"] == SPIKY
        # the event carries the decision's inputs and its plan, typed (nobody re-reads the row)
        event = TradeSignalled.model_validate(events[0].payload)
        assert event.plan is not None and event.market is not None
        assert float(event.plan.take_profit) == pytest.approx(float(tp))
        assert float(event.plan.stop_loss) == pytest.approx(float(stop))
        assert event.plan.entries == [event.plan.entry]
        assert event.plan.tick_size == tick  # on the coin's grid from `instruments`
        for level in (event.plan.entry, event.plan.stop_loss, event.plan.take_profit):
            assert (level / Decimal(str(tick))) % 1 == 0, level
        assert float(event.plan.entry) == pytest.approx(float(entry))
        assert (
            event.market.target.low == pytest.approx(b * 1.03)
            and event.market.data_time is not None
        )

        # a re-run of the cycle (e.g. a new leader) makes no second signal and publishes nothing
        assert (await svc.rank_cycle(cycle)) == {"skipped": True}
        assert len(await stream(sredis, sbox.namespace, STREAM_SIGNALS)) == 1

        provenance = await rows(spool, """
            SELECT s.signal_id, s.symbol, s.direction, s.scanner, s.scanner_version, r.params_hash,
                   r.params->'weights' AS weights, s.inputs->'ranking'->'score_parts' AS score_parts,
                   s.inputs->'trigger'->>'oi_change_15m_pct' AS oi, s.inputs->'spike' AS spike,
                   s.inputs->'trigger' AS trigger
            FROM signals s JOIN scanners r ON r.name = s.scanner AND r.version = s.scanner_version
            WHERE s.symbol = %s""", SPIKY)  # fmt: skip
        print("provenance:", json.dumps([list(map(str, p)) for p in provenance], indent=1))
        assert len(provenance) == 1
        assert provenance[0][4].startswith("1.0.0+") and provenance[0][5].startswith(
            provenance[0][4][6:]
        )
        assert provenance[0][9]["scanner"] == "spike_scanner"
        # both trigger modes recorded; the default (coin) decided; its bars never below the SPEC's
        trig = provenance[0][10]
        assert trig["mode"] == "coin" and trig["modes"]["coin"]["fires"]
        assert trig["modes"]["fixed"] == {
            "thresholds": {"oi_pct": 3.0, "volume_ratio": 1.5, "move_pct": 1.0},
            "fires": True,
        }
        assert all(trig["modes"]["coin"]["thresholds"][k] >= v
                   for k, v in trig["modes"]["fixed"]["thresholds"].items())  # fmt: skip
        assert trig["thresholds"] == trig["modes"]["coin"]["thresholds"]
    else:  # pragma: no cover - the seed is built so the spiky coin ranks in the top 3
        pytest.fail(f"the spiky coin {SPIKY} is not in the top 3: {top3}")


async def test_ranker_respects_the_cooldown_and_a_lost_lease(
    sbox: Sandbox, spool: AsyncConnectionPool, sredis: Redis, seeded: list[str]
) -> None:
    interval = 60.0
    next_cycle = cycle_of(interval, AT.timestamp()) + 1
    svc = make(Ranker, sbox, spool, sredis, rank_interval_s=interval, min_reward_risk=0.3)
    await svc.register()
    # the next minute: the same setup triggers again, but within the cooldown → no signal
    async with spool.connection() as conn, conn.transaction():
        for k, sym in enumerate(seeded):
            await write_heatmaps_for(conn, sym, k, AT + timedelta(seconds=30))
    await sredis.delete(svc.lease.key)
    assert await svc.lease.try_acquire()
    figures = await svc.rank_cycle(next_cycle)
    assert figures["ranked"] == 10 and figures["signals"] == 0
    # without the lease, nothing is written
    svc.lease.valid_until = 0.0
    from svc_ranker.service import LeadershipLost

    with pytest.raises(LeadershipLost):
        await svc.rank_cycle(next_cycle + 1)
    assert (
        await rows(
            spool, "SELECT count(*) FROM coin_rankings WHERE cycle_id = %s", str(next_cycle + 1)
        )
    )[0][0] == 0
    # out of the cooldown, at the default minimum reward:risk (1.0) the plan of the same
    # setup (≈ 0.35) is refused: the trigger fired, no signal, the refusal journalled
    strict = make(Ranker, sbox, spool, sredis, rank_interval_s=interval, signal_cooldown_s=0)
    await sredis.delete(svc.lease.key)
    assert await strict.lease.try_acquire()
    before = len(await stream(sredis, sbox.namespace, STREAM_SIGNALS))
    figures = await strict.rank_cycle(next_cycle + 2)
    assert figures["signals"] == 0
    assert len(await stream(sredis, sbox.namespace, STREAM_SIGNALS)) == before
    refused = [e.payload for e in await stream(sredis, sbox.namespace, "agent_logs")
               if e.payload["event_type"] == "signal.refused"]  # fmt: skip
    assert refused and refused[-1]["detail"]["code"] == "reward_risk_too_low"
    assert refused[-1]["symbol"] == SPIKY and "reward:risk 0.3" in refused[-1]["message"]


async def test_a_signal_written_but_never_published_is_published_by_the_next_cycle(
    sbox: Sandbox, spool: AsyncConnectionPool, sredis: Redis, seeded: list[str]
) -> None:
    """The crash window between the signal row and its publish: the outbox closes it."""
    from quantcore.store import rankings as store

    svc = make(Ranker, sbox, spool, sredis)
    await sredis.delete(svc.lease.key)  # an earlier test left another holder on the lease
    assert await svc.lease.try_acquire()
    at = datetime.now(UTC) - timedelta(minutes=2)
    sid = uuid.uuid4()
    event = TradeSignalled(
        signal_id=sid, time=at, cycle_id="outbox-test", symbol=seeded[0], direction="long", rank=1,
        score=90.0, entry_mode="conservative", entry_price=98.0, stop_loss=93.0, take_profit=104.5,
        target_price=105.0, target_low=104.0, target_high=106.0, price=100.0, imbalance=0.7,
        cluster_size_pct=150.0, success_rate=0.5, oi_change_15m_pct=4.0, volume_ratio_5m=2.0,
        price_change_5m_pct=1.5, scanner="ranker", scanner_version=svc.scanner_version,
    )  # fmt: skip
    row = store.SignalRow(
        time=at, signal_id=sid, symbol=seeded[0], direction="long", scanner="ranker",
        scanner_version=svc.scanner_version, agent="ranker", heatmap_source=None,
        inputs={"event": event.model_dump(mode="json")},
    )  # fmt: skip
    async with spool.connection() as conn, conn.transaction():
        assert await store.insert_signal(conn, row)  # ... and the process died here
    before = len(await stream(sredis, sbox.namespace, STREAM_SIGNALS))
    assert await svc.republish_pending() == 1
    events = await stream(sredis, sbox.namespace, STREAM_SIGNALS)
    assert len(events) == before + 1
    assert events[-1].payload["signal_id"] == str(sid)
    assert events[-1].correlation_id == str(sid)
    assert await svc.republish_pending() == 0  # stamped: never again
    (published,) = await rows(spool, "SELECT published_at FROM signals WHERE signal_id = %s", sid)
    assert published[0] is not None


async def test_poly_hybrid_boost_lifts_a_coin_with_a_hybrid_signal(
    sbox: Sandbox, spool: AsyncConnectionPool, sredis: Redis, seeded: list[str]
) -> None:
    """POLY_HYBRID_BOOST: a coin whose linked Polymarket market fired a hybrid signal within
    POLY_HYBRID_WINDOW_MIN ranks on score × (1 + boost); the boost is in the ranking's inputs.
    Off (0, the default) or outside the window, the ranking is untouched."""
    interval = 60.0
    first = cycle_of(interval, AT.timestamp()) + 3
    plain = make(Ranker, sbox, spool, sredis, rank_interval_s=interval, signal_cooldown_s=1e9)
    await plain.register()
    await sredis.delete(plain.lease.key)
    assert await plain.lease.try_acquire()
    await plain.rank_cycle(first)
    before = await rows(spool, "SELECT symbol, score FROM coin_rankings WHERE cycle_id = %s "
                        "ORDER BY rank", str(first))  # fmt: skip
    last, last_score = before[-1][0], float(before[-1][1])
    top_score = float(before[0][1])
    assert last_score * 2 > top_score  # a boost of 1.0 is enough to lift it to the top

    at = datetime.fromtimestamp(cycle_start(first + 1, interval), UTC)
    async with spool.connection() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO hybrid_signals (time, condition_id, token_id, poly_signal_time, symbol,"
            " reasons, scanner, scanner_version) VALUES"
            " (%s, '0xabc', '1', %s, %s, ARRAY['oi_spike'], 'poly_scanner', 'test'),"
            " (%s, '0xdef', '2', %s, %s, ARRAY['oi_spike'], 'poly_scanner', 'test')",
            (at - timedelta(minutes=5), at - timedelta(minutes=5), last,
             at - timedelta(hours=3), at - timedelta(hours=3), before[-2][0]),
        )  # fmt: skip
    boosted = make(Ranker, sbox, spool, sredis, rank_interval_s=interval, signal_cooldown_s=1e9,
                   poly_hybrid_boost=1.0, poly_hybrid_window_min=60.0)  # fmt: skip
    await boosted.register()
    await sredis.delete(plain.lease.key)
    assert await boosted.lease.try_acquire()
    await boosted.rank_cycle(first + 1)
    after = await rows(spool, "SELECT symbol, score, inputs FROM coin_rankings "
                       "WHERE cycle_id = %s ORDER BY rank", str(first + 1))  # fmt: skip
    assert after[0][0] == last  # lifted from 10th to 1st
    parts = after[0][2]["score_parts"]
    assert after[0][2]["hybrid_boost"] == 1.0
    assert float(after[0][1]) == pytest.approx(
        2 * (parts["imbalance"] + parts["cluster"] + parts["success"])
    )
    # the other hybrid signal is 3 h old (outside the 60-min window): not boosted
    old = [r for r in after if r[0] == before[-2][0]]
    assert all(r[2]["hybrid_boost"] == 0.0 for r in old)
    assert all(r[2]["hybrid_boost"] == 0.0 for r in after[1:])
