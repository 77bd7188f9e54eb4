"""Strategy math: the owner's worked examples (blueprint part 5) and properties (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from quantcore.math import clusters, imbalance, levels, ranking
from quantcore.math.wicks import wick_stats

# --- worked examples ---------------------------------------------------------------------------


def test_imbalance_example_500m_vs_200m() -> None:
    r = float(imbalance.ratio(500e6, 200e6))
    assert r == pytest.approx(0.714, abs=5e-4)
    assert imbalance.direction(r) == "long"  # shorts above dominate: price is hunted up


def test_imbalance_from_levels_around_115k() -> None:
    prices = [116_300, 120_000, 130_000, 110_000, 114_000]
    values = [239e6, 161e6, 100e6, 120e6, 80e6]
    shorts, longs = imbalance.side_totals(prices, values, 115_000)
    assert (float(shorts), float(longs)) == (500e6, 200e6)


def test_cluster_size_example_239m_vs_typical_150m() -> None:
    assert float(ranking.cluster_size_pct(239e6, 150e6)) == pytest.approx(159.3, abs=0.05)


def test_score_example() -> None:
    assert float(ranking.score(0.714, 159, 0.85)) == pytest.approx(100.4)


def test_score_caps_cluster_size_at_200_pct() -> None:
    assert float(ranking.score(0.5, 900, 0)) == float(ranking.score(0.5, 200, 0)) == 25 + 60


def test_entry_examples() -> None:
    assert levels.entry_price("long", 116_000, 117_000, "conservative") == pytest.approx(113_680)
    assert levels.entry_price("long", 116_000, 117_000, "aggressive") == 116_000
    assert levels.entry_price("short", 100_000, 102_000, "conservative") == pytest.approx(104_040)


def test_take_profit_example() -> None:
    assert levels.take_profit("long", 116_000, 117_000) == pytest.approx(115_917.5)
    assert levels.take_profit("short", 100_000, 102_000) == pytest.approx(101_505)


def test_stop_loss_example_wider_of_wick_and_cluster() -> None:
    entry = 113_680
    wick = levels.wick_stop("long", entry, 8.0)
    cluster = levels.cluster_stop("long", 110_000)
    assert wick == pytest.approx(104_585.6)
    assert cluster == pytest.approx(107_800)
    assert levels.stop_loss("long", entry, 8.0, 110_000) == pytest.approx(
        104_585.6
    )  # the wider one
    # with a 2 % wick the cluster stop is wider and wins
    assert levels.stop_loss("long", entry, 2.0, 110_000) == pytest.approx(107_800)
    assert levels.stop_loss("short", 100_000, 3.0, 106_000) == pytest.approx(108_120)


def test_clusters_merge_adjacent_levels_per_side() -> None:
    prices = [[99.0, 99.3, 95.0, 101.0, 101.2, 101.4, 110.0, np.nan]]
    values = [[1, 2, 4, 10, 20, 30, 5, 0]]
    c = clusters.merge(prices, values, [100.0], merge_pct=0.5)
    got = sorted(
        zip(
            c.side.tolist(),
            c.price_low.tolist(),
            c.price_high.tolist(),
            c.value.tolist(),
            strict=True,
        )
    )
    assert got == [
        (-1, 95.0, 95.0, 4.0),
        (-1, 99.0, 99.3, 3.0),
        (1, 101.0, 101.4, 60.0),
        (1, 110.0, 110.0, 5.0),
    ]
    best_short = clusters.largest(c, 1, 1)[0]
    assert (c.price_low[best_short], c.price_high[best_short]) == (101.0, 101.4)
    nxt = clusters.next_opposite(c, 0, 1, 100.0)
    assert c.price_high[nxt] == 99.3  # the nearest long cluster below


def test_wick_stats() -> None:
    w = wick_stats([100, 100], [110, 101], [99, 92], [105, 100])
    assert w.max_up_pct == pytest.approx(100 * 5 / 105)
    assert w.max_down_pct == pytest.approx(8.0)
    assert w.candles == 2


# --- properties -------------------------------------------------------------------------------

money = st.floats(min_value=0, max_value=1e12, allow_nan=False)
level_arrays = st.integers(1, 40).flatmap(
    lambda n: st.tuples(
        arrays(np.float64, n, elements=st.floats(1, 1000, allow_nan=False)),
        arrays(np.float64, n, elements=st.floats(0, 1e9, allow_nan=False)),
        st.floats(1, 1000, allow_nan=False),
    )
)


@given(money, money)
def test_imbalance_is_between_0_and_1(s: float, lo: float) -> None:
    assert 0.0 <= float(imbalance.ratio(s, lo)) <= 1.0


@given(level_arrays)
def test_mirroring_levels_flips_direction_and_keeps_strength(
    data: tuple[np.ndarray, np.ndarray, float],
) -> None:
    prices, values, price = data
    mirrored = 2 * price - prices
    r = float(imbalance.ratio(*imbalance.side_totals(prices, values, price)))
    m = float(imbalance.ratio(*imbalance.side_totals(mirrored, values, price)))
    assert m == pytest.approx(1 - r, abs=1e-9)
    assert float(imbalance.strength(m)) == pytest.approx(float(imbalance.strength(r)), abs=1e-9)
    flip = {"long": "short", "short": "long", "neutral": "neutral"}
    if abs(r - 0.5) > 1e-9:
        assert imbalance.direction(m) == flip[imbalance.direction(r)]


@given(level_arrays, st.floats(0.01, 5))
def test_merging_conserves_total_value(
    data: tuple[np.ndarray, np.ndarray, float], merge_pct: float
) -> None:
    prices, values, price = data
    c = clusters.merge(prices[None, :], values[None, :], [price], merge_pct)
    expected = values[(prices != price) & (values > 0)].sum()
    assert c.value.sum() == pytest.approx(expected, rel=1e-9, abs=1e-6)
    assert (c.price_low <= c.price_high).all()
    assert ((c.side == 1) == (c.price_low > price)).all()  # never straddles the price


@settings(max_examples=50)
@given(
    st.lists(st.tuples(st.from_regex(r"[A-Z]{3,5}USDT", fullmatch=True), st.floats(-10, 200)),
             min_size=1, max_size=30, unique_by=lambda t: t[0]),
    st.randoms(),
)  # fmt: skip
def test_ranking_is_invariant_to_input_order(coins: list[tuple[str, float]], rnd: object) -> None:
    symbols, scores = zip(*coins, strict=True)
    order = [symbols[i] for i in ranking.rank(list(symbols), list(scores))]
    shuffled = list(coins)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    s2, sc2 = zip(*shuffled, strict=True)
    assert [s2[i] for i in ranking.rank(list(s2), list(sc2))] == order


# --- spikes -----------------------------------------------------------------------------------


def test_fixed_and_coin_specific_modes_disagree_where_they_should() -> None:
    from quantcore.math.spikes import fast_movers

    rng = np.random.default_rng(3)
    minutes = 240
    calm = 100 * np.cumprod(1 + rng.normal(0, 0.0005, minutes))  # ~0.05 %/min coin
    wild = 100 * np.cumprod(1 + rng.normal(0, 0.02, minutes))  # ~2 %/min coin
    calm[-1] = calm[-2] * 1.015  # +1.5 %: under the fixed 2 % bar, enormous for this coin
    wild[-1] = wild[-2] * 1.025  # +2.5 %: over the fixed bar, ordinary for this coin
    f = fast_movers(np.vstack([calm, wild]))
    assert f.fixed.tolist() == [False, True]
    assert f.coin_specific.tolist() == [True, False]


def test_oi_volume_spike_and_trigger() -> None:
    from quantcore.math.spikes import oi_volume_spikes
    from quantcore.math.trigger import Thresholds, fires

    oi = np.full((1, 120), 1000.0)
    oi[0, -15:] = np.linspace(1000, 1050, 15)  # +5 % in 15 min
    vol = np.full((1, 120), 10.0)
    vol[0, -5:] = 40.0  # 4x the hour's 5-min average
    s = oi_volume_spikes(oi, vol)
    assert s.oi_15m_pct[0] == pytest.approx(5.0)
    assert s.vol_ratio[0] > 1.5
    assert s.fixed[0]
    spec = Thresholds(np.array([3.0]), np.array([1.5]), np.array([1.0]))
    assert fires([5.0], [3.0], [1.2], ["long"], spec)[0]
    assert not fires([5.0], [3.0], [1.2], ["short"], spec)[0]  # price moving against the bias
    assert not fires([2.0], [3.0], [1.2], ["long"], spec)[0]  # OI not building


def test_universe_evaluation_picks_the_biggest_cluster_on_the_bias_side() -> None:
    from quantcore.math.universe import evaluate

    nan = np.nan
    # coin A: big shorts above 100 (long bias); coin B: mirror image (short bias)
    prices = np.array([
        [[101, 101.2, 105, 97, nan], [101, 101.3, nan, nan, nan]],
        [[99, 98.8, 95, 103, nan], [99, 98.7, nan, nan, nan]],
    ])  # fmt: skip
    values = np.array([
        [[50, 60, 10, 20, 0], [40, 30, 0, 0, 0]],
        [[50, 60, 10, 20, 0], [40, 30, 0, 0, 0]],
    ], dtype=float)  # fmt: skip
    ev = evaluate(["AUSDT", "BUSDT"], prices, values, [100, 100], [1, 1], [100, 100], [0.5, 0.5])
    assert ev.direction == ["long", "short"]
    assert ev.dominant[0] == pytest.approx(ev.dominant[1])
    assert (ev.target_low[0], ev.target_high[0], ev.target_value[0]) == (101, 101.2, 110)
    assert (ev.target_low[1], ev.target_high[1], ev.target_value[1]) == (98.8, 99, 110)
    assert ev.score[0] == pytest.approx(ev.score[1])
    assert [ev.symbols[i] for i in ev.order] == ["AUSDT", "BUSDT"]  # tie broken by symbol


@given(level_arrays)
def test_side_totals_from_clusters_equal_those_from_levels(
    data: tuple[np.ndarray, np.ndarray, float],
) -> None:
    prices, values, price = data
    c = clusters.merge(prices[None, :], values[None, :], [price])
    (s1,), (l1,) = clusters.side_totals(c, 1)
    s2, l2 = imbalance.side_totals(prices, values, price)
    assert s1 == pytest.approx(float(s2), rel=1e-9, abs=1e-6)
    assert l1 == pytest.approx(float(l2), rel=1e-9, abs=1e-6)


@given(level_arrays)
def test_merge_gives_the_same_clusters_for_shuffled_levels(
    data: tuple[np.ndarray, np.ndarray, float],
) -> None:
    prices, values, price = data
    a = clusters.merge(prices[None, :], values[None, :], [price])
    order = np.random.default_rng(0).permutation(prices.size)
    b = clusters.merge(prices[order][None, :], values[order][None, :], [price])
    assert np.allclose(a.value, b.value) and np.array_equal(a.price_low, b.price_low)


# --- the fast merge: blocks, levels at the price, the segmented max ------------------------------

grid_rows = st.integers(1, 12).flatmap(
    lambda rows: st.integers(1, 30).flatmap(
        lambda width: st.tuples(
            # prices on a coarse grid around 100, so levels at the price and ties are common
            arrays(np.float64, (rows, width),
                   elements=st.sampled_from([97.0, 98.5, 99.0, 99.4, 100.0, 100.3, 100.5, 102.0,
                                             np.nan])),
            arrays(np.float64, (rows, width), elements=st.sampled_from([0.0, 1.0, 2.5, 7.0])),
            arrays(np.float64, rows, elements=st.sampled_from([99.0, 100.0, 100.3, np.nan])),
            st.booleans(),
        )
    )
)  # fmt: skip


def _same(a: clusters.Clusters, b: clusters.Clusters) -> None:
    for name in ("row", "side", "price_low", "price_high", "value", "level_count"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name


@given(grid_rows, st.integers(1, 64))
def test_merging_in_blocks_of_rows_gives_the_same_clusters(
    data: tuple[np.ndarray, np.ndarray, np.ndarray, bool], block: int
) -> None:
    prices, values, price, presort = data
    if presort:
        prices = np.sort(prices, axis=1)
    whole = clusters.merge(prices, values, price)
    saved = clusters.BLOCK_SLOTS
    clusters.BLOCK_SLOTS = block  # a block of block // width rows (at least one)
    try:
        blocked = clusters.merge(prices, values, price)
    finally:
        clusters.BLOCK_SLOTS = saved
    _same(whole, blocked)


@given(grid_rows)
def test_levels_at_the_price_are_as_if_removed_beforehand(
    data: tuple[np.ndarray, np.ndarray, np.ndarray, bool],
) -> None:
    prices, values, price, _ = data
    with np.errstate(invalid="ignore"):
        removed = np.where(prices == price[:, None], np.nan, prices)
    _same(clusters.merge(prices, values, price), clusters.merge(removed, values, price))


@given(
    st.lists(st.tuples(st.integers(0, 6), st.sampled_from([1.0, 2.0, 3.0]), st.booleans()),
             max_size=40)
)  # fmt: skip
def test_largest_per_group_is_the_last_largest_wanted(items: list[tuple[int, float, bool]]) -> None:
    items = sorted(items, key=lambda t: t[0])  # groups non-decreasing, as clusters come
    group = np.array([g for g, _, _ in items], dtype=np.int64)
    value = np.array([v for _, v, _ in items], dtype=np.float64)
    wanted = np.array([w for _, _, w in items], dtype=bool)
    got = clusters.largest_per_group(group, value, wanted, 7)
    for g in range(7):
        mine = [k for k, (gg, _, w) in enumerate(items) if gg == g and w]
        top = max((items[k][1] for k in mine), default=None)
        expect = max((k for k in mine if items[k][1] == top), default=-1)
        assert got[g] == expect
