-- The run is generated once all its count profiles are stored; marking it again keeps the first
-- time. No row back: not all stored yet.
UPDATE profile_relay.runs AS r
SET generated_at = coalesce(r.generated_at, clock_timestamp())
WHERE r.run_id = %(run_id)s
  AND (SELECT count(*) FROM profile_relay.profiles AS p WHERE p.run_id = r.run_id) = r.count
RETURNING r.generated_at
