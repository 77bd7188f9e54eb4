"""What the simulator's handlers share: the market, its clock, faults and request counts."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web

from quantcore.sim import Market
from quantcore.sim.exchange import SimExchange
from svc_simulator.clock import SimClock
from svc_simulator.faults import Faults

FaultKind = Literal["none", "http_429", "http_5xx"]
Handler = Callable[[web.Request], Awaitable[web.Response]]
SIM_PREFIX = "/sim/"


@dataclass
class SimState:
    market: Market
    clock: SimClock
    faults: Faults
    seed: int
    fault_rng: random.Random = field(init=False)
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    stats_since: float = field(default_factory=time.time)
    window_start: float = 0.0  # the current 5-s rate-limit window (real time)
    window_count: int = 0
    exchange: SimExchange | None = None  # the private API's accounts (None: public only)
    api_secrets: dict[str, str] = field(default_factory=dict)  # API key → secret

    def __post_init__(self) -> None:
        self.fault_rng = random.Random(self.seed * 7919 + 17)

    # --- time ------------------------------------------------------------------------------------
    def now_ms(self) -> int:
        """Simulated time of the served data (ms), never ahead of the market."""
        now = self.market.now
        return int((now + min(max(self.clock.now_s() - now, 0.0), 0.999)) * 1000)

    # --- request accounting ------------------------------------------------------------------------
    def count(self, request: web.Request) -> None:
        if request.path.startswith(SIM_PREFIX):
            return
        key = request.query.get("symbol", "")
        self.requests[(request.path, key)] += 1
        now = time.time()
        if now - self.window_start >= 5.0:
            self.window_start, self.window_count = now, 0
        self.window_count += 1

    def draw_fault(self) -> FaultKind:
        u = self.fault_rng.random()
        if u < self.faults.http_429:
            self.injected["http_429"] += 1
            return "http_429"
        if u < self.faults.http_429 + self.faults.http_5xx:
            self.injected["http_5xx"] += 1
            return "http_5xx"
        return "none"

    def draw_slow(self) -> bool:
        """Whether this request's answer comes `faults.slow_s` late (drawn apart from 429/5xx)."""
        if self.faults.http_slow <= 0 or self.fault_rng.random() >= self.faults.http_slow:
            return False
        self.injected["http_slow"] += 1
        return True

    def reset_stats(self) -> None:
        self.requests.clear()
        self.injected.clear()
        self.stats_since = time.time()

    def stats(self) -> dict[str, Any]:
        by_path: dict[str, dict[str, int]] = {}
        for (path, symbol), n in sorted(self.requests.items()):
            by_path.setdefault(path, {})[symbol] = n
        return {
            "since": datetime.fromtimestamp(self.stats_since, UTC).isoformat(),
            "total": sum(self.requests.values()),
            "requests": [
                {"path": p, "symbol": s, "count": n} for (p, s), n in sorted(self.requests.items())
            ],
            "by_path": by_path,
            "faults_injected": dict(self.injected),
        }


STATE: web.AppKey[SimState] = web.AppKey("sim_state", SimState)
