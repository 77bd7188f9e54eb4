"""CoinGlass heatmap payloads → Heatmap.

`coinglass_heatmap_docs.json` is the official example (coinglass-api-docs
rest/Futures/Liquidation/liquidation-aggregate-heatmap-model2.md, comments removed); the grid and
error samples are composed in the documented envelope. The error bodies follow what the API is
reported to send ({"code":"401","msg":"Upgrade plan"}, third-party observations).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from quantcore.adapters.coinglass import parse
from quantcore.adapters.errors import BadPayload
from tests.adapters.fake_venue import sample

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_docs_sample() -> None:
    out = parse.heatmap(
        sample("coinglass_heatmap_docs.json"),
        symbol="BTCUSDT",
        timeframe="3d",
        source="coinglass",
        now=NOW,
    )
    hm = out.heatmap
    assert (hm.symbol, hm.timeframe, hm.source, hm.time) == ("BTCUSDT", "3d", "coinglass", NOW)
    assert hm.price == 61590.5  # close of the latest candle
    # the docs example is abridged: its cells point at candles 5..7 and y levels 122..124,
    # which the two sample candles and three levels do not have
    assert hm.levels == ()
    assert len(out.bad) == 3
    assert all(b.kind == "heatmap_cell" for b in out.bad)


def test_levels_are_the_latest_column_only() -> None:
    out = parse.heatmap(
        sample("coinglass_heatmap_grid.json"),
        symbol="BTCUSDT",
        timeframe="24h",
        source="sim",
        now=NOW,
    )
    hm = out.heatmap
    assert hm.price == 61620.0
    assert [(lv.price, lv.value_usd) for lv in hm.levels] == [
        (58000.0, 1300000.0),  # drawn through every candle: the latest value wins
        (60000.0, 400000.25),  # gap in the middle, present in the latest column
        (62000.0, 730000.0),
    ]  # 59000 ended a candle ago (liquidated): gone
    assert [hm.side_of(lv) for lv in hm.levels] == ["long", "long", "short"]
    reasons = sorted(b.reason for b in out.bad)
    assert len(reasons) == 6
    assert any("value is not positive: 0" in r for r in reasons)
    assert any("value is not a number" in r for r in reasons)  # "NaN"
    assert any("value is not positive: -5" in r for r in reasons)
    assert any("x 9 is outside" in r for r in reasons)
    assert any("y 99 is outside" in r for r in reasons)
    assert any("not [x, y, value]" in r for r in reasons)


def test_bad_latest_price_spoils_the_heatmap() -> None:
    payload = sample("coinglass_heatmap_grid.json")
    payload["data"]["price_candlesticks"][-1][4] = "0"
    with pytest.raises(BadPayload, match="latest close is not positive"):
        parse.heatmap(payload, symbol="BTCUSDT", timeframe="24h", source="sim")
    payload["data"]["price_candlesticks"] = []
    with pytest.raises(BadPayload, match="no price candlesticks"):
        parse.heatmap(payload, symbol="BTCUSDT", timeframe="24h", source="sim")


@pytest.mark.parametrize(
    "name", ["coinglass_error_401.json", "coinglass_error_429.json", "coinglass_error_400.json"]
)
def test_error_envelopes_are_not_data(name: str) -> None:
    with pytest.raises(BadPayload, match="not a successful CoinGlass envelope"):
        parse.heatmap(sample(name), symbol="BTCUSDT", timeframe="24h", source="coinglass")


@pytest.mark.parametrize(
    "payload",
    [
        {"code": "0", "msg": "success"},
        {"code": "0", "data": {"y_axis": []}},
        {"code": 0, "data": []},
    ],
)
def test_broken_envelopes(payload: object) -> None:
    with pytest.raises(BadPayload):
        parse.heatmap(payload, symbol="BTCUSDT", timeframe="24h", source="coinglass")
