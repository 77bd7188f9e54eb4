"""SMA cross: long when the fast average crosses above the slow one, short when it crosses
below (always in the market, reversing). The validation strategy: the same rule runs in an
established backtesting library in the suite, and both must agree trade for trade. Also the
tutorial for writing a plug-in (see the README)."""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from quantcore.math.indicators import crossover, sma
from quantcore.strategies.base import Bars, SignalFrame, Strategy, StrategyParams


class SmaCrossParams(StrategyParams):
    fast: int = Field(10, ge=1, le=10_000, description="fast SMA window, bars")
    slow: int = Field(30, ge=2, le=100_000, description="slow SMA window, bars")
    sl_pct: float | None = Field(None, gt=0, le=50, description="stop loss, % from the fill")
    tp_pct: float | None = Field(None, gt=0, le=500, description="take profit, % from the fill")

    @model_validator(mode="after")
    def _fast_below_slow(self) -> SmaCrossParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be below slow ({self.slow})")
        return self


class SmaCross(Strategy[SmaCrossParams]):
    name = "sma_cross"
    version = "1"
    params_model = SmaCrossParams
    description = "fast/slow SMA crossover, always in the market (validation strategy)"

    @property
    def warmup(self) -> int:
        return self.params.slow

    def signals(self, bars: Bars) -> SignalFrame:
        fast = sma(bars.close, self.params.fast)
        slow = sma(bars.close, self.params.slow)
        entry = crossover(fast, slow).astype(np.int8) - crossover(slow, fast).astype(np.int8)
        n = len(bars)
        sl = None if self.params.sl_pct is None else np.full(n, self.params.sl_pct)
        tp = None if self.params.tp_pct is None else np.full(n, self.params.tp_pct)
        return SignalFrame(entry=entry, sl_pct=sl, tp_pct=tp, reason="sma cross")
