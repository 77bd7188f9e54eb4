"""Position monitor: the venue is the truth; our trades follow it.

One leader (Redis lease, hot standbys) makes a pass every POSITION_MONITOR_INTERVAL_S:
- paper venue: match resting orders, SL/TP, liquidations and funding against current prices;
- order states of pending/open trades from the venue → `orders` + `order_events`;
- pending trade whose entry filled → open (`position.opened`); unfilled entries past
  ENTRY_TIMEOUT_S are cancelled and the trade with them;
- open trades: excursions, the trailing ladder (TRAILING_LADDER on TRAILING_BASIS; the stop is
  moved at the venue first, then recorded, and only ever tightens → `position.stop_moved`);
- a position gone from the venue → closed with the venue's closed PnL, the reason from its
  executions (tp / sl / trailing_sl / liquidation / signal / manual), PnL % on price and on margin;
  then outcome learning (coin × timeframe success, scanner track record) → `position.closed`;
- positions nobody opened here (the owner's manual trades) are imported as agent 'manual';
- every EQUITY_SNAPSHOT_INTERVAL_S: `equity_snapshots` for the account and each agent.
Close requests (`trade.commands`, Telegram /close) are answered by any replica with a
reduce-only market order whose order_link_id comes from the request (never sent twice).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from quantcore.adapters.bybit.execution import make_bybit_client
from quantcore.adapters.bybit.rest import BybitMarketData
from quantcore.bus import Delivery
from quantcore.errors import ExternalError
from quantcore.leader import LeaderLease
from quantcore.logging import correlation
from quantcore.model.events import (
    STREAM_POSITIONS,
    STREAM_TRADE_COMMANDS,
    PositionClosed,
    PositionCloseRequested,
    PositionOpened,
    PositionStopMoved,
)
from quantcore.model.trading import (
    OPEN_STATUSES,
    EntryOrder,
    OrderRequest,
    OrderType,
    Position,
)
from quantcore.scan.loop import every
from quantcore.service import Service, ServiceContext
from quantcore.store import positions as pstore
from quantcore.store import trades as tstore
from quantcore.store.paper_venue import PaperBooks
from quantcore.trading import monitor, plugin
from quantcore.trading.monitor import PendingVerdict
from quantcore.venues.factory import make_venue
from quantcore.venues.instruments import InstrumentGrid
from quantcore.venues.paper import PaperVenue

CLOSE_NAMESPACE = uuid.UUID("0b6f8d2e-3c1a-4f5e-9a7b-6c2d1e0f4a38")
MANUAL_AGENT = "manual"


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


class PositionMonitor(Service):
    name: ClassVar[str] = "position_monitor"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = "fills, trailing stops, closes, outcome learning, equity"

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        s = ctx.settings
        # one Bybit client for the process: market data and the venue share its bucket
        self.market = BybitMarketData(
            s.bybit_rest_url, s.bybit_rate_per_s, http=make_bybit_client(s)
        )
        self.venue = make_venue(s, PaperBooks(ctx.pool, s.paper_start_equity), self.market)
        self.lease = LeaderLease(
            ctx.redis, s.bus_namespace, self.name, ctx.instance, s.position_monitor_lease_s
        )
        self.last_equity_at = 0.0
        self.grid = InstrumentGrid(self.market)  # the venue's price grid (trailed stops)
        self.status_info.update(venue=self.venue.name, leader=False, passes=0)

    # --- one pass -------------------------------------------------------------------------------------

    async def pass_once(self) -> None:
        if isinstance(self.venue, PaperVenue):
            await self.venue.match()
        # The order matters: our order rows first, then the venue's positions, then our trades.
        # A trade row is committed before its order reaches the venue, so every position in the
        # snapshot has its trade in the list (never mistaken for a manual one), and an order
        # seen filled has its position in the snapshot (or already closed: see on_pending).
        await self.sync_orders()
        positions = {p.symbol: p for p in await self.venue.positions()}
        async with self.ctx.pool.connection() as conn:
            trades = await tstore.open_trades(conn, self.venue.name)
        tracked: set[str] = set()
        for t in trades:
            tracked.add(t["symbol"])
            pos = positions.get(t["symbol"])
            if pos is not None and pos.direction != t["direction"]:
                pos = None  # the opposite side is not this trade's position
            try:
                # the trade's own correlation id (from the signal): its fills, stop moves, close
                # and the messages about them carry it, so one id follows it end to end
                with correlation(t.get("correlation_id")):
                    if t["status"] == "pending":
                        await self.on_pending(t, pos)
                    elif pos is None:
                        await self.on_gone(t)
                    else:
                        await self.on_open(t, pos)
            except ExternalError as exc:
                self.log.warning("venue refused a monitor action; next pass retries",
                                 trade_id=str(t["trade_id"]), symbol=t["symbol"], error=str(exc)[:300])  # fmt: skip
        for symbol, pos in positions.items():
            if symbol not in tracked:
                await self.import_manual(pos)
        if time.monotonic() - self.last_equity_at >= self.ctx.settings.equity_snapshot_interval_s:
            try:
                await self.snapshot_equity(len(positions))
                self.last_equity_at = time.monotonic()
            except ExternalError as exc:
                self.log.warning("equity snapshot skipped; next pass retries", error=str(exc)[:300])
        self.status_info["passes"] = int(self.status_info.get("passes", 0)) + 1
        self.status_info["open_positions"] = len(positions)

    async def sync_orders(self) -> None:
        """Bring every non-final order of ours to the venue's state."""
        async with self.ctx.pool.connection() as conn:
            rows = await tstore.orders_in(conn, self.venue.name, sorted(OPEN_STATUSES))
        for r in rows:
            o = await self.venue.get_order(r["symbol"], r["order_link_id"])
            if o is None:
                continue
            async with self.ctx.pool.connection() as conn, conn.transaction():
                await tstore.apply_venue_order(conn, o, self.name)

    async def on_pending(self, t: dict[str, Any], pos: Position | None) -> None:
        now = datetime.now(UTC)
        if pos is not None:
            async with self.ctx.pool.connection() as conn, conn.transaction():
                opened = await pstore.mark_open(conn, t["trade_id"], pos.avg_price, pos.size, now)
                if opened:
                    await pstore.log_action(conn, at=now, trade=t, action="opened", agent=self.name,
                                            price=float(pos.avg_price), detail={"qty": str(pos.size)})  # fmt: skip
            if pos.stop_loss is None and t["stop_loss"] is not None:
                await self.venue.set_trading_stop(
                    t["symbol"], stop_loss=t["stop_loss"], take_profit=t["take_profit"]
                )
            if opened:
                await self.publish_opened(t, pos)
            return
        entries = await self.entry_orders(t)
        age_s = (now - t["created_at"]).total_seconds()
        verdict = monitor.pending_verdict(entries, age_s, self.ctx.settings.entry_timeout_s)
        if verdict is PendingVerdict.FILLED_AND_CLOSED:
            await self.opened_and_closed(t, entries)  # filled, but no position: closed already
            return
        if verdict is PendingVerdict.WAIT:
            return
        if verdict is PendingVerdict.EXPIRED:
            for o in entries:
                if o.status in OPEN_STATUSES:
                    await self.venue.cancel_order(t["symbol"], o.order_link_id)
        note = (
            "entry not filled within ENTRY_TIMEOUT_S"
            if verdict is PendingVerdict.EXPIRED
            else "entry orders ended unfilled"
        )
        async with self.ctx.pool.connection() as conn, conn.transaction():
            await pstore.cancel_pending(conn, t["trade_id"], note)
            await pstore.log_action(conn, at=now, trade=t, action="cancelled", agent=self.name)
        self.log.info("pending trade cancelled", trade_id=str(t["trade_id"]), symbol=t["symbol"])

    async def entry_orders(self, t: dict[str, Any]) -> list[EntryOrder]:
        async with self.ctx.pool.connection() as conn:
            return await pstore.entry_orders(conn, t["trade_id"])

    async def opened_and_closed(self, t: dict[str, Any], entries: list[EntryOrder]) -> None:
        """The entry filled and the position closed between two passes (a fast TP/SL): record
        the open from the fills, then the close from the venue's closed PnL."""
        since = t["created_at"] - timedelta(seconds=5)
        if not [
            c
            for c in await self.venue.closed_pnl(since, t["symbol"])
            if c.updated_at >= t["created_at"]
        ]:
            return  # the position is on its way (the venue lags): next pass
        filled = monitor.average_fill(entries)
        if filled is None:
            return
        qty, entry = filled
        async with self.ctx.pool.connection() as conn, conn.transaction():
            await pstore.mark_open(conn, t["trade_id"], entry, qty, t["created_at"])
        opened = {
            **t,
            "status": "open",
            "entry_price": entry,
            "qty": qty,
            "opened_at": t["created_at"],
        }
        await self.publish_fill(opened, entry, qty)
        await self.on_gone(opened)

    async def on_open(self, t: dict[str, Any], pos: Position) -> None:
        s = self.ctx.settings
        entry = float(pos.avg_price)
        mark = float(pos.mark_price or pos.avg_price)
        lev = float(t["leverage"] or pos.leverage or 1)
        run = monitor.excursion(t["direction"], entry, mark, _opt(t["max_favorable_pct"]),
                                _opt(t["max_adverse_pct"]))  # fmt: skip
        async with self.ctx.pool.connection() as conn:
            await pstore.update_open(
                conn, t["trade_id"], pos.avg_price, pos.size, run.best_pct, run.worst_pct
            )
        if plugin.keeps_its_levels(t.get("metadata")):
            return  # a strategy plug-in's levels stay as its strategy set them (no ladder)
        current = float(pos.stop_loss) if pos.stop_loss is not None else (
            float(t["stop_loss"]) if t["stop_loss"] is not None else None)  # fmt: skip
        update = monitor.trailing_update(
            t["direction"], entry, mark, run.best_pct, current, s.trailing_steps, lev,
            s.trailing_basis, await self.tick_size(t["symbol"]),
        )  # fmt: skip
        if update is None:
            return
        # the venue first: a stop recorded but not set would be a lie
        await self.venue.set_trading_stop(t["symbol"], stop_loss=update.stop)
        now = datetime.now(UTC)
        async with self.ctx.pool.connection() as conn, conn.transaction():
            await pstore.move_stop(conn, t["trade_id"], update.stop)
            await pstore.log_action(
                conn, at=now, trade=t, action="stop_moved", agent=self.name, price=mark,
                old_stop=Decimal(str(current)) if current is not None else None,
                new_stop=update.stop, profit_pct=update.best_on_basis,
                profit_basis=s.trailing_basis, ladder_step=update.step,
                detail={"profit_now_pct": update.profit_now_pct},
            )  # fmt: skip
        self.log.info("stop moved", symbol=t["symbol"], trade_id=str(t["trade_id"]), step=update.step,
                      old_stop=current, new_stop=str(update.stop))  # fmt: skip
        await self.ctx.bus.publish(STREAM_POSITIONS, PositionStopMoved(
            **self._common(t), old_stop=current, new_stop=float(update.stop), price=mark,
            profit_pct=update.best_on_basis, profit_basis=s.trailing_basis, ladder_step=update.step,
        ))  # fmt: skip

    async def tick_size(self, symbol: str) -> float:
        """The coin's tick (0: not listed — the ladder's stop is then left unrounded)."""
        try:
            return (await self.grid.rules(symbol)).tick_size
        except LookupError:
            return 0.0

    async def on_gone(self, t: dict[str, Any]) -> None:
        """The venue has no position any more: find how it closed and record the result."""
        opened = t["opened_at"] or t["created_at"]
        since = opened - timedelta(seconds=5)
        closes = [
            c for c in plugin.own_closes(await self.venue.closed_pnl(since, t["symbol"]),
                                         t["direction"])
            if c.updated_at >= opened
        ]  # fmt: skip
        if not closes:
            self.log.info("position gone but no closed PnL yet; next pass looks again",
                          symbol=t["symbol"], trade_id=str(t["trade_id"]))  # fmt: skip
            return
        fills = plugin.own_fills(
            await self.venue.executions(since, t["symbol"]), t["signal_id"], t["direction"]
        )
        moved = t["initial_stop_loss"] is not None and t["stop_loss"] != t["initial_stop_loss"]
        result = monitor.close_result(
            t["direction"], closes, fills, stop_moved=moved,
            entry=Decimal(t["entry_price"]) if t["entry_price"] is not None else None,
            leverage=Decimal(t["leverage"]) if t["leverage"] else None,
        )  # fmt: skip
        reason, pnl, entry, lev = (
            result.reason,
            result.pnl_quote,
            result.entry_price,
            result.leverage,
        )
        exit_price, qty, fees = result.exit_price, result.qty, result.fees
        pnl_price, pnl_margin = result.pnl_pct_price, result.pnl_pct_margin
        now = datetime.now(UTC)
        async with self.ctx.pool.connection() as conn, conn.transaction():
            done = await pstore.mark_closed(
                conn, t["trade_id"], exit_price=exit_price, reason=reason, pnl_quote=pnl,
                pnl_pct_price=pnl_price, pnl_pct_margin=pnl_margin, fees=fees, at=now, qty=qty,
            )  # fmt: skip
            if not done:
                return
            await pstore.log_action(conn, at=now, trade=t, action="closed", agent=self.name,
                                    price=float(exit_price), profit_pct=pnl_margin, profit_basis="margin",
                                    detail={"reason": reason, "pnl_quote": str(pnl)})  # fmt: skip
            await pstore.learn_outcome(conn, t, pnl > 0, self.name)
            if t["scanner"] is not None:
                await pstore.refresh_scanner_stats(
                    conn, t["scanner"], t["scanner_version"], t["venue"]
                )
        for o in await self.entry_orders(t):  # unfilled ladder rungs die with the position
            if o.status in OPEN_STATUSES:
                await self.venue.cancel_order(t["symbol"], o.order_link_id)
        self.log.info("position closed", symbol=t["symbol"], trade_id=str(t["trade_id"]), reason=reason,
                      pnl_quote=str(pnl), pnl_pct_margin=round(pnl_margin, 3))  # fmt: skip
        await self.ctx.journal("position_closed", f"{t['direction']} {t['symbol']} closed ({reason}): "
                               f"{pnl_margin:+.2f} % on margin", symbol=t["symbol"], vertical="perps",
                               trade_id=str(t["trade_id"]))  # fmt: skip
        await self.ctx.bus.publish(STREAM_POSITIONS, PositionClosed(
            **self._common(t), entry_price=float(entry), exit_price=float(exit_price), qty=float(qty),
            leverage=float(lev), close_reason=reason, pnl_quote=float(pnl), pnl_pct_price=pnl_price,
            pnl_pct_margin=pnl_margin, opened_at=t["opened_at"],
        ))  # fmt: skip

    async def import_manual(self, pos: Position) -> None:
        now = datetime.now(UTC)
        external = f"{pos.symbol}:{(pos.opened_at or now).isoformat()}"
        async with self.ctx.pool.connection() as conn, conn.transaction():
            trade_id = await pstore.import_manual(
                conn, venue=self.venue.name, symbol=pos.symbol, direction=pos.direction,
                entry=pos.avg_price, qty=pos.size, leverage=pos.leverage, stop=pos.stop_loss,
                take_profit=pos.take_profit, external_id=external[:120], at=now,
            )  # fmt: skip
        if trade_id is None:
            return
        self.log.info("manual position imported", symbol=pos.symbol, trade_id=str(trade_id))
        await self.ctx.bus.publish(STREAM_POSITIONS, PositionOpened(
            trade_id=trade_id, time=now, symbol=pos.symbol, direction=pos.direction,
            venue=self.venue.name, agent=MANUAL_AGENT, entry_price=float(pos.avg_price), qty=float(pos.size),
            leverage=float(pos.leverage or 1), stop_loss=float(pos.stop_loss) if pos.stop_loss else None,
            take_profit=float(pos.take_profit) if pos.take_profit else None,
        ))  # fmt: skip

    async def publish_opened(self, t: dict[str, Any], pos: Position) -> None:
        await self.publish_fill(t, pos.avg_price, pos.size, pos.leverage)

    async def publish_fill(
        self, t: dict[str, Any], entry: Decimal, qty: Decimal, lev: Decimal | None = None
    ) -> None:
        self.log.info("position opened", symbol=t["symbol"], trade_id=str(t["trade_id"]),
                      entry=str(entry), qty=str(qty))  # fmt: skip
        await self.ctx.bus.publish(STREAM_POSITIONS, PositionOpened(
            **self._common(t), entry_price=float(entry), qty=float(qty),
            leverage=float(t["leverage"] or lev or 1),
            stop_loss=float(t["stop_loss"]) if t["stop_loss"] is not None else None,
            take_profit=float(t["take_profit"]) if t["take_profit"] is not None else None,
            entry_mode=t["entry_mode"],
        ))  # fmt: skip

    def _common(self, t: dict[str, Any]) -> dict[str, Any]:
        meta = t.get("metadata") or {}
        return {
            "trade_id": t["trade_id"], "time": datetime.now(UTC), "symbol": t["symbol"],
            "direction": t["direction"], "venue": t["venue"], "agent": t["agent"],
            "signal_id": t["signal_id"], "scanner": t["scanner"], "scanner_version": t["scanner_version"],
            "score": meta.get("score"),
        }  # fmt: skip

    async def snapshot_equity(self, open_positions: int) -> None:
        """The account, and each agent: its start share plus its realised and unrealised PnL."""
        eq = await self.venue.equity()
        now = datetime.now(UTC).replace(microsecond=0)
        venue = self.venue.name
        async with self.ctx.pool.connection() as conn, conn.transaction():
            start = await pstore.start_equity(conn, venue, "account") or eq.equity
            await pstore.write_equity(conn, at=now, venue=venue, agent="account", equity=eq.equity,
                                      balance=eq.balance, unrealised=eq.unrealised_pnl, start_equity=start,
                                      open_positions=open_positions)  # fmt: skip
            books = await pstore.agent_books(conn, venue)
        unrealised = {p.symbol: p.unrealised_pnl for p in await self.venue.positions()}
        async with self.ctx.pool.connection() as conn, conn.transaction():
            for book in books:
                figures = [unrealised[sym] for sym in book.open_symbols if sym in unrealised]
                known = [f for f in figures if f is not None]
                if len(known) != len(figures):
                    self.log.warning("agent equity not snapshotted: the venue did not give the "
                                     "unrealised PnL of its positions", agent=book.agent)  # fmt: skip
                    continue
                unreal = sum(known, Decimal(0))
                balance = start + book.realised
                await pstore.write_equity(conn, at=now, venue=venue, agent=book.agent,
                                          equity=balance + unreal, balance=balance, unrealised=unreal,
                                          start_equity=start, open_positions=book.open_trades)  # fmt: skip

    # --- close requests -------------------------------------------------------------------------------

    async def on_commands(self, deliveries: list[Delivery]) -> None:
        for d in deliveries:
            if isinstance(d.event, PositionCloseRequested):
                await self.close_position(d.event, d.envelope.id)

    async def close_position(self, req: PositionCloseRequested, request_id: uuid.UUID) -> None:
        positions = await self.venue.positions(req.symbol)
        async with self.ctx.pool.connection() as conn:
            pending = [t for t in await tstore.open_trades(conn, self.venue.name)
                       if t["symbol"] == req.symbol and t["status"] == "pending"]  # fmt: skip
        for t in pending:
            for o in await self.entry_orders(t):
                if o.status in OPEN_STATUSES:
                    await self.venue.cancel_order(req.symbol, o.order_link_id)
        if not positions:
            self.log.info("close requested but no position", symbol=req.symbol, by=req.requested_by)
            return
        pos = positions[0]
        link = "close-" + uuid.uuid5(CLOSE_NAMESPACE, str(request_id)).hex[:30]
        [order] = await self.venue.place_orders([OrderRequest(
            link, req.symbol, pos.side.opposite, OrderType.MARKET, pos.size, reduce_only=True,
        )])  # fmt: skip
        self.log.info("close order placed", symbol=req.symbol, by=req.requested_by, status=order.status,
                      duplicate=order.duplicate)  # fmt: skip
        await self.ctx.journal("close_requested", f"{req.symbol} closed at market on request of "
                               f"{req.requested_by}: {req.reason}", symbol=req.symbol, vertical="perps")  # fmt: skip

    # --- loop -----------------------------------------------------------------------------------------

    async def lead(self, lost: asyncio.Event) -> None:
        interval = self.ctx.settings.position_monitor_interval_s
        await every(interval, lost, self.monitor_pass, self.log, "monitor pass", delay_s=0)

    async def monitor_pass(self, _cycle: int) -> None:
        try:
            await self.pass_once()
        except Exception:
            self.status = "degraded"
            raise
        self.status = "ok"

    def _on_change(self, leading: bool) -> None:
        self.status_info["leader"] = leading
        if not leading:
            self.status = "ok"

    async def run(self, stop: asyncio.Event) -> None:
        s = self.ctx.settings
        commands = self.ctx.bus.consumer(
            STREAM_TRADE_COMMANDS, group=self.name, name=self.ctx.instance, handler=self.on_commands,
            batch_size=10, claim_idle_ms=s.bus_claim_idle_ms, max_deliveries=s.bus_max_deliveries,
        )  # fmt: skip
        self.status = "ok"
        try:
            await asyncio.gather(
                self.lease.run(stop, self.lead, on_change=self._on_change), commands.run(stop)
            )
        finally:
            if self.lease.held:
                await self.lease.release()
            await self.venue.close()
            await self.market.aclose()
