"""Data API v2 envelopes, cursors and malformed items; parser properties (hypothesis)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantcore.adapters.polymarket import parse
from quantcore.errors import BadPayload

W = "0x" + "ab" * 20
C = "0x" + "cd" * 32


def v2_trade(**over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "proxy_wallet": W, "side": "BUY", "token_id": "123", "condition_id": C,
        "size": 10.0, "price": 0.42, "timestamp": 1_790_000_000, "transaction_hash": "0x1",
        "outcome": "Yes", "outcome_index": 0,
    }  # fmt: skip
    row.update(over)
    return row


def test_v2_envelope_cursor_and_bad_items() -> None:
    payload = {
        "data": [
            v2_trade(),
            v2_trade(price=1.7),
            v2_trade(size="lots"),
            "junk",
            v2_trade(proxy_wallet=None),
        ],
        "pagination": {"limit": 5, "has_more": True, "next_cursor": "eyJhIjoxfQ"},
    }
    page = parse.trades(payload)
    assert len(page.items) == 1 and page.next_cursor == "eyJhIjoxfQ"
    reasons = [b.reason for b in page.bad]
    assert any("price" in r for r in reasons)
    assert any("size is not a number" in r for r in reasons)
    assert "item is not an object" in reasons
    assert any("proxyWallet is missing" in r for r in reasons)


def test_v2_last_page_and_documented_miss() -> None:
    last = parse.trades(
        {"data": [v2_trade()], "pagination": {"has_more": False, "next_cursor": None}}
    )
    assert last.next_cursor is None and len(last.items) == 1
    miss = parse.trades({"data": None, "pagination": {"has_more": False, "next_cursor": None}})
    assert miss.items == [] and miss.bad == []
    # the 2026 trades copy: {limit, next_cursor, count, data}
    copy = parse.trades({"limit": 1, "next_cursor": "x1", "count": 1, "data": [v2_trade()]})
    assert copy.next_cursor == "x1"


def test_reply_of_wrong_shape_is_rejected_whole() -> None:
    with pytest.raises(BadPayload, match="no data list"):
        parse.trades({"error": "nope"})
    with pytest.raises(BadPayload, match="neither a list nor an object"):
        parse.trades("<html>")


def test_v2_positions_status_and_cost() -> None:
    row = {
        "proxy_wallet": W, "condition_id": C, "token_id": "7", "outcome": "Yes", "status": "REDEEMABLE_LOST",
        "current_size": 86.0, "avg_price": 0.52, "entry_cost_usdc": 45.0, "current_value": 0.0,
        "realized_pnl": -45.0, "unrealized_pnl": 0.0,
    }  # fmt: skip
    [p] = parse.positions(
        {"data": [row], "pagination": {"has_more": False, "next_cursor": None}}
    ).items
    assert p.closed and p.cost_usd == 45.0 and p.realized_pnl_usd == -45.0


def test_market_without_token_ids_is_rejected_with_reason() -> None:
    page = parse.gamma_markets(
        [{"id": "1", "conditionId": C, "question": "Q?", "outcomes": '["Yes","No"]'}]
    )
    assert not page.items
    assert page.bad[0].reason == "market has no token ids (clobTokenIds missing): cannot be traded"
    mismatch = parse.gamma_markets(
        [
            {
                "id": "1",
                "conditionId": C,
                "question": "Q?",
                "outcomes": '["Yes","No"]',
                "clobTokenIds": '["1"]',
            }
        ]
    )
    assert "do not pair" in mismatch.bad[0].reason


@given(st.lists(st.text(alphabet="0123456789", min_size=1, max_size=78), min_size=1, max_size=5))
def test_json_list_accepts_string_and_array(ids: list[str]) -> None:
    assert parse.json_list(json.dumps(ids), "ids") == ids
    assert parse.json_list(ids, "ids") == ids


@given(st.integers(min_value=1_000_000_000, max_value=9_999_999_999))
def test_timestamp_seconds_millis_iso_agree(seconds: int) -> None:
    a = parse.timestamp(seconds, "t")
    assert parse.timestamp(seconds * 1000, "t") == a
    assert parse.timestamp(str(seconds), "t") == a
    assert parse.timestamp(a.isoformat(), "t") == a
    assert a.tzinfo == UTC


@given(st.one_of(st.text(max_size=20), st.booleans(), st.none(), st.just(float("nan"))))
def test_number_never_invents_a_zero(value: object) -> None:
    try:
        out = parse.number(value, "x")
    except ValueError:
        return
    assert isinstance(value, str) and float(value) == out


def test_timestamp_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse.timestamp(12, "t")
    assert parse.timestamp("2026-03-12T09:25:00Z", "t") == datetime(2026, 3, 12, 9, 25, tzinfo=UTC)
