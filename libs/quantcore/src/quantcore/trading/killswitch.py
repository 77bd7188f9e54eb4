"""The kill switch: one Redis key that blocks new entries at once, fleet-wide.

Set by `quant pause`, the Telegram `/pause` command or the daily loss limit (realised +
unrealised PnL today, `quantcore.trading.guard`, checked by the autotrader); cleared by
`quant resume` / `/resume`. It blocks new entries only: open positions stay managed (stops
keep trailing, closes are still recorded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis


def killswitch_key(namespace: str) -> str:
    return f"{namespace}:trading:killswitch"


@dataclass(frozen=True)
class KillSwitchState:
    active: bool
    reason: str | None = None
    by: str | None = None
    since: datetime | None = None


class KillSwitch:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.key = killswitch_key(namespace)

    async def engage(self, reason: str, by: str) -> bool:
        """Block new entries (idempotent: the first reason and time are kept); True when this
        call engaged it, False when it was engaged already."""
        value = json.dumps({"reason": reason, "by": by, "since": datetime.now(UTC).isoformat()})
        return bool(await self.redis.set(self.key, value, nx=True))

    async def release(self) -> bool:
        """Allow new entries again; returns whether it was engaged."""
        return bool(await self.redis.delete(self.key))

    async def state(self) -> KillSwitchState:
        raw = await self.redis.get(self.key)
        if raw is None:
            return KillSwitchState(active=False)
        try:
            data = json.loads(raw)
            since = datetime.fromisoformat(data["since"]) if data.get("since") else None
            return KillSwitchState(True, data.get("reason"), data.get("by"), since)
        except (ValueError, TypeError, KeyError):
            # An unreadable value still blocks: failing open would trade through a pause.
            return KillSwitchState(active=True, reason="unreadable kill-switch value")
