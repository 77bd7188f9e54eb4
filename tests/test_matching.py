"""quantcore.math.matching: the one set of matching rules the paper venue, the simulator's
exchange and the backtester fill with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

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
    assert matching.liquidated(side, liq, liq)
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
