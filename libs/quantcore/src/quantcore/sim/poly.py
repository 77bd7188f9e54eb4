"""A synthetic Polymarket: markets that move and resolve, traded by wallets of known kind.

Kinds (ground truth, for tests only — the hunter never sees it):
- informed: buy the outcome that will win 6–30 h before the news that moves its price;
- lucky: a handful of long-odds bets, most of which happened to win (huge short-run ROI);
- market_maker: buy both outcomes of many markets around the mid, small edge;
- bot: hundreds of tiny fills a day;
- cluster: groups of wallets that buy the same outcome within minutes of each other;
- ordinary: random entries, often after the news (chasing).
Some markets are about a perps coin ("BTC above 120k on Friday?"); their odds follow that coin.
A few markets are still open at `now` with fresh informed (and cluster) buying: the oracle's
targets. Everything is a pure function of the seed.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np

from quantcore.model.poly import PolyMarket, PolyOutcome, PolyPosition, PolyTrade

Kind = Literal["informed", "lucky", "market_maker", "bot", "cluster", "ordinary"]
HOUR = 3600.0
DAY = 86400.0


def _hex(seed: int, tag: str, n: int) -> str:
    return hashlib.sha256(f"{seed}:{tag}".encode()).hexdigest()[:n]


def _token(seed: int, tag: str) -> str:
    return str(int(_hex(seed, tag, 60), 16) % 10**76)


@dataclass
class SimMarket:
    condition_id: str
    market_id: str
    question: str
    version: Literal["v1", "v2"]
    token_ids: tuple[str, str]  # (Yes, No)
    start: float
    end: float
    news_at: float  # the moment the truth starts to show in the price
    winner: int  # 0 = Yes, 1 = No
    p0: float  # Yes price before the news
    category: str
    symbol: str | None = None  # linked perp
    liquidity_usd: float = 50_000.0
    open_target: bool = False  # still open at `now`, planted smart flow

    def yes_price(self, t: float, coin: CoinPath | None = None) -> float:
        if self.symbol is not None and coin is not None and t < self.news_at:
            # odds follow the coin: distance of the coin to the strike, squashed
            x = (coin.at(t) / coin.at(self.start) - 1.0) * 25.0
            base = 1.0 / (1.0 + math.exp(-x))
            return float(min(max(0.5 * self.p0 + 0.5 * base, 0.03), 0.97))
        if t < self.news_at:
            return self.p0
        target = 0.93 if self.winner == 0 else 0.07
        if t >= self.end:
            return 1.0 if self.winner == 0 else 0.0
        frac = min((t - self.news_at) / HOUR, 1.0)  # the move plays out over an hour
        return self.p0 + (target - self.p0) * frac

    def price(self, outcome: int, t: float, coin: CoinPath | None = None) -> float:
        y = self.yes_price(t, coin)
        return y if outcome == 0 else 1.0 - y

    def closed(self, now: float) -> bool:
        return self.end <= now


@dataclass
class CoinPath:
    """Hourly price path of the linked perp (geometric random walk)."""

    symbol: str
    t0: float
    prices: np.ndarray

    def at(self, t: float) -> float:
        i = int(min(max((t - self.t0) // HOUR, 0), len(self.prices) - 1))
        return float(self.prices[i])


@dataclass
class PolyWorld:
    seed: int
    now: float
    markets: list[SimMarket]
    wallets: list[str]
    kinds: dict[str, Kind]
    clusters: list[tuple[str, ...]]
    trades: list[PolyTrade]
    coin: CoinPath
    fee_rate_bps: float = 0.0
    leaderboard_all: list[tuple[str, float]] = field(default_factory=list)
    _by_wallet: dict[str, list[PolyTrade]] = field(default_factory=dict, repr=False)

    def truth(self, kind: Kind) -> set[str]:
        return {w for w, k in self.kinds.items() if k == kind}

    def market(self, condition_id: str) -> SimMarket:
        return next(m for m in self.markets if m.condition_id == condition_id)

    def model(self, m: SimMarket) -> PolyMarket:
        closed = m.closed(self.now)
        yes = m.yes_price(min(self.now, m.end), self.coin)
        if closed:
            yes = 1.0 if m.winner == 0 else 0.0
        return PolyMarket(
            market_id=m.market_id, condition_id=m.condition_id, question=m.question,
            slug=f"sim-{m.market_id}", version=m.version,
            outcomes=(
                PolyOutcome(name="Yes", token_id=m.token_ids[0], price=round(yes, 4)),
                PolyOutcome(name="No", token_id=m.token_ids[1], price=round(1 - yes, 4)),
            ),
            category=m.category, tags=(m.category,), volume_usd=m.liquidity_usd * 3,
            liquidity_usd=m.liquidity_usd,
            end_date=datetime.fromtimestamp(m.end, UTC), active=not closed, closed=closed,
            accepting_orders=not closed, tick_size=0.01, source="sim",
        )  # fmt: skip

    def book(self, token_id: str) -> tuple[SimMarket, float, float]:
        """(market, best bid, best ask) of a token now: a 2-tick spread around the price."""
        for m in self.markets:
            if token_id in m.token_ids:
                p = m.price(m.token_ids.index(token_id), min(self.now, m.end), self.coin)
                bid = max(round(p - 0.01, 2), 0.01)
                return m, bid, min(round(bid + 0.02, 2), 0.99)
        raise KeyError(token_id)

    def add_trade(self, trade: PolyTrade) -> None:
        """A fill made at the simulator's CLOB: it shows in the Data API feeds from now on."""
        self.trades.append(trade)
        if self._by_wallet:
            self._by_wallet.setdefault(trade.wallet, []).append(trade)

    def positions(self, wallet: str) -> list[PolyPosition]:
        """What the Data API v2 would report for the wallet: per token, shares, entry cost and
        realised PnL; resolved positions are redeemed, except every third loser of an
        ordinary or lucky wallet, left unredeemed (REDEEMABLE_LOST)."""
        book: dict[str, list[float]] = {}  # token → [shares, cost, proceeds, sold_shares]
        cond: dict[str, str] = {}
        if not self._by_wallet:
            for t in self.trades:
                self._by_wallet.setdefault(t.wallet, []).append(t)
        for t in self._by_wallet.get(wallet, []):
            row = book.setdefault(t.token_id, [0.0, 0.0, 0.0, 0.0])
            cond[t.token_id] = t.condition_id
            if t.side == "BUY":
                row[0] += t.size
                row[1] += t.size * t.price
            else:
                row[0] -= t.size
                row[2] += t.size * t.price
                row[3] += t.size
        out: list[PolyPosition] = []
        for i, (token, (shares, cost, proceeds, sold)) in enumerate(sorted(book.items())):
            m = self.market(cond[token])
            outcome = m.token_ids.index(token)
            bought = shares + sold
            avg = cost / bought if bought > 0 else 0.0
            sold_cost = avg * sold
            if m.closed(self.now):
                won = outcome == m.winner
                payout = shares * (1.0 if won else 0.0)
                unredeemed_loser = (
                    (not won)
                    and shares > 0
                    and self.kinds.get(wallet) in ("ordinary", "lucky")
                    and i % 3 == 0
                )
                if unredeemed_loser:
                    status, realised, unrealised = (
                        "REDEEMABLE_LOST",
                        proceeds - sold_cost,
                        -(cost - sold_cost),
                    )
                else:
                    status, realised, unrealised = "CLOSED", proceeds + payout - cost, 0.0
                size = shares if unredeemed_loser else 0.0
            else:
                price = m.price(outcome, self.now, self.coin)
                status, realised = "OPEN", proceeds - sold_cost
                unrealised = shares * price - (cost - sold_cost)
                size = shares
            out.append(
                PolyPosition(
                    wallet=wallet, token_id=token, condition_id=m.condition_id, status=status,
                    size=max(size, 0.0), avg_price=min(max(avg, 0.0), 1.0), cost_usd=cost,
                    current_value_usd=None, realized_pnl_usd=realised, unrealized_pnl_usd=unrealised,
                    outcome="Yes" if outcome == 0 else "No", outcome_index=outcome,
                    end_date=datetime.fromtimestamp(m.end, UTC), source="sim",
                )
            )  # fmt: skip
        return out


def build_world(
    seed: int = 7,
    now: float | None = None,
    days: float = 30.0,
    n_markets: int = 80,
    n_informed: int = 12,
    n_lucky: int = 12,
    n_mm: int = 4,
    n_bots: int = 4,
    cluster_sizes: tuple[int, ...] = (4, 5),
    n_ordinary: int = 120,
) -> PolyWorld:
    rng = np.random.default_rng(seed)
    now = float(now if now is not None else math.floor(datetime.now(UTC).timestamp() / HOUR) * HOUR)
    t0 = now - days * DAY
    hours = int(days * 24) + 24 * 7
    coin = CoinPath("BTCUSDT", t0, 100_000.0 * np.exp(np.cumsum(rng.normal(0, 0.004, hours))))

    markets: list[SimMarket] = []
    for i in range(n_markets):
        start = t0 + rng.uniform(0, days - 6) * DAY
        end = start + rng.uniform(2, 5) * DAY
        news = end - rng.uniform(8, 30) * HOUR
        linked = i % 10 == 0
        markets.append(
            SimMarket(
                condition_id="0x" + _hex(seed, f"c{i}", 64), market_id=str(100_000 + i),
                question=(f"Bitcoin above {100 + i}k on Friday?" if linked else f"Will event {i} happen?"),
                version="v2" if i % 4 == 3 else "v1",
                token_ids=(_token(seed, f"t{i}y"), _token(seed, f"t{i}n")),
                start=start, end=end, news_at=news, winner=int(rng.integers(0, 2)),
                p0=float(rng.uniform(0.3, 0.7)), category="Crypto" if linked else "Politics",
                symbol="BTCUSDT" if linked else None,
            )
        )  # fmt: skip
    # open targets: end in two days, news still ahead, fresh informed flow now
    for j in range(3):
        i = n_markets + j
        markets.append(
            SimMarket(
                condition_id="0x" + _hex(seed, f"c{i}", 64), market_id=str(100_000 + i),
                question=("Will BTC be above 120k on Friday?" if j == 0 else f"Will open event {j} happen?"),
                version="v1", token_ids=(_token(seed, f"t{i}y"), _token(seed, f"t{i}n")),
                start=now - 3 * DAY, end=now + 2 * DAY, news_at=now + 20 * HOUR, winner=0,
                p0=0.45, category="Crypto" if j == 0 else "Politics",
                symbol="BTCUSDT" if j == 0 else None, open_target=True,
            )
        )  # fmt: skip

    def addr(tag: str) -> str:
        return "0x" + _hex(seed, f"w:{tag}", 40)

    kinds: dict[str, Kind] = {}
    informed = [addr(f"inf{i}") for i in range(n_informed)]
    lucky = [addr(f"luck{i}") for i in range(n_lucky)]
    mms = [addr(f"mm{i}") for i in range(n_mm)]
    bots = [addr(f"bot{i}") for i in range(n_bots)]
    clusters = [
        tuple(addr(f"cl{g}_{k}") for k in range(size)) for g, size in enumerate(cluster_sizes)
    ]
    ordinary = [addr(f"ord{i}") for i in range(n_ordinary)]
    for ws, kind in (
        (informed, "informed"),
        (lucky, "lucky"),
        (mms, "market_maker"),
        (bots, "bot"),
        (ordinary, "ordinary"),
    ):
        for w in ws:
            kinds[w] = kind  # type: ignore[assignment]
    for group in clusters:
        for w in group:
            kinds[w] = "cluster"

    trades: list[PolyTrade] = []
    closed = [m for m in markets if not m.open_target and m.end <= now]
    live = [m for m in markets if not m.open_target and m.end > now]

    def fill(
        w: str,
        m: SimMarket,
        outcome: int,
        side: Literal["BUY", "SELL"],
        t: float,
        size: float,
        slip: float = 0.01,
    ) -> None:
        t = min(t, now - 1.0)
        if t < m.start or t >= m.end:
            return
        p = m.price(outcome, t, coin) + (slip if side == "BUY" else -slip)
        p = float(min(max(round(p, 3), 0.001), 0.999))
        trades.append(
            PolyTrade(
                wallet=w, side=side, token_id=m.token_ids[outcome], condition_id=m.condition_id,
                size=round(size, 2), price=p, time=datetime.fromtimestamp(t, UTC),
                tx_hash="0x" + _hex(seed, f"tx{len(trades)}", 64), outcome="Yes" if outcome == 0 else "No",
                outcome_index=outcome, source="sim",
            )
        )  # fmt: skip

    for w in informed:
        picks = rng.choice(
            len(closed), size=min(len(closed), int(rng.integers(14, 22))), replace=False
        )
        for k in picks:
            m = closed[k]
            right = rng.random() < 0.8
            outcome = m.winner if right else 1 - m.winner
            fill(w, m, outcome, "BUY", m.news_at - rng.uniform(6, 30) * HOUR, rng.uniform(200, 800))
    for w in lucky:
        picks = rng.choice(len(closed), size=int(rng.integers(3, 6)), replace=False)
        for n, k in enumerate(picks):
            m = closed[k]
            longshot = 0 if m.p0 < 0.5 else 1  # the cheaper side
            # most of their long shots came in (that is what makes them look brilliant)
            outcome = m.winner if n < len(picks) - 1 else 1 - m.winner
            if outcome != longshot:
                outcome = m.winner
            fill(
                w,
                m,
                outcome,
                "BUY",
                m.start + rng.uniform(0, 1) * (m.news_at - m.start),
                rng.uniform(50, 300),
            )
    for w in mms:
        for m in rng.choice(
            np.array(closed + live, dtype=object), size=min(30, len(closed)), replace=False
        ):
            for _ in range(4):
                t = m.start + rng.uniform(0, 1) * (m.end - m.start)
                fill(w, m, 0, "BUY", t, rng.uniform(100, 300), slip=-0.005)
                fill(w, m, 1, "BUY", t + 60, rng.uniform(100, 300), slip=-0.005)
    for w in bots:
        t_start = now - rng.uniform(3, 6) * DAY
        pool = closed + live
        for _ in range(1500):
            t = t_start + rng.uniform(0, 2) * DAY
            active = [m for m in pool if m.start <= t < m.end]
            if not active:
                continue
            m = active[int(rng.integers(0, len(active)))]
            fill(
                w,
                m,
                int(rng.integers(0, 2)),
                "BUY" if rng.random() < 0.5 else "SELL",
                t,
                rng.uniform(1, 10),
            )
    for group in clusters:
        picks = rng.choice(len(closed), size=7, replace=False)
        for k in picks:
            m = closed[k]
            outcome = int(rng.integers(0, 2))
            t = m.start + rng.uniform(0.1, 0.9) * (m.end - m.start)
            for w in group:
                fill(w, m, outcome, "BUY", t + rng.uniform(0, 240), rng.uniform(100, 400))
    for w in ordinary:
        picks = rng.choice(len(closed) + len(live), size=int(rng.integers(6, 16)), replace=False)
        pool = closed + live
        for k in picks:
            m = pool[k]
            t = m.start + rng.uniform(0, 1) * (m.end - m.start)
            # after the news the crowd chases the favourite; before it, a coin flip
            outcome = m.winner if t > m.news_at and rng.random() < 0.7 else int(rng.integers(0, 2))
            fill(w, m, outcome, "BUY", t, rng.uniform(20, 300))
            if rng.random() < 0.3:
                fill(w, m, outcome, "SELL", t + rng.uniform(1, 24) * HOUR, rng.uniform(5, 20))
    # the open targets: informed wallets and one cluster buy Yes in the last hours
    for m in [m for m in markets if m.open_target]:
        for w in informed[:4]:
            fill(w, m, 0, "BUY", now - rng.uniform(0.5, 3) * HOUR, rng.uniform(300, 600))
        for w in clusters[0]:
            fill(w, m, 0, "BUY", now - 2 * HOUR + rng.uniform(0, 240), rng.uniform(100, 200))
        for w in ordinary[:10]:
            fill(
                w,
                m,
                int(rng.integers(0, 2)),
                "BUY",
                now - rng.uniform(1, 48) * HOUR,
                rng.uniform(20, 100),
            )
    trades.sort(key=lambda t: (t.time, t.wallet))

    world = PolyWorld(
        seed=seed, now=now, markets=markets, wallets=sorted(kinds), kinds=kinds,
        clusters=clusters, trades=trades, coin=coin,
    )  # fmt: skip
    # the ALL-time leaderboard: realised PnL of every wallet, best first
    pnl = {
        w: sum(p.realized_pnl_usd for p in world.positions(w) if p.closed) for w in world.wallets
    }
    world.leaderboard_all = sorted(pnl.items(), key=lambda kv: -kv[1])
    return world
