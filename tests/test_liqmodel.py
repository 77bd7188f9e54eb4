"""The key-free heatmap estimate (quantcore.math.liqmodel) and its scoring (math.heatmap_eval):
the venue's formula, and properties of the model (hypothesis)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from quantcore.math import heatmap_eval as he
from quantcore.math import liqmodel as lm

prices = st.floats(1e-4, 1e6, allow_nan=False)
leverages = st.floats(1.5, 125.0)
mmrs = st.floats(0.001, 0.05)
DAY = 86_400.0
NOW = 1_000 * DAY


@given(prices, leverages, mmrs)
def test_liquidation_price_sides_and_venue_formula(entry: float, lev: float, mmr: float) -> None:
    long_liq = float(lm.liquidation_price(entry, lev, 1, mmr))
    short_liq = float(lm.liquidation_price(entry, lev, -1, mmr))
    assert long_liq == pytest.approx(entry * (1 - 1 / lev + mmr))
    assert short_liq == pytest.approx(entry * (1 + 1 / lev - mmr))
    if mmr < 1 / lev:
        assert 0 < long_liq < entry < short_liq


@given(prices, leverages, mmrs)
def test_liquidation_moves_with_leverage_and_margin(entry: float, lev: float, mmr: float) -> None:
    more_lev = lev * 1.5
    assert lm.liquidation_price(entry, more_lev, 1, mmr) > lm.liquidation_price(entry, lev, 1, mmr)
    assert lm.liquidation_price(entry, more_lev, -1, mmr) < lm.liquidation_price(entry, lev, -1, mmr)  # fmt: skip
    assert lm.liquidation_price(entry, lev, 1, mmr * 2) > lm.liquidation_price(entry, lev, 1, mmr)
    assert lm.liquidation_price(entry, lev, -1, mmr * 2) < lm.liquidation_price(entry, lev, -1, mmr)  # fmt: skip


LIMITS, RATES = [2e5, 4e5, 6e5, 8e5, 1e6], [0.01, 0.02, 0.03, 0.04, 0.05]


def test_tier_and_deduction_follow_risk_limit_tiers() -> None:
    got = lm.tier_index([1e3, 2e5, 2e5 + 1, 5e5, 1e9], LIMITS)
    assert got.tolist() == [0, 0, 1, 2, 4]
    # Bybit's mmDeduction for this ladder (as /v5/market/risk-limit serves it): 2000, 6000, …
    assert lm.mm_deduction(LIMITS, RATES).tolist() == pytest.approx([0, 2e3, 6e3, 1.2e4, 2e4])


notionals = st.floats(1e2, 5e6)


@given(prices, notionals, st.floats(1.5, 20.0), st.sampled_from([1, -1]))
@example(100.0, 2e5 + 1, 10.0, 1)  # just into the second tier
def test_liquidation_price_follows_the_tier_of_the_notional(
    entry: float, notional: float, lev: float, side: int
) -> None:
    """Bybit: liq = entry ∓ (IM − MM) / qty, IM = notional / lev, MM = notional · tier rate −
    mmDeduction; the tier is the one the notional falls in. A bigger position (a higher tier)
    liquidates no further from entry, and maintenance margin is continuous across tiers."""
    qty = notional / entry
    k = int(np.searchsorted(LIMITS, notional, side="left"))
    k = min(k, len(RATES) - 1)
    ded = float(lm.mm_deduction(LIMITS, RATES)[k])
    mm = notional * RATES[k] - ded
    venue = entry - side * (notional / lev - mm) / qty
    rate = float(lm.position_mmr(notional, LIMITS, RATES))
    assert float(lm.liquidation_price(entry, lev, side, rate)) == pytest.approx(venue, rel=1e-9)
    assert RATES[0] <= rate <= RATES[k] + 1e-12
    bigger = notional * 1.7
    r2 = float(lm.position_mmr(bigger, LIMITS, RATES))
    assert r2 >= rate - 1e-12  # the rate never falls with size
    further = lm.liquidation_price(entry, lev, side, r2) - lm.liquidation_price(
        entry, lev, side, rate
    )
    assert side * float(further) >= -1e-9 * entry  # a long's rises, a short's falls
    for lim in LIMITS[:-1]:  # MM continuous at every tier limit
        below = lim * float(lm.position_mmr(lim, LIMITS, RATES))
        above = (lim + 1e-3) * float(lm.position_mmr(lim + 1e-3, LIMITS, RATES))
        assert above == pytest.approx(below, rel=1e-6)


def test_higher_tiers_move_the_estimated_levels_by_their_rate() -> None:
    """All tiers are used: with most notional in large positions (SizeDist), levels of a ladder
    whose upper tiers have a higher rate sit nearer the entry than with one flat tier."""
    path = _flat([100.0] * 6)
    flat = _inputs(path, [1e9] * 6)
    ladder = lm.RiskTiers(
        limit=np.array([LIMITS]), mmr=np.array([RATES]), max_leverage=np.full((1, 5), np.nan)
    )
    tiered = replace(flat, tiers=ladder)
    params = lm.ModelParams(
        mix=lm.LeverageMix((10.0,), (1.0,), (30.0,)), sizes=lm.SizeDist(1.2, 1e6), bin_pct=0.05
    )

    def mean_long_liq(inp: lm.ModelInputs) -> float:
        p, v = lm.estimate(inp, params).levels(0, len(lm.TIMEFRAMES) - 1)
        below = p < 100.0
        return float((p[below] * v[below]).sum() / v[below].sum())

    one = mean_long_liq(replace(flat, tiers=lm.RiskTiers.flat([RATES[0]])))
    many = mean_long_liq(tiered)
    assert one == pytest.approx(100.0 * (1 - 0.1 + 0.01), rel=1e-3)
    assert many > one + 0.5  # the upper tiers' rates pull longs' levels up (towards entry)
    share, rate, _ = lm.tier_groups(ladder, params.sizes, 5)
    assert share.sum() == pytest.approx(1.0)
    assert share[0, 0] == 0.0  # every position is above $1 M: the last tier
    assert rate[0, 4] == pytest.approx(0.05 - 2e4 * params.sizes.inv_mean(1e6, np.inf))


def test_tier_max_leverage_caps_the_leverage_of_its_positions() -> None:
    ladder = lm.RiskTiers(
        limit=np.array([[1e5, np.inf]]), mmr=np.array([[0.005, 0.01]]),
        max_leverage=np.array([[100.0, 10.0]]),
    )  # fmt: skip
    sizes = lm.SizeDist(1.5, 1e3)
    share, rate, cap = lm.tier_groups(ladder, sizes, 3)
    assert share[0].tolist() == pytest.approx([1 - (100.0) ** -0.5, (100.0) ** -0.5, 0.0])
    assert cap[0, :2].tolist() == [100.0, 10.0]
    assert rate[0, 1] == pytest.approx(0.01 - 500.0 * sizes.inv_mean(1e5, np.inf))
    inp = replace(_inputs(_flat([100.0] * 6), [1e9] * 6), tiers=ladder)
    params = lm.ModelParams(mix=lm.LeverageMix((5.0, 50.0), (0.5, 0.5), (30.0, 30.0)))
    shares, _ = lm._combos(inp, params, slice(0, 1), np.asarray(params.mix.share))
    # tier 1: 5× and 50× as the mix says; tier 2 (cap 10×): all its notional at 5×
    assert shares[0].tolist() == pytest.approx(
        [share[0, 0] / 2, share[0, 0] / 2, share[0, 1], 0.0, 0.0, 0.0]
    )


def _inputs(
    path: list[tuple[float, float, float]], oi: list[float], width: float = 3600.0,
    now: float | None = None,
) -> lm.ModelInputs:  # fmt: skip
    """One coin, hourly intervals ending at NOW: path of (open, high, low); close = next open."""
    n = len(path)
    end = NOW - width * np.arange(n - 1, -1, -1, dtype=np.float64)
    o = np.array([p[0] for p in path])
    close = np.append(o[1:], o[-1])
    return lm.ModelInputs(
        end=end[None], width=np.full((1, n), width), open=o[None],
        high=np.array([[p[1] for p in path]]), low=np.array([[p[2] for p in path]]),
        close=close[None], oi_usd=np.array([oi], dtype=np.float64),
        long_share=np.full((1, n), np.nan), price=np.array([close[-1]]),
        now=NOW if now is None else now, tiers=lm.RiskTiers.flat([lm.DEFAULT_MMR]),
    )  # fmt: skip


flat_paths = st.lists(st.floats(90.0, 110.0), min_size=3, max_size=40)


def _flat(opens: list[float]) -> list[tuple[float, float, float]]:
    return [(p, p * 1.001, p * 0.999) for p in opens]


@settings(max_examples=40, deadline=None)
@given(flat_paths, st.floats(1e6, 1e9))
def test_levels_positive_and_on_their_side(opens: list[float], oi: float) -> None:
    inp = _inputs(_flat(opens), [oi] * len(opens))
    grid = lm.estimate(inp)
    price = float(inp.price[0])
    for t in range(grid.value.shape[1]):
        p, v = grid.levels(0, t)
        assert (p > 0).all() and (v > 0).all() and np.isfinite(v).all()
    assert (grid.value >= 0).all()
    # timeframes are nested: a longer one holds at least what a shorter one does
    assert (np.diff(grid.value, axis=1) >= -1e-6).all()
    assert price > 0


@settings(max_examples=40, deadline=None)
@given(flat_paths, st.floats(0.5, 0.95))
@example(opens=[90.0, 103.453125, 103.859375], crash=0.5)  # a 100x long opened at the close
def test_levels_vanish_when_price_trades_through(opens: list[float], crash: float) -> None:
    """A last interval that wicks down to `crash` × price takes out every long level above it
    (5-minute intervals: positions enter at the open, so the wick reaches the last ones too)."""
    path = _flat(opens)
    o = path[-1][0]
    path[-1] = (o, o * 1.001, o * crash)
    inp = _inputs(path, [1e8] * len(path), width=300.0)
    grid = lm.estimate(inp)
    p, v = grid.levels(0, len(grid.value[0]) - 1)
    low = o * crash
    price = float(inp.price[0])
    longs = p < price
    step = math.exp(grid.step)
    # positions opened at the interval's close (after the wick; the entry setting may pick the
    # close) liquidate within ~1 % below it at the mix's top leverage (100x): not "traded through"
    after_wick = p >= price * 0.985
    assert not ((p[longs] > low * step) & ~after_wick[longs] & (v[longs] > 0)).any()


@settings(max_examples=40, deadline=None)
@given(flat_paths, st.floats(0.2, 0.9))
def test_oi_decrease_shrinks_levels(opens: list[float], fall: float) -> None:
    n = len(opens)
    steady = lm.estimate(_inputs(_flat(opens), [1e8] * n))
    falling = lm.estimate(_inputs(_flat(opens), [1e8] * (n - 1) + [1e8 * fall]))
    assert (falling.value <= steady.value + 1e-6).all()
    assert falling.value.sum() < steady.value.sum()


@settings(max_examples=25, deadline=None)
@given(flat_paths, st.integers(1, 20))
def test_as_of_t_sees_nothing_later(opens: list[float], hidden: int) -> None:
    """Intervals after `now` change nothing: the backtester's view of a past moment."""
    hidden = min(hidden, len(opens) - 1)
    path = _flat(opens)
    full = _inputs(path, [1e8] * len(path))
    t = NOW - 3600.0 * hidden
    cut = lm.ModelInputs(
        end=full.end[:, :-hidden], width=full.width[:, :-hidden], open=full.open[:, :-hidden],
        high=full.high[:, :-hidden], low=full.low[:, :-hidden], close=full.close[:, :-hidden],
        oi_usd=full.oi_usd[:, :-hidden], long_share=full.long_share[:, :-hidden],
        price=full.price, now=t, tiers=full.tiers,
    )  # fmt: skip
    crash = [(p[0], p[1], p[2] * 0.5) for p in path]
    later_crash = replace(_inputs(path[:-hidden] + crash[-hidden:], [1e8] * len(path)), now=t)
    assert np.allclose(lm.estimate(cut).value, lm.estimate(later_crash).value)


def test_short_history_is_partial_and_empty_coin_has_no_levels() -> None:
    inp = _inputs(_flat([100.0] * 24), [1e8] * 24)  # one day: a coin listed yesterday
    two = lm.ModelInputs(
        end=np.vstack((inp.end, np.zeros_like(inp.end))),
        width=np.vstack((inp.width, np.zeros_like(inp.width))),
        open=np.vstack((inp.open, np.full_like(inp.open, np.nan))),
        high=np.vstack((inp.high, np.full_like(inp.high, np.nan))),
        low=np.vstack((inp.low, np.full_like(inp.low, np.nan))),
        close=np.vstack((inp.close, np.full_like(inp.close, np.nan))),
        oi_usd=np.vstack((inp.oi_usd, np.full_like(inp.oi_usd, np.nan))),
        long_share=np.vstack((inp.long_share, inp.long_share)),
        price=np.array([100.0, 50.0]), now=NOW, tiers=lm.RiskTiers.flat([0.005, 0.005]),
    )  # fmt: skip
    grid = lm.estimate(two)
    assert grid.partial.tolist() == [True, True]
    assert grid.covered_s[0] == pytest.approx(DAY)
    assert grid.value[0].sum() > 0
    assert grid.value[1].sum() == 0  # nothing known: no levels, not made-up ones


def test_leverage_mix_setting_is_validated_and_parsed() -> None:
    mix = lm.LeverageMix.parse("10:0.5:5, 50:0.5:1")
    assert mix.leverage == (10.0, 50.0) and mix.hold_days == (5.0, 1.0)
    with pytest.raises(ValueError, match="sum to 1"):
        lm.LeverageMix.parse("10:0.5:5")
    with pytest.raises(ValueError, match="above 1"):
        lm.LeverageMix((1.0,), (1.0,), (1.0,))


def test_naive_baseline_sits_around_price() -> None:
    grid = lm.naive([100.0], [1e8])
    p, v = grid.levels(0, 0)
    assert v.sum() > 0
    assert np.allclose(grid.value[0, 0], grid.value[0, -1])
    assert p.min() > 65.0 and p.max() < 135.0


# --- scoring ----------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.7, 1.3), st.floats(1.0, 1e6)), min_size=1, max_size=30))
def test_identical_heatmaps_score_perfectly(levels: list[tuple[float, float]]) -> None:
    p = np.array([x[0] for x in levels]) * 100.0
    v = np.array([x[1] for x in levels])
    s = he.score_row(p, v, p, v, 100.0)
    assert s.precision == 1.0 and s.recall == 1.0 and s.largest_err_pct == 0.0


def test_scores_count_clusters_within_tolerance() -> None:
    true_p, true_v = np.array([90.0, 110.0, 120.0]), np.array([3.0, 2.0, 1.0])
    est_p, est_v = np.array([90.5, 112.5]), np.array([3.0, 2.0])  # 0.6 % and 2.3 % away
    s = he.score_row(est_p, est_v, true_p, true_v, 100.0, tol_pct=1.0)
    assert s.precision == 0.5
    assert s.recall == pytest.approx(1 / 3)
    assert s.largest_err_pct == pytest.approx(0.5, abs=0.3)


def test_spearman() -> None:
    assert he.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert he.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(he.spearman([1, 2], [1, 2]))


def test_reach_times_first_candle_holding_the_price() -> None:
    at = he.reach_times([105.0, 95.0, 200.0], [0, 60, 120], [99, 100, 94], [101, 106, 100])
    assert at[0] == 60 and at[1] == 120 and math.isnan(at[2])


def test_realised_precision_and_recall() -> None:
    clusters = np.array([105.0, 95.0, 120.0])
    reached = np.array([60.0, 120.0, np.nan])
    # liquidations: at 105.5 soon after it was reached, at 95 two hours later, one elsewhere
    lt = np.array([100.0, 120.0 + 7200.0, 130.0])
    lp = np.array([105.5, 95.0, 80.0])
    lv = np.array([3.0, 1.0, 4.0])
    r = he.realised(clusters, reached, lt, lp, lv, tol_pct=1.0, window_s=3600.0)
    assert (r.reached, r.hit) == (2, 1)
    assert r.value_in == 4.0 and r.value_total == 8.0
    assert r.precision_pct == 50.0 and r.recall_pct == 50.0
    assert (r + r).reached == 4


@given(
    buy=st.floats(min_value=0, max_value=1e6),
    sell=st.floats(min_value=0, max_value=1e6),
    ratio=st.floats(min_value=0, max_value=1) | st.just(float("nan")),
    w=st.floats(min_value=0, max_value=1),
)
def test_long_share_is_a_share_from_what_is_known(
    buy: float, sell: float, ratio: float, w: float
) -> None:
    share = float(lm.long_share([buy], [sell], [ratio], w)[0])
    if buy + sell > 0:
        assert 0.0 <= share <= 1.0
        if w == 0 or math.isnan(ratio):
            assert share == pytest.approx(buy / (buy + sell))
    elif math.isnan(ratio) or w == 0:
        assert math.isnan(share)  # nothing known: unknown (the model's 0.5), never a zero
    else:
        assert share == pytest.approx(0.5 + w * (ratio - 0.5))
