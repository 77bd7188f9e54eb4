"""poly.hunter_10k_wallets_s: the wallet hunter scoring 10,000 wallets with 1,000,000 fills
(and 200,000 closed positions) from the database.

- ours: quantcore.scan.poly.hunt — the fills and positions come back packed per wallet
  (one row per wallet, NumPy columns), every wallet is scored at once (shrunk capped ROI, win
  streaks, early entries, bot / market-maker labels) and the 10,000 score rows are written;
- baseline: a naive per-wallet loop over the same database rows: one row per fill read into
  Python, grouped per wallet, each wallet scored in plain Python (ROI, shrinkage, streak,
  activity, two-sidedness — WITHOUT the early-entry scan, so the baseline does less work
  than ours and the ratio is conservative); no writes.
Both read the same tables in the same process; the seed is written untimed by SQL.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from quantcore.db import conninfo
from quantcore.math.poly import DAY, PENDING_STATUSES, HunterParams
from quantcore.scan.poly import hunt
from quantcore.testing import Sandbox
from scripts.benchmarks.report import Group, Metric, load_note

WALLETS = 10_000
FILLS = 1_000_000
POSITIONS_PER_WALLET = 20
MARKETS = 5_000
GOAL_S = 10.0

# rows arrive in primary-key (wallet) order, so the seed appends to the index instead of
# splitting pages all over it; 100 fills per wallet over 5,000 markets
_SEED_TRADES = """
INSERT INTO poly_trades (time, wallet, condition_id, token_id, outcome_index, side, size, price, tx_hash, source)
SELECT %(now)s - (random() * 30 * 86400) * interval '1 second',
       '0x' || lpad(to_hex(g / %(per_wallet)s), 40, '0'),
       '0x' || lpad(to_hex((g * 7919) %% %(markets)s), 64, '0'),
       (((g * 7919) %% %(markets)s) * 2 + g %% 2)::text,
       (g %% 2)::smallint,
       CASE WHEN random() < 0.8 THEN 'BUY' ELSE 'SELL' END,
       1 + random() * 100, round(random()::numeric, 3)::float8, g::text, 'sim'
FROM generate_series(0::bigint, %(fills)s::bigint - 1) AS g
"""

_SEED_POSITIONS = """
INSERT INTO poly_positions (wallet, token_id, condition_id, status, size, avg_price, cost_usd,
                            realized_pnl_usd, unrealized_pnl_usd, end_date, observed_at, source)
SELECT '0x' || lpad(to_hex(w), 40, '0'), (w * 100 + k)::text, '0x' || lpad(to_hex(k), 64, '0'),
       CASE WHEN random() < 0.1 THEN 'REDEEMABLE_LOST' ELSE 'CLOSED' END, 0, 0.5, c,
       (random() * 2 - 0.9) * c, -random() * c, %(now)s - (random() * 29 * 86400) * interval '1 second', %(now)s, 'sim'
FROM generate_series(0, %(wallets)s - 1) AS w, generate_series(1, %(per)s) AS k, LATERAL (SELECT 10 + random() * 500 AS c) AS cost
"""


async def naive(conn: AsyncConnection[Any], now: datetime, p: HunterParams) -> int:
    since = now - timedelta(days=p.window_days)
    cur = await conn.execute(
        "SELECT wallet, condition_id, token_id, side, extract(epoch FROM time) FROM poly_trades WHERE time >= %s",
        (since,),
    )
    fills: dict[str, list[tuple[str, str, str, float]]] = defaultdict(list)
    for w, cond, tok, side, t in await cur.fetchall():
        fills[w].append((cond, tok, side, float(t)))
    cur = await conn.execute(
        """SELECT wallet, cost_usd, realized_pnl_usd, unrealized_pnl_usd, status, extract(epoch FROM end_date)
           FROM poly_positions WHERE end_date >= %s""",
        (since,),
    )
    positions: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for w, cost, real, unreal, status, t in await cur.fetchall():
        pnl = real + (unreal or 0.0) if status in PENDING_STATUSES else real
        positions[w].append((float(t), cost, pnl))
    rets = [
        min(max(x / c if c > 0 else 0.0, -1.0), p.return_cap)
        for rows in positions.values()
        for _, c, x in rows
    ]
    prior = sum(rets) / len(rets) if rets else 0.0
    smart = 0
    for w in sorted(set(fills) | set(positions)):
        rows = sorted(positions.get(w, []))
        n = len(rows)
        cost = sum(c for _, c, _ in rows)
        pnl = sum(x for _, _, x in rows)
        roi = pnl / cost if cost else 0.0
        capped = sum(min(max(x / c if c > 0 else 0.0, -1.0), p.return_cap) for _, c, x in rows)
        _shrunk = (capped + p.shrink_k * prior) / (n + p.shrink_k)
        streak = best = 0
        for _, _, x in rows:
            streak = streak + 1 if x > 0 else 0
            best = max(best, streak)
        f = fills.get(w, [])
        times = [t for *_, t in f]
        days = max((max(times) - min(times)) / DAY, 1.0) if times else 1.0
        bot = len(f) / days >= p.bot_trades_per_day
        per_market: dict[str, set[str]] = defaultdict(set)
        for cond, tok, side, _ in f:
            if side == "BUY":
                per_market[cond].add(tok)
        two_sided = (
            sum(len(v) > 1 for v in per_market.values()) / len(per_market) if per_market else 0.0
        )
        mm = two_sided >= p.mm_two_sided_share and len(per_market) >= p.mm_min_markets
        smart += n >= p.min_sample and roi >= p.min_roi and not bot and not mm
    return smart


async def run(box: Sandbox) -> dict[str, Metric]:
    now = datetime.now(UTC).replace(microsecond=0)
    params = HunterParams()
    args = {
        "now": now,
        "wallets": WALLETS,
        "markets": MARKETS,
        "fills": FILLS,
        "per": POSITIONS_PER_WALLET,
        "per_wallet": FILLS // WALLETS,
    }
    async with await AsyncConnection.connect(conninfo(box.settings), autocommit=True) as conn:
        t0 = time.perf_counter()
        await conn.execute("SET synchronous_commit = off")
        await conn.execute(_SEED_TRADES, args)
        await conn.execute(_SEED_POSITIONS, args)
        await conn.execute("ANALYZE poly_trades")
        await conn.execute("ANALYZE poly_positions")
        seed_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = await hunt(conn, now, params, "bench+00000000")
        ours = time.perf_counter() - t0
        scored = len(result.wallets)
        t0 = time.perf_counter()
        naive_smart = await naive(conn, now, params)
        base = time.perf_counter() - t0
    if scored != WALLETS:
        raise RuntimeError(f"hunter scored {scored} wallets, expected {WALLETS}")
    verdict = "within" if ours < GOAL_S else "OVER"
    note = (
        f"hunt(): load {FILLS:,} fills (one bytea of fixed-width records) + {WALLETS * POSITIONS_PER_WALLET:,} "
        f"closed positions (packed per wallet), "
        f"score {scored:,} wallets (incl. early-entry scan), write {scored:,} score rows; goal < {GOAL_S:.0f} s: "
        f"{verdict}. Baseline: naive per-wallet Python loop over the same rows, no early-entry scan, no writes "
        f"({naive_smart} smart vs ours {int(result.scores.is_smart.sum())}). Seeded untimed in {seed_s:.1f} s; "
        f"{load_note()}"
    )
    return {"poly.hunter_10k_wallets_s": Metric.measured(ours, "s", base, "lower", note)}


GROUP = Group("poly", ("poly.hunter_10k_wallets_s",), run)
