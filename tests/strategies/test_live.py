"""The live side of the plug-ins: STRATEGIES parsing and refusals, and the decisions on newly
closed bars — the backtest's decisions, bar for bar."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from quantcore.backtest.tapes import sim_tape
from quantcore.strategies.base import Bars, SignalFrame, Strategy, StrategyParams
from quantcore.strategies.live import (
    Cursor,
    StrategyError,
    new_decisions,
    parse_spec,
    signal_id,
    strategies_from,
)


def test_spec_names_and_settings() -> None:
    assert parse_spec("scanner_oi, sma_cross(fast=5, slow=20)") == [
        ("scanner_oi", {}),
        ("sma_cross", {"fast": 5, "slow": 20}),
    ]
    assert parse_spec("scanner_oi(sl_pct=null,tp_pct=2.5)") == [
        ("scanner_oi", {"sl_pct": None, "tp_pct": 2.5})
    ]
    built = strategies_from("sma_cross(fast=3,slow=7)")
    assert (built[0].name, built[0].version, built[0].params.model_dump()["slow"]) == (
        "sma_cross", "1", 7,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("nope", "unknown strategy 'nope' (known: "),
        (
            "sma_cross(fast=30,slow=10)",
            "sma_cross: bad setting(s): settings: Value error, fast (30)",
        ),
        ("sma_cross(fats=3)", "sma_cross: bad setting(s): fats: Extra inputs are not permitted"),
        ("scanner_oi(oi_min_pct=-1)", "scanner_oi: bad setting(s): oi_min_pct:"),
        ("sma_cross(fast)", "a setting is key=value, got 'fast'"),
        ("sma_cross,sma_cross", "names a strategy twice"),
        ("", "STRATEGIES is empty"),
        ("sma cross", "cannot read"),
    ],
)
def test_bad_spec_is_refused_with_the_reason(spec: str, says: str) -> None:
    with pytest.raises(StrategyError, match=None) as err:
        strategies_from(spec)
    assert says in str(err.value)


def test_live_decisions_are_the_backtest_decisions_bar_for_bar() -> None:
    """Bars arriving a few at a time (as the collector stores them): every signal `decide`
    gives on the newly closed bars is the backtest's entry at that bar, and none is missed."""
    bars = sim_tape(0.25, seed=5, coins=1)[0]
    [st] = strategies_from("sma_cross(fast=3,slow=8)")
    frame = st.signals(bars)
    cursor = Cursor()
    seen: dict[int, int] = {}
    first = 20
    steps = [first, *range(first + 1, len(bars), 3), len(bars)]
    for k in steps:  # the collector has stored bars 0..k-1 (all closed)
        window = bars.window(max(0, k - 120), k)  # the runner reads a trailing window
        for sig in new_decisions(st, window, cursor, int(window.close_s[-1])):
            seen[int(sig.time.timestamp())] = 1 if sig.side == "long" else -1
            assert sig.strategy == "sma_cross" and sig.version == "1"
    want = {
        int(bars.close_s[i]): int(frame.entry[i])
        for i in np.flatnonzero(frame.entry)
        if i >= first - 1  # the first look decides its newest bar only: no history replay
    }
    assert seen == want and len(want) > 5


def test_a_bar_not_closed_yet_is_not_decided() -> None:
    bars = sim_tape(0.05, seed=5, coins=1)[0]
    [st] = strategies_from("sma_cross(fast=2,slow=3)")
    cursor = Cursor()
    new_decisions(st, bars, cursor, int(bars.close_s[-2]))
    assert cursor.decided[bars.symbol] == int(bars.close_s[-2])  # the last one is still open


def test_signal_ids_are_one_per_strategy_version_coin_and_bar() -> None:
    t = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    a = signal_id("sma_cross", "1+abc", "SOLUSDT", t)
    assert a == signal_id("sma_cross", "1+abc", "SOLUSDT", t)
    assert len({a, signal_id("sma_cross", "1+abd", "SOLUSDT", t),
                signal_id("sma_cross", "1+abc", "SOLUSDT", t + 60),
                signal_id("scanner_oi", "1+abc", "SOLUSDT", t)}) == 4  # fmt: skip


def test_a_look_with_nothing_new_decides_nothing() -> None:
    """Most looks find no newly closed bar: nothing is decided, the cursor stays (a bug made
    such a look fail and the next one lose the signals it had found)."""
    bars = sim_tape(0.05, seed=5, coins=1)[0]
    [st] = strategies_from("sma_cross(fast=2,slow=3)")
    cursor = Cursor()
    now = int(bars.close_s[-1])
    new_decisions(st, bars, cursor, now)
    assert new_decisions(st, bars, cursor, now) == []
    assert new_decisions(st, bars.window(0, len(bars) - 5), cursor, now) == []  # a shorter read
    assert cursor.decided[bars.symbol] == now and cursor.first[bars.symbol] == now


class _Peeker(Strategy[StrategyParams]):
    """Goes long at any bar whose decision can see a heatmap refresh stamped after its close."""

    name = "peeker"
    version = "1"
    params_model = StrategyParams
    needs = frozenset({"heatmap"})

    def signals(self, bars: Bars) -> SignalFrame:
        assert bars.heatmap is not None
        newest = bars.heatmap.refreshed_s[-1] if bars.heatmap.refreshed_s.size else 0
        return SignalFrame(entry=(bars.close_s < newest).astype(np.int8))


def test_live_decisions_see_no_refresh_stamped_after_the_bar() -> None:
    """The runner reads refreshes up to its newest bar; deciding an earlier bar, the refreshes
    stamped after that bar's close are cut off whatever the plug-in asks for."""
    bars = sim_tape(0.05, seed=5, coins=1)[0]  # heatmaps every 5 minutes
    st = _Peeker(StrategyParams())
    assert bars.heatmap is not None and bars.heatmap.refreshed_s[-1] > bars.close_s[-30]
    assert _Peeker.signals(st, bars).entry[:-30].all()  # the whole tape's refreshes: it peeks
    cursor = Cursor()
    cursor.decided[bars.symbol] = int(bars.close_s[0])
    assert new_decisions(st, bars, cursor, int(bars.close_s[-1])) == []
    assert cursor.decided[bars.symbol] == int(bars.close_s[-1])
