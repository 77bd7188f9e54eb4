"""Bybit v5 private REST of the simulator, through the real pybit client (and raw signed
requests for the auth rules), and the pybit venue (`BybitVenue`) against it.

The simulator runs with its clock stopped (speed 0): prices move only through the /sim/price
hook, so fills, stops and fees are deterministic."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import httpx
import pytest
from pybit.exceptions import InvalidRequestError
from pybit.unified_trading import HTTP

from quantcore.adapters.bybit.execution import (
    BybitVenue,
    make_bybit_client,
    make_bybit_venue,
    trade_endpoint,
)
from quantcore.adapters.bybit.rest import BybitMarketData
from quantcore.config import LIVE_CONFIRMATION_PHRASE, ConfigError, Settings
from quantcore.errors import AuthError, TemporaryError
from quantcore.model.trading import OrderRequest
from quantcore.sim import Market, MarketConfig
from svc_simulator.faults import Faults
from svc_simulator.server import DEFAULT_ACCOUNTS, SimServer

TAKER = Decimal("0.00055")
MAKER = Decimal("0.0002")
SLIP = Decimal("0.0002")
WALLET = Decimal(10_000)
SYMBOL = "ETHUSDT"


@dataclass
class Sim:
    server: SimServer
    base: str

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.base + path, timeout=10, **kwargs)

    def last(self, symbol: str = SYMBOL) -> Decimal:
        r = httpx.get(
            self.base + "/v5/market/tickers", params={"category": "linear", "symbol": symbol}
        )
        return Decimal(r.json()["result"]["list"][0]["lastPrice"])

    def move(self, price: Decimal, symbol: str = SYMBOL) -> Decimal:
        r = self.post("/sim/price", json={"symbol": symbol, "price": float(price)})
        assert r.status_code == 200, r.text
        return Decimal(str(r.json()["price"]))

    def account(self) -> tuple[str, str]:
        """A fresh account (own wallet) for one test."""
        key, secret = f"k-{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
        r = self.post("/sim/accounts", json={"key": key, "secret": secret})
        assert r.status_code == 200, r.text
        return key, secret

    def session(self, key: str, secret: str) -> HTTP:
        s = HTTP(testnet=True, api_key=key, api_secret=secret, max_retries=1)
        s.endpoint = self.base
        s.retry_codes = set()
        return s


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    market = Market(MarketConfig(seed=11, coins=6, history_days=0.2))
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        server = SimServer(market, speed=0.0, faults=Faults(), seed=11, host="127.0.0.1", port=0)
        await server.start()
        stop = asyncio.Event()
        holder.update(server=server, stop=stop, loop=asyncio.get_running_loop())
        ready.set()
        await stop.wait()
        await server.stop()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert ready.wait(60)
    server: SimServer = holder["server"]
    yield Sim(server, f"http://127.0.0.1:{server.port}")
    holder["loop"].call_soon_threadsafe(holder["stop"].set)
    thread.join(10)


@pytest.fixture
def http(sim: Sim) -> HTTP:
    return sim.session(*sim.account())


def tick_up(price: Decimal, tick: Decimal = Decimal("0.01")) -> Decimal:
    return (price / tick).to_integral_value(ROUND_CEILING) * tick


def tick_down(price: Decimal, tick: Decimal = Decimal("0.01")) -> Decimal:
    return (price / tick).to_integral_value(ROUND_FLOOR) * tick


def eth_tick(sim: Sim) -> Decimal:
    r = httpx.get(
        sim.base + "/v5/market/instruments-info", params={"category": "linear", "symbol": SYMBOL}
    )
    return Decimal(r.json()["result"]["list"][0]["priceFilter"]["tickSize"])


def wallet(http: HTTP) -> dict[str, Any]:
    row: dict[str, Any] = http.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
    return row


def position(http: HTTP, symbol: str = SYMBOL) -> dict[str, Any]:
    row: dict[str, Any] = http.get_positions(category="linear", symbol=symbol)["result"]["list"][0]
    return row


# --- signing -------------------------------------------------------------------------------------------
def signed_post(
    sim: Sim, key: str, secret: str, path: str, body: str, *, ts: int | None = None,
    sent: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    timestamp = str(int(time.time() * 1000) if ts is None else ts)
    sign = hmac.new(secret.encode(), f"{timestamp}{key}5000{body}".encode(), hashlib.sha256)
    headers = {
        "X-BAPI-API-KEY": key, "X-BAPI-TIMESTAMP": timestamp, "X-BAPI-RECV-WINDOW": "5000",
        "X-BAPI-SIGN": sign.hexdigest(), "Content-Type": "application/json",
    }  # fmt: skip
    r = httpx.post(
        sim.base + path, content=(body if sent is None else sent).encode(), headers=headers
    )
    assert r.status_code == 200
    result: dict[str, Any] = r.json()
    return result


def test_a_correct_signature_opens_the_account(http: HTTP) -> None:
    row = wallet(http)
    assert row["accountType"] == "UNIFIED"
    assert Decimal(row["totalWalletBalance"]) == WALLET


def test_the_default_test_key_is_accepted(sim: Sim) -> None:
    ((key, secret),) = DEFAULT_ACCOUNTS.items()
    assert Decimal(wallet(sim.session(key, secret))["totalEquity"]) >= 0


def test_wrong_secret_is_a_sign_error(sim: Sim) -> None:
    key, _ = sim.account()
    with pytest.raises(InvalidRequestError) as err:
        wallet(sim.session(key, "not-the-secret"))
    assert err.value.status_code == 10004


def test_unknown_key_is_invalid(sim: Sim) -> None:
    with pytest.raises(InvalidRequestError) as err:
        wallet(sim.session("nobody", "whatever"))
    assert err.value.status_code == 10003


def test_stale_and_future_timestamps_are_outside_the_window(sim: Sim) -> None:
    key, secret = sim.account()
    body = json.dumps(
        {"category": "linear", "symbol": SYMBOL, "buyLeverage": "5", "sellLeverage": "5"}
    )
    now = int(time.time() * 1000)
    assert (
        signed_post(sim, key, secret, "/v5/position/set-leverage", body, ts=now - 60_000)["retCode"]
        == 10002
    )
    assert (
        signed_post(sim, key, secret, "/v5/position/set-leverage", body, ts=now + 30_000)["retCode"]
        == 10002
    )
    assert signed_post(sim, key, secret, "/v5/position/set-leverage", body)["retCode"] == 0


def test_the_signature_covers_the_raw_body(sim: Sim) -> None:
    """Same JSON, other spacing than what was signed: a sign error, as at Bybit."""
    key, secret = sim.account()
    body = json.dumps(
        {"category": "linear", "symbol": SYMBOL, "buyLeverage": "3", "sellLeverage": "3"}
    )
    compact = json.dumps(json.loads(body), separators=(",", ":"))
    reply = signed_post(sim, key, secret, "/v5/position/set-leverage", body, sent=compact)
    assert reply["retCode"] == 10004
    assert reply["retMsg"].startswith("error sign!")


# --- orders ----------------------------------------------------------------------------------------------
def test_market_order_fills_at_last_plus_slippage_with_taker_fee(sim: Sim, http: HTTP) -> None:
    last = sim.last()
    tick = eth_tick(sim)
    ack = http.place_order(
        category="linear",
        symbol=SYMBOL,
        side="Buy",
        orderType="Market",
        qty="0.10",
        orderLinkId="m-1",
    )
    assert ack["result"]["orderLinkId"] == "m-1"
    (fill,) = http.get_executions(category="linear", symbol=SYMBOL)["result"]["list"]
    price = tick_up(last * (1 + SLIP), tick)
    assert Decimal(fill["execPrice"]) == price
    assert fill["isMaker"] is False and fill["stopOrderType"] == "UNKNOWN"
    fee = Decimal("0.10") * price * TAKER
    assert Decimal(fill["execFee"]) == fee.quantize(Decimal("1e-8"))
    pos = position(http)
    assert (pos["side"], Decimal(pos["size"]), Decimal(pos["avgPrice"])) == (
        "Buy",
        Decimal("0.1"),
        price,
    )
    assert Decimal(wallet(http)["totalWalletBalance"]) == (WALLET - fee).quantize(Decimal("1e-8"))
    (order,) = http.get_open_orders(category="linear", orderLinkId="m-1")["result"]["list"]
    assert order["orderStatus"] == "Filled" and Decimal(order["cumExecQty"]) == Decimal("0.1")
    # a filled order is not open; with openOnly=1 it is among the recent closed ones
    assert http.get_open_orders(category="linear", symbol=SYMBOL)["result"]["list"] == []
    closed = http.get_open_orders(category="linear", symbol=SYMBOL, openOnly=1)["result"]["list"]
    assert [o["orderLinkId"] for o in closed] == ["m-1"]


def test_duplicate_order_link_id_is_110072(http: HTTP, sim: Sim) -> None:
    low = tick_down(sim.last() * Decimal("0.8"))
    http.place_order(
        category="linear",
        symbol=SYMBOL,
        side="Buy",
        orderType="Limit",
        qty="0.1",
        price=str(low),
        orderLinkId="dup-1",
    )
    with pytest.raises(InvalidRequestError) as err:
        http.place_order(
            category="linear",
            symbol=SYMBOL,
            side="Buy",
            orderType="Limit",
            qty="0.1",
            price=str(low),
            orderLinkId="dup-1",
        )
    assert err.value.status_code == 110072
    assert len(http.get_open_orders(category="linear", symbol=SYMBOL)["result"]["list"]) == 1


def test_batch_reports_each_order(http: HTTP, sim: Sim) -> None:
    low = tick_down(sim.last() * Decimal("0.8"))
    reply = http.place_batch_order(category="linear", request=[
        {"symbol": SYMBOL, "side": "Buy", "orderType": "Limit", "qty": "0.1", "price": str(low), "orderLinkId": "b-1"},
        {"symbol": SYMBOL, "side": "Buy", "orderType": "Limit", "qty": "0.1234567", "price": str(low), "orderLinkId": "b-2"},
        {"symbol": SYMBOL, "side": "Buy", "orderType": "Limit", "qty": "0.1", "price": str(low), "orderLinkId": "b-1"},
        {"symbol": SYMBOL, "side": "Sell", "orderType": "Market", "qty": "0.1", "reduceOnly": True, "orderLinkId": "b-4"},
    ])  # fmt: skip
    codes = [c["code"] for c in reply["retExtInfo"]["list"]]
    assert codes == [0, 10001, 110072, 110017]
    items = reply["result"]["list"]
    assert items[0]["orderLinkId"] == "b-1" and items[0]["orderId"]
    assert [i["orderId"] for i in items[1:]] == ["", "", ""]


def test_amend_and_cancel_round_trip(http: HTTP, sim: Sim) -> None:
    tick = eth_tick(sim)
    low = tick_down(sim.last() * Decimal("0.8"), tick)
    http.place_order(
        category="linear",
        symbol=SYMBOL,
        side="Buy",
        orderType="Limit",
        qty="0.1",
        price=str(low),
        orderLinkId="a-1",
    )
    lower = low - 10 * tick
    http.amend_order(
        category="linear", symbol=SYMBOL, orderLinkId="a-1", qty="0.2", price=str(lower)
    )
    (row,) = http.get_open_orders(category="linear", orderLinkId="a-1")["result"]["list"]
    assert (Decimal(row["qty"]), Decimal(row["price"]), row["orderStatus"]) == (
        Decimal("0.2"),
        lower,
        "New",
    )
    http.cancel_order(category="linear", symbol=SYMBOL, orderLinkId="a-1")
    (row,) = http.get_open_orders(category="linear", orderLinkId="a-1")["result"]["list"]
    assert row["orderStatus"] == "Cancelled" and row["cancelType"] == "CancelByUser"
    with pytest.raises(InvalidRequestError) as err:
        http.cancel_order(category="linear", symbol=SYMBOL, orderLinkId="a-1")
    assert err.value.status_code == 110001
    with pytest.raises(InvalidRequestError) as err:
        http.amend_order(category="linear", symbol=SYMBOL, orderLinkId="a-1", price=str(low))
    assert err.value.status_code == 110001


def test_limit_fills_only_when_the_price_trades_through(http: HTTP, sim: Sim) -> None:
    tick = eth_tick(sim)
    last = sim.last()
    limit = tick_down(last * Decimal("0.99"), tick)
    http.place_order(
        category="linear",
        symbol=SYMBOL,
        side="Buy",
        orderType="Limit",
        qty="0.5",
        price=str(limit),
        orderLinkId="l-1",
    )
    sim.move(limit)  # touching is not trading through
    (row,) = http.get_open_orders(category="linear", orderLinkId="l-1")["result"]["list"]
    assert row["orderStatus"] == "New"
    sim.move(limit - 3 * tick)
    (row,) = http.get_open_orders(category="linear", orderLinkId="l-1")["result"]["list"]
    assert row["orderStatus"] == "Filled" and Decimal(row["avgPrice"]) == limit
    (fill,) = http.get_executions(category="linear", orderLinkId="l-1")["result"]["list"]
    assert fill["isMaker"] is True
    assert Decimal(fill["execFee"]) == (Decimal("0.5") * limit * MAKER).quantize(Decimal("1e-8"))
    sim.move(last)


def test_stop_loss_closes_the_position_and_books_closed_pnl(http: HTTP, sim: Sim) -> None:
    tick = eth_tick(sim)
    last = sim.last()
    stop = tick_down(last * Decimal("0.97"), tick)
    take = tick_up(last * Decimal("1.05"), tick)
    http.place_order(
        category="linear",
        symbol=SYMBOL,
        side="Buy",
        orderType="Market",
        qty="1",
        orderLinkId="sl-1",
        stopLoss=str(stop),
        takeProfit=str(take),
        tpslMode="Full",
    )
    pos = position(http)
    assert (Decimal(pos["stopLoss"]), Decimal(pos["takeProfit"])) == (stop, take)
    stops = http.get_open_orders(category="linear", symbol=SYMBOL, orderFilter="StopOrder")[
        "result"
    ]["list"]
    assert sorted(o["stopOrderType"] for o in stops) == ["StopLoss", "TakeProfit"]
    assert all(o["orderStatus"] == "Untriggered" for o in stops)
    sim.move(stop + tick)
    assert Decimal(position(http)["size"]) == 1
    sim.move(stop - tick)  # through the stop, continuously: fills at the stop minus slippage
    pos = position(http)
    assert (pos["side"], Decimal(pos["size"])) == ("", 0)
    fills = http.get_executions(category="linear", symbol=SYMBOL)["result"]["list"]
    exit_fill, entry_fill = fills
    assert exit_fill["stopOrderType"] == "StopLoss" and exit_fill["orderLinkId"] == ""
    assert exit_fill["side"] == "Sell" and exit_fill["createType"] == "CreateByStopLoss"
    exit_price = tick_down((stop - tick) * (1 - SLIP), tick)
    assert Decimal(exit_fill["execPrice"]) == exit_price
    (pnl,) = http.get_closed_pnl(category="linear", symbol=SYMBOL)["result"]["list"]
    entry = Decimal(entry_fill["execPrice"])
    fees = Decimal(entry_fill["execFee"]) + Decimal(exit_fill["execFee"])
    assert Decimal(pnl["closedPnl"]) == pytest.approx(
        exit_price - entry - fees, abs=Decimal("1e-6")
    )
    assert Decimal(pnl["closedPnl"]) < 0
    assert Decimal(wallet(http)["totalWalletBalance"]) == pytest.approx(
        WALLET + exit_price - entry - fees, abs=Decimal("1e-6")
    )
    # the take-profit went with the position
    stops = http.get_open_orders(
        category="linear", symbol=SYMBOL, orderFilter="StopOrder", openOnly=1
    )["result"]["list"]
    assert {o["stopOrderType"]: o["orderStatus"] for o in stops} == {
        "StopLoss": "Filled",
        "TakeProfit": "Deactivated",
    }
    sim.move(last)


def test_trading_stop_moves_the_stop_and_take_profit_fires(http: HTTP, sim: Sim) -> None:
    tick = eth_tick(sim)
    last = sim.last()
    with pytest.raises(InvalidRequestError) as err:
        http.set_trading_stop(
            category="linear", symbol=SYMBOL, stopLoss=str(last * 2), tpslMode="Full", positionIdx=0
        )
    assert err.value.status_code == 10001  # no position
    http.place_order(
        category="linear",
        symbol=SYMBOL,
        side="Sell",
        orderType="Market",
        qty="0.3",
        orderLinkId="ts-1",
    )
    stop = tick_up(last * Decimal("1.04"), tick)
    take = tick_down(last * Decimal("0.95"), tick)
    http.set_trading_stop(
        category="linear",
        symbol=SYMBOL,
        stopLoss=str(stop),
        takeProfit=str(take),
        tpslMode="Full",
        positionIdx=0,
    )
    assert Decimal(position(http)["stopLoss"]) == stop
    tighter = tick_up(last * Decimal("1.02"), tick)
    http.set_trading_stop(
        category="linear", symbol=SYMBOL, stopLoss=str(tighter), tpslMode="Full", positionIdx=0
    )
    pos = position(http)
    assert (Decimal(pos["stopLoss"]), Decimal(pos["takeProfit"])) == (tighter, take)
    with pytest.raises(InvalidRequestError) as err:
        http.set_trading_stop(
            category="linear", symbol=SYMBOL, stopLoss=str(tighter), tpslMode="Full", positionIdx=0
        )
    assert err.value.status_code == 34040
    with pytest.raises(InvalidRequestError) as err:  # a short's stop below the price
        http.set_trading_stop(
            category="linear", symbol=SYMBOL, stopLoss=str(take), tpslMode="Full", positionIdx=0
        )
    assert err.value.status_code == 10001
    gap = take - 20 * tick
    sim.move(gap)  # a gap through the take-profit: fills at the market, not at the trigger
    assert Decimal(position(http)["size"]) == 0
    exit_fill = http.get_executions(category="linear", symbol=SYMBOL)["result"]["list"][0]
    assert exit_fill["stopOrderType"] == "TakeProfit" and exit_fill["side"] == "Buy"
    assert Decimal(exit_fill["execPrice"]) == tick_up(gap * (1 + SLIP), tick)
    (pnl,) = http.get_closed_pnl(category="linear")["result"]["list"]
    assert Decimal(pnl["closedPnl"]) > 0 and pnl["side"] == "Buy"
    sim.move(last)


def test_leverage_and_insufficient_balance(http: HTTP, sim: Sim) -> None:
    http.set_leverage(category="linear", symbol=SYMBOL, buyLeverage="2", sellLeverage="2")
    with pytest.raises(InvalidRequestError) as err:
        http.set_leverage(category="linear", symbol=SYMBOL, buyLeverage="2", sellLeverage="2")
    assert err.value.status_code == 110043
    big = (WALLET * 3 / sim.last()).quantize(Decimal("0.01"))
    with pytest.raises(InvalidRequestError) as err:
        http.place_order(
            category="linear", symbol=SYMBOL, side="Buy", orderType="Market", qty=str(big)
        )
    assert err.value.status_code == 110007
    http.set_leverage(category="linear", symbol=SYMBOL, buyLeverage="5", sellLeverage="5")
    http.place_order(category="linear", symbol=SYMBOL, side="Buy", orderType="Market", qty=str(big))
    assert position(http)["leverage"] == "5"


# --- the pybit venue -------------------------------------------------------------------------------------
def venue_settings(sim: Sim, key: str, secret: str, **more: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        trading_mode="testnet",
        bybit_testnet_api_key=key,
        bybit_testnet_api_secret=secret,
        bybit_endpoint_trade=sim.base,
        bybit_trade_rate_per_s=200,
        **more,
    )


@pytest.fixture
async def venue(sim: Sim) -> Any:
    v = make_bybit_venue(venue_settings(sim, *sim.account()), "testnet")
    yield v
    await v.close()


def req(link: str, side: str = "buy", **kw: Any) -> OrderRequest:
    fields: dict[str, Any] = {
        "symbol": SYMBOL,
        "side": side,
        "order_type": "market",
        "qty": Decimal("0.1"),
    }
    fields.update(kw)
    return OrderRequest(order_link_id=link, **fields)


async def test_venue_places_one_and_many_and_is_idempotent(venue: BybitVenue, sim: Sim) -> None:
    tick = eth_tick(sim)
    low = tick_down(sim.last() * Decimal("0.9"), tick)
    (one,) = await venue.place_orders([req("v-0")])
    assert (one.status, one.filled_qty, one.duplicate) == ("filled", Decimal("0.1"), False)
    assert one.fee > 0 and one.avg_fill_price is not None and one.price is None
    ladder = [
        req(f"v-{k}", order_type="limit", price=low - k * tick, stop_loss=low - 100 * tick)
        for k in range(1, 13)
    ]
    placed = await venue.place_orders(ladder)  # two batches: 10 + 2
    assert [o.order_link_id for o in placed] == [r.order_link_id for r in ladder]
    assert all(o.status == "new" and not o.duplicate and o.venue_order_id for o in placed)
    assert placed[0].price == low - tick and placed[0].stop_loss == low - 100 * tick
    again = await venue.place_orders([*ladder[:2], req("v-new", order_type="limit", price=low)])
    assert [o.duplicate for o in again] == [True, True, False]
    assert again[0].venue_order_id == placed[0].venue_order_id
    (dup_one,) = await venue.place_orders([req("v-0")])
    assert dup_one.duplicate and dup_one.venue_order_id == one.venue_order_id
    assert len(await venue.open_orders(SYMBOL)) == 13
    assert len(await venue.open_orders()) == 13


async def test_venue_reports_rejections_per_order(venue: BybitVenue, sim: Sim) -> None:
    results = await venue.place_orders([
        req("r-1", side="sell", reduce_only=True),  # no position to reduce
        req("r-2", qty=Decimal("0.1234567")),  # off the qty step
        req("r-3"),
    ])  # fmt: skip
    assert [o.status for o in results] == ["rejected", "rejected", "filled"]
    assert results[0].reject_reason is not None and results[0].reject_reason.startswith("110017")
    assert results[1].reject_reason is not None and results[1].reject_reason.startswith("10001")
    (single,) = await venue.place_orders([req("r-4", qty=Decimal(50))])
    assert single.status == "rejected" and single.reject_reason is not None
    assert single.reject_reason == "110007: ab not enough for new order"
    assert await venue.get_order(SYMBOL, "r-4") is None


async def test_venue_amend_cancel_and_lookups(venue: BybitVenue, sim: Sim) -> None:
    tick = eth_tick(sim)
    low = tick_down(sim.last() * Decimal("0.9"), tick)
    await venue.place_orders([req("c-1", order_type="limit", price=low)])
    amended = await venue.amend_order(SYMBOL, "c-1", qty=Decimal("0.3"), price=low - tick)
    assert (amended.qty, amended.price, amended.status) == (Decimal("0.3"), low - tick, "new")
    same = await venue.amend_order(SYMBOL, "c-1", price=low - tick)  # nothing to change
    assert same.price == low - tick
    cancelled = await venue.cancel_order(SYMBOL, "c-1")
    assert cancelled is not None and cancelled.status == "cancelled" and not cancelled.is_open
    again = await venue.cancel_order(SYMBOL, "c-1")
    assert again is not None and again.status == "cancelled"
    assert await venue.cancel_order(SYMBOL, "never-placed") is None
    assert await venue.get_order(SYMBOL, "never-placed") is None


async def test_venue_positions_stops_executions_pnl_equity(venue: BybitVenue, sim: Sim) -> None:
    tick = eth_tick(sim)
    last = sim.last()
    since = datetime.now(UTC) - timedelta(minutes=5)
    await venue.set_leverage(SYMBOL, Decimal(4))
    await venue.set_leverage(SYMBOL, Decimal(4))  # already so: no error
    before = await venue.equity()
    assert before.equity == before.balance == WALLET and before.currency == "USDT"
    await venue.place_orders([req("p-1", qty=Decimal("2"))])
    (pos,) = await venue.positions()
    assert (pos.symbol, pos.side, pos.size, pos.leverage) == (SYMBOL, "buy", Decimal(2), Decimal(4))
    assert pos.stop_loss is None and pos.liq_price is not None and pos.liq_price < pos.avg_price
    stop = tick_down(last * Decimal("0.98"), tick)
    await venue.set_trading_stop(
        SYMBOL, stop_loss=stop, take_profit=tick_up(last * Decimal("1.1"), tick)
    )
    await venue.set_trading_stop(SYMBOL, stop_loss=stop)  # unchanged: fine
    (pos,) = await venue.positions(SYMBOL)
    assert pos.stop_loss == stop
    assert [
        o.order_link_id for o in await venue.open_orders(SYMBOL)
    ] == []  # stops are not orders here
    sim.move(stop - 5 * tick)
    assert await venue.positions() == []
    fills = await venue.executions(since, SYMBOL)
    assert [(f.order_link_id, f.trigger) for f in fills] == [
        ("p-1", None),
        (None, "stop_loss"),
    ]
    (pnl,) = await venue.closed_pnl(since)
    assert pnl.side == "sell" and pnl.qty == Decimal(2) and pnl.leverage == Decimal(4)
    fees = sum((f.fee for f in fills), start=Decimal(0))
    assert pnl.closed_pnl == pytest.approx(
        (pnl.avg_exit_price - pnl.avg_entry_price) * 2 - fees, abs=Decimal("1e-6")
    )
    after = await venue.equity()
    assert after.balance == pytest.approx(WALLET + pnl.closed_pnl, abs=Decimal("1e-6"))
    assert after.unrealised_pnl == 0
    assert await venue.executions(datetime.now(UTC) + timedelta(days=30)) == []
    sim.move(last)


async def test_venue_errors(sim: Sim) -> None:
    wrong = make_bybit_venue(venue_settings(sim, "nobody", "nothing"), "testnet")
    with pytest.raises(AuthError) as err:
        await wrong.equity()
    assert err.value.code == 10003 and not err.value.retryable
    await wrong.close()
    down = BybitVenue("testnet", endpoint="http://127.0.0.1:9", api_key="k", api_secret="s")
    with pytest.raises(TemporaryError):
        await down.place_orders([req("x-1")])
    await down.close()
    venue = make_bybit_venue(venue_settings(sim, *sim.account()), "testnet")
    assert sim.post("/sim/faults", content="http_5xx=1").status_code == 200
    try:
        with pytest.raises(TemporaryError):
            await venue.place_orders([req("x-2")])
    finally:
        assert sim.post("/sim/faults", content="").status_code == 200
    (placed,) = await venue.place_orders([req("x-2")])  # the retry after the outage
    assert placed.status == "filled" and not placed.duplicate
    await venue.close()


def test_factory_chooses_keys_and_endpoint(sim: Sim) -> None:
    s = Settings(_env_file=None, bybit_testnet_api_key="tk", bybit_testnet_api_secret="ts")  # type: ignore[call-arg]
    assert trade_endpoint(s, "testnet") == s.sim_http_url  # DATA_SOURCE=sim: the simulator
    real = Settings(_env_file=None, data_source="bybit")  # type: ignore[call-arg]
    assert trade_endpoint(real, "testnet") == "https://api-testnet.bybit.com"
    assert trade_endpoint(real, "live") == "https://api.bybit.com"
    assert trade_endpoint(s, "live") == "https://api.bybit.com"  # live never defaults to the sim
    with pytest.raises(ConfigError, match="BYBIT_TESTNET_API_KEY"):
        make_bybit_venue(real, "testnet")
    with pytest.raises(ConfigError, match="TRADING_MODE=live"):
        make_bybit_venue(
            venue_settings(sim, "a", "b", bybit_api_key="a", bybit_api_secret="b"), "live"
        )


async def test_live_venue_builds_only_when_confirmed(sim: Sim) -> None:
    key, secret = sim.account()
    s = Settings(
        _env_file=None,  # type: ignore[call-arg]
        trading_mode="live", live_trading_confirm=LIVE_CONFIRMATION_PHRASE,
        bybit_api_key=key, bybit_api_secret=secret, timescale_db_pass="a-real-password",
        timescale_db_app_pass="another-real-password", grafana_ro_pass="a-third-real-password",
        grafana_admin_pass="a-fourth-real-password",
        bybit_testnet_api_key="other", bybit_testnet_api_secret="other",
        bybit_endpoint_trade=sim.base,
    )  # fmt: skip
    live = make_bybit_venue(s, "live")
    assert live.name == "live" and key not in repr(live)
    assert (await live.equity()).balance == WALLET  # the live keys, not the testnet ones
    await live.close()


async def test_one_bybit_client_per_process_for_data_and_orders(sim: Sim) -> None:
    """A process that reads market data and trades on one host (testnet on the simulator) does
    both through ONE client: one pybit session and pool, one bucket — at the stricter rate. A
    data host other than the trade host keeps a public client of its own."""
    s = venue_settings(sim, *sim.account(), bybit_endpoint_rest=sim.base, bybit_rate_per_s=50)
    market = BybitMarketData(s.bybit_rest_url, s.bybit_rate_per_s, http=make_bybit_client(s))
    venue = make_bybit_venue(s, "testnet", http=market.http)
    try:
        assert venue.http is market.http and market.http.signed
        assert market.http.bucket.rate_per_s == min(s.bybit_rate_per_s, s.bybit_trade_rate_per_s)
        acquired = 0
        take = market.http.bucket.acquire

        async def counted(n: float = 1) -> None:
            nonlocal acquired
            acquired += 1
            await take(n)

        market.http.bucket.acquire = counted  # type: ignore[method-assign]
        assert any(t.symbol == SYMBOL for t in await market.tickers())  # public, through it
        assert (await venue.equity()).balance > 0  # signed, through the same session
        assert acquired == 2  # both requests drew on the one bucket
    finally:
        await venue.close()
        await market.aclose()  # the shared client closes once
    other = venue_settings(sim, *sim.account(), bybit_endpoint_rest="https://api.bybit.com")
    data = make_bybit_client(other)
    assert not data.signed and data.endpoint == "https://api.bybit.com"
    separate = make_bybit_venue(other, "testnet", http=data)
    assert separate.http is not data and separate.http.endpoint == sim.base
    await separate.close()
    await data.aclose()
