"""Settings: one `.env`, read through pydantic-settings, with the owner's variable names.

Every setting is an environment variable named exactly as in `.env.example` (field name in
upper case, or the first alias listed). Defaults make a fresh clone run: simulated market,
paper trading, no keys. Secrets are `SecretStr`: they never print, never log.
"""

from __future__ import annotations

import os
import socket
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from quantcore.model.market import TIMEFRAMES

DataSource = Literal["sim", "bybit"]
TradingMode = Literal["paper", "testnet", "live"]

# The exact value `.env` must hold before the live venue may start. Deliberately a sentence,
# so it cannot be set by accident or by copying a boolean from another project.
LIVE_CONFIRMATION_PHRASE = "I accept real-money trading"

# Placeholder password used by compose and local runs when no `.env` exists. Refused in live mode.
DEV_DB_PASSWORD = "whalestack-local-only"  # noqa: S105 - a known placeholder, refused when live
# The same for the services' application login and Grafana's read-only login (compose defaults).
DEV_APP_DB_PASSWORD = "whalestack-app-local-only"  # noqa: S105 - a known placeholder
DEV_GRAFANA_RO_PASSWORD = "grafana-ro-local-only"  # noqa: S105 - a known placeholder
DEV_GRAFANA_ADMIN_PASSWORD = "admin"  # noqa: S105 - Grafana's own default (compose's fallback)
DEV_PASSWORDS = frozenset({DEV_DB_PASSWORD, DEV_APP_DB_PASSWORD, DEV_GRAFANA_RO_PASSWORD})


class ConfigError(Exception):
    """A setting is missing or malformed. The message names each variable and what it expects."""


def _env_file() -> str | None:
    path = os.environ.get("QUANT_ENV_FILE", ".env")
    return path if Path(path).is_file() else None


def _alias(*names: str) -> Any:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """All settings of the fleet. Field `foo_bar` is read from `FOO_BAR` unless aliased."""

    model_config = SettingsConfigDict(
        env_file=None,  # chosen at load time, see load_settings()
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        frozen=True,
    )

    # --- project -------------------------------------------------------------------------
    env: Literal["development", "production"] = Field(
        "development", description="development or production"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="log level of every service"
    )
    timezone: str = Field("UTC", description="owner's time zone for digests and daily limits")

    # --- database (TimescaleDB / PostgreSQL) -----------------------------------------------
    timescale_db_host: str = Field("localhost", description="database host")
    timescale_db_port: int = Field(5432, ge=1, le=65535, description="database port")
    timescale_db_user: str = Field("postgres", description="database user of the services")
    timescale_db_pass: SecretStr = Field(
        SecretStr(DEV_DB_PASSWORD),
        description="database password (refused in live mode if left at the dev default)",
    )
    timescale_db_name: str = Field("whalestack", description="database name")
    timescale_db_app_user: str = Field(
        "whalestack_app",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="application login the services connect as (compose, `quant up`): reads "
        "and writes the tables, but is no superuser and cannot create roles, databases or "
        "tables; `quant migrate` (as TIMESCALE_DB_USER, the owner) creates / updates it",
    )
    timescale_db_app_pass: SecretStr | None = Field(
        SecretStr(DEV_APP_DB_PASSWORD),
        description="its password; empty: a local-only default, which live mode refuses",
    )
    db_pool_min: int = Field(1, ge=1, description="connections kept open per service")
    db_pool_max: int = Field(5, ge=1, description="connections at most per service")
    db_connect_timeout_s: float = Field(
        60.0, gt=0, description="how long a service waits for the database at start"
    )

    # --- redis (the bus) --------------------------------------------------------------------
    redis_host: str = Field("localhost", description="Redis host")
    redis_port: int = Field(6379, ge=1, le=65535, description="Redis port")
    redis_pass: SecretStr | None = Field(None, description="Redis password (empty = none)")
    redis_db: int = Field(0, ge=0, le=15, description="Redis logical database")
    bus_namespace: str = Field(
        "ws",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="prefix of every Redis key of this deployment",
    )
    bus_stream_maxlen: int = Field(
        100_000,
        ge=100,
        description="approximate cap of each stream's length (entries a consumer group has not acknowledged are never trimmed)",
    )
    bus_stream_backlog_max: int = Field(
        500_000,
        ge=100,
        description="un-acknowledged entries a stream may hold before an alarm and back-pressure on its publishers",
    )
    bus_claim_idle_ms: int = Field(
        30_000,
        ge=100,
        description="a pending message idle this long is reclaimed from a dead consumer",
    )
    bus_max_deliveries: int = Field(
        5,
        ge=1,
        description="a message that failed this many deliveries goes to the dead-letter stream",
    )
    bus_batch_size: int = Field(
        256, ge=1, le=10_000, description="messages read per XREADGROUP call"
    )

    # --- service runtime ----------------------------------------------------------------------
    heartbeat_interval_s: float = Field(5.0, gt=0, description="seconds between heartbeats")
    heartbeat_ttl_s: float = Field(
        30.0, gt=0, description="a heartbeat older than this is unhealthy"
    )
    service_instance: str | None = Field(
        None, description="instance id of this process (default: hostname:pid)"
    )
    migrations_dir: Path | None = Field(
        None, description="folder of NNNN_name.sql migrations (default: ./db/migrations)"
    )

    # --- modes ----------------------------------------------------------------------------------
    data_source: DataSource = Field(
        "sim", description="sim (offline simulator) or bybit (real public data)"
    )
    trading_mode: TradingMode = Field("paper", description="paper, testnet or live")
    live_trading_confirm: str = Field(
        "", description=f'must be exactly "{LIVE_CONFIRMATION_PHRASE}" for TRADING_MODE=live'
    )

    # --- simulator ------------------------------------------------------------------------------
    sim_host: str = Field("127.0.0.1", description="host the simulator listens on / is reached at")
    sim_port: int = Field(
        8090, ge=1, le=65535, description="port of the simulator (HTTP and WebSocket)"
    )
    sim_seed: int = Field(42, description="random seed of the simulated market")
    sim_speed: float = Field(1.0, gt=0, description="simulated seconds per real second")
    sim_bind_host: str = Field(
        "127.0.0.1", description="address the simulator server binds to (0.0.0.0 inside compose)"
    )
    sim_coins: int = Field(60, ge=2, le=2000, description="number of simulated perpetual coins")
    sim_history_days: float = Field(
        2.0,
        ge=0,
        le=400,
        description="days of 1-min history the simulator holds at start (for backfills)",
    )
    sim_faults: str = Field(
        "",
        description='injected faults, e.g. "http_429=0.05,http_5xx=0.02,ws_drop_per_min=0.5" (empty = none)',
    )
    sim_scenario: str = Field(
        "",
        description="empty: the default market (hunts under way on the coins the strategy likes best "
        'when it opens); "hunt:SYM1,SYM2": also a hunt planted on these coins, pushing in the first '
        'live minutes; "quiet": no hunts planted at the opening (whales act as they happen to)',
    )

    # --- exchange and data vendors ---------------------------------------------------------
    bybit_endpoint_rest: str | None = Field(
        None,
        description="Bybit REST base URL (default: simulator when DATA_SOURCE=sim, else api.bybit.com)",
    )
    bybit_ws_public: str | None = Field(None, description="Bybit public WebSocket URL")
    bybit_ws_private: str | None = Field(None, description="Bybit private WebSocket URL")
    bybit_api_key: SecretStr | None = Field(None, description="Bybit mainnet API key (live only)")
    bybit_api_secret: SecretStr | None = Field(
        None, description="Bybit mainnet API secret (live only)"
    )
    bybit_testnet_api_key: SecretStr | None = Field(None, description="Bybit testnet API key")
    bybit_testnet_api_secret: SecretStr | None = Field(None, description="Bybit testnet API secret")
    # --- bybit venue (private REST) and the simulator's exchange ---
    bybit_endpoint_trade: str | None = Field(
        None,
        description="Bybit private REST base URL for the testnet/live venues (default: BYBIT_ENDPOINT_REST if set; else the simulator for testnet when DATA_SOURCE=sim; else api-testnet.bybit.com / api.bybit.com)",
    )
    bybit_trade_rate_per_s: float = Field(
        8.0,
        gt=0,
        description="Bybit private REST requests per second (order endpoints allow 10/s); a service that trades and reads market data on one host has one client, one bucket at the lower of this and BYBIT_RATE_PER_S",
    )
    bybit_recv_window_ms: int = Field(
        5000, ge=100, le=60_000, description="X-BAPI-RECV-WINDOW sent with signed Bybit requests"
    )
    sim_api_key: str = Field(
        "sim-public-test-key",
        description="the simulator's own test API key (not a secret: it only opens the offline simulator)",
    )
    sim_api_secret: str = Field(
        "sim-public-test-secret",
        description="the simulator's own test API secret (not a secret: it only opens the offline simulator)",
    )
    sim_extra_api_keys: str = Field(
        "",
        description='more simulator accounts, "key:secret,key2:secret2" (each its own wallet)',
    )
    sim_wallet_usdt: float = Field(
        10_000.0, ge=0, description="starting USDT wallet balance of every simulator account"
    )
    sim_taker_fee: float = Field(0.00055, ge=0, lt=0.01, description="simulator taker fee rate")
    sim_maker_fee: float = Field(0.0002, ge=-0.001, lt=0.01, description="simulator maker fee rate")
    sim_slippage: float = Field(
        0.0002, ge=0, lt=0.05, description="simulator market-order slippage (fraction of price)"
    )
    heatmap_source: Literal["auto", "coinglass", "sim", "estimate", "model"] = Field(
        "auto",
        description="liquidation heatmaps from: auto (CoinGlass with a key, else the simulator when DATA_SOURCE=sim, else the key-free estimate), coinglass, sim, model (= estimate: the key-free model from public Bybit data)",
    )
    heatmap_leverage_mix: str = Field(
        "",
        description='leverage mix of the heatmap estimate, "leverage:share:hold_days,..." (empty: the model default 3x..100x)',
    )
    coinglass_heatmap_model: Literal["model1", "model2", "model3"] = Field(
        "model2", description="CoinGlass aggregated heatmap model"
    )
    coinglass_endpoint_liq_heatmap_model1: str | None = Field(
        None, description="CoinGlass heatmap model1 URL"
    )
    coinglass_endpoint_liq_heatmap_model2: str | None = Field(
        None, description="CoinGlass heatmap model2 URL"
    )
    coinglass_endpoint_liq_heatmap_model3: str | None = Field(
        None, description="CoinGlass heatmap model3 URL"
    )
    coinglass_rate_per_min: int = Field(
        1200,
        ge=1,
        description="CoinGlass requests per minute: your plan's limit (heatmaps need Professional: 1200)",
    )
    sim_rate_per_min: int = Field(
        60_000, ge=1, description="requests per minute to the simulator's CoinGlass-shaped API"
    )
    bybit_rate_per_s: float = Field(
        20.0, gt=0, description="Bybit public REST requests per second (IP limit is 600 per 5 s)"
    )
    coinglass_api_key: SecretStr | None = Field(
        None, description="CoinGlass API key (heatmaps need Professional)"
    )
    binance_api_key: SecretStr | None = Field(None, description="Binance API key (optional)")
    binance_api_secret: SecretStr | None = Field(None, description="Binance API secret (optional)")

    # --- collectors -------------------------------------------------------------------------
    snapshot_interval_s: float = Field(60.0, gt=0, description="seconds between market snapshots")
    heatmap_refresh_interval_s: float = Field(
        300.0, gt=0, description="background refresh of every coin's heatmaps"
    )
    heatmap_eval_interval_s: float = Field(
        900.0, gt=0,
        description="seconds between scorings of every heatmap source against the liquidations recorded after its heatmaps (heatmap_hit_rates)",
    )  # fmt: skip
    heatmap_eval_window_min: int = Field(
        60, ge=1, le=1440,
        description="hit-rate window: heatmaps this old are scored against the liquidations of the minutes since",
    )  # fmt: skip
    heatmap_max_age_s: float = Field(
        300.0, gt=0, description="heatmaps older than this are refreshed before a trade"
    )
    backfill_max_days: float = Field(
        7.0, ge=0, le=366, description="gap repair at start reaches back at most this far"
    )
    gap_repair_interval_s: float = Field(
        300.0, gt=0, description="seconds between candle gap repairs (also after each reconnect)"
    )
    ws_symbols_per_connection: int = Field(
        100, ge=1, le=500, description="coins per public WebSocket connection"
    )

    # --- scanners and ranker (the strategy; SPEC §4 defaults) ----------------------------------
    spike_scan_interval_s: float = Field(
        60.0, gt=0, description="seconds between spike scans (fast movers, OI / volume spikes)"
    )
    spike_lookback_min: int = Field(
        240, ge=70, le=10_080, description="minutes of 1-min history a spike scan reads per coin"
    )
    spike_move_1m_pct: float = Field(
        2.0, gt=0, description="fixed mode: a 1-min price move above this percent is a fast mover"
    )
    spike_move_5m_pct: float = Field(
        5.0, gt=0, description="fixed mode: a 5-min price move above this percent is a fast mover"
    )
    spike_oi_15m_pct: float = Field(
        3.0,
        gt=0,
        description="fixed mode: a 15-min open-interest change above this percent is a spike",
    )
    spike_volume_ratio: float = Field(
        1.5,
        gt=0,
        description="fixed mode: 5-min volume above this multiple of its 1-h average is a spike",
    )
    spike_zscore: float = Field(
        4.0,
        gt=0,
        description="coin-specific mode: robust z-score vs the coin's own history that counts as a spike",
    )
    spike_refresh_mode: Literal["fixed", "coin_specific", "both"] = Field(
        "both",
        description="which mode's spikes ask the liquidation collector for a heatmap refresh",
    )
    spike_refresh_cooldown_s: float = Field(
        120.0,
        ge=0,
        description="at most one spike refresh request per coin within this many seconds",
    )
    cluster_scan_interval_s: float = Field(
        60.0, gt=0, description="seconds between cluster scans of the latest heatmaps"
    )
    cluster_merge_pct: float = Field(
        0.5, gt=0, description="adjacent heatmap levels closer than this percent form one cluster"
    )
    typical_cluster_lookback_h: float = Field(
        168.0, gt=0, description="hours of cluster history behind a coin's typical cluster size"
    )
    typical_cluster_min_samples: int = Field(
        24,
        ge=1,
        description="below this many history samples the current heatmaps give the typical size",
    )
    pattern_update_interval_s: float = Field(
        900.0, gt=0, description="seconds between updates of wick stats and cluster success rates"
    )
    pattern_sample_interval_min: int = Field(
        60,
        ge=1,
        description="one target cluster per coin x timeframe is recorded per this many minutes",
    )
    pattern_horizon_h: float = Field(
        24.0,
        gt=0,
        description="a target cluster counts as reached when price touches it within this many hours",
    )
    pattern_lookback_d: float = Field(
        14.0, gt=0, description="days of target clusters behind a coin's success rate"
    )
    wick_candle_min: int = Field(
        60, ge=1, le=1440, description="candle length (minutes) wicks are measured on"
    )
    wick_window_max_d: float = Field(
        30.0, gt=0, description="wick stats use the timeframe's window, capped at this many days"
    )
    strategies: str = Field(
        "scanner_oi",
        description="strategy_runner: plug-ins to run live, by name, with optional settings: "
        "scanner_oi,sma_cross(fast=5,slow=20) (quant backtest --list shows them)",
    )
    strategy_interval_s: float = Field(
        5.0, gt=0, description="strategy_runner: seconds between looks for newly closed bars"
    )
    strategy_window_min: int = Field(
        240, ge=2, le=20_160,
        description="strategy_runner: 1-min bars each decision reads (at least a plug-in's warm-up)",
    )  # fmt: skip
    strategy_symbols: str = Field(
        "", description="strategy_runner: coins to run on, comma-separated (empty: every coin "
        "with 1-min candles)",
    )  # fmt: skip
    rank_interval_s: float = Field(60.0, gt=0, description="seconds between ranking cycles")
    ranker_lease_s: float = Field(
        10.0,
        ge=1,
        description="leader lease of the ranker; a standby takes over within about this long",
    )
    rank_top_n: int = Field(10, ge=1, le=100, description="coins kept per ranking cycle")
    rank_watch_top: int = Field(
        3, ge=0, le=100, description="top coins watched for the trade trigger"
    )
    rank_timeframe_weights: str = Field(
        "",
        description='imbalance weight per heatmap timeframe, e.g. "12h=0.5,24h=1,1y=2" (unlisted = 1)',
    )
    rank_weight_imbalance: float = Field(
        50.0, ge=0, description="score weight of the imbalance (0.5..1)"
    )
    rank_weight_cluster: float = Field(
        0.3, ge=0, description="score weight of the cluster size (percent of the coin's typical)"
    )
    rank_weight_success: float = Field(
        20.0, ge=0, description="score weight of the success rate (0..1)"
    )
    rank_cluster_cap_pct: float = Field(
        200.0, gt=0, description="cluster size above this percent of typical scores no more"
    )
    trigger_oi_pct: float = Field(
        3.0, description="trigger: open interest must have grown more than this percent in 15 min"
    )
    trigger_volume_ratio: float = Field(
        1.5, ge=0, description="trigger: 5-min volume must exceed this multiple of its 1-h average"
    )
    trigger_move_pct: float = Field(
        1.0,
        ge=0,
        description="trigger: price must have moved more than this percent in 5 min, in the bias direction",
    )
    trigger_mode: Literal["coin", "fixed"] = Field(
        "coin",
        description="coin: each trigger threshold is TRIGGER_PERCENTILE of the coin's own history, "
        "never below the fixed numbers above; fixed: the numbers above for every coin",
    )
    trigger_percentile: float = Field(
        95.0, gt=0, lt=100, description="coin trigger: percentile of the coin's own history"
    )
    trigger_history_min: int = Field(
        1440,
        ge=61,
        le=10080,
        description="coin trigger: minutes of history each threshold is taken from",
    )
    trigger_min_samples: int = Field(
        60, ge=1, description="coin trigger: fewer history samples than this → the fixed number"
    )
    signal_cooldown_s: float = Field(
        3600.0,
        ge=0,
        description="no second signal for a coin in the same direction within this many seconds",
    )
    entry_mode: Literal["conservative", "aggressive", "scaled"] = Field(
        "conservative",
        validation_alias=_alias("ENTRY_MODE", "AUTOTRADER_ENTRY_MODE"),
        description="the one entry mode of signals and orders: conservative (beyond the cluster "
        "edge), aggressive (at the edge) or scaled (a ladder of limit orders)",
    )
    min_reward_risk: float = Field(
        1.0, ge=0, description="a plan whose (TP - entry) / (entry - stop) is below this is refused"
    )
    entry_beyond_pct: float = Field(
        2.0, ge=0, description="conservative entry: this percent beyond the target cluster's edge"
    )
    take_profit_front_run_pct: float = Field(
        0.5, ge=0, description="take profit this percent before the target cluster's centre"
    )
    stop_beyond_pct: float = Field(
        2.0, ge=0, description="cluster stop: this percent beyond the next opposite cluster"
    )
    stop_default_wick_pct: float = Field(
        5.0, gt=0, description="max wick (percent) assumed for a coin without wick history"
    )
    # --- open-interest backfill (scanner performance work) ---
    oi_backfill_hours: float = Field(
        4.0,
        ge=0,
        le=720,
        description="hours of 5-min open-interest history the market collector fills in at "
        "start and at each gap repair (0: off); the 15-min OI change needs it after a restart",
    )

    # --- broadcast channels --------------------------------------------------------------------
    telegram_bot_token: SecretStr | None = Field(None, description="Telegram bot token")
    telegram_main_channel: str | None = Field(None, description="channel for signals, e.g. @whales")
    telegram_admin_id: int | None = Field(
        None, description="the only Telegram user id the bot obeys"
    )
    x_api_key: SecretStr | None = Field(
        None, validation_alias=_alias("X_API_KEY", "X_BOT_KEY"), description="X consumer key"
    )
    x_api_secret: SecretStr | None = Field(
        None,
        validation_alias=_alias("X_API_SECRET", "X_BOT_SECRET"),
        description="X consumer secret",
    )
    x_access_token: SecretStr | None = Field(
        None,
        validation_alias=_alias("X_ACCESS_TOKEN", "X_BOT_ACCESS_TOKEN"),
        description="X access token",
    )
    x_access_secret: SecretStr | None = Field(None, description="X access token secret")
    email_user: str | None = Field(None, description="SMTP login, also the sender address")
    email_pass: SecretStr | None = Field(None, description="SMTP password")
    email_smtp_host: str | None = Field(None, description="SMTP host (STARTTLS)")
    email_smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port")
    twilio_account_sid: str | None = Field(
        None,
        validation_alias=_alias("TWILIO_ACCOUNT_SID", "TWILIO_SID"),
        description="Twilio account SID",
    )
    twilio_auth_token: SecretStr | None = Field(
        None,
        validation_alias=_alias("TWILIO_AUTH_TOKEN", "TWILIO_AUTH"),
        description="Twilio auth token",
    )
    twilio_phone: str | None = Field(None, description="Twilio sender number")
    sms_admin_phone: str | None = Field(None, description="number that receives SMS alerts")

    # --- broadcaster ---
    telegram_api_base_url: str = Field(
        "https://api.telegram.org",
        description="Telegram Bot API server (also a self-hosted Bot API server); /bot<token> is appended",
    )
    x_api_base_url: str = Field(
        "https://api.twitter.com", description="X API host that tweepy's requests go to"
    )
    twilio_api_base_url: str = Field(
        "https://api.twilio.com", description="Twilio REST API host that SMS go to"
    )
    email_to: str | None = Field(
        None, description="comma-separated recipients of broadcast emails (default: EMAIL_USER)"
    )
    email_smtp_ca_file: Path | None = Field(
        None,
        description="CA bundle that signs the SMTP server's certificate (default: the system's)",
    )
    broadcast_templates_dir: Path | None = Field(
        None,
        description="folder of your own <channel>.toml message templates; each file found there replaces the shipped one",
    )
    broadcast_telegram_events: str = Field(
        "signal,entry,stop_moved,exit,daily,poly_signal,hybrid,poly_trade",
        description="events sent to Telegram (signal, entry, stop_moved, exit, daily, poly_signal, hybrid, poly_trade)",
    )
    broadcast_x_events: str = Field("signal,exit,daily", description="events posted on X")
    broadcast_email_events: str = Field(
        "signal,entry,exit,daily,poly_signal,hybrid,poly_trade", description="events sent by email"
    )
    broadcast_sms_events: str = Field("signal,exit", description="events sent by SMS")
    broadcast_telegram_min_score: float = Field(
        0.0, ge=0, description="Telegram: only events of signals scoring at least this"
    )
    broadcast_x_min_score: float = Field(
        0.0, ge=0, description="X: only events of signals scoring at least this"
    )
    broadcast_email_min_score: float = Field(
        0.0, ge=0, description="email: only events of signals scoring at least this"
    )
    broadcast_sms_min_score: float = Field(
        90.0,
        ge=0,
        description="SMS: only events of signals scoring at least this (high conviction)",
    )
    broadcast_telegram_rate: str = Field(
        "1/1,20/60",
        description="Telegram send limit as COUNT/SECONDS windows (Telegram allows ~20/min into one group)",
    )
    broadcast_x_rate: str = Field(
        "17/86400", description="X post limit as COUNT/SECONDS windows (free tier: 17 per 24 h)"
    )
    broadcast_email_rate: str = Field(
        "20/3600", description="email send limit as COUNT/SECONDS windows"
    )
    broadcast_sms_rate: str = Field(
        "1/60,10/3600", description="SMS limit as COUNT/SECONDS windows"
    )
    broadcast_affiliate_channels: str = Field(
        "telegram,x,email", description="channels whose messages carry the affiliate links"
    )
    broadcast_digest_max_items: int = Field(
        100, ge=2, le=1000, description="events one digest message may carry at most"
    )
    broadcast_stale_after_s: float = Field(
        3600.0, gt=0, description="an event not sent within this many seconds is skipped as stale"
    )
    broadcast_max_attempts: int = Field(
        6, ge=1, description="send attempts (transient errors) before a message is recorded failed"
    )
    broadcast_retry_base_s: float = Field(
        2.0, gt=0, description="first retry delay after a transient send error (doubles each time)"
    )
    broadcast_retry_max_s: float = Field(300.0, gt=0, description="longest retry delay")
    broadcast_send_timeout_s: float = Field(
        20.0, gt=0, description="timeout of one call to Telegram, X, SMTP or Twilio"
    )
    broadcast_claim_timeout_s: float = Field(
        60.0,
        gt=0,
        description="a send claimed longer ago than this belongs to a dead replica and is resolved",
    )
    broadcast_channel_down_s: float = Field(
        21600.0,
        gt=0,
        description="after a permanent error (bad token, blocked bot) a channel rests this long before one new try",
    )
    broadcast_poll_s: float = Field(
        0.5, gt=0, description="seconds between looks for queued messages when idle"
    )
    broadcast_daily_digest_at: str = Field(
        "21:00",
        pattern=r"^(off|([01][0-9]|2[0-3]):[0-5][0-9])$",
        description="time of the daily digest (HH:MM in TIMEZONE; off = none)",
    )
    broadcast_control_lease_s: float = Field(
        10.0, ge=1, description="lease of the one replica that polls Telegram for admin commands"
    )

    @field_validator(
        "broadcast_telegram_rate", "broadcast_x_rate", "broadcast_email_rate", "broadcast_sms_rate"
    )
    @classmethod
    def _check_broadcast_rate(cls, value: str) -> str:
        cls.parse_rate_windows(value)
        return value

    @staticmethod
    def parse_rate_windows(text: str) -> list[tuple[int, float]]:
        """ "1/1,20/60" -> [(1, 1.0), (20, 60.0)]: at most COUNT sends in any SECONDS window."""
        windows: list[tuple[int, float]] = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            count, sep, seconds = item.partition("/")
            try:
                window = (int(count), float(seconds))
            except ValueError:
                raise ValueError(f"expected COUNT/SECONDS, got {item!r}") from None
            if not sep or window[0] < 1 or not window[1] > 0:
                raise ValueError(f"expected COUNT/SECONDS with both > 0, got {item!r}")
            windows.append(window)
        if not windows:
            raise ValueError("at least one COUNT/SECONDS window is needed")
        return windows

    # --- backups ----------------------------------------------------------------------------------
    backup_dir: Path = Field(
        Path("backups"), description="folder of `quant backup` dumps (compose: the backups volume)"
    )
    backup_keep: int = Field(7, ge=1, le=3650, description="backups kept; older ones are removed")
    backup_daily_at: str = Field(
        "03:30",
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description="HH:MM (TIMEZONE) of the daily backup of the compose `backup` service",
    )
    # --- grafana ----------------------------------------------------------------------------------
    grafana_admin_user: str = Field("admin", description="Grafana admin login")
    grafana_admin_pass: SecretStr | None = Field(None, description="Grafana admin password")
    # --- grafana dashboards -----------------------------------------------------------------------
    grafana_ro_user: str = Field(
        "grafana_ro",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="read-only database login Grafana reads through (member of grafana_reader)",
    )
    grafana_ro_pass: SecretStr | None = Field(
        None,
        description="its password: `quant migrate` creates / updates the login when set (compose "
        "passes a local-only default when empty; set one for anything beyond your laptop)",
    )
    stream_stats_interval_s: float = Field(
        30.0,
        gt=0,
        description="seconds between stream backlog / dead-letter samples the journal writes "
        "to stream_stats (Grafana's System dashboard)",
    )

    # --- affiliate ----------------------------------------------------------------------------------
    coinglass_ref_code: str | None = Field(
        None, description="CoinGlass referral code appended to links"
    )
    bybit_ref_code: str | None = Field(None, description="Bybit referral code appended to links")

    # --- trading: autotrader, risk, paper venue, position monitor ---
    autotrader_agent: str = Field(
        "liquidation_hunter", description="agent name the autotrader trades as (trades.agent)"
    )
    autotrade_strategies: str = Field(
        "",
        description="strategy plug-ins (strategy_runner) whose signals the autotrader trades, "
        "comma-separated names; the others' signals are recorded as skipped (empty: none traded)",
    )
    trade_majors: str = Field(
        "BTCUSDT,ETHUSDT", description="comma-separated coins the autotrader never trades"
    )
    ladder_orders: int = Field(5, ge=2, le=20, description="scaled entry: number of limit orders")
    ladder_sizing: Literal["flat", "increasing", "decreasing"] = Field(
        "increasing",
        description="scaled entry: sizes flat, or increasing / decreasing away from the price",
    )
    ladder_range_pct: float = Field(
        2.0,
        gt=0,
        le=50,
        description="scaled entry: ladder spans this percent from the cluster edge",
    )
    risk_per_trade_pct: float = Field(
        1.0, gt=0, le=10, description="percent of equity lost if the stop is hit"
    )
    trade_leverage: float = Field(5.0, ge=1, le=100, description="leverage of each position")
    max_open_positions: int = Field(5, ge=1, description="open or pending positions at most")
    max_trade_equity_pct: float = Field(
        20.0, gt=0, le=100, description="margin of one trade at most this percent of equity"
    )
    max_total_equity_pct: float = Field(
        60.0, gt=0, le=100, description="margin of all positions at most this percent of equity"
    )
    daily_loss_limit_pct: float = Field(
        5.0,
        gt=0,
        le=100,
        description="loss today, realised + unrealised (percent of the day's starting equity), "
        "that engages the kill switch",
    )
    signal_max_age_s: float = Field(
        300.0, gt=0, description="signals older than this are expired, not traded"
    )
    pre_trade_refresh_wait_s: float = Field(
        20.0, ge=0, description="wait this long for a pre-trade heatmap refresh, else skip"
    )
    entry_timeout_s: float = Field(
        3600.0, gt=0, description="unfilled entry orders are cancelled after this many seconds"
    )
    paper_start_equity: float = Field(10_000.0, gt=0, description="paper account start, USDT")
    paper_taker_fee_pct: float = Field(0.055, ge=0, description="paper taker fee, percent")
    paper_maker_fee_pct: float = Field(0.02, ge=0, description="paper maker fee, percent")
    paper_slippage_pct: float = Field(
        0.05, ge=0, description="paper market orders fill this percent worse than the price"
    )
    position_monitor_interval_s: float = Field(
        5.0, gt=0, description="seconds between position monitor passes"
    )
    position_monitor_lease_s: float = Field(
        10.0, gt=0, description="position monitor leader lease; a standby takes over after it"
    )
    trailing_ladder: str = Field(
        "10:0,20:10,50:30",
        description="trailing stop steps PROFIT:LOCK in percent (10:0 = at +10 % stop to breakeven)",
    )
    trailing_basis: Literal["price", "margin"] = Field(
        "margin", description="trailing ladder percent measured on margin (x leverage) or price"
    )
    equity_snapshot_interval_s: float = Field(
        60.0, gt=0, description="seconds between equity snapshots"
    )
    autotrader_fault: Literal["none", "kill_after_place"] = Field(
        "none", description="testing hook: kill the autotrader after the venue accepted an order"
    )

    # --- polymarket -----------------------------------------------------------------------------------
    polymarket_private_key: SecretStr | None = Field(
        None, description="Polymarket wallet key (live copy trading)"
    )
    poly_risk_cap: float = Field(0.10, gt=0, le=1, description="max share of poly equity exposed")
    poly_collect_interval_s: float = Field(
        60.0,
        gt=0,
        description="seconds between poly_collector cycles (markets, books, feed, wallets)",
    )
    poly_markets_interval_s: float = Field(
        900.0, gt=0, description="seconds between full Gamma market crawls"
    )
    poly_wallet_sync_batch: int = Field(
        50, ge=1, description="wallet histories (positions + trades) fetched per collector cycle"
    )
    poly_wallet_resync_h: float = Field(
        6.0, gt=0, description="hours before a wallet's history is fetched again"
    )
    poly_rate_scale: float = Field(
        0.5, gt=0, le=1, description="share of Polymarket's documented rate limits we use"
    )
    poly_scan_interval_s: float = Field(
        300.0, gt=0, description="seconds between poly_scanner cycles (hunter, clusters, oracle)"
    )
    poly_window_days: float = Field(
        30.0, gt=0, description="hunter: days of closed positions scored"
    )
    poly_smart_min_roi: float = Field(
        0.30, description="hunter: realised ROI (PnL / cost, ratio) a smart wallet needs"
    )
    poly_smart_min_sample: int = Field(
        8, ge=1, description="hunter: closed positions a smart wallet needs in the window"
    )
    poly_shrink_k: float = Field(
        20.0,
        ge=0,
        description="hunter: pseudo-positions at the population mean (shrinks small samples)",
    )
    poly_return_cap: float = Field(
        1.0, gt=0, description="hunter: one position's return counts at most this much in the score"
    )
    poly_copy_weight: float = Field(
        1.0, ge=0, description="hunter: score weight of our closed copy trades' results (0 = off)"
    )
    poly_early_hours: float = Field(6.0, ge=0, description="hunter: entry ≥ X h before a move")
    poly_early_points: float = Field(
        0.15, gt=0, lt=1, description="hunter: … of ≥ Y probability points (early entry)"
    )
    poly_bot_trades_per_day: float = Field(
        150.0, gt=0, description="hunter: fills per active day that make a wallet a bot"
    )
    poly_mm_two_sided_share: float = Field(
        0.5, gt=0, le=1, description="hunter: share of markets bought on both sides: market maker"
    )
    poly_cluster_window_s: float = Field(
        600.0, gt=0, description="clusters: same market and side within this many seconds"
    )
    poly_cluster_min_together: int = Field(
        3, ge=1, description="clusters: market sides two wallets must share to be linked"
    )
    poly_cluster_density: float = Field(
        0.5, ge=0, lt=1, description="clusters: a group is a cluster above this graph density"
    )
    poly_oracle_window_h: float = Field(
        6.0, gt=0, description="oracle: hours of smart flow considered"
    )
    poly_signal_min_criteria: int = Field(
        5, ge=1, le=7, description="oracle: checklist criteria (of 7) needed to fire"
    )
    poly_min_liquidity_usd: float = Field(
        1000.0, ge=0, description="oracle: market liquidity floor"
    )
    poly_max_spread: float = Field(
        0.05, gt=0, description="oracle: widest spread (probability points)"
    )
    poly_max_chase: float = Field(
        0.05, ge=0, description="oracle: ask at most this far above the smart entries"
    )
    poly_fee_rate_bps: float = Field(
        0.0,
        ge=0,
        description="taker fee rate, bps (C x rate x (p(1-p))^exponent): oracle and copy trader",
    )
    poly_kelly_fraction: float = Field(0.25, gt=0, le=1, description="oracle: share of full Kelly")
    poly_bankroll_usd: float = Field(1000.0, gt=0, description="oracle: bankroll Kelly sizes from")
    poly_max_signal_usd: float = Field(
        100.0, ge=0, description="oracle: cap of a signal's suggested size"
    )
    poly_hybrid_window_min: float = Field(
        60.0, gt=0, description="hybrid: minutes around a poly signal a perp spike counts"
    )
    poly_hybrid_boost: float = Field(
        0.0, ge=0, description="hybrid: perps score boost of a coin with a hybrid signal (0 = off)"
    )
    poly_trading_mode: Literal["paper", "live"] = Field(
        "paper", description="poly_trader venue: paper (default) or live (Polymarket CLOB V2)"
    )
    poly_signature_type: int = Field(
        3,
        ge=0,
        le=3,
        description="live: order signature type (0 EOA, 1 proxy, 2 Safe, 3 deposit wallet: "
        "accounts created on or after 2026-05-04)",
    )
    poly_funder_address: str | None = Field(
        None,
        pattern=r"^0x[0-9a-fA-F]{40}$",
        description="live: the address holding the funds (deposit wallet / proxy / Safe; "
        "needed for signature types 1-3)",
    )
    poly_chain_id: int = Field(137, description="live: chain id the orders are signed for")
    poly_endpoint_clob: str = Field(
        "",
        description="live: CLOB base URL (empty: Polymarket's, or the simulator's with DATA_SOURCE=sim)",
    )
    poly_endpoint_data: str = Field(
        "", description="live: Data API base URL (empty: Polymarket's, or the simulator's)"
    )
    poly_endpoint_geoblock: str = Field(
        "",
        description="live: geoblock check URL (empty: https://polymarket.com/api/geoblock, or the simulator's)",
    )
    poly_heartbeat_s: float = Field(
        5.0, ge=0, description="live: seconds between CLOB heartbeats (dead-man switch; 0 = off)"
    )
    poly_confirm_timeout_s: float = Field(
        30.0, gt=0, description="live: seconds to wait for a matched fill to show in the Data API"
    )
    poly_live_confirm: str = Field(
        "", description=f'must be exactly "{LIVE_CONFIRMATION_PHRASE}" for POLY_TRADING_MODE=live'
    )
    poly_market_cap: float = Field(
        0.05, gt=0, le=1, description="copy trader: max share of poly equity in one market"
    )
    poly_fee_exponent: int = Field(
        1,
        ge=0,
        le=4,
        description="taker fee exponent (C x rate x (p(1-p))^exponent): oracle and copy trader",
    )
    poly_paper_equity_usd: float = Field(
        1000.0, gt=0, description="copy trader: starting cash of the paper Polymarket venue"
    )
    poly_exit_step_pct: float = Field(
        0.10, gt=0, le=1, description="copy trader: share of the entry size sold per exit step"
    )
    poly_exit_wallets_left: float = Field(
        0.5, gt=0, le=1, description="copy trader: exit once this share of followed wallets left"
    )
    poly_exit_min_edge: float = Field(
        0.0, description="copy trader: exit once the edge (implied - bid) is at or below this"
    )
    poly_exit_resolution_h: float = Field(
        24.0, ge=0, description="copy trader: exit within this many hours of the market's end"
    )
    poly_trader_interval_s: float = Field(
        30.0, gt=0, description="copy trader: seconds between exit / resolution / cap passes"
    )
    poly_trader_fault: Literal["none", "kill_after_place"] = Field(
        "none", description="testing hook: kill poly_trader after the venue accepted an order"
    )
    poly_signal_max_age_s: float = Field(
        3600.0, gt=0, description="copy trader: a poly signal older than this is not traded"
    )

    # ---------------------------------------------------------------------------------------
    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, data: Any) -> Any:
        """`KEY=` in .env means "not set": an optional setting falls back to its default."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and v.strip() == "")}
        return data

    @field_validator("rank_timeframe_weights")
    @classmethod
    def _check_tf_weights(cls, value: str) -> str:
        parse_timeframe_weights(value)
        return value

    @field_validator("trailing_ladder")
    @classmethod
    def _check_trailing(cls, value: str) -> str:
        parse_trailing_ladder(value)
        return value

    @model_validator(mode="after")
    def _check_modes(self) -> Settings:
        if self.trading_mode == "live":
            missing = [n for n in ("bybit_api_key", "bybit_api_secret") if getattr(self, n) is None]
            if missing:
                raise ValueError(
                    "TRADING_MODE=live needs " + " and ".join(env_name(m) for m in missing)
                )
            if self.live_trading_confirm != LIVE_CONFIRMATION_PHRASE:
                raise ValueError(
                    f'TRADING_MODE=live needs LIVE_TRADING_CONFIRM="{LIVE_CONFIRMATION_PHRASE}"'
                )
            if self.timescale_db_pass.get_secret_value() == DEV_DB_PASSWORD:
                raise ValueError("TRADING_MODE=live needs TIMESCALE_DB_PASS set to a real password")
            passwords = {
                "timescale_db_pass": self.timescale_db_pass,
                "timescale_db_app_pass": self.app_db_password(),
                "grafana_ro_pass": self.grafana_ro_pass,
            }
            defaults = [
                env_name(n)
                for n, value in passwords.items()
                if value is not None and value.get_secret_value() in DEV_PASSWORDS
            ]
            # compose falls back to a fixed Grafana password when one is unset: unset is refused
            for name, placeholder in (("grafana_ro_pass", DEV_GRAFANA_RO_PASSWORD),
                                      ("grafana_admin_pass", DEV_GRAFANA_ADMIN_PASSWORD)):  # fmt: skip
                value: SecretStr | None = getattr(self, name)
                unset = value is None or value.get_secret_value() in ("", placeholder)
                if unset and env_name(name) not in defaults:
                    defaults.append(env_name(name))
            if defaults:
                raise ValueError(
                    "TRADING_MODE=live refuses the local-only default password of "
                    + " and ".join(defaults)
                    + " (set a real one; compose falls back to a fixed one when unset)"
                )
        if self.poly_trading_mode == "live":
            if self.polymarket_private_key is None:
                raise ValueError("POLY_TRADING_MODE=live needs POLYMARKET_PRIVATE_KEY")
            if self.poly_live_confirm != LIVE_CONFIRMATION_PHRASE:
                raise ValueError(
                    f'POLY_TRADING_MODE=live needs POLY_LIVE_CONFIRM="{LIVE_CONFIRMATION_PHRASE}"'
                )
            if self.poly_signature_type != 0 and self.poly_funder_address is None:
                raise ValueError(
                    f"POLY_TRADING_MODE=live with POLY_SIGNATURE_TYPE={self.poly_signature_type} "
                    "needs POLY_FUNDER_ADDRESS (the deposit wallet, proxy or Safe holding the funds)"
                )
        if self.trading_mode == "testnet":
            missing = [
                n
                for n in ("bybit_testnet_api_key", "bybit_testnet_api_secret")
                if getattr(self, n) is None
            ]
            if missing:
                raise ValueError(
                    "TRADING_MODE=testnet needs " + " and ".join(env_name(m) for m in missing)
                )
        return self

    # --- derived values --------------------------------------------------------------------------
    @cached_property
    def instance(self) -> str:
        return self.service_instance or f"{socket.gethostname()}:{os.getpid()}"

    @property
    def sim_http_url(self) -> str:
        return f"http://{self.sim_host}:{self.sim_port}"

    @property
    def poly_sim(self) -> bool:
        """Polymarket reads go to the simulator's copies unless DATA_SOURCE is a real venue."""
        return self.data_source == "sim"

    @property
    def poly_clob_url(self) -> str:
        if self.poly_endpoint_clob:
            return self.poly_endpoint_clob.rstrip("/")
        return f"{self.sim_http_url}/clob" if self.poly_sim else "https://clob.polymarket.com"

    @property
    def poly_data_url(self) -> str:
        if self.poly_endpoint_data:
            return self.poly_endpoint_data.rstrip("/")
        return f"{self.sim_http_url}/data" if self.poly_sim else "https://data-api.polymarket.com"

    @property
    def poly_geoblock_url(self) -> str:
        if self.poly_endpoint_geoblock:
            return self.poly_endpoint_geoblock
        if self.poly_sim:
            return f"{self.sim_http_url}/web/api/geoblock"
        return "https://polymarket.com/api/geoblock"

    @property
    def bybit_rest_url(self) -> str:
        if self.bybit_endpoint_rest:
            return self.bybit_endpoint_rest.rstrip("/")
        return self.sim_http_url if self.data_source == "sim" else "https://api.bybit.com"

    @property
    def bybit_ws_public_url(self) -> str:
        if self.bybit_ws_public:
            return self.bybit_ws_public
        if self.data_source == "sim":
            return f"ws://{self.sim_host}:{self.sim_port}/v5/public/linear"
        return "wss://stream.bybit.com/v5/public/linear"

    @property
    def coinglass_heatmap_url(self) -> str:
        """URL of the aggregated heatmap endpoint (the simulator's unless a real source is set)."""
        configured = getattr(self, f"coinglass_endpoint_liq_heatmap_{self.coinglass_heatmap_model}")
        if configured:
            return str(configured)
        path = f"/api/futures/liquidation/aggregated-heatmap/{self.coinglass_heatmap_model}"
        if self.effective_heatmap_source == "sim":
            return self.sim_http_url + path
        return "https://open-api-v4.coinglass.com" + path

    @property
    def effective_heatmap_source(self) -> Literal["coinglass", "sim", "estimate"]:
        if self.heatmap_source == "model":
            return "estimate"
        if self.heatmap_source != "auto":
            return self.heatmap_source
        if self.coinglass_api_key is not None:
            return "coinglass"
        return "sim" if self.data_source == "sim" else "estimate"

    @property
    def majors(self) -> frozenset[str]:
        return frozenset(s.strip().upper() for s in self.trade_majors.split(",") if s.strip())

    @property
    def autotraded_strategies(self) -> frozenset[str]:
        return frozenset(s.strip() for s in self.autotrade_strategies.split(",") if s.strip())

    @property
    def strategy_symbol_list(self) -> list[str]:
        return [s.strip().upper() for s in self.strategy_symbols.split(",") if s.strip()]

    @property
    def trailing_steps(self) -> list[tuple[float, float]]:
        return parse_trailing_ladder(self.trailing_ladder)

    @property
    def timeframe_weights(self) -> list[float]:
        """RANK_TIMEFRAME_WEIGHTS as one weight per timeframe, in TIMEFRAMES order."""
        given = parse_timeframe_weights(self.rank_timeframe_weights)
        return [given.get(tf, 1.0) for tf in TIMEFRAMES]

    def redis_url(self) -> str:
        auth = ""
        if self.redis_pass is not None and self.redis_pass.get_secret_value():
            auth = f":{self.redis_pass.get_secret_value()}@"
        return f"redis://{auth}{self.redis_host}:{self.redis_port}/{self.redis_db}"

    def app_db_password(self) -> SecretStr:
        """TIMESCALE_DB_APP_PASS, or the local-only default when it is empty."""
        value = self.timescale_db_app_pass
        if value is None or not value.get_secret_value():
            return SecretStr(DEV_APP_DB_PASSWORD)
        return value

    def secret_values(self) -> list[str]:
        """Every non-empty secret value, for the log redactor."""
        values = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                raw = value.get_secret_value()
                if len(raw) >= 4:
                    values.append(raw)
        return values

    def require(self, *fields: str, why: str) -> None:
        """Stop a service at start when a setting it cannot work without is missing."""
        missing = [f for f in fields if getattr(self, f) in (None, "")]
        if missing:
            raise ConfigError(
                "; ".join(f"{env_name(f)}: required {why}, but not set" for f in missing)
            )

    def public_view(self) -> dict[str, Any]:
        """Settings safe to show (status, logs): secrets appear only as set / not set."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) or name.endswith(
                ("_pass", "_token", "_secret", "_key")
            ):
                out[env_name(name)] = "set" if value else "not set"
            else:
                out[env_name(name)] = value if not isinstance(value, Path) else str(value)
        return out


def parse_timeframe_weights(text: str) -> dict[str, float]:
    """ "12h=0.5,1y=2" → {"12h": 0.5, "1y": 2.0}; raises ValueError on a bad entry."""
    out: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or name not in TIMEFRAMES:
            raise ValueError(
                f"expected TIMEFRAME=WEIGHT with a timeframe of {TIMEFRAMES}, got {item!r}"
            )
        try:
            weight = float(raw)
        except ValueError:
            raise ValueError(f"weight of {name} is not a number: {raw!r}") from None
        if not weight >= 0:
            raise ValueError(f"weight of {name} must be >= 0, got {weight}")
        out[name] = weight
    return out


def parse_trailing_ladder(text: str) -> list[tuple[float, float]]:
    """ "10:0,20:10,50:30" → [(10, 0), (20, 10), (50, 30)]: at +PROFIT % lock +LOCK %.
    Steps must rise in both numbers and lock less than the profit that triggers them."""
    steps: list[tuple[float, float]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        profit, sep, lock = item.partition(":")
        try:
            step = (float(profit), float(lock))
        except ValueError:
            raise ValueError(f"expected PROFIT:LOCK numbers, got {item!r}") from None
        if not sep or not 0 <= step[1] < step[0]:
            raise ValueError(f"expected PROFIT:LOCK with 0 <= LOCK < PROFIT, got {item!r}")
        if steps and not (step[0] > steps[-1][0] and step[1] > steps[-1][1]):
            raise ValueError(f"steps must rise in profit and lock, got {item!r} after {steps[-1]}")
        steps.append(step)
    if not steps:
        raise ValueError("at least one PROFIT:LOCK step is needed")
    return steps


def env_name(field: str) -> str:
    """The environment variable a field is read from (its first alias, else its upper-cased name)."""
    info = Settings.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, AliasChoices):
        first = info.validation_alias.choices[0]
        if isinstance(first, str):
            return first
    return field.upper()


def _describe(error: ErrorDetails) -> str:
    loc = [str(p) for p in error.get("loc", ()) if p != "__root__"]
    msg = str(error.get("msg", "invalid"))
    if not loc:  # model-level check: the message already names the variables
        return msg.removeprefix("Value error, ")
    field = loc[0]
    name = env_name(field) if field in Settings.model_fields else field.upper()
    info = Settings.model_fields.get(field)
    expects = f" (expected: {info.description})" if info is not None and info.description else ""
    secret = info is not None and "SecretStr" in repr(info.annotation)
    got = "" if secret or "input" not in error else f", got {str(error['input'])[:60]!r}"
    return f"{name}: {msg}{got}{expects}"


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment and `.env`; raise ConfigError naming each bad variable."""
    try:
        return Settings(_env_file=_env_file(), **overrides)
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(e) for e in exc.errors())) from None
