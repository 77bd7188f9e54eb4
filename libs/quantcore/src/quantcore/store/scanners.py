"""Scanner registry (provenance): which code, with which parameters, made a row.

Every scanner registers at start and stamps the returned version on every row it writes.
The version is `code_version + "+" + params_hash[:8]`, so changing any parameter yields a
new registry row by itself: "which scanner produced this signal, with which numbers" is
then one join (signals → scanners) plus the row's own `inputs`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb


def canonical_json(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)


def params_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(params).encode()).hexdigest()


def scanner_version(code_version: str, params: dict[str, Any]) -> str:
    return f"{code_version}+{params_hash(params)[:8]}"


async def register(
    conn: AsyncConnection[Any],
    name: str,
    code_version: str,
    params: dict[str, Any],
    description: str,
    vertical: str = "perps",
) -> str:
    """Record (or re-see) this scanner with these parameters; returns the version to stamp."""
    version = scanner_version(code_version, params)
    await conn.execute(
        """
        INSERT INTO scanners (name, version, params, params_hash, description, vertical, last_seen_at)
        VALUES (%s, %s, %s, %s, %s, %s, now())
        ON CONFLICT (name, version) DO UPDATE SET last_seen_at = now()
        """,
        (
            name,
            version,
            Jsonb(json.loads(canonical_json(params))),
            params_hash(params),
            description,
            vertical,
        ),
    )
    return version
