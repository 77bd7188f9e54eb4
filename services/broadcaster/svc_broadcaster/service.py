"""Broadcaster: signals and trades to Telegram, X, email and SMS, never twice, never a flood;
Telegram control for the admin.

Intake (every replica, bus consumer group "broadcaster" on `signals` and `positions`): each
event becomes one outbox row per channel that carries it (`broadcast_dedup`, the claim of its
de-duplication key), in one transaction with the records of what routing skipped, and only
then is the event acked. Sending (every replica, one worker per enabled channel): see
sender.py. Control (one replica, Redis lease): Telegram long polling, see control.py. Daily
digest: at BROADCAST_DAILY_DIGEST_AT in TIMEZONE, once (its key is claimed like any message).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import html
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from quantcore.backoff import Backoff, RepeatLog
from quantcore.bus import Consumer, Delivery
from quantcore.config import Settings
from quantcore.control import ControlSurface
from quantcore.leader import LeaderLease
from quantcore.model.events import (
    STREAM_POLY_POSITIONS,
    STREAM_POLY_SIGNALS,
    STREAM_POSITIONS,
    STREAM_RISK,
    STREAM_SIGNALS,
    KillSwitchEngaged,
)
from quantcore.service import Service, ServiceContext
from quantcore.store import control as control_q
from quantcore.trading import risk
from quantcore.trading.killswitch import KillSwitch
from svc_broadcaster import messages, outbox, routing, templates
from svc_broadcaster.channels import Sender, build_senders
from svc_broadcaster.channels.telegram import TelegramSender, send_html
from svc_broadcaster.control import Control, TelegramControl
from svc_broadcaster.messages import Channel
from svc_broadcaster.outbox import Record
from svc_broadcaster.sender import ChannelWorker

GROUP = "broadcaster"
DAILY_CHECK_S = 30.0


class Broadcaster(Service):
    name: ClassVar[str] = "broadcaster"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = "signals and trades to Telegram, X, email, SMS; Telegram control"

    @classmethod
    def check_settings(cls, settings: Settings) -> None:
        from quantcore.config import ConfigError

        try:
            for ch in messages.CHANNELS:
                routing.parse_kinds(getattr(settings, f"broadcast_{ch}_events"),
                                    f"BROADCAST_{ch.upper()}_EVENTS")  # fmt: skip
            ZoneInfo(settings.timezone)
        except Exception as exc:
            raise ConfigError(str(exc)) from None

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        s = ctx.settings
        self.senders: dict[Channel, Sender] = build_senders(s)
        self.routes = routing.routes(s, list(self.senders))
        self.workers: dict[Channel, ChannelWorker] = {
            ch: ChannelWorker(s, ctx.pool, ctx.redis, sender,
                              templates.load(ch, s.broadcast_templates_dir), ctx.agent, self.alert)
            for ch, sender in self.senders.items()
        }  # fmt: skip
        self.killswitch = KillSwitch(ctx.redis, s.bus_namespace)
        self.control = Control(ControlSurface(s, ctx.pool, ctx.bus, self.killswitch, ctx.journal))
        self.lease = LeaderLease(ctx.redis, s.bus_namespace, "broadcaster-control", ctx.instance,
                                 s.broadcast_control_lease_s)  # fmt: skip
        self.intake_count = 0
        self.repeats = RepeatLog(self.log, interval_s=60.0)
        self.status_info.update(channels=sorted(self.senders), control=False)

    # --- intake ------------------------------------------------------------------------------------

    async def intake(self, deliveries: list[Delivery]) -> None:
        items: list[outbox.NewItem] = []
        for d in deliveries:
            msg = messages.from_event(d.event, d.envelope.id, self.ctx.settings)
            if msg is not None:  # the message keeps the id of the signal/trade it tells of
                msg = dataclasses.replace(msg, correlation_id=d.envelope.correlation_id)
                items += routing.route(msg, self.routes)
        await self.enqueue(items)

    async def enqueue(self, items: list[outbox.NewItem]) -> list[outbox.NewItem]:
        if not items:
            return []
        async with self.ctx.pool.connection() as conn, conn.transaction():
            new = await outbox.insert_items(conn, items)
            await outbox.record(conn, [
                Record(i.message.event_id, i.message.kind, i.channel, "skipped", self.ctx.agent,
                       attempts=0, error=i.error, vertical=i.message.vertical,
                       correlation_id=i.message.correlation_id)
                for i in new if i.state == "skipped"
            ])  # fmt: skip
        self.intake_count += len(new)
        for ch in {i.channel for i in new if i.state == "pending"}:
            self.workers[ch].wake.set()  # type: ignore[index]
        return new

    # --- daily digest ------------------------------------------------------------------------------

    def _daily_due(self, now: datetime) -> tuple[str, datetime, datetime] | None:
        at = self.ctx.settings.broadcast_daily_digest_at
        if at in ("", "off"):
            return None
        local = now.astimezone(ZoneInfo(self.ctx.settings.timezone))
        hour, minute = (int(x) for x in at.split(":"))
        if (local.hour, local.minute) < (hour, minute):
            return None
        start = risk.day_start(now, self.ctx.settings.timezone)
        return (
            local.date().isoformat(),
            start.astimezone(UTC),
            (start + timedelta(days=1)).astimezone(UTC),
        )

    async def daily_digest(self, now: datetime | None = None) -> int:
        """Queue today's digest once it is due (all replicas may try; the key is claimed once)."""
        due = self._daily_due(now or datetime.now(UTC))
        carriers = [r for r in self.routes.values() if "daily" in r.kinds]
        if due is None or not carriers:
            return 0
        day, start, end = due
        async with self.ctx.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT 1 FROM broadcast_dedup WHERE dedup_key = %s LIMIT 1", (f"daily:{day}",)
            )
            if await cur.fetchone() is not None:
                return 0
            p = await control_q.pnl(conn, start, end)
            figures: dict[str, Any] = {
                "signals": await control_q.signal_count(conn, start, end),
                "trades_closed": p.trades, "wins": p.wins, "losses": p.losses,
                "win_rate": messages.fmt_pct(p.win_rate_pct, signed=False),
                "pnl_quote": f"{p.pnl_quote:+,.2f}",
                "pnl_pct_margin": messages.fmt_pct(p.sum_pnl_pct_margin),
                "open_positions": await control_q.open_count(conn),
                "best": f"{p.best_symbol} {messages.fmt_pct(p.best_pct)}" if p.best_symbol else "-",
                "worst": f"{p.worst_symbol} {messages.fmt_pct(p.worst_pct)}" if p.worst_symbol else "-",
            }  # fmt: skip
        msg = messages.daily_message(day, figures, self.ctx.settings)
        new = await self.enqueue(routing.route(msg, self.routes))
        if new:
            self.log.info("daily digest queued", day=day, channels=[i.channel for i in new])
        return len(new)

    async def daily_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.daily_digest()
            except Exception:
                self.log.exception("daily digest failed; trying again later")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=DAILY_CHECK_S)

    # --- alerts and control -----------------------------------------------------------------------

    async def alert(self, channel: str, reason: str) -> None:
        """A channel stopped working (once per rest period, across replicas)."""
        self.log.error("channel down after a permanent error; not retried until it has rested",
                       channel=channel, reason=reason[:300],
                       rest_s=self.ctx.settings.broadcast_channel_down_s)  # fmt: skip
        await self.ctx.journal("broadcast.channel_down", f"{channel} broadcasts stopped: {reason}"[:4000],
                               level="error", channel=channel)  # fmt: skip
        tg = self.senders.get("telegram")
        admin = self.ctx.settings.telegram_admin_id
        if channel != "telegram" and isinstance(tg, TelegramSender) and admin is not None:
            try:
                await send_html(tg.bot, admin, f"⚠️ <b>{channel}</b> broadcasts stopped: "
                                               f"{reason[:500].replace('<', '&lt;')}")  # fmt: skip
            except Exception as exc:
                self.log.warning("could not alert the admin on Telegram", error=str(exc)[:200])

    def _on_control(self, leader: bool) -> None:
        self.status_info["control"] = leader

    async def control_loop(self, stop: asyncio.Event) -> None:
        s = self.ctx.settings
        if s.telegram_bot_token is None or s.telegram_admin_id is None:
            self.log.info("telegram control off: TELEGRAM_BOT_TOKEN and TELEGRAM_ADMIN_ID needed")
            return

        async def lead(lost: asyncio.Event) -> None:
            """Poll while leading; Telegram unreachable or refusing is waited out, never fatal
            (returning would give up leadership for good)."""
            backoff = Backoff(base_s=5.0, max_s=300.0, floor_s=1.0)
            while not lost.is_set():
                try:
                    await TelegramControl(s, self.control).run(lost)
                except Exception as exc:
                    self.repeats.failure("control", "telegram control failed; trying again",
                                         error=f"{type(exc).__name__}: {exc}"[:300])  # fmt: skip
                    await backoff.wait(lost)

        await self.lease.run(stop, lead, on_change=self._on_control)

    # --- run ---------------------------------------------------------------------------------------

    def consumers(self) -> list[Consumer]:
        s = self.ctx.settings
        return [
            self.ctx.bus.consumer(stream, GROUP, self.ctx.instance, handler,
                                  batch_size=s.bus_batch_size, claim_idle_ms=s.bus_claim_idle_ms,
                                  max_deliveries=s.bus_max_deliveries)
            for stream, handler in ((STREAM_SIGNALS, self.intake), (STREAM_POSITIONS, self.intake),
                                    (STREAM_POLY_SIGNALS, self.intake),
                                    (STREAM_POLY_POSITIONS, self.intake), (STREAM_RISK, self.on_risk))
        ]  # fmt: skip

    async def on_risk(self, deliveries: list[Delivery]) -> None:
        """A risk guard engaged the kill switch: tell the admin on Telegram, once per event (a
        Redis mark after the send; a crash between the two can repeat the warning, never lose
        it). Without Telegram or an admin id it is only in the log and the journal."""
        tg = self.senders.get("telegram")
        admin = self.ctx.settings.telegram_admin_id
        for d in deliveries:
            ev = d.event
            if not isinstance(ev, KillSwitchEngaged):
                continue
            if not isinstance(tg, TelegramSender) or admin is None:
                self.log.error("kill switch engaged; no Telegram admin to tell", reason=ev.reason)
                continue
            mark = f"{self.ctx.settings.bus_namespace}:broadcaster:admin_alerted:{d.envelope.id}"
            if await self.ctx.redis.exists(mark):
                continue
            text = (f"🛑 <b>Kill switch engaged</b> by {html.escape(ev.engaged_by)}\n"
                    f"{html.escape(ev.reason)}\n"
                    f"Today: {ev.day_pnl:+,.2f} USDT ({ev.day_pnl_pct:+.2f} %), limit "
                    f"{ev.limit_pct:g} %. No new entries; open positions stay managed. "
                    f"/resume to trade again.")  # fmt: skip
            await send_html(tg.bot, admin, text)  # an error: redelivered by the bus
            await self.ctx.redis.set(mark, "1", ex=7 * 86_400)

    def _stats(self) -> None:
        self.status_info.update(
            intake=self.intake_count,
            **{f"{ch}_{k}": v for ch, w in self.workers.items() for k, v in vars(w.stats).items()},
        )

    async def run(self, stop: asyncio.Event) -> None:
        if not self.senders:
            self.log.warning(
                "no channel has credentials: nothing will be sent (control may still run)"
            )
        tasks = [
            asyncio.create_task(c.run(stop), name=f"intake:{c.stream}") for c in self.consumers()
        ]
        tasks += [
            asyncio.create_task(w.run(stop), name=f"send:{ch}") for ch, w in self.workers.items()
        ]
        tasks.append(asyncio.create_task(self.daily_loop(stop), name="daily"))
        tasks.append(asyncio.create_task(self.control_loop(stop), name="control"))
        try:
            while not stop.is_set():
                self._stats()
                crashed = [t for t in tasks if t.done() and not t.cancelled() and t.exception()]
                if crashed:
                    raise RuntimeError(f"{crashed[0].get_name()} failed") from crashed[
                        0
                    ].exception()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for sender in self.senders.values():
                with contextlib.suppress(Exception):
                    await sender.close()
