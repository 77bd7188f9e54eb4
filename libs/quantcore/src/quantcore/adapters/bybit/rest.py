"""Bybit v5 public REST market data, through the one Bybit HTTP client (`http.BybitHttp`: its
session, its bucket, its `translate()`); reads retry TemporaryError with quantcore.retry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from quantcore.adapters.bybit import parse
from quantcore.adapters.bybit.http import BybitHttp
from quantcore.adapters.bybit.schemas import (
    ACCOUNT_RATIO_LIMIT,
    ACCOUNT_RATIO_PERIODS,
    CATEGORY,
    FUNDING_LIMIT,
    INSTRUMENTS_LIMIT,
    KLINE_INTERVALS,
    KLINE_LIMIT,
    OPEN_INTEREST_INTERVALS,
    OPEN_INTEREST_LIMIT,
)
from quantcore.errors import BadPayload, OnBad, PermanentError, report_bad
from quantcore.logging import get_logger
from quantcore.model.market import (
    AccountRatio,
    Candle,
    FundingRate,
    Instrument,
    OpenInterestPoint,
    RiskTier,
    Ticker,
)
from quantcore.ratelimit import TokenBucket
from quantcore.retry import RetryPolicy

log = get_logger(component="bybit.rest")
T = TypeVar("T")
MAX_PAGES = 10_000  # a venue that never stops paging is a bug, not a reason to loop forever
DEFAULT_WAIT_S = 1.0


def _ms(t: datetime) -> int:
    if t.tzinfo is None:
        raise ValueError("datetime must be timezone-aware (UTC)")
    return int(t.timestamp() * 1000)


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
        http: BybitHttp | None = None,
    ) -> None:
        """`http`: the process's one Bybit client to call through (its session, pool and
        bucket, shared with the venue: `execution.make_bybit_client`); by default a public
        client of its own at `base_url`, `rate_per_s`."""
        self.base_url = base_url.rstrip("/")
        self._retry = retry_policy or RetryPolicy()
        self._http = http or BybitHttp(
            self.base_url, rate_per_s, timeout_s=timeout_s, burst=burst,
            retry_policy=self._retry, max_workers=max_workers, name="bybit-rest",
        )  # fmt: skip
        if self._http.endpoint != self.base_url:
            raise ValueError(f"the Bybit client calls {self._http.endpoint}, not {self.base_url}")
        self._on_bad = on_bad

    @property
    def http(self) -> BybitHttp:
        """The Bybit client this calls through (the venue reuses it on the same host)."""
        return self._http

    @property
    def bucket(self) -> TokenBucket:
        return self._http.bucket

    async def _get(self, method: str, **params: Any) -> Any:
        return await self._http.read_with(self._retry, method, **params)

    async def _parse(self, fn: Callable[..., parse.Parsed[T]], *args: Any) -> parse.Parsed[T]:
        try:
            parsed = fn(*args)
        except BadPayload as exc:
            await report_bad(self._on_bad, [exc], "bybit")
            raise
        await report_bad(self._on_bad, parsed.bad, "bybit")
        return parsed

    async def _by_cursor(
        self, method: str, params: dict[str, Any], fn: Callable[..., parse.Parsed[T]],
        *args: Any, stop_when_empty: bool = False,
    ) -> list[T]:  # fmt: skip
        """Every item of every page of a cursor-paged endpoint, in the order served: follows
        `nextPageCursor` until it is empty or comes round again (a venue looping on one
        cursor), or — `stop_when_empty` — a page carries nothing at all (no item, no bad one)."""
        items: list[T] = []
        cursor, seen = "", set()
        for _ in range(MAX_PAGES):
            payload = await self._get(method, **params, **({"cursor": cursor} if cursor else {}))
            page = await self._parse(fn, payload, *args)
            items += page.items
            seen.add(cursor)
            cursor = page.cursor
            if not cursor or cursor in seen or (stop_when_empty and not (page.items or page.bad)):
                break
        return items

    # --- endpoints ---------------------------------------------------------------------------------

    async def instruments(self) -> list[Instrument]:
        """Every linear USDT perpetual that is trading, all pages."""
        found: dict[str, Instrument] = {}
        params = {"category": CATEGORY, "limit": INSTRUMENTS_LIMIT}
        for item in await self._by_cursor("get_instruments_info", params, parse.instruments_page):
            found.setdefault(item.symbol, item)
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
        params: dict[str, Any] = {
            "category": CATEGORY, "symbol": symbol, "intervalTime": interval,
            "startTime": _ms(start), "endTime": _ms(end), "limit": OPEN_INTEREST_LIMIT,
        }  # fmt: skip
        found: dict[datetime, OpenInterestPoint] = {}
        for point in await self._by_cursor("get_open_interest", params, parse.open_interest_page,
                                           symbol, stop_when_empty=True):  # fmt: skip
            found.setdefault(point.time, point)
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

    async def account_ratio(
        self, symbol: str, start: datetime, end: datetime, period: str = "5min"
    ) -> list[AccountRatio]:
        """The long/short account ratio per `period` in [start, end], ascending (all pages:
        the venue answers newest first and pages on by cursor)."""
        if period not in ACCOUNT_RATIO_PERIODS:
            raise PermanentError(f"unknown Bybit account-ratio period {period!r}")
        params: dict[str, Any] = {
            "category": CATEGORY, "symbol": symbol, "period": period,
            "startTime": _ms(start), "endTime": _ms(end), "limit": ACCOUNT_RATIO_LIMIT,
        }  # fmt: skip
        found: dict[datetime, AccountRatio] = {}
        for point in await self._by_cursor("get_long_short_ratio", params,
                                           parse.account_ratio_page, symbol, period,
                                           stop_when_empty=True):  # fmt: skip
            found.setdefault(point.time, point)
        return [found[k] for k in sorted(found) if start <= k <= end]

    async def risk_limits(self, symbol: str) -> list[RiskTier]:
        """The risk-limit tiers of one coin, ascending (maintenance margin per tier)."""
        params = {"category": CATEGORY, "symbol": symbol}
        tiers = await self._by_cursor("get_risk_limit", params, parse.risk_limit_page, symbol)
        return parse.number_tiers(tiers)

    async def server_time(self) -> datetime:
        payload = await self._get("get_server_time")
        try:
            return parse.server_time(payload)
        except BadPayload as exc:
            await report_bad(self._on_bad, [exc], "bybit")
            raise

    async def aclose(self) -> None:
        await self._http.aclose()


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
