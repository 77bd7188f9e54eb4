"""One error taxonomy for everything that talks to the outside (Freqtrade style): the adapters
translate a venue's failures into these at the boundary — Bybit has exactly one `translate()`,
in `quantcore.adapters.bybit.http` — so retry, venues, collectors and services decide retry /
skip / dead-letter / refuse without knowing any venue's codes.

    ExternalError                 base; `code` is the venue's code (retCode / HTTP status)
    ├── TemporaryError            worth retrying later: 5xx, timeouts, dropped connections,
    │   │                         "server busy"; after a write the order may or may not exist
    │   └── RateLimited           slow down: wait at least `retry_after_s` (HTTP 403/429, 10006)
    └── PermanentError            retrying the same request cannot help
        ├── BadPayload            a payload (or one item of it) failed validation
        ├── Rejected              the venue refused this request: parameters, an order rule,
        │                         the balance, an order it does not know
        └── AuthError             keys, signature, permissions, IP allow-list

`quantcore.retry` retries TemporaryError only (waiting at least what RateLimited asks).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from quantcore.logging import get_logger

_log = get_logger(component="adapters")


class ExternalError(Exception):
    """Base of all errors from a venue or an external service."""

    retryable = False

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TemporaryError(ExternalError):
    """Worth retrying: 5xx, timeouts, dropped connections, venue "server busy" codes."""

    retryable = True


class RateLimited(TemporaryError):
    """The venue asked us to slow down; wait at least `retry_after_s` before the next call."""

    def __init__(
        self, retry_after_s: float, message: str = "rate limited", code: int | None = None
    ) -> None:
        self.retry_after_s = max(0.0, float(retry_after_s))
        super().__init__(f"{message} (retry after {self.retry_after_s:.2f} s)", code)


class PermanentError(ExternalError):
    """Retrying the same request cannot help: bad parameters, auth, unknown endpoint."""


class Rejected(PermanentError):
    """The venue refused this request (an order rule, the balance, a parameter, an unknown
    order) for a reason that will not change on retry."""


class AuthError(PermanentError):
    """Keys, signature, permissions or IP allow-list: nothing works until a human fixes it."""


class BadPayload(PermanentError):
    """A venue payload (or one item of it) failed validation; `raw_snippet` is what we got."""

    def __init__(self, kind: str, raw_snippet: str, reason: str) -> None:
        self.kind = kind
        self.raw_snippet = raw_snippet
        self.reason = reason
        super().__init__(f"bad {kind}: {reason}")


OnBad = Callable[[str, str, str], Awaitable[None]]  # (kind, raw_snippet, reason)
MAX_BAD_REPORTS = 50  # per reply: a wholly broken reply is one incident, not 100k dead letters


async def report_bad(on_bad: OnBad | None, bad: Sequence[BadPayload], venue: str) -> None:
    """Log each bad item and hand it to `on_bad` (the collector dead-letters it). A failing
    `on_bad` is logged, never raised: good items of the same reply must still get through."""
    if not bad:
        return
    shown = bad[:MAX_BAD_REPORTS]
    extra = len(bad) - len(shown)
    reports = [(b.kind, b.raw_snippet, b.reason) for b in shown]
    if extra > 0:
        reports.append((shown[-1].kind, "", f"{extra} more bad items in the same reply not shown"))
    for kind, raw, why in reports:
        _log.warning("bad payload skipped", venue=venue, kind=kind, reason=why, raw=raw[:200])
        if on_bad is None:
            continue
        try:
            await on_bad(kind, raw, why)
        except Exception as exc:
            _log.warning("on_bad failed", venue=venue, kind=kind, error=str(exc)[:200])
