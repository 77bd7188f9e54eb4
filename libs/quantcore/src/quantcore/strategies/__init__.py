"""Strategy plug-ins: the interface (`base`), the built-in strategies, and lookup by name.

A plug-in outside this package registers under the `quant.strategies` entry-point group
(`[project.entry-points."quant.strategies"] my_scanner = "my_pkg.my_scanner:MyScanner"`)."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from quantcore.strategies.base import (
    Bars,
    HeatmapLevels,
    HeatmapSource,
    OrderPlan,
    Signal,
    SignalFrame,
    SignalPlan,
    Strategy,
    StrategyParams,
    prefetch,
)
from quantcore.strategies.liquidation_hunter import LiquidationHunter
from quantcore.strategies.scanner_oi import ScannerOi
from quantcore.strategies.sma_cross import SmaCross

GROUP = "quant.strategies"
BUILTIN: dict[str, type[Strategy[Any]]] = {
    s.name: s for s in (SmaCross, ScannerOi, LiquidationHunter)
}


def strategy_names() -> list[str]:
    return sorted(set(BUILTIN) | {ep.name for ep in entry_points(group=GROUP)})


def load_strategy(name: str) -> type[Strategy[Any]]:
    """The strategy class registered under `name`; KeyError naming the known ones."""
    if name in BUILTIN:
        return BUILTIN[name]
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            cls: type[Strategy[Any]] = ep.load()
            return cls
    raise KeyError(f"unknown strategy {name!r} (known: {', '.join(strategy_names())})")


__all__ = [
    "BUILTIN",
    "Bars",
    "HeatmapLevels",
    "HeatmapSource",
    "OrderPlan",
    "Signal",
    "SignalFrame",
    "SignalPlan",
    "Strategy",
    "StrategyParams",
    "load_strategy",
    "prefetch",
    "strategy_names",
]
