"""Fake SMTP server (aiosmtpd) that insists on STARTTLS and AUTH, with a trustme certificate."""

from __future__ import annotations

import email
import email.policy
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from quantcore.testing import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    login: str | None


class _Handler:
    def __init__(self, owner: FakeSmtp) -> None:
        self.owner = owner

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        data = session.auth_data
        login = data.decode() if isinstance(data, bytes) else None
        self.owner.received.append(
            Received(
                envelope.mail_from, list(envelope.rcpt_tos), msg, session.ssl is not None, login
            )
        )
        return "250 OK"


class FakeSmtp:
    def __init__(self, user: str, password: str, tmp: Path) -> None:
        self.user = user
        self.password = password
        self.received: list[Received] = []
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = tmp / "smtp-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self.controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=free_port(), tls_context=context,
            require_starttls=True, auth_require_tls=True, authenticator=self._auth,
            auth_required=True,
        )  # fmt: skip

    def _auth(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.user
            and data.password.decode() == self.password
        ):
            return AuthResult(success=True, auth_data=data.login)
        return AuthResult(success=False, handled=False)

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
