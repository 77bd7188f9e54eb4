"""Polymarket intelligence as pure, vectorised functions: wallet scoring (the hunter), sync
clusters, the signal oracle's edge and checklist, Kelly sizing, market → perp suggestions.

Units: prices are probabilities 0..1; ROI is a ratio (0.3 = 30 %); money USD; times epoch s.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import combinations
from typing import Literal, TypeVar

import networkx as nx
import numpy as np
import numpy.typing as npt

F = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
Label = Literal["smart", "market_maker", "bot", "unproven", "ordinary"]
HOUR = 3600.0
DAY = 86400.0


@dataclass(frozen=True)
class HunterParams:
    window_days: float = 30.0  # closed positions of the last N days
    min_roi: float = 0.30  # smart: realised ROI ≥ this …
    min_sample: int = 8  # … over at least this many closed positions
    shrink_k: float = 20.0  # pseudo-positions at the population mean (small samples shrink)
    return_cap: float = 1.0  # one position's return counts at most +100 % in the score
    early_hours: float = 6.0  # entered ≥ X h before …
    early_points: float = 0.15  # … a move of ≥ Y probability points
    early_weight: float = 0.5  # score bonus per unit share of early entries
    bot_trades_per_day: float = 150.0  # above: a bot (cannot be copied)
    mm_two_sided_share: float = 0.5  # share of markets traded on both outcomes: market maker
    mm_min_markets: int = 5
    copy_weight: float = 1.0  # score weight of what copying the wallet made us (outcome learning)


@dataclass
class PositionsIn:
    """Closed positions (one row each), wallets as indices 0..n_wallets-1."""

    wallet: Ints
    cost: F  # USD paid for the shares (NO buys included: a NO token is a position like any)
    pnl: F  # realised PnL, unredeemed losers already counted as losses (see position_pnl)
    closed_at: F  # epoch s


@dataclass
class TradesIn:
    """Fills, wallets as indices; token/market as dense integer codes."""

    wallet: Ints
    token: Ints
    market: Ints
    buy: B
    price: F
    time: F  # epoch s


@dataclass
class CopiedIn:
    """Our closed copy trades, one row per (trade, wallet it followed), wallets as indices: the
    trade's PnL as a ratio of its cost (the trade log's pnl_pct_margin / 100)."""

    wallet: Ints
    ret: F


@dataclass
class WalletScores:
    closed: Ints
    wins: Ints
    cost: F
    pnl: F
    roi: F  # NaN without closed positions
    shrunk_roi: F
    win_streak: Ints
    early_entries: Ints
    early_share: F
    trades_per_day: F
    two_sided_share: F
    label: npt.NDArray[np.str_]
    score: F
    is_smart: B
    prior_roi: float  # population mean of the capped per-position return
    copied: Ints  # our closed copy trades that followed the wallet
    copy_return: F  # their mean capped return, shrunk toward 0 (the score's copy term)


# resolved but not yet redeemed: the result still sits in the unrealised PnL
PENDING_STATUSES = ("REDEEMABLE", "REDEEMABLE_LOST")


def position_pnl(pending: B, realized: F, unrealized: F) -> F:
    """Realised PnL of closed positions. A resolved position not yet redeemed (`pending`)
    still shows its result as unrealised: a loser left unredeemed is a loss, never a zero."""
    out: F = np.where(pending, realized + np.nan_to_num(unrealized), realized).astype(np.float64)
    return out


def _longest_win_streak(wallet: Ints, wins: B, order_time: F, n: int) -> Ints:
    """Longest run of consecutive winning closed positions per wallet (vectorised)."""
    out = np.zeros(n, dtype=np.int64)
    if wallet.size == 0:
        return out
    order = np.lexsort((order_time, wallet))
    w, win = wallet[order], wins[order].astype(np.int64)
    # a run restarts at every loss and at every new wallet
    new_run = np.ones(w.size, dtype=bool)
    new_run[1:] = (w[1:] != w[:-1]) | (win[:-1] == 0)
    run_id = np.cumsum(new_run) - 1
    run_len = np.bincount(run_id, weights=win).astype(np.int64)
    run_wallet = w[new_run]
    np.maximum.at(out, run_wallet, run_len)
    return out


def early_entries(trades: TradesIn, hours: float, points: float) -> B:
    """Per fill: a BUY that came ≥ `hours` before the token's price first rose ≥ `points` above
    the entry (the price `hours` later had not yet moved that far). Uses the token's own fill
    prices as its price path (the best price record the feed gives for every token)."""
    n = trades.time.size
    if n == 0:
        return np.zeros(0, dtype=bool)
    # one float sort key: token code * span + seconds since the first fill (exact: < 2**53)
    t0 = float(trades.time.min())
    span = float(trades.time.max() - t0 + 1.0) + hours * HOUR + 1.0
    raw_key = trades.token.astype(np.float64) * span + (trades.time - t0)
    order = np.argsort(raw_key, kind="stable")
    key = raw_key[order]
    tok = trades.token[order]
    p = trades.price[order].astype(np.float64)
    later = np.searchsorted(key, key + hours * HOUR, side="left")  # first fill ≥ X h later
    seg_end = np.searchsorted(tok, tok, side="right")
    # segmented suffix maximum: walk backwards, lifting each new token by 2 (prices ≤ 1)
    rev_p = p[::-1]
    rev_tok = tok[::-1]
    seg_rank = np.cumsum(np.r_[0, (rev_tok[1:] != rev_tok[:-1]).astype(np.int64)])
    suffix_max = (np.maximum.accumulate(rev_p + 2.0 * seg_rank) - 2.0 * seg_rank)[::-1]
    valid = later < seg_end
    later_c = np.minimum(later, n - 1)
    price_at_x = p[np.maximum(later_c - 1, 0)]  # last price before the X-hour mark
    not_yet = price_at_x - p < points
    moved = suffix_max[later_c] - p >= points
    out = np.zeros(n, dtype=bool)
    out[order] = valid & not_yet & moved
    return out & trades.buy


def score_wallets(
    positions: PositionsIn,
    trades: TradesIn,
    n_wallets: int,
    now: float,
    params: HunterParams,
    copied: CopiedIn | None = None,
) -> WalletScores:
    """The hunter, for every wallet at once: realised ROI over the window, shrunk toward the
    population mean by sample size, win streaks, early entries, bot / market-maker labels; and
    outcome learning: what copying the wallet made us (`copied`, our closed copy trades that
    followed it) moves its score by `copy_weight` × their mean capped return shrunk toward 0 by
    `shrink_k` (a few copies barely count; a wallet whose copies keep losing sinks)."""
    p = params
    in_window = positions.closed_at >= now - p.window_days * DAY
    wv, cost, pnl = positions.wallet[in_window], positions.cost[in_window], positions.pnl[in_window]
    closed = np.bincount(wv, minlength=n_wallets).astype(np.int64)
    wins_mask = pnl > 0
    wins = np.bincount(wv, weights=wins_mask, minlength=n_wallets).astype(np.int64)
    cost_sum: F = np.bincount(wv, weights=cost, minlength=n_wallets).astype(np.float64)
    pnl_sum: F = np.bincount(wv, weights=pnl, minlength=n_wallets).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        roi = np.where(cost_sum > 0, pnl_sum / cost_sum, np.nan)
    # the score's ROI: mean per-position return, each capped (one long shot that paid 9x is
    # luck until repeated), shrunk toward the population mean by sample size
    with np.errstate(invalid="ignore", divide="ignore"):
        ret = np.clip(np.where(cost > 0, pnl / cost, 0.0), -1.0, p.return_cap)
    ret_sum = np.bincount(wv, weights=ret, minlength=n_wallets)
    prior = float(ret.mean()) if ret.size else 0.0
    shrunk = (ret_sum + p.shrink_k * prior) / (closed + p.shrink_k)
    streak = _longest_win_streak(wv, wins_mask, positions.closed_at[in_window], n_wallets)

    # trading behaviour from the fills
    tw = trades.wallet
    fills = np.bincount(tw, minlength=n_wallets).astype(np.float64)
    early = early_entries(trades, p.early_hours, p.early_points)
    early_n = np.bincount(tw, weights=early, minlength=n_wallets).astype(np.int64)
    buys = np.bincount(tw, weights=trades.buy, minlength=n_wallets)
    with np.errstate(invalid="ignore", divide="ignore"):
        early_share = np.where(buys > 0, early_n / buys, 0.0)
    first = np.full(n_wallets, np.inf)
    last = np.full(n_wallets, -np.inf)
    np.minimum.at(first, tw, trades.time)
    np.maximum.at(last, tw, trades.time)
    active_days = np.where(fills > 0, np.maximum((last - first) / DAY, 1.0), 1.0)
    per_day = fills / active_days
    # two-sided: a wallet that bought more than one outcome of the same market (quotes both)
    n_m = int(trades.market.max()) + 1 if trades.market.size else 1
    n_t = int(trades.token.max()) + 1 if trades.token.size else 1
    # distinct (wallet, market, token), then tokens per (wallet, market): one sort, run lengths
    wmt = np.sort((tw * n_m + trades.market) * n_t + trades.token)
    wmt = wmt[np.r_[True, wmt[1:] != wmt[:-1]]] if wmt.size else wmt
    wm_all = wmt // n_t
    starts = np.flatnonzero(np.r_[True, wm_all[1:] != wm_all[:-1]]) if wm_all.size else wm_all
    wm = wm_all[starts]
    tokens_in = np.diff(np.r_[starts, wm_all.size])
    markets_n = np.bincount(wm // n_m, minlength=n_wallets)
    both = np.bincount(wm // n_m, weights=tokens_in > 1, minlength=n_wallets)
    with np.errstate(invalid="ignore", divide="ignore"):
        two_sided = np.where(markets_n > 0, both / markets_n, 0.0)

    is_bot = per_day >= p.bot_trades_per_day
    is_mm = (two_sided >= p.mm_two_sided_share) & (markets_n >= p.mm_min_markets) & ~is_bot
    proven = closed >= p.min_sample
    smart = proven & (np.nan_to_num(roi, nan=-1.0) >= p.min_roi) & ~is_bot & ~is_mm
    label = np.full(n_wallets, "ordinary", dtype=object)
    label[~proven] = "unproven"
    label[smart] = "smart"
    label[is_mm] = "market_maker"
    label[is_bot] = "bot"
    # the score: shrunk ROI, plus a bonus for being early more often than the crowd (weighted
    # by sample confidence)
    confidence = closed / (closed + p.shrink_k)
    crowd_early = float(early_n.sum() / buys.sum()) if buys.sum() > 0 else 0.0
    score = shrunk + p.early_weight * (early_share - crowd_early) * confidence
    copy_n = np.zeros(n_wallets, dtype=np.int64)
    copy_ret: F = np.zeros(n_wallets, dtype=np.float64)
    if copied is not None and copied.wallet.size:
        cr = np.clip(np.nan_to_num(copied.ret, nan=0.0), -1.0, p.return_cap)
        copy_n = np.bincount(copied.wallet, minlength=n_wallets).astype(np.int64)
        copy_ret = np.bincount(copied.wallet, weights=cr, minlength=n_wallets) / (
            copy_n + p.shrink_k
        )
        score = score + p.copy_weight * copy_ret
    score = np.where(is_bot | is_mm, -np.inf, score)
    return WalletScores(
        closed=closed, wins=wins, cost=cost_sum, pnl=pnl_sum, roi=roi, shrunk_roi=shrunk,
        win_streak=streak, early_entries=early_n, early_share=early_share,
        trades_per_day=per_day, two_sided_share=two_sided, label=label.astype(str),
        score=score, is_smart=smart, prior_roi=prior, copied=copy_n, copy_return=copy_ret,
    )  # fmt: skip


# --- sync clusters ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterParams:
    window_s: float = 600.0  # same market and side within this many seconds
    min_together: int = 3  # a pair must coincide at least this often to be an edge
    min_density: float = 0.5  # a group is a cluster above this graph density
    min_size: int = 3
    max_bucket: int = 40  # crowded moments (everyone piles in) say nothing about who is linked


@dataclass(frozen=True)
class SyncCluster:
    cluster_id: str
    members: tuple[str, ...]
    density: float
    markets: tuple[str, ...]
    edges: int


def cluster_id(members: Iterable[str]) -> str:
    return hashlib.sha256(",".join(sorted(members)).encode()).hexdigest()[:16]


def sync_clusters(
    wallets: Sequence[str],
    token: Sequence[str],
    buy: Sequence[bool],
    time_s: Sequence[float],
    market: Sequence[str],
    params: ClusterParams,
) -> list[SyncCluster]:
    """Graph of wallets that traded the same market outcome and side within the window; an
    edge joins two wallets that did so in at least `min_together` different market sides (its
    weight). Connected groups of ≥ `min_size` wallets with density > `min_density` are
    clusters."""
    p = params
    if not wallets:
        return []
    # two bucket grids half a window apart: fills less than a window apart share a bucket in
    # at least one of them
    moments: dict[tuple[str, bool, int, int], set[str]] = {}
    side_market: dict[tuple[str, bool], str] = {}
    for w, tok, b, t, m in zip(wallets, token, buy, time_s, market, strict=True):
        side_market[(tok, b)] = m
        for grid in (0, 1):
            bucket = math.floor(t / p.window_s + 0.5 * grid)
            moments.setdefault((tok, b, grid, bucket), set()).add(w)
    together: dict[tuple[str, bool], set[tuple[str, str]]] = {}
    for (tok, b, _g, _bk), members in moments.items():
        if 2 <= len(members) <= p.max_bucket:
            together.setdefault((tok, b), set()).update(combinations(sorted(members), 2))
    pairs: Counter[tuple[str, str]] = Counter()
    pair_markets: dict[tuple[str, str], set[str]] = {}
    for side, side_pairs in together.items():
        for pair in side_pairs:  # one count per market side the pair traded together
            pairs[pair] += 1
            pair_markets.setdefault(pair, set()).add(side_market[side])
    graph: nx.Graph[str] = nx.Graph()
    for (a, c), n in pairs.items():
        if n >= p.min_together:
            graph.add_edge(a, c, weight=n)
    out: list[SyncCluster] = []
    for comp in nx.connected_components(graph):
        if len(comp) < p.min_size:
            continue
        sub = graph.subgraph(comp)
        density = float(nx.density(sub))
        if density <= p.min_density:
            continue
        names: tuple[str, ...] = tuple(sorted(comp))
        mk: set[str] = set()
        for a, c in sub.edges():
            mk |= pair_markets.get((a, c), set()) | pair_markets.get((c, a), set())
        out.append(
            SyncCluster(cluster_id(names), names, density, tuple(sorted(mk)), sub.number_of_edges())
        )
    return sorted(out, key=lambda c: (-len(c.members), c.cluster_id))


# --- signal oracle ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OracleParams:
    window_s: float = 6 * HOUR  # smart flow counted within this window
    min_smart: int = 2
    min_roi: float = 0.30
    min_sample: int = 8
    min_liquidity_usd: float = 1_000.0
    max_spread: float = 0.05
    min_hours_to_end: float = 1.0
    max_days_to_end: float = 60.0
    max_chase: float = 0.05  # the ask may be at most this far above the smart entries
    fire_at: int = 5  # criteria needed to fire
    kelly_fraction: float = 0.25
    bankroll_usd: float = 1_000.0
    max_size_usd: float = 100.0


@dataclass(frozen=True)
class OracleInputs:
    """What the oracle saw for one market outcome (recorded with the signal)."""

    smart_wallets: tuple[str, ...]
    smart_entry_price: float  # cost-weighted average entry of the smart buys
    smart_roi: float  # mean shrunk ROI of those wallets
    smart_sample: int  # smallest closed-position sample among them
    cluster_id: str | None
    contrary_smart: int  # smart wallets selling this outcome or buying another one
    best_bid: float | None
    best_ask: float | None
    liquidity_usd: float | None
    hours_to_end: float | None
    fee_rate_bps: float
    fee_exponent: int = 1


@dataclass
class Criterion:
    ok: bool
    value: float | str | None
    threshold: float | str | None


@dataclass
class OracleResult:
    implied_prob: float
    edge: float
    checklist: dict[str, Criterion] = field(default_factory=dict)
    suggested_size_usd: float = 0.0

    @property
    def criteria_met(self) -> int:
        return sum(c.ok for c in self.checklist.values())

    def fires(self, fire_at: int) -> bool:
        return self.criteria_met >= fire_at and self.edge > 0


Num = TypeVar("Num", float, Decimal)


def taker_fee(shares: Num, price: Num, rate: Num, exponent: int) -> Num:
    """Polymarket's taker fee (https://docs.polymarket.com/trading/fees), the one formula:
    `C × rate × (p(1−p))^exponent` for C shares at price p, with the market's fee-schedule
    `rate` (a ratio: 0.03 = 3 %) and `exponent`. Unrounded: the venue's rounding (floored to 5
    decimals) and the order rules are quantcore.trading.poly's; the oracle prices one share."""
    return shares * rate * (price * (1 - price)) ** exponent


def implied_probability(entry_price: float, roi: float) -> float:
    """What the smart wallets' record says the outcome is worth: buying at p and earning ROI r
    on average means a pay-off of p·(1 + r) per share, i.e. that probability."""
    return float(min(max(entry_price * (1.0 + roi), 0.0), 0.99))


def kelly_size(prob: float, price: float, fraction: float, bankroll: float, cap: float) -> float:
    """Kelly stake of a binary share bought at `price` with win probability `prob`:
    f* = (q − p) / (1 − p); a fraction of it, capped; zero without an edge."""
    if not 0 < price < 1 or prob <= price:
        return 0.0
    f = (prob - price) / (1.0 - price)
    return float(min(max(f * fraction * bankroll, 0.0), cap))


def oracle(inputs: OracleInputs, params: OracleParams) -> OracleResult:
    p, x = params, inputs
    ask = x.best_ask
    implied = implied_probability(x.smart_entry_price, x.smart_roi)
    spread = (ask - x.best_bid) if ask is not None and x.best_bid is not None else None
    edge = (
        implied - ask - taker_fee(1.0, ask, x.fee_rate_bps / 10_000.0, x.fee_exponent)
        if ask is not None
        else -1.0
    )
    c: dict[str, Criterion] = {
        "smart_wallets_same_side": Criterion(len(x.smart_wallets) >= p.min_smart, len(x.smart_wallets), p.min_smart),
        "sync_cluster_involved": Criterion(x.cluster_id is not None, x.cluster_id, "any"),
        "smart_roi_and_sample": Criterion(
            x.smart_roi >= p.min_roi and x.smart_sample >= p.min_sample,
            f"roi {x.smart_roi:.2f}, n {x.smart_sample}", f"roi {p.min_roi}, n {p.min_sample}",
        ),
        "liquidity_and_spread": Criterion(
            x.liquidity_usd is not None and x.liquidity_usd >= p.min_liquidity_usd
            and spread is not None and spread <= p.max_spread,
            f"liq {x.liquidity_usd}, spread {spread}", f"liq {p.min_liquidity_usd}, spread {p.max_spread}",
        ),
        "time_to_resolution": Criterion(
            x.hours_to_end is not None and p.min_hours_to_end <= x.hours_to_end <= p.max_days_to_end * 24,
            x.hours_to_end, f"{p.min_hours_to_end} h .. {p.max_days_to_end} d",
        ),
        "price_not_moved_past_edge": Criterion(
            ask is not None and ask <= x.smart_entry_price + p.max_chase and edge > 0,
            ask, x.smart_entry_price + p.max_chase,
        ),
        "no_contrary_smart_flow": Criterion(x.contrary_smart == 0, x.contrary_smart, 0),
    }  # fmt: skip
    size = (
        kelly_size(implied, ask, p.kelly_fraction, p.bankroll_usd, p.max_size_usd) if ask else 0.0
    )
    return OracleResult(
        implied_prob=implied,
        edge=edge if math.isfinite(edge) else -1.0,
        checklist=c,
        suggested_size_usd=size,
    )


# --- market ↔ perp ----------------------------------------------------------------------------

_COINS: tuple[tuple[str, str], ...] = (
    (r"\b(bitcoin|btc)\b", "BTCUSDT"),
    (r"\b(ethereum|ether|eth)\b", "ETHUSDT"),
    (r"\b(solana|sol)\b", "SOLUSDT"),
    (r"\b(xrp|ripple)\b", "XRPUSDT"),
    (r"\b(dogecoin|doge)\b", "DOGEUSDT"),
    (r"\b(bnb|binance coin)\b", "BNBUSDT"),
    (r"\b(cardano|ada)\b", "ADAUSDT"),
    (r"\b(hyperliquid|hype)\b", "HYPEUSDT"),
)


def suggest_perp(question: str, category: str | None, tags: Sequence[str] = ()) -> str | None:
    """The linear perp a market is about, from its question (and crypto category/tags), or
    None. Only a suggestion: the owner's entries in poly_perp_links win."""
    text = question.lower()
    hits = {sym for pattern, sym in _COINS if re.search(pattern, text)}
    if len(hits) == 1:
        return hits.pop()
    if not hits and (category or "").lower() == "crypto":
        blob = " ".join(tags).lower()
        tag_hits = {sym for pattern, sym in _COINS if re.search(pattern, blob)}
        if len(tag_hits) == 1:
            return tag_hits.pop()
    return None
