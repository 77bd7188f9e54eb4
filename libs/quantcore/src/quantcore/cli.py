"""`quant`: the command line of the fleet.

quant migrate              apply db/migrations (safe to run twice, or from two shells)
quant run <service>        run one service in the foreground
quant up [--scale s=N]     run the whole fleet as local processes (the no-Docker way)
quant health <service>     exit 0 when this host's instance is alive (compose healthcheck)
quant status [--json]      services, last heartbeats, stream lags, dead letters
quant services             list the services this install knows
quant config               show the effective settings (secrets as set / not set)
quant top / positions / pnl [today|7d|30d|all] / scanners   the owner's queries
quant pause [--reason ..]  engage the kill switch: no new entries (open positions still managed)
quant resume               release the kill switch
quant close SYMBOL         close the open position of SYMBOL at market (via the position monitor)
quant backup [--daily]     pg_dump the database to BACKUP_DIR, keep the newest BACKUP_KEEP
quant restore FILE --database NAME   load a backup into a new database
quant backtest --tape sim|db|bybit --days N --strategy NAME [--sweep K=V1,V2 ..] [--walk-forward K]
               [--search random --samples N --seed S]   random search over the declared ranges
quant heatmap-eval --seed N  the key-free heatmap estimate scored against the simulator's truth
quant chaos [--minutes N] [--load]   the fleet under random failures (or load), reconciled from
                           outside (runs scripts/chaos.py of a repository checkout)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from quantcore.config import ConfigError, Settings, load_settings


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _configure_cli_logging(settings: Settings, name: str) -> None:
    from quantcore.logging import configure_logging

    configure_logging(name, "cli", settings.instance, settings.log_level, settings.secret_values())


def cmd_migrate(args: argparse.Namespace) -> int:
    from quantcore.migrations import MigrationError, migrate

    settings = _settings()
    _configure_cli_logging(settings, "migrate")
    try:
        applied = migrate(settings)
    except MigrationError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    print(
        f"migrate: applied {len(applied)} migration(s)"
        + (f": {', '.join(applied)}" if applied else "; up to date")
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from quantcore.registry import load_service
    from quantcore.service import run_service

    try:
        cls = load_service(args.service)
    except KeyError as exc:
        print(f"run: {exc.args[0]}", file=sys.stderr)
        return 2
    return run_service(cls)


def _parse_scale(values: Sequence[str]) -> dict[str, int]:
    scale: dict[str, int] = {}
    for item in values:
        name, sep, count = item.partition("=")
        if not sep or not count.isdigit():
            raise SystemExit(f"up: --scale takes NAME=COUNT, got {item!r}")
        scale[name] = int(count)
    return scale


def cmd_up(args: argparse.Namespace) -> int:
    from quantcore.db import app_login_env
    from quantcore.fleet import Fleet
    from quantcore.migrations import MigrationError, migrate
    from quantcore.registry import service_names

    settings = _settings()
    known = service_names()
    services = [s.strip() for s in args.only.split(",")] if args.only else known
    unknown = [s for s in services if s not in known]
    scale = _parse_scale(args.scale or [])
    unknown += [s for s in scale if s not in known]
    if unknown:
        print(
            f"up: unknown service(s) {', '.join(unknown)} (known: {', '.join(known)})",
            file=sys.stderr,
        )
        return 2
    if not args.no_migrate:
        _configure_cli_logging(settings, "up")
        try:
            applied = migrate(settings)
        except MigrationError as exc:
            print(f"up: {exc}", file=sys.stderr)
            return 1
        print(f"migrate: {len(applied)} applied" if applied else "migrate: up to date")
    print(
        f"starting {', '.join(f'{s}×{scale.get(s, 1)}' for s in services)} "
        f"(data: {settings.data_source}, trading: {settings.trading_mode}); Ctrl-C stops all"
    )
    # migrate ran as the owner (TIMESCALE_DB_USER); the services connect as the app login
    fleet = Fleet(services, scale, restart=not args.no_restart, env=app_login_env(settings))
    return asyncio.run(fleet.run(duration_s=args.duration))


def cmd_health(args: argparse.Namespace) -> int:
    from quantcore.status import health

    settings = _settings()
    try:
        ok, message = health(settings, args.service)
    except Exception as exc:
        print(f"health: cannot check {args.service}: {exc}", file=sys.stderr)
        return 1
    print(message)
    return 0 if ok else 1


def cmd_status(args: argparse.Namespace) -> int:
    from quantcore.status import fleet_status, render

    settings = _settings()
    try:
        status = fleet_status(settings)
    except Exception as exc:
        print(f"status: cannot read the fleet state: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(status, indent=2, default=str) if args.json else render(status))
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    if not 0 < args.days <= 366:
        print("backfill: --days must be in (0, 366]", file=sys.stderr)
        return 2
    settings = _settings()
    _configure_cli_logging(settings, "backfill")
    symbols = [s.strip().upper() for s in args.symbols.split(",")] if args.symbols else None
    try:
        if args.heatmap_inputs:
            return asyncio.run(_backfill_inputs(settings, symbols, args.concurrency))
        return asyncio.run(_backfill(settings, args.days, symbols, args.concurrency))
    except KeyboardInterrupt:
        print("backfill: interrupted; run it again to resume where it stopped", file=sys.stderr)
        return 130


async def _backfill(
    settings: Settings, days: float, symbols: list[str] | None, concurrency: int
) -> int:
    from datetime import UTC, datetime, timedelta

    from tqdm import tqdm

    from quantcore.adapters.bybit.rest import BybitMarketData
    from quantcore.collect.candles import floor_minute, pages, sync_symbol
    from quantcore.db import open_pool

    client = BybitMarketData(settings.bybit_rest_url, settings.bybit_rate_per_s)
    pool = await open_pool(settings)
    try:
        if symbols is None:
            symbols = sorted(i.symbol for i in await client.instruments() if i.quote_coin == "USDT")
        end = floor_minute(datetime.now(UTC))
        start = end - timedelta(days=days)
        per_symbol = len(pages(start, end))
        gate = asyncio.Semaphore(concurrency)
        failed: list[str] = []
        with tqdm(
            total=per_symbol * len(symbols), unit="page", desc=f"backfill {len(symbols)} coins"
        ) as bar:

            async def one(symbol: str) -> int:
                async with gate:
                    try:
                        return await sync_symbol(
                            client,
                            pool,
                            symbol,
                            start,
                            end,
                            settings.data_source,
                            on_page=bar.update,
                        )
                    except Exception as exc:
                        failed.append(symbol)
                        tqdm.write(f"{symbol}: {exc}")
                        return 0

            written = sum(await asyncio.gather(*(one(s) for s in symbols)))
        print(f"backfill: {written} candles written for {len(symbols) - len(failed)} coins")
        if failed:
            print(
                f"backfill: failed for {', '.join(failed)}; run again to retry them",
                file=sys.stderr,
            )
            return 1
        return 0
    finally:
        await client.aclose()
        await pool.close()


async def _backfill_inputs(settings: Settings, symbols: list[str] | None, concurrency: int) -> int:
    """The heatmap estimate's inputs of every coin (a year of 4-h and 3 days of 5-min candles
    and open interest, the account ratio as far back, the risk-limit tiers), resumable: each
    coin continues from its newest stored interval and ratio."""
    from datetime import UTC, datetime

    from tqdm import tqdm

    from quantcore.adapters.bybit.rest import BybitMarketData
    from quantcore.db import open_pool
    from quantcore.estimate.collected import sync_collected
    from quantcore.estimate.refresh import sync_inputs

    client = BybitMarketData(settings.bybit_rest_url, settings.bybit_rate_per_s)
    pool = await open_pool(settings)
    try:
        if symbols is None:
            symbols = sorted(i.symbol for i in await client.instruments() if i.quote_coin == "USDT")
        now = datetime.now(UTC)
        gate = asyncio.Semaphore(concurrency)
        failed: list[str] = []
        with tqdm(total=len(symbols), unit="coin", desc="heatmap inputs") as bar:

            async def one(symbol: str) -> int:
                async with gate, pool.connection() as conn:
                    try:
                        got = await sync_collected(client, conn, symbol, now, settings.data_source)
                        res = await sync_inputs(client, conn, symbol, now, settings.data_source)
                    except Exception as exc:
                        failed.append(symbol)
                        tqdm.write(f"{symbol}: {exc}")
                        return 0
                    finally:
                        bar.update()
                    for err in res.errors + got.errors:
                        tqdm.write(f"{symbol}: fetch failed: {err}")
                    if res.errors or got.errors:
                        failed.append(symbol)
                    return res.intervals

            written = sum(await asyncio.gather(*(one(s) for s in symbols)))
        print(f"backfill: {written} heatmap input intervals written for {len(symbols)} coins")
        if failed:
            print(f"backfill: incomplete for {', '.join(failed)}; run again", file=sys.stderr)
            return 1
        return 0
    finally:
        await client.aclose()
        await pool.close()


def cmd_services(args: argparse.Namespace) -> int:
    from quantcore.registry import load_service, service_names

    for name in service_names():
        cls = load_service(name)
        print(f"{name:<22} {cls.version:<8} {cls.description}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    settings = _settings()
    for key, value in settings.public_view().items():
        print(f"{key}={'' if value is None else value}")
    return 0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}%"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.6g}"


async def _control_command(settings: Settings, args: argparse.Namespace) -> str:
    """Every owner command goes through `quantcore.control` (as Telegram's do): same data,
    same journal entries, same kill-switch state; only the rendering here is plain text."""
    from redis.asyncio import Redis

    from quantcore.bus import Bus
    from quantcore.control import (
        ControlSurface,
        backtest_summary,
        bus_journal,
        parse_period,
        parse_symbol,
    )
    from quantcore.db import open_pool
    from quantcore.trading.killswitch import KillSwitch

    redis = Redis.from_url(settings.redis_url())
    pool = await open_pool(settings)
    try:
        bus = Bus(redis, settings.bus_namespace, source="cli")
        surface = ControlSurface(settings, pool, bus, KillSwitch(redis, settings.bus_namespace),
                                 bus_journal(bus, "cli"))  # fmt: skip
        action = args.command
        if action == "pause":
            st = await surface.pause(args.reason, by="cli")
            return f"kill switch engaged ({st.reason}): no new entries until `quant resume`"
        if action == "resume":
            was = await surface.resume(by="cli")
            return "kill switch released: entries allowed" if was else "kill switch was not engaged"
        if action == "close":
            out = await surface.close(parse_symbol(args.symbol), by="cli")
            if not out.requested:
                return f"no open position in {out.symbol}: nothing to close"
            return f"close of {out.symbol} requested: the position monitor closes it at market"
        if action == "top":
            rows = await surface.top(args.n)
            if not rows:
                return "no ranking yet"
            head = f"top {len(rows)} at {rows[0].time:%Y-%m-%d %H:%M} UTC"
            return "\n".join([head] + [
                f"{r.rank:>3}. {r.symbol:<14} {r.direction or '-':<5} score {r.score:6.1f}  "
                f"price {_num(r.price)} -> {_num(r.target_price)}  [{r.heatmap_source or '?'}]"
                for r in rows])  # fmt: skip
        if action == "positions":
            pos = await surface.positions()
            if not pos:
                return "no open positions"
            return "\n".join([f"{len(pos)} open position(s)"] + [
                f"{p.symbol:<14} {p.direction:<5} {(p.leverage or 1):g}x entry {_num(p.entry_price)} "
                f"now {_num(p.price)} {_pct(p.pnl_pct)} ({_pct(p.pnl_pct_margin)} on margin) "
                f"SL {_num(p.stop_loss)} TP {_num(p.take_profit)} {p.venue}" for p in pos])  # fmt: skip
        if action == "pnl":
            r = await surface.pnl(parse_period(args.period))
            m = r.summary
            rate = f", {m.win_rate_pct:.0f}% win rate" if m.win_rate_pct is not None else ""
            lines = [f"PnL {r.period}: {m.trades} closed trades ({m.wins} won, {m.losses} lost{rate})",
                     f"realised {m.pnl_quote:+,.2f} USDT, average {_pct(m.avg_pnl_pct)} per trade, "
                     f"{_pct(m.sum_pnl_pct_margin)} on margin (sum)"]  # fmt: skip
            if m.best_symbol:
                lines.append(f"best {m.best_symbol} {_pct(m.best_pct)}, "
                             f"worst {m.worst_symbol} {_pct(m.worst_pct)}")  # fmt: skip
            if r.equity is not None:
                lines.append(f"equity {r.equity.start:,.2f} -> {r.equity.end:,.2f} USDT "
                             f"({_pct(r.equity.pct)})")  # fmt: skip
            return "\n".join(lines)
        if action == "scanners":
            rows2 = await surface.scanners()
            if not rows2:
                return "no scanner has signals, trades or backtests yet"
            return "\n".join(["scanners by PnL % (live / paper) | their headline backtest"] + [
                f"{i:>2}. {r.scanner} {r.version}: {r.signals} signals, {r.trades} trades, "
                f"win {'-' if r.win_rate_pct is None else f'{r.win_rate_pct:.0f}%'}, "
                f"avg {_pct(r.avg_pnl_pct)}, {r.pnl_quote:+,.2f} USDT | {backtest_summary(r)}"
                for i, r in enumerate(rows2, start=1)])  # fmt: skip
        raise ValueError(f"unknown control command {action}")
    finally:
        await pool.close()
        await redis.aclose()


def cmd_control(args: argparse.Namespace) -> int:
    from quantcore.control import ControlError

    settings = _settings()
    try:
        print(asyncio.run(_control_command(settings, args)))
    except ControlError as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from quantcore.backup import BackupError, backup, backup_daily, backups_of, stale

    settings = _settings()
    _configure_cli_logging(settings, "backup")
    directory = Path(args.dir) if args.dir else settings.backup_dir
    keep = args.keep or settings.backup_keep
    if args.check:  # compose healthcheck: the daily backups are happening
        problem = stale(backups_of(directory, settings.timescale_db_name), datetime.now(UTC),
                        timedelta(hours=25))  # fmt: skip
        if problem:
            print(f"backup: {problem}", file=sys.stderr)
            return 1
        return 0
    if args.daily:
        import signal

        async def daily() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await backup_daily(settings, directory, keep, stop)

        asyncio.run(daily())
        return 0
    try:
        path = backup(settings, directory, keep)
    except BackupError as exc:
        print(f"backup: {exc}", file=sys.stderr)
        return 1
    print(f"backup: wrote {path} ({path.stat().st_size:,} bytes); keeping the newest {keep}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from quantcore.backup import BackupError, restore

    settings = _settings()
    _configure_cli_logging(settings, "restore")
    try:
        restore(settings, Path(args.file), args.database)
    except BackupError as exc:
        print(f"restore: {exc}", file=sys.stderr)
        return 1
    print(f"restore: {args.file} loaded into database {args.database!r}; set "
          f"TIMESCALE_DB_NAME={args.database} to use it")  # fmt: skip
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime
    from pathlib import Path

    from quantcore.backtest.app import Options, backtest
    from quantcore.backtest.engine import Costs
    from quantcore.backtest.runner import (
        BadInput,
        default_workers,
        parse_grid,
        parse_settings,
        parse_space,
    )
    from quantcore.backtest.tapes import TapeError
    from quantcore.db import conninfo

    if args.list:
        from quantcore.strategies import load_strategy, strategy_names

        for name in strategy_names():
            cls = load_strategy(name)
            fields = ", ".join(
                f"{k}={f.default!r}" for k, f in cls.params_model.model_fields.items()
            )
            print(f"{name} v{cls.version}: {cls.description} ({fields})")
        return 0
    try:
        if not args.strategy:
            raise BadInput("--strategy is required (quant backtest --list shows them)")
        opts = Options(
            strategy=args.strategy, tape=args.tape, days=args.days,
            settings=parse_settings(args.set or []),
            grid=parse_grid(args.sweep or []) if args.search == "grid" else {},
            search=args.search, samples=args.samples or 0, search_seed=args.search_seed,
            space=parse_space(args.sweep or []) if args.search == "random" else {},
            walk_forward=args.walk_forward or 0, objective=args.objective,
            symbols=[s.strip().upper() for s in args.symbols.split(",")] if args.symbols else None,
            coins=args.coins, seed=args.seed,
            end=datetime.fromisoformat(args.end).replace(tzinfo=UTC) if args.end else None,
            max_gap=args.max_gap,
            costs=Costs(commission=args.commission, slippage=args.slippage, size=args.size),
            workers=args.workers or default_workers(),
            report_dir=Path(args.report_dir) if args.report_dir else None,
            write_db=not args.no_db,
        )  # fmt: skip
    except (BadInput, ValueError) as exc:
        print(f"backtest: {exc}", file=sys.stderr)
        return 2
    needs_db = opts.write_db or opts.tape != "sim"
    info = conninfo(_settings()) if needs_db else None
    try:
        return asyncio.run(backtest(opts, info))
    except (BadInput, TapeError) as exc:
        print(f"backtest: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("backtest: interrupted; a sweep resumes where it stopped", file=sys.stderr)
        return 130


def cmd_heatmap_eval(args: argparse.Namespace) -> int:
    """The key-free estimate against the simulator's ground truth (no database, no settings);
    with --stored-source, a stored source's heatmaps against the liquidations recorded after
    them (the database; simulated or real data alike)."""
    if args.stored_source:
        return asyncio.run(_stored_realised(_settings(), args))
    from quantcore.estimate.evaluate import evaluate, fmt, fmt_realised
    from quantcore.math.liqmodel import LeverageMix, ModelParams

    params = ModelParams(mix=LeverageMix.parse(args.leverage_mix)) if args.leverage_mix else None
    res = evaluate(
        args.seed, coins=args.coins, history_days=args.history_days, live_hours=args.live_hours,
        params=params, top=args.top, tol_pct=args.tol_pct, realised_hours=args.realised_hours,
    )  # fmt: skip
    print(
        f"heatmap-eval: seed {res.seed}, {res.coins} coins x 9 timeframes, top {args.top} "
        f"clusters per coin x timeframe, within ±{args.tol_pct:g} % of a true one"
    )
    print(f"  model  {fmt(res.model)}")
    print(f"  naive  {fmt(res.naive)}")
    for name, s in {**res.by_group, **res.by_timeframe}.items():
        print(f"    {name:>6}  {fmt(s)}")
    if res.realised_hours > 0:
        print(
            f"against the liquidations of the next {res.realised_hours:g} h (top 10 clusters of "
            f"the 1y heatmap per coin, ±{args.tol_pct:g} %):"
        )
        print(f"  model  {fmt_realised(res.realised_model)}")
        print(f"  naive  {fmt_realised(res.realised_naive)}")
    return 0


async def _stored_realised(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from psycopg import AsyncConnection

    from quantcore.db import conninfo
    from quantcore.estimate.evaluate import fmt_realised
    from quantcore.estimate.hit_rate import score
    from quantcore.store.heatmap_eval import after_snapshots

    at = datetime.now(UTC) - timedelta(hours=args.realised_hours)
    async with await AsyncConnection.connect(conninfo(settings)) as conn:
        coins = await after_snapshots(conn, args.stored_source, "1y", at, args.realised_hours)
    total = score(coins, args.tol_pct).realised
    print(
        f"heatmap-eval: source {args.stored_source}, {len(coins)} coins, 1y heatmaps of "
        f"{args.realised_hours:g} h ago against the liquidations recorded since: "
        f"{fmt_realised(total)}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="quant", description="Whale Stack fleet command line.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(fn=cmd_migrate)
    run = sub.add_parser("run", help="run one service in the foreground")
    run.add_argument("service")
    run.set_defaults(fn=cmd_run)
    up = sub.add_parser("up", help="run the whole fleet as local processes")
    up.add_argument("--only", help="comma-separated services to run (default: all)")
    up.add_argument("--scale", action="append", metavar="NAME=N", help="replicas of a service")
    up.add_argument("--no-migrate", action="store_true", help="skip `quant migrate` first")
    up.add_argument("--no-restart", action="store_true", help="do not restart services that exit")
    up.add_argument("--duration", type=float, help="stop after this many seconds")
    up.set_defaults(fn=cmd_up)
    health = sub.add_parser("health", help="exit 0 when this host's instance of SERVICE is alive")
    health.add_argument("service")
    health.set_defaults(fn=cmd_health)
    status = sub.add_parser("status", help="services, heartbeats, stream lags, dead letters")
    status.add_argument("--json", action="store_true")
    status.set_defaults(fn=cmd_status)
    backfill = sub.add_parser("backfill", help="fill 1-min OHLCV up to a year back (resumable)")
    backfill.add_argument("--days", type=float, default=30.0, help="how far back (max 366)")
    backfill.add_argument("--symbols", help="comma-separated symbols (default: the whole universe)")
    backfill.add_argument("--concurrency", type=int, default=4, help="coins fetched at once")
    backfill.add_argument(
        "--heatmap-inputs", action="store_true",
        help="instead: the key-free heatmap estimate's inputs (4-h/5-min candles, open interest, "
        "account ratio, risk-limit tiers)",
    )  # fmt: skip
    backfill.set_defaults(fn=cmd_backfill)
    top = sub.add_parser("top", help="the latest ranking's top coins")
    top.add_argument("-n", type=int, default=10)
    top.set_defaults(fn=cmd_control)
    sub.add_parser("positions", help="open positions with PnL %%").set_defaults(fn=cmd_control)
    pnl = sub.add_parser("pnl", help="realised PnL: today | 7d | 30d | all")
    pnl.add_argument("period", nargs="?", default="today")
    pnl.set_defaults(fn=cmd_control)
    sub.add_parser("scanners", help="scanner leaderboard").set_defaults(fn=cmd_control)
    pause = sub.add_parser("pause", help="kill switch: block new entries at once")
    pause.add_argument("--reason", default=None, help="why (default: 'paused by the owner')")
    pause.set_defaults(fn=cmd_control)
    sub.add_parser("resume", help="release the kill switch").set_defaults(fn=cmd_control)
    close = sub.add_parser("close", help="close the open position of SYMBOL at market")
    close.add_argument("symbol")
    close.set_defaults(fn=cmd_control)
    bk = sub.add_parser("backup", help="pg_dump the database to BACKUP_DIR (keeps BACKUP_KEEP)")
    bk.add_argument("--dir", help="folder (default: BACKUP_DIR)")
    bk.add_argument("--keep", type=int, help="backups kept (default: BACKUP_KEEP)")
    bk.add_argument(
        "--daily", action="store_true", help="every day at BACKUP_DAILY_AT, until stopped"
    )
    bk.add_argument(
        "--check", action="store_true", help="exit 1 when the newest backup is > 25 h old"
    )
    bk.set_defaults(fn=cmd_backup)
    rs = sub.add_parser("restore", help="load a backup into a new database")
    rs.add_argument("file")
    rs.add_argument("--database", required=True, help="name of the new database to create")
    rs.set_defaults(fn=cmd_restore)
    bt = sub.add_parser("backtest", help="backtest a strategy on a tape (sweeps, walk-forward)")
    bt.add_argument("--strategy", help="strategy name (--list shows them)")
    bt.add_argument("--list", action="store_true", help="list strategies and their settings")
    bt.add_argument("--tape", default="sim", help="sim (seeded, offline) | db | bybit")
    bt.add_argument("--days", type=float, default=30.0, help="window length in days")
    bt.add_argument("--set", action="append", metavar="NAME=VALUE", help="a strategy setting")
    bt.add_argument(
        "--sweep", nargs="+", metavar="NAME=V1,V2",
        help="grid axes: run every combination; with --search random: NAME=LOW..HIGH ranges "
        "or NAME=V1,V2 choices (default: every declared range)",
    )  # fmt: skip
    bt.add_argument(
        "--search", choices=("grid", "random"), default="grid",
        help="grid: every combination of --sweep; random: --samples seeded draws",
    )  # fmt: skip
    bt.add_argument("--samples", type=int, help="random search: number of settings drawn")
    bt.add_argument("--search-seed", type=int, help="random search: draw seed (default: --seed)")
    bt.add_argument(
        "--walk-forward", type=int, nargs="?", const=4, metavar="K",
        help="K folds (default 4): fit on window k, score on window k+1",
    )  # fmt: skip
    bt.add_argument("--objective", default="sharpe", help="what a fit maximises")
    bt.add_argument("--symbols", help="comma-separated coins (default: all on the tape)")
    bt.add_argument("--coins", type=int, default=3, help="sim tape: number of coins")
    bt.add_argument(
        "--seed", type=int, default=42, help="sim tape: market seed (and random search's)"
    )
    bt.add_argument("--end", help="database tapes: window end, UTC ISO time (default now)")
    bt.add_argument("--max-gap", type=int, default=0, help="missing candles tolerated per gap")
    bt.add_argument("--commission", type=float, default=0.00055, help="per side, fraction")
    bt.add_argument("--slippage", type=float, default=0.0, help="per market fill, fraction")
    bt.add_argument("--size", type=float, default=1.0, help="position size, fraction of equity")
    bt.add_argument("--workers", type=int, help="processes for sweeps (default: up to 4)")
    bt.add_argument("--report-dir", help="where reports go (default ./reports)")
    bt.add_argument("--no-db", action="store_true", help="do not store runs in the database")
    bt.set_defaults(fn=cmd_backtest)
    ev = sub.add_parser(
        "heatmap-eval", help="score the key-free heatmap estimate against the simulator's truth"
    )
    ev.add_argument("--seed", type=int, default=7, help="simulator seed")
    ev.add_argument(
        "--stored-source", help="instead: score this stored source (estimate, coinglass, sim) "
        "against the liquidations recorded in the database after its snapshots",
    )  # fmt: skip
    ev.add_argument("--coins", type=int, default=60)
    ev.add_argument("--history-days", type=float, default=3.0, help="1-minute history built")
    ev.add_argument("--live-hours", type=float, default=0.0, help="live market run after it")
    ev.add_argument("--top", type=int, default=5, help="top clusters per coin x timeframe")
    ev.add_argument("--tol-pct", type=float, default=1.0, help="match tolerance, percent")
    ev.add_argument(
        "--realised-hours", type=float, default=6.0,
        help="then run the market on and score against its liquidations (0: skip)",
    )  # fmt: skip
    ev.add_argument("--leverage-mix", help="leverage:share:hold_days,... (default: the model's)")
    ev.set_defaults(fn=cmd_heatmap_eval)
    ch = sub.add_parser(
        "chaos", add_help=False,
        help="kills, restarts, faults and bad input on the whole fleet, then reconcile "
        "(--minutes N, --load, --json FILE, --bench; scripts/chaos --help for all)",
    )  # fmt: skip
    ch.add_argument("rest", nargs=argparse.REMAINDER)
    ch.set_defaults(fn=cmd_chaos)
    sub.add_parser("services", help="list known services").set_defaults(fn=cmd_services)
    sub.add_parser("config", help="show effective settings (secrets hidden)").set_defaults(
        fn=cmd_config
    )
    return p


def cmd_chaos(args: argparse.Namespace) -> int:
    """The chaos/load run lives in the repository (it drives the wire-level fake channel servers
    of tests/fakes), so `quant chaos` runs it from a checkout."""
    import subprocess
    from pathlib import Path

    root = next((p for p in Path(__file__).resolve().parents if (p / "scripts" / "chaos.py").is_file()),
                None)  # fmt: skip
    if root is None:
        print("chaos: needs a checkout of the repository (scripts/chaos.py, tests/fakes)",
              file=sys.stderr)  # fmt: skip
        return 2
    return subprocess.call([sys.executable, "-m", "scripts.chaos", *args.rest], cwd=root)  # noqa: S603


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["chaos"]:  # every option (--help too) belongs to scripts/chaos
        return cmd_chaos(argparse.Namespace(rest=given[1:]))
    args = build_parser().parse_args(given)
    code: int = args.fn(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
