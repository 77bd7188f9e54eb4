"""The simulated coin universe: symbols, price levels, volatility, open interest, exchange filters.

BTC and ETH come first, then well-known alts with realistic price levels, then synthetic coins
(`AAA1USDT`, `AAB1USDT`, ...) when more are asked for. Filters (tick size, qty step, max
leverage) follow from the price and the open interest the way an exchange would set them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from string import ascii_uppercase

import numpy as np

QUOTE = "USDT"
MIN_PRICE = 0.0005
MAX_SYNTHETIC_PRICE = 500.0

# base coin, price one year before the simulation starts, daily volatility, open interest (USD)
NAMED_COINS: tuple[tuple[str, float, float, float], ...] = (
    ("BTC", 60000.0, 0.025, 8.0e9),
    ("ETH", 3000.0, 0.035, 4.0e9),
    ("SOL", 150.0, 0.05, 1.2e9),
    ("XRP", 0.55, 0.045, 6.0e8),
    ("DOGE", 0.12, 0.06, 5.0e8),
    ("BNB", 580.0, 0.035, 3.0e8),
    ("ADA", 0.45, 0.05, 2.5e8),
    ("AVAX", 30.0, 0.055, 2.0e8),
    ("LINK", 14.0, 0.055, 2.0e8),
    ("SUI", 1.2, 0.07, 1.5e8),
    ("LTC", 75.0, 0.045, 1.5e8),
    ("BCH", 380.0, 0.045, 1.5e8),
    ("DOT", 6.5, 0.05, 1.2e8),
    ("NEAR", 5.0, 0.06, 1.0e8),
    ("APT", 9.0, 0.06, 9.0e7),
    ("ARB", 0.9, 0.06, 9.0e7),
    ("OP", 1.8, 0.065, 8.0e7),
    ("WIF", 2.5, 0.10, 8.0e7),
    ("FIL", 5.0, 0.055, 6.0e7),
    ("INJ", 22.0, 0.07, 6.0e7),
    ("TIA", 7.0, 0.075, 6.0e7),
    ("ENA", 0.6, 0.09, 6.0e7),
    ("SEI", 0.4, 0.08, 5.0e7),
    ("ATOM", 8.0, 0.05, 5.0e7),
    ("UNI", 8.0, 0.055, 5.0e7),
    ("AAVE", 95.0, 0.06, 5.0e7),
    ("ORDI", 35.0, 0.09, 4.0e7),
    ("JUP", 0.9, 0.08, 4.0e7),
    ("TRX", 0.12, 0.03, 4.0e7),
    ("ETC", 25.0, 0.05, 4.0e7),
    ("HBAR", 0.08, 0.06, 3.0e7),
    ("ICP", 10.0, 0.06, 3.0e7),
    ("RUNE", 5.0, 0.08, 3.0e7),
    ("NOT", 0.008, 0.11, 2.5e7),
    ("STX", 2.0, 0.075, 2.5e7),
    ("XLM", 0.1, 0.045, 2.0e7),
    ("MKR", 2200.0, 0.055, 2.0e7),
    ("GALA", 0.03, 0.08, 2.0e7),
    ("PEOPLE", 0.05, 0.10, 2.0e7),
    ("SAND", 0.4, 0.06, 2.0e7),
    ("ALGO", 0.15, 0.055, 1.5e7),
    ("VET", 0.025, 0.055, 1.5e7),
    ("MANA", 0.4, 0.06, 1.5e7),
    ("CHZ", 0.08, 0.06, 1.2e7),
    ("JASMY", 0.02, 0.09, 1.2e7),
    ("ROSE", 0.07, 0.07, 8.0e6),
    ("YFI", 6000.0, 0.06, 8.0e6),
    ("CKB", 0.012, 0.08, 6.0e6),
    ("HOT", 0.002, 0.07, 6.0e6),
    ("ONE", 0.015, 0.07, 5.0e6),
    ("ZIL", 0.02, 0.06, 5.0e6),
    ("SPELL", 0.0006, 0.09, 5.0e6),
)


@dataclass(frozen=True)
class CoinSpec:
    """One simulated linear perpetual."""

    index: int
    symbol: str
    base: str
    price0: float  # price at the start of the synthetic past; the walk reverts towards it
    daily_vol: float  # standard deviation of daily log returns
    oi_usd: float  # typical open interest value
    tick: float
    price_decimals: int
    qty_step: float
    qty_decimals: int
    max_leverage: float
    funding_cap: float  # |funding rate| cap per interval (fraction)
    launch_ms: int

    @property
    def is_major(self) -> bool:
        return self.base in ("BTC", "ETH")


RISK_TIERS = 5  # the risk-limit ladder served: maintenance margin +0.5 % and leverage down per tier
FIRST_TIER_MMR = 0.005  # = levels.MMR: the simulator's liquidations use the first tier's rate


@dataclass(frozen=True)
class RiskTierSpec:
    """One tier of a simulated coin's risk-limit ladder (/v5/market/risk-limit)."""

    limit_usd: float
    mmr: float
    max_leverage: float
    mm_deduction: float  # keeps maintenance margin continuous across tiers (Bybit's field)


def risk_tiers(coin: CoinSpec) -> list[RiskTierSpec]:
    """The coin's public risk-limit ladder: tier k (1…RISK_TIERS) up to k × $2 M (majors) or
    k × $200 k, maintenance margin k × 0.5 %, max leverage the coin's / k."""
    base = 2_000_000.0 if coin.is_major else 200_000.0
    out: list[RiskTierSpec] = []
    deduction = 0.0
    for k in range(1, RISK_TIERS + 1):
        mmr = FIRST_TIER_MMR * k
        if k > 1:
            deduction += base * (k - 1) * (mmr - FIRST_TIER_MMR * (k - 1))
        out.append(RiskTierSpec(base * k, mmr, max(1.0, coin.max_leverage / k), deduction))
    return out


def synthetic_base(k: int) -> str:
    """AAA1, AAB1, ..., ZZZ1, AAA2, ...: never collides with a named coin."""
    letters = len(ascii_uppercase)
    per_round = letters**3
    digit, rest = divmod(k, per_round)
    a, rest = divmod(rest, letters * letters)
    b, c = divmod(rest, letters)
    return f"{ascii_uppercase[a]}{ascii_uppercase[b]}{ascii_uppercase[c]}{digit + 1}"


def decimals_of(step: float) -> int:
    return max(0, -math.floor(math.log10(step) + 1e-9))


def tick_for(price: float) -> float:
    """About 1e4 to 1e5 ticks per price unit: 0.1 for BTC, 0.01 for ETH and SOL."""
    exponent = math.floor(math.log10(price)) - (5 if price >= 1000 else 4)
    return float(10.0**exponent)


def qty_step_for(price: float) -> float:
    """A minimum order of roughly 10 to 100 USD: 0.001 BTC, 0.01 ETH, 100 of a 0.5 coin."""
    exponent = min(5, max(-3, round(math.log10(30.0 / price))))
    return float(10.0**exponent)


def max_leverage_for(rank: int, oi_usd: float) -> float:
    if rank < 2:
        return 100.0
    if oi_usd >= 5e8:
        return 75.0
    if oi_usd >= 1e8:
        return 50.0
    if oi_usd >= 2e7:
        return 25.0
    return 12.5


def funding_cap_for(oi_usd: float) -> float:
    if oi_usd >= 1e9:
        return 0.00375
    if oi_usd >= 1e8:
        return 0.01
    return 0.02


def build_universe(n: int, seed: int, start_ms: int) -> list[CoinSpec]:
    """`n` coins, deterministic for `seed`; launch times lie well before the synthetic past."""
    if n < 1:
        raise ValueError("the universe needs at least one coin")
    rng = np.random.default_rng([seed, 1])
    rows: list[tuple[str, float, float, float]] = list(NAMED_COINS[:n])
    for k in range(n - len(rows)):
        price = float(np.exp(rng.uniform(np.log(MIN_PRICE), np.log(MAX_SYNTHETIC_PRICE))))
        vol = float(rng.uniform(0.05, 0.14))
        oi = float(np.exp(rng.uniform(np.log(2e6), np.log(6e7))))
        rows.append((synthetic_base(k), price, vol, oi))
    year_ms = 366 * 86_400_000
    coins = []
    for i, (base, price, vol, oi) in enumerate(rows):
        tick = tick_for(price)
        step = qty_step_for(price)
        launch = start_ms - year_ms - int(rng.integers(30, 1500)) * 86_400_000
        coins.append(
            CoinSpec(
                index=i,
                symbol=f"{base}{QUOTE}",
                base=base,
                price0=price,
                daily_vol=vol,
                oi_usd=oi,
                tick=tick,
                price_decimals=decimals_of(tick),
                qty_step=step,
                qty_decimals=decimals_of(step),
                max_leverage=max_leverage_for(i, oi),
                funding_cap=funding_cap_for(oi),
                launch_ms=launch,
            )
        )
    return coins
