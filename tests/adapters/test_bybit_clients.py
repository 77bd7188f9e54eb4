"""Real pybit against the fake venue: REST paging, retries, rate limits; WebSocket delivery,
reconnect and resubscribe, stop."""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from quantcore.adapters.bybit.rest import BybitMarketData
from quantcore.adapters.bybit.ws import BybitPublicStream
from quantcore.errors import BadPayload, PermanentError, RateLimited, TemporaryError
from quantcore.model.market import Candle, LiquidationEvent, Ticker
from quantcore.retry import RetryPolicy
from tests.adapters.conftest import FAST, BadLog, eventually
from tests.adapters.fake_venue import (
    FakeVenue,
    Reply,
    cursor_pages,
    kline_route,
    ok,
    sample,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
INSTRUMENTS = "/v5/market/instruments-info"
TICKERS = "/v5/market/tickers"
KLINE = "/v5/market/kline"
OI = "/v5/market/open-interest"
FUNDING = "/v5/market/funding/history"
TIME = "/v5/market/time"


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


@pytest.fixture
async def client(fake: FakeVenue, bad: BadLog) -> AsyncIterator[BybitMarketData]:
    c = BybitMarketData(fake.url, rate_per_s=1000, on_bad=bad, timeout_s=2, retry_policy=FAST)
    yield c
    await c.aclose()


# --- REST: paging ------------------------------------------------------------------------------------


async def test_instruments_follow_the_cursor_to_the_end(
    fake: FakeVenue, client: BybitMarketData, bad: BadLog
) -> None:
    mixed = sample("bybit_instruments_mixed.json")["result"]
    docs = sample("bybit_instruments_docs.json")["result"]
    sol = copy.deepcopy(docs["list"][0]) | {"symbol": "SOLUSDT", "baseCoin": "SOL"}
    fake.routes[INSTRUMENTS] = cursor_pages([mixed, docs, {"category": "linear", "list": [sol]}])
    out = await client.instruments()
    assert [i.symbol for i in out] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]  # deduplicated
    calls = fake.calls(INSTRUMENTS)
    assert [c.get("cursor") for c in calls] == [None, "c1", "c2"]
    assert all(c["category"] == "linear" and c["limit"] == "1000" for c in calls)
    assert bad.kinds() == ["instrument"] * 3
    assert all(raw.startswith("{") and reason for _, raw, reason in bad.calls)


async def test_tickers_one_call_bad_items_dead_lettered(
    fake: FakeVenue, client: BybitMarketData, bad: BadLog
) -> None:
    fake.routes[TICKERS] = lambda q: Reply(body=sample("bybit_tickers_linear.json"))
    out = await client.tickers()
    assert [t.symbol for t in out] == ["BTCUSDT", "ETHUSDT", "NEWUSDT"]
    assert fake.calls(TICKERS) == [{"category": "linear"}]
    assert len(bad.calls) == 4
    one = await client.tickers("ETHUSDT")
    assert [t.symbol for t in one] == ["ETHUSDT"]
    assert fake.calls(TICKERS)[-1] == {"category": "linear", "symbol": "ETHUSDT"}


def minute_rows(start: datetime, count: int) -> list[list[str]]:
    rows = []
    for i in range(count):
        p = 100 + i * 0.01
        t = ms(start + timedelta(minutes=i))
        rows.append(
            [str(t), f"{p:.2f}", f"{p + 1:.2f}", f"{p - 1:.2f}", f"{p + 0.5:.2f}", "10", "1000"]
        )
    return rows


async def test_klines_walk_back_and_come_out_ascending_deduplicated(
    fake: FakeVenue, client: BybitMarketData
) -> None:
    rows = minute_rows(T0, 2500)
    now = T0 + timedelta(minutes=2499, seconds=30)  # the newest candle is still open
    plain = kline_route("BTCUSDT", rows, ms(now))

    def overlapping(query: dict[str, str]) -> Reply:
        # a venue whose pages overlap by one candle: the client must deduplicate
        return plain({**query, "end": str(int(query["end"]) + 60_000)})

    fake.routes[KLINE] = overlapping
    start, end = T0 + timedelta(minutes=5), T0 + timedelta(minutes=2499)
    out = await client.klines("BTCUSDT", start, end)
    assert [c.start for c in out] == [T0 + timedelta(minutes=i) for i in range(5, 2500)]
    assert [c.confirmed for c in out[-2:]] == [True, False]
    assert all(c.interval == "1m" and c.symbol == "BTCUSDT" for c in out)
    calls = fake.calls(KLINE)
    assert len(calls) == 3
    assert all(c["limit"] == "1000" and c["start"] == str(ms(start)) for c in calls)
    assert int(calls[1]["end"]) < int(calls[0]["end"])  # walking backwards


async def test_klines_before_the_listing_stop_at_an_empty_page(
    fake: FakeVenue, client: BybitMarketData
) -> None:
    fake.routes[KLINE] = kline_route("BTCUSDT", minute_rows(T0, 10), ms(T0 + timedelta(days=1)))
    out = await client.klines("BTCUSDT", T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    assert len(out) == 10 and all(c.confirmed for c in out)
    assert len(fake.calls(KLINE)) == 2


async def test_klines_complete_when_the_venue_caps_the_page_size(
    fake: FakeVenue, client: BybitMarketData
) -> None:
    plain = kline_route("BTCUSDT", minute_rows(T0, 1000), ms(T0 + timedelta(days=1)))
    fake.routes[KLINE] = lambda q: plain({**q, "limit": "200"})
    out = await client.klines("BTCUSDT", T0, T0 + timedelta(minutes=999))
    assert len(out) == 1000
    assert len(fake.calls(KLINE)) == 5  # the last page reaches the start: no extra call


async def test_open_interest_cursor_pages_ascending(
    fake: FakeVenue, client: BybitMarketData
) -> None:
    def page(first: int) -> dict[str, Any]:
        items = [
            {"openInterest": f"{1000 + i}.5", "timestamp": str(ms(T0 + timedelta(minutes=5 * i)))}
            for i in range(first + 2, first - 1, -1)  # newest first
        ]
        return {"symbol": "BTCUSDT", "category": "linear", "list": items}

    fake.routes[OI] = cursor_pages([page(6), page(3), page(0)])
    out = await client.open_interest("BTCUSDT", T0, T0 + timedelta(hours=1))
    assert [p.open_interest for p in out] == [1000.5 + i for i in range(9)]
    calls = fake.calls(OI)
    assert [c.get("cursor") for c in calls] == [None, "c1", "c2"]
    assert all(c["intervalTime"] == "5min" and c["limit"] == "200" for c in calls)


async def test_funding_history_always_sends_end_time(
    fake: FakeVenue, client: BybitMarketData
) -> None:
    stamps = [T0 + timedelta(hours=8 * i) for i in range(450)]

    def route(query: dict[str, str]) -> Reply:
        if "endTime" not in query:
            return Reply(body=sample("bybit_error_10001.json"))
        lo, hi = int(query["startTime"]), int(query["endTime"])
        picked = [t for t in reversed(stamps) if lo <= ms(t) <= hi][: int(query["limit"])]
        items = [
            {"symbol": "BTCUSDT", "fundingRate": "0.0001", "fundingRateTimestamp": str(ms(t))}
            for t in picked
        ]
        return ok({"category": "linear", "list": items})

    fake.routes[FUNDING] = route
    out = await client.funding_history("BTCUSDT", stamps[0], stamps[-1])
    assert [f.time for f in out] == stamps
    assert all(f.funding_rate_pct == pytest.approx(0.01) for f in out)
    calls = fake.calls(FUNDING)
    assert len(calls) == 3 and all("endTime" in c and c["limit"] == "200" for c in calls)


async def test_server_time(fake: FakeVenue, client: BybitMarketData) -> None:
    fake.routes[TIME] = lambda q: Reply(body=sample("bybit_server_time_docs.json"))
    assert await client.server_time() == datetime(2023, 7, 6, 10, 30, 3, 423213, tzinfo=UTC)


# --- REST: errors --------------------------------------------------------------------------------------


@pytest.fixture
def time_ok(fake: FakeVenue) -> None:
    fake.routes[TIME] = lambda q: Reply(body=sample("bybit_server_time_docs.json"))


@pytest.mark.usefixtures("time_ok")
async def test_5xx_and_busy_codes_are_retried(fake: FakeVenue, client: BybitMarketData) -> None:
    fake.script(TIME, Reply(503, "busy"), Reply(body=sample("bybit_error_10016.json")))
    assert (await client.server_time()).year == 2023
    assert len(fake.calls(TIME)) == 3


@pytest.mark.usefixtures("time_ok")
async def test_garbage_body_is_temporary(fake: FakeVenue, client: BybitMarketData) -> None:
    fake.script(TIME, Reply(200, "<html>gateway</html>"))
    assert (await client.server_time()).year == 2023
    assert len(fake.calls(TIME)) == 2


@pytest.mark.usefixtures("time_ok")
async def test_timeouts_are_retried_then_given_up(fake: FakeVenue) -> None:
    c = BybitMarketData(fake.url, 1000, timeout_s=0.2, retry_policy=RetryPolicy(2, 0.01, 0.02))
    fake.script(TIME, Reply(body=sample("bybit_server_time_docs.json"), delay_s=0.5))
    assert (await c.server_time()).year == 2023
    fake.script(TIME, *[Reply(body={}, delay_s=0.5)] * 2)
    with pytest.raises(TemporaryError):
        await c.server_time()
    await c.aclose()


@pytest.mark.usefixtures("time_ok")
async def test_rate_limit_waits_until_the_reset_header(
    fake: FakeVenue, client: BybitMarketData
) -> None:
    reset = int(time.time() * 1000) + 400
    fake.script(
        TIME,
        Reply(
            body=sample("bybit_error_10006.json"),
            headers={"X-Bapi-Limit-Reset-Timestamp": str(reset)},
        ),
    )
    started = time.monotonic()
    assert (await client.server_time()).year == 2023
    assert time.monotonic() - started >= 0.35
    assert len(fake.calls(TIME)) == 2


@pytest.mark.usefixtures("time_ok")
async def test_http_429_is_rate_limited(fake: FakeVenue, client: BybitMarketData) -> None:
    fake.script(TIME, Reply(429, "slow down", headers={"Retry-After": "0.1"}))
    assert (await client.server_time()).year == 2023
    assert len(fake.calls(TIME)) == 2


async def test_ip_ban_waits_ten_minutes(fake: FakeVenue) -> None:
    c = BybitMarketData(fake.url, 1000, retry_policy=RetryPolicy(1, 0.01, 0.02))
    fake.script(TIME, Reply(403, "access too frequent"))
    with pytest.raises(RateLimited) as info:
        await c.server_time()
    assert info.value.retry_after_s == 600
    assert c.bucket.paused_for > 590  # every call of this client waits, not just this one
    await c.aclose()


@pytest.mark.usefixtures("time_ok")
async def test_permanent_errors_are_not_retried(fake: FakeVenue, client: BybitMarketData) -> None:
    fake.script(TIME, Reply(body=sample("bybit_error_10001.json")))
    with pytest.raises(PermanentError, match="10001"):
        await client.server_time()
    fake.script(TIME, Reply(404, "no such path"))
    with pytest.raises(PermanentError, match="404"):
        await client.server_time()
    assert len(fake.calls(TIME)) == 2


async def test_unreachable_host_is_temporary() -> None:
    c = BybitMarketData(
        "http://127.0.0.1:9", 1000, timeout_s=1, retry_policy=RetryPolicy(2, 0.01, 0.02)
    )
    with pytest.raises(TemporaryError, match="unreachable"):
        await c.server_time()
    await c.aclose()


async def test_wrong_symbol_reply_is_bad_not_retried(
    fake: FakeVenue, client: BybitMarketData, bad: BadLog
) -> None:
    fake.routes[KLINE] = kline_route("ETHUSDT", minute_rows(T0, 3), ms(T0 + timedelta(days=1)))
    with pytest.raises(BadPayload, match="asked for BTCUSDT"):
        await client.klines("BTCUSDT", T0, T0 + timedelta(hours=1))
    assert len(fake.calls(KLINE)) == 1
    assert bad.kinds() == ["kline"]


# --- WebSocket -----------------------------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.tickers: list[Ticker] = []
        self.candles: list[Candle] = []
        self.liquidations: list[LiquidationEvent] = []
        self.threads: set[int] = set()

    async def ticker(self, t: Ticker) -> None:
        self.threads.add(threading.get_ident())
        self.tickers.append(t)

    async def candle(self, c: Candle) -> None:
        self.threads.add(threading.get_ident())
        self.candles.append(c)

    async def liquidation(self, e: LiquidationEvent) -> None:
        self.threads.add(threading.get_ident())
        self.liquidations.append(e)


def kline_msg(symbol: str, minute: int) -> dict[str, Any]:
    start = ms(T0 + timedelta(minutes=minute))
    item = {"start": start, "end": start + 59_999, "interval": "1", "open": "10", "close": "10.5",
            "high": "11", "low": "9.5", "volume": "3", "turnover": "31", "confirm": True,
            "timestamp": start + 59_000}  # fmt: skip
    return {"topic": f"kline.1.{symbol}", "data": [item], "ts": start + 59_000, "type": "snapshot"}


def ticker_msg(kind: str, **data: str) -> dict[str, Any]:
    return {"topic": "tickers.BTCUSDT", "type": kind, "data": {"symbol": "BTCUSDT", **data},
            "cs": 1, "ts": ms(T0)}  # fmt: skip


SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


@pytest.fixture
async def stream(fake: FakeVenue, bad: BadLog) -> AsyncIterator[tuple[BybitPublicStream, Sink]]:
    sink = Sink()
    s = BybitPublicStream(
        fake.ws_url, SYMBOLS, on_ticker=sink.ticker, on_candle=sink.candle,
        on_liquidation=sink.liquidation, on_bad=bad, symbols_per_connection=2,
        reconnect_grace_s=0.5, backoff_base_s=0.05, backoff_max_s=0.2,
    )  # fmt: skip
    await s.start()
    yield s, sink
    await s.stop()


def all_topics() -> set[str]:
    return {f"{p}.{s}" for s in SYMBOLS for p in ("tickers", "kline.1", "allLiquidation")}


async def test_stream_delivers_typed_models_on_the_loop(
    fake: FakeVenue, stream: tuple[BybitPublicStream, Sink], bad: BadLog
) -> None:
    s, sink = stream
    assert s.connected and s.shards == 2
    assert fake.topics() == all_topics()
    assert fake.ws_connects == 2
    snapshot = sample("bybit_ws_ticker_docs.json")
    await fake.push("tickers.BTCUSDT", snapshot)
    await fake.push("tickers.BTCUSDT", ticker_msg("delta", lastPrice="17300.00"))
    await fake.push("kline.1.SOLUSDT", kline_msg("SOLUSDT", 0))
    liq = sample("bybit_ws_all_liquidation_mixed.json")
    await fake.push("allLiquidation.BTCUSDT", liq)
    await eventually(
        lambda: len(sink.tickers) == 2 and bool(sink.candles) and len(sink.liquidations) == 2
    )
    first, merged = sink.tickers
    assert first.last_price == 17216.0  # pybit mutates its dict; ours was copied in time
    assert merged.last_price == 17300.0 and merged.mark_price == 17217.33  # delta merged by pybit
    assert sink.candles[0].symbol == "SOLUSDT" and sink.candles[0].interval == "1m"
    assert [e.side for e in sink.liquidations] == ["long", "short"]
    assert sink.threads == {threading.get_ident()}  # the test's loop thread, not pybit's
    await eventually(lambda: len(bad.calls) == 4)
    assert set(bad.kinds()) == {"liquidation"}


@pytest.mark.parametrize("abort", [False, True])
async def test_dropped_socket_reconnects_and_messages_resume(
    fake: FakeVenue, stream: tuple[BybitPublicStream, Sink], abort: bool
) -> None:
    s, sink = stream
    await fake.drop_sockets(abort=abort)
    await eventually(
        lambda: fake.ws_connects >= 4 and fake.topics() == all_topics(), what="resubscribe"
    )
    await eventually(lambda: s.connected)
    await fake.push("kline.1.BTCUSDT", kline_msg("BTCUSDT", 1))
    await fake.push("kline.1.SOLUSDT", kline_msg("SOLUSDT", 1))
    await eventually(lambda: {c.symbol for c in sink.candles} == {"BTCUSDT", "SOLUSDT"})


async def test_outage_longer_than_pybit_retries_is_rebuilt(
    fake: FakeVenue, stream: tuple[BybitPublicStream, Sink]
) -> None:
    s, sink = stream
    fake.refuse_ws = True
    await fake.drop_sockets()
    await asyncio.sleep(1.0)  # pybit burns its immediate retries and gives up
    assert not s.connected
    fake.refuse_ws = False
    await eventually(
        lambda: s.connected and fake.topics() == all_topics(), timeout=8, what="rebuild"
    )
    await fake.push("allLiquidation.ETHUSDT", {"topic": "allLiquidation.ETHUSDT", "type": "snapshot",
                    "ts": 1, "data": [{"T": 1, "s": "ETHUSDT", "S": "Sell", "v": "1", "p": "2"}]})  # fmt: skip
    await eventually(lambda: len(sink.liquidations) == 1)


async def test_only_subscribed_callbacks_and_prompt_stop(fake: FakeVenue) -> None:
    sink = Sink()
    s = BybitPublicStream(
        fake.ws_url, ["BTCUSDT"], on_ticker=None, on_candle=sink.candle, on_liquidation=None,
        on_bad=None,
    )  # fmt: skip
    await s.start()
    assert fake.topics() == {"kline.1.BTCUSDT"}
    started = time.monotonic()
    await s.stop()
    assert time.monotonic() - started < 5
    assert not s.connected
    await eventually(lambda: not fake.sockets, what="server sees the socket closed")


async def test_start_with_the_venue_down_keeps_trying(fake: FakeVenue) -> None:
    fake.refuse_ws = True
    sink = Sink()
    s = BybitPublicStream(
        fake.ws_url, ["BTCUSDT"], on_ticker=None, on_candle=sink.candle, on_liquidation=None,
        on_bad=None, start_timeout_s=0.5, backoff_base_s=0.05, backoff_max_s=0.1,
    )  # fmt: skip
    await s.start()
    assert not s.connected
    fake.refuse_ws = False
    await eventually(lambda: s.connected and fake.topics() == {"kline.1.BTCUSDT"})
    started = time.monotonic()
    await s.stop()
    assert time.monotonic() - started < 5


async def test_first_push_before_the_ack_and_refused_topics_keep_the_socket(
    fake: FakeVenue,
) -> None:
    # Bybit pushes a snapshot right after subscribing; locally that beats pybit's own
    # bookkeeping of the request (pybit would hit a KeyError in its reader and close for good)
    fake.push_on_subscribe["kline.1.BTCUSDT"] = kline_msg("BTCUSDT", 0)
    fake.refuse_topics = {"allLiquidation.BTCUSDT"}
    sink = Sink()
    s = BybitPublicStream(
        fake.ws_url, ["BTCUSDT"], on_ticker=None, on_candle=sink.candle,
        on_liquidation=sink.liquidation, on_bad=None, reconnect_grace_s=0.3,
    )  # fmt: skip
    await s.start()
    await eventually(lambda: len(sink.candles) == 1)
    await asyncio.sleep(0.5)
    assert s.connected and fake.ws_connects == 1  # never dropped, never rebuilt
    await fake.push("kline.1.BTCUSDT", kline_msg("BTCUSDT", 1))
    await eventually(lambda: len(sink.candles) == 2)
    await s.stop()


# --- pybit behaviours the adapter relies on (fail here first if a pybit upgrade changes them) ------


async def test_pybit_max_retries_zero_sends_nothing(fake: FakeVenue) -> None:
    from pybit.unified_trading import HTTP  # type: ignore[import-untyped]

    session = HTTP(testnet=False, max_retries=0)
    session.endpoint = fake.url
    with pytest.raises(UnboundLocalError):  # its retry loop never runs: hence max_retries=1
        await asyncio.to_thread(session.get_server_time)
    assert fake.requests == []


@pytest.mark.usefixtures("time_ok")
async def test_pybit_exposes_response_headers(fake: FakeVenue) -> None:
    from pybit.exceptions import InvalidRequestError  # type: ignore[import-untyped]
    from pybit.unified_trading import HTTP

    session = HTTP(testnet=False, max_retries=1, return_response_headers=True)
    session.endpoint = fake.url
    session.retry_codes = set()
    _, _, headers = await asyncio.to_thread(session.get_server_time)
    assert "application/json" in headers["Content-Type"]
    reset = {"X-Bapi-Limit-Reset-Timestamp": "1700000000000"}
    fake.script(TIME, Reply(body=sample("bybit_error_10006.json"), headers=reset))
    with pytest.raises(InvalidRequestError) as info:
        await asyncio.to_thread(session.get_server_time)
    assert info.value.status_code == 10006
    assert info.value.resp_headers["X-Bapi-Limit-Reset-Timestamp"] == "1700000000000"
