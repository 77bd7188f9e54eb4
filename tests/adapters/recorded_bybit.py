"""Every recorded Bybit payload in ../shared/recorded (real responses and docs examples kept as
test fixtures by NautilusTrader and ccxt; see its MANIFEST), run through the parser of the
endpoint it belongs to. `outcome()` says what became of it in one line; README.md in this folder
holds the table the test compares against."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from quantcore.adapters.bybit import parse as public
from quantcore.adapters.bybit import private as wire
from quantcore.errors import BadPayload

RECORDED = Path(
    os.environ.get("RECORDED_DIR", Path(__file__).resolve().parents[3] / "shared" / "recorded")
)
NOT_READ = "not read"


def _first_symbol(payload: Any) -> str:
    result = payload.get("result") if isinstance(payload, dict) else None
    if isinstance(result, dict):
        if isinstance(result.get("symbol"), str):
            return str(result["symbol"])
        items = result.get("list")
        if isinstance(items, list) and items and isinstance(items[0], dict):
            return str(items[0].get("symbol", ""))
    return ""


def _public(fn: Callable[[Any], public.Parsed[Any]]) -> Callable[[Any], str]:
    def run(payload: Any) -> str:
        try:
            page = fn(payload)
        except BadPayload as exc:
            return f"rejected: {exc.reason}"
        text = _counts(len(page.items), [b.reason for b in page.bad])
        result = payload.get("result") if isinstance(payload, dict) else None
        items = result.get("list") if isinstance(result, dict) else None
        skipped = len(items) - len(page.items) - len(page.bad) if isinstance(items, list) else 0
        if skipped:
            text += f", {skipped} skipped (not a trading linear USDT perpetual)"
        return text

    return run


def _ws(payload: Any) -> str:
    topic = payload.get("topic", "") if isinstance(payload, dict) else ""
    if not topic.startswith(("tickers.", "kline.", "allLiquidation.", "publicTrade.")):
        return f"ignored: topic {topic.split('.')[0]!r} is not one we subscribe to"
    return _public(public.ws_message)(payload)


def _private(model: type[BaseModel], kind: str, to: Callable[[Any], Any]) -> Callable[[Any], str]:
    def run(payload: Any) -> str:
        try:
            items = wire.rows(wire.result_of(payload, kind), kind)
        except BadPayload as exc:
            return f"rejected: {exc.reason}"
        made, bad = 0, []
        for raw in items:
            try:
                to(wire.parse(model, raw, kind))
                made += 1
            except BadPayload as exc:
                bad.append(exc.reason)
        return _counts(made, bad)

    return run


def _single(fn: Callable[[Any], Any]) -> Callable[[Any], str]:
    def run(payload: Any) -> str:
        try:
            fn(payload)
        except BadPayload as exc:
            return f"rejected: {exc.reason}"
        return "1 parsed"

    return run


def _counts(made: int, bad: list[str]) -> str:
    text = f"{made} parsed"
    if bad:
        text += f", {len(bad)} rejected: " + " | ".join(dict.fromkeys(bad))
    return text


def _wallet(payload: Any) -> Any:
    page = wire.parse(wire.WalletPage, wire.result_of(payload, "wallet"), "wallet")
    return wire.to_equity(page)


def _ack(payload: Any) -> Any:
    return wire.parse(wire.OrderAck, wire.result_of(payload, "order_ack"), "order_ack")


ORDERS = _private(wire.OrderRow, "order", wire.to_order)
POSITIONS = _private(wire.PositionRow, "position", wire.to_position)
FILLS = _private(wire.ExecutionRow, "execution", wire.to_fill)
CLOSED_PNL = _private(wire.ClosedPnlRow, "closed_pnl", wire.to_closed_pnl)
WALLET = _single(_wallet)
ACK = _single(_ack)
INSTRUMENTS = _public(public.instruments_page)
TICKERS = _public(lambda p: public.tickers(p))
KLINES = _public(lambda p: public.kline_page(p, _first_symbol(p), "60"))
OPEN_INTEREST = _public(lambda p: public.open_interest_page(p, _first_symbol(p)))
FUNDING = _public(lambda p: public.funding_page(p, _first_symbol(p)))
SERVER_TIME = _single(public.server_time)
WS = _ws

# file → (the endpoint we read it as, its parser) or (why we do not read it, None)
ENDPOINTS: dict[str, tuple[str, Callable[[Any], str] | None]] = {
    "ccxt-bybit/closed_pnl_linear.json": ("GET /v5/position/closed-pnl", CLOSED_PNL),
    "ccxt-bybit/executions_linear_funding.json": ("GET /v5/execution/list", FILLS),
    "ccxt-bybit/executions_linear_trade.json": ("GET /v5/execution/list", FILLS),
    "ccxt-bybit/kline_linear_btcusdt_60.json": ("GET /v5/market/kline", KLINES),
    "ccxt-bybit/open_interest_inverse.json": ("GET /v5/market/open-interest", OPEN_INTEREST),
    "ccxt-bybit/open_interest_linear.json": ("GET /v5/market/open-interest", OPEN_INTEREST),
    "ccxt-bybit/order_create_ack.json": ("POST /v5/order/create", ACK),
    "ccxt-bybit/orders_linear_closed.json": ("GET /v5/order/realtime (same rows)", ORDERS),
    "ccxt-bybit/orders_linear_open.json": ("GET /v5/order/realtime", ORDERS),
    "ccxt-bybit/positions_linear_flat.json": ("GET /v5/position/list", POSITIONS),
    "ccxt-bybit/positions_linear_open.json": ("GET /v5/position/list", POSITIONS),
    "ccxt-bybit/tickers_linear_btcusdt.json": ("GET /v5/market/tickers", TICKERS),
    "ccxt-bybit/wallet_balance_unified.json": ("GET /v5/account/wallet-balance", WALLET),
    "nautilus-bybit/http_get_account_info.json": ("/v5/account/info: " + NOT_READ, None),
    "nautilus-bybit/http_get_executions.json": ("GET /v5/execution/list", FILLS),
    "nautilus-bybit/http_get_fee_rate.json": ("/v5/account/fee-rate: " + NOT_READ, None),
    "nautilus-bybit/http_get_funding_history.json": ("GET /v5/market/funding/history", FUNDING),
    "nautilus-bybit/http_get_instruments_inverse.json": ("GET /v5/market/instruments-info", INSTRUMENTS),
    "nautilus-bybit/http_get_instruments_inverse_symbol_type.json": ("GET /v5/market/instruments-info", INSTRUMENTS),
    "nautilus-bybit/http_get_instruments_linear.json": ("GET /v5/market/instruments-info", INSTRUMENTS),
    "nautilus-bybit/http_get_instruments_linear_symbol_type.json": ("GET /v5/market/instruments-info", INSTRUMENTS),
    "nautilus-bybit/http_get_instruments_option.json": ("instruments, category option: " + NOT_READ, None),
    "nautilus-bybit/http_get_instruments_option_symbol_id.json": ("instruments, category option: " + NOT_READ, None),
    "nautilus-bybit/http_get_instruments_spot.json": ("instruments, category spot: " + NOT_READ, None),
    "nautilus-bybit/http_get_instruments_spot_xstocks.json": ("instruments, category spot: " + NOT_READ, None),
    "nautilus-bybit/http_get_klines_linear.json": ("GET /v5/market/kline", KLINES),
    "nautilus-bybit/http_get_order_partially_filled_rejected.json": ("GET /v5/order/realtime", ORDERS),
    "nautilus-bybit/http_get_orderbook.json": ("/v5/market/orderbook: " + NOT_READ, None),
    "nautilus-bybit/http_get_orders_history.json": ("GET /v5/order/realtime (same rows)", ORDERS),
    "nautilus-bybit/http_get_orders_history_with_duplicate.json": ("GET /v5/order/realtime (same rows)", ORDERS),
    "nautilus-bybit/http_get_orders_realtime.json": ("GET /v5/order/realtime", ORDERS),
    "nautilus-bybit/http_get_orders_realtime_tp_sl.json": ("GET /v5/order/realtime", ORDERS),
    "nautilus-bybit/http_get_positions.json": ("GET /v5/position/list", POSITIONS),
    "nautilus-bybit/http_get_positions_with_open_time.json": ("GET /v5/position/list", POSITIONS),
    "nautilus-bybit/http_get_trades_recent.json": ("/v5/market/recent-trade: " + NOT_READ, None),
    "nautilus-bybit/http_get_user_escrow_sub_members.json": ("/v5/user/*: " + NOT_READ, None),
    "nautilus-bybit/http_get_user_query_api.json": ("/v5/user/*: " + NOT_READ, None),
    "nautilus-bybit/http_get_user_sub_apikeys.json": ("/v5/user/*: " + NOT_READ, None),
    "nautilus-bybit/http_get_user_sub_members.json": ("/v5/user/*: " + NOT_READ, None),
    "nautilus-bybit/http_get_user_sub_members_paged.json": ("/v5/user/*: " + NOT_READ, None),
    "nautilus-bybit/http_get_wallet_balance.json": ("GET /v5/account/wallet-balance", WALLET),
    "nautilus-bybit/http_get_wallet_balance_spot_short.json": ("GET /v5/account/wallet-balance", WALLET),
    "nautilus-bybit/http_get_wallet_balance_with_spot_borrow.json": ("GET /v5/account/wallet-balance", WALLET),
    "nautilus-bybit/http_post_user_update_master_api.json": ("/v5/user/*: " + NOT_READ, None),
    "nautilus-bybit/http_post_user_update_sub_api.json": ("/v5/user/*: " + NOT_READ, None),
    "nautilus-bybit/ws_kline.json": ("WS public kline", WS),
    "nautilus-bybit/ws_ticker_linear.json": ("WS public tickers", WS),
    "nautilus-bybit/ws_ticker_option.json": ("WS tickers, option: " + NOT_READ, None),
    "nautilus-bybit/ws_orderbook_delta.json": ("WS orderbook: " + NOT_READ, None),
    "nautilus-bybit/ws_orderbook_snapshot.json": ("WS orderbook: " + NOT_READ, None),
    "nautilus-bybit/ws_public_trade.json": ("WS publicTrade (topic edited by the recorder)", WS),
    "nautilus-bybit/ws_subscription_ack.json": ("WS op reply (pybit handles it)", None),
    "nautilus-bybit/ws_subscription_failure.json": ("WS op reply (pybit handles it)", None),
    "nautilus-bybit/ws_auth_success.json": ("WS private auth: " + NOT_READ, None),
    "nautilus-bybit/ws_auth_failure.json": ("WS private auth: " + NOT_READ, None),
    "nautilus-bybit/ws_order_response.json": ("WS trade (order entry): " + NOT_READ, None),
    "nautilus-bybit-legacy-py/http_responses/account/wallet_balance.json": ("GET /v5/account/wallet-balance", WALLET),
    "nautilus-bybit-legacy-py/http_responses/coin_info.json": ("/v5/asset/coin/query-info: " + NOT_READ, None),
    "nautilus-bybit-legacy-py/http_responses/fee_rate.json": ("/v5/account/fee-rate: " + NOT_READ, None),
    "nautilus-bybit-legacy-py/http_responses/http_market_instruments_linear.json": ("GET /v5/market/instruments-info", INSTRUMENTS),
    "nautilus-bybit-legacy-py/http_responses/linear/instrument_btc_usdt.json": ("GET /v5/market/instruments-info", INSTRUMENTS),
    "nautilus-bybit-legacy-py/http_responses/linear/instruments.json": ("GET /v5/market/instruments-info", INSTRUMENTS),
    "nautilus-bybit-legacy-py/http_responses/linear/klines_btc.json": ("GET /v5/market/kline", KLINES),
    "nautilus-bybit-legacy-py/http_responses/linear/tickers.json": ("GET /v5/market/tickers", TICKERS),
    "nautilus-bybit-legacy-py/http_responses/option/instruments.json": ("instruments, category option: " + NOT_READ, None),
    "nautilus-bybit-legacy-py/http_responses/option/tickers.json": ("tickers, category option: " + NOT_READ, None),
    "nautilus-bybit-legacy-py/http_responses/server_time.json": ("GET /v5/market/time", SERVER_TIME),
    "nautilus-bybit-legacy-py/http_responses/spot/instruments.json": ("instruments, category spot: " + NOT_READ, None),
    "nautilus-bybit-legacy-py/http_responses/spot/klines_btc.json": ("kline, category spot: " + NOT_READ, None),
    "nautilus-bybit-legacy-py/http_responses/spot/tickers.json": ("tickers, category spot: " + NOT_READ, None),
    "nautilus-bybit-legacy-py/ws_messages/public/ws_kline.json": ("WS public kline", WS),
    "nautilus-bybit-legacy-py/ws_messages/public/ws_liquidation.json": ("WS public liquidation (old topic; we read allLiquidation)", WS),
    "nautilus-bybit-legacy-py/ws_messages/public/ws_orderbook_delta.json": ("WS orderbook: " + NOT_READ, None),
    "nautilus-bybit-legacy-py/ws_messages/public/ws_orderbook_delta_no_asks.json": ("WS orderbook: " + NOT_READ, None),
    "nautilus-bybit-legacy-py/ws_messages/public/ws_orderbook_snapshot.json": ("WS orderbook: " + NOT_READ, None),
    "nautilus-bybit-legacy-py/ws_messages/public/ws_orderbook_snapshot_no_asks.json": ("WS orderbook: " + NOT_READ, None),
    "nautilus-bybit-legacy-py/ws_messages/public/ws_ticker_linear.json": ("WS public tickers", WS),
    "nautilus-bybit-legacy-py/ws_messages/public/ws_ticker_option.json": ("WS tickers, option: " + NOT_READ, None),
    "nautilus-bybit-legacy-py/ws_messages/public/ws_ticker_spot.json": ("WS tickers, spot: " + NOT_READ, None),
    "nautilus-bybit-legacy-py/ws_messages/public/ws_trade.json": ("WS publicTrade (taker flow per minute)", WS),
}  # fmt: skip

for _name in [
    "ws_account_execution", "ws_account_execution_adl", "ws_account_execution_fast",
    "ws_account_execution_fast_envelope_id", "ws_account_order", "ws_account_order_buy_stop_market",
    "ws_account_order_filled", "ws_account_order_limit_if_touched",
    "ws_account_order_market_if_touched", "ws_account_order_partially_filled_rejected",
    "ws_account_order_sell_market_if_touched", "ws_account_order_stop_limit",
    "ws_account_order_stop_loss", "ws_account_order_stop_market", "ws_account_order_take_profit",
    "ws_account_position", "ws_account_position_short", "ws_account_position_with_open_time",
    "ws_account_wallet", "ws_account_wallet_locked_exceeds_total", "ws_account_wallet_small_order",
]:  # fmt: skip
    ENDPOINTS[f"nautilus-bybit/{_name}.json"] = ("WS private (we poll REST): " + NOT_READ, None)
for _name in ["ws_execution", "ws_order", "ws_position", "ws_wallet"]:
    ENDPOINTS[f"nautilus-bybit-legacy-py/ws_messages/private/{_name}.json"] = (
        "WS private (we poll REST): " + NOT_READ,
        None,
    )


def recorded_files() -> list[str]:
    return sorted(
        str(p.relative_to(RECORDED))
        for p in RECORDED.rglob("*.json")
        if "bybit" in p.relative_to(RECORDED).parts[0]
    )


def outcome(name: str) -> tuple[str, str]:
    """(endpoint, outcome) of one recorded file."""
    endpoint, run = ENDPOINTS[name]
    if run is None:
        return endpoint, "-"
    payload = json.loads((RECORDED / name).read_text())
    return endpoint, run(payload)


def table() -> str:
    lines = ["| file | endpoint | outcome |", "|---|---|---|"]
    for name in recorded_files():
        endpoint, result = outcome(name)
        lines.append(f"| {name} | {endpoint} | {result.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # print the table for README.md
    print(table(), end="")
