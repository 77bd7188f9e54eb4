"""Fake Telegram Bot API (HTTP): /bot<token>/<method>, as python-telegram-bot calls it.

Answers getMe, sendMessage, getUpdates (long polling on a queue the test fills with
`push_message`), deleteWebhook, setMyCommands; unknown tokens get 401 like Telegram."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from typing import Any

from aiohttp import web

from tests.fakes.http import Call, FakeServer

CHANNEL_CHAT_ID = -1001234567890


class FakeTelegram(FakeServer):
    def __init__(self, tokens: set[str]) -> None:
        super().__init__()
        self.tokens = tokens
        self.updates: list[dict[str, Any]] = []
        # when set, getUpdates answers {"ok": true, "result": <this>} (malformed-answer tests)
        self.updates_answer: Any = None
        self.new_update = asyncio.Event()
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self.app.router.add_route("*", "/bot{token}/{method}", self.handle)

    # --- what the test does ------------------------------------------------------------------------

    def push_message(self, user_id: int, text: str, username: str = "someone") -> int:
        """A private message from `user_id` to the bot, as getUpdates will return it."""
        entities = []
        if text.startswith("/"):
            entities.append({"type": "bot_command", "offset": 0, "length": len(text.split()[0])})
        update_id = next(self._update_ids)
        self.updates.append({
            "update_id": update_id,
            "message": {
                "message_id": next(self._message_ids), "date": int(time.time()),
                "chat": {"id": user_id, "type": "private", "first_name": username},
                "from": {"id": user_id, "is_bot": False, "first_name": username, "username": username},
                "text": text, "entities": entities,
            },
        })  # fmt: skip
        self.new_update.set()
        return update_id

    def sent(self, chat_id: str | int | None = None) -> list[Call]:
        calls = self.named("sendMessage")
        if chat_id is None:
            return calls
        return [c for c in calls if str(c.params.get("chat_id")) == str(chat_id)]

    # --- the API ------------------------------------------------------------------------------------

    @staticmethod
    def ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    async def handle(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        params = await self.params(request)
        self.calls.append(Call(method, params, dict(request.headers)))
        if token not in self.tokens:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        if method == "sendMessage":
            fault = self.fault()
            if fault is not None:
                return fault
            return self.ok(self.message(params))
        if method == "getMe":
            return self.ok({"id": 4242, "is_bot": True, "first_name": "Whale",
                            "username": "whale_bot"})  # fmt: skip
        if method in ("deleteWebhook", "setMyCommands"):
            if (
                method == "deleteWebhook"
                and str(params.get("drop_pending_updates")).lower() == "true"
            ):
                self.updates.clear()
            return self.ok(True)
        if method == "getUpdates":
            if self.updates_answer is not None:
                return self.ok(self.updates_answer)
            return self.ok(await self.get_updates(params))
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"},
                                 status=404)  # fmt: skip

    def message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        if isinstance(chat_id, str) and chat_id.startswith("@"):
            chat = {"id": CHANNEL_CHAT_ID, "type": "channel", "username": chat_id[1:],
                    "title": chat_id[1:]}  # fmt: skip
        else:
            cid = int(str(chat_id))
            chat = {"id": cid, "type": "private" if cid > 0 else "supergroup", "first_name": "x"}
        return {"message_id": next(self._message_ids), "date": int(time.time()), "chat": chat,
                "text": params.get("text", "")}  # fmt: skip

    async def get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        if offset:  # confirmed, and anything without a numeric update_id (fuzz tests)
            self.updates = [u for u in self.updates if isinstance(u, dict)
                            and isinstance(u.get("update_id"), int) and u["update_id"] >= offset]  # fmt: skip
        timeout = min(float(params.get("timeout") or 0), 0.5)  # short, so stops are quick
        if not self.updates and timeout > 0:
            self.new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.new_update.wait(), timeout)
        return list(self.updates)


def retry_after(seconds: int) -> dict[str, Any]:
    return {"ok": False, "error_code": 429,
            "description": f"Too Many Requests: retry after {seconds}",
            "parameters": {"retry_after": seconds}}  # fmt: skip


def sent_texts(fake: FakeTelegram) -> list[str]:
    return [str(c.params.get("text", "")) for c in fake.sent()]


__all__ = ["FakeTelegram", "json", "retry_after", "sent_texts"]
