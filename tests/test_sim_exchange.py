"""The simulator's exchange model (pure): money is conserved across any sequence of trades."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from quantcore.sim.exchange import (
    ExchangeError,
    Fees,
    Instrument,
    OrderParams,
    Quote,
    SimExchange,
)

SYMBOL = "TESTUSDT"
INSTRUMENT = Instrument(
    SYMBOL, Decimal("0.01"), Decimal("0.1"), Decimal("0.1"), Decimal(1000), Decimal(50)
)
START = Decimal(100_000)

prices = st.integers(min_value=5_000, max_value=20_000).map(lambda c: Decimal(c) / 100)
steps = st.lists(
    st.tuples(
        prices,
        st.sampled_from(["Buy", "Sell"]),
        st.integers(min_value=1, max_value=50).map(lambda k: Decimal(k) / 10),
        st.booleans(),  # reduce-only
    ),
    min_size=1,
    max_size=25,
)


def quote(price: Decimal) -> dict[str, Quote]:
    return {SYMBOL: Quote(price, price, price, price)}


@settings(max_examples=60, deadline=None)
@given(steps, prices)
def test_wallet_equals_start_plus_closed_pnl_once_flat(plan: list[tuple[Decimal, str, Decimal, bool]], final: Decimal) -> None:  # fmt: skip
    ex = SimExchange({SYMBOL: INSTRUMENT}, Fees(), START)
    acc = ex.account("k")
    now = 1_000
    refused: list[int] = []
    for price, side, qty, reduce_only in plan:
        now += 1000
        ex.on_quotes(quote(price), now)
        try:
            ex.place(acc, OrderParams(SYMBOL, side, "Market", qty, reduce_only=reduce_only), now)  # type: ignore[arg-type]
        except ExchangeError as exc:
            refused.append(exc.code)
    assert set(refused) <= {110017, 110007}  # reduce-only with nothing to reduce, balance
    pos = acc.position(SYMBOL)
    fees = sum((e.fee for e in acc.executions), start=Decimal(0))
    assert acc.wallet <= START + sum(
        (c.closed_pnl + c.open_fee + c.close_fee for c in acc.closed_pnl), start=Decimal(0)
    )
    if pos.size > 0:  # close what is left
        now += 1000
        ex.on_quotes(quote(final), now)
        closing = "Sell" if pos.side == "Buy" else "Buy"
        ex.place(acc, OrderParams(SYMBOL, closing, "Market", pos.size, reduce_only=True), now)  # type: ignore[arg-type]
        fees = sum((e.fee for e in acc.executions), start=Decimal(0))
    assert pos.size == 0 and pos.open_fee == 0
    closed = sum((c.closed_pnl for c in acc.closed_pnl), start=Decimal(0))
    assert abs(acc.wallet - (START + closed)) < Decimal("1e-12")
    assert ex.equity(acc) == acc.wallet
    gross = sum(((c.avg_exit_price - c.avg_entry_price) * c.closed_size * (1 if c.order.side == "Sell" else -1) for c in acc.closed_pnl), start=Decimal(0))  # fmt: skip
    assert abs(acc.wallet - (START + gross - fees)) < Decimal("1e-12")
