"""One poly_scanner cycle, as functions the service wires: the wallet hunter, sync clusters,
the signal oracle, hybrid signals. Reads and writes through quantcore.store.poly; the
formulas are quantcore.math.poly."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from psycopg import AsyncConnection

from quantcore.config import Settings
from quantcore.logging import get_logger
from quantcore.math.poly import (
    ClusterParams,
    HunterParams,
    OracleInputs,
    OracleParams,
    SyncCluster,
    WalletScores,
    oracle,
    score_wallets,
    suggest_perp,
    sync_clusters,
)
from quantcore.store import poly as store

log = get_logger(component="poly_scan")
SCANNER = "poly_scanner"
UNCOPYABLE = ("bot", "market_maker")


def hunter_params(s: Settings) -> HunterParams:
    return HunterParams(
        window_days=s.poly_window_days, min_roi=s.poly_smart_min_roi, min_sample=s.poly_smart_min_sample,
        shrink_k=s.poly_shrink_k, return_cap=s.poly_return_cap, early_hours=s.poly_early_hours,
        copy_weight=s.poly_copy_weight,
        early_points=s.poly_early_points, bot_trades_per_day=s.poly_bot_trades_per_day,
        mm_two_sided_share=s.poly_mm_two_sided_share,
    )  # fmt: skip


def cluster_params(s: Settings) -> ClusterParams:
    return ClusterParams(
        window_s=s.poly_cluster_window_s,
        min_together=s.poly_cluster_min_together,
        min_density=s.poly_cluster_density,
    )


def oracle_params(s: Settings) -> OracleParams:
    return OracleParams(
        window_s=s.poly_oracle_window_h * 3600, min_roi=s.poly_smart_min_roi, min_sample=s.poly_smart_min_sample,
        min_liquidity_usd=s.poly_min_liquidity_usd, max_spread=s.poly_max_spread, max_chase=s.poly_max_chase,
        fire_at=s.poly_signal_min_criteria, kelly_fraction=s.poly_kelly_fraction,
        bankroll_usd=s.poly_bankroll_usd, max_size_usd=s.poly_max_signal_usd,
    )  # fmt: skip


def registry_params(s: Settings) -> dict[str, Any]:
    return {
        "hunter": asdict(hunter_params(s)), "clusters": asdict(cluster_params(s)),
        "oracle": asdict(oracle_params(s)), "fee_rate_bps": s.poly_fee_rate_bps,
        "fee_exponent": s.poly_fee_exponent, "hybrid_window_min": s.poly_hybrid_window_min,
    }  # fmt: skip


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclass
class HuntResult:
    wallets: list[str]
    scores: WalletScores

    def ranked_smart(self) -> list[str]:
        """Smart wallets, best score first."""
        idx = [i for i in np.argsort(-self.scores.score, kind="stable") if self.scores.is_smart[i]]
        return [self.wallets[i] for i in idx]


async def hunt(
    conn: AsyncConnection[Any],
    now: datetime,
    params: HunterParams,
    version: str,
    *,
    write: bool = True,
) -> HuntResult:
    """Score every wallet with closed positions or fills in the window, from the database."""
    since = now - timedelta(days=params.window_days)
    data = await store.load_hunter_data(conn, since, now)
    copied = await store.copy_returns(conn, since, {w: i for i, w in enumerate(data.wallets)})
    s = score_wallets(
        data.positions, data.trades, len(data.wallets), now.timestamp(), params, copied
    )
    if write and data.wallets:
        base = {"prior_roi": s.prior_roi, "window_days": params.window_days}
        inputs = store.jsonb(base)
        rows = [
            (
                now, w, int(s.closed[i]), int(s.wins[i]), float(s.cost[i]), float(s.pnl[i]), _num(s.roi[i]),
                _num(s.shrunk_roi[i]), int(s.win_streak[i]), int(s.early_entries[i]), _num(s.early_share[i]),
                _num(s.trades_per_day[i]), _num(s.two_sided_share[i]), str(s.label[i]),
                float(s.score[i]) if math.isfinite(s.score[i]) else -1e9, bool(s.is_smart[i]),
                SCANNER, version,
                store.jsonb({**base, "copied_trades": int(s.copied[i]),
                             "copy_return": float(s.copy_return[i])}) if s.copied[i] else inputs,
            )
            for i, w in enumerate(data.wallets)
        ]  # fmt: skip
        await store.write_scores(conn, rows)
    return HuntResult(data.wallets, s)


async def find_clusters(
    conn: AsyncConnection[Any],
    now: datetime,
    params: ClusterParams,
    lookback: timedelta,
    version: str,
) -> list[SyncCluster]:
    fills = await store.recent_fills(conn, now - lookback, now, exclude_labels=UNCOPYABLE)
    if not fills:
        return []
    w, tok, buy, t, mk, _ = zip(*fills, strict=True)
    clusters = sync_clusters(list(w), list(tok), list(buy), list(t), list(mk), params)
    await store.write_clusters(
        conn, now, clusters, SCANNER, version,
        {"window_s": params.window_s, "min_together": params.min_together, "min_density": params.min_density,
         "fills": len(fills)},
    )  # fmt: skip
    return clusters


@dataclass
class FiredSignal:
    time: datetime
    condition_id: str
    token_id: str
    outcome: str
    question: str
    market_price: float
    implied_prob: float
    edge: float
    criteria_met: int
    suggested_size_usd: float
    checklist: dict[str, Any]
    smart_wallets: tuple[str, ...]


async def run_oracle(
    conn: AsyncConnection[Any],
    now: datetime,
    params: OracleParams,
    fee_rate_bps: float,
    version: str,
    fee_exponent: int = 1,
) -> list[FiredSignal]:
    """Per open market outcome with smart buying in the window: edge + checklist; the ones that
    pass are written to poly_signals with everything the oracle saw."""
    scores = await store.latest_scores(conn)
    smart = {w for w, s in scores.items() if s.is_smart}
    if not smart:
        return []
    cluster_of = await store.latest_cluster_of(conn)
    fills = await store.recent_fills(conn, now - timedelta(seconds=params.window_s), now)
    buys: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
    sells: dict[tuple[str, str], set[str]] = defaultdict(set)
    cluster_buys: dict[tuple[str, str], set[str]] = defaultdict(set)
    for wallet, token, is_buy, _t, cond, price in fills:
        if wallet in cluster_of and is_buy:
            cluster_buys[(cond, token)].add(cluster_of[wallet])
        if wallet not in smart:
            continue
        if is_buy:
            buys[(cond, token)].append((wallet, price))
        else:
            sells[(cond, token)].add(wallet)
    markets = await store.open_markets(conn, list({c for c, _ in buys}))
    books = await store.latest_books(conn, [t for _, t in buys])
    fired: list[FiredSignal] = []
    rows = []
    for (cond, token), entries in buys.items():
        m = markets.get(cond)
        if m is None or token not in m.token_ids:
            continue  # closed or unknown market: nothing to trade
        wallets = tuple(sorted({w for w, _ in entries}))
        entry = float(np.mean([p for _, p in entries]))
        other_tokens = [t for t in m.token_ids if t != token]
        contrary = {w for t in other_tokens for w, _ in buys.get((cond, t), [])} | sells.get(
            (cond, token), set()
        )
        bid, ask, book_at = books.get(token, (None, None, None))
        clusters = sorted(cluster_buys.get((cond, token), set()))
        inputs = OracleInputs(
            smart_wallets=wallets, smart_entry_price=entry,
            smart_roi=float(np.mean([scores[w].shrunk_roi for w in wallets])),
            smart_sample=min(scores[w].closed_positions for w in wallets),
            cluster_id=clusters[0] if clusters else None, contrary_smart=len(contrary - set(wallets)),
            best_bid=bid, best_ask=ask, liquidity_usd=m.liquidity_usd,
            hours_to_end=(m.end_date - now).total_seconds() / 3600 if m.end_date else None,
            fee_rate_bps=fee_rate_bps, fee_exponent=fee_exponent,
        )  # fmt: skip
        result = oracle(inputs, params)
        if not result.fires(params.fire_at):
            continue
        if await store.recent_signal_exists(
            conn, cond, token, now - timedelta(seconds=params.window_s)
        ):
            continue  # already signalled this flow
        outcome = m.outcomes[m.token_ids.index(token)]
        checklist = {k: asdict(v) for k, v in result.checklist.items()}
        rows.append((
            now, cond, token, outcome, m.question, ask, result.implied_prob, result.edge, result.criteria_met,
            len(result.checklist), store.jsonb(checklist), list(wallets), inputs.cluster_id,
            result.suggested_size_usd, SCANNER, version, m.source,
            store.jsonb({**asdict(inputs), "book_at": book_at, "params": asdict(params)}),
        ))  # fmt: skip
        fired.append(FiredSignal(
            now, cond, token, outcome, m.question, float(ask or 0.0), result.implied_prob, result.edge,
            result.criteria_met, result.suggested_size_usd, checklist, wallets,
        ))  # fmt: skip
    await store.write_signals(conn, rows)
    return fired


async def link_markets(conn: AsyncConnection[Any]) -> int:
    """Suggest a perp for every market whose question (or crypto tags) names one."""
    links = []
    for cond, question, category, tags in await store.unlinked_markets(conn):
        symbol = suggest_perp(question, category, tags)
        if symbol:
            links.append((cond, symbol, f"question names {symbol.removesuffix('USDT')}"))
    await store.suggest_links(conn, links)
    return len(links)


@dataclass
class HybridFound:
    signal: store.StoredSignal
    symbol: str
    reasons: list[str]
    perp_rank: int | None


async def hybrids(
    conn: AsyncConnection[Any], now: datetime, window: timedelta, version: str, top_n: int = 10
) -> list[HybridFound]:
    """A poly signal of the last window is hybrid when its linked perp spiked (OI or volume)
    between the window before it and now, or ranks in the latest perps top N. Re-checked
    every cycle, so a spike just after the signal still makes it hybrid (rows are idempotent)."""
    out: list[HybridFound] = []
    rows = []
    for sig in await store.recent_signals(conn, now - window):
        symbol = await store.linked_symbol(conn, sig.condition_id)
        if symbol is None:
            continue
        reasons, rank, inputs = await store.perp_activity(
            conn, symbol, sig.time - window, now, top_n
        )
        if not reasons:
            continue
        rows.append((now, sig.condition_id, sig.token_id, sig.time, symbol, reasons, rank, SCANNER, version,
                     store.jsonb({**inputs, "window_min": window.total_seconds() / 60})))  # fmt: skip
        out.append(HybridFound(sig, symbol, reasons, rank))
    await store.write_hybrid(conn, rows)
    return out
