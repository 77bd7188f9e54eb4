"""The heatmap model's public inputs from Bybit (issue 14): the account ratio, the risk-limit
tiers and the public trade stream summed into taker volume per minute — the docs' and recorded
payloads, broken items (reported with a reason, the rest kept, never a zero), and properties."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantcore.adapters.bybit import parse
from quantcore.errors import BadPayload
from tests.adapters.fake_venue import sample
from tests.adapters.recorded_bybit import RECORDED

# --- account ratio -----------------------------------------------------------------------------


def test_account_ratio_docs_example() -> None:
    page = parse.account_ratio_page(sample("bybit_account_ratio_docs.json"), "BTCUSDT", "1d")
    [r] = page.items
    assert not page.bad
    assert r.symbol == "BTCUSDT" and r.period_s == 86_400
    assert r.time == datetime(2023, 9, 27, tzinfo=UTC)
    assert r.long_ratio == pytest.approx(0.5777)


@pytest.mark.parametrize(
    ("buy", "sell", "why"),
    [("1.2", "-0.2", "not shares"), ("0.7", "0.7", "not shares"), ("", "0.5", "not a number"),
     ("NaN", "0.5", "not a number")],
)  # fmt: skip
def test_account_ratio_bad_item_is_reported_and_the_rest_kept(
    buy: str, sell: str, why: str
) -> None:
    payload = sample("bybit_account_ratio_docs.json")
    good = payload["result"]["list"][0]
    payload["result"]["list"] = [
        good | {"buyRatio": buy, "sellRatio": sell, "timestamp": "1"},
        good,
    ]
    page = parse.account_ratio_page(payload, "BTCUSDT", "5min")
    assert len(page.items) == 1 and page.items[0].long_ratio == pytest.approx(0.5777)
    [bad] = page.bad
    assert why in bad.reason and bad.kind == parse.ACCOUNT_RATIO


def test_account_ratio_of_another_coin_is_rejected() -> None:
    page = parse.account_ratio_page(sample("bybit_account_ratio_docs.json"), "ETHUSDT", "5min")
    assert not page.items and "asked for ETHUSDT" in page.bad[0].reason


def test_account_ratio_envelope_without_list_raises() -> None:
    with pytest.raises(BadPayload, match="no list"):
        parse.account_ratio_page({"retCode": 0, "result": {}}, "BTCUSDT", "5min")


# --- risk limit ---------------------------------------------------------------------------------


def test_risk_limit_tiers_numbered_by_limit() -> None:
    page = parse.risk_limit_page(sample("bybit_risk_limit_linear.json"), "BTCUSDT")
    assert not page.bad
    tiers = parse.number_tiers(page.items)
    assert [(t.tier, t.limit_usd, t.maintenance_margin_rate) for t in tiers] == [
        (1, 2_000_000.0, 0.005), (2, 4_000_000.0, 0.01),
    ]  # fmt: skip
    assert tiers[0].max_leverage == 100.0 and tiers[0].initial_margin_rate == 0.01


def test_risk_limit_bad_tier_is_reported_never_a_zero_margin() -> None:
    payload = sample("bybit_risk_limit_linear.json")
    payload["result"]["list"][0]["maintenanceMargin"] = ""
    page = parse.risk_limit_page(payload, "BTCUSDT")
    assert [t.limit_usd for t in page.items] == [2_000_000.0]
    assert "maintenanceMargin" in page.bad[0].reason


def test_risk_limit_other_coins_are_skipped() -> None:
    payload = sample("bybit_risk_limit_linear.json")
    payload["result"]["list"][0]["symbol"] = "ETHUSDT"
    page = parse.risk_limit_page(payload, "BTCUSDT")
    assert len(page.items) == 1 and not page.bad


# --- public trades → taker flow -------------------------------------------------------------------


def test_recorded_public_trade_becomes_taker_flow() -> None:
    path = RECORDED / "nautilus-bybit-legacy-py/ws_messages/public/ws_trade.json"
    out = parse.ws_message(json.loads(path.read_text()))
    [flow] = out.items
    assert not out.bad
    assert isinstance(flow, parse.TakerFlow)
    assert flow.symbol == "BTCUSDT" and flow.minute == datetime(2022, 12, 29, 9, 1, tzinfo=UTC)
    assert (flow.buy_qty, flow.sell_qty, flow.trades) == (0.001, 0.0, 1)


def test_buys_and_sells_summed_per_minute() -> None:
    out = parse.ws_message(sample("bybit_ws_public_trade_two.json"))
    [flow] = out.items
    assert flow.buy_qty == pytest.approx(0.001) and flow.sell_qty == pytest.approx(0.004)
    assert flow.trades == 2


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [("S", "Hold", "Buy/Sell"), ("v", "0", "positive"), ("v", "", "not a number"),
     ("s", "ETHUSDT", "topic is BTCUSDT"), ("T", "soon", "timestamp")],
)  # fmt: skip
def test_a_broken_trade_is_reported_and_left_out_of_the_sums(
    field: str, value: Any, why: str
) -> None:
    msg = sample("bybit_ws_public_trade_two.json")
    msg["data"][1][field] = value
    out = parse.ws_message(msg)
    [flow] = out.items
    assert (flow.buy_qty, flow.sell_qty, flow.trades) == (0.001, 0.0, 1)
    assert why in out.bad[0].reason and out.bad[0].kind == parse.WS_TRADE


def test_trades_without_a_list_are_a_bad_message() -> None:
    out = parse.ws_message({"topic": "publicTrade.BTCUSDT", "data": {"S": "Buy"}})
    assert not out.items and "not a list" in out.bad[0].reason


TRADE = st.fixed_dictionaries({
    "T": st.integers(min_value=1_600_000_000_000, max_value=1_600_000_600_000),
    "S": st.sampled_from(["Buy", "Sell"]),
    "v": st.decimals(min_value="0.001", max_value="1000", places=3).map(str),
    "p": st.decimals(min_value="0.01", max_value="100000", places=2).map(str),
})  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(trades=st.lists(TRADE, min_size=1, max_size=40))
def test_taker_flow_keeps_every_unit_of_volume_in_its_minute(trades: list[dict[str, Any]]) -> None:
    data = [t | {"s": "XUSDT", "i": str(k), "BT": False} for k, t in enumerate(trades)]
    out = parse.ws_message({"topic": "publicTrade.XUSDT", "type": "snapshot", "data": data})
    assert not out.bad
    flows = out.items
    assert len({f.minute for f in flows}) == len(flows)  # one per minute
    assert sum(f.trades for f in flows) == len(trades)
    for side, name in (("Buy", "buy_qty"), ("Sell", "sell_qty")):
        expect = sum(float(t["v"]) for t in trades if t["S"] == side)
        assert sum(getattr(f, name) for f in flows) == pytest.approx(expect)
    for f in flows:  # every trade in the minute it happened
        in_minute = [t for t in trades if t["T"] // 60_000 * 60 == int(f.minute.timestamp())]
        assert len(in_minute) == f.trades


@settings(max_examples=200, deadline=None)
@given(
    buy=st.floats(min_value=-1, max_value=2) | st.just(float("nan")),
    sell=st.floats(min_value=-1, max_value=2) | st.just(float("nan")),
)
def test_account_ratio_is_a_share_or_rejected(buy: float, sell: float) -> None:
    payload = copy.deepcopy(sample("bybit_account_ratio_docs.json"))
    payload["result"]["list"][0] |= {"buyRatio": str(buy), "sellRatio": str(sell)}
    page = parse.account_ratio_page(payload, "BTCUSDT", "5min")
    assert len(page.items) + len(page.bad) == 1
    for r in page.items:
        assert 0.0 <= r.long_ratio <= 1.0
        assert abs(buy + sell - 1.0) <= 0.01
