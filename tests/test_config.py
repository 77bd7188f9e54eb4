"""Settings: defaults run a fresh clone; bad or missing settings stop a service with a clear message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from quantcore.config import (
    DEV_APP_DB_PASSWORD,
    DEV_DB_PASSWORD,
    DEV_GRAFANA_ADMIN_PASSWORD,
    DEV_GRAFANA_RO_PASSWORD,
    LIVE_CONFIRMATION_PHRASE,
    ConfigError,
    Settings,
    env_name,
    load_settings,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for key in list(os.environ):
        if env_name_known(key):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("QUANT_ENV_FILE", "/nonexistent/.env")
    return monkeypatch


def env_name_known(key: str) -> bool:
    return key in {env_name(f) for f in Settings.model_fields}


def test_fresh_clone_defaults_are_simulated_and_paper(clean_env: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert s.data_source == "sim"
    assert s.trading_mode == "paper"
    assert s.bybit_rest_url == s.sim_http_url  # the real adapter is pointed at the simulator
    assert s.bybit_api_key is None


def test_malformed_setting_names_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TIMESCALE_DB_PORT", "not-a-port")
    with pytest.raises(ConfigError, match=r"TIMESCALE_DB_PORT: .*integer.*'not-a-port'"):
        load_settings()


def test_bad_choice_names_the_variable_and_choices(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TRADING_MODE", "yolo")
    with pytest.raises(ConfigError, match=r"TRADING_MODE: .*'paper', 'testnet' or 'live'"):
        load_settings()


def test_live_refuses_without_keys_and_confirmation(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TRADING_MODE", "live")
    with pytest.raises(ConfigError, match="BYBIT_API_KEY and BYBIT_API_SECRET"):
        load_settings()
    clean_env.setenv("BYBIT_API_KEY", "k" * 18)
    clean_env.setenv("BYBIT_API_SECRET", "s" * 36)
    with pytest.raises(ConfigError, match="LIVE_TRADING_CONFIRM"):
        load_settings()
    clean_env.setenv("LIVE_TRADING_CONFIRM", LIVE_CONFIRMATION_PHRASE)
    with pytest.raises(ConfigError, match="TIMESCALE_DB_PASS"):
        load_settings()  # the dev placeholder password is refused for real money
    clean_env.setenv("TIMESCALE_DB_PASS", "a-real-password")
    with pytest.raises(ConfigError, match="default password of TIMESCALE_DB_APP_PASS"):
        load_settings()  # so is the services' login's (the app role) ...
    clean_env.setenv("TIMESCALE_DB_APP_PASS", "another-real-password")
    clean_env.setenv("GRAFANA_RO_PASS", "grafana-ro-local-only")
    with pytest.raises(ConfigError, match="default password of GRAFANA_RO_PASS"):
        load_settings()  # ... and Grafana's read-only login's
    clean_env.setenv("GRAFANA_RO_PASS", "a-third-real-password")
    with pytest.raises(ConfigError, match="default password of GRAFANA_ADMIN_PASS"):
        load_settings()  # and Grafana's admin/admin (compose's fallback when unset)
    clean_env.setenv("GRAFANA_ADMIN_PASS", DEV_GRAFANA_ADMIN_PASSWORD)
    with pytest.raises(ConfigError, match="default password of GRAFANA_ADMIN_PASS"):
        load_settings()
    clean_env.setenv("GRAFANA_ADMIN_PASS", "a-real-admin-password")
    assert load_settings().trading_mode == "live"


def test_compose_falls_back_only_to_the_placeholders_live_refuses() -> None:
    """Every `${X_PASS:-default}` in compose is a placeholder the live check knows."""
    import re

    from tests.conftest import ROOT

    text = (ROOT / "docker-compose.yaml").read_text()
    defaults = dict(re.findall(r"\$\{([A-Z_]*PASS):-([^}]*)\}", text))
    refused = {"TIMESCALE_DB_PASS": DEV_DB_PASSWORD, "TIMESCALE_DB_APP_PASS": DEV_APP_DB_PASSWORD,
               "GRAFANA_RO_PASS": DEV_GRAFANA_RO_PASSWORD,
               "GRAFANA_ADMIN_PASS": DEV_GRAFANA_ADMIN_PASSWORD, "REDIS_PASS": ""}  # fmt: skip
    assert defaults == refused


def test_testnet_needs_testnet_keys_not_mainnet_keys(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TRADING_MODE", "testnet")
    clean_env.setenv("BYBIT_API_KEY", "mainnet-key")
    clean_env.setenv("BYBIT_API_SECRET", "mainnet-secret")
    with pytest.raises(ConfigError, match="BYBIT_TESTNET_API_KEY"):
        load_settings()


def test_owner_legacy_names_are_accepted(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TWILIO_SID", "AC123")
    clean_env.setenv("X_BOT_KEY", "xkey")
    s = load_settings()
    assert s.twilio_account_sid == "AC123"
    assert s.x_api_key is not None
    assert s.x_api_key.get_secret_value() == "xkey"


def test_secrets_never_print(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TELEGRAM_BOT_TOKEN", "123456:SECRET-TELEGRAM-TOKEN")
    s = load_settings()
    assert "SECRET-TELEGRAM-TOKEN" not in repr(s)
    assert "SECRET-TELEGRAM-TOKEN" not in str(s.public_view())
    assert s.public_view()["TELEGRAM_BOT_TOKEN"] == "set"
    assert DEV_DB_PASSWORD not in str(s.public_view())


def test_require_names_missing_variables(clean_env: pytest.MonkeyPatch) -> None:
    s = load_settings()
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN: required to send"):
        s.require("telegram_bot_token", why="to send")


def test_env_example_documents_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, re.M))
    missing = sorted({env_name(f) for f in Settings.model_fields} - documented)
    assert not missing, f".env.example lacks: {missing}"
