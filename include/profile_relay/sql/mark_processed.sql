-- The run is processed once it is generated and every profile is judged; marking it again keeps
-- the first time. No row back: not yet.
UPDATE profile_relay.runs AS r
SET processed_at = coalesce(r.processed_at, clock_timestamp())
WHERE r.run_id = %(run_id)s
  AND r.generated_at IS NOT NULL
  AND NOT EXISTS (
      SELECT 1 FROM profile_relay.profiles AS p WHERE p.run_id = r.run_id AND p.judged_at IS NULL
  )
RETURNING r.processed_at
