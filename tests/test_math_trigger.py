"""The coin-specific trigger (quantcore.math.trigger): worked examples and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from quantcore.math import spikes
from quantcore.math import trigger as tm

FLOORS = (3.0, 1.5, 1.0)
MINUTES = 240


def market(
    rng: np.random.Generator, coins: int, minutes: int, move_sd: float
) -> tuple[np.ndarray, ...]:
    """(oi, volume, close) random walks of `coins` coins, per-minute log sd `move_sd`."""
    close = 100 * np.exp(np.cumsum(rng.normal(0, move_sd, (coins, minutes)), axis=1))
    oi = 1e6 * np.exp(np.cumsum(rng.normal(0, 0.002, (coins, minutes)), axis=1))
    volume = rng.lognormal(10, 0.3, (coins, minutes))
    return oi, volume, close


def hunt(oi: np.ndarray, volume: np.ndarray, close: np.ndarray, move_pct: float) -> None:
    """A whale push in the last minutes, in place: OI +6 % over 15 min, 4× volume for 5 min,
    price up `move_pct` over 5 min."""
    oi[:, -15:] *= np.linspace(1.004, 1.06, 15)
    volume[:, -5:] *= 4
    close[:, -5:] *= np.linspace(1 + move_pct / 500, 1 + move_pct / 100, 5)


def test_a_two_percent_push_fires_on_a_calm_coin_and_not_on_a_wild_one() -> None:
    rng = np.random.default_rng(7)
    calm = market(rng, 1, MINUTES, 0.0008)  # 5-min moves ~0.2 %
    wild = market(rng, 1, MINUTES, 0.02)  # 5-min moves ~4 %: a 2 % push is noise here
    for oi, vol, close in (calm, wild):
        hunt(oi, vol, close, 2.0)
    oi, vol, close = (np.concatenate(x) for x in zip(calm, wild, strict=True))
    ev = tm.evaluate(oi, vol, close, FLOORS)
    assert ev.fires("fixed", ["long", "long"]).tolist() == [True, True]
    assert ev.fires("coin", ["long", "long"]).tolist() == [True, False]
    assert ev.coin.move_pct[0] == FLOORS[2]  # the calm coin's own p95 is below the SPEC's 1 %
    assert ev.coin.move_pct[1] > 2.0
    assert ev.fires("coin", ["short", "short"]).tolist() == [False, False]  # wrong direction


def test_too_little_history_means_the_fixed_numbers() -> None:
    rng = np.random.default_rng(3)
    oi, vol, close = market(rng, 2, 70, 0.02)
    ev = tm.evaluate(oi, vol, close, FLOORS, min_samples=60)
    assert ev.coin.volume_ratio.tolist() == [1.5, 1.5]  # 10 ratio samples < 60
    assert ev.samples[:, 1].tolist() == [10, 10]
    assert (ev.samples[:, 0] == 70 - 15 - 1).all() and (ev.coin.oi_pct >= 3.0).all()


def test_volume_ratio_history_ends_at_spikes_volume_ratio() -> None:
    rng = np.random.default_rng(1)
    v = rng.lognormal(5, 1, (3, 120))
    v[1, 30:40] = np.nan  # missing minutes
    rolling = spikes.volume_ratio_history(v)
    assert rolling.shape == (3, 61)
    np.testing.assert_allclose(rolling[:, -1], spikes.volume_ratio(v))
    np.testing.assert_allclose(rolling[:, -2], spikes.volume_ratio(v[:, :-1]))


finite = st.floats(-50, 50, allow_nan=False)
series = arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(16, 150)),
                elements=st.floats(0.5, 2.0))  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    base=series,
    seed=st.integers(0, 2**31),
    floors=st.tuples(st.floats(0, 10), st.floats(0, 5), st.floats(0, 5)),
    q=st.floats(50, 99.9),
    min_samples=st.integers(1, 100),
)
def test_coin_mode_is_never_weaker_than_the_fixed_numbers(
    base: np.ndarray, seed: int, floors: tuple[float, float, float], q: float, min_samples: int
) -> None:
    rng = np.random.default_rng(seed)
    oi = np.cumprod(base, axis=1)
    vol = base * rng.lognormal(3, 1, base.shape)
    close = np.cumprod(base[:, ::-1], axis=1)
    ev = tm.evaluate(oi, vol, close, floors, q, min_samples)
    for t, floor in ((ev.coin.oi_pct, floors[0]), (ev.coin.volume_ratio, floors[1]),
                     (ev.coin.move_pct, floors[2])):  # fmt: skip
        assert np.isfinite(t).all() and (t >= floor).all()
    # every coin-mode signal is a fixed-mode signal too, in both directions
    for d in ("long", "short"):
        dirs = [d] * base.shape[0]
        assert not (ev.fires("coin", dirs) & ~ev.fires("fixed", dirs)).any()
    assert not ev.fires("coin", ["neutral"] * base.shape[0]).any()


@settings(max_examples=60, deadline=None)
@given(base=series, seed=st.integers(0, 2**31), price_scale=st.floats(1e-4, 1e4),
       volume_scale=st.floats(1e-3, 1e3))  # fmt: skip
def test_thresholds_do_not_depend_on_the_units(
    base: np.ndarray, seed: int, price_scale: float, volume_scale: float
) -> None:
    """A coin priced in cents or in thousands, traded in lots or in units: same thresholds."""
    rng = np.random.default_rng(seed)
    oi, close = np.cumprod(base, axis=1), np.cumprod(base[:, ::-1], axis=1)
    vol = rng.lognormal(3, 1, base.shape)
    a = tm.coin_thresholds(oi, vol, close, FLOORS, 90, 5)[0]
    b = tm.coin_thresholds(
        oi * price_scale, vol * volume_scale, close * price_scale, FLOORS, 90, 5
    )[0]
    for x, y in ((a.oi_pct, b.oi_pct), (a.volume_ratio, b.volume_ratio), (a.move_pct, b.move_pct)):
        np.testing.assert_allclose(x, y, rtol=1e-6)


@settings(max_examples=60, deadline=None)
@given(base=series, seed=st.integers(0, 2**31), k=st.floats(1.0, 5.0))
def test_a_wilder_history_never_lowers_the_move_threshold(
    base: np.ndarray, seed: int, k: float
) -> None:
    """Scaling every log-move of the past by k ≥ 1 can only raise the coin's move bar."""
    rng = np.random.default_rng(seed)
    logs = np.log(base)
    close, wilder = np.exp(np.cumsum(logs, axis=1)), np.exp(np.cumsum(logs * k, axis=1))
    oi, vol = np.ones_like(base), rng.lognormal(3, 1, base.shape)
    a = tm.coin_thresholds(oi, vol, close, FLOORS, 95, 5)[0]
    b = tm.coin_thresholds(oi, vol, wilder, FLOORS, 95, 5)[0]
    assert (b.move_pct >= a.move_pct - 1e-9).all()


@given(oi=finite, vr=st.floats(0, 10), mv=finite, d=st.sampled_from(["long", "short", "neutral"]))
def test_fires_matches_the_spec_sentence(oi: float, vr: float, mv: float, d: str) -> None:
    t = tm.Thresholds(np.array([3.0]), np.array([1.5]), np.array([1.0]))
    moving = {"long": mv > 1.0, "short": mv < -1.0, "neutral": False}[d]
    assert bool(tm.fires([oi], [vr], [mv], [d], t)[0]) == (oi > 3.0 and vr > 1.5 and moving)
    assert not tm.fires([np.nan], [vr], [mv], [d], t)[0]  # an unknown measure never fires


def test_percentile_mode_example() -> None:
    """The coin's bar is its own 95th percentile when that is above the floor."""
    close = 100 * np.exp(np.cumsum(np.tile([0.0, 0.01, -0.01, 0.0], 50)))[None, :]
    oi, vol = np.ones_like(close), np.ones_like(close)
    t = tm.coin_thresholds(oi, vol, close, (0.0, 0.0, 0.0), 95, 10)[0]
    moves = np.abs(spikes.rolling_pct_changes(close, 5))[:, :-1]
    assert t.move_pct[0] == pytest.approx(np.percentile(moves, 95))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 10_000), max_size=8),
    st.integers(0, 10_000),
    st.integers(-10, 5_000),
)
def test_the_cooldown_rule_is_any_earlier_signal_within_the_window(
    times: list[int], at: int, cooldown: int
) -> None:
    """in_cooldown on the last signal at or before `at` is the same as "some signal lies in
    (at − cooldown, at]" (what the ranker's table query and the hunter's replay both mean)."""
    earlier = [t for t in times if t <= at]
    last = float(max(earlier)) if earlier else None
    any_within = cooldown > 0 and any(at - cooldown < t <= at for t in times)
    assert tm.in_cooldown(last, float(at), float(cooldown)) is any_within
    assert tm.in_cooldown(None, float(at), float(cooldown)) is False
