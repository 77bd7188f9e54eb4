"""The price process: a log-price random walk with Markov-switching volatility regimes,
Student-t shocks, rare jumps, wicks that snap back, and weak mean reversion, for all coins
at once."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]

CALM, TRENDING, VOLATILE = 0, 1, 2
REGIME_NAMES = ("calm", "trending", "volatile")
REGIME_VOL = np.array([0.6, 1.0, 2.2])  # volatility multiplier
REGIME_VOLUME = np.array([0.7, 1.1, 2.2])  # traded volume multiplier
REGIME_MEAN_S = np.array([8.0, 3.0, 0.75]) * 3600.0  # mean time spent in the regime
# Where a regime switches to (rows: from, columns: to).
REGIME_NEXT = np.array([[0.0, 0.6, 0.4], [0.6, 0.0, 0.4], [0.5, 0.5, 0.0]])
T_DF = 4.0  # Student-t degrees of freedom of the shocks
T_SCALE = math.sqrt(T_DF / (T_DF - 2.0))  # makes the t shocks unit-variance
JUMP_PER_S = 1.0 / (3 * 86_400)  # permanent jumps per coin
WICK_PER_S = 1.0 / (8 * 3600)  # wicks per coin
WICK_TAU_S = 30.0  # a wick decays back with this time constant
REVERSION_PER_S = math.log(2.0) / (60 * 86_400)  # half-life of the pull to the coin's mean


class PriceProcess:
    """State of every coin's price; `path()` generates the next block of steps."""

    def __init__(self, rng: np.random.Generator, log_mean: F64, daily_vol: F64) -> None:
        n = log_mean.size
        self.rng = rng
        self.log_mean = log_mean.astype(np.float64)
        self.sigma_s = daily_vol / math.sqrt(86_400.0)  # per-second volatility, calm=1 scale
        self.logp = self.log_mean.copy()
        self.wick = np.zeros(n)
        self.regime = np.full(n, CALM, np.int64)
        self.trend = np.zeros(n)  # drift per second while trending

    def set_price(self, logp: F64) -> None:
        self.logp = logp.astype(np.float64).copy()

    def switch_regimes(self, seconds: float) -> None:
        n = self.logp.size
        leave = self.rng.random(n) < -np.expm1(-seconds / REGIME_MEAN_S[self.regime])
        if not leave.any():
            return
        u = self.rng.random(n)
        cumulative = np.cumsum(REGIME_NEXT[self.regime], axis=1)
        nxt = (u[:, None] > cumulative).sum(axis=1)
        self.regime = np.where(leave, nxt, self.regime)
        daily = self.sigma_s * math.sqrt(86_400.0)
        sign = np.where(self.rng.random(n) < 0.5, -1.0, 1.0)
        fresh_trend = sign * self.rng.uniform(0.5, 1.5, n) * daily / 86_400.0
        self.trend = np.where(leave & (self.regime == TRENDING), fresh_trend, self.trend)

    def path(self, steps: int, dt: float, drift: F64) -> tuple[F64, F64]:
        """Advance `steps` steps of `dt` seconds with an extra drift (log/s) per coin.

        Returns the observed log-price at the end of each step [C, steps] (wicks included)
        and the absolute standardised shocks (for volume).
        """
        n = self.logp.size
        rng = self.rng
        sig = self.sigma_s * REGIME_VOL[self.regime] * math.sqrt(dt)
        z = rng.standard_t(T_DF, (n, steps)) / T_SCALE
        mu = drift + np.where(self.regime == TRENDING, self.trend, 0.0)
        mu = mu - REVERSION_PER_S * (self.logp - self.log_mean)
        inc = mu[:, None] * dt + sig[:, None] * z
        jumps = rng.random((n, steps)) < JUMP_PER_S * dt
        if jumps.any():
            hourly = self.sigma_s[:, None] * 60.0
            inc += jumps * rng.standard_normal((n, steps)) * 3.0 * hourly
        logp = self.logp[:, None] + np.cumsum(inc, axis=1)
        self.logp = logp[:, -1].copy()
        wick_path = self._wicks(steps, dt)
        return logp + wick_path, np.abs(z)

    def _wicks(self, steps: int, dt: float) -> F64:
        n = self.logp.size
        decay = math.exp(-dt / WICK_TAU_S)
        events = self.rng.random((n, steps)) < WICK_PER_S * dt
        kicks = np.zeros((n, steps))
        if events.any():
            hourly = self.sigma_s * 60.0
            size = self.rng.uniform(0.8, 2.5, (n, steps)) * hourly[:, None]
            sign = np.where(self.rng.random((n, steps)) < 0.5, -1.0, 1.0)
            kicks = events * size * sign
        # w_j = decay * w_{j-1} + kick_j, closed form over the block.
        powers = decay ** np.arange(1, steps + 1, dtype=np.float64)
        out = powers * (self.wick[:, None] + np.cumsum(kicks / powers, axis=1))
        self.wick = out[:, -1].copy()
        return out
