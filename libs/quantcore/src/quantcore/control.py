"""The control surface: one typed query/action layer behind every way the owner steers the
fleet — Telegram commands (broadcaster), the `quant` CLI, and any future HTTP API
(Freqtrade's RPC style). It returns data; each front end only renders it.

Queries: status, top, positions, pnl, scanners. Actions: pause, resume, close — each
journaled the same way (`agent_logs`, through the bus) whoever asked, so `/pause` on
Telegram and `quant pause` leave the same entry and the same kill-switch state.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from psycopg_pool import AsyncConnectionPool

from quantcore.bus import Bus
from quantcore.config import Settings
from quantcore.model.events import STREAM_TRADE_COMMANDS, PositionCloseRequested
from quantcore.service import beat_is_fresh, publish_journal
from quantcore.store import control as q
from quantcore.trading import risk
from quantcore.trading.killswitch import KillSwitch, KillSwitchState

PERIODS = ("today", "7d", "30d", "all")
Period = Literal["today", "7d", "30d", "all"]
SYMBOL = re.compile(r"^[A-Z0-9]{2,30}$")
DEFAULT_PAUSE_REASON = "paused by the owner"

Journal = Callable[..., Awaitable[None]]


class ControlError(ValueError):
    """A request the control surface refuses (bad period, bad symbol): the text says why."""


def bus_journal(bus: Bus, agent: str) -> Journal:
    """A journal writer for callers without a service context (the CLI): the same entry a
    service's `ctx.journal` publishes, under `agent`."""
    return functools.partial(publish_journal, bus, agent)


@dataclass(frozen=True)
class FleetStatus:
    trading_mode: str
    data_source: str
    killswitch: KillSwitchState
    heartbeats: list[q.Heartbeat]
    heartbeat_ttl: timedelta
    now: datetime

    def alive(self, beat: q.Heartbeat) -> bool:
        return beat_is_fresh(beat.status, beat.beat_at, self.now, self.heartbeat_ttl)


@dataclass(frozen=True)
class PnlReport:
    period: Period
    since: datetime | None
    summary: q.PnlSummary
    equity: q.EquityChange | None


@dataclass(frozen=True)
class CloseOutcome:
    symbol: str
    requested: bool  # False: no open position, nothing was sent


def backtest_summary(r: q.ScannerScore) -> str:
    """The leaderboard row's backtest side in words, the same on every front end: its headline
    (out of sample when a walk-forward ran) or that it has none."""
    if not r.backtested:
        return "no backtest"

    def num(v: float | None, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    kind = "out of sample" if r.bt_out_of_sample else "in sample"
    return (
        f"backtest ({kind}, {num(r.bt_days, '.0f')} d) {num(r.bt_pnl_pct, '+.2f')}%, "
        f"win {num(r.bt_win_rate_pct, '.0f')}%, PF {num(r.bt_profit_factor, '.2f')}, "
        f"Sharpe {num(r.bt_sharpe, '.2f')}, {r.bt_trades} trades"
    )


def parse_period(text: str | None) -> Period:
    period = (text or "today").strip().lower()
    if period == "today":
        return "today"
    if period == "7d":
        return "7d"
    if period == "30d":
        return "30d"
    if period == "all":
        return "all"
    raise ControlError(f"unknown period {text!r}: use one of {', '.join(PERIODS)}")


def parse_symbol(text: str | None) -> str:
    symbol = (text or "").strip().upper()
    if not SYMBOL.match(symbol):
        raise ControlError(f"not a symbol: {text!r} (e.g. BTCUSDT)")
    return symbol


class ControlSurface:
    """The owner's queries and actions, independent of how they arrive."""

    def __init__(self, settings: Settings, pool: AsyncConnectionPool, bus: Bus,
                 killswitch: KillSwitch, journal: Journal) -> None:  # fmt: skip
        self.s = settings
        self.pool = pool
        self.bus = bus
        self.killswitch = killswitch
        self.journal = journal

    def day_start(self, now: datetime) -> datetime:
        """The owner's midnight (TIMEZONE), in UTC."""
        return risk.day_start(now, self.s.timezone).astimezone(UTC)

    # --- queries -------------------------------------------------------------------------

    async def status(self) -> FleetStatus:
        ks = await self.killswitch.state()
        async with self.pool.connection() as conn:
            beats = await q.heartbeats(conn)
        return FleetStatus(
            trading_mode=self.s.trading_mode,
            data_source=self.s.data_source,
            killswitch=ks,
            heartbeats=beats,
            heartbeat_ttl=timedelta(seconds=self.s.heartbeat_ttl_s),
            now=datetime.now(UTC),
        )

    async def top(self, n: int = 10) -> list[q.Ranked]:
        async with self.pool.connection() as conn:
            return await q.top(conn, n)

    async def positions(self) -> list[q.OpenPosition]:
        async with self.pool.connection() as conn:
            return await q.open_positions(conn)

    async def pnl(self, period: Period, now: datetime | None = None) -> PnlReport:
        now = now or datetime.now(UTC)
        since = q.period_start(period, now, self.day_start(now))
        async with self.pool.connection() as conn:
            summary = await q.pnl(conn, since)
            equity = await q.equity_change(conn, self.s.trading_mode, since)
        return PnlReport(period, since, summary, equity)

    async def scanners(self) -> list[q.ScannerScore]:
        async with self.pool.connection() as conn:
            return await q.scanner_leaderboard(conn)

    # --- actions -------------------------------------------------------------------------

    async def pause(self, reason: str | None, by: str) -> KillSwitchState:
        """Engage the kill switch (idempotent: the first reason is kept) and journal it."""
        await self.killswitch.engage((reason or "").strip()[:200] or DEFAULT_PAUSE_REASON, by)
        state = await self.killswitch.state()
        await self.journal("killswitch.engaged", f"kill switch engaged by {by}: {state.reason}",
                           level="warning", by=by)  # fmt: skip
        return state

    async def resume(self, by: str) -> bool:
        """Release the kill switch; returns whether it was engaged. Journaled either way."""
        was = await self.killswitch.release()
        await self.journal("killswitch.released", f"kill switch released by {by}", by=by,
                           was_engaged=was)  # fmt: skip
        return was

    async def close(self, symbol: str, by: str) -> CloseOutcome:
        """Ask the position monitor to close `symbol` at market (only if a position is open)."""
        async with self.pool.connection() as conn:
            if not await q.has_open_position(conn, symbol):
                return CloseOutcome(symbol, requested=False)
        await self.bus.publish(STREAM_TRADE_COMMANDS,
                               PositionCloseRequested(symbol=symbol, requested_by=by))  # fmt: skip
        await self.journal("position.close_requested", f"close of {symbol} requested by {by}",
                           symbol=symbol, vertical="perps", by=by)  # fmt: skip
        return CloseOutcome(symbol, requested=True)
