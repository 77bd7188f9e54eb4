"""Telegram control for the admin: long polling (getUpdates) by the one replica holding the
control lease. Anyone but TELEGRAM_ADMIN_ID gets no answer; the attempt is logged.

/status /top /positions /pnl [today|7d|30d|all] /scanners /pause [reason] /resume /close SYMBOL
"""

from __future__ import annotations

import asyncio
import html
from datetime import datetime
from typing import Any

from telegram import BotCommand, Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CommandHandler,
    ContextTypes,
    TypeHandler,
)
from telegram.request import HTTPXRequest

from quantcore.config import Settings
from quantcore.control import ControlError, ControlSurface, parse_period, parse_symbol
from quantcore.logging import get_logger
from svc_broadcaster.channels.telegram import bot_urls
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
            return "No scanner has signals or trades yet."
        lines = ["<b>Scanners</b> (by realised PnL)"]
        for i, r in enumerate(rows, start=1):
            rate = f"{r.win_rate_pct:.0f}%" if r.win_rate_pct is not None else "-"
            lines.append(f"{i}. <b>{esc(r.scanner)}</b> {esc(r.scanner_version or '')} · "
                         f"{r.signals} signals · {r.trades} trades · win {rate} · "
                         f"avg {fmt_pct(r.avg_pnl_pct)} · {r.pnl_quote:+,.2f} USDT")  # fmt: skip
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

    def __init__(self, settings: Settings, control: Control) -> None:
        assert settings.telegram_bot_token is not None and settings.telegram_admin_id is not None
        self.s = settings
        self.control = control
        self.admin_id = settings.telegram_admin_id
        self.refused = 0
        self.answered = 0
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
            assert app.updater is not None
            await app.updater.start_polling(poll_interval=0.0, timeout=10,
                                            drop_pending_updates=True,
                                            allowed_updates=["message"])  # fmt: skip
            await app.start()
            log.info("telegram control polling", admin_id=self.admin_id)
            await lost.wait()
        finally:
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
            await app.shutdown()
            log.info("telegram control stopped")
