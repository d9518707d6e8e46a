SELECT dag_id, count, seed, locale, reference_date, age_min, age_max, interval_seconds::float8,
       registered_at, generated_at, processed_at, sent_at
FROM profile_relay.runs
WHERE run_id = %(run_id)s
