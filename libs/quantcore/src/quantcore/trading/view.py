"""What the trade decision reads about one coin (a `MarketView`), from a ranking's target and
the target timeframe's levels. Pure: the ranker builds it from what it read, the liquidation
hunter plug-in from its tape — the same function."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from quantcore.math import clusters
from quantcore.math.values import num
from quantcore.model.plan import Direction, MarketView, PriceRange

F = NDArray[np.float64]


def market_view(
    *,
    symbol: str,
    direction: Direction,
    price: float,
    target_low: float,
    target_high: float,
    target_value: float | None,
    tf_prices: F | None,
    tf_values: F | None,
    merge_pct: float,
    wick_pct: float | None,
    data_time: datetime | None,
    timeframe: str | None,
) -> MarketView:
    """The target cluster, the nearest cluster on the other side of price in the target's
    heatmap (tf_prices / tf_values: that timeframe's levels; None: unknown) for the cluster
    stop, the target timeframe's max adverse wick (None or 0: unknown) and when the levels
    were read."""
    nxt = None
    if tf_prices is not None and tf_values is not None:
        side = 1 if direction == "long" else -1
        c = clusters.merge(tf_prices[None, :], tf_values[None, :], [price], merge_pct)
        k = clusters.next_opposite(c, 0, side, price)
        if k >= 0:
            nxt = PriceRange(
                low=float(c.price_low[k]), high=float(c.price_high[k]), value_usd=num(c.value[k])
            )
    return MarketView(
        symbol=symbol, direction=direction, price=price,
        target=PriceRange(low=target_low, high=target_high, value_usd=target_value),
        next_opposite=nxt, wick_pct=wick_pct if wick_pct is not None and wick_pct > 0 else None,
        data_time=data_time, timeframe=timeframe,
    )  # fmt: skip
