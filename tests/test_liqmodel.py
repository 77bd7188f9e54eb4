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


def test_tier_mmr_follows_risk_limit_tiers() -> None:
    limits, rates = [2e6, 4e6, 6e6], [0.005, 0.01, 0.015]
    got = lm.tier_mmr([1e3, 2e6, 2e6 + 1, 5e6, 1e9], limits, rates)
    assert got.tolist() == [0.005, 0.005, 0.01, 0.015, 0.015]


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
        now=NOW if now is None else now, mmr=np.array([lm.DEFAULT_MMR]),
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
        price=full.price, now=t, mmr=full.mmr,
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
        price=np.array([100.0, 50.0]), now=NOW, mmr=np.array([0.005, 0.005]),
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
