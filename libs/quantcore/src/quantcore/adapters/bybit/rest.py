"""Bybit v5 public REST market data through pybit (sync, so it runs on a small thread pool).

Every call takes a token from one shared bucket and goes through quantcore.retry; pybit's own
retries are off so waits are not doubled. pybit's exceptions become adapter errors here.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from pybit.exceptions import (  # type: ignore[import-untyped]
    FailedRequestError,
    InvalidRequestError,
)
from pybit.unified_trading import HTTP  # type: ignore[import-untyped]

from quantcore.adapters.bybit import parse
from quantcore.adapters.bybit.schemas import (
    CATEGORY,
    FUNDING_LIMIT,
    INSTRUMENTS_LIMIT,
    IP_BAN_WAIT_S,
    KLINE_INTERVALS,
    KLINE_LIMIT,
    LIMIT_RESET_HEADER,
    OPEN_INTEREST_INTERVALS,
    OPEN_INTEREST_LIMIT,
    RATE_LIMIT_CODES,
    SERVER_BUSY_CODES,
)
from quantcore.adapters.errors import (
    AdapterError,
    BadPayload,
    OnBad,
    PermanentError,
    RateLimited,
    TemporaryError,
    report_bad,
)
from quantcore.logging import get_logger
from quantcore.model.market import Candle, FundingRate, Instrument, OpenInterestPoint, Ticker
from quantcore.ratelimit import TokenBucket
from quantcore.retry import RetryPolicy, retry_with

log = get_logger(component="bybit.rest")
T = TypeVar("T")
MAX_PAGES = 10_000  # a venue that never stops paging is a bug, not a reason to loop forever
DEFAULT_WAIT_S = 1.0


def _ms(t: datetime) -> int:
    if t.tzinfo is None:
        raise ValueError("datetime must be timezone-aware (UTC)")
    return int(t.timestamp() * 1000)


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    try:
        value = headers.get(name)
    except AttributeError:
        return None
    return str(value) if value is not None else None


def _reset_wait(headers: Any, now_ms: int) -> float | None:
    """Seconds until X-Bapi-Limit-Reset-Timestamp (clamped: our clock may be off)."""
    raw = _header(headers, LIMIT_RESET_HEADER)
    if raw is None or not raw.isdigit():
        return None
    return min(60.0, max(0.0, (int(raw) - now_ms) / 1000))


def _retry_after(headers: Any) -> float | None:
    raw = _header(headers, "Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def translate(exc: BaseException, now_ms: int | None = None) -> AdapterError | None:
    """pybit / requests failure → adapter error (None: not a venue failure, let it propagate)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if isinstance(exc, InvalidRequestError):  # retCode != 0 on an HTTP 200
        code, msg = exc.status_code, f"Bybit retCode {exc.status_code}: {exc.message}"
        if code in RATE_LIMIT_CODES:
            wait = _reset_wait(exc.resp_headers, now_ms)
            return RateLimited(DEFAULT_WAIT_S if wait is None else wait, msg)
        if code in SERVER_BUSY_CODES:
            return TemporaryError(msg)
        return PermanentError(msg)
    if isinstance(exc, FailedRequestError):  # HTTP status != 200, or a body that is not JSON
        status, msg = exc.status_code, f"Bybit HTTP {exc.status_code}: {exc.message}"
        if status == 403:
            return RateLimited(IP_BAN_WAIT_S, msg)
        if status == 429:
            wait = _retry_after(exc.resp_headers)
            if wait is None:
                wait = _reset_wait(exc.resp_headers, now_ms)
            return RateLimited(DEFAULT_WAIT_S if wait is None else wait, msg)
        if status >= 500 or status in (408, 409):  # pybit reports an undecodable body as 409
            return TemporaryError(msg)
        return PermanentError(msg)
    if isinstance(exc, OSError):  # requests' ConnectionError / Timeout derive from IOError
        return TemporaryError(f"Bybit unreachable: {type(exc).__name__}: {exc}"[:300])
    return None


def new_session(base_url: str, timeout_s: float) -> Any:
    # max_retries=1 is one attempt: pybit's loop runs `max_retries` times and sends nothing at 0
    session = HTTP(testnet=False, timeout=timeout_s, max_retries=1, return_response_headers=False)
    session.endpoint = base_url.rstrip("/")
    session.retry_codes = set()  # 10006 would otherwise sleep inside pybit, then fail anyway
    return session


class BybitMarketData:
    """Public market data of Bybit linear perpetuals (or of the simulator, same wire)."""

    def __init__(
        self,
        base_url: str,
        rate_per_s: float,
        on_bad: OnBad | None = None,
        timeout_s: float = 10,
        *,
        retry_policy: RetryPolicy | None = None,
        burst: float | None = None,
        max_workers: int = 8,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = new_session(self.base_url, timeout_s)
        self._bucket = TokenBucket(rate_per_s, burst)
        self._on_bad = on_bad
        self._retry = retry_policy or RetryPolicy()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="bybit-rest")

    @property
    def bucket(self) -> TokenBucket:
        return self._bucket

    async def _get(self, method: str, **params: Any) -> Any:
        call: Callable[..., Any] = getattr(self._http, method)

        async def once() -> Any:
            await self._bucket.acquire()
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(self._pool, functools.partial(call, **params))
            except Exception as exc:
                err = translate(exc)
                if err is None:
                    raise
                if isinstance(err, RateLimited):
                    self._bucket.pause(err.retry_after_s)
                raise err from exc

        return await retry_with(self._retry, once, f"bybit {method}")

    async def _parse(self, fn: Callable[..., parse.Parsed[T]], *args: Any) -> parse.Parsed[T]:
        try:
            parsed = fn(*args)
        except BadPayload as exc:
            await report_bad(self._on_bad, [exc], "bybit")
            raise
        await report_bad(self._on_bad, parsed.bad, "bybit")
        return parsed

    # --- endpoints ---------------------------------------------------------------------------------

    async def instruments(self) -> list[Instrument]:
        """Every linear USDT perpetual that is trading, all pages."""
        found: dict[str, Instrument] = {}
        cursor, seen = "", set()
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {"category": CATEGORY, "limit": INSTRUMENTS_LIMIT}
            if cursor:
                params["cursor"] = cursor
            payload = await self._get("get_instruments_info", **params)
            page = await self._parse(parse.instruments_page, payload)
            for item in page.items:
                found.setdefault(item.symbol, item)
            seen.add(cursor)
            cursor = page.cursor
            if not cursor or cursor in seen:
                break
        return sorted(found.values(), key=lambda i: i.symbol)

    async def tickers(self, symbol: str | None = None) -> list[Ticker]:
        params: dict[str, Any] = {"category": CATEGORY}
        if symbol is not None:
            params["symbol"] = symbol
        payload = await self._get("get_tickers", **params)
        return (await self._parse(parse.tickers, payload, symbol)).items

    async def klines(
        self, symbol: str, start: datetime, end: datetime, interval: str = "1"
    ) -> list[Candle]:
        """Candles with start in [start, end], ascending. Pages walk backwards from `end`
        because Bybit returns the newest `limit` candles of the range first."""
        if interval not in KLINE_INTERVALS:
            raise PermanentError(f"unknown Bybit kline interval {interval!r}")

        async def page(page_end: int) -> list[Candle]:
            payload = await self._get(
                "get_kline", category=CATEGORY, symbol=symbol, interval=interval,
                start=_ms(start), end=page_end, limit=KLINE_LIMIT,
            )  # fmt: skip
            return (await self._parse(parse.kline_page, payload, symbol, interval)).items

        return await _backwards(page, lambda c: c.start, start, end)

    async def open_interest(
        self, symbol: str, start: datetime, end: datetime, interval: str = "5min"
    ) -> list[OpenInterestPoint]:
        if interval not in OPEN_INTEREST_INTERVALS:
            raise PermanentError(f"unknown Bybit open-interest interval {interval!r}")
        found: dict[datetime, OpenInterestPoint] = {}
        cursor, seen = "", set()
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {
                "category": CATEGORY, "symbol": symbol, "intervalTime": interval,
                "startTime": _ms(start), "endTime": _ms(end), "limit": OPEN_INTEREST_LIMIT,
            }  # fmt: skip
            if cursor:
                params["cursor"] = cursor
            payload = await self._get("get_open_interest", **params)
            page = await self._parse(parse.open_interest_page, payload, symbol)
            for point in page.items:
                found.setdefault(point.time, point)
            seen.add(cursor)
            cursor = page.cursor
            if not cursor or cursor in seen or not (page.items or page.bad):
                break
        return [found[k] for k in sorted(found) if start <= k <= end]

    async def funding_history(
        self, symbol: str, start: datetime, end: datetime
    ) -> list[FundingRate]:
        """Funding rates in [start, end], ascending. Always sends endTime: startTime alone is
        an error at Bybit."""

        async def page(page_end: int) -> list[FundingRate]:
            payload = await self._get(
                "get_funding_rate_history", category=CATEGORY, symbol=symbol,
                startTime=_ms(start), endTime=page_end, limit=FUNDING_LIMIT,
            )  # fmt: skip
            return (await self._parse(parse.funding_page, payload, symbol)).items

        return await _backwards(page, lambda r: r.time, start, end)

    async def server_time(self) -> datetime:
        payload = await self._get("get_server_time")
        try:
            return parse.server_time(payload)
        except BadPayload as exc:
            await report_bad(self._on_bad, [exc], "bybit")
            raise

    async def aclose(self) -> None:
        client = getattr(self._http, "client", None)
        if client is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, client.close)
        self._pool.shutdown(wait=False, cancel_futures=True)


async def _backwards(
    fetch: Callable[[int], Awaitable[list[T]]],
    time_of: Callable[[T], datetime],
    start: datetime,
    end: datetime,
) -> list[T]:
    """Items with time in [start, end], ascending, from an endpoint that returns the newest
    page of a range first: page on backwards from `end` until `start` is reached (not until a
    page is short: a venue may cap `limit` lower than we ask — older Bybit docs say 200).
    De-duplicated by time."""
    start_ms = _ms(start)
    found: dict[datetime, T] = {}
    page_end = _ms(end)
    for _ in range(MAX_PAGES):
        if page_end < start_ms:
            break
        items = await fetch(page_end)
        for item in items:
            found.setdefault(time_of(item), item)
        if not items:
            break
        oldest = _ms(min(time_of(i) for i in items))
        if oldest <= start_ms or oldest - 1 >= page_end:
            break
        page_end = oldest - 1
    return [found[k] for k in sorted(found) if start <= k <= end]
