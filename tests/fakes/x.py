"""Fake X API v2: POST /2/tweets (JSON body, OAuth 1.0a Authorization header)."""

from __future__ import annotations

import itertools

from aiohttp import web

from tests.fakes.http import Call, FakeServer


class FakeX(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1_800_000_000_000_000_000)
        self.app.router.add_post("/2/tweets", self.create)

    async def create(self, request: web.Request) -> web.Response:
        params = await request.json()
        self.calls.append(Call("tweets.create", params, dict(request.headers)))
        if not request.headers.get("Authorization", "").startswith("OAuth "):
            return web.json_response({"title": "Unauthorized", "status": 401,
                                      "detail": "Unauthorized", "type": "about:blank"},
                                     status=401)  # fmt: skip
        fault = self.fault()
        if fault is not None:
            return fault
        tid = str(next(self._ids))
        return web.json_response(
            {"data": {"id": tid, "text": params["text"], "edit_history_tweet_ids": [tid]}},
            status=201,
        )
