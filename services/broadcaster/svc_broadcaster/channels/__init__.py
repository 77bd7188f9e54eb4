"""Channels: one small class per provider, all with the same shape (`Sender`), built only when
their credentials are set. Provider errors are turned into three kinds here, at the edge:
RateLimited (wait what the provider said), Transient (retry with backoff), Permanent (do not
retry; `channel_wide` when the channel cannot work at all, e.g. a bad token or a blocked bot).
"""

from __future__ import annotations

from quantcore.config import Settings
from quantcore.logging import get_logger
from svc_broadcaster.channels.base import Permanent, RateLimited, Sender, Transient
from svc_broadcaster.messages import Channel

log = get_logger(component="channels")

__all__ = ["Permanent", "RateLimited", "Sender", "Transient", "build_senders"]


def _missing(settings: Settings, *names: str) -> list[str]:
    return [n.upper() for n in names if getattr(settings, n) in (None, "")]


def build_senders(settings: Settings) -> dict[Channel, Sender]:
    """The channels whose credentials are set; one clear log line for each that is off."""
    out: dict[Channel, Sender] = {}
    needs: dict[Channel, tuple[str, ...]] = {
        "telegram": ("telegram_bot_token", "telegram_main_channel"),
        "x": ("x_api_key", "x_api_secret", "x_access_token", "x_access_secret"),
        "email": ("email_user", "email_pass", "email_smtp_host"),
        "sms": ("twilio_account_sid", "twilio_auth_token", "twilio_phone", "sms_admin_phone"),
    }
    for channel, names in needs.items():
        missing = _missing(settings, *names)
        if missing:
            log.info("channel off: credentials not set", channel=channel, missing=missing)
            continue
        if channel == "telegram":
            from svc_broadcaster.channels.telegram import TelegramSender

            out[channel] = TelegramSender.from_settings(settings)
        elif channel == "x":
            from svc_broadcaster.channels.x import XSender

            out[channel] = XSender.from_settings(settings)
        elif channel == "email":
            from svc_broadcaster.channels.email import EmailSender

            out[channel] = EmailSender.from_settings(settings)
        else:
            from svc_broadcaster.channels.sms import SmsSender

            out[channel] = SmsSender.from_settings(settings)
        log.info("channel on", channel=channel)
    return out
