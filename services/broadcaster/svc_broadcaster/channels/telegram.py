"""Telegram through python-telegram-bot: HTML messages to TELEGRAM_MAIN_CHANNEL."""

from __future__ import annotations

import warnings
from datetime import timedelta
from typing import ClassVar

from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)
from telegram.request import HTTPXRequest

from quantcore.config import Settings
from svc_broadcaster.channels.base import Permanent, RateLimited, Transient


def bot_urls(base: str) -> tuple[str, str]:
    """PTB's base_url and base_file_url for a Bot API server (the token is appended)."""
    base = base.rstrip("/")
    return f"{base}/bot", f"{base}/file/bot"


def retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns while moving retry_after to timedelta
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def make_bot(settings: Settings, timeout: float) -> Bot:
    assert settings.telegram_bot_token is not None
    base_url, file_url = bot_urls(settings.telegram_api_base_url)
    request = HTTPXRequest(
        connection_pool_size=4, read_timeout=timeout, write_timeout=timeout,
        connect_timeout=timeout, pool_timeout=timeout,
    )  # fmt: skip
    return Bot(
        settings.telegram_bot_token.get_secret_value(),
        base_url=base_url,
        base_file_url=file_url,
        request=request,
    )


class TelegramSender:
    name: ClassVar[str] = "telegram"
    resend_in_doubt: ClassVar[bool] = False

    def __init__(self, bot: Bot, chat_id: str) -> None:
        self.bot = bot
        self.chat_id = chat_id

    @classmethod
    def from_settings(cls, settings: Settings) -> TelegramSender:
        assert settings.telegram_main_channel is not None
        return cls(make_bot(settings, settings.broadcast_send_timeout_s),
                   settings.telegram_main_channel)  # fmt: skip

    async def send(self, text: str, subject: str | None, key: str) -> str:
        return await send_html(self.bot, self.chat_id, text)

    async def close(self) -> None:
        await self.bot.request.shutdown()


async def send_html(bot: Bot, chat_id: str | int, text: str) -> str:
    try:
        msg = await bot.send_message(
            chat_id=chat_id, text=text, parse_mode=ParseMode.HTML,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )  # fmt: skip
    except RetryAfter as exc:
        raise RateLimited(str(exc), retry_after_seconds(exc)) from exc
    except (InvalidToken, Forbidden, ChatMigrated) as exc:
        raise Permanent(f"{type(exc).__name__}: {exc}", channel_wide=True) from exc
    except BadRequest as exc:
        channel_wide = "chat not found" in str(exc).lower()
        raise Permanent(f"BadRequest: {exc}", channel_wide=channel_wide) from exc
    except TelegramError as exc:  # NetworkError (5xx, connection), TimedOut
        raise Transient(f"{type(exc).__name__}: {exc}") from exc
    return str(msg.message_id)
