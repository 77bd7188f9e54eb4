"""The live side of the plug-ins: which strategies a service runs (`STRATEGIES`), and their
decisions on the bars that closed since the last look — through `Strategy.decide`, the same
entry point for every bar, so the live signals are the backtest's decisions bar for bar.

`STRATEGIES` is a comma-separated list of names, each with optional settings in parentheses:
`scanner_oi,sma_cross(fast=5,slow=20)`. A value is JSON (numbers, null, true) or a bare word.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from quantcore.strategies import load_strategy
from quantcore.strategies.base import Bars, Signal, Strategy

NAMESPACE = uuid.UUID("5f1c0a43-6a7e-4f58-9a59-2f0d7c1b9e21")  # of strategy signal ids
_ITEM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\(([^()]*)\))?\s*(?:,|$)")


class StrategyError(ValueError):
    """A strategy name or setting the service refuses (exit code 2 at start)."""


def parse_value(text: str) -> Any:
    """A setting given as text: JSON (numbers, null, true) or a bare string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_spec(spec: str) -> list[tuple[str, dict[str, Any]]]:
    """`name(k=v,k=v),name` → [(name, settings)]; StrategyError on anything else."""
    out: list[tuple[str, dict[str, Any]]] = []
    pos, text = 0, spec.strip()
    while pos < len(text):
        m = _ITEM.match(text, pos)
        if m is None or m.end() == pos:
            raise StrategyError(
                f"STRATEGIES: cannot read {text[pos:]!r} (expected name or name(key=value,...))"
            )
        settings: dict[str, Any] = {}
        for part in (m.group(2) or "").split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise StrategyError(f"STRATEGIES: a setting is key=value, got {part.strip()!r}")
            settings[key.strip()] = parse_value(value.strip())
        out.append((m.group(1), settings))
        pos = m.end()
    if not out:
        raise StrategyError("STRATEGIES is empty: name at least one strategy")
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise StrategyError(f"STRATEGIES names a strategy twice: {', '.join(names)}")
    return out


def make_strategy(name: str, settings: dict[str, Any]) -> Strategy[Any]:
    """The strategy with these settings, or StrategyError naming what is wrong."""
    try:
        cls = load_strategy(name)
    except KeyError as exc:
        raise StrategyError(str(exc.args[0])) from None
    try:
        return cls.from_settings(settings)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise StrategyError(f"{name}: bad setting(s): {problems}") from None


def strategies_from(spec: str) -> list[Strategy[Any]]:
    return [make_strategy(name, settings) for name, settings in parse_spec(spec)]


def signal_id(strategy: str, scanner_version: str, symbol: str, bar_close_s: int) -> uuid.UUID:
    """One id per strategy, settings, coin and bar: replicas and restarts deciding the same bar
    make the same id (the `signals` key then keeps one)."""
    return uuid.uuid5(NAMESPACE, f"{strategy}|{scanner_version}|{symbol}|{bar_close_s}")


@dataclass
class Cursor:
    """Per coin, for one strategy: the newest bar close (s) decided, and the first one (where
    its live record starts: a backtest of the same window trades from there)."""

    decided: dict[str, int]
    first: dict[str, int]

    def __init__(self) -> None:
        self.decided, self.first = {}, {}


def new_decisions(strategy: Strategy[Any], bars: Bars, cursor: Cursor, now_s: int) -> list[Signal]:
    """`decide` on every bar closed at `now_s` and not decided yet (on a coin's first look, its
    newest closed bar only: history is not replayed live). Each call sees the bars up to that
    one and nothing after it. Returns the signals (bars without one give none)."""
    closed = int((bars.close_s <= now_s).sum()) if len(bars) else 0
    if closed == 0:
        return []
    close_s = bars.close_s[:closed]
    last = cursor.decided.get(bars.symbol)
    first = closed - 1 if last is None else int((close_s <= last).sum())
    if first >= closed:
        return []  # nothing closed since the last look
    out = []
    for k in range(first, closed):
        seen = bars.window(0, k + 1)
        if seen.heatmap is not None:  # no refresh stamped after the bar's close
            seen = replace(seen, heatmap=seen.heatmap.until(int(close_s[k])))
        sig = strategy.decide(seen)
        if sig is not None:
            out.append(sig)
    cursor.decided[bars.symbol] = int(close_s[-1])
    if bars.symbol not in cursor.first:
        cursor.first[bars.symbol] = int(close_s[first])
    return out
