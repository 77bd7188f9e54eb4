"""Replicas and crashes: a broadcaster SIGKILLed in the middle of a flood, two others going on
— every signal reaches Telegram exactly once and has exactly one final record."""

from __future__ import annotations

import os
import signal as sig
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quantcore.bus import Bus
from quantcore.model.events import STREAM_SIGNALS
from quantcore.testing import Sandbox
from tests.broadcaster.conftest import CHANNEL, rows, signal, telegram_env
from tests.conftest import ROOT, aeventually
from tests.fakes.telegram import FakeTelegram

COUNT = 150


@pytest.fixture
def replicas(fresh: Sandbox, tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, extra: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{name}.log").open("wb")
        env = {**os.environ, **fresh.env, "SERVICE_INSTANCE": name, **extra}
        proc = subprocess.Popen([sys.executable, "-m", "quantcore.cli", "run", "broadcaster"],
                                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)  # fmt: skip
        procs.append(proc)
        return proc

    yield start
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


async def test_a_replica_killed_mid_flood_neither_duplicates_nor_drops(
    fresh: Sandbox, fresh_pool: Any, bbus: Bus, telegram: FakeTelegram, replicas: Any
) -> None:
    env = {
        **telegram_env(telegram), "BROADCAST_TELEGRAM_RATE": "3/1",
        "BROADCAST_DIGEST_MAX_ITEMS": "5", "BROADCAST_CLAIM_TIMEOUT_S": "3",
        "BROADCAST_POLL_S": "0.1", "BROADCAST_DAILY_DIGEST_AT": "off", "BUS_CLAIM_IDLE_MS": "1000",
        "BROADCAST_RETRY_BASE_S": "0.1", "HEARTBEAT_INTERVAL_S": "0.5",
    }  # fmt: skip
    a = replicas("replica-a", env)
    replicas("replica-b", env)

    async def both_up() -> bool:
        r = await rows(fresh_pool, "SELECT count(*) FROM service_heartbeats WHERE service = 'broadcaster' "
                       "AND status = 'ok'")  # fmt: skip
        return r[0][0] == 2

    await aeventually(both_up, timeout=60)
    signals = [signal(f"R{i:04d}USDT") for i in range(1, COUNT + 1)]
    envs = await bbus.publish_many(STREAM_SIGNALS, signals)
    await aeventually(lambda: len(telegram.sent(CHANNEL)) >= 6, timeout=60)
    a.send_signal(sig.SIGKILL)  # mid-batch: no clean stop, claims and bus entries left behind
    a.wait(timeout=10)
    replicas("replica-c", env)

    async def all_final() -> bool:
        r = await rows(fresh_pool, "SELECT count(*) FROM broadcast_dedup WHERE state IN "
                       "('sent', 'digested', 'failed', 'skipped')")  # fmt: skip
        return r[0][0] == COUNT

    await aeventually(all_final, timeout=120)
    texts = [c.params["text"] for c in telegram.sent(CHANNEL)]
    seen = Counter(s for t in texts for s in __import__("re").findall(r"R\d{4}USDT", t))
    assert set(seen) == {s.symbol for s in signals}  # none dropped
    assert max(seen.values()) == 1  # none sent twice
    finals = await rows(fresh_pool, "SELECT event_id, status, error FROM broadcasts WHERE event_type = 'signal' "
                        "AND status IN ('sent', 'digested', 'failed', 'skipped')")  # fmt: skip
    assert sorted(r[0] for r in finals) == sorted(e.id for e in envs)  # one final record each
    by_status = Counter(r[1] for r in finals)
    print(f"\nreplicas: {len(texts)} messages, final records {dict(by_status)}")
    assert set(by_status) <= {"sent", "digested", "failed"}
    assert all("in doubt" in (r[2] or "") for r in finals if r[1] == "failed")
