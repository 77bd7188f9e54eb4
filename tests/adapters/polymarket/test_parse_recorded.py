"""Every recorded real payload (nautilus-polymarket, see shared/recorded/MANIFEST.md) of an
endpoint the adapter reads goes through its parser: good items become models, hand-edited
placeholder ids are rejected with a reason, nothing raises."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from quantcore.adapters.polymarket import parse
from quantcore.errors import BadPayload

RECORDED = Path("/work/shared/recorded/nautilus-polymarket")
pytestmark = pytest.mark.skipif(not RECORDED.exists(), reason="recorded payloads not mounted")


def load(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


# file → (parser, good items, rejected items)
GAMMA_MARKETS = {
    "crates/gamma_market.json": (1, 0),
    "crates/gamma_market_closed_binary_accepting_false.json": (1, 0),
    "crates/gamma_market_closed_binary_accepting_true.json": (1, 0),
    "crates/gamma_market_closed_nonbinary_legacy.json": (1, 0),
    "crates/gamma_market_closed_zero_zero_legacy.json": (1, 0),
    "crates/gamma_market_sports_market_map_handicap.json": (1, 0),
    "crates/gamma_market_sports_market_money_line.json": (1, 0),
    "py/http_responses/market_slug.json": (1, 0),  # clobTokenIds as a real array
    "py/http_responses/markets_list.json": (1, 2),  # two hand-edited condition ids
}


@pytest.mark.parametrize(("name", "counts"), GAMMA_MARKETS.items())
def test_gamma_markets(name: str, counts: tuple[int, int]) -> None:
    page = parse.gamma_markets(load(name))
    assert (len(page.items), len(page.bad)) == counts
    for bad in page.bad:
        assert "condition_id" in bad.reason


def test_gamma_market_fields_and_resolution() -> None:
    [m] = parse.gamma_markets(load("crates/gamma_market.json")).items
    assert m.version == "v1" and m.market_id == "1557558"
    assert [o.name for o in m.outcomes] == ["Up", "Down"]
    assert m.outcomes[0].token_id.startswith("1042398980388")
    assert m.outcomes[0].price == pytest.approx(0.505)
    assert m.liquidity_usd == pytest.approx(20328.3747) and m.tick_size == 0.01
    assert m.end_date is not None and m.end_date.isoformat() == "2026-03-12T09:25:00+00:00"
    assert m.resolved_outcome is None and not m.closed
    won = parse.gamma_markets(load("crates/gamma_market_closed_binary_accepting_true.json"))
    assert won.items[0].resolved_outcome == "Yes"
    lost = parse.gamma_markets(load("crates/gamma_market_closed_binary_accepting_false.json"))
    assert lost.items[0].resolved_outcome == "No"
    # "0"/"0" prices: closed but not resolved to either side — no winner is invented
    zero = parse.gamma_markets(load("crates/gamma_market_closed_zero_zero_legacy.json"))
    assert zero.items[0].closed and zero.items[0].resolved_outcome is None
    assert (
        parse.gamma_markets(load("crates/gamma_market_closed_nonbinary_legacy.json"))
        .items[0]
        .category
        == "Crypto"
    )


def test_v2_market_uses_position_ids() -> None:
    raw = load("crates/gamma_market.json")
    raw = {**raw, "version": "v2", "positionIds": ["11", "22"], "clobTokenIds": None}
    [m] = parse.gamma_markets(raw).items
    assert m.version == "v2" and [o.token_id for o in m.outcomes] == ["11", "22"]
    no_ids = {**raw, "positionIds": None}
    page = parse.gamma_markets(no_ids)
    assert not page.items and "no token ids (positionIds missing)" in page.bad[0].reason


@pytest.mark.parametrize(
    ("name", "events", "markets", "rejected"),
    [
        ("crates/gamma_event.json", 1, 2, 0),
        ("py/http_responses/event.json", 1, 0, 3),  # markets without token ids
        ("py/http_responses/events_list.json", 3, 0, 3),
    ],
)
def test_gamma_events(name: str, events: int, markets: int, rejected: int) -> None:
    page, market_bad = parse.gamma_events(load(name))
    assert len(page.items) == events and not page.bad
    assert sum(len(e.markets) for e in page.items) == markets
    assert len(market_bad) == rejected
    assert all("no token ids" in b.reason for b in market_bad)
    if markets:
        assert page.items[0].markets[0].event_id == page.items[0].event_id
        assert "Politics" in page.items[0].tags


def test_gamma_tags() -> None:
    page = parse.gamma_tags(load("crates/gamma_tags.json"))
    assert len(page.items) == 5 and page.items[0].label == "Health and Human Services"


@pytest.mark.parametrize(
    ("name", "good", "bad", "cursor"),
    [
        ("crates/clob_market_closed_binary_accepting_false.json", 1, 0, None),
        ("crates/clob_market_closed_binary_accepting_true.json", 1, 0, None),
        ("py/http_responses/market.json", 1, 0, None),
        ("py/http_responses/markets.json", 99, 1, "MTAw"),  # one market with an empty token
    ],
)
def test_clob_markets(name: str, good: int, bad: int, cursor: str | None) -> None:
    page = parse.clob_markets(load(name))
    assert (len(page.items), len(page.bad), page.next_cursor) == (good, bad, cursor)
    for b in page.bad:
        assert "token without token_id" in b.reason


def test_clob_winner_flag() -> None:
    [m] = parse.clob_markets(load("crates/clob_market_closed_binary_accepting_true.json")).items
    assert m.closed and m.resolved_outcome == "Yes" and m.tick_size == 0.01


@pytest.mark.parametrize(
    ("name", "bid", "ask"),
    [("crates/clob_book_response.json", 0.50, 0.51), ("py/http_responses/book.json", 0.1, 0.14)],
)
def test_books_best_first(name: str, bid: float, ask: float) -> None:
    b = parse.book(load(name))
    assert (b.best_bid, b.best_ask) == (bid, ask)
    assert all(x.price >= y.price for x, y in zip(b.bids, b.bids[1:], strict=False))
    assert all(x.price <= y.price for x, y in zip(b.asks, b.asks[1:], strict=False))
    assert b.time.year >= 2023


def test_fee_rates() -> None:
    assert parse.fee_rate_bps(load("crates/clob_fee_rate_response_nonzero.json")) == 150.0
    assert parse.fee_rate_bps(load("crates/clob_fee_rate_response_zero.json")) == 0.0
    with pytest.raises(BadPayload, match="base_fee"):
        parse.fee_rate_bps({"fee": 1})


def test_v1_positions() -> None:
    page = parse.positions(load("crates/data_api_positions_response.json"))
    assert [p.status for p in page.items] == ["OPEN", "CLOSED", "REDEEMABLE"]
    closed = page.items[1]
    # cost of what was bought, not of what is left (the position is sold out)
    assert closed.cost_usd == pytest.approx(45.0) and closed.realized_pnl_usd == 5.0
    [bad] = page.bad  # a hand-edited 62-digit condition id
    assert "condition_id" in bad.reason


@pytest.mark.parametrize(
    ("name", "n"),
    [("crates/data_api_trades_response.json", 3), ("py/http_responses/trades.json", 4)],
)
def test_v1_trades(name: str, n: int) -> None:
    page = parse.trades(load(name))
    assert len(page.items) == n and not page.bad and page.next_cursor is None
    t = page.items[0]
    assert t.wallet.startswith("0x") and t.size > 0 and t.time.tzinfo is not None
