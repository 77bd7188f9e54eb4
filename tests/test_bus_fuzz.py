"""Property-based fuzzing of every bus payload model and of the entry decoder: malformed
entries are rejected with a reason (never a crash, never a NaN let through), and on a real
stream every one of them is dead-lettered while the valid ones around them are handled."""

from __future__ import annotations

import json
import math
import random
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis

from quantcore.bus import DEADLETTER, Bus, Delivery, decode, parse_deadletter
from quantcore.model.events import EVENT_TYPES, AgentLogRecorded, Event
from tests.conftest import aeventually

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REJECTED = (ValidationError, ValueError, KeyError)

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["", "NaN", "1e999", "BTCUSDT", "long", "short", str(uuid.uuid4()),
                       "2026-01-01T00:00:00Z", "not-a-time", "-1", "0"])
)  # fmt: skip
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip
MODELS = sorted(EVENT_TYPES.items())


def _finite(value: Any) -> None:
    if isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, BaseModel):
        for v in value.model_dump().values():
            _finite(v)
    elif isinstance(value, dict):
        for v in value.values():
            _finite(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _finite(v)


def _entry(type_: str, version: int, payload: Any) -> dict[bytes, bytes]:
    env = {"id": str(uuid.uuid4()), "type": type_, "version": version,
           "time": "2026-01-01T00:00:00Z", "source": "fuzz", "correlation_id": "c",
           "payload": payload}  # fmt: skip
    return {b"e": json.dumps(env, allow_nan=True).encode()}


def _decoded_or_rejected(fields: dict[bytes, bytes]) -> Delivery | None:
    try:
        delivery = decode("1-0", fields)
    except REJECTED as exc:
        reason = str(exc)
    else:
        reason = ""
    if reason:  # rejected, with a reason for the dead-letter entry
        return None
    _finite(delivery.event)
    return delivery


@pytest.mark.parametrize(("type_", "model"), MODELS, ids=[t for t, _ in MODELS])
@FUZZ
@given(data=st.data())
def test_every_payload_model_rejects_malformed_payloads_with_a_reason(
    type_: str, model: type[Event], data: Any
) -> None:
    """Payloads with the model's own field names and random values (wrong types, NaN, huge
    numbers, missing and unknown fields): validated into a finite event, or rejected."""
    names = list(model.model_fields)
    payload = data.draw(
        st.fixed_dictionaries({}, optional={n: JSON for n in names})
        | st.dictionaries(st.sampled_from([*names, "unknown"]), JSON, max_size=len(names) + 1)
        | JSON
    )
    _decoded_or_rejected(_entry(type_, model.VERSION, payload))


@FUZZ
@given(
    raw=st.binary(max_size=300) | st.builds(lambda v: json.dumps(v, allow_nan=True).encode(), JSON),
    field=st.sampled_from([b"e", b"x"]),
)
def test_raw_entries_are_decoded_or_rejected(raw: bytes, field: bytes) -> None:
    _decoded_or_rejected({field: raw})


@FUZZ
@given(type_=st.sampled_from([t for t, _ in MODELS] + ["no.such.type"]),
       version=st.integers(min_value=-3, max_value=10**6))  # fmt: skip
def test_unknown_types_and_newer_versions_are_rejected(type_: str, version: int) -> None:
    fields = _entry(type_, version, {})
    model = EVENT_TYPES.get(type_)
    if model is None or version > model.VERSION or version < 1:
        with pytest.raises(REJECTED):
            decode("1-0", fields)


def test_nan_and_infinity_are_refused_by_every_float_field() -> None:
    good = AgentLogRecorded(agent="a", event_type="t", message="m").model_dump(mode="json")
    assert decode("1-0", _entry("agent_log.recorded", 1, good)).event == AgentLogRecorded(**good)
    bad = _entry("signal.trade", 1, {"score": float("nan")})
    with pytest.raises(ValidationError):
        decode("1-0", bad)


def _malformed(rng: random.Random, i: int) -> dict[bytes, bytes]:
    kind = i % 8
    if kind == 0:
        return {b"e": bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))}
    if kind == 1:
        return {b"x": b"no envelope field"}
    if kind == 2:
        return _entry("no.such.type", 1, {})
    if kind == 3:
        return _entry("agent_log.recorded", 99, {"agent": "a", "event_type": "t", "message": "m"})
    if kind == 4:
        return _entry("signal.trade", 1, {"symbol": "BTCUSDT", "score": float("nan")})
    if kind == 5:
        return _entry("position.closed", 1, {"entry_price": -1, "exit_price": "abc"})
    if kind == 6:
        return {b"e": b'{"id": "' + b"x" * 200_000 + b'"}'}  # oversized and broken
    return _entry("agent_log.recorded", 1, {"agent": "", "event_type": "t", "message": "m"})


async def test_a_thousand_malformed_entries_are_all_dead_lettered_and_the_rest_handled(
    bus: Bus, redis: Redis
) -> None:
    stream = f"fuzz-{uuid.uuid4().hex[:8]}"
    key = bus.key(stream)
    handled: list[str] = []

    async def handler(ds: list[Delivery]) -> None:
        handled.extend(str(d.event.detail["n"]) for d in ds)  # type: ignore[union-attr]

    consumer = bus.consumer(stream, "fuzz", "c1", handler, batch_size=100)
    await consumer.ensure_group()
    dl_before = await redis.xlen(bus.key(DEADLETTER))
    rng = random.Random(17)
    good = 0
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(1_000):
            pipe.xadd(key, _malformed(rng, i))  # type: ignore[arg-type]
            if i % 10 == 0:
                pipe.xadd(key, {b"e": bus.envelope(AgentLogRecorded(
                    agent="fuzz", event_type="ok", message="valid", detail={"n": good}),
                ).model_dump_json().encode()})  # fmt: skip
                good += 1
        replies = await pipe.execute()
    good_positions = {i + i // 10 + 1 for i in range(0, 1_000, 10)}
    bad_ids = {r.decode() for n, r in enumerate(replies) if n not in good_positions}
    assert len(bad_ids) == 1_000

    async def drained() -> bool:
        await consumer.poll_once(block_ms=50)
        return consumer.dead_lettered + consumer.handled >= 1_000 + good

    await aeventually(drained, timeout=60)
    assert consumer.dead_lettered == 1_000
    assert sorted(handled, key=int) == [str(n) for n in range(good)]
    assert (await redis.xinfo_groups(key))[0]["pending"] == 0
    dead = await redis.xrange(bus.key(DEADLETTER), count=100_000)
    mine = [parse_deadletter(f) for _, f in dead if parse_deadletter(f)["stream"] == stream]
    assert {d["message_id"] for d in mine} == bad_ids  # every malformed entry, with its reason
    assert all(d["reason"] in ("invalid",) and d["error"] for d in mine)
    assert await redis.xlen(bus.key(DEADLETTER)) >= dl_before + 1_000
