"""Venue adapters: raw venue payloads become quantcore.model objects here, and venue errors
become quantcore.errors. Nothing past an adapter sees a venue dict."""

from quantcore.errors import (
    BadPayload,
    ExternalError,
    PermanentError,
    RateLimited,
    TemporaryError,
)

__all__ = ["BadPayload", "ExternalError", "PermanentError", "RateLimited", "TemporaryError"]
