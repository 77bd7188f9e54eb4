"""Logs are one JSON object per line, carry service/agent/correlation id, and never a secret."""

from __future__ import annotations

import json

import pytest
import structlog

from quantcore.logging import configure_logging, correlation, get_logger


def test_json_lines_carry_identity_and_correlation(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("ranker", "liquidation_hunter", "host:1", "INFO", secrets=[])
    with correlation("cid-123"):
        get_logger().info("ranked", coins=10)
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["service"] == "ranker"
    assert line["agent"] == "liquidation_hunter"
    assert line["correlation_id"] == "cid-123"
    assert line["event"] == "ranked"
    assert line["coins"] == 10


def test_secret_values_are_redacted_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    secret = "sk-live-abcdef123456"
    configure_logging("svc", None, "h:1", "DEBUG", secrets=[secret])
    log = get_logger()
    log.info(f"connecting with {secret}", nested={"deep": [secret]}, api_key="whatever")
    import logging

    logging.getLogger("thirdparty").warning("token=%s", secret)
    out = capsys.readouterr().out
    assert secret not in out
    assert "***" in out
    structlog.reset_defaults()
