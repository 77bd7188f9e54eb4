"""Email over SMTP with STARTTLS (standard library smtplib, in a worker thread).

The Message-ID is derived from the message's de-duplication key, so a resend after an
interrupted send carries the same id and mail stores keep one copy: email is the channel
whose in-doubt sends are resent."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import uuid
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import ClassVar

from quantcore.config import Settings
from svc_broadcaster.channels.base import Permanent, Transient


def message_id(key: str) -> str:
    return f"<{uuid.uuid5(uuid.NAMESPACE_URL, 'whalestack:' + key)}@whalestack.broadcaster>"


class EmailSender:
    name: ClassVar[str] = "email"
    resend_in_doubt: ClassVar[bool] = True

    def __init__(
        self, host: str, port: int, user: str, password: str, to: list[str],
        ca_file: Path | None, timeout: float,
    ) -> None:  # fmt: skip
        self.host, self.port, self.user, self.password = host, port, user, password
        self.to = to
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

    @classmethod
    def from_settings(cls, settings: Settings) -> EmailSender:
        assert settings.email_user and settings.email_pass and settings.email_smtp_host
        to = [a.strip() for a in (settings.email_to or settings.email_user).split(",") if a.strip()]
        return cls(settings.email_smtp_host, settings.email_smtp_port, settings.email_user,
                   settings.email_pass.get_secret_value(), to, settings.email_smtp_ca_file,
                   settings.broadcast_send_timeout_s)  # fmt: skip

    def build(self, text: str, subject: str | None, key: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.user
        msg["To"] = ", ".join(self.to)
        msg["Subject"] = subject or "Whale Stack"
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = message_id(key)
        msg.set_content(text)
        return msg

    def _send(self, msg: EmailMessage) -> str:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.ehlo()
            smtp.starttls(context=self.context)
            smtp.ehlo()
            smtp.login(self.user, self.password)
            refused = smtp.send_message(msg)
        if refused:
            raise Permanent(f"recipients refused: {sorted(refused)}", channel_wide=False)
        return str(msg["Message-ID"])

    async def send(self, text: str, subject: str | None, key: str) -> str:
        msg = self.build(text, subject, key)
        try:
            return await asyncio.to_thread(self._send, msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise Permanent(f"SMTP login refused: {exc.smtp_code}", channel_wide=True) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise Permanent(
                f"SMTP server lacks STARTTLS or AUTH: {exc}", channel_wide=True
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise Permanent(
                f"recipients refused: {sorted(exc.recipients)}", channel_wide=True
            ) from exc
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                raise Transient(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
            raise Permanent(
                f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", channel_wide=False
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise Permanent(f"SMTP certificate not trusted: {exc}", channel_wide=True) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise Transient(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        return None
