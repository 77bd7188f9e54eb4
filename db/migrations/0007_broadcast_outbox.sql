-- 0007_broadcast_outbox.sql
-- broadcast_dedup becomes the broadcaster's outbox: the dedup claim row (channel, dedup_key) now
-- also holds the message to send and where it is in its life:
--   pending  -> claimed (a replica took it) -> sending (the call to the provider has started)
--            -> sent | digested (carried by a digest message) | failed | skipped
-- A replica that dies leaves 'claimed' (never sent: made pending again) or 'sending' (in doubt:
-- resent only on channels where a resend cannot duplicate, e.g. email with the same
-- Message-ID; elsewhere recorded failed 'in doubt'). Rows written before this migration were
-- plain "already sent" markers, hence the default 'sent'.
ALTER TABLE broadcast_dedup
    ADD COLUMN IF NOT EXISTS state text NOT NULL DEFAULT 'sent'
        CHECK (state IN ('pending', 'claimed', 'sending', 'sent', 'digested', 'failed', 'skipped')),
    ADD COLUMN IF NOT EXISTS event_type text,                 -- 'signal' | 'entry' | 'stop_moved' | 'exit' | 'daily'
    ADD COLUMN IF NOT EXISTS vertical text NOT NULL DEFAULT 'perps',
    ADD COLUMN IF NOT EXISTS score numeric,                   -- conviction of the signal behind it
    ADD COLUMN IF NOT EXISTS fields jsonb NOT NULL DEFAULT '{}',  -- template values (unescaped)
    ADD COLUMN IF NOT EXISTS correlation_id text,
    ADD COLUMN IF NOT EXISTS attempts int NOT NULL DEFAULT 0,    -- calls made to the provider
    ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS claim_token uuid,                -- one per claim: results of a stale claim are ignored
    ADD COLUMN IF NOT EXISTS claimed_by text,                 -- replica instance
    ADD COLUMN IF NOT EXISTS claimed_until timestamptz,       -- past this the claimer is taken for dead
    ADD COLUMN IF NOT EXISTS send_started_at timestamptz,
    ADD COLUMN IF NOT EXISTS digest_id uuid,                  -- broadcasts.event_id of the digest carrying it
    ADD COLUMN IF NOT EXISTS provider_message_id text,
    ADD COLUMN IF NOT EXISTS error text,
    ADD COLUMN IF NOT EXISTS done_at timestamptz;

CREATE INDEX IF NOT EXISTS broadcast_dedup_due_idx
    ON broadcast_dedup (channel, next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS broadcast_dedup_claims_idx
    ON broadcast_dedup (claimed_until) WHERE state IN ('claimed', 'sending');

COMMENT ON TABLE broadcast_dedup IS
    'Broadcast outbox and de-duplication per (channel, dedup_key): INSERT ... ON CONFLICT DO NOTHING = claim; state = where the message is';
