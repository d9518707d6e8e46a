-- The next batch of the run's outbox, locked until the transaction that posts it ends. SKIP LOCKED:
-- rows another sender has in flight are left to it, so two senders never post the same profile
-- at once. Lowest seq first: rows whose send failed go again with the very next batch.
SELECT o.seq, o.attempts, p.age, p.profile
FROM profile_relay.outbox AS o
JOIN profile_relay.profiles AS p USING (run_id, seq)
WHERE o.run_id = %(run_id)s
ORDER BY o.seq
LIMIT %(batch_size)s
FOR UPDATE OF o SKIP LOCKED
