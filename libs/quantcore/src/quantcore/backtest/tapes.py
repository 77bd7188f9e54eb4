"""Tapes: where the bars of a backtest come from. Each gives `Bars` per coin on a regular
1-minute grid, checked before anything runs (a gap or an empty window is a `TapeError`).

- `sim`: the simulator's market model (seeded), generated offline a day at a time;
- `db`: what the collectors stored (`ohlcv` 1-min, open interest from `market_snapshots`);
- `bybit`: the candles `quant backfill` fetched from Bybit (`ohlcv` rows with source bybit).
The database tapes are read in `quantcore.store.backtests`; this module checks and shapes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import overload

import numpy as np
from numpy.typing import NDArray

from quantcore.model.market import TIMEFRAMES
from quantcore.sim import Market, MarketConfig
from quantcore.sim.rings import CLOSE, HIGH, LOW, OI, OPEN, VOLUME
from quantcore.strategies.base import Bars, HeatmapLevels

F = NDArray[np.float64]
I64 = NDArray[np.int64]
DAY_S = 86_400
# a fixed, 4-h aligned start: the same seed gives the same tape on every machine and day
SIM_EPOCH_S = 1_767_225_600  # 2026-01-01T00:00:00Z


class TapeError(ValueError):
    """The tape cannot be backtested as asked (gap, empty window, missing input)."""


@dataclass(frozen=True)
class RawCandles:
    """Rows as stored: per coin, open times (s) and OHLCV (+ optional OI / funding by time)."""

    symbol: str
    start_s: I64
    ohlcv: F  # (5, n): open, high, low, close, volume
    oi_time_s: I64 | None = None
    oi: F | None = None
    funding_time_s: I64 | None = None
    funding: F | None = None


def check_and_shape(raw: RawCandles, interval_s: int = 60, max_gap_bars: int = 0) -> Bars:
    """Raw rows → Bars. Refuses an empty window and a gap (missing candles) longer than
    `max_gap_bars`; open interest is taken as of each bar's close (newest value stamped at or
    before it), funding is placed on the bar whose close is the settlement time."""
    n = raw.start_s.size
    if n == 0:
        raise TapeError(f"{raw.symbol}: no candles in the window")
    order = np.argsort(raw.start_s, kind="stable")
    t = raw.start_s[order]
    if np.any(np.diff(t) == 0):
        raise TapeError(f"{raw.symbol}: duplicate candle times in the tape")
    steps = np.diff(t) // interval_s
    if np.any(np.diff(t) % interval_s):
        raise TapeError(f"{raw.symbol}: candle times off the {interval_s}-s grid")
    worst = int(steps.max()) - 1 if steps.size else 0
    if worst > max_gap_bars:
        at = int(steps.argmax())
        raise TapeError(
            f"{raw.symbol}: gap of {worst} missing candle(s) after "
            f"{np.datetime64(int(t[at]), 's')}Z (the tape must be complete; run quant backfill)"
        )
    v = raw.ohlcv[:, order]
    if not np.all(np.isfinite(v)) or np.any(v[:4] <= 0):
        raise TapeError(f"{raw.symbol}: non-finite or non-positive prices in the tape")
    close_s = t + interval_s
    oi = None
    if raw.oi is not None and raw.oi_time_s is not None and raw.oi.size:
        oo = np.argsort(raw.oi_time_s, kind="stable")
        ot, ov = raw.oi_time_s[oo], raw.oi[oo]
        pos = np.searchsorted(ot, close_s, side="right") - 1
        oi = np.where(pos >= 0, ov[np.maximum(pos, 0)], np.nan)
    funding = None
    if raw.funding is not None and raw.funding_time_s is not None:
        funding = np.zeros(n)
        at_bar = np.searchsorted(close_s, raw.funding_time_s)
        ok = (at_bar < n) & (close_s[np.minimum(at_bar, n - 1)] == raw.funding_time_s)
        funding[at_bar[ok]] = raw.funding[ok]
    return Bars(
        symbol=raw.symbol, start_s=t, open=v[0].copy(), high=v[1].copy(), low=v[2].copy(),
        close=v[3].copy(), volume=v[4].copy(), interval_s=interval_s, open_interest=oi,
        funding=funding,
    )  # fmt: skip


HEATMAP_REFRESH_S = 300  # the liquidation collector's background refresh (SPEC §4: 5 min)


def _sim_market(seed: int, coins: int, start_s: int) -> Market:
    return Market(
        MarketConfig(seed=seed, coins=coins, history_days=0, start=start_s, step_s=60, block_s=3600)
    )


class SimHeatmaps:
    """The sim tape's heatmaps: what the liquidation collector stores with HEATMAP_SOURCE=sim
    (quantcore.sim.Market.collector_levels: each timeframe's latest heatmap column) at every
    background refresh, stamped at the refresh time. A year of 60 coins × 9 timeframes every
    5 minutes would not fit in memory, so they are computed on `fetch`: the seeded market is
    replayed (same seed, same start: the same market, it does not depend on how it is
    advanced) and the wanted refreshes are read as it passes them. Kept for later reads."""

    def __init__(
        self, seed: int, coins: int, start_s: int, refreshed_s: I64, model: str = "model2"
    ) -> None:
        self.seed, self.coins, self.start_s, self.model = seed, coins, start_s, model
        self.refreshed_s = refreshed_s
        self.timeframes = tuple(TIMEFRAMES)
        self._got: dict[tuple[str, int], tuple[F, F]] = {}
        self.replays = 0  # how often the market was replayed (a test and the benchmark read it)

    def fetch(self, wanted: Mapping[str, I64 | None]) -> None:
        every = np.arange(self.refreshed_s.size, dtype=np.int64)
        need: dict[int, list[str]] = {}
        for symbol, ks in wanted.items():
            for k in (every if ks is None else np.unique(np.asarray(ks, dtype=np.int64))).tolist():
                if 0 <= k < self.refreshed_s.size and (symbol, k) not in self._got:
                    need.setdefault(k, []).append(symbol)
        if not need:
            return
        market = _sim_market(self.seed, self.coins, self.start_s)
        self.replays += 1
        for k in sorted(need):
            market.advance_to(int(self.refreshed_s[k]))
            for symbol in need[k]:
                c = market.symbol_index(symbol)
                if c is None:
                    raise TapeError(f"{symbol} is not in the simulated market")
                self._got[(symbol, k)] = market.collector_levels(c, self.model, self.timeframes)

    def get(self, symbol: str, k: int) -> tuple[F, F]:
        try:
            return self._got[(symbol, k)]
        except KeyError:
            raise KeyError(
                f"heatmap refresh {k} of {symbol} was not fetched (the strategy's "
                "heatmap_refreshes must name every refresh it reads)"
            ) from None

    def levels_of(self, symbol: str) -> HeatmapLevels:
        return HeatmapLevels(
            refreshed_s=self.refreshed_s, prices=_Lazy(self, symbol, 0),
            values=_Lazy(self, symbol, 1), timeframes=self.timeframes, source=self,
        )  # fmt: skip


class _Lazy(Sequence[F]):
    """One field (prices or values) of one coin's refreshes, read from the source."""

    def __init__(self, source: SimHeatmaps, symbol: str, field: int) -> None:
        self.source, self.symbol, self.field = source, symbol, field

    def __len__(self) -> int:
        return int(self.source.refreshed_s.size)

    @overload
    def __getitem__(self, k: int) -> F: ...
    @overload
    def __getitem__(self, k: slice) -> Sequence[F]: ...
    def __getitem__(self, k: int | slice) -> F | Sequence[F]:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        if k < 0:
            k += len(self)
        return self.source.get(self.symbol, k)[self.field]


def sim_tape(
    days: float, seed: int = 42, coins: int = 1, start_s: int = SIM_EPOCH_S, heatmaps: bool = True
) -> list[Bars]:
    """`days` of 1-minute bars for `coins` simulated coins (seeded; offline). The market
    advances at a 1-minute step (hourly decision blocks) so a month takes seconds. With
    `heatmaps`, each coin's bars carry its heatmap levels at every 5-minute refresh (lazy:
    computed for the refreshes a strategy reads, see SimHeatmaps)."""
    if days <= 0:
        raise TapeError("the window is empty (days must be > 0)")
    market = _sim_market(seed, coins, start_s)
    total = round(days * DAY_S) // 60 * 60
    parts: list[list[tuple[I64, F]]] = [[] for _ in range(coins)]
    t0 = market.now
    done = 0
    while done < total:
        step = min(DAY_S, total - done)
        market.advance(step)
        for c in range(coins):
            ts, vals = market.klines(c, "1", market.now - step, market.now - 1, step // 60 + 1)
            parts[c].append((ts, vals))
        done += step
    source = None
    if heatmaps:
        refreshed = np.arange(t0, t0 + total + 1, HEATMAP_REFRESH_S, dtype=np.int64)
        source = SimHeatmaps(seed, coins, start_s, refreshed)
    out = []
    for c in range(coins):
        ts = np.concatenate([p[0] for p in parts[c]])
        vals = np.concatenate([p[1] for p in parts[c]], axis=1)
        f_t, f_r = market.funding_history(c, t0, market.now, 10_000)
        raw = RawCandles(
            symbol=market.coins[c].symbol, start_s=ts.astype(np.int64),
            ohlcv=vals[[OPEN, HIGH, LOW, CLOSE, VOLUME]].astype(np.float64),
            oi_time_s=(ts + 60).astype(np.int64), oi=vals[OI].astype(np.float64),
            funding_time_s=f_t.astype(np.int64), funding=f_r.astype(np.float64),
        )  # fmt: skip
        bars = check_and_shape(raw)
        if source is not None:
            bars = replace(
                bars, heatmap=source.levels_of(bars.symbol), tick_size=market.coins[c].tick
            )
        out.append(bars)
    return out
