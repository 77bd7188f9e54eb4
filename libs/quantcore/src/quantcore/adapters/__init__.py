"""Venue adapters: raw venue payloads become quantcore.model objects here, and venue errors
become quantcore.adapters.errors. Nothing past an adapter sees a venue dict."""

from quantcore.adapters.errors import (
    AdapterError,
    BadPayload,
    PermanentError,
    RateLimited,
    TemporaryError,
)

__all__ = ["AdapterError", "BadPayload", "PermanentError", "RateLimited", "TemporaryError"]
