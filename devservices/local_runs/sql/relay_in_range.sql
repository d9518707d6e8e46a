-- The sequence numbers of a run's profiles whose age is in range: what the receiver must hold.
SELECT seq
FROM profile_relay.profiles
WHERE run_id = %(run_id)s AND in_range
ORDER BY seq
