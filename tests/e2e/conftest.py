"""Each end-to-end test gets its own freshly migrated database and Redis namespace: what one
test's fleet wrote must never satisfy another test's wait."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from quantcore.testing import Infra, Sandbox, sandbox


@pytest.fixture
def box(infra: Infra) -> Iterator[Sandbox]:
    with sandbox(infra, "e2e") as sb:
        yield sb
