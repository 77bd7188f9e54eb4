"""Metrics of a backtest as pure functions of its trades and its equity curve. The
trade-sequence figures (win rate, average win / loss, reward:risk, compounded PnL) are the
leaderboard's own `quantcore.trading.stats.track_record`, so a backtest and the live track
record are scored by the same rule; the rest is defined here once. On the sim tape, a run is
also scored against the ground truth of the whale hunts (`hunt_score`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from quantcore.model.market import Side
from quantcore.strategies.base import WhaleHunt
from quantcore.trading.stats import track_record

F = NDArray[np.float64]
MIN_TRADES = 30  # below this a win rate or a Sharpe ratio means little
YEAR_S = 365 * 86_400  # crypto trades every day


def max_drawdown_curve_pct(equity: ArrayLike) -> float:
    """Largest fall from a running peak of an equity curve, in percent of that peak (≥ 0)."""
    e = np.asarray(equity, dtype=np.float64)
    if e.size == 0:
        return 0.0
    peak = np.maximum.accumulate(e)
    with np.errstate(invalid="ignore", divide="ignore"):
        dd = np.where(peak > 0, (peak - e) / peak, 0.0)
    return float(dd.max() * 100)


def drawdown_curve_pct(equity: ArrayLike) -> F:
    """Drawdown at every point, percent of the running peak (≥ 0)."""
    e = np.asarray(equity, dtype=np.float64)
    peak = np.maximum.accumulate(e) if e.size else e
    with np.errstate(invalid="ignore", divide="ignore"):
        out: F = np.where(peak > 0, (peak - e) / peak * 100, 0.0)
    return out


def bar_returns(equity: ArrayLike) -> F:
    """Simple returns between consecutive equity points (the first from a start of 1)."""
    e = np.asarray(equity, dtype=np.float64)
    prev = np.concatenate([[1.0], e[:-1]])
    with np.errstate(invalid="ignore", divide="ignore"):
        out: F = np.where(prev > 0, e / prev - 1, 0.0)
    return out


def sharpe(returns: ArrayLike, periods_per_year: float) -> float | None:
    """Annualised Sharpe ratio (risk-free 0): mean / sample std × √periods; None when flat."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2:
        return None
    sd = float(r.std(ddof=1))
    if not sd > 0:
        return None
    return float(r.mean() / sd * math.sqrt(periods_per_year))


def sortino(returns: ArrayLike, periods_per_year: float) -> float | None:
    """Annualised Sortino ratio (target 0): mean / √mean(min(r, 0)²) × √periods; None when
    no period lost."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2:
        return None
    down = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)))
    if not down > 0:
        return None
    return float(r.mean() / down * math.sqrt(periods_per_year))


def profit_factor(pnl: ArrayLike) -> float | None:
    """Gross profit / gross loss of the trades; None without a losing trade."""
    p = np.asarray(pnl, dtype=np.float64)
    loss = float(-p[p < 0].sum())
    if not loss > 0:
        return None
    return float(p[p > 0].sum() / loss)


def exposure_pct(position: ArrayLike) -> float:
    """Share of bars with a position open at the close, percent."""
    pos = np.asarray(position)
    return float((pos != 0).mean() * 100) if pos.size else 0.0


@dataclass(frozen=True)
class Metrics:
    trades: int
    win_rate_pct: float | None
    avg_win_pct: float | None
    avg_loss_pct: float | None
    reward_risk: float | None
    profit_factor: float | None
    pnl_pct: float  # final equity vs start
    max_drawdown_pct: float  # of the bar-by-bar (marked-to-market) equity curve
    sharpe: float | None
    sortino: float | None
    exposure_pct: float
    trades_per_day: float
    fees_pct: float  # of the starting equity
    funding_pct: float  # paid (negative: received)
    days: float
    warning: str | None

    def as_dict(self) -> dict[str, float | int | str | None]:
        return dict(self.__dict__)


def compute(
    trade_pnl_pcts: Sequence[float] | F,
    equity: ArrayLike,
    position: ArrayLike,
    interval_s: int,
    fees: float = 0.0,
    funding: float = 0.0,
    min_trades: int = MIN_TRADES,
) -> Metrics:
    """All metrics of one run. `trade_pnl_pcts`: each trade's change of equity in percent, in
    close order; `equity`: at every bar's close, start = 1; `fees` / `funding`: totals in
    units of the starting equity."""
    pnl = [float(x) for x in trade_pnl_pcts]
    tr = track_record(pnl)
    e = np.asarray(equity, dtype=np.float64)
    days = e.size * interval_s / 86_400
    rets = bar_returns(e)
    per_year = YEAR_S / interval_s
    n = len(pnl)
    warning = None
    if n < min_trades:
        warning = f"only {n} trade(s): fewer than {min_trades}, these figures mean little"
    return Metrics(
        trades=n,
        win_rate_pct=None if tr.win_rate is None else tr.win_rate * 100,
        avg_win_pct=tr.avg_win_pct,
        avg_loss_pct=tr.avg_loss_pct,
        reward_risk=tr.reward_risk,
        profit_factor=profit_factor(pnl),
        pnl_pct=float((e[-1] - 1) * 100) if e.size else 0.0,
        max_drawdown_pct=max_drawdown_curve_pct(np.concatenate([[1.0], e])),
        sharpe=sharpe(rets, per_year),
        sortino=sortino(rets, per_year),
        exposure_pct=exposure_pct(position),
        trades_per_day=n / days if days > 0 else 0.0,
        fees_pct=fees * 100,
        funding_pct=funding * 100,
        days=days,
        warning=warning,
    )


def combine_equity(curves: Sequence[F]) -> F:
    """Equal-weight portfolio of coins run side by side (each its own 1/k of the account):
    the mean of their equity curves (all on the same bar grid)."""
    if not curves:
        return np.ones(0)
    width = min(c.size for c in curves)
    out: F = np.mean(np.stack([c[:width] for c in curves]), axis=0)
    return out


EQUITY_POINTS = 500  # stored per run (backtest_equity): enough for a chart


def equity_points(
    close_s: ArrayLike, equity: ArrayLike, max_points: int = EQUITY_POINTS
) -> list[tuple[int, float, float]]:
    """An equity curve thinned for storage: at most `max_points` buckets of consecutive bars,
    each as (its last bar's close time, equity % from the start of 1 there, the deepest
    drawdown % inside it). The trough survives the thinning: a bucket keeps its worst bar."""
    t = np.asarray(close_s, dtype=np.int64)
    e = np.asarray(equity, dtype=np.float64)
    n = min(t.size, e.size)
    if n == 0:
        return []
    t, e = t[:n], e[:n]
    dd = drawdown_curve_pct(np.concatenate([[1.0], e]))[1:]  # the peak starts at 1, as in compute
    k = -(-n // max(1, max_points))  # bars per bucket
    ends = np.minimum(np.arange(k, n + k, k), n) - 1
    deepest = np.maximum.reduceat(dd, np.arange(0, n, k))
    return [(int(t[i]), float((e[i] - 1.0) * 100), float(deepest[j])) for j, i in enumerate(ends)]


@dataclass(frozen=True)
class Entry:
    """A trade's entry: coin, side, fill time (epoch s)."""

    symbol: str
    side: Side
    at_s: int


@dataclass(frozen=True)
class HuntScore:
    """A run against the whale ground truth. `hunts`: the hunts (kind 'hunt') of the window
    that pushed; `caught`: those with a trade entered on their coin in their direction between
    their push start and their end; `outside`: trades entered during no hunt's push (push start
    to end) on their coin, `during_fake` of them inside a fake pump's."""

    hunts: int
    caught: int
    trades: int
    outside: int
    during_fake: int

    @property
    def caught_pct(self) -> float | None:
        return self.caught / self.hunts * 100 if self.hunts else None


def hunt_score(hunts: Sequence[WhaleHunt], entries: Sequence[Entry]) -> HuntScore:
    """Which pushed hunts a run caught and which of its trades met no hunt (see HuntScore)."""
    pushed = [h for h in hunts if h.kind == "hunt" and h.push_started_s is not None]
    fakes = [h for h in hunts if h.kind == "fake"]
    caught = sum(
        any(
            e.symbol == h.symbol and e.side == h.direction and h.pushing_at(e.at_s) for e in entries
        )
        for h in pushed
    )
    outside = during_fake = 0
    for e in entries:
        if any(h.symbol == e.symbol and h.pushing_at(e.at_s) for h in pushed):
            continue
        outside += 1
        during_fake += any(h.symbol == e.symbol and h.pushing_at(e.at_s) for h in fakes)
    return HuntScore(len(pushed), caught, len(entries), outside, during_fake)
