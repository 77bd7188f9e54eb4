"""SIM_SCENARIO: what the simulated market opens with (quantcore.sim.MarketConfig fields)."""

from __future__ import annotations

from dataclasses import dataclass

from quantcore.config import ConfigError

DEFAULT_OPENING_HUNTS = 5


@dataclass(frozen=True)
class Scenario:
    opening_hunts: int = DEFAULT_OPENING_HUNTS  # hunts on the coins the strategy likes best
    hunt_symbols: tuple[str, ...] = ()  # hunts planted on these coins first


def parse_scenario(text: str, setting: str = "SIM_SCENARIO") -> Scenario:
    """ "" → the default market; "hunt:BTCUSDT,SOLUSDT" → also hunts planted on these coins;
    "quiet" → nothing planted at the opening. Anything else raises ConfigError naming the setting."""
    value = text.strip()
    if not value:
        return Scenario()
    if value == "quiet":
        return Scenario(opening_hunts=0)
    kind, sep, rest = value.partition(":")
    symbols = tuple(s.strip().upper() for s in rest.split(",") if s.strip())
    if kind.strip() != "hunt" or not sep or not symbols:
        raise ConfigError(
            f'{setting}: expected "", "quiet" or "hunt:SYMBOL[,SYMBOL…]", got {value!r}'
        )
    if len(set(symbols)) != len(symbols):
        raise ConfigError(f"{setting}: a coin is listed twice in {value!r}")
    return Scenario(hunt_symbols=symbols)
