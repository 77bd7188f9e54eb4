"""The backtest engine: a strategy's per-bar decisions → trades and a mark-to-market equity
curve, on a simulated clock that cannot look ahead.

Rules (what the README calls "our engine assumes"):
- A decision is taken at a bar's close and filled at the **next** bar's open (never the same
  bar). A decision on the last bar is not filled.
- One position at a time per coin. An entry decision on the side already held is ignored; the
  opposite side closes the position and opens the new one at the same open (a reversal).
- Size: `size` × equity at the fill, commission included, like most libraries:
  units = size × equity / (fill × (1 + commission)). Commission is a fraction of notional,
  charged at entry and at exit. Slippage moves every market fill (entries, signal exits,
  stops, the final close) against us; a take-profit fills at its price.
- Stop-loss / take-profit are set from the fill price as the autotrader sets them
  (quantcore.trading.plugin.venue_levels: on the tape's tick grid when it knows it) and
  watched from the fill bar on, each bar through the one exit rule the paper venue closes
  positions with (quantcore.math.matching.first_exit): a bar that opens beyond a level fills
  at that open; a bar that touches both fills the **stop** (we cannot know the order inside a
  bar: assume the worse); a stop is a market order (slipped), a target a limit (its price).
  A stop hit during bar j lets a decision at bar j's close open a new position at j + 1.
- Funding (perpetuals): at each settlement while the position is open at that bar's close,
  longs pay rate × notional at that close, shorts receive it (negative rates the reverse).
- Open at the end of the tape: closed at the last bar's close.
- Leverage and liquidation: a frame with `plans` (limit-order entries with their own stop,
  take-profit, leverage and trailing ladder: the liquidation hunter's) is traded by
  `run_plans` with the venues' matching rules (quantcore.math.matching: marketable limits
  fill at once as takers, resting ones when the range trades through them as makers; the
  stop, the take-profit and the liquidation price of the position's average entry; fees;
  funding) and the position monitor's trailing ladder (quantcore.trading.monitor). Size is
  the plan's (the decision's risk sizing, any leverage); `size` does not apply there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray

from quantcore.math import matching
from quantcore.math.matching import signed_taker_price as taker
from quantcore.model.trading import Side
from quantcore.strategies.base import Bars, OrderPlan, SignalFrame
from quantcore.trading import monitor, plugin, trailing

F = NDArray[np.float64]
I64 = NDArray[np.int64]
I8 = NDArray[np.int8]

EXIT_REASONS = (
    "signal",
    "reverse",
    "stop_loss",
    "take_profit",
    "end",
    "trailing_stop",
    "liquidation",
)
_SEARCH_BLOCK = 256


@dataclass(frozen=True)
class Costs:
    commission: float = 0.00055  # per side, fraction of notional (Bybit taker 0.055 %)
    slippage: float = 0.0  # fraction of price, against us on market fills
    size: float = 1.0  # fraction of equity per position
    maker: float = 0.0002  # per side, resting limit fills of plans (Bybit maker 0.02 %)

    def __post_init__(self) -> None:
        if not 0 <= self.commission < 0.1:
            raise ValueError(f"commission {self.commission} must be in [0, 0.1)")
        if not 0 <= self.slippage < 0.1:
            raise ValueError(f"slippage {self.slippage} must be in [0, 0.1)")
        if not -0.001 <= self.maker < 0.1:
            raise ValueError(f"maker fee {self.maker} must be in [-0.001, 0.1)")
        if not 0 < self.size <= 1:
            raise ValueError(f"size {self.size} must be in (0, 1] (no leverage in this engine)")


@dataclass(frozen=True)
class Trades:
    """Closed trades of one coin, one array per column, in entry order. Bar indices refer to
    the tape; `pnl_pct` is the change of equity over the trade (after fees and funding)."""

    side: I8
    entry_bar: I64  # the fill bar (its open)
    exit_bar: I64  # the bar the exit filled in (its open for signals, intrabar for SL/TP)
    entry_price: F
    exit_price: F
    units: F
    sl: F  # NaN: none
    tp: F
    reason: list[str]
    pnl_pct: F
    return_pct: F  # on price, side-adjusted, before costs
    fees: F  # in equity units (start = 1)
    funding: F
    equity_before: F

    def __len__(self) -> int:
        return int(self.side.shape[0])


@dataclass(frozen=True)
class Result:
    symbol: str
    start_s: I64  # bar open times
    interval_s: int
    equity: F  # at each bar's close, start = 1
    position: I8  # side held at each bar's close
    trades: Trades
    costs: Costs = field(default_factory=Costs)

    @property
    def final_return_pct(self) -> float:
        return float((self.equity[-1] - 1) * 100) if self.equity.size else 0.0


def _stop_bar(side: int, lo: F, h: F, sl: float, tp: float, start: int, stop: int) -> int:
    """The first bar in [start, stop) whose range reaches the stop or the target
    (matching.adverse_reached / favour_reached; NaN levels never do), else stop; scanned in
    growing blocks so a short trade costs little. `matching.first_exit` then decides that bar."""
    a, block = start, _SEARCH_BLOCK
    with np.errstate(invalid="ignore"):
        while a < stop:
            b = min(stop, a + block)
            lo_ab, h_ab = lo[a:b], h[a:b]
            m = matching.adverse_reached(side, lo_ab, h_ab, sl) | matching.favour_reached(
                side, lo_ab, h_ab, tp
            )
            if m.any():
                return a + int(m.argmax())
            a, block = b, block * 2
    return stop


def _pct(x: F | None, i: int) -> float | None:
    """A per-bar percentage, None where the frame gives none (NaN)."""
    if x is None:
        return None
    v = float(x[i])
    return v if math.isfinite(v) else None


def _levels_unused(x: F | None) -> bool:
    return x is None or not np.isfinite(x).any()


def run(
    bars: Bars, frame: SignalFrame, costs: Costs = Costs(), vectorised: bool | None = None
) -> Result:
    """Simulate one coin. See the module docstring for the rules. A strategy without stops,
    targets or exit flags (always-in-market reversals such as the SMA cross) takes the
    vectorised path; `vectorised=False` forces the trade-by-trade loop (the suite checks both
    give the same result)."""
    n = len(bars)
    if len(frame) != n:
        raise ValueError(f"{bars.symbol}: {len(frame)} decisions for {n} bars")
    if frame.plans is not None:
        return run_plans(bars, frame.plans, costs)
    simple = (
        _levels_unused(frame.sl_pct)
        and _levels_unused(frame.tp_pct)
        and (frame.exit is None or not frame.exit.any())
    )
    if vectorised is None:
        vectorised = simple
    if vectorised:
        if not simple:
            raise ValueError("the vectorised path takes no stops, targets or exit flags")
        return _run_reversals(bars, frame, costs)
    return _run_loop(bars, frame, costs)


def _run_reversals(bars: Bars, frame: SignalFrame, costs: Costs) -> Result:
    """Entries and reversals only: every trade ends at the next opposite decision's fill (or
    at the last close). Each trade multiplies equity by a factor that does not depend on the
    equity itself (size, fees and funding are all proportional to it), so the whole run is a
    cumulative product: no loop over trades."""
    n = len(bars)
    o, c = bars.open, bars.close
    comm, slip, size = costs.commission, costs.slippage, costs.size
    idx = np.flatnonzero(frame.entry)
    sides = frame.entry[idx].astype(np.int64)
    keep = np.ones(idx.size, dtype=np.bool_)
    keep[1:] = sides[1:] != sides[:-1]  # the side already held: ignored
    d, s = idx[keep], sides[keep]
    live = d < n - 1  # a decision on the last bar is not filled
    d, s = d[live], s[live]
    k = d.size
    equity = np.ones(n)
    position = np.zeros(n, dtype=np.int8)
    if k == 0:
        return _run_loop(bars, SignalFrame(entry=np.zeros(n, dtype=np.int8)), costs)
    f = d + 1
    fill = taker(s, o[f], slip)
    x_bar = np.append(f[1:], n - 1).astype(np.int64)
    exit_px = taker(-s, np.append(o[f[1:]], c[n - 1]), slip)
    held_to = np.append(f[1:], n)
    u = size / (fill * (1 + comm))  # units per unit of equity at the fill
    # funding per unit held, settled at each close; cum[j] = paid over closes 0..j−1
    paid_at = np.nan_to_num(bars.funding) * c if bars.funding is not None else np.zeros(n)
    cum = np.concatenate([[0.0], np.cumsum(paid_at)])
    fund_rel = s * u * (cum[held_to] - cum[f])
    g = 1 + s * u * (exit_px - fill) - comm * u * (fill + exit_px) - fund_rel
    eq_after = np.cumprod(g)
    eq_before = np.concatenate([[1.0], eq_after[:-1]])
    j = np.arange(f[0], n)
    t = np.searchsorted(f, j, side="right") - 1
    equity[j] = eq_before[t] * (
        1 - comm * u[t] * fill[t] + s[t] * u[t] * (c[j] - fill[t])
        - s[t] * u[t] * (cum[j + 1] - cum[f[t]])
    )  # fmt: skip
    equity[n - 1] = eq_after[-1]
    position[j] = s[t]
    trades = Trades(
        side=s.astype(np.int8), entry_bar=f.astype(np.int64), exit_bar=x_bar, entry_price=fill,
        exit_price=exit_px, units=u * eq_before, sl=np.full(k, np.nan), tp=np.full(k, np.nan),
        reason=["reverse"] * (k - 1) + ["end"], pnl_pct=(g - 1) * 100,
        return_pct=s * (exit_px / fill - 1) * 100, fees=comm * u * (fill + exit_px) * eq_before,
        funding=fund_rel * eq_before, equity_before=eq_before,
    )  # fmt: skip
    return Result(bars.symbol, bars.start_s, bars.interval_s, equity, position, trades, costs)


def _run_loop(bars: Bars, frame: SignalFrame, costs: Costs) -> Result:
    n = len(bars)
    o, h, lo, c = bars.open, bars.high, bars.low, bars.close
    entry = frame.entry
    comm, slip, size = costs.commission, costs.slippage, costs.size
    longs = np.flatnonzero(entry > 0)
    shorts = np.flatnonzero(entry < 0)
    anys = np.flatnonzero(entry != 0)
    exits = np.flatnonzero(frame.exit) if frame.exit is not None else np.empty(0, np.int64)
    funding_bars = (
        np.flatnonzero(np.nan_to_num(bars.funding) != 0) if bars.funding is not None else None
    )
    sl_pct, tp_pct = frame.sl_pct, frame.tp_pct

    def next_at(idx: I64, j: int) -> int:
        k = int(np.searchsorted(idx, j))
        return int(idx[k]) if k < idx.size else n

    cols: dict[str, list[float]] = {k: [] for k in (
        "side", "entry_bar", "exit_bar", "entry_price", "exit_price", "units", "sl", "tp",
        "pnl_pct", "return_pct", "fees", "funding", "equity_before")}  # fmt: skip
    reasons: list[str] = []
    equity = np.empty(n)
    position = np.zeros(n, dtype=np.int8)
    eq = 1.0
    filled = 0  # equity[:filled] is written
    cursor = 0  # the next decision bar to consider
    while True:
        d = next_at(anys, cursor)
        if d + 1 >= n:
            break
        side = int(entry[d])
        f_i = d + 1
        fill = taker(side, o[f_i], slip)
        units = size * eq / (fill * (1 + comm))
        entry_fee = comm * units * fill
        # the autotrader's levels: from the fill, on the tape's tick grid when it knows it
        d_sl, d_tp = plugin.venue_levels(
            side, float(fill), _pct(sl_pct, d), _pct(tp_pct, d), bars.tick_size
        )
        sl = float(d_sl) if d_sl is not None else np.nan
        tp = float(d_tp) if d_tp is not None else np.nan
        # the first decision that ends the trade: the opposite side or an exit flag, at a bar's
        # close (filled at the next open)
        opp = next_at(shorts if side > 0 else longs, f_i)
        ex = next_at(exits, f_i) if exits.size else n
        decided = min(opp, ex)
        # a stop or target inside bars f_i..decided (a stop in bar `decided` precedes the
        # decision at its close)
        watch_to = min(decided + 1, n)
        has_sl, has_tp = bool(np.isfinite(sl)), bool(np.isfinite(tp))
        s_hit = _stop_bar(side, lo, h, sl, tp, f_i, watch_to) if has_sl or has_tp else watch_to
        hit = None
        if s_hit < watch_to:
            x_i = s_hit
            hit = matching.first_exit(
                side, float(o[x_i]), float(h[x_i]), float(lo[x_i]),
                stop=float(sl) if has_sl else None, target=float(tp) if has_tp else None,
                liquidation=None, slippage=slip,
                gap=x_i > f_i,  # the fill bar opens at the fill itself: no gap there
            )  # fmt: skip
            assert hit is not None  # the search found a bar whose range reaches a level
        if hit is not None:
            exit_px, reason = hit.price, str(hit.kind)
            held_to = x_i  # open at the closes of f_i..x_i−1
            cursor = x_i
        elif decided < n - 1:
            x_i = decided + 1
            exit_px = taker(-side, o[x_i], slip)
            reason = "reverse" if decided == opp and decided != ex else "signal"
            held_to = x_i  # open at the closes of f_i..decided
            cursor = decided if reason == "reverse" else decided + 1
        else:
            x_i = n - 1
            exit_px = taker(-side, c[x_i], slip)
            reason = "end"
            held_to = n  # closed at the last close itself
            cursor = n
        # funding over the closes the position was open at
        fund = 0.0
        if funding_bars is not None and bars.funding is not None:
            a = int(np.searchsorted(funding_bars, f_i))
            b = int(np.searchsorted(funding_bars, held_to))
            if b > a:
                fb = funding_bars[a:b]
                fund = float(side * units * np.dot(bars.funding[fb], c[fb]))
        exit_fee = comm * units * exit_px
        gross = side * units * (exit_px - fill)
        eq_before = eq
        eq = eq + gross - entry_fee - exit_fee - fund
        # equity curve: flat until the fill bar, marked to market while open
        equity[filled:f_i] = eq_before
        held = slice(f_i, min(held_to, n))
        equity[held] = eq_before - entry_fee + side * units * (c[held] - fill)
        if funding_bars is not None and bars.funding is not None and fund != 0.0:
            stop = min(held_to, n)
            paid = np.zeros(stop - f_i)
            fb = funding_bars[(funding_bars >= f_i) & (funding_bars < held_to)]
            paid[fb - f_i] = side * units * bars.funding[fb] * c[fb]
            equity[held] -= np.cumsum(paid)
        position[held] = side
        filled = min(held_to, n)  # from here on flat at `eq` (or the next trade's marks)
        if reason == "end":
            equity[n - 1] = eq  # closed at that close, exit fee paid
        for k, v in (
            ("side", side), ("entry_bar", f_i), ("exit_bar", x_i), ("entry_price", fill),
            ("exit_price", exit_px), ("units", units), ("sl", sl), ("tp", tp),
            ("pnl_pct", (eq / eq_before - 1) * 100),
            ("return_pct", side * (exit_px / fill - 1) * 100),
            ("fees", entry_fee + exit_fee), ("funding", fund), ("equity_before", eq_before),
        ):  # fmt: skip
            cols[k].append(float(v))
        reasons.append(reason)
    equity[filled:] = eq
    trades = _trades(cols, reasons)
    return Result(bars.symbol, bars.start_s, bars.interval_s, equity, position, trades, costs)


def _trades(cols: dict[str, list[float]], reasons: list[str]) -> Trades:
    """The trade log from the per-trade columns both engines (signals, plans) collect."""
    return Trades(
        side=np.asarray(cols["side"], dtype=np.int8),
        entry_bar=np.asarray(cols["entry_bar"], dtype=np.int64),
        exit_bar=np.asarray(cols["exit_bar"], dtype=np.int64),
        reason=reasons,
        **{
            k: np.asarray(cols[k])
            for k in (
                "entry_price",
                "exit_price",
                "units",
                "sl",
                "tp",
                "pnl_pct",
                "return_pct",
                "fees",
                "funding",
                "equity_before",
            )
        },
    )


# --- plans: limit entries, leverage, liquidation, trailing ---------------------------------------


def _first_at(x: F, level: float, up: bool, start: int, stop: int) -> int:
    """The first bar in [start, stop) where x ≥ level (up) or x ≤ level, else stop; scanned in
    growing blocks so a short trade costs little."""
    a, block = start, _SEARCH_BLOCK
    while a < stop:
        b = min(stop, a + block)
        m = x[a:b] >= level if up else x[a:b] <= level
        if m.any():
            return a + int(m.argmax())
        a, block = b, block * 2
    return stop


def _d(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def run_plans(bars: Bars, plans: Sequence[OrderPlan], costs: Costs = Costs()) -> Result:
    """Trade `plans` on one coin, one position at a time (a plan decided while one is pending or
    open is skipped). Per plan, from the bar after its decision:
    - entries: each limit order marketable at that bar's open fills there as a taker (slipped),
      the others as makers at their price in the first bar whose range reaches it, until the
      plan expires (`expire_s` after that open) or the position closes;
    - the position (average entry of what filled, matching.apply_fill) is closed by the first
      of its stop, its liquidation price (matching.liquidation_price of the average entry and
      the leverage) and its take-profit, bar by bar through matching.first_exit (the paper
      venue's rule: the nearer of stop and liquidation first, a gap fills at the open, the
      stop when a bar reaches the stop and the target, a liquidation at its price); a
      take-profit is not taken in the bar an entry filled in (the order inside a bar is
      unknown: assume the worse);
    - the trailing ladder (monitor.trailing_update) at each close on the best price since the
      first fill moves the stop from the next bar on;
    - funding at each settlement while open (matching.funding_fee on the close);
    - fees: matching.fee, maker or taker."""
    n = len(bars)
    o, h, lo, c = bars.open, bars.high, bars.low, bars.close
    t_open = bars.start_s
    comm, maker, slip = _d(costs.commission), _d(costs.maker), _d(costs.slippage)
    funding_bars = (
        np.flatnonzero(np.nan_to_num(bars.funding) != 0)
        if bars.funding is not None
        else np.empty(0, np.int64)
    )
    cols: dict[str, list[float]] = {k: [] for k in (
        "side", "entry_bar", "exit_bar", "entry_price", "exit_price", "units", "sl", "tp",
        "pnl_pct", "return_pct", "fees", "funding", "equity_before")}  # fmt: skip
    reasons: list[str] = []
    equity = np.empty(n)
    position = np.zeros(n, dtype=np.int8)
    eq = 1.0
    filled_to = 0  # equity[:filled_to] is written
    free_from = 0  # the first decision bar a new plan may have
    for plan in sorted(plans, key=lambda p: p.bar):
        d = plan.bar
        if d < free_from:
            continue
        f = d + 1
        if f >= n:
            break
        side = int(plan.side)
        held = Side.BUY if side > 0 else Side.SELL
        direction = "long" if side > 0 else "short"
        expire = int(np.searchsorted(t_open, t_open[f] + plan.expire_s, side="left"))
        expire = min(max(expire, f + 1), n)
        # when each entry order would fill (ignoring the exit; orders after it are cancelled)
        fills: list[tuple[int, float, float, Decimal]] = []  # (bar, price, qty, fee rate)
        for price, qpe in zip(plan.prices.tolist(), plan.qty_per_equity.tolist(), strict=True):
            qty = qpe * eq
            if qty <= 0:
                continue
            if matching.marketable(held, _d(price), _d(o[f])):
                px = float(matching.taker_price(held, _d(o[f]), slip))
                fills.append((f, px, qty, comm))
                continue
            j = (
                _first_at(lo, price, False, f, expire)
                if side > 0
                else _first_at(h, price, True, f, expire)
            )
            if j < expire:
                fills.append((j, price, qty, maker))
        if not fills:
            free_from = expire  # the plan expired unfilled: it held the coin until then
            continue
        fills.sort(key=lambda x: x[0])
        first_bar = fills[0][0]
        size, avg = Decimal(0), Decimal(0)
        fees = Decimal(0)
        fund = 0.0
        stop = float(plan.stop_loss)
        tp = float(plan.take_profit)
        stop_moved = False
        eq_before = eq
        curve_from = first_bar  # equity marks written from here
        marks_base = eq_before  # equity before this trade's open PnL at the current segment
        k = 0
        cur = first_bar
        reason = "end"
        exit_bar = n - 1
        exit_px = float(c[n - 1])
        best = -math.inf if side > 0 else math.inf  # best price since the first fill
        fill_bar = -1
        while True:
            while k < len(fills) and fills[k][0] == cur:  # the entries filling in this bar
                _, px, qty, rate = fills[k]
                ch = matching.apply_fill(None if size == 0 else held, size, avg, held,
                                         _d(qty), _d(px))  # fmt: skip
                size, avg = ch.size, ch.avg_price
                fees += matching.fee(_d(qty), _d(px), rate)
                fill_bar = cur
                k += 1
            next_fill = fills[k][0] if k < len(fills) and fills[k][0] < expire else n
            liq = float(matching.liquidation_price(held, avg, _d(plan.leverage)))
            # the nearer of stop and liquidation is reached first on the way
            nearer, _ = matching.adverse_level(side, stop, liq)
            assert nearer is not None
            fl_avg = float(avg)
            # the next trailing step: the first bar whose best price reaches its trigger
            step_bar = n
            if plan.trailing:
                reached = [
                    s for s, (trig, _) in enumerate(plan.trailing)
                    if trailing.profit_pct(direction, fl_avg, best, plan.leverage,
                                           plan.trailing_basis) >= trig
                ] if math.isfinite(best) else []  # fmt: skip
                nxt = (reached[-1] + 1) if reached else 0
                if nxt < len(plan.trailing):
                    lock = plan.trailing[nxt][0]
                    level = trailing.lock_price(
                        direction, fl_avg, lock, plan.leverage, plan.trailing_basis
                    )
                    step_bar = (
                        _first_at(h, level, True, cur, n) if side > 0
                        else _first_at(lo, level, False, cur, n)
                    )  # fmt: skip
            seg_end = min(next_fill, step_bar + 1, n)
            tp_from = cur + 1 if fill_bar == cur else cur
            if side > 0:
                hit = min(_first_at(lo, nearer, False, cur, seg_end),
                          _first_at(h, tp, True, tp_from, seg_end))  # fmt: skip
            else:
                hit = min(_first_at(h, nearer, True, cur, seg_end),
                          _first_at(lo, tp, False, tp_from, seg_end))  # fmt: skip
            # best price over the bars of this segment before the exit (for the next steps)
            seg_stop = min(hit + 1, seg_end)
            if seg_stop > cur:
                best = (max(best, float(h[cur:seg_stop].max())) if side > 0
                        else min(best, float(lo[cur:seg_stop].min())))  # fmt: skip
            # funding at the settlements of closes cur..(exit or segment end) − 1
            fb = funding_bars[(funding_bars >= cur) & (funding_bars < min(hit, seg_end))]
            assert bars.funding is not None or fb.size == 0
            seg_fund = 0.0
            if fb.size and bars.funding is not None:
                seg_fund = sum(
                    float(matching.funding_fee(held, size, _d(c[j]), _d(bars.funding[j])))
                    for j in fb.tolist()
                )
            # equity marks of the closes in this segment (before the exit bar)
            marks = slice(cur, min(hit, seg_end))
            paid = np.zeros(marks.stop - marks.start)
            if fb.size and bars.funding is not None:
                for j in fb.tolist():
                    paid[j - marks.start :] += float(
                        matching.funding_fee(held, size, _d(c[j]), _d(bars.funding[j]))
                    )
            equity[marks] = (
                marks_base - float(fees) - fund + side * float(size) * (c[marks] - fl_avg) - paid
            )
            position[marks] = side
            fund += seg_fund
            if hit < seg_end:
                exit_bar = hit
                fired = matching.first_exit(
                    side, float(o[hit]), float(h[hit]), float(lo[hit]), stop=stop,
                    target=tp if hit >= tp_from else None, liquidation=liq,
                    slippage=float(slip),
                    gap=hit > fill_bar,  # the fill bar's open is before the fill: no gap there
                )  # fmt: skip
                assert fired is not None  # the search found a bar reaching a level
                exit_px = fired.price
                reason = str(fired.kind)
                if reason == "stop_loss" and stop_moved:
                    reason = "trailing_stop"
                fees += matching.fee(size, _d(exit_px), comm)
                break
            if seg_end >= n:
                exit_bar = n - 1
                exit_px = float(matching.taker_price(held.opposite, _d(c[n - 1]), slip))
                reason = "end"
                fees += matching.fee(size, _d(exit_px), comm)
                break
            if seg_end == step_bar + 1 and step_bar < next_fill:
                j = step_bar  # the ladder at this close, on the best since the first fill
                best_pct = trailing.profit_pct(direction, fl_avg, best, 1.0, "price")
                upd = monitor.trailing_update(
                    direction, fl_avg, float(c[j]), best_pct, stop, list(plan.trailing),
                    plan.leverage, plan.trailing_basis, plan.tick,
                )  # fmt: skip
                if upd is not None:
                    stop = float(upd.stop)
                    stop_moved = True
            cur = seg_end
        # realise: the whole position at exit_px
        gross = float(matching.realised_pnl(held, size, avg, _d(exit_px)))
        eq = eq_before + gross - float(fees) - fund
        equity[filled_to:curve_from] = eq_before
        equity[exit_bar] = eq
        if reason == "end":
            equity[n - 1] = eq
        position[exit_bar] = 0 if reason != "end" else side
        filled_to = exit_bar + 1
        free_from = exit_bar  # a decision at the exit bar's close may open the next
        for key, v in (
            ("side", side), ("entry_bar", first_bar), ("exit_bar", exit_bar),
            ("entry_price", float(avg)), ("exit_price", exit_px), ("units", float(size)),
            ("sl", stop), ("tp", tp), ("pnl_pct", (eq / eq_before - 1) * 100),
            ("return_pct", side * (exit_px / float(avg) - 1) * 100), ("fees", float(fees)),
            ("funding", fund), ("equity_before", eq_before),
        ):  # fmt: skip
            cols[key].append(float(v))
        reasons.append(reason)
    equity[filled_to:] = eq
    trades = _trades(cols, reasons)
    return Result(bars.symbol, bars.start_s, bars.interval_s, equity, position, trades, costs)
