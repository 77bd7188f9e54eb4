"""Which services exist: each service package registers itself under the `quant.services`
entry-point group (see services/<name>/pyproject.toml), so quantcore never imports a service
by name and a new service needs no change here."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quantcore.service import Service

GROUP = "quant.services"

# Start order for `quant up`: the market (simulator) first, then data, brains, hands, voice.
FLEET_ORDER = [
    "simulator",
    "market_collector",
    "liquidation_collector",
    "spike_scanner",
    "cluster_scanner",
    "ranker",
    "strategy_runner",
    "autotrader",
    "position_monitor",
    "broadcaster",
    "journal",
]


def service_names() -> list[str]:
    names = {ep.name for ep in entry_points(group=GROUP)}
    ordered = [n for n in FLEET_ORDER if n in names]
    return ordered + sorted(names - set(ordered))


def load_service(name: str) -> type[Service]:
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        known = ", ".join(service_names()) or "none"
        raise KeyError(f"unknown service {name!r} (known: {known})")
    cls: type[Service] = matches[0].load()
    return cls
