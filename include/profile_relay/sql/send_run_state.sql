-- Whether the run is registered and whether a sender (this one before a retry, or another) has
-- already finished it.
SELECT r.processed_at, r.sent_at
FROM profile_relay.runs AS r
WHERE r.run_id = %(run_id)s
