"""Polymarket copy-trading rules: fee formula and rounding, tick/min size, caps, gradual exits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantcore.trading import poly
from quantcore.trading.poly import (
    Caps,
    ExitPolicy,
    ExitReason,
    Exposure,
    FeeSchedule,
    MarketRules,
    RuleError,
)

D = Decimal
ticks = st.sampled_from([D("0.01"), D("0.001"), D("0.1"), D("0.0001")])
prices = st.decimals(min_value=D("0.0001"), max_value=D("0.9999"), places=4)
shares = st.decimals(min_value=D(0), max_value=D(1_000_000), places=2)
fee_schedules = st.builds(
    FeeSchedule,
    rate=st.decimals(min_value=D(0), max_value=D("0.25"), places=4),
    exponent=st.integers(0, 4),
)


# --- fees -------------------------------------------------------------------------------------


def test_fee_formula_known_value() -> None:
    # 100 shares at 0.5, rate 3 %, exponent 1: 100 × 0.03 × 0.25 = 0.75
    assert poly.taker_fee(D(100), D("0.5"), FeeSchedule(D("0.03"), 1)) == D("0.75000")
    # exponent 2: 100 × 0.03 × 0.0625 = 0.1875
    assert poly.taker_fee(D(100), D("0.5"), FeeSchedule(D("0.03"), 2)) == D("0.18750")
    # floored to 5 decimals: 1 × 0.03 × 0.0999 × 0.9001... → 0.002697 → 0.00269
    assert poly.taker_fee(D(1), D("0.1"), FeeSchedule(D("0.03"), 1)) == D("0.00270")
    assert poly.taker_fee(D(1), D("0.123"), FeeSchedule(D("0.03"), 1)) == D("0.00323")


@given(c=shares, p=prices, fees=fee_schedules)
def test_fee_within_bounds(c: Decimal, p: Decimal, fees: FeeSchedule) -> None:
    fee = poly.taker_fee(c, p, fees)
    exact = c * fees.rate * (p * (1 - p)) ** fees.exponent
    assert 0 <= fee <= exact < fee + D("0.00001")
    # p(1-p) ≤ 1/4, so the fee is at most C × rate / 4^exponent
    assert fee <= c * fees.rate / D(4) ** fees.exponent
    # symmetric in p ↔ 1-p
    assert fee == poly.taker_fee(c, 1 - p, fees)


@pytest.mark.parametrize("p", [D(0), D(1), D("-0.1"), D("1.5"), D("NaN")])
def test_price_outside_open_interval_refused(p: Decimal) -> None:
    with pytest.raises(RuleError) as err:
        poly.taker_fee(D(10), p, FeeSchedule(D("0.03")))
    assert err.value.reason == "price_out_of_range"


# --- tick and min size ------------------------------------------------------------------------


@given(p=prices, tick=ticks)
def test_limits_land_on_the_tick_grid(p: Decimal, tick: Decimal) -> None:
    rules = MarketRules(tick=tick)
    if p >= tick:  # a buy floors onto the grid (below the first tick there is no price)
        limit = poly.buy_limit(p, rules)
        assert poly.on_tick(limit, tick) and limit <= p and p - limit < tick
    else:
        with pytest.raises(RuleError, match="price_out_of_range"):
            poly.buy_limit(p, rules)
    if p <= 1 - tick:  # a sell ceils onto the grid
        limit = poly.sell_limit(p, rules)
        assert poly.on_tick(limit, tick) and limit >= p and limit - p < tick
    else:
        with pytest.raises(RuleError, match="price_out_of_range"):
            poly.sell_limit(p, rules)


def test_order_rules() -> None:
    rules = MarketRules(tick=D("0.01"), min_size=D(5))
    poly.check_order(D("0.55"), D(5), rules)
    for price, size, reason in [
        (D("0.555"), D(10), "off_tick"),
        (D("0.55"), D("4.99"), "below_min_size"),
        (D("0.55"), D("5.001"), "bad_size_step"),
        (D("1.00"), D(10), "price_out_of_range"),
        (D("0"), D(10), "price_out_of_range"),
    ]:
        with pytest.raises(RuleError) as err:
            poly.check_order(price, size, rules)
        assert err.value.reason == reason


def test_bad_market_rules_refused() -> None:
    with pytest.raises(RuleError):
        MarketRules(tick=D(0))
    with pytest.raises(RuleError):
        MarketRules(tick=D(1))


# --- sizing under the caps --------------------------------------------------------------------


def test_size_entry_takes_the_smallest_room() -> None:
    rules = MarketRules(tick=D("0.01"), min_size=D(5))
    caps = Caps(equity=D(1000), risk_cap=D("0.10"), market_cap=D("0.05"))
    entry = poly.size_entry(D(500), D("0.40"), rules, Exposure(D(0), D(0)), caps)
    assert entry.cost <= D(50) and entry.shares == D(125)  # market cap 50 / 0.40
    entry = poly.size_entry(D(500), D("0.40"), rules, Exposure(D(90), D(0)), caps)
    assert entry.cost <= D(10) and entry.shares == D(25)  # total room 10
    with pytest.raises(RuleError) as err:
        poly.size_entry(D(500), D("0.40"), rules, Exposure(D(100), D(0)), caps)
    assert err.value.reason == "total_cap_reached"
    with pytest.raises(RuleError) as err:
        poly.size_entry(D(500), D("0.40"), rules, Exposure(D("98.5"), D(0)), caps)
    assert err.value.reason == "below_min_size"


signal = st.tuples(
    st.decimals(min_value=D(1), max_value=D(5000), places=2),  # suggested usd
    prices,
    st.integers(0, 4),  # market
    st.floats(0, 1),  # fraction that fills
    st.floats(0, 1),  # fill price within [.., limit]
)
equity_moves = st.decimals(min_value=D("-0.5"), max_value=D("0.5"), places=2)


@given(
    steps=st.lists(st.one_of(signal, equity_moves), max_size=40),
    risk_cap=st.decimals(min_value=D("0.01"), max_value=D(1), places=2),
    market_cap=st.decimals(min_value=D("0.01"), max_value=D(1), places=2),
    fees=fee_schedules,
    tick=ticks,
)
def test_no_sequence_of_signals_and_fills_exceeds_the_cap(
    steps: list, risk_cap: Decimal, market_cap: Decimal, fees: FeeSchedule, tick: Decimal
) -> None:
    """Orders reserve their worst-case cost; fills at or below the limit never add more; an
    equity drop is trimmed back to the cap (re-check after fills) before anything new."""
    rules = MarketRules(tick=tick, min_size=D(5), fees=fees)
    equity = D(1000)
    held: dict[int, Decimal] = {}  # market → exposure at cost (positions + open orders)
    for step in steps:
        caps = Caps(equity=equity, risk_cap=risk_cap, market_cap=market_cap)
        if isinstance(step, Decimal):  # equity moved (PnL elsewhere): re-check and trim
            equity = max(D(1), equity * (1 + step))
            caps = Caps(equity=equity, risk_cap=risk_cap, market_cap=market_cap)
            excess = poly.excess_after_fills(sum(held.values(), D(0)), caps)
            for market in sorted(held):
                cut = min(excess, held[market])
                held[market] -= cut
                excess -= cut
        else:
            usd, price, market, filled, px = step
            exposure = Exposure(sum(held.values(), D(0)), held.get(market, D(0)))
            try:
                entry = poly.size_entry(usd, price, rules, exposure, caps)
            except RuleError:
                continue
            qty = poly.floor_shares(entry.shares * D(str(filled)))
            better = (entry.limit * D(str(px)) / tick).to_integral_value(rounding="ROUND_DOWN")
            fill_px = better * tick if better > 0 else entry.limit  # at or below the limit
            spent = poly.buy_cost(qty, fill_px, fees) if qty > 0 else D(0)
            assert spent <= entry.cost
            unfilled_reserve = entry.cost - poly.buy_cost(qty, entry.limit, fees)
            held[market] = held.get(market, D(0)) + spent + max(D(0), unfilled_reserve)
            assert held[market] <= caps.market_limit
        assert sum(held.values(), D(0)) <= caps.total_limit
        assert poly.excess_after_fills(sum(held.values(), D(0)), caps) == 0


# --- gradual exits ----------------------------------------------------------------------------


def test_exit_steps_of_ten_percent() -> None:
    rules = MarketRules(min_size=D(5))
    plan = poly.exit_plan(D(100), D(100), ExitPolicy(), rules)
    assert plan == [D(10)] * 9 + [D(10)]
    plan = poly.exit_plan(D(100), D(100), ExitPolicy(), MarketRules(min_size=D(15)))
    assert plan == [D(15)] * 5 + [D(25)]  # the last remainder below the minimum goes with it


@given(
    held=st.decimals(min_value=D("0.01"), max_value=D(100_000), places=2),
    step=st.decimals(min_value=D("0.01"), max_value=D(1), places=2),
    min_size=st.decimals(min_value=D(0), max_value=D(50), places=2),
)
def test_exits_are_monotone_and_complete(held: Decimal, step: Decimal, min_size: Decimal) -> None:
    rules = MarketRules(min_size=min_size)
    plan = poly.exit_plan(held, held, ExitPolicy(step_pct=step), rules)
    assert sum(plan, D(0)) == held  # the position ends flat
    assert all(s > 0 for s in plan)  # every step sells something: held strictly decreases
    assert len(plan) <= held / plan[0] + 1  # equal steps, the last one takes the rest
    assert all(s >= min(min_size, held) for s in plan[:-1])  # no step under the min order
    remaining = held
    for s in plan[:-1]:
        remaining -= s
        assert remaining >= min_size  # never left with an unsellable remainder


def test_exit_reasons() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    policy = ExitPolicy()
    kw = {"edge": D("0.05"), "end_date": now + timedelta(days=10), "now": now}
    assert poly.exit_reason(policy, wallets_followed=4, wallets_holding=4, **kw) is None
    got = poly.exit_reason(policy, wallets_followed=4, wallets_holding=2, **kw)
    assert got is ExitReason.WALLETS_EXITED
    got = poly.exit_reason(policy, wallets_followed=4, wallets_holding=4, **(kw | {"edge": D(0)}))
    assert got is ExitReason.EDGE_DECAYED
    soon = kw | {"end_date": now + timedelta(hours=3)}
    got = poly.exit_reason(policy, wallets_followed=4, wallets_holding=4, **soon)
    assert got is ExitReason.RESOLUTION_NEAR


# --- walking the book -------------------------------------------------------------------------

levels = st.lists(
    st.tuples(prices, st.decimals(min_value=D(0), max_value=D(500), places=2)), max_size=8
)


@given(raw=levels, limit=prices, size=shares, buy=st.booleans())
def test_walk_book_fills_within_limit_and_size(
    raw: list, limit: Decimal, size: Decimal, buy: bool
) -> None:
    book = sorted((poly.Level(p, s) for p, s in raw), key=lambda lv: lv.price, reverse=not buy)
    fills = poly.walk_book(book, buy, limit, size)
    assert sum((f.shares for f in fills), D(0)) <= size
    assert all(f.shares > 0 for f in fills)
    assert all((f.price <= limit) if buy else (f.price >= limit) for f in fills)
    prices_seen = [f.price for f in fills]
    assert prices_seen == sorted(prices_seen, reverse=not buy)  # best first


def test_walk_book_partial_fill() -> None:
    asks = [poly.Level(D("0.40"), D(10)), poly.Level(D("0.41"), D(5)), poly.Level(D("0.45"), D(99))]
    fills = poly.walk_book(asks, True, D("0.42"), D(30))
    assert fills == [poly.Level(D("0.40"), D(10)), poly.Level(D("0.41"), D(5))]
    assert poly.walk_book([], True, D("0.42"), D(30)) == []


# --- trade records: entry, close, PnL % ---------------------------------------------------------

fills = st.builds(
    poly.Filled,
    shares=st.decimals(min_value=D(0), max_value=D(10_000), places=2),
    avg_price=prices,
    fee=st.decimals(min_value=D(0), max_value=D(5), places=5),
)


@given(
    buys=st.lists(fills, min_size=1, max_size=5), exit_p=st.sampled_from([D(0), D(1), D("0.37")])
)
def test_a_trade_closes_with_pnl_pct_of_its_cost(buys: list[poly.Filled], exit_p: Decimal) -> None:
    from quantcore.trading import monitor

    entry = poly.entry_record(buys)
    assert entry.shares == sum((b.shares for b in buys), D(0))
    assert entry.fees == sum((b.fee for b in buys), D(0))
    assert entry.cost == sum((b.shares * (b.avg_price or 0) for b in buys), D(0)) + entry.fees
    if entry.shares == 0:
        assert entry.avg_price is None and poly.pnl_pct(D(1), entry.cost, entry.shares) is None
        return
    assert entry.avg_price is not None and min(b.avg_price or 1 for b in buys if b.shares) <= (
        entry.avg_price
    ) <= max(b.avg_price or 0 for b in buys if b.shares)
    half = poly.floor_shares(entry.shares / 2)
    steps = [
        poly.StepOut(half, D("0.5"), half * D("0.5") - entry.cost * half / entry.shares, "edge_decayed"),
        poly.StepOut(
            entry.shares - half, exit_p,
            (entry.shares - half) * exit_p - entry.cost * (entry.shares - half) / entry.shares,
            poly.RESOLVED,
        ),
    ]  # fmt: skip
    steps = [s for s in steps if s.shares > 0]
    rec = poly.close_record(entry, steps)
    assert rec.reason == steps[-1].reason
    assert rec.pnl_usd == sum((s.pnl for s in steps), D(0))
    if entry.cost > 0:
        assert rec.pnl_pct_margin == pytest.approx(float(rec.pnl_usd / entry.cost * 100))
    assert rec.exit_price is not None
    if entry.avg_price > 0:
        assert rec.pnl_pct_price == monitor.pnl_pct_price("long", entry.avg_price, rec.exit_price)
    with pytest.raises(ValueError, match="no exit step"):
        poly.close_record(entry, [])
