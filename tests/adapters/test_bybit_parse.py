"""Bybit v5 payloads → models, from samples.

`*_docs.json` are copied verbatim from the official docs (bybit-exchange/docs docs/v5/market/*.mdx
and docs/v5/websocket/public/*.mdx); the rest are composed in the same format to add the cases
the docs lack (several items, broken items, error envelopes).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from quantcore.adapters.bybit import parse
from quantcore.errors import BadPayload
from quantcore.model.market import Candle, LiquidationEvent, Ticker
from tests.adapters.fake_venue import sample


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def test_instruments_docs_sample() -> None:
    page = parse.instruments_page(sample("bybit_instruments_docs.json"))
    assert page.bad == []
    assert page.cursor == ""
    [btc] = page.items
    assert btc.symbol == "BTCUSDT"
    assert (btc.base_coin, btc.quote_coin, btc.status) == ("BTC", "USDT", "Trading")
    assert (btc.tick_size, btc.qty_step, btc.min_qty, btc.max_leverage) == (
        0.1,
        0.001,
        0.001,
        100.0,
    )
    assert btc.funding_interval_min == 480
    assert btc.launch_time == at(1585526400000)


def test_prelaunch_is_skipped_and_cursor_kept_as_sent() -> None:
    page = parse.instruments_page(sample("bybit_instruments_prelaunch_docs.json"))
    assert page.items == []
    assert page.bad == []
    assert page.cursor == "first%3DBIOUSDT%26last%3DBIOUSDT"


def test_instruments_keep_only_trading_usdt_perps_and_report_broken_ones() -> None:
    page = parse.instruments_page(sample("bybit_instruments_mixed.json"))
    assert [i.symbol for i in page.items] == ["BTCUSDT", "ETHUSDT"]  # not USDC, futures, closed
    reasons = {b.raw_snippet.split('"symbol":"')[1].split('"')[0]: b.reason for b in page.bad}
    assert set(reasons) == {"BADUSDT", "NEGUSDT", "NOFILTERUSDT"}
    assert "tickSize" in reasons["BADUSDT"]
    assert "qty_step" in reasons["NEGUSDT"]
    assert "priceFilter" in reasons["NOFILTERUSDT"]
    assert all(b.kind == "instrument" and len(b.raw_snippet) <= 500 for b in page.bad)


def test_tickers_docs_sample() -> None:
    [t] = parse.tickers(sample("bybit_tickers_docs.json")).items
    assert t.symbol == "BTCUSD"
    assert t.time == at(1760352369814)  # the envelope's server time
    assert t.last_price == 120635.5
    assert t.price_change_24h_pct == pytest.approx(14.2425)  # fraction → percent
    assert t.funding_rate_pct == pytest.approx(0.01)
    assert t.next_funding_at == at(1760371200000)
    assert (t.open_interest, t.open_interest_value) == (240113967.0, 2089.79)
    assert (t.bid_price, t.ask_price) == (103401.0, 109152.8)


def test_tickers_one_bad_item_does_not_spoil_the_list() -> None:
    parsed = parse.tickers(sample("bybit_tickers_linear.json"))
    assert [t.symbol for t in parsed.items] == ["BTCUSDT", "ETHUSDT", "NEWUSDT"]
    new = parsed.items[2]
    assert new.bid_price is None and new.funding_rate_pct is None and new.next_funding_at is None
    bad = {b.raw_snippet.split('"symbol":"')[1].split('"')[0]: b.reason for b in parsed.bad}
    assert set(bad) == {"NEGUSDT", "NANUSDT", "TXTUSDT", "NOLASTUSDT"}
    assert "last_price" in bad["NEGUSDT"]
    assert "markPrice" in bad["NANUSDT"]
    assert "lastPrice" in bad["TXTUSDT"] and "lastPrice" in bad["NOLASTUSDT"]


def test_tickers_for_one_symbol_reject_other_symbols() -> None:
    parsed = parse.tickers(sample("bybit_tickers_linear.json"), symbol="ETHUSDT")
    assert [t.symbol for t in parsed.items] == ["ETHUSDT"]
    assert any("asked for ETHUSDT, got BTCUSDT" in b.reason for b in parsed.bad)


def test_kline_docs_sample_newest_first_as_sent() -> None:
    page = parse.kline_page(sample("bybit_kline_docs.json"), "BTCUSD", "60")
    assert [c.start for c in page.items] == [
        at(1670608800000),
        at(1670605200000),
        at(1670601600000),
    ]
    first = page.items[0]
    assert (first.open, first.high, first.low, first.close) == (17071, 17073, 17027, 17055.5)
    assert (first.volume, first.turnover, first.interval) == (268611, 15.74462667, "1h")
    assert all(c.confirmed for c in page.items)  # server time is long after


def test_kline_open_candle_is_unconfirmed() -> None:
    payload = sample("bybit_kline_docs.json")
    payload["time"] = 1670608800000 + 30 * 60 * 1000  # half-way through the newest hour
    page = parse.kline_page(payload, "BTCUSD", "60")
    assert [c.confirmed for c in page.items] == [False, True, True]


def test_kline_bad_rows_and_wrong_symbol() -> None:
    payload = sample("bybit_kline_docs.json")
    payload["result"]["list"][1][2] = "17000"  # high below open
    payload["result"]["list"].append(["1670598000000", "x", "1", "1", "1", "1", "1"])
    payload["result"]["list"].append(["1670594400000", "1"])
    page = parse.kline_page(payload, "BTCUSD", "60")
    assert len(page.items) == 2
    assert len(page.bad) == 3
    with pytest.raises(BadPayload, match="asked for ETHUSDT"):
        parse.kline_page(sample("bybit_kline_docs.json"), "ETHUSDT", "60")


def test_open_interest_docs_sample() -> None:
    page = parse.open_interest_page(sample("bybit_open_interest_docs.json"), "BTCUSD")
    assert [(p.time, p.open_interest) for p in page.items] == [
        (at(1669571400000), 461134384.0),
        (at(1669571100000), 461134292.0),
    ]
    assert page.cursor == ""
    with pytest.raises(BadPayload):
        parse.open_interest_page(sample("bybit_open_interest_docs.json"), "BTCUSDT")


def test_funding_docs_sample_and_wrong_symbol_item() -> None:
    [f] = parse.funding_page(sample("bybit_funding_history_docs.json"), "ETHPERP").items
    assert f.time == at(1672041600000)
    assert f.funding_rate_pct == pytest.approx(0.01)
    other = parse.funding_page(sample("bybit_funding_history_docs.json"), "BTCUSDT")
    assert other.items == []
    assert "asked for BTCUSDT" in other.bad[0].reason


def test_server_time_docs_sample() -> None:
    t = parse.server_time(sample("bybit_server_time_docs.json"))
    assert t == datetime(2023, 7, 6, 10, 30, 3, 423213, tzinfo=UTC)


@pytest.mark.parametrize(
    "name", ["bybit_error_10001.json", "bybit_error_10006.json", "bybit_error_10016.json"]
)
def test_error_envelopes_are_never_parsed_as_data(name: str) -> None:
    # pybit raises on these before parsing; if one slips through it must not read as "empty"
    with pytest.raises(BadPayload, match="not a successful Bybit envelope"):
        parse.tickers(sample(name))


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        "OK",
        {"retCode": 0},
        {"retCode": 0, "result": {}},
        {"retCode": 0, "result": {"list": {}}},
    ],
)
def test_broken_envelopes(payload: object) -> None:
    with pytest.raises(BadPayload):
        parse.instruments_page(payload)


def test_ws_ticker_docs_sample() -> None:
    [t] = parse.ws_message(sample("bybit_ws_ticker_docs.json")).items
    assert isinstance(t, Ticker)
    assert (t.symbol, t.time, t.last_price) == ("BTCUSDT", at(1673272861686), 17216.0)
    assert t.funding_rate_pct == pytest.approx(-0.0212)
    assert t.open_interest_value == 1183601235.91


def test_ws_ticker_topic_symbol_must_match() -> None:
    msg = sample("bybit_ws_ticker_docs.json")
    msg["topic"] = "tickers.ETHUSDT"
    parsed = parse.ws_message(msg)
    assert parsed.items == [] and "topic is ETHUSDT" in parsed.bad[0].reason


def test_ws_kline_docs_sample() -> None:
    [c] = parse.ws_message(sample("bybit_ws_kline_docs.json")).items
    assert isinstance(c, Candle)
    assert (c.symbol, c.interval, c.start, c.confirmed) == (
        "BTCUSDT",
        "5m",
        at(1672324800000),
        False,
    )
    assert (c.open, c.high, c.low, c.close, c.volume) == (16649.5, 16677, 16608, 16677, 2.081)


def test_ws_all_liquidation_docs_sample() -> None:
    [e] = parse.ws_message(sample("bybit_ws_all_liquidation_docs.json")).items
    assert isinstance(e, LiquidationEvent)
    assert (e.symbol, e.side, e.qty, e.price) == ("ROSEUSDT", "short", 20000.0, 0.04499)
    assert e.time == at(1739502302929)
    assert e.source == "bybit"
    assert e.event_key == "ROSEUSDT:1739502302929:Sell:20000:0.04499"


def test_ws_liquidations_side_key_and_bad_items() -> None:
    msg = sample("bybit_ws_all_liquidation_mixed.json")
    parsed = parse.ws_message(msg, source="sim")
    events = [e for e in parsed.items if isinstance(e, LiquidationEvent)]
    assert [(e.side, e.source) for e in events] == [("long", "sim"), ("short", "sim")]
    assert len(parsed.bad) == 4  # wrong symbol, unknown side, zero size, bad time
    again = [
        e
        for e in parse.ws_message(copy.deepcopy(msg), source="sim").items
        if isinstance(e, LiquidationEvent)
    ]
    assert [e.event_key for e in again] == [e.event_key for e in events]  # re-sent: same keys
    assert len({e.event_key for e in events}) == 2


def test_ws_unknown_and_broken_messages() -> None:
    assert parse.ws_message({"topic": "publicTrade.BTCUSDT", "data": []}).items == []
    assert parse.ws_message({"topic": "publicTrade.BTCUSDT", "data": []}).bad == []
    assert parse.ws_message({"op": "x"}).bad[0].reason == "message has no topic"
    bad = parse.ws_message({"topic": "kline.1.BTCUSDT", "data": {"start": 1}})
    assert bad.bad[0].reason == "data is not a list"
