"""The outbox: `broadcast_dedup` rows (one per channel × message) and the `broadcasts` record.

Life of a row: pending → claimed (one replica took it; FOR UPDATE SKIP LOCKED) → sending (the
provider call has started, committed before the call) → sent | digested | failed | skipped.
Every claim carries a fresh `claim_token`; a result is written only for that token, so a late
result of a claim that was already resolved elsewhere changes nothing it should not. A claim
older than its `claimed_until` belongs to a dead replica: 'claimed' goes back to pending (the
call never started); 'sending' is in doubt (see resolve_stale_claims).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from quantcore.db import fetch_all
from svc_broadcaster.messages import Message

IN_DOUBT = (
    "in doubt: the replica sending it stopped during the call; not resent, so nobody gets it twice"
)


@dataclass(frozen=True)
class NewItem:
    channel: str
    message: Message
    state: str = "pending"  # or 'skipped' (routing said no)
    error: str | None = None


@dataclass
class Claimed:
    channel: str
    dedup_key: str
    event_id: uuid.UUID
    event_type: str
    vertical: str
    score: float | None
    fields: dict[str, Any]
    correlation_id: str | None
    attempts: int
    first_sent_at: datetime


@dataclass(frozen=True)
class Record:
    """One row of `broadcasts`."""

    event_id: uuid.UUID
    event_type: str
    channel: str
    status: str  # sent | failed | skipped | digested | rate_limited
    agent: str
    attempts: int = 1
    provider_message_id: str | None = None
    error: str | None = None
    digest_id: uuid.UUID | None = None
    text: str | None = None
    vertical: str = "perps"
    correlation_id: str | None = None
    broadcast_id: uuid.UUID = field(default_factory=uuid.uuid4)


_COLUMNS = """channel, dedup_key, event_id, event_type, vertical, score::float8 AS score, fields,
    correlation_id, attempts, first_sent_at"""


async def insert_items(conn: AsyncConnection[Any], items: Sequence[NewItem]) -> list[NewItem]:
    """Claim each (channel, dedup key) once, ever: returns the items that were new."""
    if not items:
        return []
    cur = await conn.execute(
        """
        INSERT INTO broadcast_dedup (channel, dedup_key, event_id, event_type, vertical, score,
                                     fields, correlation_id, state, error, done_at)
        SELECT c, k, e, t, v, s, f::jsonb, cid, st, err,
               CASE WHEN st = 'pending' THEN NULL ELSE now() END
        FROM unnest(%s::text[], %s::text[], %s::uuid[], %s::text[], %s::text[], %s::float8[],
                    %s::text[], %s::text[], %s::text[], %s::text[])
             AS x(c, k, e, t, v, s, f, cid, st, err)
        ON CONFLICT (channel, dedup_key) DO NOTHING
        RETURNING channel, dedup_key
        """,
        (
            [i.channel for i in items], [i.message.dedup_key for i in items],
            [i.message.event_id for i in items], [i.message.kind for i in items],
            [i.message.vertical for i in items], [i.message.score for i in items],
            [json.dumps(i.message.fields) for i in items],
            [i.message.correlation_id for i in items], [i.state for i in items],
            [i.error for i in items],
        ),
    )  # fmt: skip
    new = {(r[0], r[1]) for r in await cur.fetchall()}
    return [i for i in items if (i.channel, i.message.dedup_key) in new]


async def record(conn: AsyncConnection[Any], records: Sequence[Record]) -> None:
    if not records:
        return
    async with conn.cursor() as cur:
        await cur.executemany(
            """
            INSERT INTO broadcasts (time, broadcast_id, event_id, event_type, channel, status,
                provider_message_id, error, attempts, digest_id, text, agent, vertical,
                correlation_id)
            VALUES (clock_timestamp(), %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            [
                (r.broadcast_id, r.event_id, r.event_type, r.channel, r.status,
                 r.provider_message_id, (r.error or None) and r.error[:2000], max(r.attempts, 1),
                 r.digest_id, r.text, r.agent, r.vertical, r.correlation_id)
                for r in records
            ],
        )  # fmt: skip


async def due_count(conn: AsyncConnection[Any], channel: str, limit: int) -> int:
    cur = await conn.execute(
        """SELECT count(*) FROM (SELECT 1 FROM broadcast_dedup WHERE channel = %s AND state = 'pending'
           AND next_attempt_at <= now() LIMIT %s) d""",
        (channel, limit),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def claim(
    conn: AsyncConnection[Any], channel: str, n: int, token: uuid.UUID, instance: str,
    timeout_s: float,
) -> list[Claimed]:  # fmt: skip
    """Take the `n` oldest due messages of a channel (other replicas skip them)."""
    return await fetch_all(
        conn,
        f"""
        WITH picked AS (
            SELECT channel, dedup_key FROM broadcast_dedup
            WHERE channel = %s AND state = 'pending' AND next_attempt_at <= now()
            ORDER BY first_sent_at, dedup_key LIMIT %s FOR UPDATE SKIP LOCKED
        )
        UPDATE broadcast_dedup b SET state = 'claimed', claim_token = %s, claimed_by = %s,
            claimed_until = now() + %s * interval '1 second'
        FROM picked WHERE b.channel = picked.channel AND b.dedup_key = picked.dedup_key
        RETURNING {", ".join("b." + c.strip() for c in _COLUMNS.split(","))}
        """,
        (channel, n, token, instance, timeout_s),
        Claimed,
    )


async def release(
    conn: AsyncConnection[Any], channel: str, token: uuid.UUID, keys: Sequence[str]
) -> None:
    """Give claimed, never-started messages back (they did not fit in this digest)."""
    await conn.execute(
        """UPDATE broadcast_dedup SET state = 'pending', claim_token = NULL, claimed_by = NULL,
           claimed_until = NULL WHERE channel = %s AND claim_token = %s AND dedup_key = ANY(%s)
           AND state = 'claimed'""",
        (channel, token, list(keys)),
    )


async def mark_sending(
    conn: AsyncConnection[Any], channel: str, token: uuid.UUID, digest_id: uuid.UUID | None,
    timeout_s: float,
) -> int:  # fmt: skip
    """Committed right before the provider call: from here a dead sender leaves it in doubt."""
    cur = await conn.execute(
        """UPDATE broadcast_dedup SET state = 'sending', send_started_at = now(),
           attempts = attempts + 1, digest_id = %s, claimed_until = now() + %s * interval '1 second'
           WHERE channel = %s AND claim_token = %s AND state = 'claimed'""",
        (digest_id, timeout_s, channel, token),
    )
    return cur.rowcount


async def finish(
    conn: AsyncConnection[Any], channel: str, token: uuid.UUID, state: str,
    provider_message_id: str | None = None, error: str | None = None,
) -> list[Claimed]:  # fmt: skip
    """The final state of a claim's messages (sent / digested / failed / skipped)."""
    return await fetch_all(
        conn,
        f"""UPDATE broadcast_dedup SET state = %s, done_at = now(), provider_message_id = %s,
            error = %s, claimed_until = NULL WHERE channel = %s AND claim_token = %s
            RETURNING {_COLUMNS}""",
        (state, provider_message_id, error, channel, token),
        Claimed,
    )


async def retry_later(
    conn: AsyncConnection[Any], channel: str, token: uuid.UUID, delay_s: float, error: str
) -> int:
    cur = await conn.execute(
        """UPDATE broadcast_dedup SET state = 'pending', error = %s, claim_token = NULL,
           claimed_by = NULL, claimed_until = NULL, digest_id = NULL,
           next_attempt_at = now() + %s * interval '1 second'
           WHERE channel = %s AND claim_token = %s AND state IN ('claimed', 'sending')""",
        (error[:2000], delay_s, channel, token),
    )
    return cur.rowcount


async def resolve_stale_claims(
    conn: AsyncConnection[Any], channel: str, resend_in_doubt: bool
) -> tuple[int, list[tuple[Claimed, uuid.UUID | None]]]:
    """Claims whose replica died. 'claimed' (call never started) → pending again. 'sending'
    (the call may or may not have reached the provider) → pending again only where a resend
    cannot make a duplicate (`resend_in_doubt`), else failed in doubt (returned, for records)."""
    cur = await conn.execute(
        """UPDATE broadcast_dedup SET state = 'pending', claim_token = NULL, claimed_by = NULL,
           claimed_until = NULL, digest_id = NULL
           WHERE channel = %s AND state = %s AND claimed_until < now()""",
        (channel, "sending" if resend_in_doubt else "claimed"),
    )
    returned = cur.rowcount
    if resend_in_doubt:
        cur = await conn.execute(
            """UPDATE broadcast_dedup SET state = 'pending', claim_token = NULL, claimed_by = NULL,
               claimed_until = NULL, digest_id = NULL
               WHERE channel = %s AND state = 'claimed' AND claimed_until < now()""",
            (channel,),
        )
        return returned + cur.rowcount, []
    async with conn.cursor() as c:
        await c.execute(
            f"""UPDATE broadcast_dedup SET state = 'failed', error = %s, done_at = now(),
                claimed_until = NULL WHERE channel = %s AND state = 'sending'
                AND claimed_until < now() RETURNING {_COLUMNS}, digest_id""",
            (IN_DOUBT, channel),
        )
        rows = await c.fetchall()
    doubtful = [
        (Claimed(*r[:10]), r[10])  # columns in Claimed's order, then digest_id
        for r in rows
    ]
    return returned, doubtful


async def skip_pending(
    conn: AsyncConnection[Any], channel: str, reason: str, older_than_s: float | None = None
) -> list[Claimed]:
    """Give up on due messages: stale ones (older_than_s) or all of a channel that is down."""
    return await fetch_all(
        conn,
        f"""UPDATE broadcast_dedup SET state = 'skipped', error = %s, done_at = now()
            WHERE channel = %s AND state = 'pending'
            AND (%s::float8 IS NULL OR first_sent_at < now() - %s::float8 * interval '1 second')
            RETURNING {_COLUMNS}""",
        (reason, channel, older_than_s, older_than_s),
        Claimed,
    )
