"""The one Bybit v5 HTTP client: a pybit session on a small thread pool (pybit is synchronous),
one token bucket per client, and the one `translate()` of Bybit's failures into
`quantcore.errors`. Market data (`rest.BybitMarketData`) and execution
(`execution.BybitVenue`) both call through it — in a process that trades at Bybit, through the
same instance (`execution.make_bybit_client`): one session and pool, one bucket per host.

pybit's own retries are off (its loop would sleep on 10002/10006 and double our waits); reads
retry TemporaryError with `quantcore.retry`, writes never retry on their own (an order's
idempotency is its orderLinkId).

Failure mapping (docs/v5/error.mdx, docs/v5/rate-limit.mdx):
- HTTP 403: the IP limit is breached ("access too frequent"; US / mainland China IPs get it too):
  RateLimited for IP_BAN_WAIT_S (the docs: stop for at least 10 minutes)
- HTTP 429 and retCode 10006: RateLimited until Retry-After / X-Bapi-Limit-Reset-Timestamp
- HTTP 5xx / 408 / 409 (pybit's undecodable body), transport failures, retCode 10000 / 10016 /
  10019 (server busy, restarting) and 10002 (request time / recv window): TemporaryError
- HTTP 401 and the auth / permission retCodes: AuthError
- any other retCode (10001 params, 110xxx order rules) and HTTP 4xx: Rejected
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pybit.exceptions import (  # type: ignore[import-untyped]
    FailedRequestError,
    InvalidRequestError,
)
from pybit.unified_trading import HTTP  # type: ignore[import-untyped]

from quantcore.errors import (
    AuthError,
    ExternalError,
    RateLimited,
    Rejected,
    TemporaryError,
)
from quantcore.ratelimit import TokenBucket
from quantcore.retry import RetryPolicy, retry_with

IP_BAN_WAIT_S = 600.0  # HTTP 403: IP limit breached, docs say stop for >= 10 minutes
DEFAULT_WAIT_S = 1.0
LIMIT_RESET_HEADER = "X-Bapi-Limit-Reset-Timestamp"  # ms epoch when the UID window resets
RATE_LIMIT_CODES = frozenset({10006})  # "Too many visits"
TEMPORARY_CODES = frozenset({10000, 10002, 10016, 10019})  # timeout, recv window, busy, restart
AUTH_CODES = frozenset({10003, 10004, 10005, 10007, 10008, 10009, 10010, 10027, 10028, 100028})


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


def translate(exc: BaseException, now_ms: int | None = None) -> ExternalError | None:
    """pybit / requests failure → our error (None: not a venue failure, let it propagate)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if isinstance(exc, InvalidRequestError):  # retCode != 0 on an HTTP 200
        code = int(exc.status_code)
        msg = f"Bybit retCode {code}: {exc.message}"
        if code in RATE_LIMIT_CODES:
            wait = _reset_wait(exc.resp_headers, now_ms)
            return RateLimited(DEFAULT_WAIT_S if wait is None else wait, msg, code)
        if code in TEMPORARY_CODES:
            return TemporaryError(msg, code)
        if code in AUTH_CODES:
            return AuthError(msg, code)
        return Rejected(msg, code)
    if isinstance(exc, FailedRequestError):  # HTTP status != 200, or a body that is not JSON
        status = int(exc.status_code)
        msg = f"Bybit HTTP {status}: {exc.message}"
        if status == 403:
            return RateLimited(IP_BAN_WAIT_S, msg, status)
        if status == 429:
            wait = _retry_after(exc.resp_headers)
            if wait is None:
                wait = _reset_wait(exc.resp_headers, now_ms)
            return RateLimited(DEFAULT_WAIT_S if wait is None else wait, msg, status)
        if status >= 500 or status in (408, 409):  # pybit reports an undecodable body as 409
            return TemporaryError(msg, status)
        if status == 401:
            return AuthError(msg, status)
        return Rejected(msg, status)
    if isinstance(exc, OSError):  # requests' ConnectionError / Timeout derive from IOError
        return TemporaryError(f"Bybit unreachable: {type(exc).__name__}: {exc}"[:300])
    return None


class BybitHttp:
    """One pybit session (public, or signed with a key), its thread pool and its bucket."""

    def __init__(
        self,
        endpoint: str,
        rate_per_s: float,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        testnet: bool = False,
        recv_window_ms: int = 5000,
        timeout_s: float = 10.0,
        burst: float | None = None,
        retry_policy: RetryPolicy | None = None,
        max_workers: int = 4,
        name: str = "bybit",
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.signed = api_key is not None
        self._closed = False
        # max_retries=1 is one attempt: pybit's loop runs `max_retries` times, sends nothing at 0
        self.session = HTTP(
            testnet=testnet,
            api_key=api_key,
            api_secret=api_secret,
            recv_window=recv_window_ms,
            timeout=timeout_s,
            max_retries=1,
            return_response_headers=False,
        )
        self.session.endpoint = self.endpoint
        self.session.retry_codes = set()  # 10002/10006 would sleep inside pybit, then fail anyway
        self.bucket = TokenBucket(rate_per_s, burst)
        self.retry_policy = retry_policy or RetryPolicy()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)

    def __repr__(self) -> str:  # never the keys
        return f"BybitHttp({self.endpoint!r})"

    async def call(self, method: str, **params: Any) -> Any:
        """One attempt of a pybit method; every venue failure raises a quantcore.errors type."""
        fn: Callable[..., Any] = getattr(self.session, method)
        await self.bucket.acquire()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, functools.partial(fn, **params))
        except Exception as exc:
            err = translate(exc)
            if err is None:
                raise
            if isinstance(err, RateLimited):
                self.bucket.pause(err.retry_after_s)
            raise err from exc

    async def read(self, method: str, **params: Any) -> Any:
        """A read: TemporaryError is retried (RateLimited waits at least what it asks)."""
        return await self.read_with(self.retry_policy, method, **params)

    async def read_with(self, policy: RetryPolicy, method: str, **params: Any) -> Any:
        """A read retried by the caller's policy (data and execution share one client, each
        with its own patience)."""
        return await retry_with(policy, lambda: self.call(method, **params), f"bybit {method}")

    async def aclose(self) -> None:
        """Idempotent: every user of a shared client may close it."""
        if self._closed:
            return
        self._closed = True
        client = getattr(self.session, "client", None)
        if client is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, client.close)
        self._pool.shutdown(wait=False, cancel_futures=True)
