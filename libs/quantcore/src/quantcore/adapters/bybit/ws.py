"""Bybit v5 public WebSocket through pybit: tickers, 1-min klines, all liquidations and the
public trades (as taker volume per minute).

One pybit WebSocket per shard of `symbols_per_connection` coins. pybit calls back on its own
thread; messages are copied there (pybit keeps mutating the ticker dict it hands out) and
parsed on the asyncio loop. pybit reconnects and resubscribes by itself after a dropped socket,
but gives up for good when its few immediate retries fail (a server down for a second is
enough), so a supervisor per shard rebuilds the connection, with backoff, when pybit has not
come back within `reconnect_grace_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pybit.unified_trading as pybit_ut  # type: ignore[import-untyped]

from quantcore.adapters.bybit import parse
from quantcore.errors import OnBad, report_bad
from quantcore.logging import get_logger
from quantcore.model.market import Candle, LiquidationEvent, TakerFlow, Ticker

log = get_logger(component="bybit.ws")
T = TypeVar("T")
KLINE_INTERVAL = 1
PYBIT_RETRIES = 5  # pybit's own immediate reconnect attempts (it does not wait between them)
QUEUE_MAX = 200_000
RACE_WAIT_S = 1.0  # how long pybit's reader waits for pybit's own subscribe bookkeeping
_URL_LOCK = threading.Lock()  # pybit reads its URL from a module global when constructing

OnTicker = Callable[[Ticker], Awaitable[None]]
OnCandle = Callable[[Candle], Awaitable[None]]
OnLiquidation = Callable[[LiquidationEvent], Awaitable[None]]
OnTrades = Callable[[TakerFlow], Awaitable[None]]


def chunks(symbols: Sequence[str], size: int) -> list[list[str]]:
    unique = list(dict.fromkeys(symbols))
    return [unique[i : i + size] for i in range(0, len(unique), max(1, size))]


async def in_daemon_thread(fn: Callable[[], T]) -> T:
    """Run blocking pybit code on a daemon thread: it can block for a long time (connect,
    subscribe waits for a socket), and a stuck executor thread would hang interpreter exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not future.done():
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def target() -> None:
        try:
            result: Any = fn()
            ok = True
        except BaseException as exc:
            result, ok = exc, False
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(settle, ok, result)

    threading.Thread(target=target, daemon=True, name="bybit-ws-io").start()
    return await future


class _WebSocket(pybit_ut.WebSocket):  # type: ignore[misc]
    """pybit's WebSocket without its subscribe races. pybit sends a subscribe request before it
    records the request id and the topics' callbacks, so a venue that answers fast (a local
    simulator always does) gets its ack or first push to pybit's reader thread first: a
    KeyError there makes pybit close the socket for good. pybit also crashes the same way on a
    refused subscription. Here the reader waits a moment for the bookkeeping instead."""

    def _settled(self, ready: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + RACE_WAIT_S
        while not ready():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        return True

    def _process_subscription_message(self, message: dict[str, Any]) -> None:
        req_id = message.get("req_id")
        if req_id and not self._settled(lambda: req_id in self.subscriptions):
            log.warning("ws ack for an unknown request", req_id=str(req_id)[:60])
            return
        if message.get("success") is False:
            log.warning("ws subscription refused", ret_msg=str(message.get("ret_msg"))[:200])
            return
        super()._process_subscription_message(message)

    def _process_normal_message(self, message: dict[str, Any]) -> None:
        topic = message.get("topic")
        if not isinstance(topic, str) or not self._settled(
            lambda: topic in self.callback_directory
        ):
            log.warning("ws message for no subscribed topic", topic=str(topic)[:80])
            return
        super()._process_normal_message(message)


@dataclass
class _Conn:
    """One pybit WebSocket attempt. `alive` gates its callbacks; `abandoned` tells a slow
    opening thread to close what it opened."""

    ws: Any = None
    alive: bool = True
    abandoned: bool = False


class _Shard:
    def __init__(self, stream: BybitPublicStream, index: int, symbols: list[str]) -> None:
        self.stream = stream
        self.index = index
        self.symbols = symbols
        self.conn: _Conn | None = None
        self.pending: _Conn | None = None
        self.up = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.rebuilds = 0

    @property
    def connected(self) -> bool:
        conn = self.conn
        return conn is not None and conn.ws is not None and bool(conn.ws.is_connected())

    # --- blocking parts (daemon threads) ---------------------------------------------------------

    def _open(self, conn: _Conn) -> None:
        s = self.stream
        with _URL_LOCK:
            default_url = pybit_ut.PUBLIC_WSS
            pybit_ut.PUBLIC_WSS = s.url
            try:
                conn.ws = _WebSocket(
                    testnet=False, channel_type="linear", retries=PYBIT_RETRIES,
                    restart_on_error=True,
                )  # fmt: skip
            finally:
                pybit_ut.PUBLIC_WSS = default_url
        callback = self._callback(conn)
        if s.on_ticker is not None:
            conn.ws.ticker_stream(symbol=self.symbols, callback=callback)
        if s.on_candle is not None:
            conn.ws.kline_stream(interval=KLINE_INTERVAL, symbol=self.symbols, callback=callback)
        if s.on_liquidation is not None:
            conn.ws.all_liquidation_stream(symbol=self.symbols, callback=callback)
        if s.on_trades is not None:
            conn.ws.trade_stream(symbol=self.symbols, callback=callback)
        if conn.abandoned:
            self._close(conn)

    @staticmethod
    def _close(conn: _Conn) -> None:
        conn.alive = False
        ws = conn.ws
        if ws is None:
            return
        ws.handle_error = False  # else pybit reconnects from its error handler
        ws.exit()
        # a reconnect already under way in pybit's thread can still land: close that too
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            if ws.is_connected():
                ws.exit()
            elif not ws.attempting_connection:
                break
            time.sleep(0.02)
        # websocket-client notices a closed socket only at its next select timeout
        thread = getattr(ws, "wst", None)
        if isinstance(thread, threading.Thread) and thread is not threading.current_thread():
            thread.join(timeout=0.2)

    def _callback(self, conn: _Conn) -> Callable[[Any], None]:
        stream = self.stream

        def on_message(message: Any) -> None:  # pybit's thread: must never raise
            if not conn.alive:
                return
            try:
                if isinstance(message, dict):
                    data = message.get("data")
                    message = {**message, "data": dict(data) if isinstance(data, dict) else data}
                stream.hand_over(message)
            except Exception as exc:
                log.warning("ws message hand-over failed", error=str(exc)[:200])

        return on_message

    # --- supervision (asyncio) --------------------------------------------------------------------

    async def run(self) -> None:
        s = self.stream
        failures = 0
        while not s.stopping:
            conn = _Conn()
            self.pending = conn
            try:
                await asyncio.wait_for(
                    in_daemon_thread(functools.partial(self._open, conn)), s.open_timeout_s
                )
            except Exception as exc:
                conn.abandoned = True
                self.pending = None
                if conn.ws is not None:
                    await self._close_async(conn)
                failures += 1
                delay = random.random() * min(
                    s.backoff_max_s, s.backoff_base_s * 2 ** (failures - 1)
                )
                log.warning(
                    "ws connect failed", shard=self.index, attempt=failures,
                    retry_in_s=round(delay, 2), error=f"{type(exc).__name__}: {exc}"[:300],
                )  # fmt: skip
                await s.sleep_or_stop(delay)
                continue
            self.pending = None
            self.conn = conn
            failures = 0
            self.up.set()
            log.info("ws subscribed", shard=self.index, coins=len(self.symbols))
            await self._watch(conn)
            if s.stopping:
                return
            self.rebuilds += 1
            self.conn = None
            await self._close_async(conn)

    async def _watch(self, conn: _Conn) -> None:
        """Return when pybit has been disconnected for longer than the grace period."""
        s = self.stream
        down_since: float | None = None
        while not s.stopping:
            await s.sleep_or_stop(s.check_interval_s)
            if conn.ws.is_connected():
                down_since = None
                continue
            now = time.monotonic()
            down_since = down_since or now
            if now - down_since >= s.reconnect_grace_s:
                log.warning("ws down and pybit did not reconnect; rebuilding", shard=self.index)
                return

    async def _close_async(self, conn: _Conn) -> None:
        try:
            await asyncio.wait_for(in_daemon_thread(functools.partial(self._close, conn)), 3.0)
        except Exception as exc:
            log.warning("ws close did not finish", shard=self.index, error=str(exc)[:200])

    async def stop(self) -> None:
        if self.pending is not None:
            self.pending.abandoned = True
            self.pending.alive = False
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        conn, self.conn = self.conn, None
        if conn is not None:
            await self._close_async(conn)


class BybitPublicStream:
    """Live tickers, 1-min candles and liquidations of `symbols`, as typed models on the loop.

    Only topics with a callback are subscribed (tickers push every 100 ms per coin).
    """

    def __init__(
        self,
        url: str,
        symbols: Sequence[str],
        *,
        on_ticker: OnTicker | None,
        on_candle: OnCandle | None,
        on_liquidation: OnLiquidation | None,
        on_bad: OnBad | None,
        on_trades: OnTrades | None = None,
        symbols_per_connection: int = 100,
        loop: asyncio.AbstractEventLoop | None = None,
        source: parse.StreamSource = "bybit",
        start_timeout_s: float = 10.0,
        open_timeout_s: float = 20.0,
        reconnect_grace_s: float = 5.0,
        check_interval_s: float = 0.25,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        if symbols_per_connection < 1:
            raise ValueError("symbols_per_connection must be >= 1")
        self.url = url
        self.on_ticker = on_ticker
        self.on_candle = on_candle
        self.on_liquidation = on_liquidation
        self.on_trades = on_trades
        self.on_bad = on_bad
        self.source: parse.StreamSource = source
        self.start_timeout_s = start_timeout_s
        self.open_timeout_s = open_timeout_s
        self.reconnect_grace_s = reconnect_grace_s
        self.check_interval_s = check_interval_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.stopping = False
        self.dropped = 0
        self._loop = loop
        self._stop = asyncio.Event()
        self._queue: asyncio.Queue[Any] | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._shards = [
            _Shard(self, i, part) for i, part in enumerate(chunks(symbols, symbols_per_connection))
        ]

    @property
    def connected(self) -> bool:
        return bool(self._shards) and all(s.connected for s in self._shards)

    @property
    def shards(self) -> int:
        return len(self._shards)

    async def start(self) -> None:
        """Connect every shard (waits up to `start_timeout_s`; keeps trying in the background)."""
        if self._consumer is not None:
            return
        self._loop = self._loop or asyncio.get_running_loop()
        self._queue = asyncio.Queue(QUEUE_MAX)
        self._consumer = self._loop.create_task(self._consume())
        for shard in self._shards:
            shard.task = self._loop.create_task(shard.run())
        if not self._shards:
            return
        try:
            await asyncio.wait_for(
                asyncio.gather(*(s.up.wait() for s in self._shards)), self.start_timeout_s
            )
        except TimeoutError:
            log.warning("ws not connected yet; retrying in the background", url=self.url)

    async def stop(self) -> None:
        """Close every socket and return (bounded: a few seconds at worst)."""
        self.stopping = True
        self._stop.set()
        await asyncio.gather(*(s.stop() for s in self._shards), return_exceptions=True)
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
            self._consumer = None

    async def sleep_or_stop(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    # --- pybit thread → loop --------------------------------------------------------------------

    def hand_over(self, message: Any) -> None:
        """Called on pybit's thread with a message already copied."""
        loop = self._loop
        if loop is None or self.stopping:
            return
        loop.call_soon_threadsafe(self._enqueue, message)

    def _enqueue(self, message: Any) -> None:
        if self._queue is None:
            return
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped % 10_000 == 1:
                log.warning("ws consumer behind; messages dropped", dropped=self.dropped)

    async def _consume(self) -> None:
        assert self._queue is not None
        while True:
            message = await self._queue.get()
            parsed = parse.ws_message(message, self.source)
            await report_bad(self.on_bad, parsed.bad, "bybit-ws")
            for item in parsed.items:
                await self._deliver(item)

    async def _deliver(self, item: parse.WsModel) -> None:
        try:
            if isinstance(item, Ticker) and self.on_ticker is not None:
                await self.on_ticker(item)
            elif isinstance(item, Candle) and self.on_candle is not None:
                await self.on_candle(item)
            elif isinstance(item, LiquidationEvent) and self.on_liquidation is not None:
                await self.on_liquidation(item)
            elif isinstance(item, TakerFlow) and self.on_trades is not None:
                await self.on_trades(item)
        except Exception as exc:
            log.warning("ws callback failed", model=type(item).__name__, error=str(exc)[:300])
