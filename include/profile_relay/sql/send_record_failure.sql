-- The batch was not acknowledged: its rows stay in the outbox (the claim's transaction commits
-- this instead of deleting them), each one failed attempt more, and the failure is kept for the
-- run's account.
WITH failed AS (
    UPDATE profile_relay.outbox
    SET attempts = attempts + 1
    WHERE run_id = %(run_id)s AND seq = ANY(%(seqs)s::integer[])
    RETURNING seq
)
INSERT INTO profile_relay.send_failures (run_id, profiles, kind, detail)
SELECT %(run_id)s, count(*), %(kind)s, %(detail)s
FROM failed
HAVING count(*) > 0
