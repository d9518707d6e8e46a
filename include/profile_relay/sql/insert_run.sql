-- Registers a run with the settings it generates and judges by; a known run is left as it is
-- (the caller compares its settings): nothing is returned then.
INSERT INTO profile_relay.runs (
    run_id, dag_id, count, seed, locale, reference_date, age_min, age_max, interval_seconds
)
VALUES (
    %(run_id)s, %(dag_id)s, %(count)s, %(seed)s, %(locale)s, %(reference_date)s, %(age_min)s,
    %(age_max)s, %(interval_seconds)s
)
ON CONFLICT (run_id) DO NOTHING
RETURNING run_id
