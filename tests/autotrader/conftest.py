"""The autotrader's tests: a fake Bybit REST server (instruments and tickers) per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.bybit import FakeBybit


@pytest.fixture
async def bybit() -> AsyncIterator[FakeBybit]:
    server = FakeBybit()
    await server.start()
    yield server
    await server.stop()
