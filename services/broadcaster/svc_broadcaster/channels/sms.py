"""SMS through the twilio library (its asyncio HTTP client), to SMS_ADMIN_PHONE."""

from __future__ import annotations

from typing import Any, ClassVar

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from quantcore.config import Settings
from svc_broadcaster.channels.base import Permanent, RateLimited, Transient


class _KeepLastResponse(AsyncTwilioHttpClient):  # type: ignore[misc]
    """Keeps the last response, whose Retry-After a 429 may carry (the exception does not)."""

    last: Response | None = None

    async def request(self, *args: Any, **kwargs: Any) -> Response:
        self.last = await super().request(*args, **kwargs)
        return self.last


class SmsSender:
    name: ClassVar[str] = "sms"
    resend_in_doubt: ClassVar[bool] = False

    def __init__(self, client: Client, http: _KeepLastResponse, from_: str, to: str) -> None:
        self.client = client
        self.http = http
        self.from_ = from_
        self.to = to

    @classmethod
    def from_settings(cls, settings: Settings) -> SmsSender:
        assert settings.twilio_auth_token and settings.twilio_phone and settings.sms_admin_phone
        http = _KeepLastResponse(timeout=settings.broadcast_send_timeout_s)
        client = Client(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value(),
                        http_client=http)  # fmt: skip
        client.api.base_url = settings.twilio_api_base_url.rstrip("/")
        return cls(client, http, settings.twilio_phone, settings.sms_admin_phone)

    def _retry_after(self) -> float:
        headers = self.http.last.headers if self.http.last is not None else {}
        try:
            return float((headers or {}).get("Retry-After", 60))
        except (TypeError, ValueError):
            return 60.0

    async def send(self, text: str, subject: str | None, key: str) -> str:
        try:
            msg = await self.client.messages.create_async(to=self.to, from_=self.from_, body=text)
        except TwilioRestException as exc:
            if exc.status == 429:
                raise RateLimited(f"429: {exc.msg}", self._retry_after()) from exc
            if exc.status in (401, 403):
                raise Permanent(f"{exc.status} ({exc.code}): {exc.msg}", channel_wide=True) from exc
            if 400 <= exc.status < 500:
                raise Permanent(
                    f"{exc.status} ({exc.code}): {exc.msg}", channel_wide=False
                ) from exc
            raise Transient(f"{exc.status}: {exc.msg}") from exc
        except (TwilioException, aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Transient(f"{type(exc).__name__}: {exc}") from exc
        return str(msg.sid)

    async def close(self) -> None:
        await self.http.close()
