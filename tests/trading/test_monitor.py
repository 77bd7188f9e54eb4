"""The position monitor's rules (quantcore.trading.monitor), pure: close reasons, PnL %,
the tick grid, the trailing ladder, pending entries."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from quantcore.model.trading import (
    ClosedPnl,
    CloseReason,
    EntryOrder,
    ExecKind,
    Fill,
    OrderStatus,
    Side,
    Trigger,
)
from quantcore.trading import monitor, trailing
from quantcore.trading.monitor import PendingVerdict

D = Decimal
T0 = datetime(2026, 1, 1, tzinfo=UTC)
LADDER = [(10.0, 0.0), (20.0, 10.0), (50.0, 30.0)]


def fill(side: Side, kind: ExecKind = ExecKind.TRADE, trigger: Trigger | None = None) -> Fill:
    return Fill("e", "o", None, "BTCUSDT", side, D(100), D(1), D("0.1"), T0, kind, trigger)


def closed(entry: str, exit_: str, qty: str, pnl: str, lev: str | None = "10") -> ClosedPnl:
    return ClosedPnl("o", "BTCUSDT", Side.SELL, D(qty), D(entry), D(exit_), D(pnl),
                     D(lev) if lev else None, T0, T0)  # fmt: skip


@pytest.mark.parametrize(
    ("fills", "moved", "reason"),
    [
        ([fill(Side.SELL, ExecKind.LIQUIDATION)], False, CloseReason.LIQUIDATION),
        ([fill(Side.SELL, ExecKind.ADL)], False, CloseReason.LIQUIDATION),
        ([fill(Side.SELL, trigger=Trigger.TAKE_PROFIT)], True, CloseReason.TP),
        ([fill(Side.SELL, trigger=Trigger.STOP_LOSS)], False, CloseReason.SL),
        ([fill(Side.SELL, trigger=Trigger.STOP_LOSS)], True, CloseReason.TRAILING_SL),
        ([fill(Side.SELL, trigger=Trigger.TRAILING_STOP)], False, CloseReason.SL),
        ([fill(Side.SELL)], False, CloseReason.MANUAL),
        # the opening side and funding never decide how a long closed
        ([fill(Side.BUY, trigger=Trigger.TAKE_PROFIT), fill(Side.SELL)], False, CloseReason.MANUAL),
        ([fill(Side.SELL, ExecKind.FUNDING, Trigger.STOP_LOSS), fill(Side.SELL)], False, CloseReason.MANUAL),
        ([], False, CloseReason.MANUAL),
    ],
)  # fmt: skip
def test_close_reason_of_a_long(fills: list[Fill], moved: bool, reason: CloseReason) -> None:
    assert monitor.close_reason("long", fills, moved) is reason


def test_close_reason_of_a_short_reads_the_buys() -> None:
    assert (
        monitor.close_reason("short", [fill(Side.BUY, trigger=Trigger.TAKE_PROFIT)], False)
        is CloseReason.TP
    )
    assert (
        monitor.close_reason("short", [fill(Side.SELL, trigger=Trigger.TAKE_PROFIT)], False)
        is CloseReason.MANUAL
    )


def test_close_result_weighs_partial_closes_and_falls_back_to_the_venue() -> None:
    closes = [closed("100", "110", "1", "9.5"), closed("100", "120", "3", "59")]
    r = monitor.close_result(
        "long", closes, [fill(Side.SELL)], entry=None, leverage=None, stop_moved=False
    )
    assert (r.qty, r.exit_price, r.entry_price, r.leverage) == (D(4), D("117.5"), D(100), D(10))
    assert r.pnl_quote == D("68.5") and r.fees == D("0.1") and r.reason is CloseReason.MANUAL
    assert r.pnl_pct_price == pytest.approx(17.5)
    assert r.pnl_pct_margin == pytest.approx(68.5 / (100 * 4 / 10) * 100)
    ours = monitor.close_result("long", closes, [], entry=D(105), leverage=D(5), stop_moved=False)
    assert (ours.entry_price, ours.leverage) == (D(105), D(5))
    unknown = monitor.close_result("long", [closed("100", "110", "1", "10", None)], [],
                                   entry=None, leverage=None, stop_moved=False)  # fmt: skip
    assert unknown.leverage == 1 and unknown.pnl_pct_margin == pytest.approx(
        10
    )  # margin = notional
    with pytest.raises(ValueError, match="not closed"):
        monitor.close_result("long", [], [], entry=None, leverage=None, stop_moved=False)


prices = st.decimals(min_value="0.0001", max_value="1000000", places=4)
leverages = st.integers(1, 100).map(Decimal)


@given(prices, prices, st.decimals(min_value="0.001", max_value="1000", places=3), leverages)
def test_margin_pnl_is_price_pnl_times_leverage_before_fees(
    entry: Decimal, exit_: Decimal, qty: Decimal, lev: Decimal
) -> None:
    for direction, sign in (("long", 1), ("short", -1)):
        gross = (exit_ - entry) * qty * sign
        on_price = monitor.pnl_pct_price(direction, entry, exit_)
        on_margin = monitor.pnl_pct_margin(gross, entry, qty, lev)
        assert on_margin == pytest.approx(on_price * float(lev), rel=1e-9, abs=1e-9)
    assert monitor.pnl_pct_price("long", entry, exit_) == -monitor.pnl_pct_price(
        "short", entry, exit_
    )


@given(st.floats(0.0001, 1e6), st.sampled_from([0.0001, 0.001, 0.01, 0.1, 0.5, 1.0, 5.0]))
def test_a_stop_on_the_grid_is_never_closer_to_the_price(stop: float, tick: float) -> None:
    long_stop = monitor.stop_on_tick("long", stop, tick)
    short_stop = monitor.stop_on_tick("short", stop, tick)
    t = Decimal(str(tick))
    assert long_stop % t == 0 and short_stop % t == 0
    assert long_stop <= Decimal(str(stop)) <= short_stop
    assert Decimal(str(stop)) - long_stop < t and short_stop - Decimal(str(stop)) < t


def test_the_ladder_moves_the_stop_to_breakeven_then_locks_profit() -> None:
    assert monitor.trailing_update("long", 100, 105, 5, 95, LADDER, 1, "price", 0.01) is None
    first = monitor.trailing_update("long", 100, 111, 11, 95, LADDER, 1, "price", 0.01)
    assert first is not None and (first.stop, first.step) == (D(100), 1)
    assert monitor.trailing_update("long", 100, 111, 11, 100, LADDER, 1, "price", 0.01) is None
    second = monitor.trailing_update("long", 100, 121, 21, 100, LADDER, 1, "price", 0.01)
    assert second is not None and (second.stop, second.step) == (D(110), 2)
    # on margin at 10x: +2.1 % on price is +21 % on margin; lock +10 % margin = +1 % price
    margin = monitor.trailing_update("short", 100, 97.9, 2.1, 103, LADDER, 10, "margin", 0.01)
    assert margin is not None and (margin.stop, margin.step) == (D(99), 2)
    assert margin.best_on_basis == pytest.approx(21) and margin.profit_now_pct == pytest.approx(21)


@given(
    st.sampled_from(["long", "short"]),
    st.floats(1, 1e5),
    st.floats(-50, 300),
    st.floats(-60, 60),
    st.floats(1, 50),
    st.sampled_from(["price", "margin"]),
    st.sampled_from([0.0, 0.01, 0.5]),
)
def test_the_ladder_only_tightens_stays_behind_the_price_and_on_the_grid(
    direction: str, entry: float, best_pct: float, mark_pct: float, lev: float,
    basis: trailing.Basis, tick: float,
) -> None:  # fmt: skip
    mark = entry * (1 + mark_pct / 100) if direction == "long" else entry * (1 - mark_pct / 100)
    assume(mark > 0)
    current = entry * (0.9 if direction == "long" else 1.1)
    update = monitor.trailing_update(
        direction, entry, mark, best_pct, current, LADDER, lev, basis, tick
    )
    if update is None:
        return
    assert trailing.tighter(direction, float(update.stop), current)
    assert monitor.stop_valid(direction, float(update.stop), mark)
    if tick > 0:
        assert update.stop % Decimal(str(tick)) == 0


def entry_order(status: OrderStatus, filled: str = "0", price: str | None = None) -> EntryOrder:
    return EntryOrder("l", status, D(filled), D(price) if price else None)


@pytest.mark.parametrize(
    ("entries", "age_s", "verdict"),
    [
        ([], 9999, PendingVerdict.WAIT),
        ([entry_order(OrderStatus.NEW)], 10, PendingVerdict.WAIT),
        ([entry_order(OrderStatus.SUBMITTING)], 10, PendingVerdict.WAIT),
        ([entry_order(OrderStatus.NEW)], 601, PendingVerdict.EXPIRED),
        ([entry_order(OrderStatus.CANCELLED), entry_order(OrderStatus.REJECTED)], 10, PendingVerdict.ENDED_UNFILLED),
        ([entry_order(OrderStatus.CANCELLED), entry_order(OrderStatus.NEW)], 10, PendingVerdict.WAIT),
        ([entry_order(OrderStatus.CANCELLED, "1", "100"), entry_order(OrderStatus.NEW)], 10, PendingVerdict.FILLED_AND_CLOSED),
    ],
)  # fmt: skip
def test_pending_verdicts(entries: list[EntryOrder], age_s: float, verdict: PendingVerdict) -> None:
    assert monitor.pending_verdict(entries, age_s, 600) is verdict


def test_average_fill() -> None:
    assert monitor.average_fill([entry_order(OrderStatus.NEW)]) is None
    got = monitor.average_fill([entry_order(OrderStatus.FILLED, "1", "100"),
                                entry_order(OrderStatus.FILLED, "3", "104")])  # fmt: skip
    assert got == (D(4), D(103))


def test_a_reversal_close_is_reason_signal_and_the_next_entry_is_not_this_trades_fill() -> None:
    """A plug-in's reversal: its reduce-only close (order id = the new signal + 'x00') closes
    the old trade for reason `signal`; the new entry, booked at the same moment on the same
    side, belongs to the next trade (its fee is not the old trade's)."""
    import uuid
    from dataclasses import replace

    from quantcore.trading import plugin

    old, new = uuid.uuid4(), uuid.uuid4()
    opened = replace(fill(Side.BUY), order_link_id=f"{old.hex}e00")
    close = replace(fill(Side.SELL), order_link_id=plugin.close_link_id(new))
    entry = replace(fill(Side.SELL), order_link_id=f"{new.hex}e00")
    funding = fill(Side.BUY, ExecKind.FUNDING)
    fills = [opened, funding, close, entry]
    assert monitor.close_reason("long", fills, False) is CloseReason.SIGNAL
    assert plugin.own_fills(fills, old) == [opened, funding, close]
    assert plugin.own_fills(fills, None) == fills  # a manual trade keeps them all
    # the next trade (a short) stopped by the venue before the old one was booked: its stop
    # fill (a buy, no order id) and its closed-PnL record are not the old long's
    next_stop = replace(fill(Side.BUY), trigger=Trigger.STOP_LOSS)
    assert plugin.own_fills([*fills, next_stop], old, "long") == [opened, funding, close]
    assert monitor.close_reason("long", plugin.own_fills([*fills, next_stop], old, "long"),
                                False) is CloseReason.SIGNAL  # fmt: skip
    mine_closed = ClosedPnl(venue_order_id="a", symbol="X", side=Side.SELL, qty=Decimal(1),
                            avg_entry_price=Decimal(100), avg_exit_price=Decimal(101),
                            closed_pnl=Decimal(1), leverage=Decimal(1),
                            created_at=datetime.now(UTC), updated_at=datetime.now(UTC))  # fmt: skip
    theirs = replace(mine_closed, venue_order_id="b", side=Side.BUY)
    assert plugin.own_closes([mine_closed, theirs], "long") == [mine_closed]
    # the owner's own close (another order id, no trigger) stays manual
    hand = replace(fill(Side.SELL), order_link_id="my-own-close")
    assert monitor.close_reason("long", [opened, hand], False) is CloseReason.MANUAL
    assert not plugin.is_signal_close(f"{new.hex}e00") and not plugin.is_signal_close(None)
