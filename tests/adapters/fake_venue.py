"""A tiny fake Bybit v5 / CoinGlass v4 host (aiohttp) that real pybit and httpx talk to.

REST: each path answers from a registered route (a function of the query) unless a scripted
reply is queued for it (errors, rate limits). WebSocket: `/v5/public/linear` acknowledges
subscribe and ping like Bybit, records topics per socket, and lets a test push messages to
subscribers or drop every socket.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

SAMPLES = Path(__file__).parent / "samples"
WS_PATH = "/v5/public/linear"


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict → JSON; str → raw text
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


Route = Callable[[dict[str, str]], Reply]


def ok(result: Any, time_ms: int = 1_700_000_000_000) -> Reply:
    return Reply(
        body={"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": time_ms}
    )


def bybit_error(code: int, msg: str, headers: dict[str, str] | None = None) -> Reply:
    body = {
        "retCode": code,
        "retMsg": msg,
        "result": {},
        "retExtInfo": {},
        "time": 1_700_000_000_000,
    }
    return Reply(body=body, headers=headers or {})


def cursor_pages(pages: Sequence[dict[str, Any]]) -> Route:
    """Serve `result` pages in order: page i's cursor is "c<i>", the last page's is ""."""

    def route(query: dict[str, str]) -> Reply:
        cursor = query.get("cursor", "")
        index = int(cursor[1:]) if cursor else 0
        page = dict(pages[index])
        page["nextPageCursor"] = f"c{index + 1}" if index + 1 < len(pages) else ""
        return ok(page)

    return route


def kline_route(symbol: str, rows: Sequence[list[str]], now_ms: int) -> Route:
    """Bybit kline semantics: rows within [start, end], newest first, at most `limit`."""

    def route(query: dict[str, str]) -> Reply:
        start, end = int(query.get("start", 0)), int(query.get("end", now_ms))
        limit = int(query.get("limit", 200))
        picked = sorted((r for r in rows if start <= int(r[0]) <= end), key=lambda r: -int(r[0]))[
            :limit
        ]
        return ok({"symbol": symbol, "category": "linear", "list": picked}, time_ms=now_ms)

    return route


class FakeVenue:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.scripted: dict[str, deque[Reply]] = defaultdict(deque)
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self.sockets: dict[web.WebSocketResponse, set[str]] = {}
        self.subscribe_count = 0
        self.ws_connects = 0
        self.refuse_ws = False
        self.refuse_topics: set[str] = set()
        self.push_on_subscribe: dict[str, dict[str, Any]] = {}  # sent before the ack
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- control --------------------------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application()
        app.router.add_get(WS_PATH, self._ws)
        app.router.add_route("GET", "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self.url

    async def stop(self) -> None:
        await self.drop_sockets()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{WS_PATH}"

    def script(self, path: str, *replies: Reply) -> None:
        self.scripted[path].extend(replies)

    def calls(self, path: str) -> list[dict[str, str]]:
        return [q for p, q, _ in self.requests if p == path]

    def topics(self) -> set[str]:
        return {t for topics in self.sockets.values() for t in topics}

    async def push(self, topic: str, message: dict[str, Any]) -> int:
        sent = 0
        for ws, topics in list(self.sockets.items()):
            if topic in topics and not ws.closed:
                await ws.send_str(json.dumps(message))
                sent += 1
        return sent

    async def drop_sockets(self, abort: bool = False) -> None:
        for ws in list(self.sockets):
            if abort:
                transport = ws._req.transport if ws._req is not None else None
                if transport is not None:
                    transport.abort()
            else:
                await ws.close(code=1001, message=b"going away")
        self.sockets.clear()

    # --- handlers -------------------------------------------------------------------------------
    async def _rest(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        self.requests.append((request.path, query, dict(request.headers)))
        queue = self.scripted.get(request.path)
        if queue:
            reply = queue.popleft()
        elif request.path in self.routes:
            reply = self.routes[request.path](query)
        else:
            reply = Reply(404, "not found")
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if isinstance(reply.body, str):
            return web.Response(status=reply.status, text=reply.body, headers=reply.headers)
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if self.refuse_ws:
            return web.Response(status=503, text="unavailable")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.ws_connects += 1
        self.sockets[ws] = set()
        conn_id = uuid.uuid4().hex
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                op = data.get("op")
                if op == "subscribe":
                    self.subscribe_count += 1
                    args = [a for a in data.get("args", []) if a not in self.refuse_topics]
                    self.sockets.setdefault(ws, set()).update(args)
                    for topic in args:
                        if topic in self.push_on_subscribe:
                            await ws.send_json(self.push_on_subscribe[topic])
                    refused = len(args) < len(data.get("args", []))
                    await ws.send_json({"success": not refused, "conn_id": conn_id,
                                        "ret_msg": "error:handler not found" if refused else "",
                                        "req_id": data.get("req_id", ""), "op": "subscribe"})  # fmt: skip
                elif op == "ping":
                    await ws.send_json({"success": True, "ret_msg": "pong", "conn_id": conn_id,
                                        "req_id": data.get("req_id", ""), "op": "ping"})  # fmt: skip
        finally:
            self.sockets.pop(ws, None)
        return ws
