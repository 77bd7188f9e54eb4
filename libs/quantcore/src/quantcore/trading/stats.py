"""Track record of a scanner (or agent) from its closed trades: win rate, average win / loss,
reward:risk, cumulative PnL and max drawdown — the leaderboard's numbers. Percentages in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class TrackRecord:
    trades: int
    wins: int
    losses: int
    win_rate: float | None  # 0..1
    avg_win_pct: float | None
    avg_loss_pct: float | None  # negative
    reward_risk: float | None  # avg win / |avg loss|
    total_pnl_pct: float  # compounded, percent
    max_drawdown_pct: float  # percent of the peak, >= 0


def track_record(pnl_pcts: Sequence[float]) -> TrackRecord:
    """`pnl_pcts`: each closed trade's PnL in percent, in close order."""
    wins = [p for p in pnl_pcts if p > 0]
    losses = [p for p in pnl_pcts if p <= 0]
    avg_win = sum(wins) / len(wins) if wins else None
    avg_loss = sum(losses) / len(losses) if losses else None
    rr = (
        avg_win / -avg_loss
        if avg_win is not None and avg_loss is not None and avg_loss < 0
        else None
    )
    return TrackRecord(
        trades=len(pnl_pcts),
        wins=len(wins),
        losses=len(losses),
        win_rate=len(wins) / len(pnl_pcts) if pnl_pcts else None,
        avg_win_pct=avg_win,
        avg_loss_pct=avg_loss,
        reward_risk=rr,
        total_pnl_pct=(compounded(pnl_pcts) - 1) * 100,
        max_drawdown_pct=max_drawdown_pct(pnl_pcts),
    )


def compounded(pnl_pcts: Sequence[float]) -> float:
    growth = 1.0
    for p in pnl_pcts:
        growth *= max(0.0, 1 + p / 100)
    return growth


def max_drawdown_pct(pnl_pcts: Sequence[float]) -> float:
    """Largest fall from a peak of the compounded equity curve, in percent of that peak."""
    equity, peak, worst = 1.0, 1.0, 0.0
    for p in pnl_pcts:
        equity *= max(0.0, 1 + p / 100)
        peak = max(peak, equity)
        worst = max(worst, (peak - equity) / peak * 100)
    return worst
