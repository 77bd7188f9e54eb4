"""A self-contained HTML report per run or sweep: equity curve, drawdown, monthly returns,
trade distribution (matplotlib figures, embedded and also saved as PNGs beside the HTML),
the metrics table per coin and, for a sweep, every point's figures."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from quantcore.backtest.metrics import HuntScore, Metrics, drawdown_curve_pct
from quantcore.backtest.runner import RunResult

COLUMNS = (
    ("trades", "trades", "{:d}"), ("pnl_pct", "PnL %", "{:+.2f}"),
    ("win_rate_pct", "win %", "{:.1f}"), ("avg_win_pct", "avg win %", "{:+.3f}"),
    ("avg_loss_pct", "avg loss %", "{:+.3f}"), ("reward_risk", "R:R", "{:.2f}"),
    ("profit_factor", "PF", "{:.2f}"), ("max_drawdown_pct", "max DD %", "{:.2f}"),
    ("sharpe", "Sharpe", "{:.2f}"), ("sortino", "Sortino", "{:.2f}"),
    ("exposure_pct", "exposure %", "{:.1f}"), ("trades_per_day", "trades/day", "{:.2f}"),
    ("fees_pct", "fees %", "{:.3f}"), ("funding_pct", "funding %", "{:+.3f}"),
)  # fmt: skip


def fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "—"
    return spec.format(value)


def metrics_rows(rows: Sequence[tuple[str, Metrics | dict[str, Any]]]) -> list[list[str]]:
    out = []
    for label, m in rows:
        d = m.as_dict() if isinstance(m, Metrics) else m
        out.append([label] + [fmt(d.get(k), spec) for k, _, spec in COLUMNS])
    return out


def text_table(rows: Sequence[tuple[str, Metrics | dict[str, Any]]], first: str = "") -> str:
    """The summary table for a terminal."""
    head = [first] + [title for _, title, _ in COLUMNS]
    body = metrics_rows(rows)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]

    def line(r: Sequence[str]) -> str:
        cells = zip(r, widths, strict=True)
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(cells))

    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)])


def hunt_line(h: HuntScore) -> str:
    """The run against the sim tape's whale ground truth, one line."""
    pct = fmt(h.caught_pct, "{:.1f} %")
    return (
        f"{h.hunts} in window, caught {h.caught} ({pct}); trades outside any hunt: "
        f"{h.outside} of {h.trades} ({h.during_fake} during a fake pump)"
    )


def _html_table(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{rows}</tbody></table>"


def _times(r: RunResult) -> np.ndarray:
    return (r.start_s + r.interval_s).astype("datetime64[s]")


def monthly_returns(close_s: np.ndarray, equity: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(month labels, return of each calendar month in percent), the first from a start of 1."""
    months = close_s.astype("datetime64[s]").astype("datetime64[M]")
    labels, first = np.unique(months, return_index=True)
    last = np.append(first[1:] - 1, months.size - 1)
    ends = equity[last]
    starts = np.concatenate([[1.0], ends[:-1]])
    return [str(m) for m in labels], (ends / starts - 1) * 100


def _figures(r: RunResult) -> dict[str, Figure]:
    t = _times(r)
    figs: dict[str, Figure] = {}
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.plot(t, (r.equity - 1) * 100, lw=1)
    ax.set_title("equity (PnL %, marked to market at each close)")
    ax.grid(alpha=0.3)
    figs["equity"] = fig
    fig, ax = plt.subplots(figsize=(10, 2.6))
    ax.fill_between(t, -drawdown_curve_pct(r.equity), 0, color="tab:red", alpha=0.5)
    ax.set_title("drawdown %")
    ax.grid(alpha=0.3)
    figs["drawdown"] = fig
    labels, monthly = monthly_returns(r.start_s + r.interval_s, r.equity)
    fig, ax = plt.subplots(figsize=(10, 2.6))
    colors = ["tab:green" if v >= 0 else "tab:red" for v in monthly]
    ax.bar(labels, monthly, color=colors)
    ax.set_title("monthly returns %")
    ax.grid(alpha=0.3, axis="y")
    figs["monthly"] = fig
    pnl = np.concatenate([x.trades.pnl_pct for x in r.results]) if r.results else np.zeros(0)
    fig, ax = plt.subplots(figsize=(10, 2.6))
    if pnl.size:
        ax.hist(pnl, bins=min(60, max(5, pnl.size // 3)), color="tab:blue", alpha=0.8)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_title(f"trade distribution (PnL % per trade, {pnl.size} trades)")
    figs["trades"] = fig
    return figs


def write_report(
    r: RunResult, out_dir: Path, title: str, facts: dict[str, Any],
    sweep: Sequence[tuple[str, dict[str, Any]]] = (),
    extra: Sequence[tuple[str, Metrics]] = (),
) -> Path:  # fmt: skip
    """index.html (self-contained) + one PNG per figure in out_dir; returns the HTML path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images = []
    for name, fig in _figures(r).items():
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        png = buf.getvalue()
        (out_dir / f"{name}.png").write_bytes(png)
        images.append(
            f'<figure><img alt="{name}" src="data:image/png;base64,'
            f'{base64.b64encode(png).decode()}"></figure>'
        )
    head = [""] + [t for _, t, _ in COLUMNS]
    rows = [("portfolio", r.metrics), *extra, *sorted(r.per_coin.items())]
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        _html_table(["", ""], [[k, str(v)] for k, v in facts.items()]),
    ]
    if r.metrics.warning:
        parts.append(f'<p class="warn">⚠ {html.escape(r.metrics.warning)}</p>')
    parts += ["<h2>metrics</h2>", _html_table(head, metrics_rows(rows))]
    if sweep:
        parts += ["<h2>sweep: every point</h2>", _html_table(head, metrics_rows(sweep))]
    parts += ["<h2>charts</h2>", *images, "<h2>trades (first 500)</h2>"]
    trade_rows: list[list[str]] = []
    for res in r.results:
        t = res.trades
        for i in range(min(len(t), 500 - len(trade_rows))):
            trade_rows.append([
                res.symbol, "long" if t.side[i] > 0 else "short",
                _ts(res.start_s[t.entry_bar[i]]), _ts(res.start_s[t.exit_bar[i]]),
                f"{t.entry_price[i]:.6g}", f"{t.exit_price[i]:.6g}", t.reason[i],
                f"{t.pnl_pct[i]:+.3f}",
            ])  # fmt: skip
    parts.append(
        _html_table(
            ["coin", "side", "entry", "exit", "entry px", "exit px", "why", "PnL %"], trade_rows
        )
    )
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;"
        "margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px;text-align:right}"
        "td:first-child{text-align:left}img{max-width:100%}.warn{color:#a60}"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _ts(s: int) -> str:
    return datetime.fromtimestamp(int(s), UTC).strftime("%Y-%m-%d %H:%M")
