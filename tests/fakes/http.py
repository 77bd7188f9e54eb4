"""A small aiohttp server base: free port on 127.0.0.1, a record of every call, and a script
of fault responses served before normal ones."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Call:
    method: str  # the API method / path
    params: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.time)  # wall clock when received
    faulted: bool = False  # answered with a scripted fault instead (nothing delivered)


@dataclass
class Fault:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class FakeServer:
    def __init__(self) -> None:
        self.app = web.Application()
        self.calls: list[Call] = []
        self.faults: deque[Fault] = deque()
        self.runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def reset(self) -> None:
        self.calls.clear()
        self.faults.clear()

    def fault(self) -> web.Response | None:
        if not self.faults:
            return None
        f = self.faults.popleft()
        if self.calls:  # handlers record the call, then ask for a fault with no await between
            self.calls[-1].faulted = True
        return web.json_response(f.body, status=f.status, headers=f.headers)

    @staticmethod
    async def params(request: web.Request) -> dict[str, Any]:
        out: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                out.update(await request.json())
            else:
                out.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        return out

    def named(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def delivered(self, method: str) -> list[Call]:
        """Calls of `method` the server accepted (not answered with a scripted fault)."""
        return [c for c in self.calls if c.method == method and not c.faulted]


async def wait_for(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
