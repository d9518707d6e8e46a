-- Whether the run is registered, whether a sender (this one before a retry, or another) has
-- already finished it, and for how long nothing has happened upstream: the latest of its
-- registration, its last stored profile and the end of its generation (a PK index lookup, cheap
-- enough for every poll).
SELECT
    r.processed_at,
    r.sent_at,
    clock_timestamp() - greatest(
        r.registered_at,
        r.generated_at,
        (SELECT p.stored_at FROM profile_relay.profiles AS p WHERE p.run_id = r.run_id ORDER BY p.seq DESC LIMIT 1)
    ) AS upstream_idle
FROM profile_relay.runs AS r
WHERE r.run_id = %(run_id)s
