"""Bybit's words and payloads stop at the Bybit adapter (and the simulator, which speaks Bybit's
wire): no status, side, fill-kind or field word of Bybit's past them, and no `raw` payload on a
trading record."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from quantcore.model import trading

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "libs" / "quantcore" / "src" / "quantcore"
# Polymarket's adapter speaks Polymarket's own wire, which shares a few field names
# (`avgPrice`) with Bybit's; its payloads also stop there.
ALLOWED = (
    SRC / "adapters" / "bybit",
    SRC / "adapters" / "polymarket",
    SRC / "sim",
    ROOT / "services" / "simulator",
)
BYBIT_WORD = re.compile(
    r"""["'](Buy|Sell|New|Created|PartiallyFilled|PartiallyFilledCanceled|Filled|Cancelled|Rejected|"""
    r"""Untriggered|Triggered|Deactivated|Trade|Funding|BustTrade|AdlTrade|StopLoss|TakeProfit|"""
    r"""TrailingStop|Market|Limit|GTC|IOC|FOK|PostOnly)["']"""
    r"""|\b(orderStatus|orderLinkId|execType|stopOrderType|cumExecQty|cumExecFee|avgPrice)\b"""
)


def sources() -> list[Path]:
    files = [*SRC.rglob("*.py"), *(ROOT / "services").rglob("*.py")]
    return [f for f in files if not any(f.is_relative_to(a) for a in ALLOWED)]


def test_no_bybit_word_past_the_adapter() -> None:
    found = [
        f"{f.relative_to(ROOT)}:{n}: {line.strip()}"
        for f in sources()
        for n, line in enumerate(f.read_text().splitlines(), 1)
        if BYBIT_WORD.search(line)
    ]
    assert found == []


def test_the_fence_would_catch_one() -> None:
    assert BYBIT_WORD.search('side = "Buy" if long else "Sell"')
    assert BYBIT_WORD.search("status IN ('New', 'PartiallyFilled')")
    assert not BYBIT_WORD.search('side = Side.BUY  # "buy"')


def test_trading_records_hold_no_payload() -> None:
    for record in (
        trading.Order,
        trading.Position,
        trading.Fill,
        trading.ClosedPnl,
        trading.OrderRequest,
    ):
        names = {f.name for f in dataclasses.fields(record)}
        assert not names & {"raw", "payload", "extra"}, record
