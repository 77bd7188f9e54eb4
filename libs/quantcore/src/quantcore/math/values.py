"""NumPy values → what the database takes: NaN/inf become NULL (numeric NaN would be stored
and then break every average in Grafana; JSON has no NaN at all)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np


def num(x: Any, digits: int | None = None) -> float | None:
    if x is None:
        return None
    f = float(x)
    if not math.isfinite(f):
        return None
    return round(f, digits) if digits is not None else f


def clean(obj: Any) -> Any:
    """JSON-safe copy: numpy scalars/arrays to Python, non-finite floats to None, times to ISO."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [clean(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return num(obj)
    if isinstance(obj, datetime):
        return obj.isoformat()
    return obj
