"""Run benchmark groups and merge their metrics into bench/results.json.

    python -m scripts.benchmarks [--only PREFIX] [--out bench/results.json]

To add a benchmark: write a module exposing `GROUP = Group(name, metric_names, run)` and add
it to GROUPS below. Each group runs in its own sandbox (a freshly migrated database and Redis
namespace from quantcore.testing, the same servers the tests use), removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import traceback
from pathlib import Path

from quantcore.testing import resolve_infra, sandbox
from scripts.benchmarks import backtest, bus, collect, db, grafana, model, poly, rank, trade
from scripts.benchmarks.report import Group, Metric, table, write

GROUPS: list[Group] = [
    bus.GROUP,
    db.GROUP,
    collect.GROUP,
    collect.INGEST_GROUP,
    rank.GROUP,
    rank.SCAN_GROUP,
    trade.GROUP,
    grafana.GROUP,
    backtest.GROUP,
    backtest.LIQ_GROUP,
    model.GROUP,
    model.REFRESH_GROUP,
    poly.GROUP,
]

GROUP_BUDGET_S = 60.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    names = ", ".join(m for g in GROUPS for m in g.metrics)
    parser = argparse.ArgumentParser(
        prog="scripts/bench", description=f"Benchmarks. Metrics: {names}"
    )
    parser.add_argument(
        "--only",
        metavar="PREFIX",
        help="run only the groups with a metric name starting with PREFIX (e.g. bus)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench/results.json"),
        help="results file, merged into (default: bench/results.json)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    groups = [g for g in GROUPS if g.selected(args.only)]
    if not groups:
        known = ", ".join(m for g in GROUPS for m in g.metrics)
        print(f"no metric starts with {args.only!r}; known: {known}", file=sys.stderr)
        return 2

    infra = resolve_infra()
    print(f"benchmark infrastructure: {infra.origin}", file=sys.stderr)
    results: dict[str, Metric] = {}
    failed: list[str] = []
    try:
        for group in groups:
            print(f"==> {group.name}", file=sys.stderr, flush=True)
            started = time.monotonic()
            try:
                # Logs (e.g. migrations) to stderr: stdout carries only the table.
                with contextlib.redirect_stdout(sys.stderr), sandbox(infra, "bench") as box:
                    metrics = asyncio.run(group.run(box))
            except Exception:
                traceback.print_exc()
                failed.append(group.name)
                continue
            elapsed = time.monotonic() - started
            unexpected = set(metrics) ^ set(group.metrics)
            if unexpected:
                print(f"{group.name}: metrics differ from declared: {unexpected}", file=sys.stderr)
                failed.append(group.name)
            results.update((k, v) for k, v in metrics.items() if k in group.metrics)
            over = " (OVER the 60 s budget)" if elapsed > GROUP_BUDGET_S else ""
            print(f"    {group.name} done in {elapsed:.1f} s{over}", file=sys.stderr)
    finally:
        infra.close()

    if results:
        write(args.out, results)
        print(table(results))
        print(f"merged into {args.out}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
