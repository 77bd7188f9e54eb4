"""Real httpx against the fake venue's CoinGlass heatmap endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from quantcore.adapters.coinglass.rest import CoinGlassHeatmaps
from quantcore.errors import BadPayload, PermanentError, RateLimited
from quantcore.retry import RetryPolicy
from tests.adapters.conftest import FAST, BadLog
from tests.adapters.fake_venue import FakeVenue, Reply, sample

PATH = "/api/futures/liquidation/aggregated-heatmap/model2"


def grid(query: dict[str, str]) -> Reply:
    return Reply(body=sample("coinglass_heatmap_grid.json"))


@pytest.fixture
async def cg(fake: FakeVenue, bad: BadLog) -> AsyncIterator[CoinGlassHeatmaps]:
    fake.routes[PATH] = grid
    client = CoinGlassHeatmaps(
        fake.url + PATH, "secret-key", 60_000, "coinglass", on_bad=bad, timeout_s=2,
        retry_policy=FAST,
    )  # fmt: skip
    yield client
    await client.aclose()


async def test_heatmap_request_and_result(
    fake: FakeVenue, cg: CoinGlassHeatmaps, bad: BadLog
) -> None:
    hm = await cg.heatmap("BTC", "BTCUSDT", "24h")
    assert (hm.symbol, hm.timeframe, hm.source, hm.price) == (
        "BTCUSDT",
        "24h",
        "coinglass",
        61620.0,
    )
    assert [lv.price for lv in hm.levels] == [58000.0, 60000.0, 62000.0]
    [(path, query, headers)] = fake.requests
    assert path == PATH
    assert query == {"symbol": "BTC", "range": "24h"}
    assert headers["CG-API-KEY"] == "secret-key"
    assert bad.kinds() == ["heatmap_cell"] * 6
    assert all(reason for _, _, reason in bad.calls)


async def test_no_key_no_header(fake: FakeVenue) -> None:
    fake.routes[PATH] = grid
    client = CoinGlassHeatmaps(fake.url + PATH, None, 60_000, "sim", retry_policy=FAST)
    hm = await client.heatmap("ETH", "ETHUSDT", "14d")  # the simulator serves 14d
    assert hm.source == "sim" and hm.timeframe == "14d"
    assert "CG-API-KEY" not in fake.requests[0][2]
    await client.aclose()


async def test_no_14d_at_coinglass_and_unknown_ranges(
    fake: FakeVenue, cg: CoinGlassHeatmaps
) -> None:
    with pytest.raises(PermanentError, match="CoinGlass offers no 14d heatmap"):
        await cg.heatmap("BTC", "BTCUSDT", "14d")
    with pytest.raises(PermanentError, match="unknown heatmap timeframe"):
        await cg.heatmap("BTC", "BTCUSDT", "2w")
    assert fake.requests == []


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body=sample("coinglass_error_401.json")),  # HTTP 200, error in the envelope
        Reply(body=sample("coinglass_error_400.json")),
        Reply(401, {"code": "401", "msg": "API key missing."}),
        Reply(404, "Endpoint not found"),
    ],
)
async def test_permanent_errors_are_not_retried(
    fake: FakeVenue, cg: CoinGlassHeatmaps, reply: Reply
) -> None:
    fake.script(PATH, reply)
    with pytest.raises(PermanentError) as info:
        await cg.heatmap("BTC", "BTCUSDT", "24h")
    assert not isinstance(info.value, BadPayload)
    assert len(fake.requests) == 1


async def test_upgrade_plan_message_is_kept(fake: FakeVenue, cg: CoinGlassHeatmaps) -> None:
    fake.script(PATH, Reply(body=sample("coinglass_error_401.json")))
    with pytest.raises(PermanentError, match="Upgrade plan"):
        await cg.heatmap("BTC", "BTCUSDT", "24h")


async def test_5xx_and_timeouts_are_retried(fake: FakeVenue, cg: CoinGlassHeatmaps) -> None:
    fake.script(PATH, Reply(502, "bad gateway"), Reply(200, {"code": "500", "msg": "busy"}))
    assert (await cg.heatmap("BTC", "BTCUSDT", "24h")).price == 61620.0
    assert len(fake.requests) == 3
    slow = CoinGlassHeatmaps(fake.url + PATH, None, 60_000, "sim", timeout_s=0.2, retry_policy=FAST)
    fake.script(PATH, Reply(body=sample("coinglass_heatmap_grid.json"), delay_s=0.5))
    assert (await slow.heatmap("BTC", "BTCUSDT", "24h")).levels
    await slow.aclose()


async def test_rate_limit_honours_retry_after(fake: FakeVenue, cg: CoinGlassHeatmaps) -> None:
    fake.script(
        PATH, Reply(200, sample("coinglass_error_429.json"), headers={"Retry-After": "0.1"})
    )
    assert (await cg.heatmap("BTC", "BTCUSDT", "24h")).levels
    assert len(fake.requests) == 2


async def test_429_without_retry_after_waits_a_minute(fake: FakeVenue) -> None:
    fake.script(PATH, Reply(429, "Too Many Requests"))
    client = CoinGlassHeatmaps(fake.url + PATH, "k", 80, "coinglass", retry_policy=RetryPolicy(1))
    with pytest.raises(RateLimited) as info:
        await client.heatmap("BTC", "BTCUSDT", "24h")
    assert info.value.retry_after_s == 60
    assert client.bucket.paused_for > 55
    await client.aclose()


async def test_broken_payload_is_dead_lettered_not_retried(
    fake: FakeVenue, cg: CoinGlassHeatmaps, bad: BadLog
) -> None:
    fake.script(PATH, Reply(body={"code": "0", "msg": "success", "data": {"y_axis": []}}))
    with pytest.raises(BadPayload):
        await cg.heatmap("BTC", "BTCUSDT", "24h")
    assert bad.kinds() == ["heatmap"]
    assert len(fake.requests) == 1


async def test_plan_limit_is_never_exceeded_per_minute() -> None:
    client = CoinGlassHeatmaps("http://127.0.0.1:9/x", None, 80, "coinglass")
    bucket = client.bucket
    # burst 1 plus 79 per 60 s: at most 80 calls in any minute
    assert bucket.burst == 1
    assert bucket.burst + bucket.rate_per_s * 60 == pytest.approx(80)
    await client.aclose()
