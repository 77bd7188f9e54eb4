"""Polymarket public reads over httpx: Gamma, CLOB (read only) and Data API v2, against the real
hosts or the simulator's copies. Documented per-endpoint rate limits are token buckets; 429 and
5xx are retried with backoff; an HTML reply (a Cloudflare page, a proxy error) is a clear
TemporaryError, never parsed; an expired or foreign cursor is a CursorExpired (restart the walk).
Bad items of a good reply go to `on_bad` (dead letter) and are skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import httpx

from quantcore.adapters.polymarket import parse
from quantcore.adapters.polymarket.parse import Page
from quantcore.adapters.polymarket.schemas import (
    CLOB_URL,
    DATA_TRADES_PAGE,
    DATA_URL,
    GAMMA_URL,
    HOLDERS_PER_TOKEN,
    LEADERBOARD_PAGE,
    RATE_LIMITS,
    RATE_WINDOW_S,
    V2_MAX_CONDITIONS,
)
from quantcore.errors import (
    BadPayload,
    OnBad,
    PermanentError,
    RateLimited,
    TemporaryError,
    report_bad,
)
from quantcore.logging import get_logger
from quantcore.model.poly import (
    Activity,
    Holder,
    LeaderboardEntry,
    PolyBook,
    PolyEvent,
    PolyMarket,
    PolyPosition,
    PolySource,
    PolyTag,
    PolyTrade,
    PricePoint,
)
from quantcore.ratelimit import TokenBucket
from quantcore.retry import RetryPolicy, retry_with

T = TypeVar("T")
log = get_logger(component="polymarket")
Host = Literal["gamma", "clob", "data"]
Period = Literal["DAY", "WEEK", "MONTH", "ALL"]


class CursorExpired(PermanentError):
    """The API no longer accepts this cursor (expired, or from another filter set): restart
    the walk from the beginning; rows already stored are upserted idempotently."""


@dataclass(frozen=True)
class PolymarketUrls:
    gamma: str = GAMMA_URL
    clob: str = CLOB_URL
    data: str = DATA_URL

    @classmethod
    def single(cls, base: str) -> PolymarketUrls:
        """The simulator serves all three APIs under one host, each at its own prefix."""
        base = base.rstrip("/")
        return cls(gamma=f"{base}/gamma", clob=f"{base}/clob", data=f"{base}/data")


def _retry_after(response: httpx.Response) -> float:
    raw = response.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else RATE_WINDOW_S
    except ValueError:
        return RATE_WINDOW_S


def _looks_html(response: httpx.Response) -> bool:
    ctype = response.headers.get("content-type", "")
    head = response.text[:200].lstrip().lower()
    return "html" in ctype or head.startswith(("<!doctype", "<html", "<"))


def _html_title(text: str) -> str:
    low = text.lower()
    start, end = low.find("<title>"), low.find("</title>")
    return text[start + 7 : end].strip()[:80] if 0 <= start < end else text[:80].strip()


def check(response: httpx.Response, what: str) -> Any:
    """The decoded JSON of a good reply, else the adapter error for it."""
    status = response.status_code
    where = f"Polymarket {what} HTTP {status}"
    if status == 429:
        raise RateLimited(_retry_after(response), f"{where}: rate limited")
    if _looks_html(response):
        # Cloudflare challenge pages and proxy errors: not data, maybe transient
        raise TemporaryError(
            f"{where}: reply is HTML, not JSON ({_html_title(response.text)!r}); nothing stored"
        )
    try:
        body = response.json()
    except ValueError as exc:
        if status >= 500:
            raise TemporaryError(f"{where}: {response.text[:120]!r}") from exc
        raise TemporaryError(f"{where}: reply is not JSON: {response.text[:120]!r}") from exc
    message = ""
    if isinstance(body, Mapping):
        message = str(body.get("error") or body.get("message") or body.get("errorMsg") or "")[:200]
    if status >= 500 or status == 408:
        raise TemporaryError(f"{where}: {message or 'server error'}")
    if status >= 400:
        if "cursor" in message.lower():
            raise CursorExpired(f"{where}: cursor rejected ({message}); restart the walk")
        raise PermanentError(f"{where}: {message or response.reason_phrase}")
    return body


class PolymarketClient:
    def __init__(
        self,
        urls: PolymarketUrls | None = None,
        *,
        source: PolySource = "polymarket",
        on_bad: OnBad | None = None,
        timeout_s: float = 15,
        rate_scale: float = 1.0,
        retry_policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`rate_scale` < 1 keeps us further under the documented limits (shared IPs)."""
        self.urls = urls or PolymarketUrls()
        self.source: PolySource = source
        self._client = httpx.AsyncClient(
            headers={"accept": "application/json"}, timeout=timeout_s, transport=transport
        )
        self._on_bad = on_bad
        self._retry = retry_policy or RetryPolicy()
        self._buckets: dict[str, TokenBucket] = {}
        for key, per_window in RATE_LIMITS.items():
            rate = max(per_window * rate_scale / RATE_WINDOW_S, 0.1)  # > 1 only for the simulator
            self._buckets[key] = TokenBucket(rate, max(1.0, min(rate, 50.0)))

    def _base(self, host: Host) -> str:
        return {"gamma": self.urls.gamma, "clob": self.urls.clob, "data": self.urls.data}[host]

    async def get(self, host: Host, path: str, params: Mapping[str, Any] | None = None) -> Any:
        query = {k: _wire(v) for k, v in (params or {}).items() if v is not None}
        what = f"{host} {path}"

        async def once() -> Any:
            for key in (host, f"{host}:{path}"):
                bucket = self._buckets.get(key)
                if bucket is not None:
                    await bucket.acquire()
            try:
                response = await self._client.get(self._base(host) + path, params=query)
            except httpx.TransportError as exc:
                raise TemporaryError(
                    f"Polymarket {what} unreachable: {type(exc).__name__}: {exc}"[:300]
                ) from exc
            try:
                return check(response, what)
            except RateLimited as exc:
                self._buckets[host].pause(exc.retry_after_s)
                raise

        return await retry_with(self._retry, once, f"polymarket {what}")

    async def _report(self, bad: list[BadPayload]) -> None:
        await report_bad(self._on_bad, bad, f"polymarket/{self.source}")

    async def _page(self, page: Page[T]) -> Page[T]:
        await self._report(page.bad)
        return page

    async def _whole(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except BadPayload as exc:
            await self._report([exc])
            raise

    # --- Gamma ---------------------------------------------------------------------------------

    async def markets_page(
        self, cursor: str | None = None, *, closed: bool | None = None, limit: int = 100
    ) -> Page[PolyMarket]:
        """One page of the keyset crawl (`/markets/keyset`, ≤ 100 per page; no next_cursor on
        the last page). Both market versions."""
        payload = await self.get(
            "gamma", "/markets/keyset", {"limit": limit, "after_cursor": cursor, "closed": closed}
        )
        return await self._page(
            await self._whole(lambda: parse.gamma_markets(payload, self.source))
        )

    async def market(self, market_id: str) -> PolyMarket:
        payload = await self.get("gamma", f"/markets/{market_id}")
        page = await self._page(
            await self._whole(lambda: parse.gamma_markets(payload, self.source))
        )
        if not page.items:
            raise PermanentError(
                f"Polymarket market {market_id}: rejected ({page.bad[0].reason if page.bad else 'empty'})"
            )
        return page.items[0]

    async def events_page(
        self, cursor: str | None = None, *, closed: bool | None = None, limit: int = 100
    ) -> Page[PolyEvent]:
        payload = await self.get(
            "gamma", "/events/keyset", {"limit": limit, "after_cursor": cursor, "closed": closed}
        )
        page, market_bad = await self._whole(lambda: parse.gamma_events(payload, self.source))
        await self._report(market_bad)
        return await self._page(page)

    async def tags(self) -> list[PolyTag]:
        payload = await self.get("gamma", "/tags")
        return (await self._page(await self._whole(lambda: parse.gamma_tags(payload)))).items

    # --- CLOB (public reads) -------------------------------------------------------------------

    async def book(self, token_id: str) -> PolyBook:
        payload = await self.get("clob", "/book", {"token_id": token_id})
        return await self._whole(lambda: parse.book(payload))

    async def price(self, token_id: str, side: Literal["BUY", "SELL"]) -> float:
        payload = await self.get("clob", "/price", {"token_id": token_id, "side": side})
        return await self._whole(lambda: parse.probability(payload, "price", "poly_price"))

    async def midpoint(self, token_id: str) -> float:
        payload = await self.get("clob", "/midpoint", {"token_id": token_id})
        return await self._whole(lambda: parse.probability(payload, "mid", "poly_midpoint"))

    async def tick_size(self, token_id: str) -> float:
        payload = await self.get("clob", "/tick-size", {"token_id": token_id})
        return await self._whole(
            lambda: parse.scalar(payload, "minimum_tick_size", "poly_tick_size")
        )

    async def fee_rate_bps(self, token_id: str) -> float:
        payload = await self.get("clob", "/fee-rate", {"token_id": token_id})
        return await self._whole(lambda: parse.fee_rate_bps(payload))

    async def price_history(
        self, token_id: str, start_s: int, end_s: int, fidelity_min: int = 1
    ) -> list[PricePoint]:
        payload = await self.get(
            "clob", "/prices-history",
            {"market": token_id, "startTs": start_s, "endTs": end_s, "fidelity": fidelity_min},
        )  # fmt: skip
        return (
            await self._page(await self._whole(lambda: parse.price_history(payload, token_id)))
        ).items

    async def clob_markets_page(self, cursor: str | None = None) -> Page[PolyMarket]:
        payload = await self.get("clob", "/markets", {"next_cursor": cursor})
        return await self._page(await self._whole(lambda: parse.clob_markets(payload, self.source)))

    # --- Data API v2 ---------------------------------------------------------------------------

    async def trades_page(
        self,
        cursor: str | None = None,
        *,
        user: str | None = None,
        conditions: list[str] | None = None,
        limit: int = DATA_TRADES_PAGE,
        taker_only: bool = True,
    ) -> Page[PolyTrade]:
        """The global feed (no user, no condition), one wallet's, or up to 20 markets'. Re-send
        the same filters with each cursor (v2 rule)."""
        if conditions and len(conditions) > V2_MAX_CONDITIONS:
            raise PermanentError(f"at most {V2_MAX_CONDITIONS} conditions per request")
        payload = await self.get(
            "data", "/v2/trades",
            {"cursor": cursor, "user": user, "limit": None if cursor else limit,
             "condition": ",".join(conditions) if conditions else None, "taker_only": taker_only},
        )  # fmt: skip
        return await self._page(await self._whole(lambda: parse.trades(payload, self.source)))

    async def positions_page(
        self,
        user: str,
        cursor: str | None = None,
        *,
        status: Literal["OPEN", "REDEEMABLE", "REDEEMABLE_LOST", "MERGEABLE", "CLOSED"]
        | None = None,
        limit: int = 500,
    ) -> Page[PolyPosition]:
        payload = await self.get(
            "data", "/v2/positions",
            {"user": user, "status": status, "cursor": cursor, "limit": None if cursor else limit},
        )  # fmt: skip
        return await self._page(await self._whole(lambda: parse.positions(payload, self.source)))

    async def activity_page(self, user: str, cursor: str | None = None) -> Page[Activity]:
        payload = await self.get("data", "/v2/activity", {"user": user, "cursor": cursor})
        return await self._page(await self._whole(lambda: parse.activity(payload)))

    async def holders(self, conditions: list[str], limit: int = HOLDERS_PER_TOKEN) -> list[Holder]:
        payload = await self.get(
            "data", "/holders", {"market": ",".join(conditions), "limit": limit}
        )
        return (await self._page(await self._whole(lambda: parse.holders(payload)))).items

    async def leaderboard(
        self,
        period: Period,
        *,
        category: str = "OVERALL",
        offset: int = 0,
        limit: int = LEADERBOARD_PAGE,
    ) -> list[LeaderboardEntry]:
        """Finite windows rank by PnL *including unrealised*; ALL by realised PnL only."""
        payload = await self.get(
            "data", "/v1/leaderboard",
            {"timePeriod": period, "category": category, "orderBy": "PNL", "limit": limit, "offset": offset},
        )  # fmt: skip
        return (
            await self._page(await self._whole(lambda: parse.leaderboard(payload, period)))
        ).items

    async def walk(
        self,
        fetch: Callable[[str | None], Awaitable[Page[T]]],
        start: str | None = None,
        max_pages: int = 10_000,
    ) -> AsyncIterator[tuple[Page[T], str | None]]:
        """Follow cursors from `start`: yields each page with the cursor that fetched it (store
        it to resume after a restart). Stops when the API says there are no more pages."""
        cursor = start
        for _ in range(max_pages):
            page = await fetch(cursor)
            yield page, cursor
            if page.next_cursor is None or page.next_cursor == cursor:
                return
            cursor = page.next_cursor

    async def aclose(self) -> None:
        await self._client.aclose()


def _wire(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
