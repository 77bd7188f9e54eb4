"""CoinGlass v4 aggregated liquidation heatmaps (or the simulator's copy of that endpoint)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, cast

import httpx

from quantcore.adapters.coinglass import parse
from quantcore.adapters.coinglass.schemas import (
    API_KEY_HEADER,
    OK_CODE,
    RANGES,
    RATE_LIMIT_CODES,
    RATE_WINDOW_S,
    TEMPORARY_CODES,
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
from quantcore.model.market import TIMEFRAMES, Heatmap, Timeframe
from quantcore.ratelimit import TokenBucket
from quantcore.retry import RetryPolicy, retry_with

log = get_logger(component="coinglass")


def _retry_after(response: httpx.Response) -> float:
    raw = response.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else RATE_WINDOW_S
    except ValueError:
        return RATE_WINDOW_S


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _message(body: Any, response: httpx.Response) -> str:
    if isinstance(body, dict) and body.get("msg"):
        return str(body["msg"])[:200]
    return response.text[:200] or response.reason_phrase


def check(response: httpx.Response) -> Any:
    """The decoded body of a good reply, else the adapter error for it. CoinGlass reports
    most errors as HTTP 200 with a non-"0" string `code` in the envelope."""
    body = _body(response)
    status = response.status_code
    code = str(body.get("code")) if isinstance(body, dict) and "code" in body else None
    what = f"CoinGlass HTTP {status}" + (f" code {code}" if code is not None else "")
    if status == 429 or code in RATE_LIMIT_CODES:
        raise RateLimited(_retry_after(response), f"{what}: {_message(body, response)}")
    if status >= 500 or status == 408 or code in TEMPORARY_CODES:
        raise TemporaryError(f"{what}: {_message(body, response)}")
    if status != 200:
        raise PermanentError(f"{what}: {_message(body, response)}")
    if body is None:
        raise TemporaryError(f"{what}: reply is not JSON: {response.text[:100]!r}")
    if code != OK_CODE:
        raise PermanentError(f"{what}: {_message(body, response)}")
    return body


class CoinGlassHeatmaps:
    def __init__(
        self,
        url: str,
        api_key: str | None,
        rate_per_min: int,
        source: Literal["coinglass", "sim"],
        on_bad: OnBad | None = None,
        timeout_s: float = 15,
        *,
        retry_policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if rate_per_min < 1:
            raise ValueError("rate_per_min must be >= 1")
        self.url = url
        self.source: Literal["coinglass", "sim"] = source
        headers = {"accept": "application/json"}
        if api_key:
            headers[API_KEY_HEADER] = api_key
        self._client = httpx.AsyncClient(headers=headers, timeout=timeout_s, transport=transport)
        # burst 1 and one token short of the plan: never more than rate_per_min in any minute
        self._bucket = TokenBucket(max(rate_per_min - 1, 1) / 60.0, 1)
        self._on_bad = on_bad
        self._retry = retry_policy or RetryPolicy()

    @property
    def bucket(self) -> TokenBucket:
        return self._bucket

    async def _get(self, params: dict[str, str]) -> Any:
        async def once() -> Any:
            await self._bucket.acquire()
            try:
                response = await self._client.get(self.url, params=params)
            except httpx.TransportError as exc:  # connect/read errors and timeouts
                raise TemporaryError(
                    f"CoinGlass unreachable: {type(exc).__name__}: {exc}"[:300]
                ) from exc
            try:
                return check(response)
            except RateLimited as exc:
                self._bucket.pause(exc.retry_after_s)
                raise

        return await retry_with(self._retry, once, "coinglass heatmap")

    async def heatmap(self, base_coin: str, symbol: str, timeframe: str) -> Heatmap:
        if timeframe not in TIMEFRAMES:
            raise PermanentError(f"unknown heatmap timeframe {timeframe!r}")
        if self.source == "coinglass" and timeframe not in RANGES:
            raise PermanentError(f"CoinGlass offers no {timeframe} heatmap")
        payload = await self._get({"symbol": base_coin, "range": timeframe})
        try:
            parsed = parse.heatmap(
                payload, symbol=symbol, timeframe=cast(Timeframe, timeframe), source=self.source,
                now=datetime.now(UTC),
            )  # fmt: skip
        except BadPayload as exc:
            await report_bad(self._on_bad, [exc], self.source)
            raise
        await report_bad(self._on_bad, parsed.bad, self.source)
        return parsed.heatmap

    async def aclose(self) -> None:
        await self._client.aclose()
