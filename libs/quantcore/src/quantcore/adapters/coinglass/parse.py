"""CoinGlass heatmap payload → quantcore.model.Heatmap. Pure functions, no I/O.

The heatmap is a grid: x = candle (time), y = price level, value = USD that liquidates there.
A level that still exists is drawn through the latest candle; a level whose last cell is in an
older column was liquidated (or closed) since, so it is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from typing import Any, Literal

import numpy as np
from pydantic import ValidationError

from quantcore.adapters.numbers import number
from quantcore.errors import BadPayload
from quantcore.model.market import Heatmap, HeatmapLevel, Timeframe

HEATMAP = "heatmap"
HEATMAP_CELL = "heatmap_cell"
SNIPPET = 500
HeatmapSource = Literal["coinglass", "sim"]


@dataclass
class ParsedHeatmap:
    heatmap: Heatmap
    bad: list[BadPayload] = field(default_factory=list)


def snippet(raw: Any) -> str:
    if isinstance(raw, str):
        return raw[:SNIPPET]
    try:
        return json.dumps(raw, separators=(",", ":"), default=str)[:SNIPPET]
    except (TypeError, ValueError):
        return repr(raw)[:SNIPPET]


def index(value: Any, what: str, size: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValueError(f"{what} is not an integer index: {str(value)[:40]!r}")
    out = int(value)
    if not 0 <= out < size:
        raise ValueError(f"{what} {out} is outside 0..{size - 1}")
    return out


def data_of(payload: Any) -> Mapping[str, Any]:
    """`data` of a successful envelope (the client has already translated error codes)."""
    if not isinstance(payload, Mapping) or str(payload.get("code")) != "0":
        raise BadPayload(HEATMAP, snippet(payload), "not a successful CoinGlass envelope")
    data = payload.get("data")
    if not isinstance(data, Mapping):
        raise BadPayload(HEATMAP, snippet(payload), "envelope has no data object")
    return data


def heatmap(
    payload: Any,
    *,
    symbol: str,
    timeframe: Timeframe,
    source: HeatmapSource,
    now: datetime | None = None,
) -> ParsedHeatmap:
    """Parse a heatmap. A clean payload takes the vectorised path (1-2k cells per heatmap,
    4,500 heatmaps per refresh cycle); anything it does not fully trust goes through the
    cell-by-cell path, which names every bad cell."""
    fast = _heatmap_vectorised(payload, symbol=symbol, timeframe=timeframe, source=source, now=now)
    if fast is not None:
        return fast
    return _heatmap_cell_by_cell(
        payload, symbol=symbol, timeframe=timeframe, source=source, now=now
    )


def _heatmap_vectorised(
    payload: Any, *, symbol: str, timeframe: Timeframe, source: HeatmapSource, now: datetime | None
) -> ParsedHeatmap | None:
    """The same result as the cell-by-cell parse for a payload with no bad cell; None otherwise."""
    try:
        data = data_of(payload)
    except BadPayload:
        return None
    y_axis = data.get("y_axis")
    cells = data.get("liquidation_leverage_data")
    candles = data.get("price_candlesticks")
    if not (isinstance(y_axis, list) and isinstance(cells, list) and isinstance(candles, list)):
        return None
    if not candles or not cells:
        return None
    latest = candles[-1]
    try:
        if not isinstance(latest, list) or len(latest) < 5:
            return None
        price = number(latest[4], "latest close")
        if not all(isinstance(c, list) and len(c) == 3 for c in cells):
            return None
        grid = np.fromiter(chain.from_iterable(cells), dtype=np.float64, count=3 * len(cells))
        axis = np.array(y_axis, dtype=np.float64)
    except (ValueError, TypeError, BadPayload):
        return None
    if price <= 0 or axis.ndim != 1:
        return None
    grid = grid.reshape(-1, 3)
    x, y, v = grid[:, 0], grid[:, 1], grid[:, 2]
    latest_x = len(candles) - 1
    with np.errstate(invalid="ignore"):
        good = (
            (x == np.floor(x)) & (x >= 0) & (x <= latest_x)
            & (y == np.floor(y)) & (y >= 0) & (y < axis.size) & np.isfinite(v) & (v > 0)
        )  # fmt: skip
    if not bool(good.all()):
        return None
    current = x == latest_x  # a level exists iff its newest cell is in the latest column
    ys = y[current].astype(np.int64)
    vs = v[current]
    # a repeated (latest, y) cell: the last one wins, as in the cell-by-cell parse
    keep = ys.size - 1 - np.unique(ys[::-1], return_index=True)[1]
    ys, vs = ys[keep], vs[keep]
    prices = axis[ys]
    if not bool(np.all(np.isfinite(prices) & (prices > 0))):
        return None
    order = np.argsort(prices, kind="stable")
    levels = tuple(
        HeatmapLevel.model_construct(price=p, value_usd=val, leverage=None)  # checked above
        for p, val in zip(prices[order].tolist(), vs[order].tolist(), strict=True)
    )
    hm = Heatmap(
        symbol=symbol, timeframe=timeframe, time=now or datetime.now(UTC), source=source,
        price=price, levels=levels,
    )  # fmt: skip
    return ParsedHeatmap(hm, [])


def _heatmap_cell_by_cell(
    payload: Any,
    *,
    symbol: str,
    timeframe: Timeframe,
    source: HeatmapSource,
    now: datetime | None = None,
) -> ParsedHeatmap:
    data = data_of(payload)
    y_axis = data.get("y_axis")
    cells = data.get("liquidation_leverage_data")
    candles = data.get("price_candlesticks")
    if not isinstance(y_axis, list) or not isinstance(cells, list) or not isinstance(candles, list):
        raise BadPayload(
            HEATMAP, snippet(payload),
            "data needs y_axis, liquidation_leverage_data and price_candlesticks lists",
        )  # fmt: skip
    if not candles:
        raise BadPayload(HEATMAP, snippet(payload), "no price candlesticks: no current price")
    latest = candles[-1]
    try:
        if not isinstance(latest, list) or len(latest) < 5:
            raise ValueError("candlestick is not [ts, open, high, low, close, volume]")
        price = number(latest[4], "latest close")
        if price <= 0:
            raise ValueError(f"latest close is not positive: {price}")
    except ValueError as exc:
        raise BadPayload(HEATMAP, snippet(latest), str(exc)) from None

    latest_x = len(candles) - 1
    bad: list[BadPayload] = []
    last: dict[int, tuple[int, float]] = {}  # y → (x of its newest cell, value there)
    for cell in cells:
        try:
            if not isinstance(cell, list) or len(cell) < 3:
                raise ValueError("cell is not [x, y, value]")
            x = index(cell[0], "x", latest_x + 1)
            y = index(cell[1], "y", len(y_axis))
            value = number(cell[2], "value")
            if value <= 0:
                raise ValueError(f"value is not positive: {value}")
        except ValueError as exc:
            bad.append(BadPayload(HEATMAP_CELL, snippet(cell), str(exc)))
            continue
        if y not in last or x >= last[y][0]:
            last[y] = (x, value)

    levels: list[HeatmapLevel] = []
    for y, (x, value) in sorted(last.items()):
        if x != latest_x:
            continue  # gone before the latest candle
        try:
            level_price = number(y_axis[y], "y_axis price")
            levels.append(HeatmapLevel(price=level_price, value_usd=value))
        except (ValueError, ValidationError) as exc:
            bad.append(BadPayload(HEATMAP_CELL, snippet([x, y, value, y_axis[y]]), str(exc)[:300]))
    levels.sort(key=lambda lv: lv.price)
    try:
        out = Heatmap(
            symbol=symbol,
            timeframe=timeframe,
            time=now or datetime.now(UTC),
            source=source,
            price=price,
            levels=tuple(levels),
        )
    except ValidationError as exc:
        raise BadPayload(HEATMAP, snippet(payload), str(exc)[:300]) from None
    return ParsedHeatmap(out, bad)
