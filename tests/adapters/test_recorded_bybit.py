"""Every recorded Bybit payload (../shared/recorded) that belongs to an endpoint we read parses
into our types or is rejected with its reason; none crashes, none is left out, and README.md in
this folder shows the outcome of each file exactly as the parsers give it today."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from quantcore.adapters.bybit import private as wire
from quantcore.model.trading import ExecKind, OrderStatus, OrderType, Side, Trigger
from tests.adapters.recorded_bybit import ENDPOINTS, RECORDED, recorded_files, table

README = Path(__file__).with_name("README.md")


def rows(name: str, model: type[Any], kind: str) -> list[Any]:
    payload = json.loads((RECORDED / name).read_text())
    return [wire.parse(model, r, kind) for r in wire.rows(wire.result_of(payload, kind), kind)]


def test_every_recorded_bybit_file_is_accounted_for() -> None:
    files = recorded_files()
    assert len(files) > 90, f"recorded payloads missing under {RECORDED}"
    assert sorted(ENDPOINTS) == files  # a new recording must be classified, not skipped


def test_the_readme_table_is_what_the_parsers_do() -> None:
    """Computing the table runs every parser on every file: an exception here is a crash."""
    text = README.read_text()
    found = re.search(r"<!-- recorded:begin -->\n(.*?)<!-- recorded:end -->", text, re.S)
    assert found is not None, "README.md lost its recorded-payload table"
    assert found.group(1) == table(), "regenerate: uv run python -m tests.adapters.recorded_bybit"


def test_recorded_orders_translate_into_our_words() -> None:
    [rejected] = rows(
        "nautilus-bybit/http_get_order_partially_filled_rejected.json", wire.OrderRow, "order"
    )
    order = wire.to_order(rejected)
    assert (order.status, order.filled_qty, order.avg_fill_price, order.fee) == (
        OrderStatus.REJECTED, Decimal("0.005"), Decimal(30000), Decimal("0.0825"),
    )  # fmt: skip
    tp, sl = (
        wire.to_order(r)
        for r in rows("nautilus-bybit/http_get_orders_realtime_tp_sl.json", wire.OrderRow, "order")
    )
    assert (tp.status, tp.order_type, tp.avg_fill_price) == (
        OrderStatus.TRIGGER_PENDING,
        OrderType.MARKET,
        None,
    )
    assert (sl.status, sl.order_type) == (OrderStatus.TRIGGER_PENDING, OrderType.LIMIT)
    assert not {o.status for o in (order, tp, sl)} - set(OrderStatus)


def test_recorded_fills_positions_and_closes_translate_into_our_words() -> None:
    [funding] = rows("ccxt-bybit/executions_linear_funding.json", wire.ExecutionRow, "execution")
    fill = wire.to_fill(funding)
    assert (fill.kind, fill.trigger, fill.side, fill.fee) == (
        ExecKind.FUNDING,
        None,
        Side.BUY,
        Decimal("0.00867"),
    )
    [row] = rows(
        "nautilus-bybit/http_get_positions_with_open_time.json", wire.PositionRow, "position"
    )
    pos = wire.to_position(row)
    assert pos is not None and (pos.side, pos.direction, pos.avg_price) == (
        Side.BUY,
        "long",
        Decimal(70),
    )
    assert pos.opened_at is not None and pos.opened_at.year == 2023  # openTime 1700000000123
    assert (pos.stop_loss, pos.take_profit, pos.liq_price) == (None, None, None)  # "0" / "": none
    [flat] = rows("ccxt-bybit/positions_linear_flat.json", wire.PositionRow, "position")
    assert wire.to_position(flat) is None
    [closed] = rows("ccxt-bybit/closed_pnl_linear.json", wire.ClosedPnlRow, "closed_pnl")
    assert wire.to_closed_pnl(closed).side in (Side.BUY, Side.SELL)


def test_nothing_past_the_adapter_holds_a_venue_word() -> None:
    """Every translated record holds our enums only (a str subclass would pass a == check with
    a Bybit word; `type(...) is` would not)."""
    [row] = rows("nautilus-bybit/http_get_executions.json", wire.ExecutionRow, "execution")[:1]
    fill = wire.to_fill(row)
    assert type(fill.side) is Side and type(fill.kind) is ExecKind
    assert fill.trigger is None or type(fill.trigger) is Trigger
