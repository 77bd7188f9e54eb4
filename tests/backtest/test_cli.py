"""`quant backtest` end to end against the sandbox database: a run, a sweep (parallel,
resumable), walk-forward, the database tape, and refused input (exit 2, nothing written)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from quantcore.backtest.tapes import sim_tape
from quantcore.cli import main
from quantcore.db import conninfo
from quantcore.testing import Sandbox

Quant = Callable[..., subprocess.CompletedProcess[str]]


def inproc(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """The same command in this process (the sandbox's settings are in the environment):
    cheaper than a fresh interpreter for the many refusal cases."""
    code = main(list(args))
    out = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out.out, out.err)


def _count(box: Sandbox, sql: str = "SELECT count(*) FROM backtest_runs", *params: object) -> int:
    with psycopg.connect(conninfo(box.settings)) as conn:
        row = conn.execute(sql, params).fetchone()
        assert row is not None
        return int(row[0])


def test_a_run_prints_the_table_and_stores_run_trades_and_report(
    quant: Quant, box: Sandbox, tmp_path: Path
) -> None:
    before = _count(box)
    p = quant("backtest", "--tape", "sim", "--days", "1", "--coins", "2", "--strategy", "sma_cross",
              "--set", "fast=5", "--set", "slow=20", "--report-dir", str(tmp_path))  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "portfolio" in p.stdout and "Sharpe" in p.stdout
    assert "whale hunts: " in p.stdout and "in window, caught" in p.stdout  # the sim's truth
    assert _count(box) == before + 1
    with psycopg.connect(conninfo(box.settings)) as conn:
        run_id, trades, path, params = conn.execute(
            "SELECT run_id, trades, report_path, params FROM backtest_runs ORDER BY created_at DESC LIMIT 1"
        ).fetchone()  # type: ignore[misc]
        stored = conn.execute(
            "SELECT count(*) FROM backtest_trades WHERE run_id = %s", (run_id,)
        ).fetchone()
    assert params["fast"] == 5 and trades > 30 and stored == (trades,)
    html = Path(path).read_text()
    assert html.startswith("<!doctype html>") and "data:image/png;base64," in html
    assert "whale hunts" in html
    assert {f.name for f in Path(path).parent.iterdir()} >= {
        "equity.png",
        "drawdown.png",
        "monthly.png",
        "trades.png",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "no_such"], "unknown strategy 'no_such'"),
        (
            ["--strategy", "sma_cross", "--set", "fast=0"],
            "fast: Input should be greater than or equal to 1",
        ),
        (
            ["--strategy", "sma_cross", "--set", "fast=50", "--set", "slow=20"],
            "fast (50) must be below slow (20)",
        ),
        (["--strategy", "sma_cross", "--set", "nope=1"], "nope: Extra inputs are not permitted"),
        (
            ["--strategy", "sma_cross", "--sweep", "fast=5,0"],
            "fast: Input should be greater than or equal to 1",
        ),
        (["--strategy", "sma_cross", "--days", "0"], "--days must be in (0, 3660]"),
        (
            ["--strategy", "sma_cross", "--tape", "db", "--end", "2001-01-01T00:00"],
            "no 1-min candles",
        ),
        (
            ["--strategy", "sma_cross", "--tape", "bybit", "--end", "2001-01-01T00:00"],
            "no 1-min candles from bybit",
        ),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], box: Sandbox, tmp_path: Path, args: list[str], message: str
) -> None:
    before = (_count(box), _count(box, "SELECT count(*) FROM backtest_trades"))
    p = inproc(
        capsys, "backtest", "--days", "0.5", "--coins", "1", "--report-dir", str(tmp_path), *args
    )
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert message in p.stderr
    assert (_count(box), _count(box, "SELECT count(*) FROM backtest_trades")) == before
    assert not list(tmp_path.iterdir())  # no report either


def _store_tape(box: Sandbox, symbol: str, drop: int | None = None) -> datetime:
    bars = sim_tape(0.5, seed=5, coins=1)[0]
    rows = [
        (datetime.fromtimestamp(int(t), UTC), symbol, "1m", float(o), float(h), float(lo), float(c), float(v), "sim")
        for i, (t, o, h, lo, c, v) in enumerate(zip(bars.start_s, bars.open, bars.high, bars.low, bars.close, bars.volume, strict=True))
        if i != drop
    ]  # fmt: skip
    with psycopg.connect(conninfo(box.settings)) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO ohlcv (time, symbol, interval, open, high, low, close, volume, source)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", rows,
        )  # fmt: skip
    return datetime.fromtimestamp(int(bars.close_s[-1]), UTC)


def test_database_tape_and_a_gap_in_it(
    capsys: pytest.CaptureFixture[str], box: Sandbox, tmp_path: Path
) -> None:
    end = _store_tape(box, "DBTAPEUSDT")
    args = ["backtest", "--tape", "db", "--days", "0.5", "--end", end.strftime("%Y-%m-%dT%H:%M"),
            "--strategy", "sma_cross", "--report-dir", str(tmp_path)]  # fmt: skip
    p = inproc(capsys, *args, "--symbols", "DBTAPEUSDT")
    assert p.returncode == 0, p.stderr
    assert "DBTAPEUSDT" in p.stdout and "whale hunts" not in p.stdout  # no ground truth
    _store_tape(box, "GAPPYUSDT", drop=100)
    before = _count(box)
    p = inproc(capsys, *args, "--symbols", "GAPPYUSDT")
    assert p.returncode == 2 and "GAPPYUSDT: gap of 1 missing candle(s)" in p.stderr
    assert _count(box) == before
    p = inproc(capsys, *args, "--symbols", "GAPPYUSDT", "--max-gap", "1")  # tolerated when asked
    assert p.returncode == 0, p.stderr


def test_sweep_runs_in_parallel_and_resumes(quant: Quant, box: Sandbox, tmp_path: Path) -> None:
    args = ["backtest", "--tape", "sim", "--days", "1", "--coins", "1", "--seed", "3",
            "--strategy", "sma_cross", "--sweep", "fast=5,8", "slow=20,40", "--workers", "2",
            "--report-dir", str(tmp_path)]  # fmt: skip
    p = quant(*args)
    assert p.returncode == 0, p.stderr
    assert "sweep 4 points" in p.stderr and "4/4" in p.stderr  # the progress bar
    sweep_rows = "SELECT count(*) FROM backtest_runs WHERE sweep_id IS NOT NULL AND tape_spec->>'seed' = '3' AND phase = 'full'"
    assert _count(box, sweep_rows) == 4
    again = quant(*args)
    assert again.returncode == 0, again.stderr
    assert _count(box, sweep_rows) == 4  # resumed: nothing re-run, nothing doubled
    assert "4/4" in again.stderr and "2/4" not in again.stderr


def test_walk_forward_reports_out_of_sample(
    capsys: pytest.CaptureFixture[str], box: Sandbox, tmp_path: Path
) -> None:
    p = inproc(capsys, "backtest", "--tape", "sim", "--days", "2", "--coins", "1", "--seed", "4",
              "--strategy", "sma_cross", "--sweep", "fast=5,10", "--set", "slow=30",
              "--walk-forward", "3", "--workers", "1", "--report-dir", str(tmp_path))  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "out of sample" in p.stdout and "fold 2 test" in p.stdout
    fit = "SELECT count(*) FROM backtest_runs WHERE tape_spec->>'seed' = '4' AND phase = %s"
    assert _count(box, fit, "fit") == 6 and _count(box, fit, "test") == 3
    # the out-of-sample chain is a run of its own: the test folds' trades, an equity curve
    assert _count(box, fit, "oos") == 1
    with psycopg.connect(conninfo(box.settings)) as conn:
        run_id, trades, params = conn.execute(
            "SELECT run_id, trades, params FROM backtest_runs"
            " WHERE tape_spec->>'seed' = '4' AND phase = 'oos'"
        ).fetchone()  # type: ignore[misc]
        fold_trades = conn.execute(
            "SELECT sum(trades) FROM backtest_runs WHERE tape_spec->>'seed' = '4' AND phase = 'test'"
        ).fetchone()
        stored, points, deepest, max_dd = conn.execute(
            "SELECT (SELECT count(*) FROM backtest_trades WHERE run_id = %(r)s),"
            " count(*), max(e.drawdown_pct), max(r.max_drawdown_pct)"
            " FROM backtest_equity e JOIN backtest_runs r USING (run_id) WHERE run_id = %(r)s",
            {"r": run_id},
        ).fetchone()  # type: ignore[misc]
    assert len(params["folds"]) == 3 and (trades,) == fold_trades == (stored,)
    assert 0 < points <= 500 and deepest == pytest.approx(max_dd)  # the trough is kept
    again = inproc(capsys, *p.args)  # resumed: nothing doubled
    assert again.returncode == 0, again.stderr
    assert _count(box, fit, "oos") == 1 and _count(box, fit, "test") == 3


def test_random_search_runs_in_parallel_and_a_grown_search_resumes(
    quant: Quant, box: Sandbox, tmp_path: Path
) -> None:
    args = ["backtest", "--tape", "sim", "--days", "1", "--coins", "1", "--seed", "6",
            "--strategy", "sma_cross", "--search", "random", "--sweep", "fast=2..30",
            "slow=31..300", "--workers", "2", "--report-dir", str(tmp_path)]  # fmt: skip
    rows = (
        "SELECT count(*) FROM backtest_runs WHERE sweep_id IS NOT NULL AND phase = 'full'"
        " AND tape_spec->>'seed' = '6'"
    )
    p = quant(*args, "--samples", "3")
    assert p.returncode == 0, p.stderr
    assert "random search 3 points" in p.stderr and "3/3" in p.stderr
    assert _count(box, rows) == 3
    with psycopg.connect(conninfo(box.settings)) as conn:
        first = conn.execute(
            "SELECT run_id, params FROM backtest_runs WHERE sweep_id IS NOT NULL"
            " AND tape_spec->>'seed' = '6' ORDER BY run_id"
        ).fetchall()
    for _, params in first:
        assert 2 <= params["fast"] <= 30 and 31 <= params["slow"] <= 300
    grown = quant(*args, "--samples", "5")  # the first 3 points are the same: only 2 run
    assert grown.returncode == 0, grown.stderr
    assert "random search 5 points" in grown.stderr and "3/5" in grown.stderr
    assert _count(box, rows) == 5
    with psycopg.connect(conninfo(box.settings)) as conn:
        kept = conn.execute(
            "SELECT run_id, params FROM backtest_runs WHERE run_id = ANY(%s) ORDER BY run_id",
            ([r for r, _ in first],),
        ).fetchall()
    assert kept == first  # not re-run: the same rows
    other = quant(*args, "--samples", "3", "--search-seed", "99")  # another draw, its own sweep
    assert other.returncode == 0, other.stderr
    assert _count(box, rows) == 8


def test_random_search_refusals_exit_2(capsys: pytest.CaptureFixture[str], box: Sandbox) -> None:
    base = ["backtest", "--days", "0.5", "--coins", "1", "--strategy", "sma_cross"]
    before = _count(box)
    for extra, message in [
        (["--search", "random"], "--search random needs --samples N"),
        (["--search", "random", "--samples", "3", "--sweep", "fast=0..9"], "outside its declared"),
        (
            ["--samples", "3", "--sweep", "fast=3,4"],
            "--samples and --search-seed go with --search random",
        ),
    ]:
        p = inproc(capsys, *base, *extra)
        assert p.returncode == 2 and message in p.stderr, (extra, p.stderr)
    assert _count(box) == before


def test_the_liquidation_hunter_runs_sweeps_and_walks_forward(
    quant: Quant, capsys: pytest.CaptureFixture[str], box: Sandbox, tmp_path: Path
) -> None:
    base = ["backtest", "--tape", "sim", "--days", "7", "--coins", "3", "--seed", "42",
            "--strategy", "liquidation_hunter", "--set", "trigger_mode=fixed",
            "--set", "min_reward_risk=0.5", "--report-dir", str(tmp_path)]  # fmt: skip
    p = inproc(capsys, *base, "--set", "entry_mode=aggressive")
    assert p.returncode == 0, p.stderr
    assert "portfolio" in p.stdout and "liquidation_hunter v1" in p.stdout
    with psycopg.connect(conninfo(box.settings)) as conn:
        run_id, trades, path = conn.execute(
            "SELECT run_id, trades, report_path FROM backtest_runs WHERE strategy = "
            "'liquidation_hunter' ORDER BY created_at DESC LIMIT 1"
        ).fetchone()  # type: ignore[misc]
        stored = conn.execute(
            "SELECT count(*) FROM backtest_trades WHERE run_id = %s", (run_id,)
        ).fetchone()
        assert trades > 0 and stored == (trades,)
        # the hunter's own exit reasons are stored (migration 0052), nothing else is
        row = ("long", datetime.now(UTC), datetime.now(UTC), 1.0, 1.0, None, None)
        for seq, reason in ((10_000, "liquidation"), (10_001, "trailing_stop")):
            conn.execute(
                "INSERT INTO backtest_trades (run_id, seq, symbol, side, entry_time, exit_time,"
                " entry_price, exit_price, stop_loss, take_profit, exit_reason, pnl_pct,"
                " return_pct, fees_pct, funding_pct) VALUES (%s, %s, 'X', %s, %s, %s, %s, %s, %s,"
                " %s, %s, 0, 0, 0, 0)", (run_id, seq, *row, reason),
            )  # fmt: skip
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "INSERT INTO backtest_trades (run_id, seq, symbol, side, entry_time, exit_time,"
                " entry_price, exit_price, stop_loss, take_profit, exit_reason, pnl_pct,"
                " return_pct, fees_pct, funding_pct) VALUES (%s, 10002, 'X', %s, %s, %s, %s, %s,"
                " %s, %s, 'bogus', 0, 0, 0, 0)", (run_id, *row),
            )  # fmt: skip
    assert Path(path).read_text().startswith("<!doctype html>")
    sweep = quant(*base, "--sweep", "entry_mode=conservative,aggressive",
                  "take_profit_front_run_pct=0.5,1", "--workers", "2")  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr
    assert "sweep 4 points" in sweep.stderr and "4/4" in sweep.stderr
    wf = inproc(capsys, *base, "--sweep", "entry_mode=conservative,aggressive",
                "--walk-forward", "2", "--workers", "1")  # fmt: skip
    assert wf.returncode == 0, wf.stderr
    assert "out of sample" in wf.stdout and "fold 1 test" in wf.stdout
