"""Grafana provisioning and dashboards, statically (no Grafana server): the files follow
Grafana's provisioning format, every panel uses the provisioned datasource uid, no password is
written anywhere, the home dashboard is set, the JSON is what scripts/gen_dashboards.py
writes; and the macro / variable expansion matches Grafana's PostgreSQL datasource.

Running every panel's SQL against a seeded database: tests/e2e/test_dashboards.py.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from scripts import gen_dashboards

from quantcore import dashboards as dash

ROOT = Path(__file__).resolve().parents[1]
PROVISIONING = ROOT / "grafana" / "provisioning"
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"
ENV_REF = re.compile(r"^\$\{?[A-Z_][A-Z0-9_]*\}?$")


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


@pytest.fixture(scope="module")
def datasource() -> dict[str, Any]:
    files = sorted((PROVISIONING / "datasources").glob("*.yaml"))
    assert len(files) == 1
    doc = _yaml(files[0])
    assert doc["apiVersion"] == 1
    (ds,) = doc["datasources"]
    return dict(ds)


@pytest.fixture(scope="module")
def compose_grafana() -> dict[str, Any]:
    compose = _yaml(ROOT / "docker-compose.yaml")
    return dict(compose["services"]["grafana"])


def test_datasource_is_timescaledb_through_the_reader_login(datasource: dict[str, Any]) -> None:
    assert datasource["type"] == "grafana-postgresql-datasource"
    assert datasource["uid"] == gen_dashboards.DS["uid"]
    assert datasource["jsonData"]["timescaledb"] is True
    # every connection value comes from the environment, the password above all
    for value in (
        datasource["url"].split(":")[0],
        datasource["user"],
        datasource["jsonData"]["database"],
        datasource["secureJsonData"]["password"],
    ):
        assert ENV_REF.match(value), value
    assert datasource["secureJsonData"]["password"] == "${GRAFANA_RO_PASS}"
    assert "password" not in datasource  # only in secureJsonData


def test_compose_gives_grafana_every_variable_the_provisioning_uses(
    compose_grafana: dict[str, Any],
) -> None:
    env = compose_grafana["environment"]
    used: set[str] = set()
    for path in PROVISIONING.rglob("*.yaml"):  # values only: comments may mention $VAR
        for value in _strings(_yaml(path)):
            used |= set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", value))
    assert used and used <= set(env)
    assert env["GRAFANA_RO_USER"].startswith("${GRAFANA_RO_USER")


def test_no_password_in_grafana_files() -> None:
    for path in [*PROVISIONING.rglob("*"), *DASHBOARD_DIR.rglob("*")]:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"(?i)(password|passwd|secret)\"?\s*[:=]\s*\"?([^\s\",}]+)", text):
            assert ENV_REF.match(m.group(2)), f"{path.name}: {m.group(0)}"


def test_dashboard_provider_points_at_the_mounted_folder(compose_grafana: dict[str, Any]) -> None:
    doc = _yaml(PROVISIONING / "dashboards" / "whalestack.yaml")
    assert doc["apiVersion"] == 1
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    mounts = {v.split(":")[1]: v.split(":")[0] for v in compose_grafana["volumes"]}
    assert mounts[provider["options"]["path"]] == "./grafana/dashboards"
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"


def test_home_dashboard_is_trading(compose_grafana: dict[str, Any]) -> None:
    home = compose_grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith("/var/lib/grafana/dashboards/")
    path = DASHBOARD_DIR / Path(home).name
    assert json.loads(path.read_text())["uid"] == "whalestack-trading"


def test_json_is_what_the_generator_writes() -> None:
    rendered = gen_dashboards.render_all()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in DASHBOARD_DIR.glob("*.json")}
    assert on_disk == rendered, "run: uv run python scripts/gen_dashboards.py"


@pytest.mark.parametrize("path", sorted(DASHBOARD_DIR.glob("*.json")), ids=lambda p: p.name)
def test_dashboard_follows_grafana_format(path: Path) -> None:
    model = json.loads(path.read_text())
    uid = gen_dashboards.DS["uid"]
    assert model["uid"] and model["title"] and model["schemaVersion"] >= 36
    assert model["refresh"] in ("5s", "10s")
    assert model["time"]["to"] == "now"
    panels = list(dash.iter_panels(model["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for p in panels:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        assert p["datasource"]["uid"] == uid, p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == uid
            assert t["rawSql"].strip() and t["rawQuery"] is True
            assert t["format"] in ("table", "time_series")
            if t["format"] == "time_series":
                assert "$__time" in t["rawSql"], f"{p['title']}: time series without a time macro"
    for var in model["templating"]["list"]:
        assert var["datasource"]["uid"] == uid
        if var.get("includeAll"):
            assert var["allValue"] == "'__all'"


def test_trading_dashboard_shows_the_mode() -> None:
    model = json.loads((DASHBOARD_DIR / "trading.json").read_text())
    mode = next(p for p in model["panels"] if p["title"] == "Mode")
    assert mode["gridPos"]["y"] == 0 and mode["gridPos"]["x"] == 0
    texts = {
        o["text"]
        for m in mode["fieldConfig"]["defaults"]["mappings"]
        for o in m["options"].values()
    }
    assert any("SIMULATED" in t for t in texts) and any("LIVE" in t for t in texts)
    assert any("PAPER" in t for t in texts)


# --- macro and variable expansion (Grafana's postgres macros.go / templateSrv) ------------------

RNG = dash.TimeRange(
    datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC),
    datetime(2026, 11, 21, 10, 0, 0, 500000, tzinfo=UTC),
)


def test_time_filter_and_from_to_are_rfc3339_utc() -> None:
    out = dash.expand_macros("WHERE $__timeFilter(t.time) AND x < $__timeTo()", RNG, 60, False)
    assert out == (
        "WHERE t.time BETWEEN '2026-11-20T10:00:00Z' AND '2026-11-21T10:00:00.5Z' "
        "AND x < '2026-11-21T10:00:00.5Z'"
    )
    assert dash.expand_macros("$__timeFrom()", RNG, 60, False) == "'2026-11-20T10:00:00Z'"


def test_time_group_plain_and_timescaledb() -> None:
    sql = "SELECT $__timeGroupAlias(time, 5m), avg(x) FROM t GROUP BY $__timeGroup(time, '5m')"
    assert dash.expand_macros(sql, RNG, 60, False) == (
        'SELECT floor(extract(epoch from time)/300)*300 AS "time", avg(x) FROM t '
        "GROUP BY floor(extract(epoch from time)/300)*300"
    )
    assert dash.expand_macros(sql, RNG, 60, True) == (
        "SELECT time_bucket('300.000s',time) AS \"time\", avg(x) FROM t "
        "GROUP BY time_bucket('300.000s',time)"
    )
    # pre-5.3 compatibility: $__timeGroup directly followed by ',' gets the alias
    assert dash.expand_macros("SELECT $__timeGroup(time,1h), x", RNG, 60, False) == (
        'SELECT floor(extract(epoch from time)/3600)*3600 AS "time", x'
    )


def test_epoch_macros_and_unknown_macro() -> None:
    assert dash.expand_macros("$__unixEpochFilter(ts)", RNG, 60, False) == (
        f"ts >= {int(RNG.start.timestamp())} AND ts <= {int(RNG.end.timestamp())}"
    )
    assert dash.expand_macros("$__interval_ms $__interval", RNG, 120, False) == "120000 2m"
    with pytest.raises(dash.DashboardError, match="unknown macro"):
        dash.expand_macros("$__nope(x)", RNG, 60, False)


def test_interval_follows_the_range_like_grafana() -> None:
    day = dash.TimeRange.last(timedelta(days=1))
    assert day.interval_s(1000) == 60  # 86.4 s raw → 1m
    month = dash.TimeRange.last(timedelta(days=30))
    assert month.interval_s(1000) == 1800  # 2592 s raw → 30m (Grafana rounds below 45m to 30m)
    assert dash.TimeRange.last(timedelta(minutes=5)).interval_s(1000, 10) == 10  # floor: 10s
    assert dash.format_interval(3600) == "1h" and dash.format_interval(0.5) == "500ms"


def test_variables_single_multi_all_and_formats() -> None:
    agent = dash.Variable("agent", ("a", "o'b"), ("a", "o'b", "c"), multi=True, include_all=True,
                          all_value="'__all'")  # fmt: skip
    coin = dash.Variable("coin", "BTC'USDT", ("BTCUSDT",))
    everyone = dash.Variable("who", dash.ALL_VALUE, ("x", "y"), multi=True, include_all=True)
    variables = {"agent": agent, "coin": coin, "who": everyone}
    render = lambda s: dash.interpolate_variables(s, variables, RNG, 60)  # noqa: E731
    assert render("agent IN ($agent)") == "agent IN ('a','o''b')"
    assert render("s = '$coin' AND s = '${coin}' AND [[coin]]") == (
        "s = 'BTC''USDT' AND s = 'BTC''USDT' AND BTC''USDT"
    )
    assert render("${agent:csv} ${agent:sqlstring}") == "a,o'b 'a','o''b'"
    assert render("w IN ($who)") == "w IN ('x','y')"  # All without a custom value: every option
    all_agents = {**variables, "agent": dash.Variable("agent", dash.ALL_VALUE, ("a",), True, True,
                                                      "'__all'")}  # fmt: skip
    assert dash.interpolate_variables("IN ($agent)", all_agents, RNG, 60) == "IN ('__all')"
    assert render("$__timeFilter(time)") == "$__timeFilter(time)"  # left for the macro engine
    with pytest.raises(dash.DashboardError, match=r"unknown variable \$nope"):
        render("$nope")
