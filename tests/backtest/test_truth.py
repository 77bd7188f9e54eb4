"""The sim tape's whale ground truth (`Bars.hunts`) and the run scored against it
(`metrics.hunt_score`): hand-made hunts and trades, properties, and the tape's hunts against the
simulator's own campaign log — also past the length that log keeps."""

from __future__ import annotations

import random
from collections import deque
from dataclasses import replace
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantcore.backtest.engine import Costs
from quantcore.backtest.metrics import Entry, HuntScore, hunt_score
from quantcore.backtest.report import hunt_line
from quantcore.backtest.runner import entries_of, hunt_score_of, run_strategy
from quantcore.backtest.tapes import (
    DAY_S,
    SIM_EPOCH_S,
    CampaignLog,
    TapeError,
    _sim_market,
    sim_tape,
    whale_hunt,
)
from quantcore.sim import Market
from quantcore.strategies import Bars, SignalFrame
from quantcore.strategies.base import WhaleHunt
from quantcore.strategies.sma_cross import SmaCross


def hunt(
    symbol: str = "AUSDT", kind: str = "hunt", direction: str = "long", push: int | None = 100,
    end: int | None = 200, started: int = 0,
) -> WhaleHunt:  # fmt: skip
    return WhaleHunt(
        symbol=symbol, kind=kind, direction=direction, started_s=started,  # type: ignore[arg-type]
        push_started_s=push, ended_s=end, origin=1.0, target=1.2, take_profit=1.19,
        outcome=None, timeframe="12h",
    )  # fmt: skip


def test_hand_made_hunts_and_trades() -> None:
    hunts = [
        hunt(),  # A long, pushing 100..200: caught by the long at 150
        hunt(direction="short", push=300, end=None),  # A short from 300, still under way
        hunt("BUSDT", push=100, end=200),  # B long: only a short and a wrong-coin long met it
        hunt("BUSDT", push=None, end=None, started=500),  # never pushed: not counted
        hunt("BUSDT", kind="fake", push=600, end=700),  # a fake pump on B
    ]
    entries = [
        Entry("AUSDT", "long", 150),  # catches hunt 1
        Entry("AUSDT", "short", 99),  # before the push: outside
        Entry("AUSDT", "short", 10_000),  # catches hunt 2 (open-ended)
        Entry("BUSDT", "short", 200),  # inside B's hunt (its end), wrong way: not outside
        Entry("CUSDT", "long", 150),  # another coin: outside
        Entry("BUSDT", "long", 650),  # during the fake: outside, during a fake
        Entry("BUSDT", "long", 201),  # after B's hunt ended: outside
    ]
    s = hunt_score(hunts, entries)
    assert s == HuntScore(hunts=3, caught=2, trades=7, outside=4, during_fake=1)
    assert s.caught_pct == pytest.approx(200 / 3)
    assert hunt_line(s) == (
        "3 in window, caught 2 (66.7 %); trades outside any hunt: 4 of 7 (1 during a fake pump)"
    )
    assert hunt_score([], []) == HuntScore(0, 0, 0, 0, 0) and hunt_line(HuntScore(0, 0, 0, 0, 0))
    assert HuntScore(0, 0, 0, 0, 0).caught_pct is None


symbols = st.sampled_from(["AUSDT", "BUSDT"])
sides = st.sampled_from(["long", "short"])
times = st.integers(0, 1000)
hunts_st = st.lists(
    st.builds(
        hunt, symbols, st.sampled_from(["hunt", "fake"]), sides,
        st.one_of(st.none(), times), st.one_of(st.none(), times),
    ),
    max_size=6,
)  # fmt: skip
entries_st = st.lists(st.builds(Entry, symbols, sides, times), max_size=10)


@settings(max_examples=200, deadline=None)
@given(hunts_st, entries_st, st.randoms(use_true_random=False))
def test_hunt_score_properties(
    hunts: list[WhaleHunt], entries: list[Entry], rnd: random.Random
) -> None:
    s = hunt_score(hunts, entries)
    assert 0 <= s.caught <= s.hunts and 0 <= s.during_fake <= s.outside <= s.trades
    assert s.trades == len(entries)
    assert s.hunts == sum(h.kind == "hunt" and h.push_started_s is not None for h in hunts)
    shuffled_h, shuffled_e = hunts[:], entries[:]
    rnd.shuffle(shuffled_h)
    rnd.shuffle(shuffled_e)
    assert hunt_score(shuffled_h, shuffled_e) == s  # order does not matter
    # a trade in a pushed hunt's direction at its push start catches it and is not outside
    for h in hunts:
        if h.kind == "hunt" and h.push_started_s is not None and h.pushing_at(h.push_started_s):
            more = hunt_score(hunts, [*entries, Entry(h.symbol, h.direction, h.push_started_s)])
            assert more.caught >= s.caught and more.outside == s.outside
            assert hunt_score([h], [more_entry(h)]).caught == 1
            wrong = "short" if h.direction == "long" else "long"
            assert hunt_score([h], [replace(more_entry(h), side=wrong)]).caught == 0
    # the same trades on a coin without any campaign: nothing caught, all outside
    elsewhere = [replace(e, symbol="ZUSDT") for e in entries]
    far = hunt_score(hunts, elsewhere)
    assert far.caught == 0 and far.outside == len(entries) and far.during_fake == 0
    # fakes never count as hunts nor are caught
    fakes_only = [h for h in hunts if h.kind == "fake"]
    assert hunt_score(fakes_only, entries).hunts == 0


def more_entry(h: WhaleHunt) -> Entry:
    assert h.push_started_s is not None
    return Entry(h.symbol, h.direction, h.push_started_s)


def _reference(market: Market, symbols: list[str], a: int, b: int) -> list[list[WhaleHunt]]:
    """The simulator's own log, filtered to the campaigns whose life overlaps [a, b)."""
    out: list[list[WhaleHunt]] = [[] for _ in symbols]
    for c in market.campaigns():
        if c.started < b and (c.ended is None or c.ended >= a):
            out[c.coin].append(whale_hunt(c, symbols[c.coin]))
    return out


def test_the_sim_tape_carries_the_simulators_own_campaigns() -> None:
    days, seed, coins = 2, 7, 5
    tape = sim_tape(days, seed=seed, coins=coins, heatmaps=False)
    market = _sim_market(seed, coins, SIM_EPOCH_S)
    t0 = market.now
    market.advance(days * int(DAY_S))  # in one go: the market does not depend on the steps
    symbols = [c.symbol for c in market.coins]
    maxlen = market.whales.log.maxlen
    assert maxlen is not None and len(market.campaigns()) < maxlen  # all still in the log
    want = _reference(market, symbols, t0, t0 + days * DAY_S)
    assert [b.symbol for b in tape] == symbols
    assert [list(b.hunts or ()) for b in tape] == want
    every = [h for b in tape for h in b.hunts or ()]
    assert sum(h.kind == "hunt" and h.push_started_s is not None for h in every) >= 2
    for b in tape:
        for h in b.hunts or ():
            assert h.symbol == b.symbol and h.direction in ("long", "short")
            assert h.started_s < int(b.close_s[-1])
    # a window is cut, not shifted: a window keeps the tape's hunts
    assert tape[0].window(10, 20).hunts == tape[0].hunts


def test_a_window_longer_than_the_log_keeps_every_campaign() -> None:
    """The log the simulator keeps is bounded (maxlen 10 000; a year of 60 coins starts more).
    Here it is cut to 4 so a few days overflow it: collected every 6 hours, nothing is lost
    (against the same seeded market with an unbounded log); collected too rarely, it refuses."""
    seed, coins, days = 3, 5, 4
    bounded, unbounded = (_sim_market(seed, coins, SIM_EPOCH_S) for _ in range(2))
    bounded.whales.log = deque(maxlen=4)
    unbounded.whales.log = deque()
    log = CampaignLog()
    t0, end = bounded.now, bounded.now + days * int(DAY_S)
    while bounded.now < end:
        bounded.advance(6 * 3600)
        log.collect(bounded)
    unbounded.advance(days * int(DAY_S))
    symbols = [c.symbol for c in bounded.coins]
    assert len(unbounded.campaigns()) > 3 * 4  # the window outgrew the log several times
    got = log.hunts(symbols, t0, end)
    assert got == _reference(unbounded, symbols, t0, end)
    assert sum(len(x) for x in got) == len(unbounded.campaigns())
    rare = _sim_market(seed, coins, SIM_EPOCH_S)
    rare.whales.log = deque(maxlen=4)
    rare.advance(days * int(DAY_S))
    with pytest.raises(TapeError, match="some ground truth would be lost"):
        CampaignLog().collect(rare)


class _Peeks(SmaCross):
    """An SMA cross that records whether it was shown the ground truth."""

    seen: ClassVar[list[object]] = []

    def signals(self, bars: Bars) -> SignalFrame:
        type(self).seen.append(bars.hunts)
        return super().signals(bars)


def test_a_run_is_scored_and_the_strategy_never_sees_the_truth() -> None:
    tape = sim_tape(2, seed=7, coins=3, heatmaps=False)
    strategy = _Peeks(_Peeks.params_model(fast=5, slow=20))
    r = run_strategy(strategy, tape, Costs())
    assert _Peeks.seen and all(x is None for x in _Peeks.seen)
    entries = entries_of(r)
    assert len(entries) == sum(len(x.trades) for x in r.results) > 0
    for e, (res, i) in zip(
        entries, [(x, i) for x in r.results for i in range(len(x.trades))], strict=True
    ):
        assert e.symbol == res.symbol and e.at_s == int(res.start_s[res.trades.entry_bar[i]])
        assert e.side == ("long" if res.trades.side[i] > 0 else "short")
    s = hunt_score_of(r, tape)
    assert s == hunt_score([h for b in tape for h in b.hunts or ()], entries)
    assert s is not None and s.hunts > 0 and s.trades == len(entries)
    no_truth = [replace(b, hunts=None) for b in tape]
    assert hunt_score_of(r, no_truth) is None
    assert np.array_equal(tape[0].close, no_truth[0].close)
