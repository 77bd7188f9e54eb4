"""Run part of the fleet with `quant up` (the no-Docker way) for end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from quantcore.db import conninfo
from quantcore.testing import free_port
from tests.conftest import ROOT, eventually


@dataclass
class RunningFleet:
    proc: subprocess.Popen[bytes]
    log_path: Path
    sim_url: str
    settings: Any

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pids(self, service: str) -> dict[int, int]:
        """replica number → pid of its latest start."""
        found: dict[int, int] = {}
        for m in re.finditer(rf"^{service}\.(\d+)\s*\| started \(pid (\d+)\)", self.log(), re.M):
            found[int(m.group(1))] = int(m.group(2))
        return found

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(conninfo(self.settings)) as conn:
            return conn.execute(query, params).fetchall()

    def scalar(self, query: str, *params: Any) -> Any:
        rows = self.sql(query, *params)
        return rows[0][0] if rows else None

    def sim(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, self.sim_url + path, timeout=10, **kw)


def _wait_serving(fleet: RunningFleet, timeout: float = 240.0) -> None:
    """Until the simulator answers: it beats ("starting") while it builds its market, which
    takes seconds on a busy machine, and a test's first request must not race that."""

    def serving() -> bool:
        assert fleet.proc.poll() is None, f"quant up exited:\n{fleet.log()[-3000:]}"
        try:
            return fleet.sim("GET", "/sim/state").status_code == 200
        except httpx.TransportError:
            return False

    eventually(serving, timeout=timeout, interval=0.25)


@contextmanager
def running_fleet(
    box: Any,
    services: list[str],
    log_path: Path,
    scale: dict[str, int] | None = None,
    env: dict[str, str] | None = None,
    restart: bool = True,
) -> Iterator[RunningFleet]:
    port = free_port()
    full_env = {
        **os.environ, **box.env,
        "SIM_HOST": "127.0.0.1", "SIM_BIND_HOST": "127.0.0.1", "SIM_PORT": str(port),
        "HEARTBEAT_INTERVAL_S": "1", "HEARTBEAT_TTL_S": "4",
        **(env or {}),
    }  # fmt: skip
    args = [sys.executable, "-m", "quantcore.cli", "up", "--only", ",".join(services)]
    for name, n in (scale or {}).items():
        args += ["--scale", f"{name}={n}"]
    if not restart:
        args.append("--no-restart")
    with log_path.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=ROOT)
        fleet = RunningFleet(
            proc, log_path, f"http://127.0.0.1:{full_env['SIM_PORT']}", box.settings
        )
        try:
            if "simulator" in services:
                _wait_serving(fleet)
            yield fleet
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
