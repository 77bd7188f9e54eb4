"""The live Polymarket venue's translation, without a network: which Data API rows confirm an
order's fill (only its own settlement transactions), the order status from the confirmed fill,
a Data API position in our words, our rules before anything is signed, and the CLOB client's
errors in our error classes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
from hypothesis import example, given
from hypothesis import strategies as st
from py_clob_client_v2.exceptions import PolyApiException

from quantcore.adapters.polymarket.clob import ClobAccount, ClobRejected, _translate
from quantcore.errors import TemporaryError
from quantcore.model.poly import BookLevel, PolyBook, PolyPosition, PolyTrade
from quantcore.model.trading import OrderStatus, Side
from quantcore.store.poly_live_venue import (
    OurFills,
    confirmed_fill,
    fill_status,
    holding_of,
    order_refusal,
    unfilled_reason,
)
from quantcore.trading.poly import FeeSchedule, taker_fee
from quantcore.venues.poly import PolyOrderRequest

D = Decimal
NOW = datetime(2026, 12, 1, tzinfo=UTC)
COND = "0x" + "ab" * 32
WALLET = "0x" + "12" * 20
TOKEN, OTHER = "1111", "2222"
FEES = FeeSchedule(rate=D("0.03"), exponent=1)


def row(tx: str | None, size: float, price: float, token: str = TOKEN) -> PolyTrade:
    return PolyTrade(wallet=WALLET, side="BUY", token_id=token, condition_id=COND, size=size,
                     price=price, time=NOW, tx_hash=tx)  # fmt: skip


def test_only_the_orders_own_settlements_count() -> None:
    feed = [
        row("0xaa", 10, 0.40),
        row("0xbb", 5, 0.42),  # ours
        row("0xcc", 7, 0.41),  # another order's
        row(None, 3, 0.40),  # no transaction: not settled
        row("0xaa", 4, 0.40, token=OTHER),  # another outcome
    ]
    shares, avg, fee = confirmed_fill(feed, TOKEN, {"0xaa", "0xbb"}, FEES)
    assert shares == D(15)
    assert avg == (D(10) * D("0.40") + D(5) * D("0.42")) / D(15)
    assert fee == taker_fee(D(10), D("0.40"), FEES) + taker_fee(D(5), D("0.42"), FEES)
    assert confirmed_fill(feed, TOKEN, set(), FEES) == (D(0), None, D(0))  # "matched" alone: 0


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["0xa1", "0xa2", "0xb1", "0xb2"]),
            st.integers(1, 500),
            st.integers(1, 99),
        ),
        max_size=12,
    ),
    st.sets(st.sampled_from(["0xa1", "0xa2", "0xb1"])),
)
@example([("0xa1", 5, 50)], set())
def test_confirmed_fill_is_exactly_the_matching_rows(
    rows: list[tuple[str, int, int]], ours: set[str]
) -> None:
    feed = [row(tx, float(size), price / 100) for tx, size, price in rows]
    shares, avg, _ = confirmed_fill(feed, TOKEN, ours, FEES)
    assert shares == sum((D(s) for tx, s, _ in rows if tx in ours), D(0))
    if shares > 0:
        assert avg is not None and D("0.01") <= avg <= D("0.99")
    else:
        assert avg is None


def test_status_from_the_confirmed_fill() -> None:
    assert fill_status(D(10), D(10)) is OrderStatus.FILLED
    assert fill_status(D(4), D(10)) is OrderStatus.PARTIALLY_FILLED
    assert fill_status(D(0), D(10)) is OrderStatus.CANCELLED


def test_why_an_order_filled_less() -> None:
    assert unfilled_reason(trades=2, settled=1, in_feed=1).startswith("matched but not settled")
    assert unfilled_reason(trades=2, settled=2, in_feed=1).startswith("not in the feed yet")
    assert unfilled_reason(trades=1, settled=1, in_feed=1).startswith("fak:")
    assert unfilled_reason(trades=0, settled=0, in_feed=0).startswith("fak:")  # no match at all


def test_a_data_api_position_in_our_words() -> None:
    p = PolyPosition(wallet=WALLET, token_id=TOKEN, condition_id=COND, status="OPEN", size=6.0,
                     avg_price=0.5, cost_usd=5.0, realized_pnl_usd=0.4)  # fmt: skip
    h = holding_of(p, bought=D(10), buy_fees=D("0.10"))
    assert (h.shares, h.entry_shares) == (D(6), D(10))
    assert h.cost == D(6) * D("0.5") + D("0.06")  # the held shares' part of the buy fees
    assert h.realized_pnl == D("0.4")
    assert holding_of(p, D(0), D(0)).entry_shares == D(6)  # bought elsewhere: its own size


def test_our_books_where_the_feed_shows_nothing() -> None:
    mine = OurFills(TOKEN, COND, bought=D(10), notional=D(4), fees=D("0.2"), sold=D(4))
    h = mine.holding()
    assert (h.shares, h.entry_shares) == (D(6), D(10))
    assert h.cost == (D(4) + D("0.2")) * D(6) / D(10)  # the held part of cost and fees
    assert OurFills(TOKEN, COND, D(5), D(2), D(0), D(5)).held == 0


def book(asks: list[tuple[float, float]], tick: float = 0.01) -> PolyBook:
    return PolyBook(condition_id=COND, token_id=TOKEN, time=NOW, bids=(),
                    asks=tuple(BookLevel(price=p, size=s) for p, s in asks), tick_size=tick,
                    min_order_size=5)  # fmt: skip


def req(limit: str, shares: str, tick: str = "0.01") -> PolyOrderRequest:
    return PolyOrderRequest("o1", COND, TOKEN, Side.BUY, D(limit), D(shares), D(tick))


def test_our_rules_before_anything_is_signed() -> None:
    good = book([(0.41, 100)])
    assert order_refusal(req("0.41", "10"), good, FEES) is None
    assert order_refusal(req("0.41", "10"), book([(0.41, 100)], tick=0.001), FEES).startswith(
        "tick_size_changed"
    )
    assert order_refusal(req("0.415", "10"), good, FEES) is not None  # off the tick grid
    assert order_refusal(req("0.41", "2"), good, FEES) is not None  # below the minimum size
    assert order_refusal(req("0.41", "10"), book([]), FEES).startswith("no_liquidity")


def _api_error(status: int, body: dict[str, str]) -> PolyApiException:
    return PolyApiException(httpx.Response(status, json=body))


def test_client_errors_keep_polymarkets_text() -> None:
    rejected = _translate(_api_error(400, {"error": "not enough balance / allowance"}), "post")
    assert isinstance(rejected, ClobRejected)
    assert (rejected.status, rejected.message) == (400, "not enough balance / allowance")
    assert isinstance(_translate(_api_error(503, {"error": "Trading is currently disabled"}), "post"), TemporaryError)  # fmt: skip
    assert isinstance(_translate(_api_error(429, {"error": "Too Many Requests"}), "post"), TemporaryError)  # fmt: skip
    network = _translate(PolyApiException(error_msg="Request exception!"), "post")
    assert isinstance(network, TemporaryError)  # no answer at all: not a refusal


def test_the_key_is_not_in_the_accounts_repr() -> None:
    key = "0x" + "5e" * 32
    assert key[2:] not in repr(ClobAccount("http://clob", key, 0))
