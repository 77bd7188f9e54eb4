"""`quant up`: the whole fleet as local processes, the no-Docker way to run the product.

Each service (× replicas) runs as `quant run <name>` in its own process group, its output
prefixed `name.N |`. A service that exits is restarted with backoff (like compose's
`restart: unless-stopped`). Ctrl-C / SIGTERM stops them all: SIGTERM, a grace period,
then SIGKILL for stragglers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field

from quantcore.logging import get_logger

log = get_logger(component="fleet")
COLORS = [36, 32, 33, 35, 34, 91, 92, 93, 94, 95, 96]


@dataclass
class Member:
    service: str
    replica: int
    color: int
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started: float = 0.0
    pumps: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.service}.{self.replica}"


class Fleet:
    def __init__(
        self,
        services: list[str],
        scale: dict[str, int],
        restart: bool = True,
        grace_s: float = 20.0,
        color: bool | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.members = [
            Member(name, i + 1, COLORS[n % len(COLORS)])
            for n, name in enumerate(services)
            for i in range(max(scale.get(name, 1), 0))
        ]
        self.restart = restart
        self.env = env or {}  # on top of this process's environment (e.g. the app login)
        self.grace_s = grace_s
        self.color = sys.stdout.isatty() if color is None else color
        self.width = max((len(m.label) for m in self.members), default=8)
        self.stop = asyncio.Event()

    def _print(self, member: Member, line: str) -> None:
        label = member.label.ljust(self.width)
        prefix = f"\x1b[{member.color}m{label} |\x1b[0m" if self.color else f"{label} |"
        sys.stdout.write(f"{prefix} {line}\n")
        sys.stdout.flush()

    async def _pump(self, member: Member, stream: asyncio.StreamReader) -> None:
        while True:
            line = await stream.readline()
            if not line:
                return
            self._print(member, line.decode("utf-8", "replace").rstrip("\n"))

    async def _start(self, member: Member) -> None:
        env = dict(os.environ, **self.env)
        env.update(PYTHONUNBUFFERED="1", QUANT_REPLICA=str(member.replica))
        member.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "quantcore.cli",
            "run",
            member.service,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C reaches `quant up` only; we stop children in order
        )
        member.started = time.monotonic()
        assert member.proc.stdout is not None
        member.pumps = [asyncio.create_task(self._pump(member, member.proc.stdout))]
        self._print(member, f"started (pid {member.proc.pid})")

    async def _watch(self, member: Member) -> None:
        backoff = 1.0
        while not self.stop.is_set():
            await self._start(member)
            assert member.proc is not None
            code = await member.proc.wait()
            await asyncio.gather(*member.pumps, return_exceptions=True)
            if self.stop.is_set():
                self._print(member, f"stopped (exit {code})")
                return
            if not self.restart:
                self._print(member, f"exited with {code}; not restarting (--no-restart)")
                return
            if time.monotonic() - member.started > 60:
                backoff = 1.0
            member.restarts += 1
            self._print(member, f"exited with {code}; restarting in {backoff:.0f}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=backoff)
            backoff = min(backoff * 2, 30.0)

    async def _terminate(self) -> None:
        live = [m for m in self.members if m.proc is not None and m.proc.returncode is None]
        for m in live:
            assert m.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(m.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for m in live:
            assert m.proc is not None
            try:
                await asyncio.wait_for(m.proc.wait(), timeout=max(deadline - time.monotonic(), 0.1))
            except TimeoutError:
                self._print(m, "did not stop in time: SIGKILL")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(m.proc.pid, signal.SIGKILL)
                await m.proc.wait()

    async def run(self, duration_s: float | None = None) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        watchers = [asyncio.create_task(self._watch(m)) for m in self.members]
        try:
            if duration_s is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), timeout=duration_s)
            else:
                await self.stop.wait()
        finally:
            self.stop.set()
            sys.stdout.write("stopping the fleet…\n")
            await self._terminate()
            await asyncio.gather(*watchers, return_exceptions=True)
        return 0
