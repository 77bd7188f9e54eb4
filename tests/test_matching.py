"""quantcore.math.matching: the one set of matching rules the paper venue, the simulator's
exchange and the backtester fill with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantcore.math import matching
from quantcore.model.trading import Side, Trigger

prices = st.decimals(min_value="0.0001", max_value="1000000", places=4)
sizes = st.decimals(min_value="0.001", max_value="10000", places=3)
sides = st.sampled_from([Side.BUY, Side.SELL])


@given(prices, st.decimals(min_value=0, max_value="0.05", places=4))
def test_the_taker_pays_the_slippage(last: Decimal, slip: Decimal) -> None:
    assert (
        matching.taker_price(Side.SELL, last, slip)
        <= last
        <= matching.taker_price(Side.BUY, last, slip)
    )


@given(sides, prices, prices)
def test_a_limit_that_crosses_the_price_is_marketable(
    side: Side, limit: Decimal, last: Decimal
) -> None:
    expected = limit >= last if side is Side.BUY else limit <= last
    assert matching.marketable(side, limit, last) is expected


@given(prices, prices)
def test_stops_fire_on_the_losing_side_and_profits_on_the_winning_one(
    trigger: Decimal, last: Decimal
) -> None:
    assert matching.stop_reached(Side.BUY, Trigger.STOP_LOSS, trigger, last, last) is (
        last <= trigger
    )
    assert matching.stop_reached(Side.BUY, Trigger.TAKE_PROFIT, trigger, last, last) is (
        last >= trigger
    )
    assert matching.stop_reached(Side.SELL, Trigger.STOP_LOSS, trigger, last, last) is (
        last >= trigger
    )
    assert matching.stop_reached(Side.SELL, Trigger.TAKE_PROFIT, trigger, last, last) is (
        last <= trigger
    )


@given(sides, prices, sizes, st.integers(1, 100).map(Decimal))
def test_at_the_liquidation_price_the_loss_ate_the_margin_down_to_maintenance(
    side: Side, avg: Decimal, size: Decimal, lev: Decimal
) -> None:
    liq = matching.liquidation_price(side, avg, lev)
    assert (liq < avg) if side is Side.BUY else (liq > avg)
    at_liq = matching.first_exit(matching.sign(side), liq, liq, liq, stop=None, target=None,
                                 liquidation=liq, slippage=Decimal(0))  # fmt: skip
    assert at_liq is not None and at_liq.kind == "liquidation" and at_liq.price == liq
    loss = -matching.unrealised_pnl(side, size, avg, liq)
    margin = avg * size / lev
    assert abs(loss - (margin - avg * size * matching.MAINTENANCE_MARGIN)) < Decimal("1e-12") * (
        1 + margin
    )


@given(sides, sizes, prices, prices)
def test_a_close_realises_what_was_unrealised(
    side: Side, qty: Decimal, avg: Decimal, price: Decimal
) -> None:
    assert matching.realised_pnl(side, qty, avg, price) == matching.unrealised_pnl(
        side, qty, avg, price
    )
    assert matching.fee(qty, price, Decimal("0.00055")) >= 0


@given(sizes, prices, st.decimals(min_value="-0.01", max_value="0.01", places=6), st.integers(1, 5))
def test_longs_pay_what_shorts_receive(
    size: Decimal, mark: Decimal, rate: Decimal, times: int
) -> None:
    paid = matching.funding_fee(Side.BUY, size, mark, rate, times)
    assert paid == -matching.funding_fee(Side.SELL, size, mark, rate, times)
    assert (paid > 0) == (rate > 0)


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)),
       st.integers(0, 72 * 60))  # fmt: skip
def test_funding_boundaries_are_every_eight_hours(since: datetime, minutes: int) -> None:
    now = since + timedelta(minutes=minutes)
    times = matching.funding_times(since, now)
    assert all(since < t <= now and t.hour % 8 == 0 and t.minute == 0 for t in times)
    assert len(times) in (minutes // (8 * 60), minutes // (8 * 60) + 1)


@given(sides, sizes, prices, sides, sizes, prices)
def test_a_fill_adds_reduces_or_flips_and_keeps_the_books_balanced(
    side: Side, size: Decimal, avg: Decimal, fill_side: Side, qty: Decimal, price: Decimal
) -> None:
    change = matching.apply_fill(side, size, avg, fill_side, qty, price)
    signed = size * matching.sign(side) + qty * matching.sign(fill_side)  # net exposure
    after = change.size * (matching.sign(change.side) if change.side else 0)
    assert after == signed
    if fill_side is side:
        assert change.closed_qty == 0 and min(avg, price) <= change.avg_price <= max(avg, price)
    else:
        assert change.closed_qty == min(qty, size)
        assert change.realised == matching.realised_pnl(side, change.closed_qty, avg, price)
        assert change.flipped == (qty > size)
        if change.flipped:
            assert change.avg_price == price


def test_a_fill_on_a_flat_book_opens_at_its_price() -> None:
    change = matching.apply_fill(None, Decimal(0), Decimal(0), Side.SELL, Decimal(2), Decimal(50))
    assert (change.side, change.size, change.avg_price, change.closed_qty) == (Side.SELL, 2, 50, 0)


@given(st.one_of(st.none(), sides), sizes, sides, sizes)
def test_only_what_exceeds_the_position_opens(
    held: Side | None, size: Decimal, side: Side, qty: Decimal
) -> None:
    opening = matching.opening_qty(held, size, side, qty)
    assert 0 <= opening <= qty
    if held is not None and held is not side:
        assert opening == max(Decimal(0), qty - size)
    else:
        assert opening == qty
    cost = matching.order_cost(opening, Decimal(100), Decimal(10), Decimal("0.001"))
    assert cost == opening * 10 + opening * Decimal("0.1")


# --- the one exit rule (first_exit): the paper venue and the backtester close with it ----------

levels_f = st.floats(min_value=1, max_value=1000, allow_nan=False, allow_infinity=False)
slips = st.sampled_from([0.0, 0.0005, 0.01])


def _ohlc(o: float, a: float, b: float) -> tuple[float, float, float]:
    return o, max(o, a, b), min(o, a, b)


@given(st.sampled_from([1, -1]), levels_f, levels_f, levels_f, levels_f, levels_f, slips)
def test_an_exit_fires_only_where_the_range_reached_its_level(
    side: int, o: float, a: float, b: float, stop: float, target: float, slip: float
) -> None:
    o, h, lo = _ohlc(o, a, b)
    fired = matching.first_exit(
        side, o, h, lo, stop=stop, target=target, liquidation=None, slippage=slip
    )
    reached_stop = matching.adverse_reached(side, lo, h, stop)
    reached_target = matching.favour_reached(side, lo, h, target)
    if not reached_stop and not reached_target:
        assert fired is None
        return
    assert fired is not None
    if fired.kind == "stop_loss":
        assert reached_stop
        # a stop never fills better than its level (nor a gap better than the open), slipped
        assert side * fired.price <= side * stop * (1 - side * slip) + 1e-9
    else:
        assert fired.kind == "take_profit" and reached_target
        assert side * fired.price >= side * target - 1e-9  # a target never fills worse
        # the stop was not reached, or the bar opened through the target (a gap)
        assert not reached_stop or fired.gapped


@given(st.sampled_from([1, -1]), levels_f, levels_f, levels_f, slips)
def test_a_bar_reaching_both_levels_without_a_gap_fills_the_stop(
    side: int, entry: float, d1: float, d2: float, slip: float
) -> None:
    stop = entry * (1 - side * (d1 / 2000 + 0.001))
    target = entry * (1 + side * (d2 / 2000 + 0.001))
    o, h, lo = entry, max(stop, target), min(stop, target)  # opened between, reached both
    fired = matching.first_exit(
        side, o, h, lo, stop=stop, target=target, liquidation=None, slippage=slip
    )
    assert fired is not None and fired.kind == "stop_loss" and not fired.gapped
    assert fired.price == pytest.approx(stop * (1 - side * slip))


@given(st.sampled_from([1, -1]), levels_f, levels_f, st.floats(0.001, 0.5), slips)
def test_a_gap_through_a_level_fills_at_the_open(
    side: int, entry: float, far: float, through: float, slip: float
) -> None:
    stop = entry * (1 - side * 0.02)
    target = entry * (1 + side * 0.03)
    o = stop * (1 - side * through)  # opened beyond the stop
    fired = matching.first_exit(
        side, o, max(o, entry), min(o, entry), stop=stop, target=target, liquidation=None,
        slippage=slip,
    )  # fmt: skip
    assert fired is not None and fired.kind == "stop_loss" and fired.gapped
    assert fired.price == pytest.approx(o * (1 - side * slip))
    o = target * (1 + side * through)  # opened beyond the target
    fired = matching.first_exit(
        side, o, max(o, entry), min(o, entry), stop=stop, target=target, liquidation=None,
        slippage=slip,
    )  # fmt: skip
    assert fired is not None and fired.kind == "take_profit" and fired.price == o
    # no gap where the open is not a price the position lived through (its fill bar)
    fired = matching.first_exit(
        side, o, o, o, stop=stop, target=None, liquidation=None, slippage=slip, gap=False
    )
    assert fired is None


@given(
    st.sampled_from([1, -1]),
    st.lists(st.floats(50, 150, allow_nan=False), min_size=1, max_size=30),
    st.floats(0.005, 0.4), st.floats(0.005, 0.4), st.floats(0.005, 0.6),
)  # fmt: skip
def test_the_rule_on_a_bar_is_never_better_than_the_price_path_inside_it(
    side: int, path: list[float], sl: float, tp: float, lq: float
) -> None:
    """Over a bar made of any continuous price path (straight lines between the points), the
    rule on the bar's open/high/low fills no better than the exit the path really meets first:
    the nearer of stop and liquidation, or the target, at its level (a gap at the open)."""
    entry = 100.0
    stop, target = entry * (1 - side * sl), entry * (1 + side * tp)
    liq = entry * (1 - side * lq)
    adverse, is_liq = matching.adverse_level(side, stop, liq)
    assert adverse is not None
    o, h, lo = path[0], max(path), min(path)
    fired = matching.first_exit(
        side, o, h, lo, stop=stop, target=target, liquidation=liq, slippage=0.0
    )
    truth: float | None = None
    for p in path:  # a monotone line from the previous point meets a level at the level
        if matching.adverse_reached(side, p, p, adverse):
            truth = o if p == o and matching.adverse_reached(side, o, o, adverse) else adverse
            truth = adverse if is_liq else truth
            break
        if matching.favour_reached(side, p, p, target):
            truth = o if p == o else target
            break
    if truth is None:
        assert fired is None
    else:
        assert fired is not None
        assert side * fired.price <= side * truth + 1e-9


@given(st.sampled_from([1, -1]), levels_f, st.floats(0.001, 0.2), st.floats(0.001, 0.2))
def test_the_nearer_of_stop_and_liquidation_fires_and_a_liquidation_fills_at_its_price(
    side: int, entry: float, d_stop: float, d_liq: float
) -> None:
    stop, liq = entry * (1 - side * d_stop), entry * (1 - side * d_liq)
    far = entry * (1 - side * 0.5)  # the bar fell (rose) through both
    fired = matching.first_exit(
        side, far, max(entry, far), min(entry, far), stop=stop, target=None, liquidation=liq,
        slippage=0.0,
    )  # fmt: skip
    assert fired is not None
    if d_liq <= d_stop:
        assert fired.kind == "liquidation" and fired.price == liq  # whatever the gap
    else:
        assert fired.kind == "stop_loss" and fired.price == far  # gapped: at the open


@given(st.sampled_from([1, -1]), prices, prices, prices, prices)
def test_the_rule_is_the_same_in_decimal_and_in_float(
    side: int, o: Decimal, a: Decimal, stop: Decimal, target: Decimal
) -> None:
    h, lo = max(o, a), min(o, a)
    slip = Decimal("0.0005")
    d = matching.first_exit(side, o, h, lo, stop=stop, target=target, liquidation=None,
                            slippage=slip)  # fmt: skip
    f = matching.first_exit(side, float(o), float(h), float(lo), stop=float(stop),
                            target=float(target), liquidation=None, slippage=float(slip))  # fmt: skip
    assert (d is None) == (f is None)
    if d is not None and f is not None:
        assert d.kind == f.kind and float(d.price) == pytest.approx(f.price, rel=1e-12)
