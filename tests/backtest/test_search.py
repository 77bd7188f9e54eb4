"""Random search: seeded draws from a strategy's declared (or narrowed) ranges — the same
points for the same seed, every point inside its ranges and valid, a grown search keeps the
points of the smaller one, and ranges outside what the plug-in declares are refused."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field

from quantcore.backtest.runner import (
    BadInput,
    declared_bounds,
    make_strategy,
    parse_space,
    random_points,
    search_axes,
)
from quantcore.strategies import (
    BUILTIN,
    Bars,
    SignalFrame,
    Strategy,
    StrategyParams,
    strategy_names,
)


def draw(name: str, items: list[str], n: int, seed: int) -> list[dict[str, object]]:
    return random_points(name, {}, search_axes(name, parse_space(items)), n, seed)


def test_the_same_seed_draws_the_same_points_another_seed_others() -> None:
    items = ["fast=2..40", "slow=20..400", "sl_pct=0.5..5"]
    a, b = draw("sma_cross", items, 12, 7), draw("sma_cross", items, 12, 7)
    assert a == b and len(a) == 12
    assert draw("sma_cross", items, 12, 8) != a
    assert len({tuple(sorted(p.items())) for p in a}) == 12  # distinct


def test_a_grown_search_starts_with_the_smaller_one() -> None:
    items = ["fast=2..40", "slow=20..400"]
    assert draw("sma_cross", items, 20, 3)[:8] == draw("sma_cross", items, 8, 3)


@pytest.mark.parametrize("name", ["sma_cross", "scanner_oi"])
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_default_space_stays_inside_the_declared_ranges(name: str, seed: int) -> None:
    bounds = declared_bounds(name)
    points = random_points(name, {}, search_axes(name, {}), 10, seed)
    assert len(points) == 10
    for p in points:
        make_strategy(name, p)  # valid, cross-field rules included (fast < slow)
        assert set(p) == {
            k for k, (lo, hi, _) in bounds.items() if lo is not None and hi is not None
        }
        for k, v in p.items():
            lo, hi, kind = bounds[k]
            assert lo is not None and hi is not None and lo <= v <= hi
            assert isinstance(v, int) if kind == "int" else isinstance(v, float)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    lo=st.floats(0.01, 10),
    width=st.floats(0, 40),
    fast_hi=st.integers(2, 60),
)
def test_narrowed_ranges_hold(seed: int, lo: float, width: float, fast_hi: int) -> None:
    items = [f"sl_pct={lo!r}..{lo + width!r}", f"fast=1..{fast_hi}", "slow=61..90", "tp_pct=2,4"]
    for p in draw("sma_cross", items, 5, seed):
        assert lo <= p["sl_pct"] <= lo + width  # type: ignore[operator]
        assert 1 <= p["fast"] <= fast_hi and 61 <= p["slow"] <= 90  # type: ignore[operator]
        assert p["tp_pct"] in (2, 4)


def test_a_small_space_gives_what_it_holds() -> None:
    points = draw("sma_cross", ["fast=3..4", "slow=10..11"], 50, 1)
    assert sorted((p["fast"], p["slow"]) for p in points) == [(3, 10), (3, 11), (4, 10), (4, 11)]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["fast=0..10"], "fast 0..10 is outside its declared range 1..10000"),
        (["sl_pct=1..80"], "sl_pct 1..80 is outside its declared range 0..50"),
        (["fast=10..2"], "the range 10..2 is empty"),
        (["fast=a..b"], "a range is LOW..HIGH"),
        (["nope=1..2"], "no setting 'nope'"),
        (["fast=0,5"], "fast=0 is outside its declared range"),
        (["fast=2.2..2.8"], "holds no whole number"),
        (["fast=50..60", "slow=10..20"], "no valid setting in"),  # fast < slow never holds
    ],
)
def test_refused_spaces(items: list[str], message: str) -> None:
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(".", r"\.")):
        draw("sma_cross", items, 3, 0)


def test_every_builtin_strategy_has_a_default_space() -> None:
    for name in strategy_names():
        assert search_axes(name, {}), name


class _KnobsParams(StrategyParams):
    window: int = Field(20, ge=5, le=50)
    mode: Literal["fast", "slow", "both"] = "both"
    flip: bool = False
    note: str = "settings without a range are left alone"


class _Knobs(Strategy[_KnobsParams]):
    """A test plug-in with every kind of setting a search draws."""

    name = "test_knobs"
    version = "1"
    params_model = _KnobsParams

    def signals(self, bars: Bars) -> SignalFrame:
        return SignalFrame(entry=np.zeros(len(bars), dtype=np.int8))


def test_booleans_and_literals_are_drawn_from_their_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(BUILTIN, _Knobs.name, _Knobs)  # registered like a built-in
    axes = {a.name: a for a in search_axes("test_knobs", {})}
    assert set(axes) == {"window", "mode", "flip"}
    assert axes["mode"].choices == ("fast", "slow", "both")
    points = random_points("test_knobs", {}, list(axes.values()), 40, 5)
    assert {p["mode"] for p in points} == {"fast", "slow", "both"}
    assert {p["flip"] for p in points} == {True, False}
    assert all(5 <= p["window"] <= 50 and "note" not in p for p in points)
    with pytest.raises(BadInput, match="'mode' is not a numeric setting"):
        search_axes("test_knobs", parse_space(["mode=1..2"]))
