"""`quant --help` and every subcommand's help render (argparse %-formats help strings)."""

from __future__ import annotations

import argparse

from quantcore.cli import build_parser


def test_every_help_text_renders() -> None:
    parser = build_parser()
    assert "Whale Stack" in parser.format_help()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"pause", "positions", "pnl", "backtest"} <= set(subs.choices)
    for name, sub in subs.choices.items():
        assert sub.format_help(), name
