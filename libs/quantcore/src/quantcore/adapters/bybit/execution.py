"""Bybit execution: the testnet and live venues (or the simulator, same wire), behind `Venue`.

Calls go through the one Bybit HTTP client (`http.BybitHttp`: a signed pybit session, one bucket,
the one `translate()` into quantcore.errors). A service that reads market data and trades at
Bybit makes ONE client for both (`make_bybit_client`) when they use one host: one session and
thread pool, one bucket at the stricter of BYBIT_RATE_PER_S and BYBIT_TRADE_RATE_PER_S, so the
host never sees two budgets from one process. (Testnet orders with mainnet data are two hosts,
each with its own client and limits.) Reads retry
TemporaryError; writes never retry on their own (an order's idempotency is its orderLinkId:
placing again after a TemporaryError is safe and answers duplicate=True). Payloads are parsed
and translated into our vocabulary in `private`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from quantcore.adapters.bybit import private as wire
from quantcore.adapters.bybit.http import BybitHttp
from quantcore.config import LIVE_CONFIRMATION_PHRASE, ConfigError, Settings, env_name
from quantcore.errors import (
    BadPayload,
    ExternalError,
    OnBad,
    Rejected,
    TemporaryError,
    report_bad,
)
from quantcore.logging import get_logger
from quantcore.model.trading import (
    AccountEquity,
    ClosedPnl,
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    VenueName,
)
from quantcore.retry import RetryPolicy

log = get_logger(component="venue.bybit")
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

CATEGORY = "linear"
SETTLE_COIN = "USDT"
BATCH_LIMIT = (
    10  # linear orders per create-batch: 20 in today's docs, 10 before 2025-02; 10 fits both
)
WINDOW = timedelta(days=7)  # execution/list and closed-pnl answer at most 7 days per query
PAGE_LIMIT = 100  # execution/list, closed-pnl: 1..100
POSITION_LIMIT = 200
ORDER_LIMIT = 50
MAX_PAGES = 1000
HOSTS = {"testnet": "https://api-testnet.bybit.com", "live": "https://api.bybit.com"}

DUPLICATE_LINK_ID = 110072
ORDER_NOT_FOUND = 110001
LEVERAGE_NOT_MODIFIED = 110043
NOT_MODIFIED = 34040


def _fmt(value: Decimal) -> str:
    """A Decimal as Bybit wants it: plain digits, no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text


def _ms(t: datetime) -> int:
    if t.tzinfo is None:
        raise ValueError("datetime must be timezone-aware (UTC)")
    return int(t.timestamp() * 1000)


class BybitVenue:
    """`Venue` over Bybit v5 private REST through pybit (one-way mode, linear USDT perps)."""

    def __init__(
        self,
        name: Literal["testnet", "live"],
        *,
        endpoint: str,
        api_key: str,
        api_secret: str,
        rate_per_s: float = 8.0,
        recv_window_ms: int = 5000,
        timeout_s: float = 10.0,
        retry_policy: RetryPolicy | None = None,
        on_bad: OnBad | None = None,
        max_workers: int = 4,
        http: BybitHttp | None = None,
    ) -> None:
        """`http`: the process's one signed Bybit client at `endpoint` (shared with market
        data); by default one of its own with these keys and rate."""
        self.name: VenueName = name
        self.endpoint = endpoint.rstrip("/")
        self._retry = retry_policy or RetryPolicy(attempts=3, base_s=0.5, max_s=5.0)
        if http is not None and not (http.signed and http.endpoint == self.endpoint):
            raise ValueError(f"the {name} venue needs a signed client at {self.endpoint}")
        self._http = http or BybitHttp(
            self.endpoint, rate_per_s, api_key=api_key, api_secret=api_secret,
            testnet=name == "testnet", recv_window_ms=recv_window_ms, timeout_s=timeout_s,
            retry_policy=self._retry, max_workers=max_workers, name="bybit-venue",
        )  # fmt: skip
        self._on_bad = on_bad

    @property
    def http(self) -> BybitHttp:
        return self._http

    def __repr__(self) -> str:  # never the keys
        return f"BybitVenue({self.name!r}, endpoint={self.endpoint!r})"

    # --- plumbing ------------------------------------------------------------------------------------
    async def _call(self, method: str, **params: Any) -> Any:
        """One attempt (a write); raises a quantcore.errors type for every venue failure."""
        return await self._http.call(method, **params)

    async def _read(self, method: str, **params: Any) -> Any:
        """A read: TemporaryError is retried."""
        return await self._http.read_with(self._retry, method, **params)

    async def _page_rows(
        self, method: str, model: type[M], kind: str, params: dict[str, Any], limit: int
    ) -> list[M]:
        """Every page of a cursor-paged list; bad rows are reported and skipped."""
        out: list[M] = []
        cursor, seen = "", set()
        for _ in range(MAX_PAGES):
            query = dict(params, limit=limit)
            if cursor:
                query["cursor"] = cursor
            result = await self._parsed(lambda p: wire.result_of(p, kind), method, **query)
            raw_rows = wire.rows(result, kind)
            bad: list[BadPayload] = []
            for raw in raw_rows:
                try:
                    out.append(wire.parse(model, raw, kind))
                except BadPayload as exc:
                    bad.append(exc)
            await report_bad(self._on_bad, bad, f"bybit-{self.name}")
            seen.add(cursor)
            cursor = str(result.get("nextPageCursor") or "") if isinstance(result, dict) else ""
            if not cursor or cursor in seen or not raw_rows:
                break
        return out

    async def _parsed(self, parse: Callable[[Any], T], method: str, **params: Any) -> T:
        payload = await self._read(method, **params)
        try:
            return parse(payload)
        except BadPayload as exc:
            await report_bad(self._on_bad, [exc], f"bybit-{self.name}")
            raise

    # --- orders -------------------------------------------------------------------------------------------
    @staticmethod
    def _order_params(req: OrderRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "symbol": req.symbol,
            "side": wire.BYBIT_SIDE[req.side],
            "orderType": wire.BYBIT_ORDER_TYPE[req.order_type],
            "qty": _fmt(req.qty),
            "positionIdx": 0,
            "orderLinkId": req.order_link_id,
        }
        if req.order_type is OrderType.LIMIT:
            assert req.price is not None  # OrderRequest checks it
            params["price"] = _fmt(req.price)
            params["timeInForce"] = wire.BYBIT_TIME_IN_FORCE[req.time_in_force]
        if req.reduce_only:
            params["reduceOnly"] = True
        if req.stop_loss is not None or req.take_profit is not None:
            params["tpslMode"] = "Full"
            if req.stop_loss is not None:
                params["stopLoss"] = _fmt(req.stop_loss)
            if req.take_profit is not None:
                params["takeProfit"] = _fmt(req.take_profit)
        return params

    async def place_orders(self, orders: Sequence[OrderRequest]) -> list[Order]:
        """Place orders: order/create for one, order/create-batch (≤ 10 per request) for more.

        Idempotent on order_link_id: Bybit's 110072 becomes a lookup, returned with
        duplicate=True. An order the venue refuses (params, balance, reduce-only rule, ...) comes
        back with status rejected and `reject_reason` "<retCode>: <retMsg>"; the call raises
        only when the whole request failed (TemporaryError: transport, 5xx, rate limit —
        orders of an earlier batch of the same call may exist; AuthError: keys). Results are in
        the order of `orders`.
        """
        if not orders:
            return []
        links = [o.order_link_id for o in orders]
        if len(set(links)) != len(links):
            raise ValueError("order_link_id must be unique within one place_orders call")
        if len(orders) == 1:
            return [await self._place_one(orders[0])]
        out: list[Order] = []
        for start in range(0, len(orders), BATCH_LIMIT):
            out.extend(await self._place_batch(orders[start : start + BATCH_LIMIT]))
        return out

    async def _place_one(self, req: OrderRequest) -> Order:
        try:
            payload = await self._call("place_order", category=CATEGORY, **self._order_params(req))
        except Rejected as exc:
            if exc.code == DUPLICATE_LINK_ID:
                return await self._existing(req)
            return _rejected(req, exc.code, str(exc).removeprefix(f"Bybit retCode {exc.code}: "))
        try:
            ack = wire.parse(wire.OrderAck, wire.result_of(payload, "order_ack"), "order_ack")
        except BadPayload as exc:
            await report_bad(self._on_bad, [exc], f"bybit-{self.name}")
            return _acknowledged(req, "")
        return await self._after_ack(req, ack.orderId)

    async def _place_batch(self, batch: Sequence[OrderRequest]) -> list[Order]:
        request = [self._order_params(r) for r in batch]
        payload = await self._call("place_batch_order", category=CATEGORY, request=request)
        try:
            result = wire.batch_result(payload)
        except BadPayload as exc:
            await report_bad(self._on_bad, [exc], f"bybit-{self.name}")
            # placed or not, we cannot tell from this reply: ask per order
            return [await self._existing(r, duplicate=False) for r in batch]
        if len(result.items) != len(batch):
            log.warning("batch reply length differs", sent=len(batch), got=len(result.items))
        out: list[Order] = []
        for k, req in enumerate(batch):
            if k >= len(result.items):
                out.append(await self._existing(req, duplicate=False))
                continue
            item, code = result.items[k], result.codes[k]
            if code.code == 0:
                out.append(await self._after_ack(req, item.orderId))
            elif code.code == DUPLICATE_LINK_ID:
                out.append(await self._existing(req))
            else:
                out.append(_rejected(req, code.code, code.msg))
        return out

    async def _after_ack(self, req: OrderRequest, order_id: str) -> Order:
        """The order as the venue holds it now; the request as new when the lookup fails
        (the create was acknowledged: the order exists)."""
        try:
            found = await self.get_order(req.symbol, req.order_link_id)
        except ExternalError as exc:
            log.warning("order lookup after create failed", link=req.order_link_id, error=str(exc))
            found = None
        return found if found is not None else _acknowledged(req, order_id)

    async def _existing(self, req: OrderRequest, *, duplicate: bool = True) -> Order:
        found = await self.get_order(req.symbol, req.order_link_id)
        if found is None:
            if duplicate:
                raise TemporaryError(
                    f"Bybit says order_link_id {req.order_link_id} is a duplicate but does not "
                    "list it (older than its 500 recent orders?)",
                    DUPLICATE_LINK_ID,
                )
            raise TemporaryError(f"cannot tell whether {req.order_link_id} was placed")
        return _with(found, duplicate=duplicate)

    async def get_order(self, symbol: str, order_link_id: str) -> Order | None:
        """Open or recently closed (Bybit keeps 500) order by order_link_id."""
        found = await self._page_rows(
            "get_open_orders",
            wire.OrderRow,
            "order",
            {"category": CATEGORY, "symbol": symbol, "orderLinkId": order_link_id},
            ORDER_LIMIT,
        )
        for row in found:
            if row.orderLinkId == order_link_id:
                return wire.to_order(row)
        return None

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Open regular orders (orderFilter=Order: position TP/SL conditionals are not
        listed; they show on `positions()` as stop_loss / take_profit)."""
        params: dict[str, Any] = {"category": CATEGORY, "openOnly": 0, "orderFilter": "Order"}
        if symbol is not None:
            params["symbol"] = symbol
        else:
            params["settleCoin"] = SETTLE_COIN
        found = await self._page_rows(
            "get_open_orders", wire.OrderRow, "order", params, ORDER_LIMIT
        )
        return [
            wire.to_order(row)
            for row in found
            if row.orderStatus is not OrderStatus.TRIGGER_PENDING
        ]

    async def amend_order(
        self,
        symbol: str,
        order_link_id: str,
        *,
        qty: Decimal | None = None,
        price: Decimal | None = None,
    ) -> Order:
        """Amend an open order; an amend that changes nothing returns the order as it is.
        Raises Rejected (110001) when the order is not open any more."""
        params: dict[str, Any] = {
            "category": CATEGORY,
            "symbol": symbol,
            "orderLinkId": order_link_id,
        }
        if qty is not None:
            params["qty"] = _fmt(qty)
        if price is not None:
            params["price"] = _fmt(price)
        try:
            await self._call("amend_order", **params)
        except Rejected as exc:
            if not (exc.code == 10001 and "not modified" in str(exc).lower()):
                raise
        found = await self.get_order(symbol, order_link_id)
        if found is None:
            raise TemporaryError(f"order {order_link_id} amended but not listed")
        return found

    async def cancel_order(self, symbol: str, order_link_id: str) -> Order | None:
        """Cancel an open order. Returns the order (status Cancelled, or its final status when
        it had already finished), None when the venue does not know it."""
        try:
            await self._call(
                "cancel_order", category=CATEGORY, symbol=symbol, orderLinkId=order_link_id
            )
        except Rejected as exc:
            if exc.code != ORDER_NOT_FOUND:
                raise
        return await self.get_order(symbol, order_link_id)

    # --- positions ----------------------------------------------------------------------------------------
    async def set_trading_stop(
        self,
        symbol: str,
        *,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
    ) -> None:
        """Full-mode TP/SL of the position: None leaves one alone, Decimal(0) removes it.
        Setting what is already set is not an error (Bybit's 34040 'not modified')."""
        if stop_loss is None and take_profit is None:
            return
        params: dict[str, Any] = {
            "category": CATEGORY, "symbol": symbol, "tpslMode": "Full", "positionIdx": 0,
        }  # fmt: skip
        if stop_loss is not None:
            params["stopLoss"] = _fmt(stop_loss)
        if take_profit is not None:
            params["takeProfit"] = _fmt(take_profit)
        try:
            await self._call("set_trading_stop", **params)
        except Rejected as exc:
            if exc.code != NOT_MODIFIED:
                raise

    async def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        """Both sides to `leverage` (one-way mode); already set is not an error (110043)."""
        lev = _fmt(leverage)
        try:
            await self._call(
                "set_leverage", category=CATEGORY, symbol=symbol, buyLeverage=lev, sellLeverage=lev
            )
        except Rejected as exc:
            if exc.code != LEVERAGE_NOT_MODIFIED:
                raise

    async def positions(self, symbol: str | None = None) -> list[Position]:
        """Open positions (flat rows are dropped)."""
        params: dict[str, Any] = {"category": CATEGORY}
        if symbol is not None:
            params["symbol"] = symbol
        else:
            params["settleCoin"] = SETTLE_COIN
        found = await self._page_rows(
            "get_positions", wire.PositionRow, "position", params, POSITION_LIMIT
        )
        out = [wire.to_position(row) for row in found]
        return [p for p in out if p is not None]

    async def executions(self, since: datetime, symbol: str | None = None) -> list[Fill]:
        """Fills at or after `since`, oldest first (all execTypes: Trade, Funding, ...)."""
        found = await self._windowed(
            "get_executions", wire.ExecutionRow, "execution", since, symbol
        )
        rows: dict[str, wire.ExecutionRow] = {}
        for row in reversed(found):  # pages are newest first
            if row.execTime >= since:
                rows.setdefault(row.execId, row)
        ordered = sorted(rows.values(), key=lambda r: (r.execTime, r.seq or 0))  # stable
        return [wire.to_fill(row) for row in ordered]

    async def closed_pnl(self, since: datetime, symbol: str | None = None) -> list[ClosedPnl]:
        """Closed-PnL records created at or after `since`, oldest first."""
        found = await self._windowed(
            "get_closed_pnl", wire.ClosedPnlRow, "closed_pnl", since, symbol
        )
        out = [wire.to_closed_pnl(r) for r in reversed(found) if r.createdTime >= since]
        return sorted(out, key=lambda c: c.created_at)  # stable: ties keep the venue's order

    async def _windowed(
        self, method: str, model: type[M], kind: str, since: datetime, symbol: str | None
    ) -> list[M]:
        """Walk 7-day windows from `since` to now (the last one is asked with startTime only,
        so the venue's own clock bounds it)."""
        now = datetime.now(UTC)
        start = since
        out: list[M] = []
        while True:
            params: dict[str, Any] = {"category": CATEGORY, "startTime": _ms(start)}
            last = start + WINDOW > now
            if not last:
                params["endTime"] = _ms(start + WINDOW) - 1
            if symbol is not None:
                params["symbol"] = symbol
            out.extend(await self._page_rows(method, model, kind, params, PAGE_LIMIT))
            if last:
                return out
            start += WINDOW

    async def equity(self) -> AccountEquity:
        """Unified account, USDT row: equity, wallet balance, unrealised PnL."""

        def parse(payload: Any) -> AccountEquity:
            page = wire.parse(
                wire.WalletPage, wire.result_of(payload, "wallet_balance"), "wallet_balance"
            )
            return wire.to_equity(page, SETTLE_COIN)

        return await self._parsed(
            parse, "get_wallet_balance", accountType="UNIFIED", coin=SETTLE_COIN
        )

    async def close(self) -> None:
        await self._http.aclose()


def _acknowledged(req: OrderRequest, order_id: str) -> Order:
    now = datetime.now(UTC)
    return Order(
        order_link_id=req.order_link_id, venue_order_id=order_id, symbol=req.symbol,
        side=req.side, order_type=req.order_type, qty=req.qty, price=req.price, status=OrderStatus.NEW,
        filled_qty=Decimal(0), avg_fill_price=None, fee=Decimal(0), reduce_only=req.reduce_only,
        created_at=now, updated_at=now, stop_loss=req.stop_loss, take_profit=req.take_profit,
    )  # fmt: skip


def _rejected(req: OrderRequest, code: int | None, message: str) -> Order:
    now = datetime.now(UTC)
    return Order(
        order_link_id=req.order_link_id, venue_order_id="", symbol=req.symbol, side=req.side,
        order_type=req.order_type, qty=req.qty, price=req.price, status=OrderStatus.REJECTED,
        filled_qty=Decimal(0), avg_fill_price=None, fee=Decimal(0), reduce_only=req.reduce_only,
        created_at=now, updated_at=now, stop_loss=req.stop_loss, take_profit=req.take_profit,
        reject_reason=message if code is None else f"{code}: {message}",
    )  # fmt: skip


def _with(order: Order, *, duplicate: bool) -> Order:
    return replace(order, duplicate=duplicate)


# --- factory ------------------------------------------------------------------------------------------------
def trade_endpoint(settings: Settings, name: Literal["testnet", "live"]) -> str:
    """BYBIT_ENDPOINT_TRADE, else BYBIT_ENDPOINT_REST, else the simulator for testnet when
    DATA_SOURCE=sim, else Bybit's host for the venue. Live never defaults to the simulator."""
    if settings.bybit_endpoint_trade:
        return settings.bybit_endpoint_trade.rstrip("/")
    if settings.bybit_endpoint_rest:
        return settings.bybit_endpoint_rest.rstrip("/")
    if name == "testnet" and settings.data_source == "sim":
        return settings.sim_http_url
    return HOSTS[name]


def _venue_keys(settings: Settings, name: Literal["testnet", "live"]) -> tuple[str, str]:
    """The venue's API key and secret (BYBIT_TESTNET_API_KEY/SECRET, or BYBIT_API_KEY/SECRET
    only with TRADING_MODE=live and LIVE_TRADING_CONFIRM set). Raises ConfigError otherwise."""
    if name == "live":
        if settings.trading_mode != "live":
            raise ConfigError(
                f"the live venue needs TRADING_MODE=live (is {settings.trading_mode})"
            )
        if settings.live_trading_confirm != LIVE_CONFIRMATION_PHRASE:
            raise ConfigError(
                f'the live venue needs LIVE_TRADING_CONFIRM="{LIVE_CONFIRMATION_PHRASE}"'
            )
        key_field, secret_field = "bybit_api_key", "bybit_api_secret"
    elif name == "testnet":
        key_field, secret_field = "bybit_testnet_api_key", "bybit_testnet_api_secret"
    else:
        raise ConfigError(f"no Bybit venue called {name!r} (testnet or live)")
    key, secret = getattr(settings, key_field), getattr(settings, secret_field)
    missing = [env_name(f) for f, v in ((key_field, key), (secret_field, secret)) if v is None]
    if missing:
        raise ConfigError(f"the {name} venue needs " + " and ".join(missing))
    return key.get_secret_value(), secret.get_secret_value()


def make_bybit_client(settings: Settings) -> BybitHttp:
    """The process's one Bybit client for market data (BYBIT_ENDPOINT_REST) — signed with the
    venue's key when TRADING_MODE trades at Bybit on that same host, so the venue calls through
    it too (`make_bybit_venue(..., http=)`): one session, one pool, one bucket at the stricter
    of the two rates. Public (BYBIT_RATE_PER_S) otherwise."""
    data = settings.bybit_rest_url
    mode = settings.trading_mode
    if mode in ("testnet", "live") and trade_endpoint(settings, mode) == data:
        key, secret = _venue_keys(settings, mode)
        return BybitHttp(
            data, min(settings.bybit_rate_per_s, settings.bybit_trade_rate_per_s),
            api_key=key, api_secret=secret, testnet=mode == "testnet",
            recv_window_ms=settings.bybit_recv_window_ms, max_workers=8, name="bybit",
        )  # fmt: skip
    return BybitHttp(data, settings.bybit_rate_per_s, max_workers=8, name="bybit")


def make_bybit_venue(
    settings: Settings,
    name: Literal["testnet", "live"],
    *,
    on_bad: OnBad | None = None,
    http: BybitHttp | None = None,
) -> BybitVenue:
    """The testnet venue (BYBIT_TESTNET_API_KEY/SECRET) or the live one (BYBIT_API_KEY/SECRET,
    only with TRADING_MODE=live and LIVE_TRADING_CONFIRM set). Raises ConfigError otherwise.
    `http`: the process's client (`make_bybit_client`), reused when it is signed and calls the
    venue's host; otherwise the venue has a client of its own (another host)."""
    key, secret = _venue_keys(settings, name)
    endpoint = trade_endpoint(settings, name)
    shared = http if http is not None and http.signed and http.endpoint == endpoint else None
    log.info("bybit venue", venue=name, endpoint=endpoint, shared_client=shared is not None)
    return BybitVenue(
        name,
        endpoint=endpoint,
        api_key=key,
        api_secret=secret,
        rate_per_s=settings.bybit_trade_rate_per_s,
        recv_window_ms=settings.bybit_recv_window_ms,
        on_bad=on_bad,
        http=shared,
    )
