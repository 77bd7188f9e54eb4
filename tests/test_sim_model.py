"""The simulated market model (quantcore.sim): determinism, consistent candles, liquidation
levels that vanish when price crosses them, nested heatmap timeframes, whales that push price
to liquidation clusters, bounded memory."""

from __future__ import annotations

import math
import re
from itertools import pairwise
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantcore.model.market import TIMEFRAMES
from quantcore.sim import MMR, Market, MarketConfig, liquidation_price
from quantcore.sim.heatmap import MAX_BAND
from quantcore.sim.levels import BUCKET_WIDTH, bucket_of, bucket_price
from quantcore.sim.rings import CLOSE, HIGH, LOW, OPEN, TURNOVER, VOLUME

START = 1_759_999_980  # a fixed start (on a minute) makes a market reproducible
FAST: dict[str, Any] = {
    "step_s": 10,
    "block_s": 300,
}  # coarse steps: hours of market in a fraction of a second


def small(seed: int = 7, **overrides: object) -> Market:
    config: dict[str, object] = {"seed": seed, "coins": 6, "history_days": 0.25, "start": START}
    config.update(overrides)
    return Market(MarketConfig(**config))  # type: ignore[arg-type]


def ring_arrays(market: Market) -> list[np.ndarray]:
    return [market.fine.prices, market.fine.flows, market.coarse.prices, market.coarse.flows]


# --- determinism ---------------------------------------------------------------------------------


def test_same_seed_same_market() -> None:
    a, b = small(), small()
    assert a.advance(600) == b.advance(600)
    for x, y in zip(ring_arrays(a), ring_arrays(b), strict=True):
        assert np.array_equal(x, y)
    assert np.array_equal(a.book.value, b.book.value)
    assert np.array_equal(a.book.price, b.book.price)
    assert [c.symbol for c in a.coins] == [c.symbol for c in b.coins]


def test_advancing_in_steps_or_at_once_gives_the_same_market() -> None:
    at_once, stepwise = small(seed=3), small(seed=3)
    events_at_once = at_once.advance(900)
    events_stepwise = []
    for _ in range(90):
        events_stepwise += stepwise.advance(10)
    assert events_at_once == events_stepwise
    for x, y in zip(ring_arrays(at_once), ring_arrays(stepwise), strict=True):
        assert np.array_equal(x, y)
    assert np.array_equal(at_once.book.value, stepwise.book.value)


def test_different_seeds_give_different_markets() -> None:
    a, b = small(seed=1), small(seed=2)
    assert not np.array_equal(a.fine.prices, b.fine.prices)


# --- universe and candles ---------------------------------------------------------------------------


def test_universe_spans_price_levels_with_consistent_filters() -> None:
    market = Market(MarketConfig(seed=1, coins=70, history_days=0, start=START, **FAST))
    symbols = [c.symbol for c in market.coins]
    assert symbols[:2] == ["BTCUSDT", "ETHUSDT"]
    assert len(set(symbols)) == 70
    assert all(re.fullmatch(r"[A-Z0-9]{2,30}USDT", s) for s in symbols)
    assert "AAA1USDT" in symbols  # synthetic coins after the named ones
    prices = np.array([c.price0 for c in market.coins])
    assert prices.min() < 0.01 and prices.max() >= 50_000
    for coin in market.coins:
        assert 1e3 <= coin.price0 / coin.tick <= 1e6, coin
        assert coin.qty_step * coin.price0 * 1000 >= 1.0 and coin.qty_step * coin.price0 <= 1000, (
            coin
        )
        assert coin.max_leverage in (12.5, 25.0, 50.0, 75.0, 100.0)
    assert market.coins[0].max_leverage == 100.0


def test_candles_are_consistent_and_on_the_tick() -> None:
    market = small(seed=11, coins=8)
    market.advance(1800)
    for ring in (market.fine, market.coarse):
        idx = np.arange(ring.first, ring.last + 1) % ring.capacity
        o, h, low, c = (ring.prices[f][:, idx].astype(np.float64) for f in (OPEN, HIGH, LOW, CLOSE))
        assert (low <= o).all() and (low <= c).all() and (o <= h).all() and (c <= h).all()
        assert (low > 0).all()
        assert (ring.flows[VOLUME - 4][:, idx] >= 0).all()
        ticks = c / market.tick[:, None]
        assert np.allclose(ticks, np.round(ticks), atol=0.02)
    # A 5-min candle is its five 1-min candles.
    for coin in range(market.n):
        starts5, five = market.klines(coin, "5", None, None, 6)
        starts1, one = market.klines(coin, "1", int(starts5[0]), None, 1000)
        for k, start in enumerate(starts5[:-1]):
            sel = (starts1 >= start) & (starts1 < start + 300)
            assert sel.sum() == 5
            assert five[HIGH, k] == one[HIGH, sel].max()
            assert five[LOW, k] == one[LOW, sel].min()
            assert five[OPEN, k] == one[OPEN, sel][0]
            assert five[CLOSE, k] == one[CLOSE, sel][-1]
            assert math.isclose(five[TURNOVER, k], one[TURNOVER, sel].sum(), rel_tol=1e-9)


def test_history_is_there_at_start() -> None:
    market = Market(MarketConfig(seed=5, coins=4, history_days=1.0, start=START, **FAST))
    starts, _ = market.klines(0, "1", None, None, 1000)
    assert starts.size == 1000 and starts[-1] == (START - 1) // 60 * 60
    day_ago = (START - 86_400) // 60 * 60
    first, _ = market.klines(0, "1", day_ago, day_ago, 1)
    assert first.tolist() == [day_ago]
    daily, values = market.klines(0, "D", None, None, 400)
    assert daily.size >= 360  # the 4-h past serves long intervals back a year
    assert (values[LOW] <= values[HIGH]).all()
    times, rates = market.funding_history(0, None, None, 200)
    assert times.size == 200 and (np.diff(times) == -8 * 3600).all()
    assert (np.abs(rates) <= market.coins[0].funding_cap).all()
    oi_times, oi, more = market.open_interest(0, 300, None, None, 50)
    assert oi_times.size == 50 and more
    assert (oi > 0).all() and (np.diff(oi_times) == -300).all()


# --- liquidation levels -------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    entry=st.floats(min_value=1e-4, max_value=1e6),
    lev=st.floats(min_value=1.5, max_value=125.0),
    more=st.floats(min_value=1.01, max_value=3.0),
)
def test_liquidation_price_properties(entry: float, lev: float, more: float) -> None:
    long = float(liquidation_price(entry, lev, 1))
    short = float(liquidation_price(entry, lev, -1))
    assert long < entry < short
    assert math.isclose(1 - long / entry, 1 / lev - MMR, rel_tol=1e-9)
    assert math.isclose(short / entry - 1, 1 / lev - MMR, rel_tol=1e-9)
    higher = min(lev * more, 1 / MMR * 0.99)
    if higher > lev:  # more leverage: liquidated closer to the entry
        assert float(liquidation_price(entry, higher, 1)) > long
        assert float(liquidation_price(entry, higher, -1)) < short


@given(price=st.floats(min_value=1e-5, max_value=1e7))
def test_level_buckets_are_narrow(price: float) -> None:
    centre = float(bucket_price(bucket_of(price)))
    assert abs(centre / price - 1) <= BUCKET_WIDTH


def test_levels_vanish_and_liquidations_appear_when_price_crosses_them() -> None:
    market = small(seed=21, coins=12)
    before = [market.levels(c) for c in range(market.n)]
    start = market.now
    events = market.advance(7200)
    assert events, "two hours of twelve coins liquidate something"
    assert all(start * 1000 <= e.time_ms < market.now * 1000 for e in events)
    hit = {(e.coin, e.side, round(e.price, 12)) for e in events}
    crossed = 0
    for c, levels in enumerate(before):
        _, candles = market.klines(c, "1", start, None, 1000)
        low, high = candles[LOW].min(), candles[HIGH].max()
        now = market.levels(c)
        big = levels.value >= np.quantile(levels.value, 0.25)  # the smallest may be merged away
        for price, side, value, keep in zip(
            levels.price, levels.side, levels.value, big, strict=True
        ):
            reached = price >= low if side > 0 else price <= high
            if not reached or not keep or value < 10:
                continue
            crossed += 1
            assert (c, "long" if side > 0 else "short", round(float(price), 12)) in hit
            same = (now.price == price) & (now.side == side)
            assert (now.opened[same] >= start).all(), "a crossed level survived"
    assert crossed > 0
    for e in events:  # every event happened at a price the market actually traded
        minute = e.time_ms // 60_000 * 60
        _, candles = market.klines(e.coin, "1", minute, minute, 1)
        if e.side == "long":
            assert candles[LOW, 0] <= e.price
        else:
            assert candles[HIGH, 0] >= e.price
        assert e.qty > 0 and e.value_usd > 0


def test_every_timeframe_is_there_from_the_start_and_longer_ones_hold_more() -> None:
    market = Market(MarketConfig(seed=4, coins=8, history_days=0, start=START, **FAST))
    for coin in range(market.n):
        totals = []
        for tf in TIMEFRAMES:
            levels = market.levels(coin, tf)
            grid = market.heatmap(coin, tf)
            assert levels.size > 0, (coin, tf)
            assert grid.x.size > 0, (coin, tf)
            totals.append(levels.value.sum())
        assert all(a <= b for a, b in pairwise(totals)), totals
    longest = [market.levels(c, "1y").value.sum() for c in range(market.n)]
    shortest = [market.levels(c, "12h").value.sum() for c in range(market.n)]
    assert sum(longest) > 3 * sum(shortest)


def test_heatmap_grid_matches_the_levels() -> None:
    market = small(seed=9, coins=4)
    market.advance(600)
    for coin in range(market.n):
        price = float(market.last_price[coin])
        for tf in ("12h", "7d", "1y"):
            grid = market.heatmap(coin, tf, "model2")
            assert 100 <= grid.y_axis.size <= 400
            assert (grid.x < grid.candle_starts.size).all() and (grid.y < grid.y_axis.size).all()
            last = grid.candle_starts.size - 1
            assert (
                grid.candle_starts[-1]
                <= market.now
                < grid.candle_starts[-1] + np.diff(grid.candle_starts)[0]
            )
            levels = market.levels(coin, tf)
            band = math.ceil(math.log1p(MAX_BAND) / math.log1p(BUCKET_WIDTH))
            near = np.abs(levels.bucket - bucket_of(price)) <= band
            assert math.isclose(
                grid.value[grid.x == last].sum(), levels.value[near].sum(), rel_tol=1e-6
            )
            c = grid.candles
            assert (c[LOW] <= c[OPEN]).all() and (c[LOW] <= c[CLOSE]).all()
            assert (c[HIGH] >= c[OPEN]).all() and (c[HIGH] >= c[CLOSE]).all()
            # A level keeps its value from the column where it formed to the latest column.
            for y in np.unique(grid.y)[:20]:
                row = grid.value[grid.y == y]
                assert (np.diff(row) >= -1e-6).all()
        shaded = market.heatmap(coin, "7d", "model1").value.sum()
        exact = market.heatmap(coin, "7d", "model2").value.sum()
        assert 0.8 * exact < shaded < exact


# --- whales ------------------------------------------------------------------------------------------


def test_whales_push_price_to_clusters_and_fake_pumps_fail() -> None:
    reached = {True: 0, False: 0}
    hunts = 0
    fakes_failed = fakes = 0
    for seed in (0, 1):
        markets = {
            whales: Market(
                MarketConfig(
                    seed=seed,
                    coins=10,
                    history_days=1.0,
                    start=START,
                    whales=whales,
                    opening_hunts=0,
                )  # pushes that had their time, none just begun
            )
            for whales in (True, False)
        }
        campaigns = [c for c in markets[True].campaigns() if c.push_started is not None]
        assert not markets[False].campaigns()
        for campaign in campaigns:
            if campaign.kind == "fake":
                fakes += 1
                fakes_failed += campaign.outcome == "failed"
                continue
            hunts += 1
            for whales, market in markets.items():
                _, candles = market.klines(
                    campaign.coin,
                    "1",
                    campaign.push_started,
                    campaign.push_started + 4 * 3600,
                    1000,
                )
                if campaign.direction > 0:
                    best = candles[HIGH].max() / campaign.target - 1
                else:
                    best = 1 - candles[LOW].min() / campaign.target
                reached[whales] += best >= -0.01  # within 1 % of the cluster
    assert hunts >= 8
    # Same random shocks with and without whales: the whales make the difference.
    assert reached[True] >= 0.8 * hunts
    assert reached[False] <= 0.25 * hunts
    assert fakes_failed == fakes


def test_whale_campaigns_take_profit_before_the_cluster() -> None:
    market = Market(MarketConfig(seed=2, coins=12, history_days=1.0, start=START))
    hunts = [c for c in market.campaigns() if c.kind == "hunt" and c.outcome == "take_profit"]
    assert hunts
    for c in hunts:
        gap = c.direction * (c.target / c.take_profit - 1)
        assert 0.004 <= gap <= 0.011, c
        assert c.timeframe in TIMEFRAMES


# --- bounded memory -----------------------------------------------------------------------------------


def test_memory_is_bounded_by_the_rings() -> None:
    market = Market(MarketConfig(seed=6, coins=5, history_days=0.5, start=START, **FAST))
    size = market.memory_bytes()
    capacity = market.fine.capacity
    assert capacity == math.ceil(1.5 * 1440) + 240
    market.advance(3 * 86_400)
    assert market.memory_bytes() == size
    assert market.fine.last - market.fine.first + 1 == capacity
    assert (market.book.used <= market.book.slots).all()
    starts, _ = market.klines(0, "1", None, None, 1000)
    assert starts[-1] - starts[0] == 999 * 60
    oldest, _ = market.klines(0, "1", 0, None, 1)
    assert oldest[0] >= (market.now // 60 - capacity) * 60
    maxlen = market.whales.log.maxlen
    assert maxlen is not None and len(market.campaigns()) <= maxlen


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="step"):
        MarketConfig(step_s=7)
    with pytest.raises(ValueError, match="block"):
        MarketConfig(block_s=45)


# --- a lively market: hunts the strategy can see -------------------------------------------------


def _trigger_fires(market: Market, minutes: int = 8) -> dict[str, set[str]]:
    """Coins (→ directions) whose coin-specific trigger (the ranker's, on the market's own 1-min
    candles and open interest of the last day) fires at some minute of the next `minutes`."""
    from quantcore.math import trigger as tm
    from quantcore.sim.rings import OI

    fired: dict[str, set[str]] = {}
    for _ in range(minutes):
        market.advance(60)
        m = market.now // 60 - 1
        ev = tm.evaluate(
            market.fine.span(OI, m - 1440, m).astype(float),
            market.fine.span(TURNOVER, m - 1440, m).astype(float),
            market.fine.span(CLOSE, m - 1440, m).astype(float),
            (3.0, 1.5, 1.0),
        )
        for d in ("long", "short"):
            for c in np.nonzero(ev.fires("coin", [d] * market.n))[0]:
                fired.setdefault(market.coins[c].symbol, set()).add(d)
    return fired


def test_the_market_opens_mid_hunt_and_the_default_trigger_sees_it() -> None:
    market = Market(MarketConfig(seed=11, coins=20, history_days=1.0, start=START))
    hunts = [c for c in market.campaigns() if c.outcome is None and c.kind == "hunt"
             and market.now - c.started <= 30 * 60]  # fmt: skip
    assert len(hunts) >= 2  # the opening hunts (3 by default; a coin's book may offer none)
    assert not any(market.coins[c.coin].is_major for c in hunts)
    # a hunt goes for the side the strategy's imbalance points to
    targets = [
        (market.bias(c)[0], t) for c in range(market.n) if (t := market._find_target(c, "hunt"))
    ]
    assert targets and all(t.direction == bias for bias, t in targets)
    fired = _trigger_fires(market, 6)
    hunted = {market.coins[c.coin].symbol: "long" if c.direction > 0 else "short" for c in hunts}
    assert any(d in fired.get(sym, set()) for sym, d in hunted.items()), (hunted, fired)


def test_a_quiet_opening_plants_nothing_and_a_scenario_plants_its_coin() -> None:
    quiet = Market(MarketConfig(seed=11, coins=20, history_days=1.0, start=START, opening_hunts=0))
    # a coin whose book offers a hunt now (a book may offer none when the hunt is planted,
    # 18 minutes earlier: the scenario then plants nothing there): its hunt is under way
    candidates = [
        c.symbol for c in quiet.coins if not c.is_major and np.isfinite(quiet.appeal(c.index))
    ]
    planted = symbol = None
    for symbol in candidates[:4]:
        planted = Market(MarketConfig(seed=11, coins=20, history_days=1.0, start=START,
                                      opening_hunts=0, hunt_symbols=(symbol,)))  # fmt: skip
        under_way = [c for c in planted.campaigns() if c.outcome is None and c.kind == "hunt"]
        if symbol in {planted.coins[c.coin].symbol for c in under_way}:
            break
    else:
        raise AssertionError(f"no hunt planted on any of {candidates[:4]}")
    assert planted is not None and symbol in _trigger_fires(planted, 6)
    with pytest.raises(ValueError, match="NOPEUSDT"):
        Market(
            MarketConfig(
                seed=11, coins=20, history_days=1.0, start=START, hunt_symbols=("NOPEUSDT",)
            )
        )


def test_a_hunt_planted_at_runtime_builds_then_pushes() -> None:
    market = small(seed=3, opening_hunts=0, history_days=4.0)
    planted = [(c.index, h) for c in market.coins if (h := market.plant_hunt(c.index, 120))]
    assert planted  # some coin's book offers a target (one with none, or busy, gives None)
    coin, campaign = planted[0]
    assert market.whales.phase_of(coin) == "build"
    again = market.plant_hunt(coin, 120)  # one campaign at a time: the first is re-planned
    assert again is not None and campaign.outcome == "replanned" and campaign.ended is not None
    campaign = again
    oi0 = float(market.oi_usd[coin])
    market.advance(130)
    assert market.whales.phase_of(coin) == "push" and campaign.push_started is not None
    assert float(market.oi_usd[coin]) > oi0 * 1.03  # the whale's position is open interest
    start = float(market.last_price[coin])
    market.advance(240)
    assert campaign.direction * (float(market.last_price[coin]) / start - 1) > 0.01


def test_public_positioning_data_over_the_history() -> None:
    """The taker-buy share of every 5 minutes (the trade stream's) and the account ratio
    (/v5/market/account-ratio) cover the 1-minute history; heatmap-eval feeds them to the
    model as the long share of its 5-minute intervals (the 4-hour past has neither)."""
    from quantcore.estimate.evaluate import market_inputs

    market = Market(MarketConfig(seed=5, coins=4, history_days=0.3, start=1_780_000_000))
    t, share = market.taker_history(0, market.history_start, market.now)
    assert t.size >= 0.3 * 288 - 2 and (np.diff(t) == 300).all()
    assert ((share > 0.2) & (share < 0.8)).all() and np.unique(share).size > 10
    rt, ratio, _ = market.account_ratio(0, 300, None, None, 10**6)
    assert rt.size >= t.size and ((ratio > 0) & (ratio < 1)).all()
    inp = market_inputs(market)
    fine = inp.width == 300.0
    assert np.isfinite(inp.long_share[fine]).mean() > 0.95
    assert np.isnan(inp.long_share[inp.width == 14_400.0]).all()
