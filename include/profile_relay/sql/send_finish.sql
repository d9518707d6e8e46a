-- The sender is done once process is (processed_at set: nothing more will be queued) and the
-- run's outbox is empty, rows another sender has in flight included. sent_at is then set once,
-- strictly after processed_at (the table's CHECK holds it). No row back: not yet, or already set.
UPDATE profile_relay.runs AS r
SET sent_at = clock_timestamp()
WHERE r.run_id = %(run_id)s
  AND r.processed_at IS NOT NULL
  AND r.sent_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM profile_relay.outbox AS o WHERE o.run_id = r.run_id)
RETURNING r.sent_at
