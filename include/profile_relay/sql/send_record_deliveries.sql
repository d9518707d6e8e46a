-- The receiver acknowledged the batch: its rows leave the outbox and become deliveries in one
-- statement of the transaction that claimed them, so a profile is in exactly one of the two.
-- attempts counts this send too.
WITH acknowledged AS (
    SELECT *
    FROM unnest(%(seqs)s::integer[], %(keys)s::text[], %(outcomes)s::text[]) AS a (seq, idempotency_key, outcome)
),
sent AS (
    DELETE FROM profile_relay.outbox AS o
    USING acknowledged AS a
    WHERE o.run_id = %(run_id)s AND o.seq = a.seq
    RETURNING o.run_id, o.seq, a.idempotency_key, a.outcome, o.attempts, o.queued_at
)
INSERT INTO profile_relay.deliveries (run_id, seq, idempotency_key, outcome, attempts, queued_at)
SELECT run_id, seq, idempotency_key, outcome, attempts + 1, queued_at
FROM sent
