"""Trade levels from clusters: entry, stop-loss, take-profit (SPEC §4, all percent settings).

For a LONG the target is a short cluster above price; for a SHORT a long cluster below.
- entry, conservative: 2 % beyond the target cluster's near edge (below it for longs,
  above it for shorts) — wait for the pullback; aggressive: at that edge.
- take-profit: the target cluster's centre, front-run by 0.5 % (× 0.995 for longs,
  × 1.005 for shorts): whales take profit before the exact cluster.
- stop-loss: the WIDER of the wick stop (entry moved by the coin's historical max wick) and
  the cluster stop (2 % beyond the next cluster on the other side).
"""

from __future__ import annotations

from typing import Literal

EntryMode = Literal["conservative", "aggressive"]
Dir = Literal["long", "short"]


def entry_price(
    direction: Dir,
    cluster_low: float,
    cluster_high: float,
    mode: EntryMode = "conservative",
    beyond_pct: float = 2.0,
) -> float:
    edge = cluster_low if direction == "long" else cluster_high
    if mode == "aggressive":
        return edge
    return edge * (1 - beyond_pct / 100) if direction == "long" else edge * (1 + beyond_pct / 100)


def take_profit(
    direction: Dir, cluster_low: float, cluster_high: float, front_run_pct: float = 0.5
) -> float:
    center = (cluster_low + cluster_high) / 2
    return (
        center * (1 - front_run_pct / 100)
        if direction == "long"
        else center * (1 + front_run_pct / 100)
    )


def wick_stop(direction: Dir, entry: float, max_wick_pct: float) -> float:
    return (
        entry * (1 - max_wick_pct / 100)
        if direction == "long"
        else entry * (1 + max_wick_pct / 100)
    )


def cluster_stop(direction: Dir, next_cluster_edge: float, beyond_pct: float = 2.0) -> float:
    """2 % beyond the next opposite cluster (below it for longs, above it for shorts)."""
    if direction == "long":
        return next_cluster_edge * (1 - beyond_pct / 100)
    return next_cluster_edge * (1 + beyond_pct / 100)


def stop_loss(
    direction: Dir,
    entry: float,
    max_wick_pct: float,
    next_cluster_edge: float | None,
    beyond_pct: float = 2.0,
) -> float:
    """The wider (further from entry) of the wick stop and the cluster stop."""
    candidates = [wick_stop(direction, entry, max_wick_pct)]
    if next_cluster_edge is not None:
        candidates.append(cluster_stop(direction, next_cluster_edge, beyond_pct))
    return min(candidates) if direction == "long" else max(candidates)
