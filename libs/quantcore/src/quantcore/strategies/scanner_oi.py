"""`scanner_oi`: the owner's OI-spike momentum scanner. At a bar's close it enters when open
interest rose more than X % over 15 minutes AND the last 5 minutes' volume is more than Y × the
hour's average AND price moved more than Z % in 5 minutes — in the direction of that move
(long on a rise, short on a fall). The measures and the trigger are the spike scanner's own
functions (`quantcore.math.spikes`), applied to each bar's trailing window."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from quantcore.math import spikes, trigger
from quantcore.strategies.base import Bars, SignalFrame, Strategy, StrategyParams

F = NDArray[np.float64]
OI_MINUTES = 15
MOVE_MINUTES = 5
VOLUME_MINUTES = 60  # the hour the 5-minute volume is compared with
CHUNK = 65_536  # bars per block of trailing windows (bounds the temporary arrays)


class ScannerOiParams(StrategyParams):
    oi_min_pct: float = Field(3.0, ge=0, le=100, description="OI rise over 15 min, %")
    vol_min: float = Field(1.5, ge=1, le=100, description="5-min volume / 1-h average 5 min")
    move_min_pct: float = Field(1.0, ge=0, le=50, description="price move over 5 min, %")
    sl_pct: float | None = Field(1.5, gt=0, le=50, description="stop loss, % from the fill")
    tp_pct: float | None = Field(3.0, gt=0, le=500, description="take profit, % from the fill")


def trailing(fn: object, x: F, width: int) -> F:
    """fn applied at every bar i to x[i−width+1..i] (NaN for the first width−1 bars), in
    blocks: the live scanner's functions of a window, evaluated for every bar of a series."""
    out = np.full(x.shape[0], np.nan)
    for a in range(width - 1, x.shape[0], CHUNK):
        b = min(a + CHUNK, x.shape[0])
        win = np.lib.stride_tricks.sliding_window_view(x[a - width + 1 : b], width)
        out[a:b] = fn(win)  # type: ignore[operator]
    return out


class ScannerOi(Strategy[ScannerOiParams]):
    name = "scanner_oi"
    version = "1"
    params_model = ScannerOiParams
    needs = frozenset({"open_interest"})
    description = "OI + volume spike with a 5-min price move; trades in the move's direction"

    @property
    def warmup(self) -> int:
        return VOLUME_MINUTES

    def signals(self, bars: Bars) -> SignalFrame:
        if bars.open_interest is None:
            raise ValueError(f"{self.name} needs open interest; the tape of {bars.symbol} has none")
        p = self.params
        oi = trailing(
            lambda w: spikes.pct_change(w, OI_MINUTES), bars.open_interest, OI_MINUTES + 1
        )
        move = trailing(lambda w: spikes.pct_change(w, MOVE_MINUTES), bars.close, MOVE_MINUTES + 1)
        vol = trailing(spikes.volume_ratio, bars.volume, VOLUME_MINUTES)
        entry = np.zeros(len(bars), dtype=np.int8)
        # the SPEC trigger, the same function the live ranker's trigger uses (fixed numbers)
        bar = trigger.Thresholds(
            oi_pct=np.full(len(bars), p.oi_min_pct), volume_ratio=np.full(len(bars), p.vol_min),
            move_pct=np.full(len(bars), p.move_min_pct),
        )  # fmt: skip
        for side, direction in ((1, "long"), (-1, "short")):
            entry[trigger.fires(oi, vol, move, np.full(len(bars), direction), bar)] = side
        n = len(bars)
        return SignalFrame(
            entry=entry,
            sl_pct=None if p.sl_pct is None else np.full(n, p.sl_pct),
            tp_pct=None if p.tp_pct is None else np.full(n, p.tp_pct),
            reason="oi + volume spike, price move",
        )
