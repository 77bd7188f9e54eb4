"""The shape every channel has, and the three kinds of send errors."""

from __future__ import annotations

from typing import ClassVar, Protocol


class SendError(Exception):
    pass


class Transient(SendError):
    """Worth retrying later (network, 5xx, timeouts)."""


class RateLimited(Transient):
    """The provider said: not before `retry_after_s` seconds (HTTP 429)."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Permanent(SendError):
    """Retrying cannot help. `channel_wide`: nothing can be sent on this channel (bad
    credentials, blocked bot); otherwise only this message is refused."""

    def __init__(self, message: str, channel_wide: bool) -> None:
        super().__init__(message)
        self.channel_wide = channel_wide


class Sender(Protocol):
    name: ClassVar[str]
    # whether a message whose send was interrupted may be sent again without a duplicate
    # reaching people (email: the same Message-ID is kept once by mail stores)
    resend_in_doubt: ClassVar[bool]

    async def send(self, text: str, subject: str | None, key: str) -> str:
        """Send; returns the provider's message id. `key` is stable per message (idempotency)."""
        ...

    async def close(self) -> None: ...
