"""Benchmarks: `./scripts/bench` (see report.py for the results file, __main__.py for groups)."""
