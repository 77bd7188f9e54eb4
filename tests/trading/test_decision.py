"""The one trade decision (quantcore.trading.decision): worked examples, the money bug of the
narrow target, and properties — every plan it returns is sane, for every entry mode, both
sides, clusters of one level, with and without the venue's grid and an account."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantcore.model.plan import (
    AccountState,
    InstrumentRules,
    MarketView,
    PriceRange,
    Refusal,
    TradePlan,
)
from quantcore.trading.decision import DecisionSettings, decide

RULES = InstrumentRules(tick_size=0.1, qty_step=0.001, min_qty=0.001)
ACCOUNT = AccountState(equity=10_000)


def view(
    direction: str = "long", low: float = 116_000, high: float = 117_000, **kw: object
) -> MarketView:
    base: dict[str, object] = dict(symbol="SOLUSDT", direction=direction, price=110_000 if direction == "long" else 125_000,
                                   target=PriceRange(low=low, high=high), wick_pct=None)  # fmt: skip
    base.update(kw)
    return MarketView(**base)  # type: ignore[arg-type]


def test_worked_example_conservative_long() -> None:
    # entry 116,000 × 0.98 = 113,680; TP centre 116,500 × 0.995 = 115,917.5; stop: 8 % wick
    # (104,585.6) vs 2 % beyond the next cluster's low 110,000 (107,800): the wider
    # (SPEC's geometry: reward:risk 0.25, refused at the default minimum of 1.0)
    v = view(wick_pct=8, next_opposite=PriceRange(low=110_000, high=111_000), price=114_000)
    r = decide(v, DecisionSettings(), ACCOUNT, RULES)
    assert isinstance(r, Refusal) and r.code == "reward_risk_too_low" and "0.25" in r.reason
    p = decide(v, DecisionSettings(min_reward_risk=0.2), ACCOUNT, RULES)
    assert isinstance(p, TradePlan), p
    assert p.entries == [Decimal("113680.0")]
    assert p.take_profit == Decimal("115917.5") and p.stop_loss == Decimal("104585.6")
    # 100 at risk over 9,094.4 of stop distance → 0.010995..., floored to the qty step
    assert p.qty == Decimal("0.010") and p.margin == pytest.approx(0.010 * 113_680 / 5)
    assert p.reward_risk == pytest.approx((115_917.5 - 113_680) / (113_680 - 104_585.6))
    assert any("reward:risk" in r for r in p.reasons)


def test_the_issue_example_aggressive_narrow_target_is_refused_not_traded() -> None:
    # long, cluster 116,000–117,000, aggressive: entry 116,000, front-run TP 115,917.5 — below the
    # entry. It used to be traded (Bybit rejects such a TP; paper closed it at a loss).
    r = decide(view(), DecisionSettings(entry_mode="aggressive"), ACCOUNT, RULES)
    assert isinstance(r, Refusal) and r.code == "take_profit_not_beyond_entry"
    assert "115917.5" in r.reason and "116000" in r.reason
    r1 = decide(
        view(low=116_500, high=116_500), DecisionSettings(entry_mode="scaled"), ACCOUNT, RULES
    )
    assert isinstance(r1, Refusal) and r1.code == "take_profit_not_beyond_entry"


def test_reward_risk_of_one_passes_at_the_default_minimum() -> None:
    # wide target 116,000–130,000: entry 113,680, TP 122,385, stop 1 % wick 112,543.2 → R:R 8,705 / 1,136.8
    p = decide(view(high=130_000, wick_pct=1, price=112_000), DecisionSettings(), ACCOUNT, RULES)
    assert isinstance(p, TradePlan) and p.reward_risk == pytest.approx(8_705 / 1_136.8)


def test_scaled_short_ladder_stop_beyond_the_farthest_rung() -> None:
    v = view("short", 100_000, 101_000, price=108_000, wick_pct=3)
    p = decide(v, DecisionSettings(entry_mode="scaled", take_profit_front_run_pct=0.0, min_reward_risk=0.0),
               ACCOUNT, RULES)  # fmt: skip
    assert isinstance(p, TradePlan), p
    assert [o.ladder_index for o in p.orders] == [0, 1, 2, 3, 4]
    assert p.orders[0].price == Decimal("101000.0") and p.orders[-1].price == Decimal("103020.0")
    assert p.stop_loss == Decimal("106110.6")  # 3 % above the farthest rung, 103,020
    assert p.take_profit == Decimal("100500.0")
    assert sum(o.qty or 0 for o in p.orders) == p.qty


def test_unsized_plan_of_the_ranker_and_the_target_already_reached() -> None:
    p = decide(view(price=114_000), DecisionSettings(min_reward_risk=0))
    assert isinstance(p, TradePlan) and p.qty is None and p.tick_size is None
    assert all(o.qty is None for o in p.orders)
    r = decide(view(price=116_000), DecisionSettings(min_reward_risk=0))
    assert isinstance(r, Refusal) and r.code == "target_reached"


def test_a_stake_below_the_qty_step_is_refused() -> None:
    r = decide(
        view(price=114_000), DecisionSettings(min_reward_risk=0), AccountState(equity=1), RULES
    )
    assert isinstance(r, Refusal) and r.code == "size_zero"


# --- properties ----------------------------------------------------------------------------------

prices = st.floats(min_value=1e-4, max_value=1e6, allow_nan=False, allow_infinity=False)
pcts = st.floats(min_value=0.0, max_value=10.0, allow_nan=False)


@st.composite
def cases(
    draw: st.DrawFn, grid: bool | None = None
) -> tuple[MarketView, DecisionSettings, InstrumentRules | None, AccountState | None]:
    direction = draw(st.sampled_from(["long", "short"]))
    low = draw(prices)
    one_level = draw(st.booleans())
    width = 0.0 if one_level else draw(st.floats(min_value=0.0, max_value=0.2))
    high = low * (1 + width)
    side = 1 if direction == "long" else -1
    # mostly before the entry (the usual case), sometimes already at or past the target
    price = low * (
        1 - side * draw(st.floats(min_value=-0.05, max_value=0.02) | st.floats(0.03, 0.3))
    )
    nxt = None
    if draw(st.booleans()):
        d = draw(st.floats(min_value=0.001, max_value=0.5))
        e = price * (1 - side * d)
        nxt = PriceRange(low=e * 0.99, high=e)
    v = MarketView(
        symbol="ABCUSDT", direction=direction, price=max(price, 1e-6),
        target=PriceRange(low=low, high=high), next_opposite=nxt,
        wick_pct=draw(st.none() | st.floats(min_value=0.0, max_value=10.0)),
    )  # fmt: skip
    s = DecisionSettings(
        entry_mode=draw(st.sampled_from(["conservative", "aggressive", "scaled"])),
        entry_beyond_pct=draw(pcts), ladder_orders=draw(st.integers(1, 20)),
        ladder_sizing=draw(st.sampled_from(["flat", "increasing", "decreasing"])),
        ladder_range_pct=draw(st.floats(min_value=0.01, max_value=20)),
        stop_beyond_pct=draw(pcts), stop_default_wick_pct=draw(st.floats(min_value=0.01, max_value=10)),
        take_profit_front_run_pct=draw(st.floats(0, 2)), min_reward_risk=draw(st.floats(min_value=0, max_value=1.5)),
        risk_per_trade_pct=draw(st.floats(min_value=0.1, max_value=5)),
        leverage=draw(st.floats(min_value=1, max_value=50)),
        max_trade_equity_pct=draw(st.floats(min_value=1, max_value=100)),
    )  # fmt: skip
    rules = None
    if grid or (grid is None and draw(st.booleans())):
        tick = low * draw(st.sampled_from([1e-6, 1e-5, 1e-4, 1e-3, 1e-2]))
        tick = float(Decimal(f"{tick:.1e}"))
        rules = InstrumentRules(
            tick_size=tick, qty_step=draw(st.sampled_from([0.001, 0.1, 1.0])), min_qty=0.001
        )
    # with a grid: sized (the autotrader) or not (the ranker, which plans on the grid unsized)
    account = (
        AccountState(equity=draw(st.floats(min_value=0, max_value=1e9)))
        if rules and draw(st.booleans())
        else None
    )
    return v, s, rules, account


def on_grid(x: Decimal, tick: float) -> bool:
    return (x / Decimal(str(tick))) % 1 == 0


@settings(max_examples=400, deadline=None)
@given(cases())
def test_every_plan_is_sane(
    case: tuple[MarketView, DecisionSettings, InstrumentRules | None, AccountState | None],
) -> None:
    v, s, rules, account = case
    d = decide(v, s, account, rules)
    if isinstance(d, Refusal):
        assert d.reason and d.symbol == v.symbol
        return
    sign = 1 if v.direction == "long" else -1
    gap = Decimal(str(rules.tick_size)) if rules else Decimal(0)
    assert d.direction == v.direction and d.mode == s.entry_mode and d.orders
    for o in d.orders:
        assert (
            sign * (o.price - d.stop_loss) >= gap and o.price != d.stop_loss
        )  # SL beyond every entry
        assert (
            sign * (d.take_profit - o.price) >= gap and o.price != d.take_profit
        )  # TP beyond every entry
    assert sign * (d.take_profit - Decimal(repr(v.price))) > 0  # the target is still ahead
    assert d.reward_risk >= s.min_reward_risk
    assert d.stop_loss > 0
    if rules is not None:
        assert on_grid(d.stop_loss, rules.tick_size) and on_grid(d.take_profit, rules.tick_size)
        assert all(on_grid(o.price, rules.tick_size) for o in d.orders)
    if account is not None:
        assert d.qty is not None and d.qty > 0
        assert d.qty == sum(o.qty or 0 for o in d.orders)
        assert all(on_grid(o.qty or Decimal(0), rules.qty_step) for o in d.orders if rules)
        # never more than the risk: the loss at the stop is within risk_per_trade_pct (+ rounding)
        loss = sum(float(o.qty or 0) * abs(float(o.price) - float(d.stop_loss)) for o in d.orders)
        assert loss <= account.equity * s.risk_per_trade_pct / 100 * (1 + 1e-9) + 1e-9


@settings(max_examples=500, deadline=None)
@given(cases(grid=True), st.floats(min_value=1, max_value=1e9))
def test_the_rankers_plan_is_the_autotraders_orders_to_the_tick(
    case: tuple[MarketView, DecisionSettings, InstrumentRules | None, AccountState | None],
    equity: float,
) -> None:
    """The ranker plans on the venue's grid without an account; the autotrader re-makes the
    decision on the same view and grid with its equity. Every order it keeps is at the price
    the ranker announced, with the same stop and take-profit — not a tick apart."""
    v, s, rules, _ = case
    assert rules is not None
    announced = decide(v, s, None, rules)
    placed = decide(v, s, AccountState(equity=equity), rules)
    if not isinstance(announced, TradePlan):
        assert isinstance(placed, Refusal)  # nothing the ranker refused is ever traded
        return
    if not isinstance(placed, TradePlan):  # sizing may refuse (size_zero, R:R of the kept rungs)
        assert isinstance(placed, Refusal)
        assert placed.code in ("size_zero", "reward_risk_too_low")
        return
    assert announced.tick_size == placed.tick_size == rules.tick_size
    assert (announced.stop_loss, announced.take_profit) == (placed.stop_loss, placed.take_profit)
    by_rung = {o.ladder_index: o.price for o in announced.orders}
    assert all(by_rung[o.ladder_index] == o.price for o in placed.orders)


@settings(max_examples=500, deadline=None)
@given(cases(grid=True))
def test_the_grid_only_ever_makes_a_plan_safer(
    case: tuple[MarketView, DecisionSettings, InstrumentRules | None, AccountState | None],
) -> None:
    """Rounded down for a long (up for a short): every entry is at or beyond the level its mode
    asks for, the stop at least as wide as the wick / cluster rule, the take-profit at or before
    the front-run level — each within a tick (the stop within two: its entry moved too)."""
    v, s, rules, _ = case
    assert rules is not None
    exact = decide(v, s)
    gridded = decide(v, s, None, rules)
    if not (isinstance(exact, TradePlan) and isinstance(gridded, TradePlan)):
        return
    sign = 1 if v.direction == "long" else -1
    tick = Decimal(str(rules.tick_size))
    pairs = [(e.price, g.price, tick) for e, g in zip(exact.orders, gridded.orders, strict=True)]
    pairs += [(exact.take_profit, gridded.take_profit, tick),
              (exact.stop_loss, gridded.stop_loss, 2 * tick)]  # fmt: skip
    for want, got, within in pairs:
        assert 0 <= sign * (want - got) < within, (want, got)
