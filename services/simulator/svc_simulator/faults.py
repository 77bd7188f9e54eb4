"""Injected faults (SIM_FAULTS): rate-limit replies, 5xx replies, slow answers, dropped
WebSockets."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from quantcore.config import ConfigError

PROBABILITIES = ("http_429", "http_5xx", "http_slow")
RATES = ("ws_drop_per_min", "slow_s")


@dataclass(frozen=True)
class Faults:
    http_429: float = 0.0  # probability that a REST request is answered "rate limited"
    http_5xx: float = 0.0  # probability that a REST request is answered 502/503
    ws_drop_per_min: float = 0.0  # expected abrupt drops per WebSocket per minute
    http_slow: float = 0.0  # probability that a REST request is answered only after slow_s
    slow_s: float = 2.0  # how late a slow answer comes (seconds)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        shown = {k: v for k, v in asdict(self).items() if v and (k != "slow_s" or self.http_slow)}
        return ",".join(f"{k}={v:g}" for k, v in shown.items()) or "none"


def parse_faults(text: str, setting: str = "SIM_FAULTS") -> Faults:
    """Parse "http_429=0.05,http_5xx=0.02,ws_drop_per_min=0.5,http_slow=0.1,slow_s=3" (empty:
    no faults).

    Strict: an unknown key, a repeated key, or a value that is not a number in range raises
    ConfigError naming the setting.
    """
    values: dict[str, float] = {}
    known = PROBABILITIES + RATES
    for raw in text.replace(";", ",").split(","):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(
                f"{setting}: expected key=value, got {item!r} (keys: {', '.join(known)})"
            )
        if key not in known:
            raise ConfigError(f"{setting}: unknown fault {key!r} (keys: {', '.join(known)})")
        if key in values:
            raise ConfigError(f"{setting}: {key} given twice")
        try:
            number = float(value.strip())
        except ValueError:
            raise ConfigError(f"{setting}: {key} must be a number, got {value.strip()!r}") from None
        if not math.isfinite(number) or number < 0:
            raise ConfigError(f"{setting}: {key} must be a finite number >= 0, got {number}")
        if key in PROBABILITIES and number > 1:
            raise ConfigError(f"{setting}: {key} is a probability between 0 and 1, got {number}")
        if key == "slow_s" and number > 120:
            raise ConfigError(f"{setting}: slow_s is at most 120 seconds, got {number}")
        values[key] = number
    if values.get("http_429", 0.0) + values.get("http_5xx", 0.0) > 1:
        raise ConfigError(f"{setting}: http_429 + http_5xx must not exceed 1")
    return Faults(**values)
