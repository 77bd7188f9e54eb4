"""Real httpx (PolymarketClient) against a local fake host speaking the Polymarket wire format:
paths, parameters, cursor walks, retries, HTML pages, expired cursors, dead-lettered items."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from quantcore.adapters.polymarket.rest import CursorExpired, PolymarketClient, PolymarketUrls
from quantcore.errors import PermanentError, TemporaryError
from tests.adapters.conftest import FAST, BadLog
from tests.adapters.fake_venue import FakeVenue, Reply

W = "0x" + "ab" * 20
C = "0x" + "cd" * 32
RECORDED = Path("/work/shared/recorded/nautilus-polymarket")


def trade_row(i: int) -> dict[str, object]:
    return {
        "proxy_wallet": W, "side": "BUY", "token_id": str(100 + i), "condition_id": C,
        "size": 5.0 + i, "price": 0.5, "timestamp": 1_790_000_000 + i,
    }  # fmt: skip


@pytest.fixture
async def poly(fake: FakeVenue, bad: BadLog) -> AsyncIterator[PolymarketClient]:
    client = PolymarketClient(
        PolymarketUrls.single(fake.url), source="sim", on_bad=bad, timeout_s=2, retry_policy=FAST
    )
    yield client
    await client.aclose()


async def test_trade_feed_walks_cursors_and_dead_letters_bad_rows(
    fake: FakeVenue, poly: PolymarketClient, bad: BadLog
) -> None:
    pages = {
        None: {"data": [trade_row(0), trade_row(1)], "pagination": {"has_more": True, "next_cursor": "c1"}},
        "c1": {"data": [trade_row(2), {**trade_row(3), "price": "NaN?"}], "pagination": {"has_more": False, "next_cursor": None}},
    }  # fmt: skip
    fake.routes["/data/v2/trades"] = lambda q: Reply(body=pages[q.get("cursor")])
    got = [(p, c) async for p, c in poly.walk(lambda c: poly.trades_page(c, user=W))]
    assert [c for _, c in got] == [None, "c1"]
    assert sum(len(p.items) for p, _ in got) == 3
    assert bad.kinds() == ["poly_trade"]
    calls = fake.calls("/data/v2/trades")
    assert calls[0] == {"user": W, "limit": "500", "taker_only": "true"}
    assert calls[1] == {"user": W, "cursor": "c1", "taker_only": "true"}  # same filters re-sent


async def test_429_and_5xx_are_retried(fake: FakeVenue, poly: PolymarketClient) -> None:
    body = json.loads((RECORDED / "crates/clob_book_response.json").read_text())
    fake.script(
        "/clob/book",
        Reply(429, {"error": "Too Many Requests"}, headers={"Retry-After": "0.01"}),
        Reply(502, {"error": "bad gateway"}),
    )
    fake.routes["/clob/book"] = lambda q: Reply(body=body)
    book = await poly.book("12345678901234567890")
    assert book.best_bid == 0.50
    assert len(fake.calls("/clob/book")) == 3
    assert fake.calls("/clob/book")[0] == {"token_id": "12345678901234567890"}


async def test_html_reply_is_a_clear_error_and_nothing_is_parsed(
    fake: FakeVenue, poly: PolymarketClient, bad: BadLog
) -> None:
    page = "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body></body></html>"
    fake.routes["/gamma/markets/keyset"] = lambda q: Reply(
        200, page, headers={"Content-Type": "text/html"}
    )
    with pytest.raises(TemporaryError, match=r"reply is HTML, not JSON \('Just a moment...'\)"):
        await poly.markets_page()
    assert len(fake.calls("/gamma/markets/keyset")) == 3  # retried, then given up
    assert bad.calls == []


async def test_expired_cursor(fake: FakeVenue, poly: PolymarketClient) -> None:
    fake.routes["/data/v2/trades"] = lambda q: Reply(400, {"error": "invalid or expired cursor"})
    with pytest.raises(CursorExpired, match="restart the walk"):
        await poly.trades_page("stale")
    assert len(fake.calls("/data/v2/trades")) == 1  # not retried


async def test_error_envelope_is_permanent(fake: FakeVenue, poly: PolymarketClient) -> None:
    fake.routes["/data/v1/leaderboard"] = lambda q: Reply(400, {"error": "invalid timePeriod"})
    with pytest.raises(PermanentError, match="invalid timePeriod"):
        await poly.leaderboard("ALL")


async def test_gamma_keyset_market_crawl_both_versions(
    fake: FakeVenue, poly: PolymarketClient, bad: BadLog
) -> None:
    v1 = json.loads((RECORDED / "crates/gamma_market.json").read_text())
    v2 = {**v1, "id": "2", "version": "v2", "positionIds": ["11", "22"], "clobTokenIds": None}
    broken = {**v1, "id": "3", "clobTokenIds": None}
    fake.routes["/gamma/markets/keyset"] = lambda q: Reply(
        body={"markets": [v1, v2, broken]}
        if q.get("after_cursor")
        else {"markets": [v1], "next_cursor": "k1"}
    )
    pages = [p async for p, _ in poly.walk(poly.markets_page)]
    assert [len(p.items) for p in pages] == [1, 2]
    assert {m.version for m in pages[1].items} == {"v1", "v2"}
    assert bad.kinds() == ["poly_market"] and "no token ids" in bad.calls[0][2]
    assert fake.calls("/gamma/markets/keyset")[1]["after_cursor"] == "k1"


async def test_leaderboard_holders_fee_and_history(fake: FakeVenue, poly: PolymarketClient) -> None:
    fake.routes["/data/v1/leaderboard"] = lambda q: Reply(
        body=[{"rank": "1", "proxyWallet": W, "userName": "w", "vol": 10.0, "pnl": 5.5}]
    )
    fake.routes["/data/holders"] = lambda q: Reply(
        body=[{"token": "7", "holders": [{"proxyWallet": W, "amount": 3.0, "outcomeIndex": 0}]}]
    )
    fake.routes["/clob/fee-rate"] = lambda q: Reply(body={"base_fee": "150"})
    fake.routes["/clob/prices-history"] = lambda q: Reply(
        body={"history": [{"t": 1_790_000_000, "p": 0.4}]}
    )
    [row] = await poly.leaderboard("MONTH")
    assert row.pnl_includes_unrealised and row.rank == 1
    [h] = await poly.holders([C])
    assert (h.token_id, h.amount) == ("7", 3.0)
    assert await poly.fee_rate_bps("7") == 150.0
    [pt] = await poly.price_history("7", 1, 2)
    assert pt.price == 0.4
    assert fake.calls("/data/v1/leaderboard")[0]["timePeriod"] == "MONTH"
