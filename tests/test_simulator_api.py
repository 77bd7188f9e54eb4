"""The simulator as real clients see it: pybit's HTTP and WebSocket clients (pointed at it the
documented way), httpx for the CoinGlass-shaped heatmaps and the /sim test hooks, raw
WebSocket frames for the protocol details, and the service as a real process."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import httpx
import numpy as np
import pybit.unified_trading as ut
import pytest
import websocket
from pybit.exceptions import FailedRequestError, InvalidRequestError
from pybit.unified_trading import HTTP

from quantcore.config import ConfigError
from quantcore.model.market import TIMEFRAMES
from quantcore.sim import Market, MarketConfig
from quantcore.testing import free_port
from svc_simulator.faults import Faults, parse_faults
from svc_simulator.scenario import Scenario, parse_scenario
from svc_simulator.server import SimServer
from tests.conftest import eventually

COINS = 12
SPEED = 60.0  # a simulated minute per second: liquidations and candles arrive quickly


@dataclass
class Sim:
    server: SimServer
    base: str
    ws_url: str
    symbols: list[str]

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.base + path, timeout=10, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.base + path, timeout=10, **kwargs)


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    """The simulator server on a free port, in its own thread and event loop."""
    market = Market(MarketConfig(seed=5, coins=COINS, history_days=0.5))
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        server = SimServer(market, speed=SPEED, faults=Faults(), seed=5, host="127.0.0.1", port=0)
        await server.start()
        stop = asyncio.Event()
        holder.update(server=server, stop=stop, loop=asyncio.get_running_loop())
        ready.set()
        await stop.wait()
        await server.stop()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert ready.wait(30)
    server: SimServer = holder["server"]
    base = f"http://127.0.0.1:{server.port}"
    yield Sim(
        server,
        base,
        f"ws://127.0.0.1:{server.port}/v5/public/linear",
        [c.symbol for c in market.coins],
    )
    holder["loop"].call_soon_threadsafe(holder["stop"].set)
    thread.join(10)


@pytest.fixture
def bybit(sim: Sim) -> HTTP:
    session = HTTP(testnet=False)
    session.endpoint = sim.base
    return session


@pytest.fixture
def no_faults(sim: Sim) -> Iterator[None]:
    yield
    assert sim.post("/sim/faults", content="").status_code == 200


def within(seconds: float, fn: Callable[[], None]) -> None:
    """Run fn, failing instead of hanging: pybit's subscribe() waits for a connection forever."""
    error: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            error.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"did not finish within {seconds}s"
    if error:
        raise error[0]


def all_strings(row: dict[str, Any], skip: tuple[str, ...] = ()) -> bool:
    return all(isinstance(v, str) for k, v in row.items() if k not in skip)


# --- Bybit REST through pybit -------------------------------------------------------------------


def test_instruments_info_paginates_with_a_cursor(bybit: HTTP, sim: Sim) -> None:
    symbols: list[str] = []
    cursor = None
    pages = 0
    while True:
        kwargs = {"category": "linear", "limit": 5} | ({"cursor": cursor} if cursor else {})
        response = bybit.get_instruments_info(**kwargs)
        assert response["retCode"] == 0 and response["retMsg"] == "OK"
        result = response["result"]
        assert result["category"] == "linear"
        for item in result["list"]:
            assert item["status"] == "Trading" and item["contractType"] == "LinearPerpetual"
            assert item["quoteCoin"] == "USDT" and item["symbol"] == item["baseCoin"] + "USDT"
            assert float(item["priceFilter"]["tickSize"]) > 0
            assert float(item["lotSizeFilter"]["qtyStep"]) > 0
            assert isinstance(item["leverageFilter"]["maxLeverage"], str)
            assert item["fundingInterval"] == 480 and item["unifiedMarginTrade"] is True
        symbols += [item["symbol"] for item in result["list"]]
        pages += 1
        cursor = result["nextPageCursor"]
        if not cursor:
            break
    assert pages == 3
    assert sorted(symbols) == sorted(sim.symbols) and len(set(symbols)) == COINS
    one = bybit.get_instruments_info(category="linear", symbol="ETHUSDT")["result"]["list"]
    assert [i["symbol"] for i in one] == ["ETHUSDT"]


def test_tickers_are_string_encoded(bybit: HTTP, sim: Sim) -> None:
    rows = bybit.get_tickers(category="linear")["result"]["list"]
    assert sorted(r["symbol"] for r in rows) == sorted(sim.symbols)
    for row in rows:
        assert all_strings(row)
        last = float(row["lastPrice"])
        assert float(row["lowPrice24h"]) <= last <= float(row["highPrice24h"])
        assert float(row["openInterest"]) > 0 and float(row["openInterestValue"]) > 0
        assert float(row["turnover24h"]) > 0 and int(row["nextFundingTime"]) % (8 * 3600_000) == 0
        assert abs(float(row["price24hPcnt"]) - (last / float(row["prevPrice24h"]) - 1)) < 1e-5
    one = bybit.get_tickers(category="linear", symbol="BTCUSDT")
    assert [r["symbol"] for r in one["result"]["list"]] == ["BTCUSDT"]
    assert isinstance(one["time"], int)


@pytest.mark.parametrize(
    ("interval", "seconds"), [("1", 60), ("5", 300), ("15", 900), ("60", 3600), ("D", 86400)]
)
def test_kline_is_newest_first(bybit: HTTP, interval: str, seconds: int) -> None:
    result = bybit.get_kline(category="linear", symbol="SOLUSDT", interval=interval, limit=20)[
        "result"
    ]
    assert result["symbol"] == "SOLUSDT" and result["category"] == "linear"
    rows = result["list"]
    assert 1 <= len(rows) <= 20
    starts = [int(r[0]) for r in rows]
    assert all(a - b == seconds * 1000 for a, b in pairwise(starts))
    for row in rows:
        assert len(row) == 7 and all(isinstance(v, str) for v in row)
        o, h, low, c = map(float, row[1:5])
        assert low <= min(o, c) <= max(o, c) <= h
    if interval == "1":  # start/end select a window; the default limit is 200
        end = starts[5]
        window = bybit.get_kline(
            category="linear", symbol="SOLUSDT", interval="1", start=starts[10], end=end
        )
        assert [int(r[0]) for r in window["result"]["list"]] == starts[5:11]
        default = bybit.get_kline(category="linear", symbol="SOLUSDT", interval="1")
        assert len(default["result"]["list"]) == 200


def test_open_interest_pages_back_in_time(bybit: HTTP) -> None:
    first = bybit.get_open_interest(
        category="linear", symbol="ETHUSDT", intervalTime="5min", limit=50
    )["result"]
    assert first["symbol"] == "ETHUSDT" and len(first["list"]) == 50 and first["nextPageCursor"]
    second = bybit.get_open_interest(
        category="linear",
        symbol="ETHUSDT",
        intervalTime="5min",
        limit=50,
        cursor=first["nextPageCursor"],
    )["result"]
    stamps = [int(r["timestamp"]) for r in first["list"] + second["list"]]
    assert all(a - b == 300_000 for a, b in pairwise(stamps))
    assert all(
        float(r["openInterest"]) > 0 and isinstance(r["openInterest"], str) for r in first["list"]
    )
    hourly = bybit.get_open_interest(
        category="linear", symbol="ETHUSDT", intervalTime="1d", limit=200
    )
    assert (
        len(hourly["result"]["list"]) == 200
    )  # the daily series reaches back through the 4-h past


def test_funding_history_follows_the_time_rules(bybit: HTTP) -> None:
    latest = bybit.get_funding_rate_history(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert len(latest) == 200
    stamps = [int(r["fundingRateTimestamp"]) for r in latest]
    assert all(a - b == 8 * 3600_000 for a, b in pairwise(stamps))
    assert all(r["symbol"] == "BTCUSDT" and isinstance(r["fundingRate"], str) for r in latest)
    until = stamps[10]
    older = bybit.get_funding_rate_history(
        category="linear", symbol="BTCUSDT", endTime=until, limit=5
    )
    assert [int(r["fundingRateTimestamp"]) for r in older["result"]["list"]] == stamps[10:15]
    with pytest.raises(InvalidRequestError) as err:
        bybit.get_funding_rate_history(category="linear", symbol="BTCUSDT", startTime=stamps[20])
    assert err.value.status_code == 10001


def test_errors_come_in_the_bybit_envelope(bybit: HTTP, sim: Sim) -> None:
    with pytest.raises(InvalidRequestError) as err:
        bybit.get_tickers(category="linear", symbol="NOPEUSDT")
    assert err.value.status_code == 10001 and "symbol invalid" in err.value.message
    raw = sim.get("/v5/market/tickers", params={"category": "linear", "symbol": "NOPEUSDT"})
    assert raw.status_code == 200
    body = raw.json()
    assert body["retCode"] == 10001 and body["retMsg"] == "params error: symbol invalid"
    assert body["result"] == {"category": "", "list": []} and body["retExtInfo"] == {}
    for params in (
        {"category": "linear", "symbol": "BTCUSDT", "interval": "7"},
        {"category": "linear", "symbol": "BTCUSDT", "interval": "1", "limit": "x"},
        {"category": "nonsense", "symbol": "BTCUSDT", "interval": "1"},
    ):
        body = sim.get("/v5/market/kline", params=params).json()
        assert body["retCode"] == 10001 and body["retMsg"], params
    assert sim.get("/v5/market/tickers").json()["retMsg"] == "Illegal category"
    assert "X-Bapi-Limit-Status" in raw.headers


def test_server_time(bybit: HTTP) -> None:
    result = bybit.get_server_time()["result"]
    assert int(result["timeNano"]) // 1_000_000_000 == int(result["timeSecond"])
    assert abs(int(result["timeSecond"]) - time.time()) < 3600  # speed 60: close to now


# --- Bybit WebSocket -----------------------------------------------------------------------------------


def test_pybit_websocket_streams(sim: Sim) -> None:
    ut.PUBLIC_WSS = sim.ws_url  # before constructing: pybit reads it in __init__
    ws = ut.WebSocket(testnet=False, channel_type="linear")
    got: dict[str, list[dict[str, Any]]] = {"ticker": [], "kline": [], "liq": []}
    try:

        def subscribe() -> None:
            ws.ticker_stream("BTCUSDT", lambda m: got["ticker"].append(dict(m["data"])))
            ws.kline_stream(1, "BTCUSDT", lambda m: got["kline"].append(m))
            ws.all_liquidation_stream(sim.symbols, lambda m: got["liq"].append(m))

        within(20, subscribe)
        eventually(lambda: len(got["ticker"]) >= 3 and len(got["kline"]) >= 2, timeout=20)
        eventually(lambda: got["liq"], timeout=40)
    finally:
        ws.exit()
    ticker = got["ticker"][-1]
    assert (
        ticker["symbol"] == "BTCUSDT"
        and float(ticker["lastPrice"]) > 0
        and "tickDirection" in ticker
    )
    candle = got["kline"][-1]["data"][-1]
    assert candle["interval"] == "1" and candle["end"] - candle["start"] == 59_999
    assert isinstance(candle["confirm"], bool) and isinstance(candle["open"], str)
    event = got["liq"][0]
    assert event["topic"].startswith("allLiquidation.") and event["type"] == "snapshot"
    item = event["data"][0]
    assert set(item) == {"T", "s", "S", "v", "p"} and item["S"] in ("Buy", "Sell")
    assert (
        float(item["v"]) > 0 and float(item["p"]) > 0 and item["s"] == event["topic"].split(".")[1]
    )


def _recv(
    conn: websocket.WebSocket, match: Callable[[dict[str, Any]], bool], timeout: float = 15
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn.settimeout(max(0.1, deadline - time.monotonic()))
        message: dict[str, Any] = json.loads(conn.recv())
        if match(message):
            return message
    raise AssertionError("no matching message")


def test_websocket_protocol(sim: Sim) -> None:
    conn = websocket.create_connection(sim.ws_url, timeout=10)
    try:
        conn.send(
            json.dumps(
                {"req_id": "r1", "op": "subscribe", "args": ["tickers.ETHUSDT", "kline.5.ETHUSDT"]}
            )
        )
        ack = _recv(conn, lambda m: m.get("op") == "subscribe")
        assert (
            ack["success"] is True
            and ack["ret_msg"] == ""
            and ack["req_id"] == "r1"
            and ack["conn_id"]
        )
        snapshot = _recv(conn, lambda m: m.get("topic") == "tickers.ETHUSDT")
        assert snapshot["type"] == "snapshot" and isinstance(snapshot["data"], dict)
        assert isinstance(snapshot["cs"], int) and isinstance(snapshot["ts"], int)
        assert {"lastPrice", "markPrice", "openInterest", "fundingRate", "bid1Price"} <= set(
            snapshot["data"]
        )
        delta = _recv(conn, lambda m: m.get("topic") == "tickers.ETHUSDT")
        assert delta["type"] == "delta" and delta["data"]["symbol"] == "ETHUSDT"
        assert len(delta["data"]) < len(snapshot["data"])  # only what changed
        candle = _recv(conn, lambda m: m.get("topic") == "kline.5.ETHUSDT")
        assert candle["data"][0]["interval"] == "5" and candle["type"] == "snapshot"
        conn.send(json.dumps({"req_id": "p1", "op": "ping"}))
        pong = _recv(conn, lambda m: m.get("op") == "ping")
        assert pong == {
            "success": True,
            "ret_msg": "pong",
            "conn_id": ack["conn_id"],
            "req_id": "p1",
            "op": "ping",
        }
        conn.send(
            json.dumps(
                {
                    "req_id": "r2",
                    "op": "subscribe",
                    "args": ["orderbook.1.ETHUSDT", "tickers.NOPEUSDT"],
                }
            )
        )
        bad = _recv(conn, lambda m: m.get("req_id") == "r2")
        assert (
            bad["success"] is False
            and "error:handler not found,topic:orderbook.1.ETHUSDT" in bad["ret_msg"]
        )
        conn.send(json.dumps({"req_id": "u1", "op": "unsubscribe", "args": ["tickers.ETHUSDT"]}))
        assert _recv(conn, lambda m: m.get("op") == "unsubscribe")["success"] is True
        conn.ping("x")  # a protocol-level ping is answered by the server too
        for _ in range(100):
            opcode, data = conn.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_PONG:
                assert data == b"x"
                break
        else:
            raise AssertionError("no pong frame")
    finally:
        conn.close()


CLOSED = (websocket.WebSocketConnectionClosedException, ConnectionError, OSError)


def drain(conn: websocket.WebSocket, frames: int) -> None:
    for _ in range(frames):
        conn.recv()


def test_dropped_sockets_are_cut_and_pybit_reconnects(sim: Sim, no_faults: None) -> None:
    raw = websocket.create_connection(sim.ws_url, timeout=10)
    raw.send(json.dumps({"op": "subscribe", "args": ["tickers.BTCUSDT"]}))
    _recv(raw, lambda m: m.get("op") == "subscribe")
    ut.PUBLIC_WSS = sim.ws_url
    client = ut.WebSocket(testnet=False, channel_type="linear")
    seen: list[int] = []
    try:
        within(20, lambda: client.ticker_stream("SOLUSDT", lambda m: seen.append(1)))
        eventually(lambda: seen, timeout=10)
        dropped = sim.post("/sim/ws/drop").json()["dropped"]
        assert dropped >= 2
        with pytest.raises(CLOSED):
            drain(raw, 50)
        count = len(seen)
        eventually(lambda: len(seen) > count + 2, timeout=30)  # pybit reconnected and resubscribed
        # Random drops: with 6000 expected drops a minute a connection lives well under a second.
        assert sim.post("/sim/faults", content="ws_drop_per_min=6000").status_code == 200
        lost = websocket.create_connection(sim.ws_url, timeout=10)
        with pytest.raises(CLOSED):
            drain(lost, 200)
    finally:
        client.exit()
        raw.close()
    assert sim.get("/sim/stats").json()["faults_injected"].get("ws_drop", 0) >= 1


# --- CoinGlass heatmaps -----------------------------------------------------------------------------


@pytest.mark.parametrize("timeframe", TIMEFRAMES)
def test_aggregated_heatmap_for_every_timeframe(sim: Sim, timeframe: str) -> None:
    response = sim.get(
        "/api/futures/liquidation/aggregated-heatmap/model2",
        params={"symbol": "BTC", "range": timeframe},
        headers={"CG-API-KEY": "anything"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == "0" and body["msg"] == "success"
    data = body["data"]
    y_axis, cells, candles = (
        data["y_axis"],
        data["liquidation_leverage_data"],
        data["price_candlesticks"],
    )
    assert 100 <= len(y_axis) <= 400 and all(isinstance(p, float) for p in y_axis)
    assert y_axis == sorted(y_axis)
    assert cells and all(
        len(c) == 3 and isinstance(c[0], int) and isinstance(c[1], int) for c in cells
    )
    assert all(0 <= x < len(candles) and 0 <= y < len(y_axis) and v > 0 for x, y, v in cells)
    assert all(
        isinstance(c[0], int) and all(isinstance(v, str) for v in c[1:]) and len(c) == 6
        for c in candles
    )
    last = len(candles) - 1
    latest = {y: v for x, y, v in cells if x == last}
    assert latest, "current levels sit in the latest column"
    # A level keeps its current value in every column from where it formed.
    for x, y, v in cells:
        assert latest.get(y, 0) >= v * 0.999 if x < last else True


def test_pair_heatmap_and_models(sim: Sim) -> None:
    totals = {}
    for model in ("model1", "model2", "model3"):
        body = sim.get(
            f"/api/futures/liquidation/heatmap/{model}",
            params={"exchange": "Bybit", "symbol": "ETHUSDT", "range": "7d"},
        ).json()
        assert body["code"] == "0"
        totals[model] = sum(v for _, _, v in body["data"]["liquidation_leverage_data"])
    assert totals["model1"] < totals["model2"] < totals["model3"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("aggregated-heatmap/model2", {"symbol": "NOPE", "range": "3d"}),
        ("aggregated-heatmap/model2", {"symbol": "BTC", "range": "2w"}),
        ("aggregated-heatmap/model2", {"range": "3d"}),
        ("heatmap/model2", {"exchange": "Bybit", "symbol": "BTC", "range": "3d"}),
        ("heatmap/model2", {"exchange": "Nowhere", "symbol": "BTCUSDT", "range": "3d"}),
    ],
)
def test_coinglass_errors(sim: Sim, path: str, params: dict[str, str]) -> None:
    body = sim.get(f"/api/futures/liquidation/{path}", params=params).json()
    assert body["code"] == "400" and body["msg"] and "data" not in body


# --- test hooks and faults ------------------------------------------------------------------------------


def test_request_counts_per_path_and_symbol(sim: Sim, bybit: HTTP) -> None:
    assert sim.post("/sim/stats/reset").json() == {"reset": True}
    for _ in range(3):
        bybit.get_kline(category="linear", symbol="ETHUSDT", interval="1", limit=2)
    bybit.get_tickers(category="linear")
    sim.get(
        "/api/futures/liquidation/aggregated-heatmap/model2",
        params={"symbol": "SOL", "range": "24h"},
    )
    stats = sim.get("/sim/stats").json()
    assert stats["by_path"] == {
        "/v5/market/kline": {"ETHUSDT": 3},
        "/v5/market/tickers": {"": 1},
        "/api/futures/liquidation/aggregated-heatmap/model2": {"SOL": 1},
    }
    assert stats["total"] == 5
    assert {"path": "/v5/market/kline", "symbol": "ETHUSDT", "count": 3} in stats["requests"]


def test_injected_rate_limits_and_server_errors(sim: Sim, no_faults: None) -> None:
    assert sim.post("/sim/faults", content="http_429=1").json()["faults"]["http_429"] == 1.0
    statuses = set()
    for _ in range(20):
        response = sim.get("/v5/market/tickers", params={"category": "linear"})
        statuses.add(response.status_code)
        body = response.json()
        assert body["retCode"] == 10006 and body["retMsg"] == "Too many visits"
        assert response.headers["X-Bapi-Limit-Status"] == "0"
        assert int(response.headers["X-Bapi-Limit-Reset-Timestamp"]) > time.time() * 1000 - 1000
        assert int(response.headers["X-Bapi-Limit"]) > 0
    assert 200 in statuses  # mostly the retCode reply, now and then HTTP 429
    cg = sim.get(
        "/api/futures/liquidation/aggregated-heatmap/model2",
        params={"symbol": "BTC", "range": "3d"},
    )
    assert cg.status_code == 429 and cg.json() == {"code": "429", "msg": "Too Many Requests"}
    sim.post("/sim/faults", json={"faults": "http_5xx=1"})
    for _ in range(10):
        response = sim.get(
            "/v5/market/kline", params={"category": "linear", "symbol": "BTCUSDT", "interval": "1"}
        )
        assert response.status_code in (502, 503)
        assert (
            response.headers.get("content-type", "").startswith("text/html") or not response.content
        )
    assert sim.get("/sim/state").status_code == 200  # the hooks are never faulted
    bad = sim.post("/sim/faults", content="http_429=2")
    assert bad.status_code == 400 and "SIM_FAULTS" in bad.json()["error"]
    injected = sim.get("/sim/stats").json()["faults_injected"]
    assert injected["http_429"] >= 21 and injected["http_5xx"] >= 10


def test_injected_slow_answers_still_answer(sim: Sim, no_faults: None) -> None:
    sim.post("/sim/faults", content="http_slow=1,slow_s=0.2")
    response = sim.get("/v5/market/tickers", params={"category": "linear"})
    assert response.status_code == 200 and response.json()["retCode"] == 0
    assert sim.get("/sim/stats").json()["faults_injected"]["http_slow"] >= 1


def test_pybit_retries_rate_limits(sim: Sim, bybit: HTTP, no_faults: None) -> None:
    sim.post("/sim/faults", content="http_429=0.3")
    failures: list[str] = []
    for _ in range(10):
        try:
            bybit.get_tickers(category="linear", symbol="BTCUSDT")
        except FailedRequestError as exc:  # HTTP 429 (system protection) is not retried by pybit
            failures.append(str(exc))
    assert len(failures) <= 4, failures
    assert all("429" in f or "Retries exceeded" in f for f in failures), failures


def test_sim_state(sim: Sim) -> None:
    state = sim.get("/sim/state").json()
    assert state["coins"] == COINS and state["symbols"] == sim.symbols
    assert state["speed"] == SPEED and state["seed"] == 5
    assert state["sim_time_ms"] > 0 and state["memory_bytes"] > 0
    before = state["sim_time_ms"]
    assert sim.post("/sim/advance", json={"seconds": 600}).status_code == 200
    eventually(lambda: sim.get("/sim/state").json()["sim_time_ms"] >= before + 600_000, timeout=20)


def test_sim_hunt_plants_a_hunt(sim: Sim) -> None:
    market = sim.server.state.market
    symbol = next(c.symbol for c in market.coins if market.whales.phase_of(c.index) == "idle"
                  and np.isfinite(market.appeal(c.index)))  # fmt: skip
    r = sim.post("/sim/hunt", json={"symbol": symbol, "push_in_s": 60})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["symbol"] == symbol and body["direction"] in ("up", "down")
    assert market.whales.phase_of(market.index[symbol]) == "build"
    again = sim.post("/sim/hunt", json={"symbol": symbol})  # re-planned: one campaign per coin
    assert again.status_code == 200, again.text
    under_way = [
        c for c in market.campaigns() if c.coin == market.index[symbol] and c.ended is None
    ]
    assert len(under_way) == 1
    assert sim.post("/sim/hunt", json={"symbol": "NOPEUSDT"}).status_code == 400
    assert sim.post("/sim/hunt", json={"symbol": symbol, "push_in_s": 5}).status_code == 400
    assert sim.post("/sim/hunt", content="{").status_code == 400


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Scenario()),
        ("quiet", Scenario(opening_hunts=0)),
        ("hunt:solusdt, XRPUSDT", Scenario(hunt_symbols=("SOLUSDT", "XRPUSDT"))),
    ],
)
def test_sim_scenario_parse(text: str, expected: Scenario) -> None:
    assert parse_scenario(text) == expected


@pytest.mark.parametrize("text", ["hunt", "hunt:", "loud", "hunt:A,A", "pump:SOLUSDT"])
def test_sim_scenario_is_parsed_strictly(text: str) -> None:
    with pytest.raises(ConfigError, match="SIM_SCENARIO"):
        parse_scenario(text)


# --- SIM_FAULTS and the service process ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Faults()),
        ("http_429=0.05,http_5xx=0.02,ws_drop_per_min=0.5", Faults(0.05, 0.02, 0.5)),
        (" http_5xx = 1 ", Faults(http_5xx=1.0)),
        ("http_slow=0.1,slow_s=3", Faults(http_slow=0.1, slow_s=3.0)),
    ],
)
def test_sim_faults_parse(text: str, expected: Faults) -> None:
    assert parse_faults(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "http_430=0.1",
        "http_429",
        "http_429=lots",
        "http_429=1.5",
        "ws_drop_per_min=-1",
        "http_429=0.1,http_429=0.2",
        "http_429=nan",
        "http_slow=2",
        "slow_s=500",
    ],
)
def test_sim_faults_are_parsed_strictly(text: str) -> None:
    with pytest.raises(ConfigError, match="SIM_FAULTS"):
        parse_faults(text)


def test_bad_sim_faults_stop_the_service_at_start() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "quantcore.cli", "run", "simulator"],
        env={
            "SIM_FAULTS": "http_5xx=often",
            "PATH": "/usr/bin:/bin",
            "QUANT_ENV_FILE": "/nonexistent",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "SIM_FAULTS" in proc.stderr


def test_service_serves_and_stops_on_sigterm(spawn: Any) -> None:
    port = free_port()
    proc = spawn(
        sys.executable,
        "-m",
        "quantcore.cli",
        "run",
        "simulator",
        env={
            "SIM_PORT": str(port),
            "SIM_COINS": "4",
            "SIM_HISTORY_DAYS": "0.2",
            "HEARTBEAT_INTERVAL_S": "0.5",
        },
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(base + "/sim/state", timeout=2).status_code == 200
        except httpx.HTTPError:
            return proc.poll() is not None  # stop waiting if it died

    eventually(up, timeout=60)
    assert proc.poll() is None, proc.stdout.read()
    body = httpx.get(base + "/v5/market/tickers", params={"category": "linear"}).json()
    assert len(body["result"]["list"]) == 4
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert time.monotonic() - started < 10
    output = proc.stdout.read()
    assert "simulator stopped" in output and "service stopped" in output


# --- the heatmap model's public inputs (issue 14): account ratio, risk limit, public trades ------


def test_account_ratio_pages_back_in_time(bybit: HTTP, sim: Sim) -> None:
    first = bybit.get_long_short_ratio(
        category="linear", symbol=sim.symbols[0], period="5min", limit=50
    )
    rows = first["result"]["list"]
    assert len(rows) == 50 and first["result"]["nextPageCursor"]
    assert set(rows[0]) == {"symbol", "buyRatio", "sellRatio", "timestamp"}
    assert all(all_strings(r) for r in rows)
    times = [int(r["timestamp"]) for r in rows]
    assert times == sorted(times, reverse=True) and {b - a for a, b in pairwise(times[::-1])} == {
        300_000
    }
    assert all(abs(float(r["buyRatio"]) + float(r["sellRatio"]) - 1) < 1e-9 for r in rows)
    assert len({r["buyRatio"] for r in rows}) > 1  # it moves with the book
    older = bybit.get_long_short_ratio(
        category="linear", symbol=sim.symbols[0], period="5min", limit=50,
        cursor=first["result"]["nextPageCursor"],
    )["result"]["list"]  # fmt: skip
    assert int(older[0]["timestamp"]) == times[-1] - 300_000
    with pytest.raises(InvalidRequestError, match="period"):
        bybit.get_long_short_ratio(category="linear", symbol=sim.symbols[0], period="2min")


def test_risk_limit_ladder(bybit: HTTP, sim: Sim) -> None:
    from quantcore.adapters.bybit import parse
    from quantcore.math import liqmodel as lm

    payload = bybit.get_risk_limit(category="linear", symbol=sim.symbols[0])
    tiers = parse.number_tiers(parse.risk_limit_page(payload, sim.symbols[0]).items)
    assert tiers[0].maintenance_margin_rate == 0.005  # the simulator's liquidations use it
    assert [t.tier for t in tiers] == list(range(1, len(tiers) + 1))
    rates = [t.maintenance_margin_rate for t in tiers]
    levs = [t.max_leverage or 0 for t in tiers]
    assert rates == sorted(rates) and levs == sorted(levs, reverse=True)
    # the served mmDeduction is the one that keeps maintenance margin continuous (the model
    # derives it so, liqmodel.mm_deduction, since the tiers table does not store it)
    served = [float(r["mmDeduction"] or 0) for r in payload["result"]["list"]]
    limits = [t.limit_usd for t in tiers]
    assert served == pytest.approx(lm.mm_deduction(limits, rates).tolist())
    every = bybit.get_risk_limit(category="linear")["result"]["list"]
    assert {r["symbol"] for r in every} == set(sim.symbols)


def test_public_trades_stream_taker_volume(sim: Sim) -> None:
    from quantcore.adapters.bybit import parse

    ut.PUBLIC_WSS = sim.ws_url
    ws = ut.WebSocket(testnet=False, channel_type="linear")
    got: list[dict[str, Any]] = []
    try:
        within(20, lambda: ws.trade_stream(sim.symbols[:3], got.append))
        eventually(lambda: len(got) >= 6, timeout=30)
    finally:
        ws.exit()
    item = got[0]["data"][0]
    assert got[0]["topic"].startswith("publicTrade.") and item["S"] in ("Buy", "Sell")
    assert {"T", "s", "S", "v", "p", "L", "i", "BT"} <= set(item)
    flows = [f for m in got for f in parse.ws_message(m).items]
    assert flows and all(isinstance(f, parse.TakerFlow) for f in flows)
    assert sum(f.buy_qty + f.sell_qty for f in flows) > 0
    assert all(not parse.ws_message(m).bad for m in got)
