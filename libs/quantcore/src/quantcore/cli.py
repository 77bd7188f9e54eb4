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
    from quantcore.control import ControlSurface, bus_journal, parse_period, parse_symbol
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
                f"price {_num(r.price)} -> {_num(r.target_price)}" for r in rows])  # fmt: skip
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
                return "no scanner has signals or trades yet"
            return "\n".join(["scanners by realised PnL"] + [
                f"{i:>2}. {r.scanner} {r.scanner_version or ''}: {r.signals} signals, {r.trades} trades, "
                f"win {'-' if r.win_rate_pct is None else f'{r.win_rate_pct:.0f}%'}, "
                f"avg {_pct(r.avg_pnl_pct)}, {r.pnl_quote:+,.2f} USDT"
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
    backfill.set_defaults(fn=cmd_backfill)
    top = sub.add_parser("top", help="the latest ranking's top coins")
    top.add_argument("-n", type=int, default=10)
    top.set_defaults(fn=cmd_control)
    sub.add_parser("positions", help="open positions with PnL %").set_defaults(fn=cmd_control)
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
    sub.add_parser("services", help="list known services").set_defaults(fn=cmd_services)
    sub.add_parser("config", help="show effective settings (secrets hidden)").set_defaults(
        fn=cmd_config
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.fn(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
