from __future__ import annotations

import pytest

from quantcore.backtest.tapes import sim_tape
from quantcore.strategies import Bars


@pytest.fixture(scope="session")
def day_tape() -> Bars:
    """One simulated day of one coin (seeded), with OI and funding."""
    return sim_tape(1, seed=11, coins=1)[0]
