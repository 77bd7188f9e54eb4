"""Fake Twilio REST API: POST /2010-04-01/Accounts/{sid}/Messages.json with HTTP Basic auth."""

from __future__ import annotations

import base64
import itertools
from typing import Any

from aiohttp import web

from tests.fakes.http import Call, FakeServer


class FakeTwilio(FakeServer):
    def __init__(self, sid: str, token: str) -> None:
        super().__init__()
        self.sid = sid
        self.token = token
        self._ids = itertools.count(1)
        self.app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self.create)

    async def create(self, request: web.Request) -> web.Response:
        params = await self.params(request)
        self.calls.append(Call("Messages.create", params, dict(request.headers)))
        expected = "Basic " + base64.b64encode(f"{self.sid}:{self.token}".encode()).decode()
        if (
            request.headers.get("Authorization") != expected
            or request.match_info["sid"] != self.sid
        ):
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401,
                                      "more_info": "https://www.twilio.com/docs/errors/20003"},
                                     status=401)  # fmt: skip
        fault = self.fault()
        if fault is not None:
            return fault
        sid = f"SM{next(self._ids):032d}"
        body: dict[str, Any] = {
            "sid": sid, "account_sid": self.sid, "status": "queued", "to": params.get("To"),
            "from": params.get("From"), "body": params.get("Body"), "num_segments": "1",
            "direction": "outbound-api", "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self.sid}/Messages/{sid}.json",
        }  # fmt: skip
        return web.json_response(body, status=201)
