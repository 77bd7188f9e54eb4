"""Numbers in external JSON: a finite float from a JSON number or a numeric string, or a
clear ValueError (never a silent zero). Shared by every adapter's parser."""

from __future__ import annotations

import math
import re
from typing import Any

NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def number(value: Any, what: str) -> float:
    """A finite number, given as a JSON number or a numeric string."""
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if not (numeric or (isinstance(value, str) and NUMBER.match(value.strip()))):
        raise ValueError(f"{what} is not a number: {str(value)[:40]!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{what} is not finite: {value!r}")
    return out
