"""Property-based fuzzing of the Bybit private (execution) parsers: Bybit's documented response
examples with one part broken or deleted, and random JSON, through the same path the venue
takes (envelope → result.list rows → row model → our record). Never a crash, never a NaN or
infinite amount, never a missing field turned into a zero: each payload either becomes valid
records or is rejected as BadPayload with a reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, is_dataclass
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantcore.adapters.bybit import private as wire
from quantcore.errors import BadPayload
from tests.adapters.test_bybit_private_parse import (
    ACK,
    BATCH,
    CLOSED_PNL,
    EXECUTIONS,
    OPEN_ORDERS,
    POSITIONS,
    WALLET,
)
from tests.adapters.test_fuzz_parsers import FUZZ, JSON, NUMERIC_TEXT, mutated


def _finite(record: Any) -> None:
    assert is_dataclass(record)
    for f in fields(record):
        value = getattr(record, f.name)
        if isinstance(value, Decimal):
            assert value.is_finite(), f"{type(record).__name__}.{f.name} = {value}"
        if isinstance(value, float):
            assert value == value and abs(value) != float("inf"), f.name


def _listed(payload: Any, kind: str, model: type[Any], to: Callable[[Any], Any]) -> list[Any]:
    """The venue's path for a list endpoint: one bad row is rejected, the others go through."""
    out: list[Any] = []
    rejected: list[BadPayload] = []
    for item in wire.rows(wire.result_of(payload, kind), kind):
        try:
            record = to(wire.parse(model, item, kind))
        except BadPayload as exc:
            rejected.append(exc)
            continue
        if record is not None:
            out.append(record)
    assert all(exc.reason for exc in rejected)
    return out


PIPELINES: list[tuple[str, Any, Callable[[Any], list[Any]]]] = [
    ("orders", OPEN_ORDERS, lambda p: _listed(p, "order", wire.OrderRow, wire.to_order)),
    ("positions", POSITIONS, lambda p: _listed(p, "position", wire.PositionRow, wire.to_position)),
    ("executions", EXECUTIONS, lambda p: _listed(p, "execution", wire.ExecutionRow, wire.to_fill)),
    ("closed_pnl", CLOSED_PNL,
     lambda p: _listed(p, "closed_pnl", wire.ClosedPnlRow, wire.to_closed_pnl)),
    ("wallet", WALLET,
     lambda p: [wire.to_equity(wire.parse(wire.WalletPage, wire.result_of(p, "wallet"), "wallet"))]),
    ("batch", BATCH, lambda p: [wire.batch_result(p)]),
    ("ack", ACK, lambda p: [wire.result_of(p, "order_ack")]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "example", "pipeline"), PIPELINES, ids=[p[0] for p in PIPELINES])
@FUZZ
@given(data=st.data())
def test_private_parsers_never_crash(
    name: str, example: Any, pipeline: Callable[[Any], list[Any]], data: Any
) -> None:
    payload = data.draw(mutated(example) | JSON | NUMERIC_TEXT)
    try:
        records = pipeline(payload)
    except BadPayload as exc:
        rejected: BadPayload | None = exc
        records = []
    else:
        rejected = None
    assert rejected is None or (rejected.reason and rejected.kind)
    for record in records:
        if is_dataclass(record):
            _finite(record)


@pytest.mark.parametrize(("name", "example", "pipeline"), PIPELINES, ids=[p[0] for p in PIPELINES])
def test_the_unbroken_examples_parse(
    name: str, example: Any, pipeline: Callable[[Any], list[Any]]
) -> None:
    """The fuzz starts from payloads that parse: a mutation is what makes them fail."""
    assert pipeline(example)
