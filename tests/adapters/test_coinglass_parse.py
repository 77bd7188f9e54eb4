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
from quantcore.errors import BadPayload
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


def _simulated_payload(seed: int) -> object:
    """A realistic grid from the simulator's own encoder (what the collector reads in sim mode)."""
    import random

    rnd = random.Random(seed)
    axis = sorted(round(rnd.uniform(90, 110), 2) for _ in range(300))
    candles = [
        [1_700_000_000 + 300 * i, "100", "101", "99", f"{100 + rnd.uniform(-1, 1):.2f}", "5"]
        for i in range(40)
    ]
    cells = [
        [rnd.randrange(0, 40), rnd.randrange(0, 300), round(rnd.uniform(1e3, 1e7), 2)]
        for _ in range(2000)
    ]
    return {"code": "0", "msg": "success", "data": {"y_axis": axis, "liquidation_leverage_data": cells,
                                                     "price_candlesticks": candles}}  # fmt: skip


@pytest.mark.parametrize("payload", [_simulated_payload(s) for s in range(5)])
def test_vectorised_parse_equals_cell_by_cell(payload: object) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    kw = {"symbol": "BTCUSDT", "timeframe": "24h", "source": "sim", "now": now}
    fast = parse._heatmap_vectorised(payload, **kw)  # type: ignore[arg-type]
    slow = parse._heatmap_cell_by_cell(payload, **kw)  # type: ignore[arg-type]
    assert fast is not None  # clean payloads take the fast path
    assert fast.heatmap == slow.heatmap
    assert slow.bad == []


def test_a_bad_cell_sends_the_payload_to_the_reporting_path() -> None:
    grid = sample("coinglass_heatmap_grid.json")  # holds zero, NaN, negative, out-of-range cells
    assert (
        parse._heatmap_vectorised(grid, symbol="BTCUSDT", timeframe="24h", source="sim", now=None)
        is None
    )

    payload = _simulated_payload(7)
    payload["data"]["liquidation_leverage_data"][5][2] = "NaN"  # type: ignore[index]
    kw = {"symbol": "BTCUSDT", "timeframe": "24h", "source": "sim"}
    assert parse._heatmap_vectorised(payload, now=None, **kw) is None  # type: ignore[arg-type]
    parsed = parse.heatmap(payload, **kw)  # type: ignore[arg-type]
    assert len(parsed.bad) == 1 and "NaN" in parsed.bad[0].raw_snippet
