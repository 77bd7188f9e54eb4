"""The plug-in interface: lookup by name, typed settings with ranges, the live entry point
(`decide` = the last bar's decision of the same `signals`), and scanner_oi measuring with the
spike scanner's own functions."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from quantcore.backtest.tapes import sim_tape
from quantcore.math import spikes
from quantcore.strategies import Bars, load_strategy, strategy_names
from quantcore.strategies.scanner_oi import ScannerOi, ScannerOiParams, trailing


@pytest.fixture(scope="module")
def tape() -> Bars:
    return sim_tape(0.5, seed=21, coins=1)[0]


def test_lookup_and_settings() -> None:
    assert {"sma_cross", "scanner_oi"} <= set(strategy_names())
    cls = load_strategy("sma_cross")
    assert cls.from_settings({"fast": 3, "slow": 9}).params.model_dump()["fast"] == 3
    with pytest.raises(ValidationError):
        cls.from_settings({"fast": -1})
    with pytest.raises(KeyError, match="unknown strategy 'nope'"):
        load_strategy("nope")


def test_decide_is_the_last_bar_of_signals(tape: Bars) -> None:
    s = ScannerOi(ScannerOiParams(oi_min_pct=0.05, vol_min=1.0, move_min_pct=0.05))
    entry = s.signals(tape).entry
    hits = np.flatnonzero(entry)
    assert hits.size > 3
    for i in hits[:3]:
        sig = s.decide(tape.window(0, int(i) + 1))
        assert sig is not None
        assert (sig.strategy, sig.version, sig.symbol) == ("scanner_oi", "1", tape.symbol)
        assert sig.side == ("long" if entry[i] > 0 else "short")
        assert sig.price == tape.close[i] and sig.stop_loss_pct == 1.5
    quiet = int(np.flatnonzero(entry == 0)[-1])
    assert s.decide(tape.window(0, quiet + 1)) is None


def test_scanner_oi_measures_are_the_spike_scanners(tape: Bars) -> None:
    assert tape.open_interest is not None
    oi = trailing(lambda w: spikes.pct_change(w, 15), tape.open_interest, 16)
    vol = trailing(spikes.volume_ratio, tape.volume, 60)
    for i in (60, 200, len(tape) - 1):  # what the live scanner computes on the window ending at i
        assert oi[i] == pytest.approx(float(spikes.pct_change(tape.open_interest[: i + 1], 15)))
        assert vol[i] == pytest.approx(float(spikes.volume_ratio(tape.volume[: i + 1])))
    assert np.isnan(vol[58]) and np.isfinite(vol[59])
