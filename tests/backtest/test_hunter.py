"""The liquidation hunter plug-in runs the services' own functions (shown by identity and by
patching the shared function and seeing both paths change), reads the heatmaps the
liquidation collector would store with HEATMAP_SOURCE=sim as of each 5-min refresh, and
cannot look ahead — a planted future cluster changes no plan at or before t, while a hunter
that peeks at the next refresh is caught."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

import quantcore.strategies.liquidation_hunter as hunter_mod
import svc_cluster_scanner.service as cluster_svc
import svc_position_monitor.service as monitor_svc
import svc_ranker.service as ranker_svc
from quantcore.adapters.coinglass import parse
from quantcore.backtest import engine
from quantcore.backtest.lookahead import lookahead_violations
from quantcore.backtest.tapes import HEATMAP_REFRESH_S, SimHeatmaps, _sim_market, sim_tape
from quantcore.math import matching
from quantcore.math import trigger as tm
from quantcore.model.market import TIMEFRAMES
from quantcore.scan import clusters as scan_clusters
from quantcore.scan import ranking as scan_ranking
from quantcore.scan import trigger as scan_trigger
from quantcore.store import rankings as rankings_store
from quantcore.store.series import MinuteSeries
from quantcore.strategies import Bars, HeatmapLevels, SignalFrame, load_strategy, prefetch
from quantcore.strategies.liquidation_hunter import LiquidationHunter, LiquidationHunterParams
from quantcore.trading import monitor
from quantcore.venues import paper
from svc_autotrader import service as autotrader_svc
from svc_simulator.coinglass import heatmap_data

# settings under which the one-day tape below gives the hunter plans to make
LIVELY: dict[str, Any] = {"trigger_mode": "fixed", "min_reward_risk": 0.5, "cooldown_s": 0}


@pytest.fixture(scope="module")
def tape() -> list[Bars]:
    return sim_tape(1, seed=42, coins=3)


@pytest.fixture(scope="module")
def lively(tape: list[Bars]) -> tuple[LiquidationHunter, Bars, SignalFrame]:
    hunter = LiquidationHunter(LiquidationHunterParams(**LIVELY))
    bars = tape[2]
    prefetch(hunter, [bars])
    frame = hunter.signals(bars)
    assert frame.plans is not None and len(frame.plans) >= 3, frame.reason
    return hunter, bars, frame


# --- the heatmaps of the tape ------------------------------------------------------------------


def test_tape_heatmaps_are_the_collectors_view_at_each_refresh(tape: list[Bars]) -> None:
    """Refresh k holds what the collector parses off the simulator's CoinGlass endpoint at
    refreshed_s[k] (same market, replayed), for every timeframe; stamped every 5 minutes."""
    bars = tape[1]
    hm = bars.heatmap
    assert hm is not None and hm.timeframes == tuple(TIMEFRAMES) and hm.source is not None
    assert np.all(np.diff(hm.refreshed_s) == HEATMAP_REFRESH_S)
    wanted = np.array([3, 100, 250], dtype=np.int64)
    hm.source.fetch({bars.symbol: wanted})
    market = _sim_market(42, 3, int(bars.start_s[0]))
    c = market.symbol_index(bars.symbol)
    assert c is not None
    for k in wanted.tolist():
        market.advance_to(int(hm.refreshed_s[k]))
        # the replayed market is the tape's: its price at the refresh is the close of the bar
        # that closed then
        i = int(np.searchsorted(bars.close_s, hm.refreshed_s[k]))
        assert float(market.last_price[c]) == pytest.approx(
            float(bars.close[i]), rel=1e-6
        )  # float32 candles
        prices, values = hm.levels(k)
        for t, tf in enumerate(TIMEFRAMES):
            payload = {"code": "0", "msg": "success",
                       "data": heatmap_data(market.coins[c], market.heatmap(c, tf, "model2"))}  # fmt: skip
            got = parse.heatmap(payload, symbol=bars.symbol, timeframe=tf, source="sim").heatmap
            p = np.array([lv.price for lv in got.levels])
            v = np.array([lv.value_usd for lv in got.levels])
            assert p.size > 0
            np.testing.assert_array_equal(prices[t, : p.size], p)
            np.testing.assert_allclose(values[t, : v.size], v, rtol=1e-9, atol=0.011)
            assert np.isnan(prices[t, p.size :]).all() and (values[t, v.size :] == 0).all()


def test_an_unfetched_refresh_is_refused_not_made_up(tape: list[Bars]) -> None:
    src = SimHeatmaps(42, 3, int(tape[0].start_s[0]), tape[0].heatmap.refreshed_s)  # type: ignore[union-attr]
    with pytest.raises(KeyError, match="not fetched"):
        src.levels_of(tape[0].symbol).levels(5)


def test_the_hunter_reads_only_the_refreshes_it_names(tape: list[Bars]) -> None:
    hunter = LiquidationHunter(LiquidationHunterParams(**LIVELY))
    bars = tape[2]
    src = SimHeatmaps(42, 3, int(bars.start_s[0]), bars.heatmap.refreshed_s)  # type: ignore[union-attr]
    own = replace(bars, heatmap=src.levels_of(bars.symbol))
    prefetch(hunter, [own])
    assert src.replays == 1
    named = hunter.heatmap_refreshes(own)
    assert named is not None and 0 < named.size < own.heatmap.refreshed_s.size // 4  # type: ignore[union-attr]
    assert len(hunter.signals(own).plans or ()) > 0  # no KeyError: all it read was fetched
    prefetch(hunter, [own])  # nothing new: no second replay
    assert src.replays == 1


def test_captured_while_generating_equals_replayed_and_needs_no_replay() -> None:
    """sim_tape(capture=strategy) reads the refreshes the strategy names off copies of the book
    kept at each refresh of the day: the same levels a replay reads, and no replay at all."""
    hunter = LiquidationHunter(LiquidationHunterParams(**LIVELY))
    captured = sim_tape(1, seed=42, coins=3, capture=hunter)
    src = captured[0].heatmap.source  # type: ignore[union-attr]
    assert isinstance(src, SimHeatmaps)
    frames = [hunter.signals(b) for b in captured]  # reads only what was captured
    prefetch(hunter, captured)
    assert src.replays == 0 and sum(len(f.plans or ()) for f in frames) > 0
    named = {b.symbol: hunter.heatmap_refreshes(b) for b in captured}
    fresh = SimHeatmaps(42, 3, int(captured[0].start_s[0]), src.refreshed_s)
    fresh.fetch(named)
    assert fresh.replays == 1
    compared = 0
    for sym, ks in named.items():
        assert ks is not None
        for k in ks.tolist():
            a, b = src.get(sym, k), fresh.get(sym, k)
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])
            compared += 1
    assert compared > 5


# --- the plans ---------------------------------------------------------------------------------------


def test_plans_are_the_decisions_sane_plans(
    lively: tuple[LiquidationHunter, Bars, SignalFrame],
) -> None:
    frame = lively[2]
    assert frame.plans is not None
    for p in frame.plans:
        entries = p.prices
        assert frame.entry[p.bar] == p.side
        if p.side > 0:
            assert p.stop_loss < entries.min() and entries.max() < p.take_profit
        else:
            assert p.stop_loss > entries.max() and entries.min() > p.take_profit
        assert p.leverage == 5.0 and (p.qty_per_equity > 0).all()
        # risk sizing: the loss at the stop is 1 % of equity, unless the margin cap (20 % of
        # equity at 5x: a notional of 1 × equity) sized it down
        loss = float((p.qty_per_equity * np.abs(entries - p.stop_loss)).sum())
        notional = float((p.qty_per_equity * entries).sum())
        assert 0 < loss <= 0.0100001 and notional <= 1.0000001
        assert loss > 0.0099 or notional > 0.999
        assert p.trailing == ((10.0, 0.0), (20.0, 10.0), (50.0, 30.0))


def test_the_rankers_cooldown_keeps_same_direction_signals_apart(
    lively: tuple[LiquidationHunter, Bars, SignalFrame],
) -> None:
    _, bars, free = lively
    cooled = LiquidationHunter(LiquidationHunterParams(**{**LIVELY, "cooldown_s": 3600})).signals(
        bars
    )
    assert free.plans is not None and cooled.plans is not None
    assert 0 < len(cooled.plans) < len(free.plans)
    for side in (1, -1):
        t = [int(bars.close_s[p.bar]) for p in cooled.plans if p.side == side]
        assert all(b - a >= 3600 for a, b in itertools.pairwise(t))
    # every cooled plan is one of the free ones (the cooldown only removes signals)
    assert {p.bar for p in cooled.plans} <= {p.bar for p in free.plans}


def test_registered_and_settings_checked() -> None:
    assert load_strategy("liquidation_hunter") is LiquidationHunter
    with pytest.raises(ValueError, match="PROFIT:LOCK"):
        LiquidationHunter.from_settings({"trailing_ladder": "10:20"})
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        LiquidationHunter.from_settings({"leverage": 0.5})


# --- no lookahead ------------------------------------------------------------------------------------


class PeekingHunter(LiquidationHunter):
    """Decides on the refresh after the one stamped at or before the bar: a 5-minute peek."""

    def heatmap_refreshes(self, bars: Bars, since: int = 0) -> Any:
        k = super().heatmap_refreshes(bars, since)
        return np.unique(np.concatenate([k, k + 1]))

    def signals(self, bars: Bars) -> SignalFrame:
        hm = bars.heatmap
        assert hm is not None
        n = len(hm.prices)
        ahead = HeatmapLevels(
            refreshed_s=hm.refreshed_s, timeframes=hm.timeframes,
            prices=_Shift(hm.prices, n), values=_Shift(hm.values, n),
        )  # fmt: skip
        return super().signals(replace(bars, heatmap=ahead))


class _Shift:
    def __init__(self, inner: Any, n: int) -> None:
        self.inner, self.n = inner, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k: int) -> Any:
        return self.inner[min(k + 1, self.n - 1)]


def test_planted_future_clusters_change_no_plan_at_or_before_t(
    lively: tuple[LiquidationHunter, Bars, SignalFrame],
) -> None:
    hunter, bars, frame = lively
    assert frame.plans is not None
    times = sorted({p.bar for p in frame.plans[:4]} | {frame.plans[0].bar - 1, 700})
    assert lookahead_violations(hunter, bars, times) == []


def test_a_hunter_peeking_one_refresh_ahead_is_caught(
    lively: tuple[LiquidationHunter, Bars, SignalFrame],
) -> None:
    _, bars, frame = lively
    assert frame.plans is not None
    peek = PeekingHunter(LiquidationHunterParams(**LIVELY))
    times = [p.bar for p in frame.plans[:3]]
    found = lookahead_violations(peek, bars, times)
    assert any("plan" in f for f in found), found


# --- the same functions as the services -------------------------------------------------------------


def test_the_hunter_and_the_services_hold_the_same_function_objects() -> None:
    # the trade decision: the ranker plans with it, the autotrader sizes with it, the hunter both
    assert hunter_mod.decide is ranker_svc.decide is autotrader_svc.decide
    # the ranker's evaluation and market view
    assert hunter_mod.universe.evaluate is scan_ranking.evaluate
    assert hunter_mod.view is scan_ranking.view
    # the ranker's trigger (both modes): scan.trigger.check evaluates with math.trigger
    assert hunter_mod.tm is scan_trigger.tm
    # the ranker's cooldown: one rule, asked by the hunter and by the store's signals query
    assert hunter_mod.tm.in_cooldown is rankings_store.trigger_rules.in_cooldown
    # the cluster scanner's per-timeframe targets and typical
    assert hunter_mod.clusters is scan_clusters.clusters and cluster_svc.clusters is scan_clusters
    # the matching rules: the paper venue's and the engine's
    assert engine.matching is paper.matching is matching
    # the trailing ladder: the position monitor's and the engine's
    assert engine.monitor is monitor_svc.monitor is monitor


def test_patching_the_shared_trigger_changes_the_ranker_and_the_hunter(
    monkeypatch: pytest.MonkeyPatch, lively: tuple[LiquidationHunter, Bars, SignalFrame]
) -> None:
    hunter, bars, frame = lively
    calls: list[str] = []
    real = tm.evaluate

    def spy(*a: Any, **k: Any) -> tm.TriggerEvaluation:
        import inspect

        calls.append(inspect.stack()[1].frame.f_globals["__name__"])
        return real(*a, **k)

    monkeypatch.setattr(tm, "evaluate", spy)
    hunter.signals(bars)
    i = frame.plans[0].bar  # type: ignore[index]
    series = MinuteSeries([bars.symbol], int(bars.close_s[i]) // 60, {
        "close": bars.close[: i + 1][None], "volume": (bars.volume * bars.close)[: i + 1][None]})  # fmt: skip
    oi = MinuteSeries([bars.symbol], series.end, {"oi": bars.open_interest[: i + 1][None]})  # type: ignore[index]
    params = scan_trigger.TriggerParams("fixed", 3.0, 1.5, 1.0, 95.0, 1440, 60)
    scan_trigger.check(series, oi, {bars.symbol: "long"}, params)
    assert "quantcore.strategies.liquidation_hunter" in calls
    assert "quantcore.scan.trigger" in calls


def test_the_live_entry_point_carries_the_plan(
    lively: tuple[LiquidationHunter, Bars, SignalFrame],
) -> None:
    hunter, bars, frame = lively
    assert frame.plans is not None
    p = frame.plans[0]
    live = bars.window(0, p.bar + 1)  # the newest bar is the plan's
    signal = hunter.decide(live)
    assert signal is not None and signal.plan is not None
    assert signal.side == ("long" if p.side > 0 else "short")
    assert signal.plan.entries == p.prices.tolist() and signal.plan.stop_loss == p.stop_loss
    assert signal.plan.take_profit == p.take_profit and signal.plan.leverage == p.leverage
    assert hunter.decide(bars.window(0, p.bar)) is None or p.bar - 1 in {q.bar for q in frame.plans}
