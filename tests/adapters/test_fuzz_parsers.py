"""Property-based fuzzing of every adapter parser (Bybit REST and WebSocket, CoinGlass
heatmaps): thousands of malformed payloads — random JSON and recorded samples with one part
broken — never crash a parser. Each either parses into valid models with finite numbers, or is
rejected as BadPayload with a reason (which the collectors dead-letter)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from quantcore.adapters.bybit import parse as bybit
from quantcore.adapters.coinglass import parse as coinglass
from quantcore.errors import BadPayload
from tests.adapters.fake_venue import sample

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# numbers as venues send them (strings), and the ways they go wrong
NUMERIC_TEXT = st.sampled_from(
    ["0", "-0", "1", "-1", "1.5", "1e999", "-1e999", "NaN", "nan", "inf", "-Infinity", "",
     " ", "0x10", "1,5", "1.2.3", "99999999999999999999999", "1e-400", "null", "true"]
)  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | NUMERIC_TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30,
)  # fmt: skip


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:4]):
            out += _paths(v, (*prefix, i))
    return out


def broken(name: str) -> st.SearchStrategy[Any]:
    """A recorded sample with one part replaced by random JSON, or deleted."""
    return mutated(sample(name))


@st.composite
def mutated(draw: st.DrawFn, original: Any) -> Any:
    """`original` (a payload) with one part replaced by random JSON, or deleted."""
    doc = copy.deepcopy(original)
    path = draw(st.sampled_from(_paths(doc)))
    if not path:
        return draw(JSON)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(JSON | NUMERIC_TEXT)
    return doc


def _finite(model: Any) -> None:
    """Every number of a parsed model is finite (NaN never reaches the database)."""
    values = model.model_dump() if isinstance(model, BaseModel) else vars(model)
    for key, value in values.items():
        if isinstance(value, float):
            assert math.isfinite(value), f"{type(model).__name__}.{key} = {value}"
        if isinstance(value, list | tuple):
            for v in value:
                if isinstance(v, BaseModel) or hasattr(v, "__dict__"):
                    _finite(v)


def _check(call: Callable[[], Any]) -> None:
    """The parser's contract: a result whose items are valid and finite and whose rejects name a
    reason, or BadPayload with a reason. Any other exception is a crash (the test fails)."""
    try:
        out = call()
    except BadPayload as exc:
        rejected: BadPayload | None = exc
    else:
        rejected = None
    if rejected is not None:
        assert rejected.reason and rejected.kind
        return
    items = getattr(out, "items", None)
    if items is None and hasattr(out, "heatmap"):
        items = [out.heatmap]
    for item in items or []:
        _finite(item)
    for bad in getattr(out, "bad", []):
        assert isinstance(bad, BadPayload) and bad.reason


BYBIT_REST: list[tuple[str, Callable[[Any], Any]]] = [
    ("bybit_instruments_mixed.json", bybit.instruments_page),
    ("bybit_instruments_docs.json", bybit.instruments_page),
    ("bybit_tickers_linear.json", lambda p: bybit.tickers(p, now=NOW)),
    ("bybit_kline_docs.json", lambda p: bybit.kline_page(p, "BTCUSD", "60", now=NOW)),
    ("bybit_open_interest_docs.json", lambda p: bybit.open_interest_page(p, "BTCUSDT")),
    ("bybit_funding_history_docs.json", lambda p: bybit.funding_page(p, "ETHPERP")),
    ("bybit_server_time_docs.json", bybit.server_time),
    ("bybit_account_ratio_docs.json", lambda p: bybit.account_ratio_page(p, "BTCUSDT", "5min")),
    ("bybit_risk_limit_linear.json", lambda p: bybit.risk_limit_page(p, "BTCUSDT")),
]
WS = [
    "bybit_ws_ticker_docs.json",
    "bybit_ws_kline_docs.json",
    "bybit_ws_all_liquidation_docs.json",
    "bybit_ws_all_liquidation_mixed.json",
    "bybit_ws_public_trade_two.json",
]
HEATMAPS = ["coinglass_heatmap_docs.json", "coinglass_heatmap_grid.json"]


@pytest.mark.parametrize(("name", "parser"), BYBIT_REST, ids=[n for n, _ in BYBIT_REST])
@FUZZ
@given(data=st.data())
def test_bybit_rest_parsers_never_crash(name: str, parser: Callable[[Any], Any], data: Any) -> None:
    payload = data.draw(broken(name) | JSON)
    _check(lambda: parser(payload))


@pytest.mark.parametrize("name", WS)
@FUZZ
@given(data=st.data())
def test_bybit_ws_messages_never_crash(name: str, data: Any) -> None:
    msg = data.draw(broken(name) | JSON)
    out = bybit.ws_message(msg)  # never raises: a bad message is a BadPayload in .bad
    for item in out.items:
        _finite(item)
    assert all(b.reason for b in out.bad)


@pytest.mark.parametrize("name", HEATMAPS)
@FUZZ
@given(data=st.data())
def test_coinglass_heatmaps_never_crash(name: str, data: Any) -> None:
    payload = data.draw(broken(name) | JSON)
    _check(lambda: coinglass.heatmap(payload, symbol="BTCUSDT", timeframe="24h",
                                     source="coinglass", now=NOW))  # fmt: skip
