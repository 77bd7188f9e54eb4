"""Numbers as the venues print them: strings with the instrument's decimals."""

from __future__ import annotations

import json
from functools import partial

from quantcore.sim import CoinSpec

compact = partial(json.dumps, separators=(",", ":"))  # JSON bodies as the venues send them


def fixed(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return "0" + text[2:] if text.startswith("-0") and float(text) == 0 else text


def price(coin: CoinSpec, value: float) -> str:
    return fixed(value, coin.price_decimals)


def qty(coin: CoinSpec, value: float) -> str:
    return fixed(round(value / coin.qty_step) * coin.qty_step, coin.qty_decimals)


def money(value: float) -> str:
    return fixed(value, 4)


def rate(value: float, decimals: int = 8) -> str:
    """A rate without trailing zeros: "0.0001", "-0.00021", "0"."""
    text = fixed(value, decimals)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
