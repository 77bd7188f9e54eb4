"""Tapes: where the bars of a backtest come from. Each gives `Bars` per coin on a regular
1-minute grid, checked before anything runs (a gap or an empty window is a `TapeError`).

- `sim`: the simulator's market model (seeded), generated offline a day at a time, with the
  ground truth of its whale campaigns (`Bars.hunts`, collected as it runs: `CampaignLog`);
- `db`: what the collectors stored (`ohlcv` 1-min, open interest and funding from
  `market_snapshots`, and for a strategy that reads them the heatmap refreshes the
  liquidation collector stored, stamped at the refresh time: `StoredHeatmaps`);
- `bybit`: the candles `quant backfill` fetched from Bybit (`ohlcv` rows with source bybit).
The database tapes are read in `quantcore.store.backtests` (the live strategy runner reads
its bars and heatmaps through the same functions); this module checks and shapes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, overload

import numpy as np
from numpy.typing import NDArray

from quantcore.model.market import TIMEFRAMES
from quantcore.sim import Market, MarketConfig
from quantcore.sim.levels import BookSnapshot
from quantcore.sim.market import collector_levels_of
from quantcore.sim.rings import CLOSE, HIGH, LOW, OI, OPEN, VOLUME
from quantcore.sim.whales import Campaign
from quantcore.store.backtests import RefreshTimes, heatmap_refresh_times, load_heatmap_refreshes
from quantcore.strategies.base import Bars, HeatmapLevels, Strategy, WhaleHunt

if TYPE_CHECKING:
    from psycopg import AsyncConnection

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

    def put(self, symbol: str, k: int, levels: tuple[F, F]) -> None:
        self._got[(symbol, k)] = levels

    def get(self, symbol: str, k: int) -> tuple[F, F]:
        try:
            return self._got[(symbol, k)]
        except KeyError:
            raise KeyError(
                f"heatmap refresh {k} of {symbol} was not fetched (the strategy's "
                "heatmap_refreshes must name every refresh it reads)"
            ) from None

    def levels_of(self, symbol: str) -> HeatmapLevels:
        n = int(self.refreshed_s.size)
        return HeatmapLevels(
            refreshed_s=self.refreshed_s, prices=_Lazy(self, symbol, 0, n),
            values=_Lazy(self, symbol, 1, n), timeframes=self.timeframes, source=self,
        )  # fmt: skip


class StoredHeatmaps:
    """The heatmaps of the `db` tape and of the live strategy runner: the refreshes the
    liquidation collector stored, stamped at the refresh time, read through one reader
    (quantcore.store.backtests.heatmap_refresh_times / load_heatmap_refreshes). Per coin, the
    refresh times of the window; the levels only of the refreshes the strategy reads
    (`Strategy.heatmap_refreshes`), read once and kept by (coin, refresh time). The runner
    keeps one across its looks: it then lists only the refreshes stamped since its last look
    (from RELIST_S before it, for one written late) and reads only the new ones."""

    RELIST_S = 60

    def __init__(self, timeframes: Sequence[str] = TIMEFRAMES) -> None:
        self.timeframes = tuple(timeframes)
        self.times: dict[str, RefreshTimes] = {}
        self._got: dict[str, dict[int, tuple[F, F]]] = {}  # coin → refresh time → levels
        self.read = 0  # refreshes read from the database so far (a test reads it)

    def fetch(self, wanted: Mapping[str, I64 | None]) -> None:
        """Nothing to do: `load` read the wanted refreshes before the strategy runs."""

    def at(self, symbol: str, t_s: int) -> tuple[F, F]:
        """The levels of the coin's refresh stamped at t."""
        try:
            return self._got[symbol][t_s]
        except KeyError:
            raise KeyError(
                f"heatmap refresh {np.datetime64(t_s, 's')}Z of {symbol} was not read (the "
                "strategy's heatmap_refreshes must name every refresh it reads)"
            ) from None

    def source_at(self, symbol: str, t_s: int) -> str | None:
        """The level source (liquidation_levels.source) of the coin's newest refresh at or
        before t (None before the first)."""
        times = self.times.get(symbol)
        if times is None:
            return None
        k = int(np.searchsorted(times.refreshed_s, t_s, side="right")) - 1
        return times.sources[k] if k >= 0 else None

    def levels_of(self, symbol: str) -> HeatmapLevels:
        ts = self.times[symbol].refreshed_s
        view, n = _AtTimes(self, ts), int(ts.size)
        return HeatmapLevels(
            refreshed_s=ts, prices=_Lazy(view, symbol, 0, n), values=_Lazy(view, symbol, 1, n),
            timeframes=self.timeframes, source=self,
        )  # fmt: skip

    async def _list(
        self, conn: AsyncConnection[Any], symbol: str, start_s: int, end_s: int
    ) -> RefreshTimes:
        """The coin's refreshes stamped up to end_s, from the newest at or before start_s."""
        old = self.times.get(symbol)
        since = start_s
        if old is not None and old.refreshed_s.size and int(old.refreshed_s[0]) <= start_s:
            since = max(start_s, int(old.refreshed_s[-1]) - self.RELIST_S)
        new = await heatmap_refresh_times(
            conn, symbol, datetime.fromtimestamp(since, UTC), datetime.fromtimestamp(end_s, UTC),
            self.timeframes,
        )  # fmt: skip
        if since == start_s or old is None:
            return new
        source = dict(zip(old.refreshed_s.tolist(), old.sources, strict=True))
        source.update(zip(new.refreshed_s.tolist(), new.sources, strict=True))
        ts = np.array(sorted(t for t in source if t <= end_s), dtype=np.int64)
        first = max(0, int(np.searchsorted(ts, start_s, side="right")) - 1)
        ts = ts[first:]
        return RefreshTimes(symbol, ts, [source[t] for t in ts.tolist()])

    async def load(
        self, conn: AsyncConnection[Any], strategy: Strategy[Any], tape: Sequence[Bars],
        end_s: int, every: bool = False,
    ) -> list[Bars]:  # fmt: skip
        """The bars with their heatmaps: the refreshes stamped up to `end_s` (and the newest
        one at or before each coin's first bar close), those the strategy reads read (with
        `every`, all of them: other settings may read others)."""
        out = []
        for bars in tape:
            sym = bars.symbol
            times = await self._list(conn, sym, int(bars.close_s[0]), end_s)
            self.times[sym] = times
            shaped = replace(bars, heatmap=self.levels_of(sym))
            wanted = None if every else strategy.heatmap_refreshes(shaped)
            ks = range(times.refreshed_s.size) if wanted is None else wanted.tolist()
            got = self._got.setdefault(sym, {})
            need = sorted({int(times.refreshed_s[k]) for k in ks} - got.keys())
            got.update(await load_heatmap_refreshes(conn, sym, need, self.timeframes))
            self.read += len(need)
            first = int(times.refreshed_s[0]) if times.refreshed_s.size else end_s
            for t in [t for t in got if t < first]:
                del got[t]  # left the window
            out.append(shaped)
        return out


class _AtTimes:
    """Refresh k of a coin → its levels, by the refresh times of one listing."""

    def __init__(self, store: StoredHeatmaps, refreshed_s: I64) -> None:
        self.store, self.refreshed_s = store, refreshed_s

    def get(self, symbol: str, k: int) -> tuple[F, F]:
        return self.store.at(symbol, int(self.refreshed_s[k]))


class _Readable(Protocol):
    def get(self, symbol: str, k: int) -> tuple[F, F]: ...


class _Lazy(Sequence[F]):
    """One field (prices or values) of one coin's refreshes, read from the source."""

    def __init__(self, source: _Readable, symbol: str, field: int, n: int) -> None:
        self.source, self.symbol, self.field, self.n = source, symbol, field, n

    def __len__(self) -> int:
        return self.n

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


class CampaignLog:
    """Every whale campaign a simulated market started, collected as it runs. The market
    keeps only its newest `whales.log.maxlen` campaigns (a year of 60 coins starts more), so
    `collect` is called often enough (the sim tape: once a simulated day) and takes the ones
    started since the last call; a campaign is a live record (its push, end and outcome are
    filled in later), read when the hunts are asked for. Refuses to lose any: when a whole
    full log is new since the last call, older ones may have dropped out unseen."""

    def __init__(self) -> None:
        self.campaigns: list[Campaign] = []
        self._seen: set[int] = set()  # id() of the kept campaigns (kept alive: ids stay unique)

    def collect(self, market: Market) -> int:
        log = market.whales.log
        new: list[Campaign] = []
        for c in reversed(log):  # newest first, until one already kept
            if id(c) in self._seen:
                break
            new.append(c)
        else:
            if log.maxlen is not None and len(log) == log.maxlen:
                raise TapeError(
                    f"the simulator started {len(log)}+ whale campaigns since they were last "
                    "collected (its log keeps that many): some ground truth would be lost"
                )
        new.reverse()
        self.campaigns.extend(new)
        self._seen.update(id(c) for c in new)
        return len(new)

    def hunts(self, symbols: Sequence[str], start_s: int, end_s: int) -> list[list[WhaleHunt]]:
        """Per coin (the market's index order), the campaigns whose life overlaps
        [start_s, end_s): started before the end and not ended before the start."""
        out: list[list[WhaleHunt]] = [[] for _ in symbols]
        for c in self.campaigns:
            if c.started < end_s and (c.ended is None or c.ended >= start_s):
                out[c.coin].append(whale_hunt(c, symbols[c.coin]))
        return out


def whale_hunt(c: Campaign, symbol: str) -> WhaleHunt:
    """The simulator's campaign record in our words."""
    return WhaleHunt(
        symbol=symbol, kind=c.kind, direction="long" if c.direction > 0 else "short",
        started_s=int(c.started),
        push_started_s=None if c.push_started is None else int(c.push_started),
        ended_s=None if c.ended is None else int(c.ended), origin=float(c.origin),
        target=float(c.target), take_profit=float(c.take_profit), outcome=c.outcome,
        timeframe=c.timeframe,
    )  # fmt: skip


def sim_tape(
    days: float, seed: int = 42, coins: int = 1, start_s: int = SIM_EPOCH_S,
    heatmaps: bool = True, capture: Strategy[Any] | None = None,
) -> list[Bars]:  # fmt: skip
    """`days` of 1-minute bars for `coins` simulated coins (seeded; offline). The market
    advances at a 1-minute step (hourly decision blocks) so a month takes seconds. With
    `heatmaps`, each coin's bars carry its heatmap levels at every 5-minute refresh (lazy, see
    SimHeatmaps). Each coin's bars carry the ground truth of the whale campaigns on it that
    overlap the window (`Bars.hunts`, collected a day at a time). With `capture` (a strategy
    reading heatmaps), the refreshes it names are
    read while the tape is generated — a day at a time, from copies of the book kept at each
    refresh of the day — so no replay is needed for it."""
    if days <= 0:
        raise TapeError("the window is empty (days must be > 0)")
    market = _sim_market(seed, coins, start_s)
    total = round(days * DAY_S) // 60 * 60
    n = total // 60
    t0 = market.now
    times = np.empty(n, dtype=np.int64)
    cols = np.empty((coins, 6, n))  # open, high, low, close, volume, OI
    fields = [OPEN, HIGH, LOW, CLOSE, VOLUME, OI]
    refreshed = np.arange(t0, t0 + total + 1, HEATMAP_REFRESH_S, dtype=np.int64)
    source = SimHeatmaps(seed, coins, start_s, refreshed) if heatmaps else None
    symbols = [c.symbol for c in market.coins]
    capturing = source is not None and capture is not None and "heatmap" in capture.needs
    snaps: dict[int, tuple[BookSnapshot, F, int]] = {}
    if capturing:
        snaps[0] = (market.book.snapshot(), market.last_price.copy(), market.now)
    done = filled = 0
    log = CampaignLog()
    log.collect(market)
    while done < total:
        step = min(DAY_S, total - done)
        if capturing:
            end = market.now + step
            while market.now < end:
                market.advance_to(
                    min(end, (market.now // HEATMAP_REFRESH_S + 1) * HEATMAP_REFRESH_S)
                )
                k, rest = divmod(market.now - t0, HEATMAP_REFRESH_S)
                if rest == 0:
                    last = snaps[max(snaps)][0] if snaps else None
                    snaps[k] = (market.book.snapshot(last), market.last_price.copy(), market.now)
        else:
            market.advance(step)
        log.collect(market)
        m = step // 60
        for c in range(coins):
            ts, vals = market.klines(c, "1", market.now - step, market.now - 1, m + 1)
            if ts.size != m:
                raise TapeError(f"{symbols[c]}: the simulator gave {ts.size} candles for {m}")
            times[filled : filled + m] = ts
            cols[c, :, filled : filled + m] = vals[fields]
        if capturing:
            assert source is not None and capture is not None
            _capture(market, source, capture, snaps, times, cols, filled, filled + m)
            snaps = {max(snaps): snaps[max(snaps)]}  # serves the next day's first bars
        filled += m
        done += step
    hunts = log.hunts(symbols, t0, t0 + total)
    out = []
    for c in range(coins):
        f_t, f_r = market.funding_history(c, t0, market.now, 10_000)
        raw = RawCandles(
            symbol=symbols[c], start_s=times, ohlcv=cols[c, :5],
            oi_time_s=times + 60, oi=cols[c, 5],
            funding_time_s=f_t.astype(np.int64), funding=f_r.astype(np.float64),
        )  # fmt: skip
        bars = replace(check_and_shape(raw), hunts=tuple(hunts[c]))
        if source is not None:
            bars = replace(
                bars, heatmap=source.levels_of(bars.symbol), tick_size=market.coins[c].tick
            )
        out.append(bars)
    return out


def _capture(
    market: Market, source: SimHeatmaps, strategy: Strategy[Any],
    snaps: dict[int, tuple[BookSnapshot, F, int]], times: I64, cols: F, a: int, b: int,
) -> None:  # fmt: skip
    """Read the refreshes the strategy names for bars [a, b) (with its warm-up before them)
    off the book copies of this stretch."""
    lead = max(0, a - strategy.warmup - 1)
    for c, coin in enumerate(market.coins):
        bars = Bars(
            symbol=coin.symbol, start_s=times[lead:b], open=cols[c, 0, lead:b],
            high=cols[c, 1, lead:b], low=cols[c, 2, lead:b], close=cols[c, 3, lead:b],
            volume=cols[c, 4, lead:b], open_interest=cols[c, 5, lead:b],
            heatmap=source.levels_of(coin.symbol), tick_size=coin.tick,
        )  # fmt: skip
        wanted = strategy.heatmap_refreshes(bars, since=a - lead)
        ks = np.arange(len(source.refreshed_s)) if wanted is None else wanted
        for k in ks.tolist():
            if k in snaps:
                book, price, now = snaps[k]
                source.put(
                    coin.symbol, k, collector_levels_of(
                        book, c, float(price[c]), now, coin.price_decimals, source.model,
                        source.timeframes,
                    ),
                )  # fmt: skip
