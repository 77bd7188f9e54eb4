# syntax=docker/dockerfile:1
#
# One image for the whole Whale Stack fleet; each compose service picks its role by command:
#   docker run --rm whalestack:dev status        # default
#   docker run --rm whalestack:dev migrate
#   docker run --rm whalestack:dev run journal
# Built from the repo root (the uv workspace). Multi-arch: every base image below is published
# for linux/amd64 and linux/arm64, so `docker compose build` works on Apple silicon as is.
# Pattern: astral-sh/uv-docker-example (multistage.Dockerfile) and
# fastapi/full-stack-fastapi-template (dependencies layer first, then the workspace source).

# Builder and runtime MUST use the same Python image: the venv's interpreter is a symlink to
# /usr/local/bin/python3.11 and its scripts carry /app/.venv/bin/python shebangs.
ARG PYTHON_IMAGE=python:3.11.15-slim-bookworm

# --- manifests: only the files that decide the dependency set -----------------------------
# Copies every workspace member and deletes all but its pyproject.toml, so the dependency layer
# below is rebuilt only when a pyproject.toml or uv.lock changes, never for a source edit, and a
# new libs/<x> or services/<x> needs no change here.
FROM ${PYTHON_IMAGE} AS manifests
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY libs/ libs/
COPY services/ services/
RUN find libs services -type f ! -name pyproject.toml -delete \
    && find libs services -mindepth 1 -type d -empty -delete

# --- builder: resolve the locked venv with uv ----------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /uvx /bin/

# Bytecode is compiled at build time (fast start); copy, not hard-link, out of the cache mount;
# use the image's own interpreter, never a downloaded one; the venv lives at /app/.venv.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=0 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /app

# 1) Third-party dependencies of every workspace member (cached layer).
COPY --from=manifests /src/ ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --all-packages --no-install-workspace --no-editable

# 2) The workspace members themselves, installed as regular (non-editable) wheels so the venv
#    is self-contained and the runtime image needs no source tree. --all-packages installs
#    every member of libs/* and services/*, so each service's `quant.services` entry point
#    is registered without touching this file.
COPY pyproject.toml uv.lock ./
COPY libs/ libs/
COPY services/ services/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --all-packages --no-editable

# Smoke test at build time: the CLI starts and every registered service entry point imports.
RUN /app/.venv/bin/python -c "from importlib.metadata import entry_points as eps; \
[ep.load() for ep in eps(group='quant.services')]" \
    && /app/.venv/bin/quant --help > /dev/null

# --- runtime: python + the venv + migrations; no uv, no compilers, not root ----------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="whalestack" \
      org.opencontainers.image.description="Whale Stack fleet: one image, one service per command (quant run <service>)"

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/app/.venv \
    PATH="/app/.venv/bin:${PATH}" \
    MIGRATIONS_DIR=/app/db/migrations

RUN groupadd --system --gid 10001 quant \
    && useradd --system --uid 10001 --gid quant --create-home --home-dir /home/quant \
       --shell /usr/sbin/nologin quant

# pg_dump / pg_restore for `quant backup` / `quant restore` (the compose `backup` service). The
# client must be at least the server's major version (timescale/timescaledb:*-pg17), newer than
# Debian bookworm's 15: from the PostgreSQL project's apt repository (PGDG), set up by Debian's
# own postgresql-common script. /backups is the `backups` volume, writable by `quant`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-common ca-certificates \
    && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
    && apt-get install -y --no-install-recommends postgresql-client-17 \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o quant -g quant /backups

WORKDIR /app

# Owned by root and read-only for `quant`: the service user cannot modify its own code.
COPY --from=builder /app/.venv /app/.venv
COPY db/migrations/ /app/db/migrations/

USER quant

ENTRYPOINT ["quant"]
CMD ["status"]
