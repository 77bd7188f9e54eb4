"""Bybit v5 request signing, checked the way Bybit checks it (docs/v5/guide.mdx).

The signed string is `timestamp + apiKey + recvWindow + payload`, where the payload is the raw
query string (GET) or the raw body (POST) exactly as received: nothing is re-serialised, so a
client that signs something other than what it sends fails here as it would at Bybit.
HMAC-SHA256, lowercase hex. The time rule uses the wall clock (the clients' clock), not the
simulated one: server_time − recv_window ≤ timestamp < server_time + 1000.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from aiohttp import web

INVALID_KEY = 10003
BAD_SIGN = 10004
TIME_WINDOW = 10002
DEFAULT_RECV_WINDOW = 5000
FUTURE_TOLERANCE_MS = 1000


class AuthError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def sign(secret: str, timestamp: str, api_key: str, recv_window: str, payload: bytes) -> str:
    prefix = f"{timestamp}{api_key}{recv_window}".encode()
    return hmac.new(secret.encode(), prefix + payload, hashlib.sha256).hexdigest()


def raw_query(request: web.Request) -> bytes:
    """The query string as it came over the wire (aiohttp's `query_string` is decoded)."""
    raw = request.raw_path
    _, sep, query = raw.partition("?")
    return query.encode() if sep else b""


async def authenticate(
    request: web.Request, secrets: Mapping[str, str], now_ms: int | None = None
) -> str:
    """The API key of a correctly signed request, else AuthError with Bybit's code."""
    headers = request.headers
    api_key = headers.get("X-BAPI-API-KEY", "")
    if not api_key or api_key not in secrets:
        raise AuthError(INVALID_KEY, "API key is invalid.")
    timestamp = headers.get("X-BAPI-TIMESTAMP", "")
    recv_window = headers.get("X-BAPI-RECV-WINDOW", str(DEFAULT_RECV_WINDOW))
    server_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if not timestamp.isdigit() or not recv_window.isdigit():
        raise AuthError(
            TIME_WINDOW, "invalid request, please check your timestamp and recv_window param"
        )
    ts, window = int(timestamp), int(recv_window)
    if not server_ms - window <= ts < server_ms + FUTURE_TOLERANCE_MS:
        raise AuthError(
            TIME_WINDOW,
            "invalid request, please check your server timestamp or recv_window param. "
            f"req_timestamp[{ts}],server_timestamp[{server_ms}],recv_window[{window}]",
        )
    payload = raw_query(request) if request.method == "GET" else await request.read()
    expected = sign(secrets[api_key], timestamp, api_key, recv_window, payload)
    given = headers.get("X-BAPI-SIGN", "")
    if not hmac.compare_digest(expected, given.lower()):
        origin = f"{timestamp}{api_key}{recv_window}{payload.decode(errors='replace')}"
        raise AuthError(BAD_SIGN, f"error sign! origin_string[{origin}]")
    return api_key
