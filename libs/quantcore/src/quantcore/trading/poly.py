"""Polymarket copy-trading rules: fees, tick and size rules, capped sizing, gradual exits.

Pure functions over Decimal (money is never float here). Prices are probabilities strictly
inside (0, 1); sizes are shares; money is USD (pUSD).

- **Taker fee** (https://docs.polymarket.com/trading/fees): `C × rate × (p(1−p))^exponent`
  for C shares at price p, paid by takers only, floored to 5 decimals (the venue's charge).
  `rate` is the market's fee-schedule rate as a ratio (0.03 = 3 %), `exponent` a whole number.
- **Exposure** is what our open positions and open buy orders cost (shares × price + fees):
  a buy fills at its limit or better, so an order never adds more than it reserved. The cap is
  `risk_cap × equity` in total and `market_cap × equity` per market; `size_entry` only ever
  returns an order that keeps both, and `excess_after_fills` tells how far a drop in equity or
  an unexpected fill took us above the cap (the trader trims that and opens nothing new).
- **Gradual exits**: when the followed wallets leave, the edge decays or resolution nears, the
  position is sold in steps of `step_pct` of the entry size (10 % by default); a remainder
  below the market's minimum order goes with the last step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from enum import StrEnum

from quantcore.math.poly import taker_fee as fee_formula
from quantcore.trading import monitor

ZERO = Decimal(0)
ONE = Decimal(1)
FEE_QUANTUM = Decimal("0.00001")  # fees are floored to 5 decimals
SHARE_STEP = Decimal("0.01")  # CLOB share sizes carry 2 decimals
DEFAULT_TICK = Decimal("0.01")
DEFAULT_MIN_SIZE = Decimal(5)


class RuleError(ValueError):
    """An input breaks a market rule; `reason` is the short code the journal records."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class FeeSchedule:
    rate: Decimal = ZERO  # ratio, 0.03 = 3 %
    exponent: int = 1

    def __post_init__(self) -> None:
        if self.rate < 0 or self.exponent < 0:
            raise RuleError("bad_fee_schedule", f"rate {self.rate} exponent {self.exponent}")


@dataclass(frozen=True)
class MarketRules:
    tick: Decimal = DEFAULT_TICK
    min_size: Decimal = DEFAULT_MIN_SIZE
    fees: FeeSchedule = FeeSchedule()

    def __post_init__(self) -> None:
        if not ZERO < self.tick < ONE:
            raise RuleError("bad_tick", f"tick {self.tick} outside (0, 1)")
        if self.min_size < 0:
            raise RuleError("bad_min_size", f"min size {self.min_size}")


def check_price(price: Decimal) -> Decimal:
    """A tradable price is strictly inside (0, 1)."""
    if not price.is_finite() or not ZERO < price < ONE:
        raise RuleError("price_out_of_range", f"price {price} outside (0, 1)")
    return price


def taker_fee(shares: Decimal, price: Decimal, fees: FeeSchedule) -> Decimal:
    """The venue's charge: the one fee formula (quantcore.math.poly.taker_fee,
    `C × rate × (p(1−p))^exponent`) floored to 5 decimals, for a tradable price and size."""
    check_price(price)
    if shares < 0:
        raise RuleError("bad_size", f"negative size {shares}")
    raw = fee_formula(shares, price, fees.rate, fees.exponent)
    return raw.quantize(FEE_QUANTUM, rounding=ROUND_DOWN)


def on_tick(price: Decimal, tick: Decimal) -> bool:
    return (price / tick) == (price / tick).to_integral_value()


def buy_limit(price: Decimal, rules: MarketRules) -> Decimal:
    """The limit of a buy at most `price`: floored onto the tick grid, still inside (0, 1)."""
    check_price(price)
    limit = (price / rules.tick).to_integral_value(rounding=ROUND_DOWN) * rules.tick
    return check_price(limit)


def sell_limit(price: Decimal, rules: MarketRules) -> Decimal:
    """The limit of a sell at least `price`: ceiled onto the tick grid, still inside (0, 1)."""
    check_price(price)
    limit = (price / rules.tick).to_integral_value(rounding=ROUND_UP) * rules.tick
    return check_price(limit)


def check_order(price: Decimal, shares: Decimal, rules: MarketRules) -> None:
    """The CLOB's order rules: price on the tick grid inside (0, 1), size ≥ minimum, 2 decimals."""
    check_price(price)
    if not on_tick(price, rules.tick):
        raise RuleError("off_tick", f"price {price} not a multiple of tick {rules.tick}")
    if shares <= 0 or shares < rules.min_size:
        raise RuleError("below_min_size", f"size {shares} below minimum {rules.min_size}")
    if shares != shares.quantize(SHARE_STEP, rounding=ROUND_DOWN):
        raise RuleError("bad_size_step", f"size {shares} has more than 2 decimals")


def floor_shares(shares: Decimal) -> Decimal:
    return max(ZERO, shares.quantize(SHARE_STEP, rounding=ROUND_DOWN))


def buy_cost(shares: Decimal, price: Decimal, fees: FeeSchedule) -> Decimal:
    """What buying `shares` at `price` costs, fee included (the exposure it adds)."""
    return shares * price + taker_fee(shares, price, fees)


@dataclass(frozen=True)
class Caps:
    equity: Decimal  # poly equity (cash + positions at cost)
    risk_cap: Decimal = Decimal("0.10")  # POLY_RISK_CAP: total exposure ≤ risk_cap × equity
    market_cap: Decimal = Decimal("0.05")  # one market ≤ market_cap × equity

    @property
    def total_limit(self) -> Decimal:
        return max(ZERO, self.equity) * self.risk_cap

    @property
    def market_limit(self) -> Decimal:
        return min(self.total_limit, max(ZERO, self.equity) * self.market_cap)


@dataclass(frozen=True)
class Exposure:
    total: Decimal  # every open position and open buy order, at cost
    market: Decimal  # the same for the signal's market


@dataclass(frozen=True)
class Entry:
    shares: Decimal
    limit: Decimal
    cost: Decimal  # shares × limit + fee: what the order may add to exposure


def size_entry(
    suggested_usd: Decimal,
    price: Decimal,
    rules: MarketRules,
    exposure: Exposure,
    caps: Caps,
) -> Entry:
    """The buy the oracle's suggestion allows under both caps; RuleError with the reason when
    none does (cap reached, below the minimum size, bad price)."""
    limit = buy_limit(price, rules)
    if suggested_usd <= 0:
        raise RuleError("no_size", f"suggested size {suggested_usd}")
    room_total = caps.total_limit - exposure.total
    room_market = caps.market_limit - exposure.market
    budget = min(suggested_usd, room_total, room_market)
    if budget <= 0:
        which = "total" if room_total <= room_market else "market"
        raise RuleError(f"{which}_cap_reached", f"exposure {exposure} caps {caps}")
    per_share = limit + fee_formula(ONE, limit, rules.fees.rate, rules.fees.exponent)
    shares = floor_shares(budget / per_share)
    while shares > 0 and buy_cost(shares, limit, rules.fees) > budget:  # fee flooring is per order
        shares -= SHARE_STEP
    if shares < rules.min_size or shares <= 0:
        raise RuleError("below_min_size", f"budget {budget:.2f} buys {shares} < {rules.min_size}")
    return Entry(shares=shares, limit=limit, cost=buy_cost(shares, limit, rules.fees))


def excess_after_fills(exposure_total: Decimal, caps: Caps) -> Decimal:
    """How far exposure is above the total cap (0 when within): re-checked after every fill."""
    return max(ZERO, exposure_total - caps.total_limit)


class ExitReason(StrEnum):
    WALLETS_EXITED = "wallets_exited"
    EDGE_DECAYED = "edge_decayed"
    RESOLUTION_NEAR = "resolution_near"
    OVER_CAP = "over_cap"


@dataclass(frozen=True)
class ExitPolicy:
    step_pct: Decimal = Decimal("0.10")  # share of the entry size sold per step
    wallets_left_share: Decimal = Decimal("0.5")  # exit once half the followed wallets are out
    min_edge: Decimal = ZERO  # exit once the edge is at or below this
    resolution_hours: Decimal = Decimal(24)  # exit inside this many hours of the market's end


def exit_reason(
    policy: ExitPolicy,
    *,
    wallets_followed: int,
    wallets_holding: int,
    edge: Decimal | None,
    end_date: datetime | None,
    now: datetime,
) -> ExitReason | None:
    """Why the position should be wound down now (None: keep it)."""
    if wallets_followed > 0:
        left = Decimal(wallets_followed - wallets_holding) / Decimal(wallets_followed)
        if left >= policy.wallets_left_share:
            return ExitReason.WALLETS_EXITED
    if edge is not None and edge <= policy.min_edge:
        return ExitReason.EDGE_DECAYED
    if end_date is not None and end_date - now <= timedelta(hours=float(policy.resolution_hours)):
        return ExitReason.RESOLUTION_NEAR
    return None


def exit_step(
    held: Decimal, entry_shares: Decimal, policy: ExitPolicy, rules: MarketRules
) -> Decimal:
    """Shares to sell in this exit step: `step_pct` of the entry size, at least the minimum
    order; the whole rest when what would remain is below the minimum (or the step is all)."""
    if held <= 0:
        return ZERO
    step = floor_shares(max(entry_shares, held) * policy.step_pct)
    step = max(step, rules.min_size, SHARE_STEP)
    if step >= held or held - step < rules.min_size:
        return held
    return step


def exit_plan(
    held: Decimal, entry_shares: Decimal, policy: ExitPolicy, rules: MarketRules
) -> list[Decimal]:
    """Every step of a full gradual exit (what repeated `exit_step` calls sell)."""
    steps: list[Decimal] = []
    while held > 0:
        sold = exit_step(held, entry_shares, policy, rules)
        steps.append(sold)
        held -= sold
    return steps


@dataclass(frozen=True)
class Level:
    price: Decimal
    shares: Decimal


def walk_book(levels: list[Level], buy: bool, limit: Decimal, shares: Decimal) -> list[Level]:
    """The fills a taker order of `shares` at `limit` gets from the opposite side of the book
    (asks best-first for a buy, bids best-first for a sell): levels at or better than the limit,
    in order, until the size is done or the book is (a partial fill)."""
    fills: list[Level] = []
    left = shares
    for lv in levels:
        if left <= 0:
            break
        if (buy and lv.price > limit) or (not buy and lv.price < limit):
            break
        take = min(left, floor_shares(lv.shares))
        if take > 0:
            fills.append(Level(lv.price, take))
            left -= take
    return fills


# --- records: a copy trade's entry, exit steps, close and PnL % ------------------------------
# A poly trade is one position in one outcome token, from its first buy until it is flat again.
# Its money at risk is what the shares cost, fees included (no leverage: a binary share can lose
# at most its price). PnL % goes through the one formula of the trade log
# (quantcore.trading.monitor.pnl_pct_price / pnl_pct_margin) with that cost as the margin.


@dataclass(frozen=True)
class Filled:
    """What an order filled at the venue: shares, their average price, the fee charged."""

    shares: Decimal
    avg_price: Decimal | None
    fee: Decimal


@dataclass(frozen=True)
class EntryRecord:
    shares: Decimal  # bought over the trade's entries
    avg_price: Decimal | None  # their average fill (fees apart)
    cost: Decimal  # shares × price + fees: the margin, the money at risk
    fees: Decimal


def entry_record(buys: Sequence[Filled]) -> EntryRecord:
    shares = sum((b.shares for b in buys if b.shares > 0), ZERO)
    notional = sum(
        (b.shares * b.avg_price for b in buys if b.shares > 0 and b.avg_price is not None), ZERO
    )
    fees = sum((b.fee for b in buys), ZERO)
    return EntryRecord(
        shares=shares,
        avg_price=notional / shares if shares > 0 else None,
        cost=notional + fees,
        fees=fees,
    )


def pnl_pct(pnl: Decimal, cost: Decimal, shares: Decimal) -> float | None:
    """PnL in percent of the cost (fees included) of `shares`: the trade log's one formula
    (monitor.pnl_pct_margin) with the cost per share as the entry and no leverage. None when
    nothing was at risk."""
    if cost <= 0 or shares <= 0:
        return None
    return monitor.pnl_pct_margin(pnl, cost / shares, shares, ONE)


@dataclass(frozen=True)
class StepOut:
    """One exit step or redemption of a trade (as poly_copy_steps records it)."""

    shares: Decimal
    price: Decimal | None  # the average sell price; 1 or 0 at redemption
    pnl: Decimal  # proceeds after fees − the cost basis taken out
    reason: str


@dataclass(frozen=True)
class CloseRecord:
    exit_price: Decimal | None
    pnl_usd: Decimal
    pnl_pct_price: float | None  # the price move from the average entry to the average exit
    pnl_pct_margin: float | None  # net PnL over the cost (fees included)
    reason: str


RESOLVED = "resolved"  # the close reason of a trade that ended in redemption


def close_record(entry: EntryRecord, steps: Sequence[StepOut]) -> CloseRecord:
    """The closed trade from its entry and every step that took shares out (in time order): the
    reason is the last step's (a redemption's is RESOLVED)."""
    if not steps:
        raise ValueError("no exit step: the trade has not closed")
    out = sum((s.shares for s in steps), ZERO)
    priced = [(s.shares, s.price) for s in steps if s.price is not None]
    exit_price = (
        sum((n * p for n, p in priced), ZERO) / sum((n for n, _ in priced), ZERO)
        if priced and sum((n for n, _ in priced), ZERO) > 0
        else None
    )
    pnl = sum((s.pnl for s in steps), ZERO)
    price_pct = (
        monitor.pnl_pct_price("long", entry.avg_price, exit_price)
        if entry.avg_price is not None and entry.avg_price > 0 and exit_price is not None
        else None
    )
    return CloseRecord(
        exit_price=exit_price,
        pnl_usd=pnl,
        pnl_pct_price=price_pct,
        pnl_pct_margin=pnl_pct(pnl, entry.cost, entry.shares if out > 0 else ZERO),
        reason=steps[-1].reason,
    )
