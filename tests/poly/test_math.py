"""quantcore.math.poly: hunter parts, clusters, oracle, Kelly, links (hypothesis where it fits)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantcore.math import poly as pm

P = pm.HunterParams()


def trades(rows: list[tuple[int, int, int, bool, float, float]]) -> pm.TradesIn:
    a = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return pm.TradesIn(
        wallet=a[:, 0].astype(np.int64), token=a[:, 1].astype(np.int64), market=a[:, 2].astype(np.int64),
        buy=a[:, 3].astype(bool), price=a[:, 4], time=a[:, 5],
    )  # fmt: skip


def test_unredeemed_loser_is_a_loss_not_a_zero() -> None:
    pnl = pm.position_pnl(np.array([True, False]), np.array([0.0, 5.0]), np.array([-40.0, 99.0]))
    assert list(pnl) == [-40.0, 5.0]


@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=60))
def test_win_streak_matches_a_loop(rows: list[tuple[int, bool]]) -> None:
    wallet = np.array([w for w, _ in rows], dtype=np.int64)
    wins = np.array([x for _, x in rows], dtype=bool)
    t = np.arange(len(rows), dtype=np.float64)
    got = pm._longest_win_streak(wallet, wins, t, 4)
    for w in range(4):
        best = run = 0
        for ww, x in rows:
            if ww == w:
                run = run + 1 if x else 0
                best = max(best, run)
        assert got[w] == best


def test_early_entry_needs_the_move_after_x_hours() -> None:
    h = 3600.0
    t = trades([
        (0, 0, 0, True, 0.40, 0.0),        # early: price unchanged 6 h later, then +0.5
        (1, 0, 0, True, 0.41, 7 * h),      # late: the move comes 1 h later only
        (2, 0, 0, True, 0.42, 7.5 * h),
        (3, 0, 0, True, 0.90, 8 * h),      # the move
        (4, 1, 1, True, 0.50, 0.0),        # other token: no move at all
        (5, 1, 1, True, 0.52, 10 * h),
    ])  # fmt: skip
    got = pm.early_entries(t, hours=6, points=0.15)
    assert list(got) == [True, False, False, False, False, False]


def test_small_sample_with_huge_roi_ranks_below_a_steady_record() -> None:
    # wallet 0: 3 long shots that paid 9x; wallet 1: 30 positions at +100 % / -100 % (25/5)
    w = [0] * 3 + [1] * 30 + [2] * 40
    cost = [10.0] * 73
    pnl = [90.0] * 3 + [10.0] * 25 + [-10.0] * 5 + [-1.0] * 40
    pos = pm.PositionsIn(np.array(w), np.array(cost), np.array(pnl), np.full(73, 1e9))
    s = pm.score_wallets(pos, trades([]), 3, 1e9 + 10, P)
    assert s.roi[0] == pytest.approx(9.0) and s.score[1] > s.score[0]
    assert list(s.label) == ["unproven", "smart", "ordinary"]


@given(
    rets=st.lists(st.tuples(st.integers(0, 2), st.floats(-1.0, 3.0)), max_size=40),
    weight=st.floats(0.0, 3.0),
)
def test_copy_outcomes_move_the_score_by_their_shrunk_return(
    rets: list[tuple[int, float]], weight: float
) -> None:
    """Outcome learning: our closed copy trades that followed a wallet add weight × their mean
    capped return shrunk toward 0 to its score; nothing else about the wallet changes."""
    w = [0] * 10 + [1] * 10 + [2] * 10
    pos = pm.PositionsIn(np.array(w), np.full(30, 10.0), np.full(30, 4.0), np.full(30, 1e9))
    params = pm.HunterParams(copy_weight=weight)
    plain = pm.score_wallets(pos, trades([]), 3, 1e9 + 10, params)
    copied = pm.CopiedIn(
        np.array([k for k, _ in rets], dtype=np.int64), np.array([r for _, r in rets], dtype=float)
    )
    s = pm.score_wallets(pos, trades([]), 3, 1e9 + 10, params, copied)
    for k in range(3):
        mine = [min(r, params.return_cap) for j, r in rets if j == k]
        term = sum(mine) / (len(mine) + params.shrink_k)
        assert s.copied[k] == len(mine)
        assert s.copy_return[k] == pytest.approx(term)
        assert s.score[k] == pytest.approx(plain.score[k] + weight * term)
    assert list(s.label) == list(plain.label) and list(s.shrunk_roi) == list(plain.shrunk_roi)


def test_a_wallet_whose_copies_lost_ranks_below_its_twin() -> None:
    # two wallets with the same record; copying wallet 1 lost us everything 8 times
    pos = pm.PositionsIn(
        np.array([0] * 10 + [1] * 10), np.full(20, 10.0), np.full(20, 5.0), np.full(20, 1e9)
    )
    lost = pm.CopiedIn(np.ones(8, dtype=np.int64), np.full(8, -1.0))
    s = pm.score_wallets(pos, trades([]), 2, 1e9 + 10, P, lost)
    assert s.score[0] > s.score[1] and s.score[0] == pytest.approx(
        pm.score_wallets(pos, trades([]), 2, 1e9 + 10, P).score[0]
    )


def test_bots_and_market_makers_are_labelled_and_never_smart() -> None:
    day = 86400.0
    rows = [
        (0, i % 7, i % 7 // 2, True, 0.5, i * day / 500) for i in range(1000)
    ]  # 500 fills / day
    for m in range(6):  # wallet 1 buys both outcomes of 6 markets
        rows += [
            (1, 100 + 2 * m, 50 + m, True, 0.49, m * day),
            (1, 101 + 2 * m, 50 + m, True, 0.49, m * day + 60),
        ]
    pos = pm.PositionsIn(
        np.array([0] * 10 + [1] * 10), np.full(20, 10.0), np.full(20, 10.0), np.full(20, 1e6)
    )
    s = pm.score_wallets(pos, trades(rows), 2, 1e6, P)
    assert list(s.label) == ["bot", "market_maker"]
    assert not s.is_smart.any() and np.isinf(s.score).all()


def test_sync_cluster_found_and_random_pairs_are_not() -> None:
    rng = np.random.default_rng(1)
    rows = []
    for k in range(6):  # a, b, c, d buy the same token within a minute in 6 markets
        for w in "abcd":
            rows.append((w, f"t{k}", True, 10_000.0 * k + rng.uniform(0, 60), f"m{k}"))
    for i in range(200):  # noise: 20 wallets, random tokens and times
        k = rng.integers(0, 50)
        rows.append((f"n{i % 20}", f"x{k}", True, rng.uniform(0, 1e6), f"mx{k}"))
    w, tok, buy, t, m = map(list, zip(*rows, strict=True))
    clusters = pm.sync_clusters(w, tok, buy, t, m, pm.ClusterParams())
    assert [c.members for c in clusters] == [("a", "b", "c", "d")]
    assert clusters[0].density == 1.0 and len(clusters[0].markets) == 6


@given(st.floats(0.01, 0.99), st.floats(0.01, 0.99), st.floats(0.01, 1.0))
def test_kelly_never_bets_without_an_edge_and_respects_the_cap(
    q: float, p: float, frac: float
) -> None:
    size = pm.kelly_size(q, p, frac, 1000.0, 50.0)
    assert 0.0 <= size <= 50.0
    if q <= p:
        assert size == 0.0
    else:
        assert size == pytest.approx(min((q - p) / (1 - p) * frac * 1000.0, 50.0))


def base_inputs(**over: object) -> pm.OracleInputs:
    kw: dict[str, object] = dict(
        smart_wallets=("a", "b"), smart_entry_price=0.45, smart_roi=0.4, smart_sample=20, cluster_id="c1",
        contrary_smart=0, best_bid=0.45, best_ask=0.47, liquidity_usd=50_000.0, hours_to_end=48.0, fee_rate_bps=0.0,
    )  # fmt: skip
    kw.update(over)
    return pm.OracleInputs(**kw)  # type: ignore[arg-type]


def test_oracle_checklist_and_edge() -> None:
    params = pm.OracleParams()
    r = pm.oracle(base_inputs(), params)
    assert r.criteria_met == 7 and r.fires(5)
    assert r.implied_prob == pytest.approx(0.63) and r.edge == pytest.approx(0.16)
    assert 0 < r.suggested_size_usd <= params.max_size_usd
    moved = pm.oracle(
        base_inputs(best_bid=0.60, best_ask=0.62, contrary_smart=1, cluster_id=None), params
    )
    assert not moved.checklist["price_not_moved_past_edge"].ok
    assert not moved.checklist["no_contrary_smart_flow"].ok and moved.criteria_met == 4
    assert not moved.fires(5)
    # the fee is the one formula: rate × (p(1−p))^exponent per share (10 % at ask 0.47)
    fee = pm.oracle(base_inputs(fee_rate_bps=1000.0), params)
    assert fee.edge == pytest.approx(0.16 - 0.1 * 0.47 * 0.53)
    squared = pm.oracle(base_inputs(fee_rate_bps=1000.0, fee_exponent=2), params)
    assert squared.edge == pytest.approx(0.16 - 0.1 * (0.47 * 0.53) ** 2)


@given(
    p=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("0.9999"), places=4),
    c=st.decimals(min_value=Decimal(0), max_value=Decimal(100_000), places=2),
    rate=st.decimals(min_value=Decimal(0), max_value=Decimal("0.25"), places=4),
    exponent=st.integers(0, 4),
)
def test_one_fee_formula_for_the_oracle_and_the_venue(
    p: Decimal, c: Decimal, rate: Decimal, exponent: int
) -> None:
    """The oracle's per-share fee (floats, bps) and the venue's charge (Decimal, floored to 5
    decimals; quantcore.trading.poly) are the same formula: C × rate × (p(1−p))^exponent."""
    from quantcore.trading.poly import FeeSchedule
    from quantcore.trading.poly import taker_fee as venue_fee

    exact = pm.taker_fee(c, p, rate, exponent)
    assert exact == c * rate * (p * (1 - p)) ** exponent
    charged = venue_fee(c, p, FeeSchedule(rate, exponent))
    assert charged <= exact < charged + Decimal("0.00001")
    per_share = pm.taker_fee(1.0, float(p), float(rate * 10_000) / 10_000.0, exponent)
    assert per_share * float(c) == pytest.approx(float(exact), rel=1e-9, abs=1e-12)
    inputs = base_inputs(
        fee_rate_bps=float(rate * 10_000), fee_exponent=exponent, best_ask=float(p)
    )
    no_fee = pm.oracle(base_inputs(best_ask=float(p)), pm.OracleParams())
    assert no_fee.edge - pm.oracle(inputs, pm.OracleParams()).edge == pytest.approx(
        per_share, abs=1e-12
    )


@pytest.mark.parametrize(
    ("question", "category", "symbol"),
    [
        ("Will BTC be above 120k on Friday?", None, "BTCUSDT"),
        ("Ethereum above $5,000 by June?", "Crypto", "ETHUSDT"),
        ("Will Solana flip Ethereum?", "Crypto", None),  # two coins: no guess
        ("Will the Fed cut rates?", "Economy", None),
        ("Up or down?", "Crypto", None),
    ],
)
def test_suggest_perp(question: str, category: str | None, symbol: str | None) -> None:
    assert pm.suggest_perp(question, category) == symbol
