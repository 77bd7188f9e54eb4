"""The daily loss guard: when today's PnL (realised since midnight + unrealised now, see
`risk.day_loss`) reaches DAILY_LOSS_LIMIT_PCT, the fleet-wide kill switch is engaged, the
decision is journaled (critical) and a `KillSwitchEngaged` event tells the broadcaster to warn
the admin. It stays engaged until the owner resumes (`quant resume`, Telegram `/resume`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from quantcore.bus import Bus
from quantcore.model.events import STREAM_RISK, KillSwitchEngaged
from quantcore.trading.killswitch import KillSwitch
from quantcore.trading.risk import DayLoss

Journal = Callable[..., Awaitable[None]]


async def enforce_daily_loss(
    today: DayLoss, killswitch: KillSwitch, bus: Bus, journal: Journal, by: str
) -> bool:
    """Engage the kill switch when the limit is breached; True when this call engaged it (an
    already engaged switch is left as it is, with its first reason, and not announced again)."""
    if not today.breached:
        return False
    reason = today.reason()
    if not await killswitch.engage(reason, by):
        return False
    await journal(
        "killswitch.engaged", f"kill switch engaged by {by}: {reason}", level="critical", by=by,
        day_pnl=round(today.pnl, 2), day_pnl_pct=round(today.pct, 3), limit_pct=today.limit_pct,
    )  # fmt: skip
    await bus.publish(
        STREAM_RISK,
        KillSwitchEngaged(
            reason=reason, engaged_by=by, day_pnl=today.pnl, day_pnl_pct=today.pct,
            limit_pct=today.limit_pct, start_equity=today.start_equity,
        ),
    )  # fmt: skip
    return True


__all__ = ["enforce_daily_loss"]
