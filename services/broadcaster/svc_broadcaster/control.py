"""Telegram control for the admin: long polling (getUpdates) by the one replica holding the
control lease. Anyone but TELEGRAM_ADMIN_ID gets no answer; the attempt is logged.

The polling loop is ours, not PTB's Updater: PTB retries a malformed getUpdates answer (e.g.
`{"ok": true, "result": true}`) at once and logs a critical line each time — a hot loop. Here
every failed poll backs off with jitter and a repeated failure is logged once per interval.

/status /top /positions /pnl [today|7d|30d|all] /scanners /pause [reason] /resume /close SYMBOL
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import warnings
from collections.abc import Awaitable
from datetime import datetime
from typing import Any

from telegram import BotCommand, Update
from telegram.constants import ParseMode
from telegram.error import RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CommandHandler,
    ContextTypes,
    TypeHandler,
)
from telegram.request import HTTPXRequest

from quantcore.backoff import Backoff, RepeatLog
from quantcore.config import Settings
from quantcore.control import (
    ControlError,
    ControlSurface,
    backtest_summary,
    parse_period,
    parse_symbol,
)
from quantcore.logging import get_logger
from svc_broadcaster.channels.telegram import bot_urls, retry_after_seconds
from svc_broadcaster.messages import fmt_pct, fmt_price, mode_banner

log = get_logger(component="control")

COMMANDS = [
    ("status", "services, heartbeats and mode"),
    ("top", "current top 10 coins"),
    ("positions", "open positions with unrealised PnL %"),
    ("pnl", "PnL: /pnl today | 7d | 30d | all"),
    ("scanners", "leaderboard by scanner"),
    ("pause", "kill switch: no new entries"),
    ("resume", "allow new entries again"),
    ("close", "close a position: /close SYMBOL"),
]


def esc(value: object) -> str:
    return html.escape(str(value), quote=False)


def _ago(then: datetime, now: datetime) -> str:
    s = max(int((now - then).total_seconds()), 0)
    return f"{s} s ago" if s < 120 else f"{s // 60} min ago" if s < 7200 else f"{s // 3600} h ago"


class Control:
    """Telegram's rendering (HTML) of the control surface's answers; no logic of its own, so
    `/pause` here and `quant pause` do the same thing."""

    def __init__(self, surface: ControlSurface) -> None:
        self.surface = surface
        self.s = surface.s

    async def status(self) -> str:
        st = await self.surface.status()
        ks = st.killswitch
        mode = mode_banner(st.trading_mode, st.data_source) or "LIVE"
        lines = [
            f"<b>Whale Stack</b> · {esc(mode)}",
            f"Trading: {esc(st.trading_mode)} · data: {esc(st.data_source)}",
            "Kill switch: "
            + (
                f"<b>ENGAGED</b> ({esc(ks.reason or '-')}, by {esc(ks.by or '-')})"
                if ks.active
                else "off (entries allowed)"
            ),
            "",
            f"<b>Services</b> ({len(st.heartbeats)} instances)",
        ]
        for b in st.heartbeats:
            alive = st.alive(b)
            icon = "✅" if alive and b.status == "ok" else "⚠️" if alive else "❌"
            lines.append(f"{icon} {esc(b.service)} <code>{esc(b.instance)}</code> "
                         f"{esc(b.status)} · {_ago(b.beat_at, st.now)}")  # fmt: skip
        if not st.heartbeats:
            lines.append("no heartbeats recorded")
        return "\n".join(lines)

    async def top(self) -> str:
        rows = await self.surface.top(10)
        if not rows:
            return "No ranking yet."
        lines = [f"<b>Top {len(rows)}</b> · {rows[0].time:%Y-%m-%d %H:%M} UTC"]
        for r in rows:
            arrow = "🟢" if r.direction == "long" else "🔴" if r.direction == "short" else "⚪"
            lines.append(f"{r.rank}. {arrow} <b>{esc(r.symbol)}</b> {esc(r.direction or '-')} · "
                         f"score {r.score:.1f} · price {fmt_price(r.price)} → {fmt_price(r.target_price)}")  # fmt: skip
        return "\n".join(lines)

    async def positions(self) -> str:
        rows = await self.surface.positions()
        if not rows:
            return "No open positions."
        lines = [f"<b>Open positions</b> ({len(rows)})"]
        for p in rows:
            lines.append(
                f"{'🟢' if p.direction == 'long' else '🔴'} <b>{esc(p.symbol)}</b> {esc(p.direction)} "
                f"{(p.leverage or 1):g}x · entry {fmt_price(p.entry_price)} · now {fmt_price(p.price)} · "
                f"<b>{fmt_pct(p.pnl_pct)}</b> ({fmt_pct(p.pnl_pct_margin)} on margin) · "
                f"SL {fmt_price(p.stop_loss)} · TP {fmt_price(p.take_profit)} · {esc(p.venue)}"
            )
        return "\n".join(lines)

    async def pnl(self, period: str) -> str:
        try:
            r = await self.surface.pnl(parse_period(period))
        except ControlError:
            return "Usage: /pnl today | 7d | 30d | all"
        p, eq = r.summary, r.equity
        lines = [f"<b>PnL · {r.period}</b>",
                 f"Closed trades: {p.trades} ({p.wins} won, {p.losses} lost"
                 + (f", {p.win_rate_pct:.0f}% win rate)" if p.win_rate_pct is not None else ")"),
                 f"Realised: <b>{p.pnl_quote:+,.2f} USDT</b> · average {fmt_pct(p.avg_pnl_pct)} per trade "
                 f"· {fmt_pct(p.sum_pnl_pct_margin)} on margin (sum)"]  # fmt: skip
        if p.best_symbol:
            lines.append(f"Best {esc(p.best_symbol)} {fmt_pct(p.best_pct)} · "
                         f"worst {esc(p.worst_symbol)} {fmt_pct(p.worst_pct)}")  # fmt: skip
        if eq is not None:
            lines.append(f"Equity {eq.start:,.2f} → {eq.end:,.2f} USDT ({fmt_pct(eq.pct)})")
        return "\n".join(lines)

    async def scanners(self) -> str:
        rows = await self.surface.scanners()
        if not rows:
            return "No scanner has signals, trades or backtests yet."
        lines = ["<b>Scanners</b> (by PnL %, live / paper; then their headline backtest)"]
        for i, r in enumerate(rows, start=1):
            rate = f"{r.win_rate_pct:.0f}%" if r.win_rate_pct is not None else "-"
            lines.append(f"{i}. <b>{esc(r.scanner)}</b> {esc(r.version)} · "
                         f"{r.signals} signals · {r.trades} trades · win {rate} · "
                         f"avg {fmt_pct(r.avg_pnl_pct)} · {r.pnl_quote:+,.2f} USDT · "
                         f"<i>{esc(backtest_summary(r))}</i>")  # fmt: skip
        return "\n".join(lines)

    async def pause(self, reason: str, by: str) -> str:
        state = await self.surface.pause(reason, by)
        return f"⏸ Paused: no new entries. Reason: {esc(state.reason or '-')}. Open positions stay managed."

    async def resume(self, by: str) -> str:
        was = await self.surface.resume(by)
        return "▶️ Resumed: new entries allowed." if was else "▶️ Was not paused; entries allowed."

    async def close(self, symbol: str, by: str) -> str:
        try:
            sym = parse_symbol(symbol)
        except ControlError:
            return "Usage: /close SYMBOL (e.g. /close BTCUSDT)"
        out = await self.surface.close(sym, by)
        if not out.requested:
            return f"No open position in {esc(sym)}."
        return f"Close of <b>{esc(sym)}</b> requested; you will see the exit when it fills."


class TelegramControl:
    """PTB Application (long polling) wired to Control; started by the lease holder only."""

    def __init__(
        self,
        settings: Settings,
        control: Control,
        *,
        backoff: Backoff | None = None,
        log_interval_s: float = 60.0,
        poll_timeout_s: int = 10,
    ) -> None:
        assert settings.telegram_bot_token is not None and settings.telegram_admin_id is not None
        self.s = settings
        self.control = control
        self.admin_id = settings.telegram_admin_id
        self.refused = 0
        self.answered = 0
        self.polls = 0
        self.rejected = 0
        self.poll_timeout_s = poll_timeout_s
        self.backoff = backoff or Backoff(base_s=1.0, max_s=60.0, floor_s=0.5)
        self.repeats = RepeatLog(log, interval_s=log_interval_s)
        base_url, file_url = bot_urls(settings.telegram_api_base_url)
        timeout = settings.broadcast_send_timeout_s
        self.app = self._build(settings, base_url, file_url, timeout)
        self.app.add_handler(TypeHandler(Update, self._gate), group=-1)
        for name, _ in COMMANDS:
            self.app.add_handler(CommandHandler(name, self._command))

    @staticmethod
    def _build(settings: Settings, base_url: str, file_url: str,
               timeout: float) -> Application[Any, Any, Any, Any, Any, Any]:  # fmt: skip
        assert settings.telegram_bot_token is not None
        return (
            ApplicationBuilder()
            .token(settings.telegram_bot_token.get_secret_value())
            .base_url(base_url)
            .base_file_url(file_url)
            .request(HTTPXRequest(read_timeout=timeout, write_timeout=timeout,
                                  connect_timeout=timeout, pool_timeout=timeout))
            .get_updates_request(HTTPXRequest(read_timeout=timeout + 30, connect_timeout=timeout,
                                              write_timeout=timeout, pool_timeout=timeout))
            .updater(None)  # we poll ourselves, see poll()
            .build()
        )  # fmt: skip

    async def _gate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user = update.effective_user
        if user is not None and user.id == self.admin_id:
            return
        self.refused += 1
        msg = update.effective_message
        log.warning("telegram message from a non-admin ignored",
                    user_id=user.id if user else None,
                    username=user.username if user else None,
                    chat_id=update.effective_chat.id if update.effective_chat else None,
                    text=(msg.text or "")[:100] if msg else None)  # fmt: skip
        try:  # recorded in agent_logs too: who tried to command the fleet
            await self.control.surface.journal(
                "telegram.refused", "telegram message from a non-admin ignored", level="warning",
                user_id=user.id if user else None,
                chat_id=update.effective_chat.id if update.effective_chat else None,
                text=(msg.text or "")[:100] if msg else None,
            )  # fmt: skip
        except Exception as exc:
            log.warning("could not journal a refused telegram message", error=str(exc)[:200])
        raise ApplicationHandlerStop

    async def _command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        msg = update.effective_message
        if msg is None or not msg.text:
            return
        name = msg.text.split()[0].lstrip("/").split("@")[0].lower()
        args = context.args or []
        by = f"telegram:{self.admin_id}"
        c = self.control
        try:
            if name == "status":
                text = await c.status()
            elif name == "top":
                text = await c.top()
            elif name == "positions":
                text = await c.positions()
            elif name == "pnl":
                text = await c.pnl(args[0].lower() if args else "today")
            elif name == "scanners":
                text = await c.scanners()
            elif name == "pause":
                text = await c.pause(" ".join(args)[:200], by)
            elif name == "resume":
                text = await c.resume(by)
            elif name == "close":
                text = await c.close(args[0] if args else "", by)
            else:
                return
        except Exception as exc:
            log.exception("telegram command failed", command=name)
            text = f"⚠️ /{esc(name)} failed: {esc(type(exc).__name__)}"
        log.info("telegram command answered", command=name, args=args[:3])
        self.answered += 1
        await msg.reply_text(text, parse_mode=ParseMode.HTML, do_quote=False)

    async def run(self, lost: asyncio.Event) -> None:
        """Poll until leadership is lost (or the service stops)."""
        app = self.app
        await app.initialize()
        try:
            try:
                await app.bot.set_my_commands([BotCommand(n, d) for n, d in COMMANDS])
            except Exception as exc:  # cosmetic: the menu of commands
                log.warning("could not set the bot's command menu", error=str(exc)[:200])
            # stale commands must not replay after a restart (Freqtrade's drop_pending_updates)
            await app.bot.delete_webhook(drop_pending_updates=True)
            await app.start()
            log.info("telegram control polling", admin_id=self.admin_id)
            await self.poll(lost)
        finally:
            if app.running:
                await app.stop()
            await app.shutdown()
            log.info("telegram control stopped")

    async def fetch(self, offset: int | None) -> Any:
        """The raw `result` of one long poll (PTB's get_updates would parse the whole batch at
        once and log a critical line with the raw data on every malformed answer)."""
        kwargs: dict[str, Any] = {"timeout": self.poll_timeout_s, "allowed_updates": ["message"]}
        if offset is not None:
            kwargs["offset"] = offset
        with warnings.catch_warnings():  # "use Bot.get_updates": deliberately not
            warnings.simplefilter("ignore")
            return await self.app.bot.do_api_request(
                "getUpdates", api_kwargs=kwargs, read_timeout=self.poll_timeout_s + 30
            )

    def parse(self, raw: Any) -> tuple[list[Update], int | None]:
        """Updates of one answer, and the offset past them. A malformed update is rejected with
        a reason (logged once per interval) and skipped; an answer that is not a list, or
        whose items carry no update_id, is an error (the caller backs off)."""
        if not isinstance(raw, list):
            raise ValueError(f"getUpdates result is {type(raw).__name__}, not a list")
        updates: list[Update] = []
        last: int | None = None
        for item in raw:
            uid = item.get("update_id") if isinstance(item, dict) else None
            if not isinstance(uid, int) or isinstance(uid, bool):
                self.rejected += 1
                self.repeats.failure("update", "telegram update without update_id rejected",
                                     raw=str(item)[:200])  # fmt: skip
                continue
            last = uid if last is None else max(last, uid)
            try:
                updates.append(Update.de_json(item, self.app.bot))
            except Exception as exc:
                self.rejected += 1
                self.repeats.failure("update", "malformed telegram update rejected", update_id=uid,
                                     error=f"{type(exc).__name__}: {exc}"[:200])  # fmt: skip
        if raw and last is None:
            raise ValueError(f"getUpdates answered {len(raw)} item(s), none with an update_id")
        return updates, None if last is None else last + 1

    async def poll(self, lost: asyncio.Event) -> None:
        """getUpdates until `lost`; updates go to the application's queue. Any failure, a
        malformed answer included, waits a jittered back-off and is logged once per interval."""
        offset: int | None = None
        while not lost.is_set():
            self.polls += 1
            try:
                raw = await _unless(lost, self.fetch(offset))
                if raw is _LOST:
                    return
                updates, next_offset = self.parse(raw)
            except RetryAfter as exc:
                wait = retry_after_seconds(exc) + self.backoff.delay()
                self.repeats.failure("getUpdates", "telegram getUpdates rate limited; waiting",
                                     retry_in_s=round(wait, 1))  # fmt: skip
                await _sleep_unless(lost, wait)
                continue
            except Exception as exc:  # network, refusals, malformed answers: never a hot loop
                delay = self.backoff.delay()
                self.repeats.failure("getUpdates", "telegram getUpdates failed; backing off",
                                     retry_in_s=round(delay, 2),
                                     error=f"{type(exc).__name__}: {exc}"[:300])  # fmt: skip
                await _sleep_unless(lost, delay)
                continue
            self.backoff.reset()
            self.repeats.recovered("getUpdates", "telegram getUpdates works again")
            if next_offset is not None:
                offset = next_offset
            for update in updates:
                await self.app.update_queue.put(update)


_LOST = object()


async def _unless(lost: asyncio.Event, call: Awaitable[Any]) -> Any:
    """Await `call` unless `lost` is set first (then cancel it and return _LOST)."""
    task = asyncio.ensure_future(call)
    waiter = asyncio.create_task(lost.wait())
    done, _ = await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
    for t in (task, waiter):
        if t not in done:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
    return task.result() if task in done else _LOST


async def _sleep_unless(lost: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(lost.wait(), timeout=seconds)
