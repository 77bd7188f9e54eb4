"""0035: rows written in Bybit's words before it are rewritten into ours; `orders` loses its
venue payload column."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import psycopg

from quantcore.config import Settings
from quantcore.db import conninfo
from quantcore.migrations import migrate
from quantcore.model.trading import CloseReason
from quantcore.testing import Infra, sandbox
from quantcore.trading.poly import ExitReason

MIGRATIONS = Path(__file__).resolve().parents[1] / "db" / "migrations"


def test_bybit_words_in_old_rows_become_ours(infra: Infra, tmp_path: Path) -> None:
    before = tmp_path / "before"
    before.mkdir()
    for f in sorted(MIGRATIONS.glob("*.sql")):
        if int(f.name[:4]) < 35:
            shutil.copy(f, before / f.name)
    with sandbox(infra, "vocab", run_migrations=False) as sb:
        migrate(sb.settings, before)
        with psycopg.connect(conninfo(sb.settings), autocommit=True) as conn:
            conn.execute(
                "INSERT INTO orders (order_link_id, venue, symbol, side, order_type, qty, "
                "time_in_force, status, agent, raw) VALUES "
                "('a', 'paper', 'BTCUSDT', 'Buy', 'Limit', 1, 'PostOnly', 'Created', 'x', '{\"k\": 1}'), "
                "('b', 'paper', 'BTCUSDT', 'Sell', 'Market', 1, NULL, 'PartiallyFilledCanceled', 'x', '{}')"
            )
            conn.execute(
                "INSERT INTO order_events (time, order_link_id, status) VALUES "
                "('2026-01-01', 'b', 'PartiallyFilledCanceled'), ('2026-01-01', 'b', 'Cancelled'), "
                "('2026-01-02', 'a', 'New')"
            )
            conn.execute(
                "INSERT INTO paper_executions (exec_id, time, venue_order_id, symbol, side, price, "
                "qty, fee, exec_type, stop_order_type) VALUES "
                "('e1', now(), 'v', 'BTCUSDT', 'Sell', 1, 1, 0, 'BustTrade', NULL), "
                "('e2', now(), 'v', 'BTCUSDT', 'Sell', 1, 1, 0, 'Trade', 'StopLoss')"
            )
        migrate(sb.settings, MIGRATIONS)
        with psycopg.connect(conninfo(sb.settings)) as conn:
            orders = conn.execute(
                "SELECT order_link_id, side, order_type, time_in_force, status FROM orders "
                "ORDER BY 1"
            ).fetchall()
            assert orders == [
                ("a", "buy", "limit", "post_only", "submitting"),
                ("b", "sell", "market", None, "cancelled"),
            ]
            events = conn.execute(
                "SELECT order_link_id, status FROM order_events ORDER BY 1, 2"
            ).fetchall()
            assert events == [("a", "new"), ("b", "cancelled")]  # two Bybit words, one of ours
            fills = conn.execute(
                "SELECT exec_id, side, kind, trigger FROM paper_executions ORDER BY 1"
            ).fetchall()
            assert fills == [
                ("e1", "sell", "liquidation", None),
                ("e2", "sell", "trade", "stop_loss"),
            ]
            columns = {
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders'"
                ).fetchall()
            }
            assert "raw" not in columns and "status" in columns


def test_the_close_reason_check_accepts_every_close_reason_of_both_verticals(
    settings: Settings,
) -> None:
    """Two migrations redefined trades_close_reason_check from one base (0054 'signal', 0062
    the poly reasons) and the later one dropped the other's word: a reversal's close then
    failed in the position monitor at every pass. The check must accept every close reason the
    code writes — perps (CloseReason) and poly (ExitReason, 'resolved') — and nothing else."""
    with psycopg.connect(conninfo(settings)) as conn:
        definition = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname = 'trades_close_reason_check'"
        ).fetchone()
    assert definition is not None
    allowed = set(re.findall(r"'([a-z_]+)'::text", definition[0]))
    written = {r.value for r in CloseReason} | {r.value for r in ExitReason} | {"resolved"}
    assert allowed == written
