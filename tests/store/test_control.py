"""The scanner leaderboard (store.control.leaderboard_sql, the one definition behind Grafana,
Telegram /scanners and `quant scanners`): live / paper figures per scanner and version beside
the strategy's headline backtest, written by `quant backtest` itself — its latest walk-forward
out-of-sample result, else its latest single run; a backtest-only strategy has a row too."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from quantcore.db import conninfo
from quantcore.store.control import scanner_leaderboard
from quantcore.testing import Sandbox
from tests.conftest import ROOT

NOW = datetime.now(UTC)


def quant(box: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(
        [sys.executable, "-m", "quantcore.cli", *args], env={**os.environ, **box.env},
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    return p


def backtest(box: Sandbox, tmp: Path, *args: str) -> None:
    quant(box, "backtest", "--tape", "sim", "--days", "1", "--coins", "1", "--seed", "12",
          "--workers", "1", "--report-dir", str(tmp), *args)  # fmt: skip


def seed_live(box: Sandbox) -> None:
    """Paper trades and signals of the sma_cross plug-in running live (version code+params) and
    of the ranker (no backtest)."""
    rows = [  # scanner, version, pnl_quote, pnl_pct_price, pnl_pct_margin, closed
        ("sma_cross", "1+0badc0de", 12.0, 1.2, 6.0, NOW - timedelta(hours=2)),
        ("sma_cross", "1+0badc0de", -4.0, -0.4, -2.0, NOW - timedelta(hours=1)),
        ("ranker", "2.0.0+12345678", 3.0, 0.3, 1.5, NOW - timedelta(days=3)),
    ]
    with psycopg.connect(conninfo(box.settings)) as conn:
        for scanner, version, q, p, m, closed in rows:
            conn.execute(
                "INSERT INTO trades (agent, scanner, scanner_version, venue, symbol, direction,"
                " status, entry_price, exit_price, leverage, pnl_quote, pnl_pct_price,"
                " pnl_pct_margin, opened_at, closed_at) VALUES ('autotrader', %s, %s, 'paper',"
                " 'BTCUSDT', 'long', 'closed', 100, 101, 5, %s, %s, %s, %s, %s)",
                (scanner, version, q, p, m, closed - timedelta(minutes=30), closed),
            )
            conn.execute(
                "INSERT INTO signals (time, signal_id, symbol, direction, scanner, scanner_version,"
                " agent) VALUES (%s, %s, 'BTCUSDT', 'long', %s, %s, 'autotrader')",
                (closed - timedelta(minutes=31), uuid.uuid4(), scanner, version),
            )


async def test_live_results_beside_the_headline_backtest(fresh: Sandbox, tmp_path: Path) -> None:
    seed_live(fresh)
    # sma_cross: a walk-forward, then a later single run (the out-of-sample result stays the
    # headline); scanner_oi: only a single run (in sample), and never live
    backtest(fresh, tmp_path, "--strategy", "sma_cross", "--search", "random", "--samples", "2",
             "--sweep", "fast=3..12", "slow=20..50", "--walk-forward", "2")  # fmt: skip
    backtest(fresh, tmp_path, "--strategy", "sma_cross")
    backtest(fresh, tmp_path, "--strategy", "scanner_oi", "--set", "oi_min_pct=0.1")
    async with await psycopg.AsyncConnection.connect(conninfo(fresh.settings)) as conn:
        board = {(r.scanner, r.version): r for r in await scanner_leaderboard(conn)}
        recent = {(r.scanner, r.version) for r in await scanner_leaderboard(
            conn, since=NOW - timedelta(days=1))}  # fmt: skip
        oos = await (
            await conn.execute(
                "SELECT pnl_pct, win_rate_pct, profit_factor, sharpe, trades FROM backtest_runs"
                " WHERE strategy = 'sma_cross' AND phase = 'oos'"
            )
        ).fetchone()
    assert set(board) == {("sma_cross", "1+0badc0de"), ("ranker", "2.0.0+12345678"),
                          ("scanner_oi", "1")}  # fmt: skip
    live = board[("sma_cross", "1+0badc0de")]
    assert (live.signals, live.trades, live.wins) == (2, 2, 1)
    assert live.win_rate_pct == 50.0 and live.pnl_pct_margin == pytest.approx(4.0)
    assert live.reward_risk == pytest.approx(3.0) and live.pnl_quote == pytest.approx(8.0)
    assert live.bt_out_of_sample is True and oos is not None
    assert (live.bt_pnl_pct, live.bt_win_rate_pct, live.bt_profit_factor, live.bt_sharpe,
            live.bt_trades) == pytest.approx(oos)  # fmt: skip
    assert not board[("ranker", "2.0.0+12345678")].backtested
    only_bt = board[("scanner_oi", "1")]
    assert only_bt.bt_out_of_sample is False and (only_bt.signals, only_bt.trades) == (0, 0)
    assert [r[0] for r in board][:1] == ["sma_cross"]  # best live PnL % first
    # the live window: the ranker's trade is older than a day; backtests are not windowed
    assert ("ranker", "2.0.0+12345678") not in recent and ("scanner_oi", "1") in recent

    text = quant(fresh, "scanners").stdout
    lines = text.splitlines()
    assert lines[1].startswith(" 1. sma_cross 1+0badc0de: 2 signals, 2 trades, win 50%")
    assert "| backtest (out of sample, 1 d)" in lines[1]
    assert any(ln.startswith(" 3. scanner_oi 1: 0 signals") and "backtest (in sample" in ln
               for ln in lines)  # fmt: skip
    assert any("ranker" in ln and "| no backtest" in ln for ln in lines)
