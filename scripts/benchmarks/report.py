"""Metrics, benchmark groups, and the results file (bench/results.json).

Format (see BENCH.md): {"generated_at": "...Z", "machine": {"cpus", "python"},
"metrics": {name: {value, unit, baseline, ratio, better, note}}}. A run MERGES its metrics
into the existing file, so `--only` runs keep the other groups' latest numbers.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from quantcore.testing import Sandbox

Better = Literal["lower", "higher"]


@dataclass(frozen=True)
class Metric:
    value: float
    unit: str
    baseline: float | None
    ratio: float | None  # value / baseline; None without a meaningful baseline
    better: Better
    note: str = ""

    @classmethod
    def measured(
        cls, value: float, unit: str, baseline: float | None, better: Better, note: str = ""
    ) -> Metric:
        """A metric with its ratio computed (value / baseline)."""
        ratio = None if baseline is None or baseline == 0 else round(value / baseline, 3)
        return cls(
            value=_round(value),
            unit=unit,
            baseline=None if baseline is None else _round(baseline),
            ratio=ratio,
            better=better,
            note=note,
        )


def _round(x: float) -> float:
    return float(round(x)) if abs(x) >= 10_000 else round(x, 1)


@dataclass(frozen=True)
class Group:
    """One benchmark group: the metric names it produces and the coroutine that measures them.

    `run` gets a fresh sandbox (its own migrated database and Redis namespace) and returns
    exactly the metrics named in `metrics`. A group must finish in < 60 s on 2 cores.
    """

    name: str
    metrics: tuple[str, ...]
    run: Callable[[Sandbox], Coroutine[Any, Any, dict[str, Metric]]]

    def selected(self, prefix: str | None) -> bool:
        return prefix is None or any(m.startswith(prefix) for m in self.metrics)


def utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def load_note() -> str:
    """How busy the machine was (for notes: the machines are shared)."""
    return f"1-min load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus"


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version()}


def load(path: Path) -> dict[str, Any]:
    """The existing results file, or an empty one (missing or unreadable)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"metrics": {}}
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        return {"metrics": {}}
    return data


def merge(existing: Mapping[str, Any], new: Mapping[str, Metric]) -> dict[str, Any]:
    """Existing metrics updated with the new ones (others kept), stamped with time and machine."""
    metrics: dict[str, Any] = dict(existing.get("metrics", {}))
    metrics.update({name: asdict(m) for name, m in new.items()})
    return {
        "generated_at": utc_now(),
        "machine": machine(),
        "metrics": dict(sorted(metrics.items())),
    }


def write(path: Path, new: Mapping[str, Metric]) -> dict[str, Any]:
    """Merge `new` into the file at `path` (atomically replaced) and return what was written."""
    data = merge(load(path), new)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return data


def table(metrics: Mapping[str, Metric]) -> str:
    rows = [("metric", "value", "unit", "baseline", "ratio", "better")]
    for name, m in sorted(metrics.items()):
        rows.append(
            (
                name,
                f"{m.value:,.1f}",
                m.unit,
                "-" if m.baseline is None else f"{m.baseline:,.1f}",
                "-" if m.ratio is None else f"{m.ratio:.3f}",
                m.better,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [
            c.ljust(w) if i in (0, 2, 5) else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
