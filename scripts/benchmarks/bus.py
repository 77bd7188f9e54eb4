"""bus.roundtrip_p50_us / bus.roundtrip_p99_us: publish → handler, through a consumer group.

Arrangement (the same for quantcore and for the raw redis-py baseline):
- each consumer runs in its OWN process (multiprocessing, spawn) with its own Redis
  connection, like a real service; the publisher runs in this process. Both sides stamp
  time.perf_counter_ns() (CLOCK_MONOTONIC, system-wide, so comparable across processes);
- latency = (consumer: time the handler is entered) − (publisher: time just before publish,
  i.e. before building the event), the send time travelling in the message;
- quantcore: Bus.publish(AgentLogRecorded(detail={"t": ...})) → Consumer.run (XREADGROUP,
  envelope + event validation, correlation binding, handler, XACK), default batch/block;
- raw: redis.asyncio XADD of one bytes field padded to the size of a quantcore envelope (same
  MAXLEN ~) → XREADGROUP (same COUNT/BLOCK) → XACK;
- 20,000 messages each, paced at 2,000 msg/s on an absolute schedule (message j is due at
  t0 + j/rate; a late send never shifts the ones after it; asyncio timers have ~1 ms
  granularity, so messages leave in pairs every millisecond). The two are INTERLEAVED in
  blocks of 1,000 messages (0.5 s): raw, quantcore, raw, ... for 20 s. Both consumers run the
  whole time (the idle one blocks in XREADGROUP). On a shared 2-core machine, other load
  comes in bursts of seconds; back-to-back 10 s runs put a burst on one side only (seen: p99
  ratios from 1.1 to 6 between runs), interleaving spreads it over both;
- the first 500 messages of each side are warm-up and discarded.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import time
import uuid
from array import array
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Literal, cast

from redis.asyncio import Redis

from quantcore.bus import Bus, Consumer, Delivery, stream_key
from quantcore.model.events import AgentLogRecorded
from quantcore.testing import Sandbox
from scripts.benchmarks.report import Group, Metric, load_note

Kind = Literal["raw", "quantcore"]

RATE = 2_000  # messages per second
COUNT = 20_000  # messages per side (10 s of sending each)
BLOCK = 1_000  # consecutive messages to one side before switching (0.5 s)
WARMUP = 500  # first messages of each side discarded
KINDS: tuple[Kind, Kind] = ("raw", "quantcore")
GROUP_NAME = "bench"
BATCH = 256  # XREADGROUP COUNT (quantcore's Consumer default)
BLOCK_MS = 500  # XREADGROUP BLOCK (quantcore's Consumer default)
READY_TIMEOUT_S = 30.0
DONE_TIMEOUT_S = 30.0  # after the last send


def _event(t: int) -> AgentLogRecorded:
    return AgentLogRecorded(
        agent="bench",
        event_type="bench.roundtrip",
        message="bus round-trip probe",
        detail={"t": t},
    )


# --- consumer side (child process) ----------------------------------------------------------------


def _consumer_main(
    kind: Kind, redis_url: str, namespace: str, stream: str, n: int, conn: Connection
) -> None:
    """Child process entry: consume n messages; send back the latencies (ns) as int64 bytes,
    then the CPU time (ns) this process spent from "ready" to the last message."""
    lat, ready_cpu_ns = asyncio.run(_consume(kind, redis_url, namespace, stream, n, conn))
    cpu_ns = time.process_time_ns() - ready_cpu_ns
    conn.send_bytes(lat.tobytes())
    conn.send(cpu_ns)
    conn.close()


def _signal_ready(conn: Connection) -> int:
    """Tell the publisher the group exists; returns the process CPU time at that moment."""
    conn.send("ready")
    return time.process_time_ns()


async def _consume(
    kind: Kind, redis_url: str, namespace: str, stream: str, n: int, conn: Connection
) -> tuple[array[int], int]:
    redis = Redis.from_url(redis_url)
    try:
        if kind == "quantcore":
            return await _consume_quantcore(redis, namespace, stream, n, conn)
        return await _consume_raw(redis, stream_key(namespace, stream), n, conn)
    finally:
        await redis.aclose()


async def _consume_quantcore(
    redis: Redis, namespace: str, stream: str, n: int, conn: Connection
) -> tuple[array[int], int]:
    lat: array[int] = array("q")
    stop = asyncio.Event()

    async def handler(deliveries: list[Delivery]) -> None:
        now = time.perf_counter_ns()
        for d in deliveries:
            event = d.event
            assert isinstance(event, AgentLogRecorded)
            lat.append(now - int(event.detail["t"]))
        if len(lat) >= n:
            stop.set()

    bus = Bus(redis, namespace, source="bench@consumer")
    consumer: Consumer = bus.consumer(
        stream, GROUP_NAME, "c1", handler, batch_size=BATCH, block_ms=BLOCK_MS
    )
    await consumer.ensure_group()
    ready_cpu_ns = _signal_ready(conn)
    # interleaved with the other side: receiving n messages takes 2n / RATE
    await asyncio.wait_for(consumer.run(stop), timeout=2 * n / RATE + DONE_TIMEOUT_S)
    return lat, ready_cpu_ns


async def _consume_raw(redis: Redis, key: str, n: int, conn: Connection) -> tuple[array[int], int]:
    lat: array[int] = array("q")
    await redis.xgroup_create(key, GROUP_NAME, id="0", mkstream=True)
    ready_cpu_ns = _signal_ready(conn)
    deadline = time.monotonic() + 2 * n / RATE + DONE_TIMEOUT_S  # interleaved: twice as long
    while len(lat) < n and time.monotonic() < deadline:
        reply = await redis.xreadgroup(GROUP_NAME, "c1", {key: ">"}, count=BATCH, block=BLOCK_MS)
        now = time.perf_counter_ns()
        for _stream, entries in cast(
            list[tuple[Any, list[tuple[Any, dict[bytes, bytes]]]]], reply or []
        ):
            ids = []
            for message_id, fields in entries:
                lat.append(now - int(fields[b"t"].split(b" ", 1)[0]))
                ids.append(message_id)
            await redis.xack(key, GROUP_NAME, *ids)
    return lat, ready_cpu_ns


# --- publisher side (this process) -----------------------------------------------------------------


async def _wait_for_message(conn: Connection, within_s: float) -> None:
    if not await asyncio.to_thread(conn.poll, within_s):
        raise TimeoutError("benchmark consumer process did not answer in time")


@dataclass
class Side:
    latencies_ns: array[int]  # one per message, in publish order
    consumer_cpu_ns: int  # consumer process CPU from "ready" to its last message


async def measure(box: Sandbox) -> tuple[dict[Kind, Side], float]:
    """The interleaved run; returns each side's measurements and the achieved send rate."""
    settings = box.settings
    redis_url = settings.redis_url()
    maxlen = settings.bus_stream_maxlen
    streams = {k: f"bench-{k}-{uuid.uuid4().hex[:8]}" for k in KINDS}
    keys = {k: stream_key(box.namespace, s) for k, s in streams.items()}

    ctx = multiprocessing.get_context("spawn")
    pipes: dict[Kind, Connection] = {}
    procs: dict[Kind, Any] = {}
    for kind in KINDS:
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=_consumer_main,
            args=(kind, redis_url, box.namespace, streams[kind], COUNT, child),
            name=f"bench-consumer-{kind}",
        )
        proc.start()
        child.close()
        pipes[kind], procs[kind] = parent, proc
    redis = Redis.from_url(redis_url)
    bus = Bus(redis, box.namespace, source="bench@publisher", maxlen=maxlen)
    # Raw payload: the same size as a quantcore envelope, so only the library's work differs.
    size = len(bus.envelope(_event(time.perf_counter_ns())).model_dump_json())
    padding = b" " + b"x" * max(size - len(b"%d" % time.perf_counter_ns()) - 1, 0)
    raw_key, qc_stream = keys["raw"], streams["quantcore"]
    try:
        for pipe in pipes.values():
            await _wait_for_message(pipe, READY_TIMEOUT_S)
            pipe.recv()  # "ready": the group exists
        await redis.ping()  # connection established before the clock starts

        interval = 1_000_000_000 // RATE
        t0 = time.perf_counter_ns() + 50_000_000
        for j in range(2 * COUNT):
            delay = t0 + j * interval - time.perf_counter_ns()
            if delay > 0:
                await asyncio.sleep(delay / 1e9)
            t = time.perf_counter_ns()
            if (j // BLOCK) % 2:
                await bus.publish(qc_stream, _event(t))
            else:
                await redis.xadd(
                    raw_key, {b"t": b"%d" % t + padding}, maxlen=maxlen, approximate=True
                )
        rate = (2 * COUNT - 1) / ((time.perf_counter_ns() - t0) / 1e9)

        sides: dict[Kind, Side] = {}
        for kind, pipe in pipes.items():
            await _wait_for_message(pipe, DONE_TIMEOUT_S)
            lat: array[int] = array("q")
            lat.frombytes(pipe.recv_bytes())
            if len(lat) < COUNT:
                raise RuntimeError(f"{kind}: consumer saw {len(lat)} of {COUNT} messages")
            sides[kind] = Side(lat, int(pipe.recv()))
        for proc in procs.values():
            await asyncio.to_thread(proc.join, 10)
        return sides, rate
    finally:
        for proc in procs.values():
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        for pipe in pipes.values():
            pipe.close()
        await redis.delete(*keys.values())
        await redis.aclose()


def _pct(sorted_ns: list[int], p: float) -> float:
    """Nearest-rank percentile, in microseconds."""
    k = min(len(sorted_ns) - 1, max(0, math.ceil(p / 100 * len(sorted_ns)) - 1))
    return sorted_ns[k] / 1000


async def run(box: Sandbox) -> dict[str, Metric]:
    sides, rate = await measure(box)
    raw = sorted(sides["raw"].latencies_ns[WARMUP:COUNT])
    qc = sorted(sides["quantcore"].latencies_ns[WARMUP:COUNT])
    cpu_us = {k: s.consumer_cpu_ns / COUNT / 1000 for k, s in sides.items()}
    note = (
        f"consumer group + XACK, {RATE} msg/s paced (achieved {rate:.0f}), {COUNT // 1000}k "
        f"msgs per side, first {WARMUP} discarded; each consumer in its own process and Redis "
        "connection; baseline: redis.asyncio XADD (envelope-sized bytes field) / XREADGROUP + "
        f"XACK, interleaved with quantcore in {BLOCK}-message blocks; consumer CPU/msg "
        f"{cpu_us['quantcore']:.0f} us vs raw {cpu_us['raw']:.0f} us; {load_note()}"
    )
    return {
        f"bus.roundtrip_p{p}_us": Metric.measured(_pct(qc, p), "us", _pct(raw, p), "lower", note)
        for p in (50, 99)
    }


GROUP = Group("bus", ("bus.roundtrip_p50_us", "bus.roundtrip_p99_us"), run)
