"""`liquidation_hunter`: the strategy of SPEC §4 as a plug-in, on the services' own functions.

At a bar's close, for one coin:
1. the ranker's trigger, both modes, the active one deciding (quantcore.math.trigger.evaluate
   on the windows the ranker reads before the bar), at the bars whose measures pass the fixed
   numbers in one direction or the other (math.trigger.fires; the coin mode's thresholds are
   never below them); the heatmap refreshes read are those bars' (as of each bar's close:
   the newest refresh stamped at or before it);
2. the cluster scanner's view of each timeframe (quantcore.math.clusters.row_targets) and its
   typical cluster rule when history is short (clusters.snapshot_typical);
3. the ranker's evaluation (quantcore.math.universe.evaluate: imbalance, clusters, score) —
   a neutral coin, a coin without a target or below `min_score` does not trade (one coin at a
   time has no top-N: `min_score` stands in for that cut);
4. the trigger must fire in the bias direction, outside the ranker's cooldown (no second
   signal for the coin in the same direction within SIGNAL_COOLDOWN_S);
5. the market view (quantcore.trading.view.market_view: target, next opposite cluster, the
   coin's max adverse wick from quantcore.math.wicks) and the one trade decision
   (quantcore.trading.decision.decide), sized as the autotrader sizes it on a nominal
   account; a refused plan is no signal.
The plan (entry ladder, stop, take-profit, leverage, the trailing ladder) goes to the
backtest engine, which matches it with quantcore.math.matching and trails it with
quantcore.trading.monitor. Defaults are the live settings (quantcore.config.Settings).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, field_validator

from quantcore.config import Settings, parse_trailing_ladder
from quantcore.math import clusters, universe, wicks
from quantcore.math import trigger as tm
from quantcore.math.ranking import ScoreWeights
from quantcore.math.spikes import HOUR_MINUTES, rolling_pct_changes, volume_ratio_history
from quantcore.model.market import TIMEFRAME_DURATION
from quantcore.model.plan import AccountState, InstrumentRules, Refusal
from quantcore.strategies.base import Bars, OrderPlan, SignalFrame, Strategy, StrategyParams
from quantcore.trading import view
from quantcore.trading.decision import DecisionSettings, decide

F = NDArray[np.float64]
I64 = NDArray[np.int64]
NOMINAL_EQUITY = 1_000_000.0  # the account the plan is sized on; the engine scales it
TRIGGER_BLOCK = 256  # bars whose trigger windows are evaluated at once


def _d(name: str) -> Any:
    """The live default of a setting."""
    return Settings.model_fields[name].default


class LiquidationHunterParams(StrategyParams):
    merge_pct: float = Field(_d("cluster_merge_pct"), gt=0, le=10, description="cluster merge, %")
    min_score: float = Field(0.0, ge=0, le=500, description="lowest ranker score that trades")
    w_imbalance: float = Field(_d("rank_weight_imbalance"), ge=0, le=1000)
    w_cluster: float = Field(_d("rank_weight_cluster"), ge=0, le=100)
    w_success: float = Field(_d("rank_weight_success"), ge=0, le=1000)
    cluster_cap_pct: float = Field(_d("rank_cluster_cap_pct"), gt=0, le=10_000)
    trigger_mode: Literal["coin", "fixed"] = _d("trigger_mode")
    trigger_oi_pct: float = Field(_d("trigger_oi_pct"), ge=0, le=100)
    trigger_volume_ratio: float = Field(_d("trigger_volume_ratio"), ge=0, le=100)
    trigger_move_pct: float = Field(_d("trigger_move_pct"), ge=0, le=50)
    trigger_percentile: float = Field(_d("trigger_percentile"), gt=0, lt=100)
    trigger_history_min: int = Field(_d("trigger_history_min"), ge=61, le=10_080)
    trigger_min_samples: int = Field(_d("trigger_min_samples"), ge=1)
    entry_mode: Literal["conservative", "aggressive", "scaled"] = _d("entry_mode")
    entry_beyond_pct: float = Field(_d("entry_beyond_pct"), ge=0, le=50)
    ladder_orders: int = Field(_d("ladder_orders"), ge=1, le=20)
    ladder_sizing: Literal["flat", "increasing", "decreasing"] = _d("ladder_sizing")
    ladder_range_pct: float = Field(_d("ladder_range_pct"), gt=0, le=50)
    stop_beyond_pct: float = Field(_d("stop_beyond_pct"), ge=0, le=50)
    stop_default_wick_pct: float = Field(_d("stop_default_wick_pct"), gt=0, le=50)
    take_profit_front_run_pct: float = Field(_d("take_profit_front_run_pct"), ge=0, le=50)
    min_reward_risk: float = Field(_d("min_reward_risk"), ge=0, le=100)
    risk_per_trade_pct: float = Field(_d("risk_per_trade_pct"), gt=0, le=10)
    leverage: float = Field(_d("trade_leverage"), ge=1, le=100)
    max_trade_equity_pct: float = Field(_d("max_trade_equity_pct"), gt=0, le=100)
    entry_timeout_s: float = Field(_d("entry_timeout_s"), gt=0, le=7 * 86_400)
    trailing_ladder: str = _d("trailing_ladder")
    trailing_basis: Literal["price", "margin"] = _d("trailing_basis")
    cooldown_s: float = Field(_d("signal_cooldown_s"), ge=0, le=7 * 86_400)
    pattern_update_s: float = Field(_d("pattern_update_interval_s"), gt=0, le=86_400)
    wick_candle_min: int = Field(_d("wick_candle_min"), ge=1, le=1440)
    wick_window_max_d: float = Field(_d("wick_window_max_d"), gt=0, le=366)

    @field_validator("trailing_ladder")
    @classmethod
    def _ladder(cls, value: str) -> str:
        parse_trailing_ladder(value)
        return value

    def decision(self) -> DecisionSettings:
        return DecisionSettings(
            entry_mode=self.entry_mode, entry_beyond_pct=self.entry_beyond_pct,
            ladder_orders=self.ladder_orders, ladder_sizing=self.ladder_sizing,
            ladder_range_pct=self.ladder_range_pct, stop_beyond_pct=self.stop_beyond_pct,
            stop_default_wick_pct=self.stop_default_wick_pct,
            take_profit_front_run_pct=self.take_profit_front_run_pct,
            min_reward_risk=self.min_reward_risk, risk_per_trade_pct=self.risk_per_trade_pct,
            leverage=self.leverage, max_trade_equity_pct=self.max_trade_equity_pct,
        )  # fmt: skip

    @property
    def floors(self) -> tuple[float, float, float]:
        return (self.trigger_oi_pct, self.trigger_volume_ratio, self.trigger_move_pct)


def _shifted(changes: F, n: int, minutes: int) -> F:
    """Per-bar series from rolling changes (the change ending at bar i at index i)."""
    out = np.full(n, np.nan)
    out[minutes:] = changes
    return out


class LiquidationHunter(Strategy[LiquidationHunterParams]):
    name = "liquidation_hunter"
    version = "1"
    params_model = LiquidationHunterParams
    needs = frozenset({"open_interest", "heatmap"})
    description = "SPEC §4: hunt the heavy side's largest cluster on the ranker's trigger"

    def __init__(self, params: LiquidationHunterParams) -> None:
        super().__init__(params)
        self._wicks: dict[tuple[str, str, int], float | None] = {}

    @property
    def warmup(self) -> int:
        """The ranker's trigger reads this many minutes before a bar (its coin history)."""
        p = self.params
        return max(p.trigger_history_min, HOUR_MINUTES + 1, tm.OI_MINUTES + 1)

    # --- 1. the trigger -----------------------------------------------------------------------

    def quote_volume(self, bars: Bars) -> F:
        """The ranker's candle volume: quote volume (volume × close where no turnover)."""
        out: F = bars.volume * bars.close
        return out

    def prefilter(self, bars: Bars) -> I64:
        """Bars where the trigger's measures pass the fixed numbers in one direction or the
        other: the coin mode's thresholds are never below them, so no firing bar is missed."""
        n = len(bars)
        if n <= HOUR_MINUTES or bars.open_interest is None:
            return np.empty(0, np.int64)
        oi = _shifted(rolling_pct_changes(bars.open_interest, tm.OI_MINUTES), n, tm.OI_MINUTES)
        move = _shifted(rolling_pct_changes(bars.close, tm.MOVE_MINUTES), n, tm.MOVE_MINUTES)
        vr = np.full(n, np.nan)
        vr[HOUR_MINUTES - 1 :] = volume_ratio_history(self.quote_volume(bars))
        fixed = tm.Thresholds(*(np.full(n, f) for f in self.params.floors))
        either = tm.fires(oi, vr, move, np.full(n, "long"), fixed) | tm.fires(
            oi, vr, move, np.full(n, "short"), fixed
        )
        return np.flatnonzero(either).astype(np.int64)

    def trigger(
        self, bars: Bars, since: int = 0
    ) -> tuple[I64, NDArray[np.bool_], NDArray[np.bool_]]:
        """(bars, fires long, fires short): the ranker's trigger (quantcore.math.trigger.evaluate,
        both modes, the active one deciding) at each prefiltered bar, on the windows the ranker
        reads before it (candle_minutes of closes and quote volume, oi_minutes of open
        interest; NaN before the tape starts), evaluated many bars at once (rows)."""
        p = self.params
        idx = self.prefilter(bars)
        idx = idx[idx >= since]
        long_ok = np.zeros(idx.size, dtype=np.bool_)
        short_ok = np.zeros(idx.size, dtype=np.bool_)
        if idx.size == 0:
            return idx, long_ok, short_ok
        assert bars.open_interest is not None
        cw = max(p.trigger_history_min, HOUR_MINUTES + 1)
        ow = max(p.trigger_history_min, tm.OI_MINUTES + 1)

        def windows(x: F, width: int, rows: I64) -> F:
            padded = np.concatenate([np.full(width - 1, np.nan), x])
            out: F = np.lib.stride_tricks.sliding_window_view(padded, width)[rows]
            return out

        vol = self.quote_volume(bars)
        for a in range(0, idx.size, TRIGGER_BLOCK):
            rows = idx[a : a + TRIGGER_BLOCK]
            ev = tm.evaluate(
                windows(bars.open_interest, ow, rows), windows(vol, cw, rows),
                windows(bars.close, cw, rows), p.floors, p.trigger_percentile,
                p.trigger_min_samples,
            )  # fmt: skip
            long_ok[a : a + rows.size] = ev.fires(p.trigger_mode, ["long"] * rows.size)
            short_ok[a : a + rows.size] = ev.fires(p.trigger_mode, ["short"] * rows.size)
        keep = long_ok | short_ok
        return idx[keep], long_ok[keep], short_ok[keep]

    def candidates(self, bars: Bars, since: int = 0) -> I64:
        """Bars (from `since` on) where the ranker's trigger fires in one direction or the other."""
        return self.trigger(bars, since)[0]

    def heatmap_refreshes(self, bars: Bars, since: int = 0) -> I64 | None:
        if bars.heatmap is None:
            return np.empty(0, np.int64)
        k = bars.heatmap.indices_asof(bars.close_s[self.candidates(bars, since)])
        out: I64 = np.unique(k[k >= 0])
        return out

    def wick_pct(self, bars: Bars, i: int, timeframe: str, direction: str) -> float | None:
        """The coin's max adverse wick over the timeframe's window (capped), on candles of
        wick_candle_min minutes (quantcore.math.wicks), as of the cluster scanner's latest
        pattern update before bar i's close (every pattern_update_s): what the ranker reads."""
        p = self.params
        close_i = int(bars.start_s[i]) + bars.interval_s  # (bars.close_s would copy them all)
        as_of = close_i // int(p.pattern_update_s) * int(p.pattern_update_s)
        key = (timeframe, direction, as_of)
        if key in self._wicks:
            return self._wicks[key]
        window_s = min(TIMEFRAME_DURATION[timeframe].total_seconds(), p.wick_window_max_d * 86_400)
        width = p.wick_candle_min * 60
        a = int(np.searchsorted(bars.start_s, (as_of - window_s) // width * width))
        # the bars closed by then
        b = int(np.searchsorted(bars.start_s, as_of - bars.interval_s, side="right"))
        out = None
        if a < b:
            bucket = bars.start_s[a:b] // width
            first = np.flatnonzero(np.append(True, bucket[1:] != bucket[:-1]))
            last = np.append(first[1:], bucket.size) - 1
            w = wicks.wick_stats(
                bars.open[a:b][first], np.maximum.reduceat(bars.high[a:b], first),
                np.minimum.reduceat(bars.low[a:b], first), bars.close[a:b][last],
            )  # fmt: skip
            out = w.max_down_pct if direction == "long" else w.max_up_pct
        self._wicks[key] = out
        return out

    def plan_at(
        self, bars: Bars, i: int, prices: F, values: F, refreshed_s: int, fires_long: bool,
        fires_short: bool,
    ) -> OrderPlan | str:  # fmt: skip
        """The plan decided at bar i's close on these levels and the trigger's verdicts at that
        bar, or why there is none."""
        p = self.params
        hm = bars.heatmap
        assert hm is not None
        sym = bars.symbol
        price = float(bars.close[i])
        n_tf = prices.shape[0]
        # the cluster scanner: each timeframe's target → the coin's typical cluster
        c, _, target = clusters.row_targets(prices, values, np.full(n_tf, price), p.merge_pct)
        tv = np.where(target >= 0, c.value[np.maximum(target, 0)] if len(c) else 0.0, np.nan)
        typical = clusters.snapshot_typical(tv[None, :])
        # the ranker's evaluation (no success history on a tape: 0, as the ranker's NaN)
        ev = universe.evaluate(
            [sym], prices[None], values[None], [price], np.ones(n_tf), typical,
            np.zeros((1, n_tf)), p.merge_pct,
            ScoreWeights(p.w_imbalance, p.w_cluster, p.w_success, p.cluster_cap_pct),
        )  # fmt: skip
        t = int(ev.target_timeframe[0])
        if ev.direction[0] == "neutral" or t < 0 or not np.isfinite(ev.score[0]):
            return "no bias or no target"
        if float(ev.score[0]) < p.min_score:
            return "score below min_score"
        direction: Literal["long", "short"] = "long" if ev.direction[0] == "long" else "short"
        if not (fires_long if direction == "long" else fires_short):
            return "trigger not in the bias direction"
        tf = hm.timeframes[t] if hm.timeframes else "1y"
        mv = view.market_view(
            symbol=sym, direction=direction, price=price,
            target_low=float(ev.target_low[0]), target_high=float(ev.target_high[0]),
            target_value=float(ev.target_value[0]), tf_prices=prices[t], tf_values=values[t],
            merge_pct=p.merge_pct, wick_pct=self.wick_pct(bars, i, tf, direction),
            data_time=datetime.fromtimestamp(refreshed_s, UTC), timeframe=tf,
        )  # fmt: skip
        tick = bars.tick_size or 10.0 ** (math.floor(math.log10(price)) - 5)
        step = 10.0 ** (math.floor(math.log10(NOMINAL_EQUITY / price)) - 8)
        plan = decide(
            mv, p.decision(), AccountState(equity=NOMINAL_EQUITY),
            InstrumentRules(tick_size=tick, qty_step=step, min_qty=0.0),
        )  # fmt: skip
        if isinstance(plan, Refusal):
            return f"refused: {plan.code}"
        return OrderPlan(
            bar=i, side=1 if direction == "long" else -1,
            prices=np.array([float(o.price) for o in plan.orders]),
            qty_per_equity=np.array([float(o.qty or 0) for o in plan.orders]) / NOMINAL_EQUITY,
            stop_loss=float(plan.stop_loss), take_profit=float(plan.take_profit),
            leverage=float(plan.leverage), expire_s=p.entry_timeout_s,
            trailing=tuple(parse_trailing_ladder(p.trailing_ladder)),
            trailing_basis=p.trailing_basis, tick=tick,
        )  # fmt: skip

    def signals(self, bars: Bars) -> SignalFrame:
        if bars.open_interest is None:
            raise ValueError(f"{self.name} needs open interest; the tape of {bars.symbol} has none")
        hm = bars.heatmap
        if hm is None or not hm.timeframes:
            raise ValueError(
                f"{self.name} needs heatmap levels per timeframe; the tape of {bars.symbol} has none"
            )
        p = self.params
        n = len(bars)
        entry = np.zeros(n, dtype=np.int8)
        sl = np.full(n, np.nan)
        tp = np.full(n, np.nan)
        plans: list[OrderPlan] = []
        skipped: dict[str, int] = {}
        cands, long_ok, short_ok = self.trigger(bars)
        ks = hm.indices_asof(bars.close_s[cands])
        self._wicks = {}
        last_signal: dict[int, float | None] = {1: None, -1: None}  # the last plan each way
        for i, k, lg, sh in zip(
            cands.tolist(), ks.tolist(), long_ok.tolist(), short_ok.tolist(), strict=True
        ):
            if k < 0:
                continue
            # the ranker's cooldown (the one rule, math.trigger.in_cooldown); where every
            # direction the trigger fires in is cooling down, no signal can come of the bar
            at = int(bars.start_s[i]) + bars.interval_s
            lg = lg and not tm.in_cooldown(last_signal[1], at, p.cooldown_s)
            sh = sh and not tm.in_cooldown(last_signal[-1], at, p.cooldown_s)
            if not (lg or sh):
                skipped["cooldown"] = skipped.get("cooldown", 0) + 1
                continue
            prices, values = hm.levels(k)
            got = self.plan_at(bars, i, prices, values, int(hm.refreshed_s[k]), lg, sh)
            if isinstance(got, str):
                skipped[got] = skipped.get(got, 0) + 1
                continue
            plans.append(got)
            last_signal[got.side] = at
            entry[i] = got.side
            ref = float(bars.close[i])
            sl[i] = abs(got.stop_loss / ref - 1) * 100
            tp[i] = abs(got.take_profit / ref - 1) * 100
        why = ", ".join(f"{v} {k}" for k, v in sorted(skipped.items()))
        return SignalFrame(
            entry=entry, sl_pct=sl, tp_pct=tp, plans=tuple(plans),
            reason=f"{len(plans)} plans of {cands.size} trigger candidates" + (f" ({why})" if why else ""),
        )  # fmt: skip
