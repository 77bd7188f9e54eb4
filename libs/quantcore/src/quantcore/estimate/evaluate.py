"""`quant heatmap-eval`: the estimate against the simulator's ground truth.

The simulator knows every leveraged position; the model is given only what the simulator's
public endpoints serve (the same functions answer /v5/market/kline and
/v5/market/open-interest): 4-hour candles for the year before the 1-minute history, 5-minute
candles after, and open interest at each candle's end. (The simulator's kline endpoint
serves intervals up to 6 h from its 1-minute ring only, so the 4-hour candles of the deep
past are read from its 4-hour ring, which serves 12 h and longer candles and the 4-hour open
interest: what a real venue's 4-hour klines give for a year.) For the 5-minute intervals the
taker flow is the trade stream's (`publicTrade`) taker-buy share of each 5 minutes — what the
market collector, listening since the 1-minute history began, would have summed — and the
account ratio is /v5/market/account-ratio's, the risk-limit tiers /v5/market/risk-limit's.
No hidden parameter of the simulator
(leverage tiers, holding times, its long/short split, its level grid) is read; the model's
leverage mix is its own default setting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from quantcore.estimate.hit_rate import REALISED_TOP
from quantcore.math import heatmap_eval as he
from quantcore.math import liqmodel as lm
from quantcore.model.market import TIMEFRAMES
from quantcore.sim import klines as kl
from quantcore.sim.market import Market, MarketConfig
from quantcore.sim.rings import CLOSE, HIGH, LOW, OI, OPEN
from quantcore.sim.universe import CoinSpec, risk_tiers

F = NDArray[np.float64]
RECENT = "5"  # Bybit interval of the recent candles (minutes)
OLD_S = 14_400  # 4-hour candles before them


def _flow_share(market: Market, c: int, start: F, width: F) -> F:
    """The long share of each interval's new notional as the market's public data shows it
    (liqmodel.long_share): the trade stream's taker-buy share (what the market collector,
    listening since the 1-minute history began, would have summed) and the account ratio at
    the interval's end (/v5/market/account-ratio), for the 5-minute intervals; the venue's
    4-hour past has neither (NaN: unknown)."""
    n = start.size
    if n == 0:
        return np.empty(0)
    fine = width == 300.0
    buy = np.full(n, np.nan)
    ratio = np.full(n, np.nan)
    if fine.any():
        lo, hi = int(start[fine].min()), int(start[fine].max())
        t, share = market.taker_history(c, lo, hi)
        at = dict(zip(t.tolist(), share.tolist(), strict=True))
        buy[fine] = [at.get(int(x), np.nan) for x in start[fine]]
        rt, rv, _ = market.account_ratio(c, 300, lo + 300, hi + 300, 10**7)
        ends = dict(zip(rt.tolist(), rv.tolist(), strict=True))
        ratio[fine] = [ends.get(int(x) + 300, np.nan) for x in start[fine]]
    return lm.long_share(buy, 1.0 - buy, ratio)


def sim_tiers(coins: list[CoinSpec]) -> lm.RiskTiers:
    """The coins' risk-limit ladders as /v5/market/risk-limit serves them."""
    ladders = [risk_tiers(c) for c in coins]
    k = max((len(x) for x in ladders), default=1)
    lim, mmr, lev = (np.full((len(coins), k), np.nan) for _ in range(3))
    for i, ladder in enumerate(ladders):
        for j, t in enumerate(ladder):
            lim[i, j], mmr[i, j], lev[i, j] = t.limit_usd, t.mmr, t.max_leverage
    return lm.RiskTiers(limit=lim, mmr=mmr, max_leverage=lev)


def market_inputs(
    market: Market, coins: list[int] | None = None, flow: bool = True
) -> lm.ModelInputs:
    """The model's inputs from the market's public candles and open interest (and, with
    `flow`, its taker flow and account ratio), as of now."""
    idx = list(range(market.n)) if coins is None else coins
    now = market.now
    rows: list[tuple[F, F, F, F, F, F, F, F]] = []
    for c in idx:
        s5, v5 = market.klines(c, RECENT, None, None, 10**7)
        first5 = int(s5[0]) if s5.size else now
        s4, v4 = kl.candles(market.coarse, c, OLD_S, now, None, first5 - 1, 10**7)
        keep4 = s4 + 14_400 <= first5
        s4, v4 = s4[keep4], v4[:, keep4]
        start = np.concatenate((s4, s5)).astype(np.float64)
        width = np.concatenate((np.full(s4.size, 14_400.0), np.full(s5.size, 300.0)))
        vals = np.concatenate((v4, v5), axis=1)
        end = start + width
        done = end <= now  # the open candle is not a finished interval
        oi_usd = vals[OI] * vals[CLOSE]
        share = (
            _flow_share(market, c, start[done], width[done]) if flow
            else np.full(int(done.sum()), np.nan)
        )  # fmt: skip
        rows.append(
            (end[done], width[done], vals[OPEN][done], vals[HIGH][done], vals[LOW][done],
             vals[CLOSE][done], oi_usd[done], share)
        )  # fmt: skip
    n = max((r[0].size for r in rows), default=0)

    def pad(k: int) -> F:
        out = np.full((len(rows), n), np.nan)
        for i, r in enumerate(rows):
            out[i, n - r[k].size :] = r[k]  # right-aligned: the newest in the last column
        return out

    end = pad(0)
    return lm.ModelInputs(
        end=np.where(np.isfinite(end), end, 0.0), width=np.where(np.isfinite(end), pad(1), 0.0),
        open=pad(2), high=pad(3), low=pad(4), close=pad(5), oi_usd=pad(6),
        long_share=pad(7),
        price=np.asarray(market.last_price[idx], dtype=np.float64), now=float(now),
        tiers=sim_tiers([market.coins[c] for c in idx]),
        max_leverage=np.array([market.coins[c].max_leverage for c in idx], dtype=np.float64),
    )  # fmt: skip


@dataclass(frozen=True)
class EvalResult:
    seed: int
    coins: int
    model: he.Summary
    naive: he.Summary
    by_group: dict[str, he.Summary]  # model, per coin group (majors / alts)
    by_timeframe: dict[str, he.Summary]
    realised_model: he.Realised | None = None  # against the liquidations of the hours after
    realised_naive: he.Realised | None = None
    realised_hours: float = 0.0


def evaluate(
    seed: int, coins: int = 60, history_days: float = 3.0, live_hours: float = 0.0,
    params: lm.ModelParams | None = None, top: int = 5, tol_pct: float = 1.0,
    start: int = 1_780_000_000, realised_hours: float = 0.0,
) -> EvalResult:  # fmt: skip
    """Build the simulated market of `seed`, estimate every coin × timeframe, score both the
    model and the naive baseline against the market's true levels; then, with
    `realised_hours`, run the market on and score both against the liquidations that happen.
    (The market runs on in 10-second steps, as its history was built, not 1-second ones.)"""
    market = Market(
        MarketConfig(
            seed=seed, coins=coins, history_days=history_days, start=start, step_s=10, block_s=300
        )
    )
    if live_hours > 0:
        market.advance(int(live_hours * 3600))
    res = evaluate_market(market, seed, params, top, tol_pct)
    if realised_hours <= 0:
        return res
    inp = market_inputs(market)
    grid = lm.estimate(inp, params or lm.ModelParams())
    base = lm.naive(inp.price, market.tickers().oi_usd, params or lm.ModelParams())
    t0 = market.now
    events = market.advance(int(realised_hours * 3600))
    scores = {"model": he.Realised(0, 0, 0.0, 0.0), "naive": he.Realised(0, 0, 0.0, 0.0)}
    for c in range(market.n):
        starts, candles = market.klines(c, "1", t0, market.now, 10**6)
        mine = [e for e in events if e.coin == c]
        lt = np.array([e.time_ms / 1000.0 for e in mine])
        lp = np.array([e.price for e in mine])
        lv = np.array([e.value_usd for e in mine])
        for name, g in (("model", grid), ("naive", base)):
            ep, ev = g.levels(c, len(TIMEFRAMES) - 1)
            pk = he.peaks(
                ep,
                ev,
                float(inp.price[c]),
                band=(params or lm.ModelParams()).band,
                top=REALISED_TOP,
            )
            at = he.reach_times(pk.price, starts, candles[LOW], candles[HIGH])
            scores[name] = scores[name] + he.realised(pk.price, at, lt, lp, lv, tol_pct=tol_pct)
    return replace(
        res, realised_model=scores["model"], realised_naive=scores["naive"],
        realised_hours=realised_hours,
    )  # fmt: skip


def evaluate_market(
    market: Market, seed: int, params: lm.ModelParams | None = None, top: int = 5,
    tol_pct: float = 1.0,
) -> EvalResult:  # fmt: skip
    params = params or lm.ModelParams()
    inp = market_inputs(market)
    grid = lm.estimate(inp, params)
    oi_now = market.tickers().oi_usd
    base = lm.naive(inp.price, oi_now, params)
    scores: dict[str, list[he.RowScore]] = {"model": [], "naive": []}
    groups: dict[str, list[he.RowScore]] = {"majors": [], "alts": []}
    per_tf: dict[str, list[he.RowScore]] = {tf: [] for tf in TIMEFRAMES}
    kw = {"band": params.band, "top": top, "tol_pct": tol_pct}
    for c in range(market.n):
        price = float(inp.price[c])
        group = "majors" if market.coins[c].is_major else "alts"
        for t, tf in enumerate(TIMEFRAMES):
            truth = market.levels(c, tf)
            for name, g in (("model", grid), ("naive", base)):
                ep, ev = g.levels(c, t)
                s = he.score_row(ep, ev, truth.price, truth.value, price, **kw)  # type: ignore[arg-type]
                scores[name].append(s)
                if name == "model":
                    groups[group].append(s)
                    per_tf[tf].append(s)
    return EvalResult(
        seed=seed, coins=market.n,
        model=he.summarise(scores["model"]), naive=he.summarise(scores["naive"]),
        by_group={k: he.summarise(v) for k, v in groups.items() if v},
        by_timeframe={k: he.summarise(v) for k, v in per_tf.items()},
    )  # fmt: skip


def fmt(s: he.Summary) -> str:
    def f(x: float, d: int = 1) -> str:
        return "n/a" if math.isnan(x) else f"{x:.{d}f}"

    return (
        f"precision {f(s.precision_pct)} %  recall {f(s.recall_pct)} %  F1 {f(s.f1_pct)} %  "
        f"rank corr {f(s.rank_corr, 2)}  largest-cluster price err {f(s.largest_err_pct, 2)} %"
        f"  ({s.rows} coin x timeframe)"
    )


def fmt_realised(r: he.Realised | None) -> str:
    if r is None:
        return "n/a"
    p, q = r.precision_pct, r.recall_pct
    return (
        f"precision {'n/a' if math.isnan(p) else f'{p:.1f}'} % ({r.hit}/{r.reached} reached "
        f"clusters saw liquidations within 60 min)  recall {'n/a' if math.isnan(q) else f'{q:.1f}'}"
        f" % of ${r.value_total:,.0f} liquidated"
    )
