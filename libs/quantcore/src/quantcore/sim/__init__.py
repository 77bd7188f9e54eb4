"""The simulated market (pure model, no I/O): the embedded default market of Whale Stack and
the engine of backtests. See `Market` and `MarketConfig`."""

from quantcore.sim.heatmap import COLUMN_S, MODELS, HeatmapGrid
from quantcore.sim.levels import BUCKET_WIDTH, LEVERAGE_TIERS, MMR, Levels, liquidation_price
from quantcore.sim.market import (
    BuildCancelled,
    Liquidation,
    Market,
    MarketConfig,
    TickerTable,
    cluster,
)
from quantcore.sim.universe import CoinSpec, build_universe
from quantcore.sim.whales import Campaign, Target

__all__ = [
    "BUCKET_WIDTH",
    "COLUMN_S",
    "LEVERAGE_TIERS",
    "MMR",
    "MODELS",
    "BuildCancelled",
    "Campaign",
    "CoinSpec",
    "HeatmapGrid",
    "Levels",
    "Liquidation",
    "Market",
    "MarketConfig",
    "Target",
    "TickerTable",
    "build_universe",
    "cluster",
    "liquidation_price",
]
