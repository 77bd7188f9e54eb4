"""Bybit v5 public WebSocket (/v5/public/linear): subscribe/unsubscribe with acks, ping/pong,
and the topics tickers.{symbol} (a snapshot, then deltas of the changed fields),
kline.{interval}.{symbol}, allLiquidation.{symbol} (every 500 ms when there are events) and
publicTrade.{symbol} (every 500 ms: the volume traded since, as a taker buy and a taker sell).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import uuid
from typing import Any

import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web

from quantcore.logging import get_logger
from quantcore.sim import CoinSpec
from quantcore.sim.klines import INTERVAL_MINUTES, group_ids, group_start_s
from quantcore.sim.rings import CLOSE, HIGH, LOW, OPEN, TURNOVER, VOLUME
from svc_simulator import formatting as fmt
from svc_simulator.bybit_rest import ticker_fields
from svc_simulator.state import SimState

PUSH_INTERVAL_S = 0.5
# Replies to subscribe/unsubscribe come after a network round trip, as from the exchange.
# Clients rely on it: pybit records a subscription and its callback only after sending it.
ACK_DELAY_S = 0.02
log = get_logger(component="ws")


class Connection:
    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws = ws
        self.request = request
        self.conn_id = uuid.uuid4().hex[:20]
        self.topics: set[str] = set()


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


class Hub:
    """All public connections and what each subscribed to."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.connections: set[Connection] = set()
        self.subscribers: dict[str, set[Connection]] = {}
        self.ticker_state: dict[str, dict[str, str]] = {}  # last published fields per topic
        self.kline_state: dict[str, tuple[int, str]] = {}  # topic -> (candle start, last payload)
        self.liq_seq = state.market.event_seq
        self.trade_state: dict[str, tuple[int, float]] = {}  # topic -> (minute, volume published)
        self.trade_seq = 0
        self.cross_seq = 0
        self.drops = 0

    # --- one connection ----------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        await ws.prepare(request)
        conn = Connection(ws, request)
        self.connections.add(conn)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_text(conn, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._forget(conn)
        return ws

    async def _on_text(self, conn: Connection, text: str) -> None:
        try:
            message = json.loads(text)
            if not isinstance(message, dict):
                raise ValueError("not an object")
        except ValueError:
            await self._send(
                conn,
                {"success": False, "ret_msg": "Invalid request", "conn_id": conn.conn_id, "op": ""},
            )
            return
        op = message.get("op")
        req_id = str(message.get("req_id") or "")
        if op == "ping":
            await self._send(
                conn,
                {
                    "success": True,
                    "ret_msg": "pong",
                    "conn_id": conn.conn_id,
                    "req_id": req_id,
                    "op": "ping",
                },
            )
        elif op in ("subscribe", "unsubscribe"):
            args = message.get("args")
            topics = [a for a in args if isinstance(a, str)] if isinstance(args, list) else []
            if op == "subscribe":
                await self._subscribe(conn, topics, req_id)
            else:
                for topic in topics:
                    self._unsubscribe(conn, topic)
                await self._ack(conn, op, req_id, [])
        else:
            await self._send(
                conn,
                {
                    "success": False,
                    "ret_msg": f"error:unsupported op {op}",
                    "conn_id": conn.conn_id,
                    "req_id": req_id,
                    "op": str(op or ""),
                },
            )

    async def _ack(self, conn: Connection, op: str, req_id: str, bad: list[str]) -> None:
        await asyncio.sleep(ACK_DELAY_S)
        ret_msg = ";".join(f"error:handler not found,topic:{t}" for t in bad)
        await self._send(
            conn,
            {
                "success": not bad,
                "ret_msg": ret_msg,
                "conn_id": conn.conn_id,
                "req_id": req_id,
                "op": op,
            },
        )

    async def _subscribe(self, conn: Connection, topics: list[str], req_id: str) -> None:
        bad = [t for t in topics if self._coin_of(t) is None] or ([] if topics else ["<none>"])
        good = [t for t in topics if t not in bad]
        for topic in good:
            conn.topics.add(topic)
            self.subscribers.setdefault(topic, set()).add(conn)
        await self._ack(conn, "subscribe", req_id, bad)
        for topic in good:
            if topic.startswith("tickers."):
                await self._send(conn, self._ticker_snapshot(topic))
            elif topic.startswith("kline."):
                message = self._kline_message(topic, force=True)
                if message is not None:
                    await self._send(conn, message)

    def _unsubscribe(self, conn: Connection, topic: str) -> None:
        conn.topics.discard(topic)
        subs = self.subscribers.get(topic)
        if subs is not None:
            subs.discard(conn)
            if not subs:
                del self.subscribers[topic]
                self.ticker_state.pop(topic, None)
                self.kline_state.pop(topic, None)
                self.trade_state.pop(topic, None)

    def _forget(self, conn: Connection) -> None:
        for topic in list(conn.topics):
            self._unsubscribe(conn, topic)
        self.connections.discard(conn)

    async def _send(self, conn: Connection, message: dict[str, Any]) -> None:
        if conn.ws.closed:
            return
        try:
            await conn.ws.send_str(_dumps(message))
        except (ConnectionError, RuntimeError):
            self._abort(conn)

    # --- topics ---------------------------------------------------------------------------------
    def _coin_of(self, topic: str) -> CoinSpec | None:
        parts = topic.split(".")
        market = self.state.market
        if len(parts) == 2 and parts[0] in ("tickers", "allLiquidation", "publicTrade"):
            index = market.symbol_index(parts[1])
        elif len(parts) == 3 and parts[0] == "kline" and parts[1] in INTERVAL_MINUTES:
            index = market.symbol_index(parts[2])
        else:
            return None
        return None if index is None else market.coins[index]

    def _ticker_snapshot(self, topic: str) -> dict[str, Any]:
        coin = self._coin_of(topic)
        assert coin is not None
        fields = self.ticker_state.get(topic)
        if fields is None:
            fields = ticker_fields(coin, self.state.market.tickers(), ws=True)
            self.ticker_state[topic] = fields
        self.cross_seq += 1
        return {
            "topic": topic,
            "type": "snapshot",
            "data": dict(fields),
            "cs": self.cross_seq,
            "ts": self.state.now_ms(),
        }

    def _ticker_delta(self, topic: str) -> dict[str, Any] | None:
        coin = self._coin_of(topic)
        last = self.ticker_state.get(topic)
        if coin is None or last is None:
            return None
        fields = ticker_fields(coin, self.state.market.tickers(), ws=True)
        changed = {k: v for k, v in fields.items() if last.get(k) != v}
        if not changed:
            return None
        last.update(changed)
        changed["symbol"] = coin.symbol
        self.cross_seq += 1
        return {
            "topic": topic,
            "type": "delta",
            "data": changed,
            "cs": self.cross_seq,
            "ts": self.state.now_ms(),
        }

    def _kline_message(self, topic: str, force: bool = False) -> dict[str, Any] | None:
        """The candle(s) to push: a just-closed one (confirm true) first, then the open one."""
        _, interval, _ = topic.split(".")
        coin = self._coin_of(topic)
        assert coin is not None
        market = self.state.market
        starts, values = market.klines(coin.index, interval, None, None, 2)
        if starts.size == 0:
            return None
        now_ms = self.state.now_ms()
        rows = [
            self._kline_row(coin, interval, int(starts[k]), values[:, k], now_ms)
            for k in range(starts.size)
        ]
        open_row = rows[-1]
        open_row["confirm"] = False
        previous = self.kline_state.get(topic)
        payload = _dumps(open_row | {"timestamp": 0})
        data = [open_row]
        if previous is not None and previous[0] < open_row["start"] and len(rows) == 2:
            closed = rows[0]
            closed["confirm"] = True
            data = [closed, open_row]
        elif previous is not None and previous[1] == payload and not force:
            return None
        self.kline_state[topic] = (int(open_row["start"]), payload)
        return {"topic": topic, "data": data, "ts": now_ms, "type": "snapshot"}

    @staticmethod
    def _kline_row(
        coin: CoinSpec, interval: str, start_s: int, v: np.ndarray, now_ms: int
    ) -> dict[str, Any]:
        gid = group_ids(interval, np.array([start_s], np.int64))
        end_s = int(group_start_s(interval, gid + 1)[0])
        return {
            "start": start_s * 1000,
            "end": end_s * 1000 - 1,
            "interval": interval,
            "open": fmt.price(coin, float(v[OPEN])),
            "close": fmt.price(coin, float(v[CLOSE])),
            "high": fmt.price(coin, float(v[HIGH])),
            "low": fmt.price(coin, float(v[LOW])),
            "volume": fmt.qty(coin, float(v[VOLUME])),
            "turnover": fmt.money(float(v[TURNOVER])),
            "confirm": True,
            "timestamp": min(now_ms, end_s * 1000 - 1),
        }

    def _trade_message(self, topic: str) -> dict[str, Any] | None:
        """The volume of the current minute not published yet, as two trades (a taker buy and
        a taker sell, split by the market's taker-buy share) at the last price."""
        coin = self._coin_of(topic)
        assert coin is not None
        market = self.state.market
        starts, values = market.klines(coin.index, "1", None, None, 1)
        if starts.size == 0:
            return None
        minute, volume = int(starts[-1]), float(values[VOLUME, -1])
        seen_minute, seen = self.trade_state.get(topic, (minute, volume))  # from now on only
        fresh = volume - (seen if seen_minute == minute else 0.0)
        self.trade_state[topic] = (minute, volume)
        if fresh <= 0:
            return None
        share = market.taker_buy_share(coin.index)
        now_ms = self.state.now_ms()
        price = fmt.price(coin, float(market.last_price[coin.index]))
        data = []
        for side, qty in (("Buy", fresh * share), ("Sell", fresh * (1.0 - share))):
            v = fmt.qty(coin, qty)
            if float(v) <= 0:
                continue  # below one lot: no trade
            self.trade_seq += 1
            data.append({
                "T": now_ms, "s": coin.symbol, "S": side, "v": v, "p": price,
                "L": "ZeroPlusTick", "i": uuid.uuid4().hex, "BT": False, "RPI": False,
                "seq": self.trade_seq,
            })  # fmt: skip
        if not data:
            return None
        return {"topic": topic, "type": "snapshot", "ts": now_ms, "data": data}

    # --- the publishing loop ------------------------------------------------------------------------
    async def publish_once(self) -> None:
        state = self.state
        events, self.liq_seq = state.market.liquidations_since(self.liq_seq)
        by_symbol: dict[str, list[dict[str, str | int]]] = {}
        market = state.market
        for e in events:
            topic = f"allLiquidation.{e.symbol}"
            if topic in self.subscribers:
                coin = market.coins[e.coin]
                by_symbol.setdefault(topic, []).append(
                    {
                        "T": e.time_ms,
                        "s": e.symbol,
                        "S": "Buy" if e.side == "long" else "Sell",
                        "v": fmt.qty(coin, e.qty),
                        "p": fmt.price(coin, e.price),
                    }
                )
        now_ms = state.now_ms()
        for topic, subs in list(self.subscribers.items()):
            message: dict[str, Any] | None
            if topic.startswith("tickers."):
                message = self._ticker_delta(topic)
            elif topic.startswith("kline."):
                message = self._kline_message(topic)
            elif topic.startswith("publicTrade."):
                message = self._trade_message(topic)
            elif topic in by_symbol:
                message = {
                    "topic": topic,
                    "type": "snapshot",
                    "ts": now_ms,
                    "data": by_symbol[topic],
                }
            else:
                message = None
            if message is not None:
                for conn in list(subs):
                    await self._send(conn, message)
        self._inject_drops()

    def _inject_drops(self) -> None:
        rate = self.state.faults.ws_drop_per_min
        if rate <= 0:
            return
        p = -math.expm1(-rate * PUSH_INTERVAL_S / 60.0)
        for conn in list(self.connections):
            if self.state.fault_rng.random() < p:
                self.state.injected["ws_drop"] += 1
                self._abort(conn)

    def _abort(self, conn: Connection) -> None:
        """Cut the TCP connection without a close frame, as a network failure would."""
        transport = conn.request.transport
        if transport is not None:
            transport.abort()
        self.drops += 1
        self._forget(conn)

    def drop_all(self) -> int:
        conns = list(self.connections)
        for conn in conns:
            self._abort(conn)
        return len(conns)

    async def close_all(self) -> None:
        for conn in list(self.connections):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
            self._forget(conn)

    def stats(self) -> dict[str, int]:
        return {
            "connections": len(self.connections),
            "subscriptions": sum(len(c.topics) for c in self.connections),
            "drops": self.drops,
        }
