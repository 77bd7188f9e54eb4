"""The whole fleet under random failures, then a reconciliation from the outside.

    ./scripts/chaos --minutes 10                chaos: kills, restarts, faults, bad input
    ./scripts/chaos --load --minutes 10         load: 500 coins, 1-s ticks, no faults
    ./scripts/chaos ... --json out.json --bench  figures to a file / into bench/results.json

Chaos runs every service on the simulator (paper trading, the broadcaster pointed at local
wire-level fake Telegram / X / Twilio / SMTP servers), two replicas of each service that
scales, on a private database and a private `redis-server` (AOF on) that it may restart. For
the given time, at random: SIGKILLs service processes (every service several times), kills
their Redis and PostgreSQL connections (CLIENT KILL, pg_terminate_backend), restarts Redis,
turns on the simulator's faults (429, 5xx, slow answers, dropped sockets) and the fake channel
servers' (502, 429), publishes trade signals (some twice), and injects malformed and oversized
entries on every stream a consumer group reads. Then it turns the faults off, lets the fleet
settle, stops it and reconciles from the outside:

- every signal on the stream decided once (`autotrader_decisions`), none lost;
- every order once at the venue: the paper venue's own books (`paper_orders`,
  `paper_executions`) against the orders each decision planned; no over-fill;
- every broadcast once at the fake servers (what they received, against the outbox);
- no open position at the venue without an open trade row, and no open trade row without one;
- every injected malformed entry in the dead-letter stream, for every group that read it;
- no row with NaN, a zero price or a time in the future.

A table is printed, the figures go to JSON, and the exit code is 1 on any loss or duplicate
(2 for bad arguments). Load mode measures consumer-group lag (max seconds an entry waited),
the RSS of every service at start and end, and dead letters from valid data (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from redis.asyncio import Redis
from tests.e2e.signals import TIGHT, make_signal
from tests.fakes.http import Fault
from tests.fakes.smtp import FakeSmtp
from tests.fakes.telegram import FakeTelegram, retry_after
from tests.fakes.twilio import FakeTwilio
from tests.fakes.x import FakeX
from tests.helpers.redis_server import RedisServer
from tqdm import tqdm

from quantcore.bus import DEADLETTER, Bus, decode, stream_key
from quantcore.config import env_name
from quantcore.db import conninfo
from quantcore.model.events import (
    STREAM_SIGNALS,
    AgentLogRecorded,
    StrategySignalled,
    TradeSignalled,
)
from quantcore.registry import service_names
from quantcore.service import AGENT_LOG_STREAM
from quantcore.testing import LOCAL_DATABASE_URL, Infra, Sandbox, free_port, sandbox

ROOT = Path(__file__).resolve().parents[1]
NOT_SCALED = {"simulator"}  # it is the market: one instance
# killed right after a signal is published, to hit the windows where a duplicate is made
IN_FLIGHT_TARGETS = ("autotrader", "broadcaster", "position_monitor", "journal")
SIM_FAULTS_ON = "http_429=0.08,http_5xx=0.08,http_slow=0.05,slow_s=2,ws_drop_per_min=2"
PRICE_EXEMPT_PREFIX = "poly_"  # outcome prices of resolved markets are legitimately 0
EVENT_TIME_COLUMNS = ("time", "decided_at", "created_at", "opened_at", "closed_at",
                      "first_sent_at", "done_at", "send_started_at", "beat_at")  # fmt: skip


@dataclass
class Config:
    minutes: float
    replicas: int
    seed: int
    load: bool
    coins: int
    settle_s: float
    kills_per_service: int
    warmup_s: float
    json_path: Path | None
    bench: bool
    workdir: Path


@dataclass
class Tally:
    kills: Counter[str] = field(default_factory=Counter)
    redis_restarts: int = 0
    redis_client_kills: int = 0
    pg_backend_kills: int = 0
    fault_windows: int = 0
    channel_faults: int = 0
    signals_published: int = 0
    signals_replayed: int = 0
    injected: list[dict[str, Any]] = field(default_factory=list)  # stream, id, groups, kind
    lag_samples_s: list[float] = field(default_factory=list)
    lag_by_group: dict[str, float] = field(default_factory=dict)  # stream/group → max lag (s)
    rss_start: dict[str, int] = field(default_factory=dict)
    rss_end: dict[str, int] = field(default_factory=dict)


# --- the fleet ------------------------------------------------------------------------------------


class FleetProc:
    """`quant up` in a subprocess, its output in a log file; pids read from its 'started' lines."""

    def __init__(self, env: dict[str, str], scale: dict[str, int], log_path: Path) -> None:
        self.log_path = log_path
        args = [sys.executable, "-m", "quantcore.cli", "up"]
        for name, n in scale.items():
            args += ["--scale", f"{name}={n}"]
        self.out = log_path.open("wb")
        self.proc = subprocess.Popen(args, stdout=self.out, stderr=subprocess.STDOUT, env=env,
                                     cwd=ROOT)  # fmt: skip

    def pids(self) -> dict[str, int]:
        """`service.replica` → pid of its latest start."""
        found: dict[str, int] = {}
        text = self.log_path.read_text(errors="replace")
        for m in re.finditer(r"^(\w+\.\d+)\s*\| started \(pid (\d+)\)", text, re.M):
            found[m.group(1)] = int(m.group(2))
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.out.close()


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


# --- the fakes ------------------------------------------------------------------------------------


@dataclass
class Channels:
    telegram: FakeTelegram
    twilio: FakeTwilio
    x: FakeX
    smtp: FakeSmtp
    env: dict[str, str]

    @classmethod
    async def start(cls, workdir: Path) -> Channels:
        tag = uuid.uuid4().hex[:8]
        token = f"4242:chaos-{tag}"
        sid = "AC" + tag.ljust(32, "0")
        telegram, twilio, x = FakeTelegram({token}), FakeTwilio(sid, f"tw-{tag}"), FakeX()
        smtp = FakeSmtp("bot@chaos.test", f"smtp-{tag}", workdir)
        await telegram.start()
        await twilio.start()
        await x.start()
        smtp.start()
        env = {
            "TELEGRAM_BOT_TOKEN": token, "TELEGRAM_MAIN_CHANNEL": "@whales_chaos",
            "TELEGRAM_ADMIN_ID": "777001", "TELEGRAM_API_BASE_URL": telegram.url,
            env_name("twilio_account_sid"): sid, env_name("twilio_auth_token"): f"tw-{tag}",
            "TWILIO_PHONE": "+15550001111", "SMS_ADMIN_PHONE": "+15552223333",
            "TWILIO_API_BASE_URL": twilio.url,
            "X_API_KEY": "ck", "X_API_SECRET": "cs", "X_ACCESS_TOKEN": "at",
            env_name("x_access_secret"): "as", "X_API_BASE_URL": x.url,
            env_name("email_user"): "bot@chaos.test", env_name("email_pass"): f"smtp-{tag}",
            "EMAIL_SMTP_HOST": "127.0.0.1", "EMAIL_SMTP_PORT": str(smtp.port),
            "EMAIL_SMTP_CA_FILE": str(smtp.ca_file), "EMAIL_TO": "owner@chaos.test",
        }  # fmt: skip
        return cls(telegram, twilio, x, smtp, env)

    def inject_faults(self, rng: random.Random) -> int:
        self.telegram.faults.extend(
            [Fault(502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})]
            * rng.randint(1, 3)
        )
        self.telegram.faults.append(Fault(429, retry_after(1)))
        self.twilio.faults.append(Fault(503, {"code": 20503, "message": "busy", "status": 503}))
        self.x.faults.append(Fault(503, {"title": "Service Unavailable", "status": 503}))
        return 4

    def clear_faults(self) -> None:
        for fake in (self.telegram, self.twilio, self.x):
            fake.faults.clear()

    def delivered(self) -> dict[str, Counter[str]]:
        """What each fake server accepted, by text (email: one per Message-ID, as mail stores)."""
        emails: dict[str, str] = {}
        for r in self.smtp.received:
            body = r.message.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            emails.setdefault(str(r.message["Message-ID"]), _norm(str(text)))
        return {
            "telegram": Counter(
                _norm(str(c.params.get("text", ""))) for c in self.telegram.delivered("sendMessage")
            ),
            "sms": Counter(
                _norm(str(c.params.get("Body", "")))
                for c in self.twilio.delivered("Messages.create")
            ),
            "x": Counter(
                _norm(str(c.params.get("text", ""))) for c in self.x.delivered("tweets.create")
            ),
            "email": Counter(emails.values()),
        }

    async def stop(self) -> None:
        await self.telegram.stop()
        await self.twilio.stop()
        await self.x.stop()
        self.smtp.stop()


def _norm(text: str) -> str:
    return text.replace("\r\n", "\n").strip()


# --- the run --------------------------------------------------------------------------------------


class Chaos:
    def __init__(self, cfg: Config, box: Sandbox, redis_server: RedisServer) -> None:
        self.cfg = cfg
        self.box = box
        self.redis_server = redis_server
        self.rng = random.Random(cfg.seed)
        self.tally = Tally()
        self.services = service_names()
        self.scale = {s: 1 if s in NOT_SCALED else cfg.replicas for s in self.services}
        self.sim_port = free_port()
        self.sim_url = f"http://127.0.0.1:{self.sim_port}"
        self.published: list[TradeSignalled] = []
        self.log_lines: list[str] = []
        self.bar: tqdm[Any] | None = None  # the chaos / load phase's progress (a terminal only)

    def say(self, text: str) -> None:
        line = f"[{datetime.now(UTC).strftime('%H:%M:%S')}] {text}"
        self.log_lines.append(line)
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    # --- plumbing --------------------------------------------------------------------------------

    def redis(self) -> Redis:
        return Redis.from_url(self.box.settings.redis_url(), socket_timeout=10)

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(conninfo(self.box.settings), connect_timeout=10) as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    async def asql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self.sql, query, *params)

    async def sim(self, method: str, path: str, **kw: Any) -> httpx.Response | None:
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                return await client.request(method, self.sim_url + path, **kw)
        except httpx.HTTPError:
            return None  # the simulator may be down (killed) right now

    def fleet_env(self, channels: Channels | None) -> dict[str, str]:
        env = {
            **os.environ, **self.box.env, **({} if self.cfg.load else TIGHT),
            "SIM_HOST": "127.0.0.1", "SIM_BIND_HOST": "127.0.0.1", "SIM_PORT": str(self.sim_port),
            "SIM_SPEED": "1", "SIM_COINS": str(self.cfg.coins), "SIM_SEED": str(self.cfg.seed),
            "HEARTBEAT_INTERVAL_S": "1", "HEARTBEAT_TTL_S": "4", "BUS_CLAIM_IDLE_MS": "1500",
            "TRADING_MODE": "paper", "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
            "BROADCAST_DAILY_DIGEST_AT": "off", "BROADCAST_RETRY_BASE_S": "0.2",
            "BROADCAST_RETRY_MAX_S": "2", "BROADCAST_CLAIM_TIMEOUT_S": "10",
            "BROADCAST_SMS_MIN_SCORE": "0",
            "BROADCAST_TELEGRAM_RATE": "1000/1", "BROADCAST_X_RATE": "1000/1",
            "BROADCAST_EMAIL_RATE": "1000/1", "BROADCAST_SMS_RATE": "1000/1",
            "MAX_OPEN_POSITIONS": "50",
        }  # fmt: skip
        if self.cfg.load:  # the market at its defaults (1-s prices), 500 coins, every cycle
            env.update(SIM_HISTORY_DAYS="0.2")
        if channels is not None:
            env.update(channels.env)
        return env

    async def wait_heartbeats(self, within_s: float) -> bool:
        want = len(self.services)
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                rows = await self.asql(
                    "SELECT count(DISTINCT service) FROM service_heartbeats "
                    "WHERE beat_at > now() - interval '15 seconds'"
                )
                if rows and rows[0][0] >= want:
                    return True
            await asyncio.sleep(2)
        return False

    # --- chaos actions ---------------------------------------------------------------------------

    def kill(self, fleet: FleetProc, label: str) -> bool:
        pid = fleet.pids().get(label)
        if pid is None:
            return False
        try:
            os.killpg(pid, signal.SIGKILL)  # each member runs in its own session/process group
        except ProcessLookupError:
            return False
        self.tally.kills[label.split(".")[0]] += 1
        return True

    async def kill_connections(self) -> None:
        redis = self.redis()
        try:
            killed = await redis.execute_command(
                "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"
            )
            self.tally.redis_client_kills += int(killed)
        except Exception as exc:
            self.say(f"CLIENT KILL failed: {exc}")
        finally:
            await redis.aclose()
        rows = await self.asql(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        self.tally.pg_backend_kills += int(rows[0][0] or 0)

    async def restart_redis(self) -> None:
        """Every other restart is a crash (SIGKILL; the chaos Redis runs `appendfsync always`,
        so nothing acknowledged may be lost), the others clean (SHUTDOWN)."""
        down = self.rng.uniform(0.5, 2.5)
        crash = self.tally.redis_restarts % 2 == 1
        await asyncio.to_thread(self.redis_server.restart, down, crash)
        self.tally.redis_restarts += 1
        self.say(f"redis {'crashed (SIGKILL)' if crash else 'shut down'} and restarted "
                 f"(down {down:.1f}s)")  # fmt: skip

    async def publish_signals(self, n: int) -> None:
        r = await self.sim("GET", "/v5/market/tickers", params={"category": "linear"})
        if r is None or r.status_code != 200:
            return
        with contextlib.suppress(ValueError, KeyError):
            prices = {t["symbol"]: float(t["lastPrice"]) for t in r.json()["result"]["list"]}
            coins = sorted(prices)
            events: list[TradeSignalled] = []
            for _ in range(n):
                sym = self.rng.choice(coins)
                sig = make_signal(sym, prices[sym], self.rng.choice(["long", "short"]))
                k = len(self.published) + len(events)
                events.append(
                    sig.model_copy(update={"scanner_version": f"chaos-{k}", "cycle_id": "chaos"})
                )
            if self.rng.random() < 0.3:  # republished at once: both replicas get it together
                events.append(events[0])
                self.tally.signals_replayed += 1
            if self.published and self.rng.random() < 0.3:  # a republished (replayed) signal
                events.append(self.rng.choice(self.published))
                self.tally.signals_replayed += 1
            redis = self.redis()
            try:
                bus = Bus(redis, self.box.settings.bus_namespace, source="ranker@chaos")
                for e in events:
                    await bus.publish(STREAM_SIGNALS, e, correlation_id=str(e.signal_id))
                    if all(e.signal_id != p.signal_id for p in self.published):
                        self.published.append(e)
                        self.tally.signals_published += 1
            finally:
                await redis.aclose()

    async def inject_malformed(self) -> None:
        """Bad entries on every stream a consumer group reads: not JSON, no envelope field, an
        unknown type, a known type with a NaN and an extra field, and a 1.5 MB entry."""
        redis = self.redis()
        ns = self.box.settings.bus_namespace
        prefix = stream_key(ns, "")
        try:
            async for key in redis.scan_iter(match=prefix + "*", count=500, _type="STREAM"):
                name = key.decode()[len(prefix) :]
                if name == DEADLETTER:
                    continue
                groups = [g["name"].decode() for g in await redis.xinfo_groups(key)]
                if not groups:
                    continue
                good = None  # the newest entry that decodes: a valid one to corrupt
                for mid, fields in await redis.xrevrange(key, count=50):
                    with contextlib.suppress(Exception):
                        decode(mid.decode(), fields)
                        good = json.loads(fields[b"e"])
                        break
                bad: list[tuple[str, dict[bytes, bytes]]] = [
                    ("not_json", {b"e": b"\xff{chaos not json"}),
                    ("no_envelope", {b"x": b"1"}),
                    (
                        "unknown_type",
                        {
                            b"e": json.dumps(
                                {
                                    "id": str(uuid.uuid4()),
                                    "type": "chaos.bogus",
                                    "version": 1,
                                    "time": datetime.now(UTC).isoformat(),
                                    "source": "chaos",
                                    "correlation_id": "chaos",
                                    "payload": {},
                                }
                            ).encode()
                        },
                    ),
                    ("oversized", {b"e": b'{"id":"' + b"A" * 1_500_000 + b'"}'}),
                ]
                if good is not None:
                    corrupt = dict(good, id=str(uuid.uuid4()))
                    corrupt["payload"] = dict(good["payload"], chaos_extra=float("nan"))
                    bad.append(("bad_payload", {b"e": json.dumps(corrupt).encode()}))
                for kind, fields in bad:
                    mid = await redis.xadd(key, fields)  # type: ignore[arg-type]
                    self.tally.injected.append(
                        {"stream": name, "id": mid.decode(), "groups": groups, "kind": kind}
                    )
        finally:
            await redis.aclose()

    async def sample(self, fleet: FleetProc) -> None:
        """Consumer-group lag in seconds: how long the oldest entry not yet acked (or not yet
        delivered) of any group has waited."""
        redis = self.redis()
        ns = self.box.settings.bus_namespace
        prefix = stream_key(ns, "")
        worst = 0.0
        by_group = self.tally.lag_by_group
        try:
            now_ms = time.time() * 1000
            async for key in redis.scan_iter(match=prefix + "*", count=500, _type="STREAM"):
                for g in await redis.xinfo_groups(key):
                    oldest: str | None = None
                    if int(g["pending"]):
                        p = await redis.xpending(key, g["name"])
                        oldest = p["min"].decode() if isinstance(p["min"], bytes) else p["min"]
                    nxt = await redis.xrange(
                        key, "(" + g["last-delivered-id"].decode(), "+", count=1
                    )
                    if nxt and (oldest is None or _ms(nxt[0][0].decode()) < _ms(oldest)):
                        oldest = nxt[0][0].decode()
                    if oldest is not None:
                        lag = (now_ms - _ms(oldest)) / 1000
                        worst = max(worst, lag)
                        name = f"{key.decode()[len(prefix) :]}/{g['name'].decode()}"
                        by_group[name] = round(max(by_group.get(name, 0.0), lag), 2)
            self.tally.lag_samples_s.append(worst)
        except Exception as exc:
            self.say(f"lag sample failed: {str(exc)[:120]}")
        finally:
            await redis.aclose()

    def rss(self, fleet: FleetProc) -> dict[str, int]:
        return {label: kb for label, pid in fleet.pids().items() if (kb := rss_kb(pid))}

    # --- phases ----------------------------------------------------------------------------------

    def plan(self, duration: float) -> list[tuple[float, str, str]]:
        """(at, action, target) over the chaos phase: every service killed several times
        (replicas alternating), connection kills, Redis restarts, fault windows, bad input."""
        acts: list[tuple[float, str, str]] = []
        usable = duration * 0.85
        for s in self.services:
            for k in range(self.cfg.kills_per_service):
                at = usable * (k + self.rng.random()) / self.cfg.kills_per_service
                replica = 1 + (k % self.scale[s])
                acts.append((at, "kill", f"{s}.{replica}"))
        for _ in range(max(2, int(duration / 20))):
            acts.append((self.rng.uniform(5, usable), "conn_kill", ""))
        for k in range(max(2, int(duration / 150))):
            acts.append((usable * (k + 0.5) / max(2, int(duration / 150)), "redis_restart", ""))
        t = 5.0
        while t < usable:
            acts.append((t, "faults_on", ""))
            acts.append((t + 20, "faults_off", ""))
            t += 45
        for k in range(3):
            acts.append((usable * (k + 0.3) / 3, "inject", ""))
        return sorted(acts)

    async def run(self) -> dict[str, Any]:
        cfg = self.cfg
        channels = None if cfg.load else await Channels.start(cfg.workdir)
        fleet = FleetProc(self.fleet_env(channels), self.scale, cfg.workdir / "fleet.log")
        report: dict[str, Any] = {}
        try:
            self.say(f"fleet: {', '.join(f'{s}×{n}' for s, n in self.scale.items())}; "
                     f"log {fleet.log_path}")  # fmt: skip
            if not await self.wait_heartbeats(within_s=300):
                self.say("the fleet did not come up within 300 s")
                report["error"] = "fleet did not start"
                return report
            self.say("fleet up")
            duration = cfg.minutes * 60
            if cfg.load:
                await self.load_phase(fleet, duration)
            else:
                assert channels is not None
                await self.chaos_phase(fleet, channels, duration)
                await self.sim("POST", "/sim/faults", json={"faults": ""})
                channels.clear_faults()
                self.say("faults off; settling")
                settled = await self.settle(cfg.settle_s)
                self.say(f"settled: {settled}")
            fleet.stop()
            self.say("fleet stopped; reconciling")
            report = await self.reconcile(channels)
        finally:
            fleet.stop()
            if channels is not None:
                await channels.stop()
        return report

    async def chaos_phase(self, fleet: FleetProc, channels: Channels, duration: float) -> None:
        start = time.monotonic()
        acts = self.plan(duration)
        next_signal = 0.0
        self.bar = tqdm(total=int(duration), desc="chaos", unit="s", disable=None)
        while (elapsed := time.monotonic() - start) < duration:
            self.bar.update(int(elapsed) - self.bar.n)
            while acts and acts[0][0] <= elapsed:
                _, action, target = acts.pop(0)
                try:
                    await self.act(fleet, channels, action, target)
                except Exception as exc:  # the chaos must go on: note it, keep going
                    self.say(f"{action} {target} failed: {str(exc)[:200]}")
            if elapsed >= next_signal and elapsed < duration * 0.9:
                with contextlib.suppress(Exception):
                    await self.publish_signals(self.rng.randint(1, 2))
                next_signal = elapsed + self.rng.uniform(2, 5)
                if self.rng.random() < 0.35:  # a kill while that signal is in flight
                    who = self.rng.choice(IN_FLIGHT_TARGETS)
                    label = f"{who}.{self.rng.randint(1, self.scale.get(who, 1))}"
                    acts.append((elapsed + self.rng.uniform(0.05, 1.5), "kill", label))
                    acts.sort()
            await asyncio.sleep(0.5)
        self.bar.close()
        self.bar = None
        with contextlib.suppress(Exception):
            await self.sample(fleet)

    async def act(self, fleet: FleetProc, channels: Channels, action: str, target: str) -> None:
        if action == "kill":
            if self.kill(fleet, target):
                self.say(f"SIGKILL {target}")
        elif action == "conn_kill":
            await self.kill_connections()
            self.say("Redis clients and PostgreSQL backends killed")
        elif action == "redis_restart":
            await self.restart_redis()
        elif action == "faults_on":
            await self.sim("POST", "/sim/faults", json={"faults": SIM_FAULTS_ON})
            self.tally.fault_windows += 1
            self.tally.channel_faults += channels.inject_faults(self.rng)
            self.say("faults on (simulator and channels)")
        elif action == "faults_off":
            await self.sim("POST", "/sim/faults", json={"faults": ""})
        elif action == "inject":
            before = len(self.tally.injected)
            await self.inject_malformed()
            self.say(f"injected {len(self.tally.injected) - before} malformed entries")

    async def load_phase(self, fleet: FleetProc, duration: float) -> None:
        await asyncio.sleep(self.cfg.warmup_s)  # past the start-up burst (first refreshes)
        self.tally.rss_start = self.rss(fleet)
        start = time.monotonic()
        last = start
        self.bar = tqdm(total=int(duration), desc="load", unit="s", disable=None)
        while time.monotonic() - start < duration:
            await asyncio.sleep(5)
            self.bar.update(min(int(time.monotonic() - start), int(duration)) - self.bar.n)
            await self.sample(fleet)
            if time.monotonic() - last > 60:
                last = time.monotonic()
                lag = self.tally.lag_samples_s[-1] if self.tally.lag_samples_s else float("nan")
                self.say(f"load: {int(time.monotonic() - start)} s, lag now {lag:.1f} s, "
                         f"load avg {os.getloadavg()[0]:.1f}")  # fmt: skip
        self.bar.close()
        self.bar = None
        self.tally.rss_end = self.rss(fleet)

    async def settle(self, within_s: float) -> bool:
        """Until every group has acked everything, the outbox is done and no order is in
        flight (or `within_s`)."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            await asyncio.sleep(2)
            try:
                redis = self.redis()
                busy = 0
                try:
                    prefix = stream_key(self.box.settings.bus_namespace, "")
                    async for key in redis.scan_iter(match=prefix + "*", count=500, _type="STREAM"):
                        for g in await redis.xinfo_groups(key):
                            busy += int(g["pending"]) + int(g.get("lag") or 0)
                finally:
                    await redis.aclose()
                rows = await self.asql(
                    "SELECT (SELECT count(*) FROM broadcast_dedup WHERE state IN "
                    "('pending', 'claimed', 'sending')), (SELECT count(*) FROM orders WHERE "
                    "status = 'submitting')"
                )
                if busy == 0 and rows[0] == (0, 0):
                    await asyncio.sleep(3)  # one more position-monitor pass
                    return True
            except Exception as exc:
                self.say(f"settle check failed: {str(exc)[:120]}")
        return False

    # --- reconciliation --------------------------------------------------------------------------

    async def stream_entries(self, name: str) -> list[tuple[str, dict[bytes, bytes]]]:
        redis = self.redis()
        try:
            raw = await redis.xrange(stream_key(self.box.settings.bus_namespace, name))
            return [(mid.decode(), fields) for mid, fields in raw]
        finally:
            await redis.aclose()

    async def reconcile(self, channels: Channels | None) -> dict[str, Any]:
        t = self.tally
        dead = await self.stream_entries(DEADLETTER)
        dead_keys = Counter(
            (f.get(b"stream", b"").decode(), f.get(b"group", b"").decode(),
             f.get(b"message_id", b"").decode()) for _, f in dead
        )  # fmt: skip
        injected_ids = {(i["stream"], i["id"]) for i in t.injected}
        valid_dead = [f for _, f in dead
                      if (f.get(b"stream", b"").decode(), f.get(b"message_id", b"").decode())
                      not in injected_ids]  # fmt: skip
        out: dict[str, Any] = {
            "mode": "load" if self.cfg.load else "chaos",
            "minutes": self.cfg.minutes,
            "replicas": self.cfg.replicas,
            "services": len(self.services),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "dead_letters_valid": len(valid_dead),
            "dead_letter_reasons_valid": dict(
                Counter(
                    f.get(b"reason", b"").decode() + ":" + f.get(b"stream", b"").decode()
                    for f in valid_dead
                )
            ),
        }
        if self.cfg.load:
            out.update(self.load_figures())
            out["activity"] = await asyncio.to_thread(self.activity)
            out["ok"] = out["dead_letters_valid"] == 0
            return out

        # signals: every one on the stream decided exactly once
        signal_ids: set[str] = set()
        signal_entries = 0
        for mid, fields in await self.stream_entries(STREAM_SIGNALS):
            try:
                d = decode(mid, fields)
            except Exception:
                continue
            # the ranker's signals and the plug-ins' (strategy_runner): the autotrader decides
            # both (a plug-in's not in AUTOTRADE_STRATEGIES is decided 'skipped')
            if isinstance(d.event, TradeSignalled | StrategySignalled):
                signal_ids.add(str(d.event.signal_id))
                signal_entries += 1
        decisions = dict(
            (str(s), d)
            for s, d in await self.asql("SELECT signal_id, decision FROM autotrader_decisions")
        )
        # on the journal stream: each decision announced once (two replicas deciding one
        # signal would both announce it, whatever the table's key kept)
        announced: Counter[str] = Counter()
        for mid, fields in await self.stream_entries(AGENT_LOG_STREAM):
            try:
                ev = decode(mid, fields).event
            except Exception:
                continue
            if (
                isinstance(ev, AgentLogRecorded)
                and (ev.event_type == "entry_planned" or ev.event_type.startswith("signal_"))
                and ev.vertical == "perps"
                and "signal_id" in ev.detail
            ):
                announced[str(ev.detail["signal_id"])] += 1
        decided_twice = sorted(s for s, n in announced.items() if n > 1)
        lost_signals = sorted(signal_ids - set(decisions))
        phantom_decisions = sorted(set(decisions) - signal_ids)
        traded = {s.replace("-", "") for s, d in decisions.items() if d == "traded"}

        # orders at the venue (the paper venue's own books) against the plan
        pattern = "^[0-9a-f]{32}e[0-9]{2}$"
        venue = dict(await self.asql(
            "SELECT left(order_link_id, 32), count(*) FROM paper_orders "
            "WHERE order_link_id ~ %s GROUP BY 1", pattern))  # fmt: skip
        planned = dict(await self.asql(
            "SELECT left(order_link_id, 32), count(*) FROM orders WHERE order_link_id ~ %s "
            "AND (venue_order_id IS NOT NULL OR status NOT IN ('cancelled', 'rejected')) "
            "GROUP BY 1", pattern))  # fmt: skip
        dup_orders = sum(max(0, n - planned.get(s, 0)) for s, n in venue.items() if s in traded)
        dup_orders += sum(n for s, n in venue.items() if s not in traded)
        lost_orders = sum(max(0, n - venue.get(s, 0)) for s, n in planned.items())
        stuck_orders = (await self.asql(
            "SELECT count(*) FROM orders WHERE status = 'submitting'"))[0][0]  # fmt: skip
        overfilled = (await self.asql(
            "SELECT count(*) FROM paper_orders o JOIN (SELECT venue_order_id, sum(qty) AS q "
            "FROM paper_executions WHERE kind = 'trade' GROUP BY 1) e USING (venue_order_id) "
            "WHERE e.q > o.qty"))[0][0]  # fmt: skip
        close_dups = int((await self.asql(
            "SELECT coalesce(sum(n - 1), 0) FROM (SELECT t.trade_id, count(*) AS n FROM trades t "
            "JOIN orders o ON o.trade_id = t.trade_id JOIN paper_orders p USING (order_link_id) "
            "WHERE o.order_link_id LIKE 'close-%%' GROUP BY 1) x"))[0][0])  # fmt: skip

        # positions: the perps venue's open positions against our open perps trades (the copy
        # trader's positions are trades too, vertical 'poly', held in the poly paper venue)
        venue_open = {r[0] for r in await self.asql("SELECT symbol FROM paper_positions")}
        trade_open = Counter(r[0] for r in await self.asql(
            "SELECT symbol FROM trades WHERE status = 'open' AND venue = 'paper' "
            "AND vertical = 'perps'"))  # fmt: skip
        orphan_positions = sorted(venue_open - set(trade_open))
        orphan_trades = sorted(set(trade_open) - venue_open)
        double_trades = sorted(s for s, n in trade_open.items() if n > 1)

        # broadcasts: what the fake servers got, against the outbox
        assert channels is not None
        bc = await self.broadcast_figures(channels, signal_ids)

        # malformed entries: in the dead-letter stream for every group that read them
        missing_dl = [i for i in t.injected
                      if any(dead_keys[(i["stream"], g, i["id"])] == 0 for g in i["groups"])]  # fmt: skip
        dl_expected = sum(len(i["groups"]) for i in t.injected)
        dl_found = sum(min(1, dead_keys[(i["stream"], g, i["id"])])
                       for i in t.injected for g in i["groups"])  # fmt: skip

        bad_rows = await asyncio.to_thread(self.bad_rows)

        lost = (len(lost_signals) + lost_orders + stuck_orders + bc["lost"]
                + out["dead_letters_valid"])  # fmt: skip
        duplicated = (dup_orders + overfilled + close_dups + bc["duplicated"] + len(double_trades)
                      + len(decided_twice))  # fmt: skip
        out.update(
            {
                "kills": sum(t.kills.values()),
                "kills_by_service": dict(sorted(t.kills.items())),
                "restarts": t.redis_restarts + sum(t.kills.values()),
                "redis_restarts": t.redis_restarts,
                "redis_client_kills": t.redis_client_kills,
                "pg_backend_kills": t.pg_backend_kills,
                "fault_windows": t.fault_windows,
                "channel_faults": t.channel_faults,
                "signals_published": t.signals_published,
                "signals_replayed": t.signals_replayed,
                "signals_on_stream": len(signal_ids),
                "signal_entries_on_stream": signal_entries,
                "decisions": len(decisions),
                "decisions_by_kind": dict(Counter(decisions.values())),
                "lost_signals": len(lost_signals),
                "phantom_decisions": len(phantom_decisions),
                "decisions_announced": sum(announced.values()),
                "decided_twice": len(decided_twice),
                "venue_entry_orders": sum(venue.values()),
                "planned_entry_orders": sum(planned.values()),
                "duplicate_orders": dup_orders,
                "lost_orders": lost_orders,
                "stuck_orders": stuck_orders,
                "overfilled_orders": overfilled,
                "duplicate_close_orders": close_dups,
                "venue_open_positions": len(venue_open),
                "open_trades": sum(trade_open.values()),
                "orphan_positions": orphan_positions,
                "orphan_trades": orphan_trades,
                "double_open_trades": double_trades,
                "broadcast": bc,
                "injected": len(t.injected),
                "injected_streams": sorted({i["stream"] for i in t.injected}),
                "dead_lettered": dl_found,
                "dead_letters_expected": dl_expected,
                "malformed_not_dead_lettered": len(missing_dl),
                "bad_rows": bad_rows,
                "lost": lost + len(missing_dl),
                "duplicated": duplicated,
                "orphans": len(orphan_positions) + len(orphan_trades),
            }
        )
        out["ok"] = (out["lost"] == 0 and out["duplicated"] == 0 and out["orphans"] == 0
                     and not bad_rows and not phantom_decisions)  # fmt: skip
        out["detail"] = {"lost_signals": lost_signals[:20], "phantom": phantom_decisions[:20],
                         "decided_twice": decided_twice[:20],
                         "missing_dead_letters": missing_dl[:20]}  # fmt: skip
        return out

    async def broadcast_figures(self, channels: Channels, signal_ids: set[str]) -> dict[str, Any]:
        delivered = channels.delivered()
        rows = await self.asql(
            "SELECT d.channel, d.dedup_key, d.state, d.error, b.text, g.text FROM broadcast_dedup d "
            "LEFT JOIN LATERAL (SELECT text FROM broadcasts b WHERE b.event_id = d.event_id AND "
            "b.channel = d.channel AND b.status = 'sent' AND b.event_type <> 'digest' LIMIT 1) b "
            "ON true LEFT JOIN LATERAL (SELECT text FROM broadcasts g WHERE g.broadcast_id = "
            "d.digest_id AND g.channel = d.channel AND g.status = 'sent' LIMIT 1) g ON true"
        )
        expected: dict[str, Counter[str]] = {c: Counter() for c in delivered}
        in_doubt: Counter[str] = Counter()  # per channel: sends that may or may not have arrived
        digests: set[tuple[str, str]] = set()
        states: Counter[str] = Counter()
        stuck = 0
        unrecorded_sent = 0
        for channel, _key, state, error, text, digest_text in rows:
            states[state] += 1
            if state in ("pending", "claimed", "sending"):
                stuck += 1
            elif state == "sent":
                if text is None:
                    unrecorded_sent += 1
                else:
                    expected[channel][_norm(text)] += 1
            elif state == "digested" and digest_text is not None:
                digests.add((channel, _norm(digest_text)))
            elif state == "failed" and error and "doubt" in error:
                in_doubt[channel] += 1
        for channel, text in digests:
            expected[channel][text] += 1
        duplicated = lost = in_doubt_delivered = 0
        per_channel: dict[str, dict[str, int]] = {}
        for channel, got in delivered.items():
            exp = expected[channel]
            unmatched = sum(max(0, n - exp[t]) for t, n in got.items())
            arrived = min(unmatched, in_doubt[channel])  # an in-doubt send that did arrive
            dup = unmatched - arrived
            miss = sum(max(0, n - got[t]) for t, n in exp.items())
            in_doubt_delivered += arrived
            duplicated += dup
            lost += miss
            per_channel[channel] = {"delivered": sum(got.values()), "expected": sum(exp.values()),
                                    "in_doubt": in_doubt[channel], "duplicated": dup,
                                    "lost": miss}  # fmt: skip
        tg_signal_keys = {
            k.split(":", 1)[1] for c, k, *_ in rows if c == "telegram" and k.startswith("signal:")
        }
        signals_without_broadcast = len(signal_ids - tg_signal_keys)
        return {
            "per_channel": per_channel,
            "outbox_states": dict(states),
            "stuck": stuck,
            "in_doubt": sum(in_doubt.values()),
            "in_doubt_delivered": in_doubt_delivered,
            # a sender killed during the provider call: by design not resent (no repeats) on
            # Telegram/X/SMS — at most once there; reported, not counted as lost
            "in_doubt_not_delivered": sum(in_doubt.values()) - in_doubt_delivered,
            "sent_without_record": unrecorded_sent,
            "signals_without_broadcast": signals_without_broadcast,
            "duplicated": duplicated,
            "lost": lost + stuck + signals_without_broadcast + unrecorded_sent,
        }

    def bad_rows(self) -> dict[str, int]:
        """NaN anywhere; a zero price; an event time in the future (> 1 min ahead)."""
        found: dict[str, int] = {}
        with psycopg.connect(conninfo(self.box.settings)) as conn:
            cols = conn.execute(
                "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
                "JOIN information_schema.tables t USING (table_schema, table_name) "
                "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND c.data_type "
                "IN ('numeric', 'double precision', 'real', 'timestamp with time zone')"
            ).fetchall()
            for table, column, kind in cols:
                q = f'SELECT count(*) FROM "{table}" WHERE '
                checks: list[tuple[str, str]] = []
                if kind == "timestamp with time zone":
                    if column in EVENT_TIME_COLUMNS:
                        checks.append(("future", f"\"{column}\" > now() + interval '1 minute'"))
                else:
                    checks.append(("nan", f"\"{column}\" = 'NaN'"))
                    if "price" in column and not table.startswith(PRICE_EXEMPT_PREFIX):
                        checks.append(("zero_price", f'"{column}" = 0'))
                for what, cond in checks:
                    n = conn.execute(q + cond).fetchone()
                    if n and n[0]:
                        found[f"{what}:{table}.{column}"] = int(n[0])
        return found

    def activity(self) -> dict[str, int]:
        """Rows the fleet wrote during the run: the cycles really ran (not an idle fleet)."""
        queries = {
            "market_snapshots": "SELECT count(*) FROM market_snapshots",
            "snapshot_coins": "SELECT count(DISTINCT symbol) FROM market_snapshots",
            "ohlcv_1m": "SELECT count(*) FROM ohlcv",
            "heatmap_refreshes": "SELECT count(*) FROM liquidation_refreshes",
            "heatmap_coins": "SELECT count(DISTINCT symbol) FROM liquidation_refreshes",
            "ranking_cycles": "SELECT count(DISTINCT cycle_id) FROM coin_rankings",
            "signals": "SELECT count(*) FROM signals",
            "decisions": "SELECT count(*) FROM autotrader_decisions",
            "price_movers": "SELECT count(*) FROM fast_price_movers",
            "agent_logs": "SELECT count(*) FROM agent_logs",
        }
        out: dict[str, int] = {}
        with psycopg.connect(conninfo(self.box.settings)) as conn:
            for name, q in queries.items():
                try:
                    row = conn.execute(q).fetchone()  # type: ignore[arg-type]
                    out[name] = int(row[0]) if row else 0
                except psycopg.Error:
                    conn.rollback()
                    out[name] = -1  # table not there
        return out

    def load_figures(self) -> dict[str, Any]:
        t = self.tally
        growth = {}
        for label, start in t.rss_start.items():
            end = t.rss_end.get(label)
            if end:
                growth[label] = round((end / start - 1) * 100, 1)
        return {
            "coins": self.cfg.coins,
            "max_lag_s": round(max(t.lag_samples_s, default=float("nan")), 2),
            "lag_samples": len(t.lag_samples_s),
            "max_lag_by_group_s": dict(sorted(t.lag_by_group.items(), key=lambda kv: -kv[1])),
            "rss_start_kb": t.rss_start,
            "rss_end_kb": t.rss_end,
            "rss_growth_pct": growth,
            "max_rss_growth_pct": max(growth.values(), default=float("nan")),
        }


def _ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


# --- output ---------------------------------------------------------------------------------------


def table(report: dict[str, Any]) -> str:
    rows: list[tuple[str, Any]] = []
    for key, value in report.items():
        if key in ("detail", "kills_by_service", "rss_start_kb", "rss_end_kb"):
            continue
        if isinstance(value, dict) and value:
            for k, v in value.items():
                rows.append((f"{key}.{k}", v))
        else:
            rows.append((key, value))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {json.dumps(v, default=str)}" for k, v in rows)


def bench_metrics(report: dict[str, Any]) -> dict[str, Any]:
    from scripts.benchmarks.report import Metric

    note = (f"{report['minutes']:g} min, {report['services']} services x{report['replicas']} "
            f"(simulator x1); 1-min load avg {report['load_avg_1m']:.1f} at the end of the run "
            f"on {os.cpu_count()} cpus (shared machine)")  # fmt: skip
    if report["mode"] == "load":
        growth = report.get("rss_growth_pct") or {}
        worst = max(growth, key=lambda k: growth[k], default="-")
        act = report.get("activity", {})
        lags = report.get("max_lag_by_group_s") or {}
        worst_group = max(lags, key=lambda k: lags[k], default="-")
        note = (f"worst group {worst_group}; "
                f"{act.get('snapshot_coins', 0)} coins snapshotted, {act.get('heatmap_refreshes', 0)} "
                f"heatmap refreshes, {act.get('ranking_cycles', 0)} ranking cycles, "
                f"{act.get('signals', 0)} signals; lag sampled every 5 s after a "
                f"{report.get('warmup_s', 90):g}-s warm-up; largest RSS growth {worst}; " + note)  # fmt: skip
        return {
            "load.max_lag_s": Metric.measured(report["max_lag_s"], "s", None, "lower",
                                              f"{report['coins']} coins, 1-s ticks; " + note),
            "load.rss_growth_pct": Metric.measured(
                report["max_rss_growth_pct"], "%", None, "lower",
                f"largest start→end RSS growth of any service; dead letters from valid data "
                f"{report['dead_letters_valid']}; " + note),
        }  # fmt: skip
    bc = report["broadcast"]["per_channel"]
    note = (f"{report['signals_on_stream']} signals, {report['venue_entry_orders']} orders at "
            f"the venue, {sum(c['delivered'] for c in bc.values())} messages at the fake servers, "
            f"{report['redis_restarts']} Redis restarts, {report['pg_backend_kills']} PostgreSQL "
            f"backends and {report['redis_client_kills']} Redis clients killed; "
            f"{report['injected']} bad entries injected, {report['dead_letters_expected']} dead "
            f"letters expected (one per group reading each); " + note)  # fmt: skip
    names = {"kills": "kills", "restarts": "restarts", "injected": "injected",
             "dead_lettered": "dead_lettered", "lost": "lost", "duplicated": "duplicated"}  # fmt: skip
    return {
        f"chaos.{k}": Metric.measured(float(report[v]), "count", None, "lower"
                                      if k in ("lost", "duplicated") else "higher", note)
        for k, v in names.items()
    }  # fmt: skip


def parse_args(argv: list[str] | None) -> Config:
    p = argparse.ArgumentParser(prog="scripts/chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=2.0, help="length of the chaos (or load) phase")
    p.add_argument("--load", action="store_true", help="load run: 500 coins, no faults")
    p.add_argument("--replicas", type=int, default=2, help="replicas of each service that scales")
    p.add_argument("--coins", type=int, default=None, help="simulated coins (8; load: 500)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--settle", type=float, default=120.0, help="seconds allowed to settle")
    p.add_argument("--kills-per-service", type=int, default=None, help="default: 3 + minutes/3")
    p.add_argument("--warmup", type=float, default=90.0, help="load: seconds before measuring")
    p.add_argument("--json", type=Path, default=None, help="write the figures here")
    p.add_argument(
        "--bench", action="store_true", help="merge chaos.* / load.* into bench/results.json"
    )
    p.add_argument(
        "--workdir", type=Path, default=None, help="logs and Redis files (default: a temp dir)"
    )
    a = p.parse_args(argv)
    if a.minutes <= 0 or a.replicas < 1 or (a.coins is not None and a.coins < 2):
        p.error("--minutes must be > 0, --replicas >= 1, --coins >= 2")
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    return Config(
        minutes=a.minutes, replicas=a.replicas, seed=a.seed, load=a.load,
        coins=a.coins or (500 if a.load else 8), settle_s=a.settle,
        kills_per_service=a.kills_per_service or 3 + int(a.minutes // 3), warmup_s=a.warmup,
        json_path=a.json, bench=a.bench, workdir=workdir,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    # chaos: fsync every write, so a SIGKILLed Redis keeps all it acknowledged; load: as compose
    redis_server = RedisServer(cfg.workdir / "redis", fsync="everysec" if cfg.load else "always")
    redis_server.start()
    infra = Infra(
        os.environ.get("TEST_DATABASE_URL", LOCAL_DATABASE_URL), redis_server.url, "chaos"
    )
    try:
        with sandbox(infra, "chaos") as box:
            chaos = Chaos(cfg, box, redis_server)
            report = asyncio.run(chaos.run())
            report["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
            report["warmup_s"] = cfg.warmup_s
            report["workdir"] = str(cfg.workdir)
    finally:
        redis_server.close()
    print(table(report))
    if cfg.json_path is not None:
        cfg.json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    if cfg.bench and report.get("ok") and "error" not in report:
        from scripts.benchmarks.report import write

        write(Path(ROOT / "bench/results.json"), bench_metrics(report))
    if "error" in report:
        return 1
    return 0 if report.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
