"""X (Twitter) through tweepy: one post per message (API v2, OAuth 1.0a user context).

tweepy has no host option, so X_API_BASE_URL is applied by a requests adapter on the client's
public session that rewrites https://api.twitter.com to it (a proxy or a local fake)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

import requests
import tweepy

from quantcore.config import Settings
from svc_broadcaster.channels.base import Permanent, RateLimited, Transient

TWEEPY_HOST = "https://api.twitter.com"


class _Redirect(requests.adapters.HTTPAdapter):
    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target.rstrip("/")

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        if request.url and request.url.startswith(TWEEPY_HOST):
            request.url = self.target + request.url[len(TWEEPY_HOST) :]
        return super().send(request, *args, **kwargs)


def _retry_after(response: Any) -> float:
    headers = getattr(response, "headers", {}) or {}
    if headers.get("retry-after"):
        try:
            return float(headers["retry-after"])
        except ValueError:
            pass
    reset = headers.get("x-rate-limit-reset")
    if reset:
        try:
            return max(float(reset) - time.time(), 1.0)
        except ValueError:
            pass
    return 60.0


class XSender:
    name: ClassVar[str] = "x"
    resend_in_doubt: ClassVar[bool] = False

    def __init__(self, client: tweepy.Client, timeout: float) -> None:
        self.client = client
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> XSender:
        secrets = [settings.x_api_key, settings.x_api_secret, settings.x_access_token,
                   settings.x_access_secret]  # fmt: skip
        key, secret, token, token_secret = (s.get_secret_value() if s else "" for s in secrets)
        client = tweepy.Client(
            consumer_key=key, consumer_secret=secret, access_token=token,
            access_token_secret=token_secret, wait_on_rate_limit=False,
        )  # fmt: skip
        base = settings.x_api_base_url.rstrip("/")
        if base != TWEEPY_HOST:
            client.session.mount(TWEEPY_HOST, _Redirect(base))
        return cls(client, settings.broadcast_send_timeout_s)

    def _post(self, text: str) -> str:
        response = self.client.create_tweet(text=text, user_auth=True)
        data = response.data if isinstance(response, tweepy.Response) else None
        if not isinstance(data, dict) or "id" not in data:
            raise Transient(f"unexpected answer to POST /2/tweets: {str(response)[:200]}")
        return str(data["id"])

    async def send(self, text: str, subject: str | None, key: str) -> str:
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._post, text), self.timeout)
        except tweepy.TooManyRequests as exc:
            raise RateLimited(f"429: {exc}", _retry_after(exc.response)) from exc
        except tweepy.Unauthorized as exc:
            raise Permanent(f"401: {exc}", channel_wide=True) from exc
        except (tweepy.BadRequest, tweepy.Forbidden, tweepy.NotFound) as exc:
            raise Permanent(f"{exc.response.status_code}: {exc}", channel_wide=False) from exc
        except (tweepy.TwitterServerError, requests.RequestException, TimeoutError) as exc:
            raise Transient(f"{type(exc).__name__}: {exc}") from exc
        except tweepy.HTTPException as exc:
            raise Transient(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        self.client.session.close()
