"""How well could any estimate score against the simulator? (issue 14; not a benchmark group)

    uv run python -m scripts.benchmarks.model_ceiling --seed 7

The simulator draws each 4-hour step's new notional per coin × leverage × side with a
lognormal factor (σ 0.4) that no public endpoint shows. This script rebuilds the year-long
past of `seed` (the levels still open when the 1-minute history begins: what the 14d … 1y
heatmaps are mostly made of) twice on the same candles — once as the simulator draws it, once
with that factor at its mean, and once with another draw — and scores them against the drawn
one exactly as `quant heatmap-eval` scores the model (top 5 clusters, ±1 %, 0.5 % bins, ±35 %
band). The factor-at-its-mean copy is an estimate that knows every hidden parameter (leverage
mix, per-coin tier weights, holding times, the level grid, the entry rule) and only lacks the
draws: its precision / recall is a ceiling for a model that reads public data only.

It reads the simulator's internals on purpose (that is what a ceiling needs); the model never
does. Figures are in libs/quantcore/src/quantcore/math/liqmodel.py's module doc.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

import numpy as np

import quantcore.sim.market as sm
from quantcore.math import heatmap_eval as he

NOISE_LOC = -0.08  # the simulator's lognormal flow factor: exp(N(-0.08, 0.4)), mean 1


class _Rng:
    """A generator whose flow-factor draws can be zeroed (the factor at its mean) while the
    stream advances exactly as before (the same candles, the same everything else)."""

    def __init__(self, g: np.random.Generator, zero: bool) -> None:
        self._g, self._zero = g, zero

    def normal(self, loc: float = 0.0, scale: float = 1.0, size: Any = None) -> Any:
        x = self._g.normal(loc, scale, size)
        return np.zeros_like(x) if self._zero and loc == NOISE_LOC else x

    def __getattr__(self, name: str) -> Any:
        return getattr(self._g, name)


def ceiling(seed: int, coins: int = 60) -> dict[str, he.Summary]:
    captured: dict[str, Any] = {}
    original = sm.surviving_levels

    def record(rng: np.random.Generator, past: Any, **kw: Any) -> Iterator[Any]:
        captured.update(past=past, kw=kw, state=rng.bit_generator.state)
        return original(rng, past, **kw)

    sm.surviving_levels = record  # type: ignore[assignment]
    try:
        sm.Market(sm.MarketConfig(seed=seed, coins=coins, history_days=0.01, start=1_780_000_000))
    finally:
        sm.surviving_levels = original  # type: ignore[assignment]

    def levels(zero: bool, other_seed: int | None = None) -> dict[int, Any]:
        g = np.random.default_rng(other_seed)
        if other_seed is None:
            g.bit_generator.state = captured["state"]
        out: dict[int, Any] = {}
        for sl, lv in original(_Rng(g, zero), captured["past"], **captured["kw"]):  # type: ignore[arg-type]
            for k, c in enumerate(range(sl.start, sl.stop)):
                out[c] = lv[k]
        return out

    drawn = levels(False)
    close = np.exp(captured["past"].log_close)
    out: dict[str, he.Summary] = {}
    for name, other in (("factor at its mean", levels(True)), ("another draw", levels(False, 99))):
        rows = [
            he.score_row(other[c][0], other[c][1], drawn[c][0], drawn[c][1], float(close[c]))
            for c in drawn
        ]
        out[name] = he.summarise(rows)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--coins", type=int, default=60)
    args = ap.parse_args()
    for name, s in ceiling(args.seed, args.coins).items():
        print(
            f"seed {args.seed}, year-long past, {name} vs the drawn truth: precision "
            f"{s.precision_pct:.1f} %  recall {s.recall_pct:.1f} %  largest-cluster err "
            f"{s.largest_err_pct:.2f} %  ({s.rows} coins)"
        )


if __name__ == "__main__":
    main()
